/**
 * Value encoding v1 (SPEC.md §11): a deterministic, typed binary encoding of
 * JavaScript values, used inside envelopes by `encryptObject` and field-level
 * encryption. It keeps what JSON loses: `undefined`, `-0`, `NaN`, `±Infinity`,
 * `bigint`, `Date` (invalid ones too), `Uint8Array`, `Map`, `Set`, and strings
 * with lone surrogates. Canonical: the writer writes one encoding per value and
 * the reader accepts only that one (§11.3), in time linear in the input, with
 * the nesting limit counted the same way on both sides (§11.4).
 * @module
 */
import { EnvelopeKitError, InvalidParameterError, MalformedValueError, UnsupportedValueError } from '../core/errors.js';
import { readOptions } from '../internal/options.js';
import { asciiString, isBytes, isWellFormed } from '../internal/bytes.js';

/** First byte of every encoded value. */
export const VALUE_ENCODING_VERSION = 0x01;
/**
 * Default nesting limit (SPEC.md §11.4): the number of containers (arrays,
 * objects, maps, sets) on the way from the top value down to the deepest one,
 * counting the top one as level 1.
 */
export const DEFAULT_MAX_DEPTH = 64;
/** Largest `maxDepth` an option may ask for (SPEC.md §11.4); a larger one is refused. */
export const MAX_DEPTH_LIMIT = 1000;
/** Largest bigint magnitude, in bytes (SPEC.md §11.2): 65,536 bits. */
export const MAX_BIGINT_BYTES = 8192;
/** Largest encoded value, in bytes (SPEC.md §11.1): the plaintext limit of an envelope. */
export const MAX_ENCODED_BYTES = 2 ** 32 - 1;
/** The largest time value a `Date` can hold, in milliseconds either side of 1970 (ECMA-262 §21.4.1.1). */
const MAX_TIME = 8.64e15;

const T_UNDEFINED = 0x00;
const T_NULL = 0x01;
const T_FALSE = 0x02;
const T_TRUE = 0x03;
const T_NUMBER = 0x04;
const T_STRING = 0x05;
const T_STRING16 = 0x06;
const T_BIGINT = 0x07;
const T_DATE = 0x08;
const T_BYTES = 0x09;
const T_ARRAY = 0x0a;
const T_OBJECT = 0x0b;
const T_MAP = 0x0c;
const T_SET = 0x0d;
const T_OBJECT_NULL = 0x0e;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// Intrinsics, read once: a value's own `length`, `byteLength` or `getTime` (or a
// subclass's getter) is never trusted, only the engine's internal slots.
const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
function intrinsicGetter(name: PropertyKey): (this: unknown) => unknown {
  return Object.getOwnPropertyDescriptor(typedArrayPrototype, name)!.get! as (this: unknown) => unknown;
}
const typedArrayTag = intrinsicGetter(Symbol.toStringTag);
const typedArrayLength = intrinsicGetter('length') as (this: unknown) => number;
const typedArrayByteOffset = intrinsicGetter('byteOffset') as (this: unknown) => number;
const typedArrayBuffer = intrinsicGetter('buffer') as (this: unknown) => ArrayBufferLike;
const dateGetTime = Date.prototype.getTime as (this: unknown) => number;

/**
 * A plain `Uint8Array` over the same memory as `value`, read through the
 * engine's own getters (so a subclass or an own property that lies about the
 * length is not believed), or undefined when `value` is not a `Uint8Array` at
 * all (another typed array, a `DataView`, an object that only claims to be one).
 * @throws TypeError when the buffer is detached.
 */
function plainBytes(value: unknown): Uint8Array | undefined {
  if (typedArrayTag.call(value) !== 'Uint8Array') return undefined;
  return new Uint8Array(typedArrayBuffer.call(value), typedArrayByteOffset.call(value), typedArrayLength.call(value));
}

