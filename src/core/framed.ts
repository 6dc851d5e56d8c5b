/**
 * Framed envelopes (layout 0x02, SPEC.md §14): the segment nonces, the length rules, the key
 * set-up, and the segment ciphers that the in-memory, streaming and range readers and writers
 * share. A framed envelope is the header of §3.1 with a segment size, then segments sealed on
 * their own with AES-256-GCM under one content key, each nonce the segment's index and a flag
 * marking the last (the STREAM construction, as age's payload uses it).
 * @module
 */
import { NONCE_LENGTH, TAG_LENGTH, type AesGcm } from './aead/types.js';
import { WEBCRYPTO_MIN_BYTES, importWebKey, prefersWebCrypto } from './aead/webcrypto.js';
import { type CheckedContext, contextContains } from './context.js';
import { DecryptionFailedError, InvalidParameterError, MalformedEnvelopeError } from './errors.js';
import { LAYOUT_FRAMED, SEGMENT_LIMITS, type EnvelopeHeader, authenticatedHeaderOf, encodeHeader } from './format.js';
import { constantTimeEqual, wipe } from '../internal/bytes.js';
import { deriveFramedKeys, hmacOf } from './kdf.js';
import type { KeyProvider, KeySpec } from './provider.js';
import { type CheckedDecryptOptions, type Recipient, checkReservedBinding, obtainDataKey, unwrapAny } from './envelope.js';

/**
 * The nonce of segment `index` (SPEC.md §14.3): the index as an 11-byte big-endian integer, then
 * `0x01` for the last segment and `0x00` for any other.
 * @param out - a 12-byte array to write it into (it is returned).
 */
export function segmentNonce(index: number, last: boolean, out: Uint8Array = new Uint8Array(NONCE_LENGTH)): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index >= SEGMENT_LIMITS.maxSegments) throw new RangeError(`"index" expected an integer from 0 to 2^32 - 1, got ${index}`);
  // Indexes are below 2^32, so the first 7 bytes of the 11-byte counter are zero.
  out.fill(0, 0, 7);
  out[7] = index >>> 24;
  out[8] = (index >>> 16) & 0xff;
  out[9] = (index >>> 8) & 0xff;
  out[10] = index & 0xff;
  out[11] = last ? 0x01 : 0x00;
  return out;
}

/** The shape of a framed body of a known length (SPEC.md §14.4 step 1). */
export interface FramedLayout {
  /** Number of segments, at least 1. */
  readonly segments: number;
  /** Bytes of the last sealed segment (16 to segment size + 16). */
  readonly lastSealedLength: number;
  /** Bytes of plaintext: the body's length less 16 per segment. */
  readonly plaintextLength: number;
}

/**
 * The segments of a framed body of `bodyLength` bytes, checked against the rules of SPEC.md
 * §14.4 step 1.
 * @throws MalformedEnvelopeError for a body no writer makes.
 */
export function framedLayout(bodyLength: number, segmentSize: number): FramedLayout {
  const sealed = segmentSize + TAG_LENGTH;
  if (bodyLength < TAG_LENGTH) throw new MalformedEnvelopeError('truncated: body');
  const segments = Math.ceil(bodyLength / sealed);
  if (segments > SEGMENT_LIMITS.maxSegments) throw new MalformedEnvelopeError(`more than ${SEGMENT_LIMITS.maxSegments} segments`);
  const lastSealedLength = bodyLength - (segments - 1) * sealed;
  if (lastSealedLength < TAG_LENGTH || (segments > 1 && lastSealedLength === TAG_LENGTH)) {
    throw new MalformedEnvelopeError('truncated: the last segment is shorter than a tag, or empty after a full one');
  }
  return { segments, lastSealedLength, plaintextLength: bodyLength - segments * TAG_LENGTH };
}

