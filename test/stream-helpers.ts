/**
 * Helpers of the framed-envelope suites (SPEC.md §14): streams of bytes in chunks of chosen
 * sizes, a reader that keeps what a stream released before it failed, an independent writer of
 * framed bodies on `node:crypto` (§14.2, §14.3), and a model of what each reader must answer for
 * a body whose segments were cut, moved, dropped or replaced (§14.4).
 * @module
 */
import { createCipheriv } from 'node:crypto';
import { expect } from 'vitest';
import {
  type DataKey,
  type DecryptRequest,
  type DecryptedDataKey,
  EnvelopeKitError,
  type ErrorCode,
  type GenerateDataKeyRequest,
  type KeyProvider,
  type RangeSource,
  inspect,
} from '../src/index.js';
import { expandOne } from './spec-crypto.js';

export const TAG = 16;
export const MF: ErrorCode = 'ERR_MALFORMED_ENVELOPE';
export const DF: ErrorCode = 'ERR_DECRYPTION_FAILED';
export const IP: ErrorCode = 'ERR_INVALID_PARAMETER';

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/**
 * A stream serving `bytes` in fresh chunks whose sizes cycle through `sizes` (a size of 0 sends
 * an empty chunk). One chunk per pull, so a reader sees them one at a time.
 */
export function streamOf(bytes: Uint8Array, sizes: readonly number[] = [Math.max(1, bytes.length)]): ReadableStream<Uint8Array> {
  let o = 0;
  let k = 0;
  let sentEmpty = false;
  return new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (o >= bytes.length) {
          // an empty input still sends one empty chunk when the sizes ask for it
          if (bytes.length === 0 && sizes[0] === 0 && !sentEmpty) {
            sentEmpty = true;
            c.enqueue(new Uint8Array(0));
            return;
          }
          c.close();
          return;
        }
        const n = sizes[k++ % sizes.length]!;
        c.enqueue(bytes.slice(o, o + n));
        o += n;
      },
    },
    { highWaterMark: 0 },
  );
}

/** What a stream released before it ended or failed. */
export interface Drained {
  readonly bytes: Uint8Array;
  readonly chunks: number;
  readonly error?: unknown;
}

/** Read `rs` to its end or to its error, keeping every chunk it released (a read is always pending). */
export async function drain(rs: ReadableStream<Uint8Array>): Promise<Drained> {
  const parts: Uint8Array[] = [];
  const reader = rs.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes: concat(parts), chunks: parts.length };
      parts.push(value);
    }
  } catch (error) {
    return { bytes: concat(parts), chunks: parts.length, error };
  }
}

/** Read `rs` to its end; throws what it failed with. */
export async function collect(rs: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const d = await drain(rs);
  if (d.error !== undefined) throw d.error;
  return d.bytes;
}

/** The code of an EnvelopeKitError (and fail the test for anything else). */
export function codeOf(e: unknown): ErrorCode {
  if (!(e instanceof EnvelopeKitError)) throw new Error(`expected an EnvelopeKitError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`, { cause: e });
  return e.code;
}

/** Settle `p` (or see that it is still pending after the macrotask queue ran once). */
export async function settled<T>(p: Promise<T>): Promise<{ state: 'fulfilled'; value: T } | { state: 'rejected'; reason: unknown } | { state: 'pending' }> {
  const pending = Symbol('pending');
  const r = await Promise.race([
    p.then(
      (value) => ({ state: 'fulfilled' as const, value }),
      (reason: unknown) => ({ state: 'rejected' as const, reason }),
    ),
    new Promise<typeof pending>((res) => setTimeout(() => res(pending), 0)),
  ]);
  return r === pending ? { state: 'pending' } : r;
}

/** Expect a promise (or a call) to reject with an EnvelopeKitError of one of `codes`; returns the error. */
export async function rejectsWith(f: Promise<unknown> | (() => unknown), codes: ErrorCode | readonly ErrorCode[]): Promise<EnvelopeKitError> {
  const allowed = typeof codes === 'string' ? [codes] : codes;
  let error: unknown;
  try {
    await (typeof f === 'function' ? f() : f);
  } catch (e) {
    error = e;
  }
  if (error === undefined) expect.fail(`expected a rejection with ${allowed.join(' or ')}, but it succeeded`);
  const code = codeOf(error);
  expect(allowed, `${(error as Error).name}: ${(error as Error).message}`).toContain(code);
  return error as EnvelopeKitError;
}

