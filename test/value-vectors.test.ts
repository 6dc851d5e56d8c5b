/**
 * The value vectors (SPEC.md §10.1, §11) against an independent reader written
 * from SPEC.md §11 alone, which can be told to skip any one rule of §11.3: the
 * strict reader accepts every success vector (giving its tagged JSON) and
 * refuses every failure vector for the rule the vector names; skipping that
 * one rule, it accepts the failure vector, so each breaks only its rule.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

class Broke extends Error {
  constructor(readonly rule: number) {
    super(`breaks rule ${rule}`);
  }
}

const TAGS = new Set(['$undefined', '$number', '$bigint', '$date', '$bytes', '$map', '$set', '$object-null-prototype', '$object']);
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenient = new TextDecoder('utf-8', { ignoreBOM: true });
const wellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
const isIndex = (k: string) => /^(0|[1-9][0-9]{0,9})$/.test(k) && Number(k) <= 2 ** 32 - 2;
const taggedNumber = (x: number): unknown =>
  Number.isNaN(x) ? { $number: 'NaN' } : x === Infinity ? { $number: 'Infinity' } : x === -Infinity ? { $number: '-Infinity' } : Object.is(x, -0) ? { $number: '-0' } : x;

/** Read an encoded value (SPEC.md §11) into tagged JSON, enforcing every rule of §11.3 but those in `skip`. */
function read(b: Uint8Array, skip: ReadonlySet<number> = new Set()): unknown {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 0;
  const need = (rule: number, ok: boolean) => {
    if (!ok && !skip.has(rule)) throw new Broke(rule);
  };
  const left = () => b.length - p;
  const byte = () => {
    if (p >= b.length) throw new Broke(3);
    return b[p++]!;
  };
  const uvar = () => {
    let n = 0;
    let mul = 1;
    for (let i = 1; ; i++) {
      const x = byte();
      n += (x & 0x7f) * mul;
      if ((x & 0x80) === 0) {
        need(6, !(x === 0 && i > 1));
        need(5, n <= Number.MAX_SAFE_INTEGER && i <= 8);
        return n;
      }
      mul *= 128;
    }
  };
  const count = (min: number) => {
    const n = uvar();
    need(7, n * min <= left());
    return n;
  };
  const take = (n: number) => {
    if (n > left()) throw new Broke(3);
    p += n;
    return b.subarray(p - n, p);
  };
  const f64 = () => {
    if (left() < 8) throw new Broke(3);
    const x = view.getFloat64(p);
    need(8, !Number.isNaN(x) || (view.getUint32(p) === 0x7ff80000 && view.getUint32(p + 4) === 0));
    p += 8;
    return x;
  };
  const string = (tag: number): string => {
    if (tag === 0x05) {
      const bytes = take(count(1));
      try {
        return utf8.decode(bytes);
      } catch {
        need(9, false);
        return lenient.decode(bytes);
      }
    }
    const n = count(2);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(view.getUint16(take(2).byteOffset - b.byteOffset));
    need(10, !wellFormed(s));
    return s;
  };
  /** Members of a Map or Set: equal only if both primitives with the same tagged JSON (SameValueZero, -0 aside). */
  const member = (seen: Set<string>, depth: number, rule: number) => {
    const v = value(depth);
    need(21, !(typeof v === 'object' && v !== null && (v as { $number?: string }).$number === '-0'));
    const primitive = v === null || typeof v !== 'object' || '$number' in v || '$bigint' in v || '$undefined' in v;
    if (primitive) {
      const key = JSON.stringify(v);
      need(rule, !seen.has(key));
      seen.add(key);
    }
    return v;
  };
  const value = (depth: number): unknown => {
    const tag = byte();
    switch (tag) {
      case 0x00:
        return { $undefined: true };
      case 0x01:
        return null;
      case 0x02:
        return false;
      case 0x03:
        return true;
      case 0x04:
        return taggedNumber(f64());
      case 0x05:
      case 0x06:
        return string(tag);
      case 0x07: {
        const sign = byte();
        need(11, sign <= 1);
        const n = uvar();
        need(14, n <= 8192);
        const mag = take(n);
        need(12, n === 0 || mag[0] !== 0);
        need(13, !(n === 0 && sign === 1));
        const m = n === 0 ? 0n : BigInt('0x' + Buffer.from(mag).toString('hex'));
        return { $bigint: (sign ? -m : m).toString() };
      }
      case 0x08: {
        const t = f64();
        need(15, Number.isNaN(t) || (Number.isInteger(t) && Math.abs(t) <= 8.64e15 && !Object.is(t, -0)));
        const d = new Date(t);
        return { $date: Number.isNaN(d.getTime()) ? 'invalid' : d.toISOString() };
      }
      case 0x09:
        return { $bytes: Buffer.from(take(count(1))).toString('hex') };
    }
    if (tag > 0x0e) throw new Broke(4);
    need(22, depth < 64);
    if (tag === 0x0a) {
      const n = count(1);
      return Array.from({ length: n }, () => value(depth + 1));
    }
    if (tag === 0x0b || tag === 0x0e) {
      const n = count(2);
      const out: Record<string, unknown> = {};
      let named = false;
      let last = -1;
      for (let i = 0; i < n; i++) {
        const kt = byte();
        need(16, kt === 0x05 || kt === 0x06);
        const k = kt === 0x05 || kt === 0x06 ? string(kt) : JSON.stringify((p--, value(depth + 1)));
        if (isIndex(k)) {
          need(17, !named && Number(k) > last);
          last = Number(k);
        } else named = true;
        need(18, !Object.prototype.hasOwnProperty.call(out, k));
        Object.defineProperty(out, k, { value: value(depth + 1), enumerable: true, writable: true, configurable: true });
      }
      if (tag === 0x0e) return { '$object-null-prototype': out };
      const keys = Object.keys(out);
      return keys.length === 1 && TAGS.has(keys[0]!) ? { $object: out } : out;
    }
    const seen = new Set<string>();
    if (tag === 0x0c) {
      const n = count(2);
      return { $map: Array.from({ length: n }, () => [member(seen, depth + 1, 19), value(depth + 1)]) };
    }
    const n = count(1);
    return { $set: Array.from({ length: n }, () => member(seen, depth + 1, 20)) };
  };
  need(1, byte() === 0x01);
  const v = value(0);
  need(2, p === b.length);
  return v;
}

