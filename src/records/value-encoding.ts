/**
 * Value encoding v1 (SPEC.md §11): a deterministic, typed binary encoding of
 * JavaScript values, used inside envelopes by `encryptObject` and field-level
 * encryption. It keeps what JSON loses: `undefined`, `-0`, `NaN`, `±Infinity`,
 * `bigint`, `Date` (invalid ones too), `Uint8Array`, `Map`, `Set`, and strings
 * with lone surrogates.
 * @module
 */
import { EnvelopeKitError, InvalidParameterError, MalformedEnvelopeError, UnsupportedValueError } from '../core/errors.js';
import { readOptions } from '../internal/options.js';
import { ensureCapacity, isBytes, isWellFormed } from '../internal/bytes.js';

/** First byte of every encoded value. */
export const VALUE_ENCODING_VERSION = 0x01;
/** Default nesting limit (containers inside containers). */
export const DEFAULT_MAX_DEPTH = 64;
/** Hard nesting limit; `maxDepth` options cannot exceed it. */
export const MAX_DEPTH_LIMIT = 1000;

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

function isIdentifier(k: string): boolean {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k);
}
/** Append a property step to a `$.a.b[2]` path. */
export function pathKey(path: string, key: string): string {
  return isIdentifier(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/**
 * Where the encoder is in the value: the root's text (`$`), or a step below a
 * parent. Kept as steps and turned into text (`$.a.b[2]`) only for an error
 * message: building the text of every property's path cost more than encoding it.
 */
type Path = string | PathStep;
interface PathStep {
  readonly parent: Path;
  readonly key: string | number;
  /** 0 property, 1 array index, 2 map entry key, 3 map entry value, 4 set item. */
  readonly kind: 0 | 1 | 2 | 3 | 4;
}

function pathText(p: Path): string {
  if (typeof p === 'string') return p;
  const parent = pathText(p.parent);
  switch (p.kind) {
    case 0:
      return pathKey(parent, p.key as string);
    case 1:
      return `${parent}[${p.key}]`;
    case 2:
      return `${parent}<entry ${p.key}>.key`;
    case 3:
      return `${parent}<entry ${p.key}>.value`;
    default:
      return `${parent}<item ${p.key}>`;
  }
}

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

class Encoder {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  readonly stack = new Set<object>();
  readonly #lent: { buf: Uint8Array; view: DataView } | undefined;
  constructor(readonly maxDepth: number) {
    this.#lent = spare;
    spare = undefined;
    this.buf = this.#lent?.buf ?? new Uint8Array(256);
    this.view = this.#lent?.view ?? new DataView(this.buf.buffer);
  }

  /** Wipe what was written and give the spare buffer back (outgrown, it was wiped when the data moved). */
  release(): void {
    // The whole buffer: fixLength and the ASCII fast path can leave bytes past `pos`.
    this.buf.fill(0);
    if (this.#lent) {
      this.#lent.buf.fill(0);
      spare = this.#lent;
    }
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.buf = ensureCapacity(this.buf, this.pos, n);
    this.view = new DataView(this.buf.buffer);
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
      case 'bigint': {
        this.u8(T_BIGINT);
        const neg = v < 0n;
        let m = neg ? -v : v;
        const bytes: number[] = [];
        while (m > 0n) {
          bytes.push(Number(m & 0xffn));
          m >>= 8n;
        }
        this.u8(neg ? 1 : 0);
        this.uvar(bytes.length);
        this.ensure(bytes.length);
        for (let i = bytes.length - 1; i >= 0; i--) this.buf[this.pos++] = bytes[i]!;
        return;
      }
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
    if (depth >= this.maxDepth) throw new UnsupportedValueError(pathText(path), `nesting deeper than ${this.maxDepth}`);
    if (this.stack.has(o)) throw new UnsupportedValueError(pathText(path), 'cycle (the value contains itself)');
    let proto: unknown;
    try {
      proto = Object.getPrototypeOf(o);
    } catch (e) {
      throw new UnsupportedValueError(pathText(path), 'value could not be read', { cause: e });
    }
    if (o instanceof Date && proto === Date.prototype) {
      this.u8(T_DATE);
      return this.f64(o.getTime());
    }
    if (isBytes(o)) {
      this.u8(T_BYTES);
      this.uvar(o.length);
      this.ensure(o.length);
      this.buf.set(o, this.pos);
      this.pos += o.length;
      return;
    }
    this.stack.add(o);
    try {
      if (Array.isArray(o)) {
        if (proto !== Array.prototype) throw new UnsupportedValueError(pathText(path), 'array subclasses cannot be encoded');
        this.u8(T_ARRAY);
        const keys = this.ownKeys(o, path);
        if (keys.length !== o.length) throw new UnsupportedValueError(pathText(path), 'sparse arrays and arrays with extra properties cannot be encoded');
        this.uvar(o.length);
        for (let i = 0; i < o.length; i++) {
          const p: PathStep = { parent: path, key: i, kind: 1 };
          this.value(this.read(o, i, p), p, depth + 1);
        }
        return;
      }
      if (o instanceof Map && proto === Map.prototype) {
        this.u8(T_MAP);
        this.uvar(o.size);
        let i = 0;
        for (const [k, val] of o) {
          this.value(k, { parent: path, key: i, kind: 2 }, depth + 1);
          this.value(val, { parent: path, key: i, kind: 3 }, depth + 1);
          i++;
        }
        return;
      }
      if (o instanceof Set && proto === Set.prototype) {
        this.u8(T_SET);
        this.uvar(o.size);
        let i = 0;
        for (const item of o) this.value(item, { parent: path, key: i++, kind: 4 }, depth + 1);
        return;
      }
      if (proto === Object.prototype || proto === null) {
        this.u8(proto === null ? T_OBJECT_NULL : T_OBJECT);
        const keys = this.ownKeys(o, path);
        this.uvar(keys.length);
        for (const k of keys) {
          const p: PathStep = { parent: path, key: k, kind: 0 };
          this.string(k);
          this.value(this.read(o, k, p), p, depth + 1);
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
      const d = Object.getOwnPropertyDescriptor(o, k);
      if (d && !d.enumerable) throw new UnsupportedValueError(pathKey(pathText(path), k), 'non-enumerable properties cannot be encoded');
      out.push(k);
    }
    return out;
  }

  read(o: object, k: string | number, path: Path): unknown {
    try {
      return (o as Record<string | number, unknown>)[k];
    } catch (e) {
      throw new UnsupportedValueError(pathText(path), 'reading the property threw', { cause: e });
    }
  }

  finish(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.release();
    return out;
  }
}

/**
 * Encode a value (SPEC.md §11). Deterministic: equal values with the same
 * property and entry order give the same bytes.
 * @throws UnsupportedValueError naming the path (`$.a.b[2]`) of the first value that cannot be encoded.
 */
export function encodeValue(value: unknown, options: { maxDepth?: number } = {}): Uint8Array {
  const { maxDepth } = readOptions(options, ['maxDepth'], 'encodeValue options');
  if (maxDepth !== undefined && (typeof maxDepth !== 'number' || !Number.isInteger(maxDepth) || maxDepth < 1)) {
    throw new InvalidParameterError('"maxDepth" must be a positive integer');
  }
  const e = new Encoder(Math.min((maxDepth as number | undefined) ?? DEFAULT_MAX_DEPTH, MAX_DEPTH_LIMIT));
  e.u8(VALUE_ENCODING_VERSION);
  try {
    e.value(value, '$', 0);
  } catch (err) {
    e.release();
    // A safety net: whatever a hostile value throws surfaces as the library's own error.
    if (err instanceof EnvelopeKitError) throw err;
    throw new UnsupportedValueError('$', 'the value could not be read', { cause: err });
  }
  return e.finish();
}

class Decoder {
  pos = 0;
  readonly view: DataView;
  constructor(
    readonly buf: Uint8Array,
    readonly maxDepth: number,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  fail(m: string): never {
    throw new MalformedEnvelopeError(`encoded value is malformed: ${m}`);
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
      try {
        return decoder.decode(this.take(this.count(1)));
      } catch (e) {
        if (e instanceof MalformedEnvelopeError) throw e;
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
      case T_BIGINT: {
        const sign = this.u8();
        if (sign > 1) this.fail('bad bigint sign');
        const bytes = this.take(this.count(1));
        if (bytes.length > 0 && bytes[0] === 0) this.fail('non-canonical bigint');
        if (bytes.length === 0 && sign === 1) this.fail('negative zero bigint');
        let m = 0n;
        for (const b of bytes) m = (m << 8n) | BigInt(b);
        return sign ? -m : m;
      }
      case T_DATE:
        return new Date(this.f64());
      case T_BYTES:
        return this.take(this.count(1)).slice();
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
        for (let i = 0; i < n; i++) {
          const k = this.stringAt(this.u8());
          if (Object.prototype.hasOwnProperty.call(out, k)) this.fail('duplicate key');
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
          const k = this.value(depth + 1);
          if (out.has(k)) this.fail('duplicate map key');
          out.set(k, this.value(depth + 1));
        }
        return out;
      }
      case T_SET: {
        const n = this.count(1);
        const out = new Set<unknown>();
        for (let i = 0; i < n; i++) {
          const item = this.value(depth + 1);
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
 * Decode bytes made by {@link encodeValue}. Only the canonical encoding is accepted.
 * @throws MalformedEnvelopeError
 */
export function decodeValue(bytes: Uint8Array, options: { maxDepth?: number } = {}): unknown {
  if (!isBytes(bytes)) throw new MalformedEnvelopeError('encoded value must be a Uint8Array');
  const { maxDepth } = readOptions(options, ['maxDepth'], 'decodeValue options');
  if (maxDepth !== undefined && (typeof maxDepth !== 'number' || !Number.isInteger(maxDepth) || maxDepth < 1)) {
    throw new InvalidParameterError('"maxDepth" must be a positive integer');
  }
  const d = new Decoder(bytes, Math.min((maxDepth as number | undefined) ?? DEFAULT_MAX_DEPTH, MAX_DEPTH_LIMIT));
  if (d.u8() !== VALUE_ENCODING_VERSION) d.fail('unknown value encoding version');
  const v = d.value(0);
  if (d.pos !== bytes.length) d.fail('trailing bytes');
  return v;
}