/** The parts of a well-formed framed envelope: its header, its sealed segments. */
export interface Framed {
  readonly envelope: Uint8Array;
  readonly header: Uint8Array;
  readonly segments: readonly Uint8Array[];
  readonly segmentSize: number;
  readonly plaintextLength: number;
}

export function framedParts(envelope: Uint8Array): Framed {
  const info = inspect(envelope);
  const segmentSize = info.segmentSize!;
  const header = envelope.subarray(0, info.headerLength);
  return { envelope, header, segments: splitBody(envelope.subarray(info.headerLength), segmentSize), segmentSize, plaintextLength: info.plaintextLength };
}

/** §14.4 step 1: the lengths a framed body of `B` bytes may have. */
export function lengthRuleHolds(bodyLength: number, segmentSize: number): boolean {
  const S = segmentSize + TAG;
  if (bodyLength < TAG) return false;
  const n = Math.ceil(bodyLength / S);
  const last = bodyLength - (n - 1) * S;
  return last >= TAG && !(n > 1 && last === TAG);
}

/** A body cut as a reader cuts it: runs of `segmentSize + 16` bytes, the rest last (at least one piece). */
export function splitBody(body: Uint8Array, segmentSize: number): Uint8Array[] {
  const S = segmentSize + TAG;
  const out: Uint8Array[] = [];
  for (let o = 0; o < body.length; o += S) out.push(body.subarray(o, Math.min(o + S, body.length)));
  if (out.length === 0) out.push(body.subarray(0, 0));
  return out;
}

/**
 * What a reader answers for the original header followed by `body` (§14.4), taking as given that a
 * segment opens only when it is byte for byte the writer's segment of that index, with the same
 * last flag (a GCM forgery aside).
 */
export type Outcome = { ok: true } | { ok: false; code: ErrorCode; /** segments a stream may release before it fails */ releasedSegments: number };

function opens(orig: Framed, i: number, bytes: Uint8Array, last: boolean): boolean {
  const n = orig.segments.length;
  return i < n && last === (i === n - 1) && sameBytes(bytes, orig.segments[i]!);
}

/** A reader that knows the length (`decrypt`): the length rules first, then every segment in order. */
export function modelKnownLength(orig: Framed, body: Uint8Array): Outcome {
  if (!lengthRuleHolds(body.length, orig.segmentSize)) return { ok: false, code: MF, releasedSegments: 0 };
  const segs = splitBody(body, orig.segmentSize);
  for (let i = 0; i < segs.length; i++) if (!opens(orig, i, segs[i]!, i === segs.length - 1)) return { ok: false, code: DF, releasedSegments: i };
  return { ok: true };
}

/** The streaming reader: middle segments as they complete, then the length rules, then the last. */
export function modelStream(orig: Framed, body: Uint8Array): Outcome {
  const segs = splitBody(body, orig.segmentSize);
  for (let i = 0; i < segs.length - 1; i++) if (!opens(orig, i, segs[i]!, false)) return { ok: false, code: DF, releasedSegments: i };
  if (!lengthRuleHolds(body.length, orig.segmentSize)) return { ok: false, code: MF, releasedSegments: segs.length - 1 };
  const i = segs.length - 1;
  return opens(orig, i, segs[i]!, true) ? { ok: true } : { ok: false, code: DF, releasedSegments: i };
}

/**
 * The range reader asked for `[offset, offset + length)`: the length rules, the range against the
 * plaintext length the body implies, then only the segments that cover the range.
 */
export function modelRange(orig: Framed, body: Uint8Array, offset: number, length: number): { ok: true } | { ok: false; code: ErrorCode } {
  if (!lengthRuleHolds(body.length, orig.segmentSize)) return { ok: false, code: MF };
  const segs = splitBody(body, orig.segmentSize);
  const plaintextLength = body.length - TAG * segs.length;
  if (offset > plaintextLength || length > plaintextLength - offset) return { ok: false, code: IP };
  // An empty range opens the one segment at its offset, or the last (SPEC.md §14.4).
  const first = Math.min(Math.floor(offset / orig.segmentSize), segs.length - 1);
  const last = length === 0 ? first : Math.floor((offset + length - 1) / orig.segmentSize);
  for (let i = first; i <= last; i++) if (!opens(orig, i, segs[i]!, i === segs.length - 1)) return { ok: false, code: DF };
  return { ok: true };
}