/** The `segmentSize` option: an integer from 4096 to 16 MiB, 65536 when absent. */
export function checkSegmentSize(value: unknown): number {
  if (value === undefined) return SEGMENT_LIMITS.default;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < SEGMENT_LIMITS.min || value > SEGMENT_LIMITS.max) {
    throw new InvalidParameterError(`"segmentSize" must be an integer from ${SEGMENT_LIMITS.min} to ${SEGMENT_LIMITS.max}`);
  }
  return value;
}

/** Most segments a parallel reader or writer keeps in flight. */
export const MAX_PARALLEL = 64;

/**
 * The `parallel` option: how many segments are sealed or opened at once through the platform's
 * asynchronous WebCrypto AES-GCM (1, the default, seals them one after the other on the `aead`
 * backend). A custom `aead` and `parallel` above 1 exclude each other.
 */
export function checkParallel(value: unknown, aeadGiven: boolean): number {
  if (value === undefined) return 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_PARALLEL) {
    throw new InvalidParameterError(`"parallel" must be an integer from 1 to ${MAX_PARALLEL}`);
  }
  if (value > 1) {
    if (aeadGiven) throw new InvalidParameterError('"parallel" uses the platform\'s WebCrypto AES-GCM: it cannot be combined with "aead"');
    if (webCrypto() === undefined) throw new InvalidParameterError('"parallel" needs WebCrypto (crypto.subtle), which this runtime lacks');
  }
  return value;
}

interface Subtle {
  importKey(format: 'raw', key: Uint8Array, algorithm: 'AES-GCM', extractable: false, usages: ('encrypt' | 'decrypt')[]): Promise<unknown>;
  encrypt(algorithm: { name: 'AES-GCM'; iv: Uint8Array; additionalData: Uint8Array; tagLength: 128 }, key: unknown, data: Uint8Array): Promise<ArrayBuffer>;
  decrypt(algorithm: { name: 'AES-GCM'; iv: Uint8Array; additionalData: Uint8Array; tagLength: 128 }, key: unknown, data: Uint8Array): Promise<ArrayBuffer>;
}

