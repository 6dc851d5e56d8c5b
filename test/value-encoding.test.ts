import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnvelopeKitError, MalformedValueError, UnsupportedValueError } from '../src/core/errors.js';
import { DEFAULT_MAX_DEPTH, MAX_BIGINT_BYTES, MAX_DEPTH_LIMIT, decodeValue, encodeValue } from '../src/records/value-encoding.js';
import { runs, sameValue, supportedValue } from './helpers.js';

describe('value encoding', () => {
  it('round-trips every supported value exactly (Object.is semantics)', () => {
    fc.assert(
      fc.property(supportedValue, (v) => {
        expect(sameValue(decodeValue(encodeValue(v)), v)).toBe(true);
      }),
      { numRuns: runs(300) },
    );
  });

  it('is deterministic: equal values encode to equal bytes', () => {
    fc.assert(
      fc.property(supportedValue, (v) => {
        const again = decodeValue(encodeValue(v));
        expect(encodeValue(again)).toEqual(encodeValue(v));
      }),
      { numRuns: runs(200) },
    );
  });

  it('keeps the edge cases JSON loses', () => {
    const v = { u: undefined, nz: -0, nan: NaN, inf: -Infinity, big: -(2n ** 100n), d: new Date(NaN), b: new Uint8Array([0, 255]), lone: '\udc00x' };
    const back = decodeValue(encodeValue(v)) as typeof v;
    expect(Object.keys(back)).toEqual(Object.keys(v));
    expect(Object.is(back.nz, -0)).toBe(true);
    expect(back.nan).toBeNaN();
    expect(back.big).toBe(-(2n ** 100n));
    expect(back.d.getTime()).toBeNaN();
    expect(back.lone).toBe('\udc00x');
    expect(back.b).toBeInstanceOf(Uint8Array);
  });

  it('treats __proto__ as an ordinary key', () => {
    const v = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
    const back = decodeValue(encodeValue(v)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(back, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  const unsupported: [string, unknown, string][] = [
    ['function', { a: { lines: ['x', 'y', () => 1] } }, '$[property 0][property 0][2]'],
    ['symbol', { s: Symbol('x') }, '$[property 0]'],
    ['class instance', { when: new (class Thing {})() }, '$[property 0]'],
    ['boxed string', [new String('x')], '$[0]'],
    ['typed array other than Uint8Array', { f: new Float64Array(2) }, '$[property 0]'],
    ['sparse array', { z: 0, a: [1, , 3] }, '$[property 1]'],
    ['symbol key', { [Symbol('k')]: 1 }, '$'],
    ['map value', new Map<unknown, unknown>([['k', 1], [{}, { c: () => 0 }]]), '$[entry 1].value[property 0]'],
    ['map key', new Map([[Symbol('k'), 1]]), '$[entry 0].key'],
    ['set item', new Set([1, 2, () => 0]), '$[item 2]'],
  ];
  for (const [name, value, path] of unsupported) {
    it(`rejects a ${name} with the path ${path}`, () => {
      let err: unknown;
      try {
        encodeValue(value);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UnsupportedValueError);
      expect((err as UnsupportedValueError).code).toBe('ERR_UNSUPPORTED_VALUE');
      expect((err as UnsupportedValueError).path).toBe(path);
    });
  }

  it('rejects cycles, deep nesting and throwing getters without a stack overflow', () => {
    const cyc: Record<string, unknown> = { a: {} };
    (cyc.a as Record<string, unknown>).back = cyc;
    expect(() => encodeValue(cyc)).toThrow(UnsupportedValueError);
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(() => encodeValue(deep)).toThrow(/nesting deeper than 64/);
    const getter = { get boom() { throw new Error('secret-ish'); } };
    expect(() => encodeValue({ x: getter })).toThrow(expect.objectContaining({ path: '$[property 0][property 0]' }));
    const proxy = new Proxy({}, { ownKeys() { throw new Error('no'); } });
    expect(() => encodeValue(proxy)).toThrow(UnsupportedValueError);
    // shared (non-cyclic) references are fine
    const shared = { n: 1 };
    expect(sameValue(decodeValue(encodeValue([shared, shared])), [{ n: 1 }, { n: 1 }])).toBe(true);
  });

  it('honours a custom depth limit', () => {
    expect(() => encodeValue([[[1]]], { maxDepth: 2 })).toThrow(UnsupportedValueError);
    expect(decodeValue(encodeValue([[[1]]], { maxDepth: 3 }), { maxDepth: 3 })).toEqual([[[1]]]);
    expect(() => decodeValue(encodeValue([[[1]]], { maxDepth: 3 }), { maxDepth: 2 })).toThrow(MalformedValueError);
  });

  it('never crashes on arbitrary bytes: only MalformedValueError, never a foreign error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeValue(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(MalformedValueError);
        }
      }),
      { numRuns: runs(2000) },
    );
  });

  it('rejects huge counts before allocating, and non-canonical forms', () => {
    // array claiming 2^50 elements
    expect(() => decodeValue(Uint8Array.of(1, 0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40))).toThrow(MalformedValueError);
    // non-canonical varint (0 in two bytes)
    expect(() => decodeValue(Uint8Array.of(1, 0x05, 0x80, 0x00))).toThrow(/non-canonical/);
    // NaN with a payload
    expect(() => decodeValue(Uint8Array.of(1, 0x04, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1))).toThrow(/NaN/);
    // trailing bytes, unknown version, unknown tag, duplicate key, bigint with a leading zero
    expect(() => decodeValue(Uint8Array.of(1, 0x01, 0x01))).toThrow(/trailing/);
    expect(() => decodeValue(Uint8Array.of(2, 0x01))).toThrow(/version/);
    expect(() => decodeValue(Uint8Array.of(1, 0x42))).toThrow(/unknown tag/);
    expect(() => decodeValue(Uint8Array.of(1, 0x0b, 2, 0x05, 1, 0x61, 0x01, 0x05, 1, 0x61, 0x01))).toThrow(/duplicate/);
    expect(() => decodeValue(Uint8Array.of(1, 0x07, 0, 2, 0, 1))).toThrow(/bigint/);
    // every error is the library's own
    for (const b of [Uint8Array.of(), Uint8Array.of(1), Uint8Array.of(1, 0x06, 1, 0x00, 0x41)]) {
      expect(() => decodeValue(b)).toThrow(EnvelopeKitError);
    }
  });
});

