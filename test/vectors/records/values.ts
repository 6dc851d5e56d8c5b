/**
 * The values of the value-encoding vectors (SPEC.md §11), shared by the
 * generator and the test. Each is described in its vector file as a
 * JavaScript literal, for a reader in another language.
 */
export const VALUE_VECTORS: readonly { name: string; description: string; literal: string; value: () => unknown }[] = [
  {
    name: 'value-json',
    description: 'JSON types: object, number, array, true, null, string (keys in insertion order)',
    literal: '{ "id": 42, "tags": [true, null, "x"], "name": "Ada" }',
    value: () => ({ id: 42, tags: [true, null, 'x'], name: 'Ada' }),
  },
  {
    name: 'value-numbers',
    description: 'numbers JSON loses: -0, NaN (canonical), -Infinity, a fraction',
    literal: '[-0, NaN, -Infinity, 0.1]',
    value: () => [-0, NaN, -Infinity, 0.1],
  },
  {
    name: 'value-types',
    description: 'undefined, bigint, Date, invalid Date, Uint8Array, Map, Set, null-prototype object',
    literal:
      '[undefined, -(2n ** 70n), 0n, new Date(0), new Date(NaN), Uint8Array.of(0, 255), new Map([["k", 1]]), new Set(["s"]), Object.assign(Object.create(null), { n: 1 })]',
    value: () => [
      undefined,
      -(2n ** 70n),
      0n,
      new Date(0),
      new Date(NaN),
      Uint8Array.of(0, 255),
      new Map([['k', 1]]),
      new Set(['s']),
      Object.assign(Object.create(null), { n: 1 }),
    ],
  },
  {
    name: 'value-strings',
    description: 'UTF-8 strings (tag 0x05) and a string with a lone surrogate (tag 0x06, UTF-16 big-endian)',
    literal: '["é€😀", "a\\uD800b", ""]',
    value: () => ['é€😀', 'a\uD800b', ''],
  },
];