function webCrypto(): Subtle | undefined {
  try {
    const s = (globalThis as { crypto?: { subtle?: unknown } }).crypto?.subtle;
    return s !== null && typeof s === 'object' ? (s as Subtle) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Seals and opens the segments of one framed envelope (SPEC.md §14.3). It holds a copy of the
 * content key until {@link SegmentCipher.dispose}; the synchronous methods run on the `aead`
 * backend, the asynchronous ones on WebCrypto (a key imported once, not extractable) when the
 * cipher was made with `parallel` above 1, else on the backend as well. Both give the same bytes.
 */
export class SegmentCipher {
  readonly #aead: AesGcm;
  readonly #key: Uint8Array;
  readonly #header: Uint8Array;
  readonly #nonce = new Uint8Array(NONCE_LENGTH);
  #webKey: Promise<unknown> | undefined;
  #disposed = false;

  /**
   * @param contentKey - copied; the caller wipes its own.
   * @param header - the authenticated header (SPEC.md §3.1): every segment's associated data.
   */
  constructor(aead: AesGcm, contentKey: Uint8Array, header: Uint8Array, readonly parallel = 1) {
    this.#aead = aead;
    this.#key = new Uint8Array(contentKey);
    this.#header = header;
    if (parallel > 1) {
      const key = new Uint8Array(contentKey);
      const p = webCrypto()!.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']);
      // importKey copies the key before it returns its promise; ours is wiped at once.
      wipe(key);
      this.#webKey = p;
      p.catch(() => {});
    }
  }

  /**
   * The WebCrypto key, imported on first use: always when parallel, and for the browser and edge
   * default backend once a segment of {@link WEBCRYPTO_MIN_BYTES} or more comes (`aead/webcrypto.ts`).
   */
  #webKeyFor(length: number): Promise<unknown> | undefined {
    if (this.#webKey === undefined && prefersWebCrypto(this.#aead, length)) {
      const p = importWebKey(this.#key);
      p.catch(() => {});
      this.#webKey = p;
    }
    return this.#webKey;
  }

  #live(): void {
    if (this.#disposed) throw new InvalidParameterError('this stream has ended: its key was erased');
  }

  /** Seal `chunk` as segment `index` into `out` (`chunk.length + 16` bytes). */
  seal(index: number, last: boolean, chunk: Uint8Array, out: Uint8Array): void {
    this.#live();
    this.#aead.seal(this.#key, segmentNonce(index, last, this.#nonce), this.#header, chunk, out);
  }

  /**
   * Open segment `index` (`sealed`: ciphertext and tag) into `out` (`sealed.length - 16` bytes).
   * @throws DecryptionFailedError when its tag does not verify (`out` is then zeroed).
   */
  open(index: number, last: boolean, sealed: Uint8Array, out: Uint8Array): void {
    this.#live();
    if (!this.#aead.open(this.#key, segmentNonce(index, last, this.#nonce), this.#header, sealed, out)) throw new DecryptionFailedError();
  }

  /**
   * {@link SegmentCipher.seal} into a fresh array; on WebCrypto when parallel. `chunk` is read
   * before this returns, so the caller may reuse it at once.
   */
  sealAsync(index: number, last: boolean, chunk: Uint8Array): Promise<Uint8Array> | Uint8Array {
    this.#live();
    if (this.#webKeyFor(chunk.length) === undefined) {
      const out = new Uint8Array(chunk.length + TAG_LENGTH);
      this.seal(index, last, chunk, out);
      return out;
    }
    const iv = segmentNonce(index, last);
    // WebCrypto copies its inputs when it is called (before the promise settles).
    const key = this.#webKey!;
    const header = this.#header;
    const copy = new Uint8Array(chunk);
    return key.then(async (k) => {
      try {
        return new Uint8Array(await webCrypto()!.encrypt({ name: 'AES-GCM', iv, additionalData: header, tagLength: 128 }, k, copy));
      } finally {
        wipe(copy);
      }
    });
  }

  /**
   * {@link SegmentCipher.open} into a fresh array; on WebCrypto when parallel. `sealed` is read
   * before this returns. Rejects with DecryptionFailedError when the tag does not verify.
   */
  openAsync(index: number, last: boolean, sealed: Uint8Array): Promise<Uint8Array> | Uint8Array {
    this.#live();
    if (this.#webKeyFor(sealed.length - TAG_LENGTH) === undefined) {
      const out = new Uint8Array(sealed.length - TAG_LENGTH);
      this.open(index, last, sealed, out);
      return out;
    }
    const iv = segmentNonce(index, last);
    const header = this.#header;
    const copy = new Uint8Array(sealed);
    return this.#webKey!.then(async (k) => {
      try {
        return new Uint8Array(await webCrypto()!.decrypt({ name: 'AES-GCM', iv, additionalData: header, tagLength: 128 }, k, copy));
      } catch {
        throw new DecryptionFailedError();
      }
    });
  }

  /**
   * {@link SegmentCipher.open} into `out`, on WebCrypto where {@link SegmentCipher.openAsync} would
   * use it (parallel, or the browser and edge default backend for a segment of
   * {@link WEBCRYPTO_MIN_BYTES} or more), synchronously on the backend otherwise.
   * @throws DecryptionFailedError when its tag does not verify (`out` is then zeroed).
   */
  async openInto(index: number, last: boolean, sealed: Uint8Array, out: Uint8Array): Promise<void> {
    this.#live();
    if (this.#webKeyFor(out.length) === undefined) return this.open(index, last, sealed, out);
    let pt: Uint8Array;
    try {
      pt = await this.openAsync(index, last, sealed);
    } catch (e) {
      out.fill(0);
      throw e;
    }
    try {
      out.set(pt);
    } finally {
      wipe(pt);
    }
  }

  /** Erase the content key (the WebCrypto key is dropped; a runtime frees it). Idempotent. */
  dispose(): void {
    this.#disposed = true;
    wipe(this.#key);
    this.#webKey = undefined;
  }
}

/**
 * Begin a framed envelope (SPEC.md §14.5 steps 1 to 3): ask the provider for the data key, derive
 * the content key and the commitment, build the header. The data key and the derived bytes are
 * wiped before this returns.
 * @returns the header (to be written first) and the cipher for its segments (which the caller disposes).
 */
export async function beginFramedEncryption(
  provider: KeyProvider,
  keyId: string,
  keySpec: KeySpec,
  context: CheckedContext,
  aead: AesGcm,
  binding: Uint8Array,
  segmentSize: number,
  parallel: number,
  plaintextLength?: number,
  also: readonly Recipient[] = [],
): Promise<{ header: Uint8Array; cipher: SegmentCipher }> {
  const { dataKey, edks, messageId } = await obtainDataKey(provider, keyId, keySpec, context, plaintextLength, also);
  let keys: Uint8Array | undefined;
  try {
    const derived = deriveFramedKeys(dataKey, messageId, binding, hmacOf(aead));
    keys = derived.bytes;
    const header = encodeHeader({ layout: LAYOUT_FRAMED, messageId, context, encryptedDataKeys: edks, commitment: derived.commitment, segmentSize });
    // SPEC.md §14.3: every segment's associated data is the authenticated header (§3.1).
    return { header, cipher: new SegmentCipher(aead, derived.key, authenticatedHeaderOf(header, context, LAYOUT_FRAMED), parallel) };
  } finally {
    wipe(dataKey, keys);
  }
}

/**
 * Begin reading a framed envelope whose header was parsed (SPEC.md §14.4 step 2, §3.5 steps 1.11
 * to 5): the reserved keys, the required context, a data key from the providers, the key
 * schedule, the commitment (checked in constant time).
 * @returns the cipher of its segments (which the caller disposes) and the key id the provider answered with.
 * @throws DecryptionFailedError, MalformedEnvelopeError and the providers' errors as §3.5 says.
 */
export async function beginFramedDecryption(
  header: EnvelopeHeader,
  options: CheckedDecryptOptions,
  binding: Uint8Array,
  parallel: number,
): Promise<{ cipher: SegmentCipher; keyId: string }> {
  checkReservedBinding(header);
  if (!contextContains(header.context, options.required)) throw new DecryptionFailedError();
  const { dataKey, keyId } = await unwrapAny(header, options.providers);
  let keys: Uint8Array | undefined;
  try {
    const derived = deriveFramedKeys(dataKey, header.messageId, binding, hmacOf(options.aead));
    keys = derived.bytes;
    if (!constantTimeEqual(derived.commitment, header.commitment)) throw new DecryptionFailedError();
    return { cipher: new SegmentCipher(options.aead, derived.key, header.aad, parallel), keyId };
  } finally {
    wipe(dataKey, keys);
  }
}

/**
 * Open a whole framed body held in memory (SPEC.md §14.4): every segment, in order, into one
 * plaintext array.
 * @throws MalformedEnvelopeError for a body of a length no writer makes; DecryptionFailedError for a tag failure.
 */
export function openFramedBody(cipher: SegmentCipher, body: Uint8Array, segmentSize: number): Uint8Array {
  const { segments, plaintextLength } = framedLayout(body.length, segmentSize);
  const out = new Uint8Array(plaintextLength);
  const sealed = segmentSize + TAG_LENGTH;
  try {
    for (let i = 0; i < segments; i++) {
      const start = i * sealed;
      const end = Math.min(start + sealed, body.length);
      cipher.open(i, i === segments - 1, body.subarray(start, end), out.subarray(i * segmentSize, i * segmentSize + (end - start - TAG_LENGTH)));
    }
    return out;
  } catch (e) {
    wipe(out);
    throw e;
  }
}