describe('value encoding of Node buffers', () => {
  it('encodes a Buffer as bytes and gives back a plain Uint8Array with the same contents', () => {
    const back = decodeValue(encodeValue({ b: Buffer.from('hi') })) as { b: Uint8Array };
    expect(Object.getPrototypeOf(back.b)).toBe(Uint8Array.prototype);
    expect([...back.b]).toEqual([0x68, 0x69]);
  });
});

/** SPEC.md §11.1 uvar, written independently of the library. */
function uvar(n: number): number[] {
  const out: number[] = [];
  for (; n >= 128; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return out;
}
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
/** What decodeValue does with some bytes: the error code, or the value. */
function tryDecode(b: Uint8Array, options?: { maxDepth?: number }): { code: string } | { value: unknown } {
  try {
    return { value: decodeValue(b, options) };
  } catch (e) {
    if (!(e instanceof EnvelopeKitError)) throw e;
    return { code: e.code };
  }
}

describe('bigints: linear time, bounded size (SPEC.md §11.2)', () => {
  const max = 2n ** BigInt(MAX_BIGINT_BYTES * 8) - 1n;

  it('round-trips bigints of every size up to the bound, positive and negative', () => {
    const edge = [0n, 1n, -1n, 255n, 256n, 2n ** 47n, 2n ** 48n - 1n, 2n ** 48n, -(2n ** 48n), 2n ** 64n, max, -max, 2n ** BigInt(MAX_BIGINT_BYTES * 8 - 1)];
    for (const v of edge) expect(decodeValue(encodeValue(v))).toBe(v);
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 2000n), max: 2n ** 2000n }), (v) => {
        const enc = encodeValue(v);
        expect(decodeValue(enc)).toBe(v);
        // As SPEC.md §11.2 writes it: sign, uvar(n), the magnitude big-endian without leading zero bytes.
        const m = v < 0n ? -v : v;
        const digits = m === 0n ? '' : m.toString(16);
        const mag = Buffer.from(digits.length % 2 ? '0' + digits : digits, 'hex');
        expect(hexOf(enc)).toBe(hexOf(Uint8Array.from([1, 0x07, v < 0n ? 1 : 0, ...uvar(mag.length), ...mag])));
      }),
      { numRuns: runs(300) },
    );
  });

  it(`refuses a bigint over ${MAX_BIGINT_BYTES} bytes when encoding`, () => {
    expect(encodeValue(max).length).toBe(1 + 1 + 1 + 2 + MAX_BIGINT_BYTES);
    for (const v of [max + 1n, -(max + 1n), 2n ** 1_600_000n - 1n]) {
      expect(() => encodeValue({ n: [v] })).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED_VALUE', path: '$[property 0][0]' }));
    }
  });

  it('refuses a bigint over the bound when decoding, before reading its digits', () => {
    // 0x07, sign, uvar(n), n bytes of 0xff: the encoding an unbounded writer gives 2^(8n) - 1.
    const big = (n: number) => Uint8Array.from([1, 0x07, 0, ...uvar(n), ...new Uint8Array(n).fill(0xff)]);
    expect(decodeValue(big(MAX_BIGINT_BYTES))).toBe(max);
    expect(tryDecode(big(MAX_BIGINT_BYTES + 1))).toEqual({ code: 'ERR_MALFORMED_VALUE' });
    // 2^1,600,000 - 1: took 18 s to decode with shifts and ORs; now refused at once.
    expect(tryDecode(big(200_000))).toEqual({ code: 'ERR_MALFORMED_VALUE' });
  });
});