function isIdentifier(k: string): boolean {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k);
}
/** Append a property step to a `$.a.b[2]` path (for names the caller chose, such as selectors; never for keys of a value). */
export function pathKey(path: string, key: string): string {
  return isIdentifier(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/**
 * The array index a property key denotes (a canonical decimal integer from 0
 * to 2^32 − 2), or -1: ECMA-262 lists these keys of an object first, in
 * ascending order, then the others in insertion order (SPEC.md §11.3).
 */
function arrayIndex(k: string): number {
  const n = k.length;
  if (n === 0 || n > 10) return -1;
  const c0 = k.charCodeAt(0);
  if (c0 < 0x30 || c0 > 0x39 || (c0 === 0x30 && n > 1)) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = k.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v <= 4294967294 ? v : -1;
}

/** Position of the first key out of the canonical order (SPEC.md §11.3), or -1. */
function keyOrderBreak(keys: readonly string[]): number {
  let last = -1;
  let named = false;
  for (let i = 0; i < keys.length; i++) {
    const c = keys[i]!.charCodeAt(0);
    if (c >= 0x30 && c <= 0x39) {
      const idx = arrayIndex(keys[i]!);
      if (idx >= 0) {
        if (named || idx <= last) return i;
        last = idx;
        continue;
      }
    }
    named = true;
  }
  return -1;
}

/**
 * Where the encoder is in the value: the root's text (`$`), or a step below a
 * parent. Kept as steps and turned into text only for an error message:
 * building the text of every property's path cost more than encoding it.
 * A step names a position, never a key: keys of a value are data
 * (`$[property 2][1]`, `$[entry 0].key`, `$[item 3]`), all counted from 0.
 */
type Path = string | PathStep;
interface PathStep {
  readonly parent: Path;
  readonly index: number;
  /** 0 property, 1 array index, 2 map entry key, 3 map entry value, 4 set item. */
  readonly kind: 0 | 1 | 2 | 3 | 4;
}

function pathText(p: Path): string {
  if (typeof p === 'string') return p;
  const parent = pathText(p.parent);
  switch (p.kind) {
    case 0:
      return `${parent}[property ${p.index}]`;
    case 1:
      return `${parent}[${p.index}]`;
    case 2:
      return `${parent}[entry ${p.index}].key`;
    case 3:
      return `${parent}[entry ${p.index}].value`;
    default:
      return `${parent}[item ${p.index}]`;
  }
}

/** Digit value of a lower-case hex character code (what `bigint.toString(16)` writes). */
function hexDigit(c: number): number {
  return c <= 0x39 ? c - 0x30 : c - 0x57;
}
/** 2^(8 × MAX_BIGINT_BYTES): the smallest magnitude that does not fit. */
const BIGINT_LIMIT = 1n << BigInt(MAX_BIGINT_BYTES * 8);
const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * The encoder's starting buffer, kept between calls (wiped each time) and lent
 * to one encoder at a time: a fresh 256-byte array per value is an allocation
 * outside the JS heap, which costs more than encoding a small record. An
 * encoder that finds it lent out (a getter in the value encoding another value)
 * makes its own.
 */
let spare: { buf: Uint8Array; view: DataView } | undefined = (() => {
  const buf = new Uint8Array(1024);
  return { buf, view: new DataView(buf.buffer) };
})();

/** The encoder's reused buffer when no encoder holds it, for the tests that check it is left zeroed. @internal */
export function _encoderSpare(): Uint8Array | undefined {
  return spare?.buf;
}

class Encoder {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  readonly stack = new Set<object>();
  readonly #lent: { buf: Uint8Array; view: DataView } | undefined;
  /** The furthest `pos + n` that `ensure` has granted: nothing is written at or past it. */
  #extent = 0;
  constructor(readonly maxDepth: number) {
    this.#lent = spare;
    spare = undefined;
    this.buf = this.#lent?.buf ?? new Uint8Array(256);
    this.view = this.#lent?.view ?? new DataView(this.buf.buffer);
  }

  /**
   * Wipe what was written and give the spare buffer back. Every write lies below the furthest
   * extent `ensure` granted (fixLength and the ASCII fast path can leave bytes past `pos`, never
   * past that), so the wipe stops there. An outgrown spare was wiped when the data moved.
   */
  release(): void {
    this.buf.fill(0, 0, Math.min(this.#extent, this.buf.length));
    if (this.#lent) spare = this.#lent;
  }

  /** Make room for `n` more bytes; the encoding is bounded by MAX_ENCODED_BYTES before anything is allocated. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need > this.#extent) this.#extent = need;
    if (need <= this.buf.length) return;
    if (need > MAX_ENCODED_BYTES) throw new UnsupportedValueError('$', `the encoding would be longer than ${MAX_ENCODED_BYTES} bytes`);
    const size = Math.min(Math.max(this.buf.length * 2, need), MAX_ENCODED_BYTES);
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf.fill(0); // it may hold plaintext
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  /** Unsigned LEB128, canonical (SPEC.md §11.1). */
  uvar(n: number): void {
    this.ensure(8);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }
  f64(x: number): void {
    this.ensure(8);
    if (Number.isNaN(x)) {
      this.view.setUint32(this.pos, 0x7ff80000);
      this.view.setUint32(this.pos + 4, 0);
    } else this.view.setFloat64(this.pos, x);
    this.pos += 8;
  }
  string(s: string): void {
    const n = s.length;
    if (n < 128) {
      // ASCII fast path: one length byte, one byte per character, no call into the runtime's encoder.
      this.ensure(n + 2);
      const b = this.buf;
      const at = this.pos + 2;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        b[at + i] = c;
      }
      if (i === n) {
        b[this.pos] = T_STRING;
        b[this.pos + 1] = n;
        this.pos = at + n;
        return;
      }
      // Not ASCII: the general path below writes over the bytes just written.
    }
    if (isWellFormed(s)) {
      this.u8(T_STRING);
      // Fast path for ASCII-sized strings: worst case 3 bytes per UTF-16 unit.
      this.ensure(s.length * 3 + 9);
      const start = this.pos;
      this.pos += s.length < 128 ? 1 : 9; // reserve the length, fixed up below
      const { written } = encoder.encodeInto(s, this.buf.subarray(this.pos));
      this.fixLength(start, s.length < 128 ? 1 : 9, written);
    } else {
      this.u8(T_STRING16);
      this.uvar(s.length);
      this.ensure(s.length * 2);
      for (let i = 0; i < s.length; i++) {
        this.view.setUint16(this.pos, s.charCodeAt(i));
        this.pos += 2;
      }
    }
  }
  /** Write the uvarint length `n` of the `written` bytes placed after a `reserved`-byte gap at `start`. */
  private fixLength(start: number, reserved: number, written: number): void {
    let needed = 1;
    for (let v = written; v >= 0x80; v = Math.floor(v / 0x80)) needed++;
    if (needed !== reserved) {
      this.buf.copyWithin(start + needed, start + reserved, start + reserved + written);
    }
    let n = written;
    let p = start;
    while (n >= 0x80) {
      this.buf[p++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[p] = n;
    this.pos = start + needed + written;
  }
  /** SPEC.md §11.2 tag 0x07, in time linear in the size: through the hex digits, never by repeated shifts. */
  bigint(v: bigint, path: Path): void {
    const neg = v < 0n;
    const m = neg ? -v : v;
    // Bounded before any work on the digits (a comparison looks at the sizes first).
    if (m >= BIGINT_LIMIT) throw new UnsupportedValueError(pathText(path), `bigints larger than ${MAX_BIGINT_BYTES} bytes cannot be encoded`);
    const hex = m === 0n ? '' : m.toString(16);
    const n = (hex.length + 1) >> 1;
    this.ensure(4 + n);
    this.buf[this.pos++] = T_BIGINT;
    this.buf[this.pos++] = neg ? 1 : 0;
    this.uvar(n);
    const b = this.buf;
    let p = this.pos;
    let i = 0;
    if (hex.length & 1) b[p++] = hexDigit(hex.charCodeAt(i++));
    for (; i < hex.length; i += 2) b[p++] = (hexDigit(hex.charCodeAt(i)) << 4) | hexDigit(hex.charCodeAt(i + 1));
    this.pos = p;
  }

  /**
   * Write `v` when it is a primitive whose encoding cannot fail (a string, a number, a boolean,
   * `undefined`, `null`), and say so; containers below the top write their children through it, so
   * that a path step is made only for a child that needs one (a container, a value that may fail).
   * The bytes are those {@link value} writes.
   */
  leaf(v: unknown): boolean {
    switch (typeof v) {
      case 'string':
        this.string(v);
        return true;
      case 'number':
        this.u8(T_NUMBER);
        this.f64(v);
        return true;
      case 'boolean':
        this.u8(v ? T_TRUE : T_FALSE);
        return true;
      case 'undefined':
        this.u8(T_UNDEFINED);
        return true;
      case 'object':
        if (v !== null) return false;
        this.u8(T_NULL);
        return true;
      default:
        return false;
    }
  }

  value(v: unknown, path: Path, depth: number): void {
    switch (typeof v) {
      case 'undefined':
        return this.u8(T_UNDEFINED);
      case 'boolean':
        return this.u8(v ? T_TRUE : T_FALSE);
      case 'number':
        this.u8(T_NUMBER);
        return this.f64(v);
      case 'string':
        return this.string(v);
      case 'bigint':
        return this.bigint(v, path);
      case 'function':
        throw new UnsupportedValueError(pathText(path), 'functions cannot be encoded');
      case 'symbol':
        throw new UnsupportedValueError(pathText(path), 'symbols cannot be encoded');
      case 'object':
        break;
      default:
        throw new UnsupportedValueError(pathText(path), `unsupported type ${typeof v}`);
    }
    if (v === null) return this.u8(T_NULL);
    const o = v as object;
    let proto: unknown;
    try {
      proto = Object.getPrototypeOf(o);
    } catch (e) {
      throw new UnsupportedValueError(pathText(path), 'value could not be read', { cause: e });
    }
    // Dates and bytes are leaves: they do not count towards the nesting limit (SPEC.md §11.4).
    if (proto === Date.prototype) {
      let t: number;
      try {
        t = dateGetTime.call(o);
      } catch (e) {
        throw new UnsupportedValueError(pathText(path), 'objects that only claim to be a Date cannot be encoded', { cause: e });
      }
      this.u8(T_DATE);
      return this.f64(t);
    }
    if (isBytes(o)) {
      let bytes: Uint8Array | undefined;
      try {
        bytes = plainBytes(o);
      } catch (e) {
        throw new UnsupportedValueError(pathText(path), 'the bytes could not be read (a detached buffer)', { cause: e });
      }
      if (bytes === undefined) throw new UnsupportedValueError(pathText(path), 'objects that only claim to be a Uint8Array cannot be encoded');
      const n = bytes.length;
      this.ensure(9 + n);
      this.buf[this.pos++] = T_BYTES;
      this.uvar(n);
      this.buf.set(bytes, this.pos);
      this.pos += n;
      return;
    }
    if (depth >= this.maxDepth) throw new UnsupportedValueError(pathText(path), `nesting deeper than ${this.maxDepth}`);
    if (this.stack.has(o)) throw new UnsupportedValueError(pathText(path), 'cycle (the value contains itself)');
    this.stack.add(o);
    try {
      if (Array.isArray(o)) {
        if (proto !== Array.prototype) throw new UnsupportedValueError(pathText(path), 'array subclasses cannot be encoded');
        this.u8(T_ARRAY);
        const keys = this.ownKeys(o, path);
        const n = o.length;
        if (keys.length !== n) throw new UnsupportedValueError(pathText(path), 'sparse arrays and arrays with extra properties cannot be encoded');
        this.uvar(n);
        for (let i = 0; i < n; i++) {
          const item = this.read(o, i, path, i, 1);
          if (!this.leaf(item)) this.value(item, { parent: path, index: i, kind: 1 }, depth + 1);
        }
        return;
      }
      if (proto === Map.prototype) {
        this.u8(T_MAP);
        const m = o as Map<unknown, unknown>;
        const n = m.size;
        this.uvar(n);
        let i = 0;
        for (const [k, val] of m) {
          if (i === n) break;
          if (!this.leaf(k)) this.value(k, { parent: path, index: i, kind: 2 }, depth + 1);
          if (!this.leaf(val)) this.value(val, { parent: path, index: i, kind: 3 }, depth + 1);
          i++;
        }
        if (i !== n || m.size !== n) throw new UnsupportedValueError(pathText(path), 'the map changed while it was being encoded');
        return;
      }
      if (proto === Set.prototype) {
        this.u8(T_SET);
        const s = o as Set<unknown>;
        const n = s.size;
        this.uvar(n);
        let i = 0;
        for (const item of s) {
          if (i === n) break;
          if (!this.leaf(item)) this.value(item, { parent: path, index: i, kind: 4 }, depth + 1);
          i++;
        }
        if (i !== n || s.size !== n) throw new UnsupportedValueError(pathText(path), 'the set changed while it was being encoded');
        return;
      }
      if (proto === Object.prototype || proto === null) {
        this.u8(proto === null ? T_OBJECT_NULL : T_OBJECT);
        const keys = this.ownKeys(o, path);
        // An ordinary object always lists its keys in this order; a proxy may not.
        const at = keyOrderBreak(keys);
        if (at >= 0) throw new UnsupportedValueError(pathText({ parent: path, index: at, kind: 0 }), 'keys not in the order of an ordinary object (a proxy?)');
        this.uvar(keys.length);
        for (let i = 0; i < keys.length; i++) {
          const k = keys[i]!;
          this.string(k);
          const item = this.read(o, k, path, i, 0);
          if (!this.leaf(item)) this.value(item, { parent: path, index: i, kind: 0 }, depth + 1);
        }
        return;
      }
      const name = (proto as { constructor?: { name?: unknown } } | undefined)?.constructor?.name;
      throw new UnsupportedValueError(pathText(path), `instances of ${typeof name === 'string' && name ? name : 'a class'} cannot be encoded`);
    } finally {
      this.stack.delete(o);
    }
  }

  ownKeys(o: object, path: Path): string[] {
    let keys: (string | symbol)[];
    let names: string[];
    try {
      keys = Reflect.ownKeys(o);
      names = Object.keys(o);
    } catch (e) {
      throw new UnsupportedValueError(pathText(path), 'keys could not be read', { cause: e });
    }
    // Fast path: when every own key but an array's `length` is an enumerable string,
    // `Object.keys` lists exactly those keys, in the same order.
    if (names.length === keys.length - (Array.isArray(o) ? 1 : 0)) return names;
    const out: string[] = [];
    for (const k of keys) {
      if (typeof k === 'symbol') throw new UnsupportedValueError(pathText(path), 'symbol-keyed properties cannot be encoded');
      if (Array.isArray(o) && k === 'length') continue;
      let d: PropertyDescriptor | undefined;
      try {
        d = Object.getOwnPropertyDescriptor(o, k);
      } catch (e) {
        throw new UnsupportedValueError(pathText(path), 'keys could not be read', { cause: e });
      }
      if (d && !d.enumerable) throw new UnsupportedValueError(pathText({ parent: path, index: out.length, kind: 0 }), 'non-enumerable properties cannot be encoded');
      out.push(k);
    }
    return out;
  }

  /** Read property `k` of `o`, the `index`-th step of `kind` below `parent` (a path made only for an error). */
  read(o: object, k: string | number, parent: Path, index: number, kind: PathStep['kind']): unknown {
    try {
      return (o as Record<string | number, unknown>)[k];
    } catch (e) {
      throw new UnsupportedValueError(pathText({ parent, index, kind }), 'reading the property threw', { cause: e });
    }
  }

  /** A copy of what was written; the working buffers are wiped, even if the copy cannot be made. */
  finish(): Uint8Array {
    try {
      return this.buf.slice(0, this.pos);
    } finally {
      this.release();
    }
  }
}

/**
 * The `maxDepth` option, checked (SPEC.md §11.4): an integer from 1 to
 * {@link MAX_DEPTH_LIMIT}; `undefined` gives {@link DEFAULT_MAX_DEPTH}.
 * @throws InvalidParameterError for anything else (a larger value is refused, not clamped).
 * @internal
 */
export function checkMaxDepth(maxDepth: unknown): number {
  if (maxDepth === undefined) return DEFAULT_MAX_DEPTH;
  if (typeof maxDepth !== 'number' || !Number.isInteger(maxDepth) || maxDepth < 1 || maxDepth > MAX_DEPTH_LIMIT) {
    throw new InvalidParameterError(`"maxDepth" must be an integer from 1 to ${MAX_DEPTH_LIMIT}`);
  }
  return maxDepth;
}

/**
 * Encode a value (SPEC.md §11). Deterministic: equal values with the same
 * property and entry order give the same bytes, and only the canonical
 * encoding is ever written.
 * @param value - any supported value (SPEC.md §11.2).
 * @param options - `maxDepth`: nesting limit, 1 to {@link MAX_DEPTH_LIMIT} (default {@link DEFAULT_MAX_DEPTH}).
 * @returns the encoding, a new array owned by the caller.
 * @throws InvalidParameterError for a bad option.
 * @throws UnsupportedValueError with the `path` of the first value that cannot be encoded
 *   (`$[property 0][2]`: positions, never keys).
 * @example
 * ```ts
 * import { decodeValue, encodeValue } from 'envelope-kit';
 * const bytes = encodeValue({ n: -0, when: new Date(0), big: 2n ** 64n });
 * const back = decodeValue(bytes);
 * ```
 */
export function encodeValue(value: unknown, options: { maxDepth?: number } = {}): Uint8Array {
  const { maxDepth } = readOptions(options, ['maxDepth'], 'encodeValue options');
  return encodeWith(value, checkMaxDepth(maxDepth)).finish();
}

/** Run an encoder over `value`; on failure its buffers are wiped and the error is the library's own. */
function encodeWith(value: unknown, maxDepth: number): Encoder {
  const e = new Encoder(maxDepth);
  try {
    e.u8(VALUE_ENCODING_VERSION);
    e.value(value, '$', 0);
  } catch (err) {
    e.release();
    // A safety net: whatever a hostile value throws surfaces as the library's own error.
    if (err instanceof EnvelopeKitError) throw err;
    throw new UnsupportedValueError('$', 'the value could not be read', { cause: err });
  }
  return e;
}

/** An encoding lent by {@link encodeValueLent}: `bytes` holds it until `release()` wipes it. */
export interface LentEncoding {
  /** The encoding, a view of the encoder's own buffer: read it, never keep or hand it out. */
  readonly bytes: Uint8Array;
  /** Wipe the encoding and give the buffer back. Idempotent. */
  release(): void;
}

/**
 * {@link encodeValue} for a caller that only reads the encoding (encryptObject seals it): the
 * bytes stay in the encoder's reused buffer, a view of which is lent until `release()` (call it
 * in a `finally`), instead of being copied into a new array. While it is lent, other encodings
 * use buffers of their own. `maxDepth` is already checked.
 * @internal
 */
export function encodeValueLent(value: unknown, maxDepth: number): LentEncoding {
  const e = encodeWith(value, maxDepth);
  let lent = true;
  return {
    bytes: e.buf.subarray(0, e.pos),
    release(): void {
      if (!lent) return;
      lent = false;
      e.release();
    },
  };
}

/** Longest string the decoder builds itself when it is ASCII (SPEC.md §11.2 tag 0x05); longer ones go to TextDecoder. */
const SHORT_ASCII = 64;
class Decoder {
  pos = 0;
  readonly view: DataView;
  /** Every byte array handed out, so that they can be wiped when the value is not returned. */
  readonly made: Uint8Array[] = [];
  constructor(
    readonly buf: Uint8Array,
    readonly maxDepth: number,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  fail(m: string): never {
    throw new MalformedValueError(`encoded value is malformed: ${m}`);
  }
  u8(): number {
    if (this.pos >= this.buf.length) this.fail('truncated');
    return this.buf[this.pos++]!;
  }
  uvar(): number {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      n += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) this.fail('non-canonical varint');
        if (n > Number.MAX_SAFE_INTEGER) this.fail('varint too large');
        return n;
      }
      mul *= 0x80;
    }
    return this.fail('varint too long');
  }
  /** A count of items each at least `minBytes` long: checked against what is left before anything is allocated. */
  count(minBytes: number): number {
    const n = this.uvar();
    if (n * minBytes > this.buf.length - this.pos) this.fail('count exceeds the remaining bytes');
    return n;
  }
  f64(): number {
    if (this.pos + 8 > this.buf.length) this.fail('truncated');
    const x = this.view.getFloat64(this.pos);
    if (Number.isNaN(x) && (this.view.getUint32(this.pos) !== 0x7ff80000 || this.view.getUint32(this.pos + 4) !== 0)) {
      this.fail('non-canonical NaN');
    }
    this.pos += 8;
    return x;
  }
  take(n: number): Uint8Array {
    if (n > this.buf.length - this.pos) this.fail('truncated');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  stringAt(tag: number): string {
    if (tag === T_STRING) {
      const n = this.count(1);
      if (n <= SHORT_ASCII) {
        const s = asciiString(this.buf, this.pos, n);
        if (s !== undefined) {
          this.pos += n;
          return s;
        }
      }
      const bytes = this.take(n);
      try {
        return decoder.decode(bytes);
      } catch {
        return this.fail('invalid UTF-8');
      }
    }
    if (tag === T_STRING16) {
      const n = this.count(2);
      let s = '';
      for (let i = 0; i < n; i++) {
        s += String.fromCharCode(this.view.getUint16(this.pos));
        this.pos += 2;
      }
      if (isWellFormed(s)) this.fail('well-formed string in UTF-16 form');
      return s;
    }
    return this.fail('expected a string');
  }
  /** SPEC.md §11.2 tag 0x07, in time linear in the size: through the hex digits, never by repeated shifts. */
  bigint(): bigint {
    const sign = this.u8();
    if (sign > 1) this.fail('bad bigint sign');
    const n = this.uvar();
    if (n > MAX_BIGINT_BYTES) this.fail(`bigint larger than ${MAX_BIGINT_BYTES} bytes`);
    const bytes = this.take(n);
    if (n === 0) {
      if (sign === 1) this.fail('negative zero bigint');
      return 0n;
    }
    if (bytes[0] === 0) this.fail('non-canonical bigint');
    let m: bigint;
    if (n <= 6) {
      let x = 0;
      for (let i = 0; i < n; i++) x = x * 256 + bytes[i]!;
      m = BigInt(x);
    } else {
      const digits = new Array<string>(n);
      for (let i = 0; i < n; i++) digits[i] = HEX_BYTE[bytes[i]!]!;
      m = BigInt('0x' + digits.join(''));
    }
    return sign ? -m : m;
  }
  /** A Map key or Set item: `-0` is never written there, since both store it as `+0` (SPEC.md §11.3). */
  member(depth: number): unknown {
    const v = this.value(depth);
    if (v === 0 && 1 / v < 0) this.fail('-0 as a map key or set item');
    return v;
  }
  value(depth: number): unknown {
    const tag = this.u8();
    switch (tag) {
      case T_UNDEFINED:
        return undefined;
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_NUMBER:
        return this.f64();
      case T_STRING:
      case T_STRING16:
        return this.stringAt(tag);
      case T_BIGINT:
        return this.bigint();
      case T_DATE: {
        // Only what getTime() can return: NaN, or an integer in ±8.64e15 other than -0.
        const t = this.f64();
        if (t === t && (!Number.isInteger(t) || t > MAX_TIME || t < -MAX_TIME || (t === 0 && 1 / t < 0))) this.fail('not a Date time value');
        return new Date(t);
      }
      case T_BYTES: {
        const out = this.take(this.count(1)).slice();
        this.made.push(out);
        return out;
      }
    }
    if (tag < T_ARRAY || tag > T_OBJECT_NULL) this.fail(`unknown tag 0x${tag.toString(16)}`);
    if (depth >= this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`);
    switch (tag) {
      case T_ARRAY: {
        const n = this.count(1);
        const out = new Array<unknown>(n);
        for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
        return out;
      }
      case T_OBJECT:
      case T_OBJECT_NULL: {
        const n = this.count(2);
        const out: Record<string, unknown> = tag === T_OBJECT ? {} : Object.create(null);
        let lastIndex = -1;
        let named = false;
        for (let i = 0; i < n; i++) {
          const k = this.stringAt(this.u8());
          // SPEC.md §11.3: array-index keys first, strictly ascending; then the other keys, each once.
          const idx = arrayIndex(k);
          if (idx >= 0) {
            if (named || idx <= lastIndex) this.fail('object keys out of order');
            lastIndex = idx;
          } else {
            named = true;
            if (Object.prototype.hasOwnProperty.call(out, k)) this.fail('duplicate key');
          }
          const value = this.value(depth + 1);
          // A plain assignment makes the same own data property, and faster, unless the prototype
          // has something by that name (`__proto__`, a method, a setter someone added): then define it.
          if (tag === T_OBJECT_NULL || !(k in Object.prototype)) out[k] = value;
          else Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
        }
        return out;
      }
      case T_MAP: {
        const n = this.count(2);
        const out = new Map<unknown, unknown>();
        for (let i = 0; i < n; i++) {
          const k = this.member(depth + 1);
          if (out.has(k)) this.fail('duplicate map key');
          out.set(k, this.value(depth + 1));
        }
        return out;
      }
      case T_SET: {
        const n = this.count(1);
        const out = new Set<unknown>();
        for (let i = 0; i < n; i++) {
          const item = this.member(depth + 1);
          if (out.has(item)) this.fail('duplicate set item');
          out.add(item);
        }
        return out;
      }
      default:
        return this.fail('unknown tag');
    }
  }
}

/**
 * Decode, and say which byte arrays the value holds (so that a caller that does
 * not return the value can wipe them). On failure every one made is wiped.
 * @internal
 */
export function decodeValueParts(bytes: unknown, maxDepth: number): { value: unknown; byteArrays: readonly Uint8Array[] } {
  let input: Uint8Array | undefined;
  try {
    input = plainBytes(bytes);
  } catch (e) {
    throw new InvalidParameterError('the encoded value could not be read (a detached buffer)', { cause: e });
  }
  if (input === undefined) throw new InvalidParameterError('the encoded value must be a Uint8Array');
  const d = new Decoder(input, maxDepth);
  try {
    if (d.u8() !== VALUE_ENCODING_VERSION) d.fail('unknown value encoding version');
    const value = d.value(0);
    if (d.pos !== input.length) d.fail('trailing bytes');
    return { value, byteArrays: d.made };
  } catch (e) {
    for (const b of d.made) b.fill(0);
    if (e instanceof EnvelopeKitError) throw e;
    // A safety net: nothing above should throw anything else.
    throw new MalformedValueError('encoded value is malformed', { cause: e });
  }
}

/**
 * Decode bytes made by {@link encodeValue} (SPEC.md §11). Only the canonical
 * encoding is accepted (§11.3), so `encodeValue(decodeValue(b))` gives back `b`
 * for every `b` this accepts.
 * @param bytes - the encoding; not modified.
 * @param options - `maxDepth`: nesting limit, 1 to {@link MAX_DEPTH_LIMIT} (default {@link DEFAULT_MAX_DEPTH}).
 * @throws InvalidParameterError for a bad argument or option.
 * @throws MalformedValueError (`ERR_MALFORMED_VALUE`) for bytes that are not a canonical encoding.
 */
export function decodeValue(bytes: Uint8Array, options: { maxDepth?: number } = {}): unknown {
  const { maxDepth } = readOptions(options, ['maxDepth'], 'decodeValue options');
  return decodeValueParts(bytes, checkMaxDepth(maxDepth)).value;
}
