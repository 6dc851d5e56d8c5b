/**
 * Byte helpers: wiping, constant-time comparison, strict UTF-8, and the
 * bounded reader/writer used by every binary format in SPEC.md §1.1.
 * @module
 */
import { MalformedEnvelopeError } from '../core/errors.js';

/** Overwrite each buffer with zeros. Accepts undefined entries so it can run in `finally`. */
export function wipe(...buffers: (Uint8Array | undefined | null)[]): void {
  for (const b of buffers) if (b) b.fill(0);
}

/** Compare two byte arrays without an early exit on the first difference. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

// The intrinsic accessors of %TypedArray%.prototype, taken once at load time: called on a
// value, they read its internal slots and run no code of the value's own (a subclass or an
// object that redefines `length` cannot lie to them). The toStringTag getter returns
// undefined, without throwing, for anything that is not a typed array (proxies included).
const TYPED_ARRAY_PROTO: object = Object.getPrototypeOf(Uint8Array.prototype);
function intrinsicGetter(name: PropertyKey): (this: unknown) => unknown {
  return Object.getOwnPropertyDescriptor(TYPED_ARRAY_PROTO, name)!.get!;
}
const tagOf = intrinsicGetter(Symbol.toStringTag);
const lengthOf = intrinsicGetter('length') as (this: unknown) => number;
const byteOffsetOf = intrinsicGetter('byteOffset') as (this: unknown) => number;
const bufferOf = intrinsicGetter('buffer') as (this: unknown) => ArrayBufferLike;
const keysOf = (TYPED_ARRAY_PROTO as { keys: (this: unknown) => unknown }).keys;

/**
 * True when the view's memory is gone: its ArrayBuffer was transferred or detached, or it was a
 * resizable buffer shrunk below the view. Such a view reads as empty through the intrinsic
 * getters; the intrinsic `keys` method validates it (ValidateTypedArray) and throws. Never throws.
 */
function isDetachedView(value: unknown): boolean {
  if (lengthOf.call(value) !== 0) return false;
  try {
    keysOf.call(value);
    return false;
  } catch {
    return true;
  }
}

/**
 * True for a real Uint8Array (or subclass, such as Node's Buffer, or one from another realm)
 * whose memory is still there and whose `length` tells the truth. Never throws.
 *
 * The test is the engine's brand check (the `%TypedArray%.prototype[Symbol.toStringTag]`
 * getter), not `instanceof` or `constructor.name`, which any object can claim. A view of a
 * detached ArrayBuffer, and an object whose `length` (own or inherited) differs from the
 * intrinsic length, are refused (so is a view a shrunk resizable buffer left out of bounds).
 * Code that keeps reading the value should read it through
 * {@link byteView}, which no getter of the value can change.
 */
export function isBytes(value: unknown): value is Uint8Array {
  try {
    if (tagOf.call(value) !== 'Uint8Array' || isDetachedView(value)) return false;
    // `length` as property access sees it: the intrinsic getter for an honest array, else whatever
    // an own or inherited property answers (a getter of the caller's runs here, inside the try).
    return (value as Uint8Array).length === lengthOf.call(value);
  } catch {
    return false;
  }
}

/**
 * A plain `Uint8Array` over the same memory as `value` (no copy), built from the intrinsic
 * buffer, offset and length: later reads of its `length`, `slice` or `subarray` run no code of
 * the caller's (a Buffer's `slice`, a subclass's getters). `undefined` when `value` is not
 * {@link isBytes}. Never throws.
 */
export function byteView(value: unknown): Uint8Array | undefined {
  if (!isBytes(value)) return undefined;
  try {
    return new Uint8Array(bufferOf.call(value), byteOffsetOf.call(value), lengthOf.call(value));
  } catch {
    return undefined;
  }
}

/** The intrinsic byte length of a value that passed {@link isBytes} (0 once its buffer is detached). Never throws. */
export function byteLengthOf(value: Uint8Array): number {
  try {
    return lengthOf.call(value);
  } catch {
    return 0;
  }
}