/** `n` containers of the given kind nested in one another, with a Date and bytes (which are not containers) at the bottom. */
function nested(n: number, kind: 'array' | 'object' | 'map key' | 'map value' | 'set'): unknown {
  let v: unknown = [new Date(0), Uint8Array.of(1)];
  for (let i = 1; i < n; i++) {
    if (kind === 'array') v = [v];
    else if (kind === 'object') v = { k: v };
    else if (kind === 'map key') v = new Map([[v, 1]]);
    else if (kind === 'map value') v = new Map([[1, v]]);
    else v = new Set([v]);
  }
  return v;
}

describe('nesting levels (SPEC.md §11.4)', () => {
  for (const kind of ['array', 'object', 'map key', 'map value', 'set'] as const) {
    for (const maxDepth of [1, 2, 3, DEFAULT_MAX_DEPTH, MAX_DEPTH_LIMIT]) {
      it(`${kind}s: ${maxDepth} levels pass with maxDepth ${maxDepth}, ${maxDepth + 1} are refused when encoding and when decoding`, () => {
        const opt = maxDepth === DEFAULT_MAX_DEPTH ? undefined : { maxDepth };
        const ok = nested(maxDepth, kind);
        expect(sameValue(decodeValue(encodeValue(ok, opt), opt), ok)).toBe(true);
        const over = nested(maxDepth + 1, kind);
        expect(() => encodeValue(over, opt)).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED_VALUE' }));
        if (maxDepth < MAX_DEPTH_LIMIT) {
          const bytes = encodeValue(over, { maxDepth: maxDepth + 1 });
          expect(tryDecode(bytes, opt)).toEqual({ code: 'ERR_MALFORMED_VALUE' });
        }
      });
    }
  }

  it('counts the top container as level 1; Dates, bytes and object keys are not levels', () => {
    expect(decodeValue(encodeValue([new Date(0)], { maxDepth: 1 }), { maxDepth: 1 })).toEqual([new Date(0)]);
    expect(decodeValue(encodeValue(new Date(0), { maxDepth: 1 }), { maxDepth: 1 })).toEqual(new Date(0));
    expect(() => encodeValue([[]], { maxDepth: 1 })).toThrow(UnsupportedValueError);
    expect(sameValue(decodeValue(encodeValue({ a: Uint8Array.of(1) }, { maxDepth: 1 }), { maxDepth: 1 }), { a: Uint8Array.of(1) })).toBe(true);
  });

  it('refuses a maxDepth out of range instead of clamping it', () => {
    for (const maxDepth of [0, -1, 1.5, MAX_DEPTH_LIMIT + 1, 1e9, NaN, Infinity, '3', null]) {
      expect(() => encodeValue(1, { maxDepth: maxDepth as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PARAMETER' }));
      expect(() => decodeValue(Uint8Array.of(1, 1), { maxDepth: maxDepth as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PARAMETER' }));
    }
  });
});

describe('canonical encodings only (SPEC.md §11.3)', () => {
  it('rejects each non-canonical form with ERR_MALFORMED_VALUE', () => {
    const bad: [string, string][] = [
      ['Date 0.5', '01083fe0000000000000'],
      ['Date -0', '01088000000000000000'],
      ['Date 1e300', '01087e37e43c8800759c'],
      ['Date Infinity', '01087ff0000000000000'],
      ['Date -Infinity', '0108fff0000000000000'],
      ['Date 8.64e15 + 1', '0108433eb208c2dc0001'],
      ['Date with a NaN payload', '01087ff8000000000001'],
      ['-0 as a Map key', '010c01 04 8000000000000000 01'],
      ['-0 as a Set item', '010d01 04 8000000000000000'],
      ['object keys {"b":null,"1":null}', '010b02 050162 01 050131 01'],
      ['object keys "2" before "1"', '010b02 050132 01 050131 01'],
      ['duplicate object key', '010b02 050161 01 050161 01'],
      ['duplicate Map key', '010c02 050161 01 050161 01'],
      ['duplicate Set item (NaN)', '010d02047ff8000000000000047ff8000000000000'],
      ['NaN with the sign bit', '0104fff8000000000000'],
      ['uvar with a trailing zero group', '01058000'],
      ['bigint with a leading zero byte', '0107000200ff'],
      ['bigint negative zero', '01070100'],
      ['lone surrogate in the UTF-8 tag', '010503eda080'],
      ['well-formed string in the UTF-16 tag', '0106010041'],
      ['empty string in the UTF-16 tag', '010600'],
    ];
    for (const [name, h] of bad) expect(tryDecode(fromHex(h.replace(/ /g, ''))), name).toEqual({ code: 'ERR_MALFORMED_VALUE' });
  });

  it('accepts what the writer writes for the same values', () => {
    expect(hexOf(encodeValue(new Date(0)))).toBe('01080000000000000000');
    expect(hexOf(encodeValue(new Map([[-0, null]])))).toBe('010c0104000000000000000001');
    const o = JSON.parse('{"b":1,"1":2,"01":3}') as object;
    expect(Object.keys(decodeValue(encodeValue(o)) as object)).toEqual(['1', 'b', '01']);
  });

  /** Objects of keys drawn from index-like and other names, in any order, possibly repeated: as raw bytes. */
  const objectBytes = fc
    .array(fc.constantFrom('0', '1', '2', '10', '01', '-1', 'a', 'b', '4294967294', '4294967295', '1.5'), { maxLength: 6 })
    .map((keys) => Uint8Array.from([1, 0x0b, keys.length, ...keys.flatMap((k) => [0x05, k.length, ...Buffer.from(k), 0x01])]));
  const f64Bytes = (x: number) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x);
    return [...b];
  };
  const interestingDouble = fc.oneof(
    fc.constantFrom(0, -0, 0.5, -0.5, 1e300, -1e300, Infinity, -Infinity, NaN, 8.64e15, -8.64e15, 8.64e15 + 1, -8.64e15 - 1, 2 ** 53),
    fc.double(),
    fc.integer().map((i) => i * 1000),
  );
  /** Dates, Map keys and Set items of interesting doubles (raw NaN patterns too), as raw bytes. */
  const memberBytes = fc.oneof(
    interestingDouble.map((x) => Uint8Array.from([1, 0x08, ...f64Bytes(x)])),
    fc.array(interestingDouble, { maxLength: 4 }).map((xs) => Uint8Array.from([1, 0x0d, xs.length, ...xs.flatMap((x) => [0x04, ...f64Bytes(x)])])),
    fc.array(interestingDouble, { maxLength: 4 }).map((xs) => Uint8Array.from([1, 0x0c, xs.length, ...xs.flatMap((x) => [0x04, ...f64Bytes(x), 0x01])])),
    fc.tuple(fc.constantFrom(0x04, 0x08), fc.uint8Array({ minLength: 8, maxLength: 8 })).map(([t, b]) => Uint8Array.from([1, t, ...b])),
  );
  /** Valid encodings of supported values, then damaged: a byte changed, inserted, removed, or the end cut. */
  const mutated = fc
    .tuple(supportedValue, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete', 'cut', 'none'))
    .map(([v, at, byte, how]) => {
      const b = [...encodeValue(v)];
      const i = at % b.length;
      if (how === 'set') b[i] = byte;
      else if (how === 'insert') b.splice(i, 0, byte);
      else if (how === 'delete') b.splice(i, 1);
      else if (how === 'cut') b.length = i;
      return Uint8Array.from(b);
    });

  for (const [name, arb] of [
    ['arbitrary bytes', fc.uint8Array({ maxLength: 200 })],
    ['objects with keys in any order', objectBytes],
    ['Dates, Map keys and Set items of any double', memberBytes],
    ['damaged valid encodings', mutated],
  ] as const) {
    it(`property: whatever the decoder accepts re-encodes to the same bytes (${name})`, () => {
      fc.assert(
        fc.property(arb as fc.Arbitrary<Uint8Array>, (b) => {
          const r = tryDecode(b);
          if ('code' in r) expect(r.code).toBe('ERR_MALFORMED_VALUE');
          else expect(hexOf(encodeValue(r.value, { maxDepth: MAX_DEPTH_LIMIT }))).toBe(hexOf(b));
        }),
        { numRuns: runs(2000) },
      );
    });
  }
});

describe('error paths name positions, never keys', () => {
  const pii = ['alice@example.com', '078-05-1120'];
  const cases: [string, unknown, string][] = [
    ['a record key', { 'alice@example.com': () => 0 }, '$[property 0]'],
    ['a nested record key', { x: 1, '078-05-1120': { balance: Symbol('b') } }, '$[property 1][property 0]'],
    ['a Map key', new Map([['alice@example.com', { f: () => 0 }]]), '$[entry 0].value[property 0]'],
    ['a non-enumerable property', Object.defineProperty({ 'alice@example.com': 1 }, '078-05-1120', { value: 2, enumerable: false }), '$[property 1]'],
    ['a throwing getter', { get ['alice@example.com']() { throw new Error('no'); } }, '$[property 0]'],
  ];
  for (const [name, value, path] of cases) {
    it(`${name}: UnsupportedValueError says ${path}`, () => {
      let err: unknown;
      try {
        encodeValue(value);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UnsupportedValueError);
      expect((err as UnsupportedValueError).path).toBe(path);
      for (const k of pii) {
        expect((err as Error).message).not.toContain(k);
        expect((err as UnsupportedValueError).path).not.toContain(k);
      }
    });
  }
});

describe('byte arrays are read through the engine, not their own properties', () => {
  it('a Uint8Array subclass whose length lies is refused at once, never trusted (SPEC.md §11: bytes are what the engine says)', () => {
    class Liar extends Uint8Array {
      override get length(): number {
        return 2 ** 40;
      }
      override get byteLength(): number {
        return 2 ** 40;
      }
    }
    const liar = new Liar([1, 2, 3]);
    expect(() => encodeValue(liar)).toThrow(UnsupportedValueError);
    const own = Uint8Array.of(4, 5);
    Object.defineProperty(own, 'length', { value: 2 ** 31 });
    Object.defineProperty(own, 'byteLength', { value: 2 ** 31 });
    expect(() => encodeValue({ own })).toThrow(UnsupportedValueError);
    expect(hexOf(encodeValue({ own: Uint8Array.of(4, 5) }))).toBe('010b0105036f776e09020405');
  });

  it('decodeValue reads the real length of its input', () => {
    class Short extends Uint8Array {
      override get length(): number {
        return 1;
      }
    }
    expect(decodeValue(new Short([1, 0x05, 1, 0x61]))).toBe('a');
    class Long extends Uint8Array {
      override get length(): number {
        return 1000;
      }
    }
    expect(tryDecode(new Long([1, 0x0a, 2, 0x01]))).toEqual({ code: 'ERR_MALFORMED_VALUE' });
  });

  it('refuses other typed arrays dressed as Uint8Array, and detached buffers, with its own errors', () => {
    const dressed = Object.setPrototypeOf(new Float64Array(2), Uint8Array.prototype) as Uint8Array;
    expect(() => encodeValue([dressed])).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED_VALUE', path: '$[0]' }));
    expect(() => decodeValue(dressed)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PARAMETER' }));
    const detached = new Uint8Array(8);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expect(() => encodeValue([detached])).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED_VALUE', path: '$[0]' }));
    expect(() => decodeValue(detached)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PARAMETER' }));
  });
});

describe('the writer only writes what the reader accepts', () => {
  it('refuses a proxy that lists keys out of the order of an ordinary object', () => {
    const keys = ['b', '1'];
    const proxy = new Proxy({}, { ownKeys: () => keys, getOwnPropertyDescriptor: () => ({ value: 1, enumerable: true, configurable: true }), get: () => 1 });
    expect(() => encodeValue({ p: proxy })).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED_VALUE', path: '$[property 0][property 1]' }));
    keys.reverse();
    expect(decodeValue(encodeValue(proxy))).toEqual({ 1: 1, b: 1 });
  });

  it('a Map, Set or array that grows while it is encoded: an error or bytes the reader accepts, never a wrong count', () => {
    const m = new Map<unknown, unknown>();
    m.set('a', { get x() { m.set('b', 2); return 1; } });
    expect(() => encodeValue(m)).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED_VALUE', path: '$' }));
    const s = new Set<unknown>();
    s.add({ get x() { s.add(2); return 1; } });
    expect(() => encodeValue(s)).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED_VALUE', path: '$' }));
    // A Map entry deleted and set again after it was written would be visited twice: it is written once.
    const again = new Map<unknown, unknown>();
    again.set('k', { get x() { again.delete('k'); again.set('k', 0); return 1; } });
    expect(hexOf(encodeValue(again))).toBe('010c01' + '05016b' + '0b01' + '050178' + '043ff0000000000000');
    // An array that grows: the elements counted first are written, and the bytes decode.
    const arr: unknown[] = [];
    arr.push(1, { get x() { arr.push(3); return 2; } });
    const enc = encodeValue(arr);
    expect(tryDecode(enc)).not.toHaveProperty('code');
  });

  /** Supported values with the keys and numbers the canonical rules are about. */
  const edgeValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    leaf: fc.oneof(
      supportedValue,
      fc.constantFrom(-0, NaN, 8.64e15, -8.64e15, 2n ** 65535n, -(2n ** 65535n), '', '\ud800', '\udc00\ud800'),
      fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: false }),
    ),
    key: fc.oneof(fc.string(), fc.constantFrom('0', '1', '10', '01', '-1', '1.5', '4294967294', '4294967295', '__proto__', 'constructor', '$x')),
    node: fc.oneof(
      { depthSize: 'small' },
      tie('leaf'),
      fc.array(tie('node'), { maxLength: 4 }),
      fc.dictionary(tie('key') as fc.Arbitrary<string>, tie('node'), { maxKeys: 6 }),
      fc.dictionary(tie('key') as fc.Arbitrary<string>, tie('node'), { maxKeys: 4, noNullPrototype: false }),
      fc.array(fc.tuple(fc.oneof(tie('node'), fc.constantFrom(-0, 0, NaN)), tie('node')), { maxLength: 4 }).map((e) => new Map(e)),
      fc.array(fc.oneof(tie('node'), fc.constantFrom(-0, 0, NaN)), { maxLength: 4 }).map((e) => new Set(e)),
    ),
  })).node;

  it('property: decode(encode(v)) is v (Object.is deep), and encode(decode(b)) is b', () => {
    fc.assert(
      fc.property(edgeValue, (v) => {
        const b = encodeValue(v, { maxDepth: MAX_DEPTH_LIMIT });
        const back = decodeValue(b, { maxDepth: MAX_DEPTH_LIMIT });
        expect(sameValue(back, v)).toBe(true);
        expect(hexOf(encodeValue(back, { maxDepth: MAX_DEPTH_LIMIT }))).toBe(hexOf(b));
      }),
      { numRuns: runs(500) },
    );
  });
});
