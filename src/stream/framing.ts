/**
 * The incremental writer and reader of framed envelopes (SPEC.md §14.4, §14.5): bytes go in as
 * they arrive, in chunks of any size; whole segments come out. The writer holds back one full
 * chunk until it knows whether it is the last; the reader releases a segment's plaintext only
 * once its tag verified. Runtime-neutral: the Web Streams and the Node adapters run on these.
 * @module
 */
import { TAG_LENGTH } from '../core/aead/types.js';
import { MalformedEnvelopeError } from '../core/errors.js';
import { type EnvelopeHeader, LAYOUT_FRAMED, SEGMENT_LIMITS, isTruncation, maxHeaderBytes, parseHeader } from '../core/format.js';
import { type CheckedDecryptOptions } from '../core/envelope.js';
import { type SegmentCipher, beginFramedDecryption } from '../core/framed.js';
import { wipe } from '../internal/bytes.js';

/** Receives the output of a writer or reader, in order. */
export type Emit = (bytes: Uint8Array) => void;

/**
 * Segments in flight, in order: at most `limit` pending; `push` waits for the oldest when full.
 * Every result is emitted in the order it was pushed.
 */
class InOrder {
  readonly #queue: (Promise<Uint8Array> | Uint8Array)[] = [];
  constructor(readonly limit: number) {}
  async push(p: Promise<Uint8Array> | Uint8Array, emit: Emit): Promise<void> {
    if (p instanceof Promise) p.catch(() => {}); // awaited below, in order; never an unhandled rejection
    this.#queue.push(p);
    while (this.#queue.length > 0 && (this.#queue.length >= this.limit || !(this.#queue[0] instanceof Promise))) {
      emit(await this.#queue.shift()!);
    }
  }
  async drain(emit: Emit): Promise<void> {
    while (this.#queue.length > 0) emit(await this.#queue.shift()!);
  }
  /** Drop what is in flight (after a failure): their results are never released. */
  clear(): void {
    this.#queue.length = 0;
  }
}

/** Writes the segments of a framed envelope whose header was already written (SPEC.md §14.5 step 4). */
export class FramedWriter {
  readonly #cipher: SegmentCipher;
  readonly #size: number;
  readonly #buf: Uint8Array;
  #fill = 0;
  #index = 0;
  readonly #flight: InOrder;
  /** Plaintext bytes taken so far. */
  bytesIn = 0;

  constructor(cipher: SegmentCipher, segmentSize: number) {
    this.#cipher = cipher;
    this.#size = segmentSize;
    this.#buf = new Uint8Array(segmentSize);
    this.#flight = new InOrder(cipher.parallel);
  }

  #seal(chunk: Uint8Array, last: boolean, emit: Emit): Promise<void> {
    if (this.#index >= SEGMENT_LIMITS.maxSegments) throw new MalformedEnvelopeError(`a framed envelope holds at most ${SEGMENT_LIMITS.maxSegments} segments`);
    return this.#flight.push(this.#cipher.sealAsync(this.#index++, last, chunk), emit);
  }

  /** Take more plaintext; emits every segment that is now known not to be the last. */
  async write(data: Uint8Array, emit: Emit): Promise<void> {
    this.bytesIn += data.length;
    let pos = 0;
    const size = this.#size;
    while (pos < data.length) {
      if (this.#fill === size) {
        // More bytes follow the full chunk held back: it was not the last.
        await this.#seal(this.#buf, false, emit);
        this.#fill = 0;
      }
      if (this.#fill === 0 && data.length - pos > size) {
        // A whole segment straight from the caller's bytes, with at least one byte after it.
        await this.#seal(data.subarray(pos, pos + size), false, emit);
        pos += size;
        continue;
      }
      const n = Math.min(size - this.#fill, data.length - pos);
      this.#buf.set(data.subarray(pos, pos + n), this.#fill);
      this.#fill += n;
      pos += n;
    }
  }

  /** The input ended: seal what is held as the last segment (empty only when no byte came), then emit what is in flight. */
  async end(emit: Emit): Promise<void> {
    await this.#seal(this.#buf.subarray(0, this.#fill), true, emit);
    await this.#flight.drain(emit);
    this.dispose();
  }

  /** Erase the held plaintext and the key. Idempotent. */
  dispose(): void {
    this.#flight.clear();
    wipe(this.#buf);
    this.#cipher.dispose();
  }
}

/** What a reader learned from the header and the providers. */
export interface FramedInfo {
  readonly header: EnvelopeHeader;
  readonly keyId: string;
}

/**
 * Reads a framed envelope from its first byte (SPEC.md §14.4, streaming reader): the header is
 * parsed as soon as enough bytes arrived (attempts at doubling lengths, so a header costs a
 * bounded number of parses), then the providers are asked, then segments are opened as they
 * complete.
 */
export class FramedReader {
  /** The bytes before the body, while the header is not parsed yet: `#head[0..#headLength)`, grown by doubling. */
  #head: Uint8Array | undefined = new Uint8Array(512);
  #headLength = 0;
  #nextTry = 256;
  #cipher: SegmentCipher | undefined;
  #size = 0;
  #buf: Uint8Array | undefined;
  #fill = 0;
  #index = 0;
  #flight: InOrder | undefined;
  #info: FramedInfo | undefined;
  #onFirst: ((info: FramedInfo) => void) | undefined;
  /** Plaintext bytes released so far. */
  bytesOut = 0;

  /**
   * @param onFirstSegment - called once, after the first segment's tag verified (so the header is authenticated).
   */
  constructor(
    readonly options: CheckedDecryptOptions,
    readonly binding: Uint8Array,
    readonly parallel: number,
    onFirstSegment?: (info: FramedInfo) => void,
  ) {
    this.#onFirst = onFirstSegment;
  }

  #emitter(emit: Emit): Emit {
    return (pt) => {
      if (this.#onFirst) {
        const f = this.#onFirst;
        this.#onFirst = undefined;
        f(this.#info!);
      }
      this.bytesOut += pt.length;
      emit(pt);
    };
  }

  /** Try to parse the header from what arrived; `undefined` while more bytes are needed. */
  #tryHeader(final: boolean): { header: EnvelopeHeader; bodyOffset: number } | undefined {
    const head = this.#head!.subarray(0, this.#headLength);
    if (!final && head.length < this.#nextTry) return undefined;
    try {
      return parseHeader(head, this.options.maxEdks, [LAYOUT_FRAMED], 'prefix');
    } catch (e) {
      if (!final && isTruncation(e)) {
        this.#nextTry = Math.max(head.length + 1, head.length * 2);
        return undefined;
      }
      throw e;
    }
  }

  async #start(header: EnvelopeHeader, rest: Uint8Array, emit: Emit): Promise<void> {
    this.#head = undefined;
    // Copy what came after the header: the caller's chunk may be reused while the provider is awaited.
    const pending = new Uint8Array(rest);
    const { cipher, keyId } = await beginFramedDecryption(header, this.options, this.binding, this.parallel);
    this.#cipher = cipher;
    this.#info = { header, keyId };
    this.#size = header.segmentSize! + TAG_LENGTH;
    this.#buf = new Uint8Array(this.#size);
    this.#flight = new InOrder(this.parallel);
    await this.#body(pending, emit);
  }

  #open(sealed: Uint8Array, last: boolean, emit: Emit): Promise<void> {
    if (this.#index >= SEGMENT_LIMITS.maxSegments) throw new MalformedEnvelopeError(`more than ${SEGMENT_LIMITS.maxSegments} segments`);
    return this.#flight!.push(this.#cipher!.openAsync(this.#index++, last, sealed), this.#emitter(emit));
  }

  async #body(data: Uint8Array, emit: Emit): Promise<void> {
    const size = this.#size;
    const buf = this.#buf!;
    let pos = 0;
    while (pos < data.length) {
      if (this.#fill === size) {
        await this.#open(buf, false, emit);
        this.#fill = 0;
      }
      if (this.#fill === 0 && data.length - pos > size) {
        await this.#open(data.subarray(pos, pos + size), false, emit);
        pos += size;
        continue;
      }
      const n = Math.min(size - this.#fill, data.length - pos);
      buf.set(data.subarray(pos, pos + n), this.#fill);
      this.#fill += n;
      pos += n;
    }
  }

  /** Take more envelope bytes; emits the plaintext of every segment that verified. */
  async write(data: Uint8Array, emit: Emit): Promise<void> {
    if (this.#head !== undefined) {
      const needed = this.#headLength + data.length;
      if (needed > this.#head.length) {
        const grown = new Uint8Array(Math.max(needed, this.#head.length * 2));
        grown.set(this.#head.subarray(0, this.#headLength));
        this.#head = grown;
      }
      this.#head.set(data, this.#headLength);
      this.#headLength = needed;
      const parsed = this.#tryHeader(false);
      if (parsed) return this.#start(parsed.header, this.#head.subarray(parsed.bodyOffset, this.#headLength), emit);
      // Unreachable for a header within the format's limits (the parse succeeds or fails before); a guard all the same.
      if (this.#headLength > maxHeaderBytes(this.options.maxEdks)) throw new MalformedEnvelopeError('header longer than the format allows');
      return;
    }
    return this.#body(data, emit);
  }

  /** The input ended: parse what is left, open the last segment, check the length rules (SPEC.md §14.4). */
  async end(emit: Emit): Promise<void> {
    if (this.#head !== undefined) {
      const parsed = this.#tryHeader(true);
      if (!parsed) throw new MalformedEnvelopeError('truncated: header');
      // The whole input is here: a body shorter than a tag is refused before any provider is asked.
      if (this.#headLength - parsed.bodyOffset < TAG_LENGTH) throw new MalformedEnvelopeError('truncated: body');
      await this.#start(parsed.header, this.#head!.subarray(parsed.bodyOffset, this.#headLength), emit);
    }
    // The middle segments still in flight (parallel) come first, as a serial reader opens them before the end:
    // a tag failure among them is the error, not the length of what is left.
    await this.#flight!.drain(this.#emitter(emit));
    if (this.#fill < TAG_LENGTH || (this.#index > 0 && this.#fill === TAG_LENGTH)) {
      throw new MalformedEnvelopeError(this.#index === 0 && this.#fill < TAG_LENGTH ? 'truncated: body' : 'truncated: the last segment is shorter than a tag, or empty after a full one');
    }
    await this.#open(this.#buf!.subarray(0, this.#fill), true, emit);
    await this.#flight!.drain(this.#emitter(emit));
    this.dispose();
  }

  /** Erase the key and what is held. Idempotent. */
  dispose(): void {
    this.#flight?.clear();
    this.#cipher?.dispose();
    if (this.#buf) wipe(this.#buf);
    this.#head = undefined;
  }
}