/** True for a view of memory that another thread may write while it is read (a SharedArrayBuffer). Never throws. */
export function isSharedMemory(value: Uint8Array): boolean {
  try {
    return Object.prototype.toString.call(bufferOf.call(value)) !== '[object ArrayBuffer]';
  } catch {
    return false;
  }
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** True when the string has no lone surrogates (so UTF-8 encoding is lossless). */
export function isWellFormed(s: string): boolean {
  // Regex fallback for runtimes without String.prototype.isWellFormed.
  const f = (s as { isWellFormed?: () => boolean }).isWellFormed;
  if (typeof f === 'function') return f.call(s);
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

/**
 * UTF-8 bytes of a string (lone surrogates become U+FFFD, as TextEncoder does).
 * Short ASCII strings (ids, labels) are copied here: a call into the runtime's
 * encoder costs more than the copy, and allocates a separate ArrayBuffer.
 */
export function utf8Encode(s: string): Uint8Array {
  const n = s.length;
  if (n <= 64) {
    const out = new Uint8Array(n);
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      out[i] = c;
    }
    if (i === n) return out;
  }
  return encoder.encode(s);
}

/** Bytes in `utf8Encode(s)`, counted without encoding. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3; // other BMP characters, and lone surrogates (U+FFFD)
  }
  return n;
}

const fromCharCode = String.fromCharCode;

/**
 * The string of the `n` bytes of `b` at `at` when they are all ASCII, else undefined (the caller
 * then decodes them as UTF-8). ASCII is valid UTF-8 and decodes to the same code units, so the
 * result is what a UTF-8 decoder gives; for short strings (ids, keys, names) building it here,
 * eight characters a call, costs less than a call into the runtime's decoder.
 */
export function asciiString(b: Uint8Array, at: number, n: number): string | undefined {
  let s = '';
  let i = at;
  const end = at + n;
  for (; i + 8 <= end; i += 8) {
    const c0 = b[i]!, c1 = b[i + 1]!, c2 = b[i + 2]!, c3 = b[i + 3]!, c4 = b[i + 4]!, c5 = b[i + 5]!, c6 = b[i + 6]!, c7 = b[i + 7]!;
    if ((c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7) & 0x80) return undefined;
    s += fromCharCode(c0, c1, c2, c3, c4, c5, c6, c7);
  }
  for (; i < end; i++) {
    const c = b[i]!;
    if (c & 0x80) return undefined;
    s += fromCharCode(c);
  }
  return s;
}

/** Decode UTF-8, or return undefined when the bytes are not valid UTF-8. */
export function utf8DecodeStrict(bytes: Uint8Array): string | undefined {
  if (bytes.length <= 64) {
    const s = asciiString(bytes, 0, bytes.length);
    if (s !== undefined) return s;
  }
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * `buf` if `n` more bytes fit after `pos`, else a buffer twice as large (or more)
 * holding the first `pos` bytes; the old one is wiped, since it may hold secrets.
 */
export function ensureCapacity(buf: Uint8Array, pos: number, n: number): Uint8Array {
  if (pos + n <= buf.length) return buf;
  let size = Math.max(buf.length * 2, 16);
  while (size < pos + n) size *= 2;
  const next = new Uint8Array(size);
  next.set(buf.subarray(0, pos));
  buf.fill(0);
  return next;
}

/** Largest value of the 1-or-2-byte length encoding (SPEC.md §1.1). */
export const MAX_LEN = 0x3fff;

/** Number of bytes `len(n)` takes on the wire (SPEC.md §1.1). */
export function lenSize(n: number): number {
  return n < 0x80 ? 1 : 2;
}

/** Growable writer for the header encodings. */
export class ByteWriter {
  private buf: Uint8Array;
  private pos = 0;
  /** @param initial - a capacity, or an array to write into from its start (exactly sized, it is never replaced). */
  constructor(initial: number | Uint8Array = 256) {
    this.buf = typeof initial === 'number' ? new Uint8Array(initial) : initial;
  }
  private ensure(n: number): void {
    this.buf = ensureCapacity(this.buf, this.pos, n);
  }
  u8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }
  /** `len(n)`: one byte 0..127, or two bytes (0x80|hi7, lo8) for 128..16383. SPEC.md §1.1. */
  len(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > MAX_LEN) throw new RangeError(`length ${n} out of range`);
    if (n < 0x80) return this.u8(n);
    return this.u8(0x80 | (n >> 8)).u8(n & 0xff);
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  /** `len(b.length) || b`. */
  lenBytes(b: Uint8Array): this {
    return this.len(b.length).bytes(b);
  }
  get length(): number {
    return this.pos;
  }
  /** Check that an exactly sized array given to the constructor was filled, neither more nor less. */
  expectFull(out: Uint8Array): void {
    if (this.buf !== out || this.pos !== out.length) throw new Error('internal error: encoded length mismatch');
  }
  /** A copy of what was written; the internal buffer is wiped. */
  finish(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.buf.fill(0);
    return out;
  }
}

/**
 * Bounded reader over untrusted bytes. Every read checks the remaining length
 * first and throws {@link MalformedEnvelopeError} (or the given error factory's error).
 */
export class ByteReader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    private readonly fail: (msg: string) => Error = (m) => new MalformedEnvelopeError(m),
  ) {}
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  u8(what: string): number {
    if (this.remaining < 1) throw this.fail(`truncated: ${what}`);
    return this.buf[this.pos++]!;
  }
  /** Reads `len(n)`, rejecting the non-canonical two-byte form of values below 128, and values above `max`. */
  len(what: string, max: number, min = 0): number {
    const a = this.u8(what);
    let n = a;
    if (a & 0x80) {
      const b = this.u8(what);
      n = ((a & 0x7f) << 8) | b;
      if (n < 0x80) throw this.fail(`non-canonical length: ${what}`);
    }
    if (n > max) throw this.fail(`${what} length ${n} exceeds limit ${max}`);
    if (n < min) throw this.fail(`${what} length ${n} below minimum ${min}`);
    return n;
  }
  /** A view of the next n bytes (no copy). */
  take(n: number, what: string): Uint8Array {
    if (n > this.remaining) throw this.fail(`truncated: ${what}`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  lenBytes(what: string, max: number, min = 0): Uint8Array {
    return this.take(this.len(what, max, min), what);
  }
}

/** Lower-case hexadecimal (Base16) of bytes: for ids, digests and map keys, never for secrets. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += HEX_BYTE[bytes[i]!];
  return out;
}

const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