/**
 * SPEC.md §3.1, read independently of the library: the authenticated header of a well-formed
 * header, the header without its EDK count and EDKs (`header[0 .. c) || header[e .. h)`: for
 * layout 0x02 that keeps the segment size and the commitment).
 */
export function authenticatedHeader(header: Uint8Array): Uint8Array {
  let p = 5 + 16; // magic, version, suite, layout, message id
  const len = (): number => {
    const a = header[p++]!;
    return a < 0x80 ? a : ((a & 0x7f) << 8) | header[p++]!; // SPEC.md §1.1
  };
  const entries = header[p++]!;
  const skip = () => {
    const n = len();
    p += n;
  };
  for (let i = 0; i < entries * 2; i++) skip(); // context keys and values
  const c = p;
  const edks = header[p++]!;
  for (let i = 0; i < edks * 3; i++) skip(); // provider id, key id, blob of each EDK
  const out = concat([header.subarray(0, c), header.subarray(p)]);
  expect(out.length).toBe(c + header.length - p);
  return out;
}

/**
 * An independent framed writer (SPEC.md §14.2, §14.3) on `node:crypto`: the body the writer must
 * make for this header, data key, record binding and plaintext. Every segment's associated data is
 * the authenticated header ({@link authenticatedHeader}).
 */
export function referenceBody(dataKey: Uint8Array, header: Uint8Array, binding: Uint8Array, plaintext: Uint8Array, segmentSize: number): Uint8Array {
  const messageId = header.subarray(5, 21);
  const { first: contentKey } = expandOne(dataKey, 'envelope-kit/v1/suite-01/layout-02/keys', messageId, binding);
  const n = Math.max(1, Math.ceil(plaintext.length / segmentSize));
  const aad = authenticatedHeader(header);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const nonce = new Uint8Array(12);
    new DataView(nonce.buffer).setUint32(7, i);
    nonce[11] = i === n - 1 ? 1 : 0;
    const c = createCipheriv('aes-256-gcm', contentKey, nonce, { authTagLength: 16 });
    c.setAAD(aad);
    parts.push(c.update(plaintext.subarray(i * segmentSize, (i + 1) * segmentSize)), c.final(), c.getAuthTag());
  }
  return concat(parts);
}

/** §14.2: the commitment a header of this data key, message id and binding holds. */
export function referenceCommitment(dataKey: Uint8Array, header: Uint8Array, binding: Uint8Array): Uint8Array {
  return expandOne(dataKey, 'envelope-kit/v1/suite-01/layout-02/keys', header.subarray(5, 21), binding).second;
}

/** A plaintext whose every 4 bytes differ from their neighbours' (so a wrong offset shows), cheap to make. */
export function patterned(length: number, seed = 0): Uint8Array {
  const out = new Uint8Array(length);
  const words = Math.floor(length / 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < words; i++) view.setUint32(i * 4, Math.imul(i + seed, 2654435761) >>> 0);
  for (let i = words * 4; i < length; i++) out[i] = (i * 131 + seed) & 0xff;
  return out;
}

/** Wraps a provider: counts its calls and keeps a copy of the last data key it generated. */
export class CountingProvider implements KeyProvider {
  readonly providerId: string;
  generateCalls = 0;
  decryptCalls = 0;
  readonly generateRequests: GenerateDataKeyRequest[] = [];
  lastDataKey: Uint8Array | undefined;
  constructor(readonly inner: KeyProvider) {
    this.providerId = inner.providerId;
  }
  async generateDataKey(request: GenerateDataKeyRequest): Promise<DataKey> {
    this.generateCalls++;
    this.generateRequests.push({ ...request });
    const answer = await this.inner.generateDataKey(request);
    this.lastDataKey = answer.plaintext.slice();
    return answer;
  }
  async decrypt(request: DecryptRequest): Promise<DecryptedDataKey> {
    this.decryptCalls++;
    return this.inner.decrypt(request);
  }
  reset(): void {
    this.generateCalls = 0;
    this.decryptCalls = 0;
    this.generateRequests.length = 0;
  }
}

/** A range source over `bytes` that records every read. */
export function recordingSource(bytes: Uint8Array): RangeSource & { reads: [number, number][] } {
  const reads: [number, number][] = [];
  return {
    size: bytes.length,
    reads,
    read(offset: number, length: number) {
      reads.push([offset, length]);
      return bytes.slice(offset, offset + length);
    },
  };
}