const dir = path.join(import.meta.dirname, 'vectors', 'records');
const files = (await readdir(dir)).filter((f) => f.startsWith('value-') && f.endsWith('.txt')).sort();
const vectors = await Promise.all(
  files.map(async (f) => new Map((await readFile(path.join(dir, f), 'utf8')).split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)] as [string, string]))),
);
const field = (v: Map<string, string>, k: string) => {
  const x = v.get(k);
  if (x === undefined) throw new Error(`vector has no "${k}"`);
  return x;
};

describe('value vectors through an independent reader (SPEC.md §11)', () => {
  it('cover every rule of §11.3', () => {
    const rules = new Set(vectors.filter((v) => v.has('rule')).map((v) => Number(v.get('rule'))));
    expect([...rules].sort((a, b) => a - b)).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
  });

  for (const v of vectors) {
    const name = field(v, 'name');
    const bytes = new Uint8Array(Buffer.from(field(v, 'encoding'), 'hex'));
    if (field(v, 'expect') === 'value') {
      it(`${name}: read as its tagged JSON`, () => {
        expect(JSON.stringify(read(bytes))).toBe(JSON.stringify(JSON.parse(field(v, 'value'))));
      });
    } else {
      const rule = Number(field(v, 'rule'));
      it(`${name}: refused for rule ${rule} alone`, () => {
        expect(field(v, 'expect')).toBe('ERR_MALFORMED_VALUE');
        expect(() => read(bytes)).toThrow(expect.objectContaining({ rule }));
        if (rule === 5 || rule === 7) {
          // These protect the reader from a count the bytes cannot hold: without them it fails
          // later, as truncated, or first tries to allocate for the count (§11.3).
          expect(() => read(bytes, new Set([5, 7]))).toThrow();
        } else if (rule !== 3 && rule !== 4) {
          // Rules 3 and 4 cannot be skipped: there is nothing to read.
          expect(() => read(bytes, new Set([rule]))).not.toThrow();
        }
      });
    }
  }
});
