import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnvelopeKitError, MalformedEnvelopeError, UnsupportedValueError } from '../src/core/errors.js';
import { decodeValue, encodeValue } from '../src/records/value-encoding.js';
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
    ['function', { a: { lines: ['x', 'y', () => 1] } }, '$.a.lines[2]'],
    ['symbol', { s: Symbol('x') }, '$.s'],
    ['class instance', { when: new (class Thing {})() }, '$.when'],
    ['boxed string', [new String('x')], '$[0]'],
    ['typed array other than Uint8Array', { f: new Float64Array(2) }, '$.f'],
    ['sparse array', { a: [1, , 3] }, '$.a'],
    ['symbol key', { [Symbol('k')]: 1 }, '$'],
    ['odd key', { 'a b': { c: () => 0 } }, '$["a b"].c'],
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
    expect(() => encodeValue({ x: getter })).toThrow(expect.objectContaining({ path: '$.x.boom' }));
    const proxy = new Proxy({}, { ownKeys() { throw new Error('no'); } });
    expect(() => encodeValue(proxy)).toThrow(UnsupportedValueError);
    // shared (non-cyclic) references are fine
    const shared = { n: 1 };
    expect(sameValue(decodeValue(encodeValue([shared, shared])), [{ n: 1 }, { n: 1 }])).toBe(true);
  });

  it('honours a custom depth limit', () => {
    expect(() => encodeValue([[[1]]], { maxDepth: 2 })).toThrow(UnsupportedValueError);
    expect(decodeValue(encodeValue([[[1]]], { maxDepth: 3 }), { maxDepth: 3 })).toEqual([[[1]]]);
    expect(() => decodeValue(encodeValue([[[1]]], { maxDepth: 3 }), { maxDepth: 2 })).toThrow(MalformedEnvelopeError);
  });

  it('never crashes on arbitrary bytes: only MalformedEnvelopeError, never a foreign error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeValue(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(MalformedEnvelopeError);
        }
      }),
      { numRuns: runs(2000) },
    );
  });

  it('rejects huge counts before allocating, and non-canonical forms', () => {
    // array claiming 2^50 elements
    expect(() => decodeValue(Uint8Array.of(1, 0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40))).toThrow(MalformedEnvelopeError);
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
