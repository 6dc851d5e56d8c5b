/**
 * The value-encoding vectors (SPEC.md §10.1, §11), shared by the generator and
 * the test. Success vectors give the value in the tagged JSON form of
 * `tagged-json.ts`; failure vectors give bytes that break exactly one rule of
 * §11.3 (or the limit of §11.4), which a reader MUST refuse with the code.
 * @module
 */

/** A value vector that decodes: `value` is tagged JSON (SPEC.md §10.1). */
export interface ValueVector {
  readonly name: string;
  readonly description: string;
  readonly value: unknown;
}

/** A value vector that MUST be refused: the §11.3 rule it breaks, and the bytes. */
export interface ValueFailureVector {
  readonly name: string;
  readonly description: string;
  readonly rule: number;
  readonly encoding: string;
}

const nestedArrays = (n: number, inner: unknown = []): unknown => {
  let v = inner;
  for (let i = 1; i < n; i++) v = [v];
  return v;
};

export const VALUE_VECTORS: readonly ValueVector[] = [
  {
    name: 'value-json',
    description: 'JSON types: object, number, array, true, null, string (keys in insertion order)',
    value: { id: 42, tags: [true, null, 'x'], name: 'Ada' },
  },
  {
    name: 'value-numbers',
    description: 'numbers JSON loses: -0, NaN (canonical), -Infinity, a fraction',
    value: [{ $number: '-0' }, { $number: 'NaN' }, { $number: '-Infinity' }, 0.1],
  },
  {
    name: 'value-types',
    description: 'undefined, bigint, Date, invalid Date, Uint8Array, Map, Set, null-prototype object',
    value: [
      { $undefined: true },
      { $bigint: '-1180591620717411303424' },
      { $bigint: '0' },
      { $date: '1970-01-01T00:00:00.000Z' },
      { $date: 'invalid' },
      { $bytes: '00ff' },
      { $map: [['k', 1]] },
      { $set: ['s'] },
      { '$object-null-prototype': { n: 1 } },
    ],
  },
  {
    name: 'value-strings',
    description: 'UTF-8 strings (tag 0x05) and a string with a lone surrogate (tag 0x06, UTF-16 big-endian)',
    value: ['é€😀', 'a\uD800b', ''],
  },
  {
    name: 'value-string-bom',
    description: 'strings that start with U+FEFF: the byte order mark is part of the string, never stripped',
    value: ['\ufeff', '\ufeffa'],
  },
  {
    name: 'value-object-key-order',
    description: 'object keys in ECMAScript order: array indexes ascending ("0" to "4294967294"), then the other keys in insertion order ("01", "-1", "4294967295" are not indexes); "__proto__" is an ordinary key',
    value: { '0': 1, '2': 2, '10': 3, '4294967294': 4, b: 5, a: 6, '01': 7, '-1': 8, '4294967295': 9, ['__proto__']: 10 },
  },
  {
    name: 'value-dates',
    description: 'dates at the ends of the time range (±8.64e15 ms), before 1970, and invalid',
    value: [{ $date: '+275760-09-13T00:00:00.000Z' }, { $date: '-271821-04-20T00:00:00.000Z' }, { $date: '1969-12-31T23:59:59.999Z' }, { $date: 'invalid' }],
  },
  {
    name: 'value-map-set-members',
    description: 'a Map keyed by 0 (what -0 becomes as a key), NaN and a container; a Set of 0, NaN and an empty string',
    value: [{ $map: [[0, 'zero'], [{ $number: 'NaN' }, 'nan'], [[1], 'array']] }, { $set: [0, { $number: 'NaN' }, ''] }],
  },
  {
    name: 'value-bigint-max',
    description: 'the largest bigint: 2^65536 - 1, 8192 bytes of magnitude, and its negative',
    value: [{ $bigint: (2n ** 65536n - 1n).toString() }, { $bigint: (-(2n ** 65536n - 1n)).toString() }],
  },
  {
    name: 'value-depth-64',
    description: '64 nested arrays: the default nesting limit (the top array is level 1)',
    value: nestedArrays(64),
  },
];

const uvar = (n: number): string => {
  const out: number[] = [];
  for (; n >= 128; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return Buffer.from(out).toString('hex');
};
const f64 = (x: number): string => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return b.toString('hex');
};
const str = (s: string): string => '05' + uvar(Buffer.byteLength(s)) + Buffer.from(s).toString('hex');

export const VALUE_FAILURE_VECTORS: readonly ValueFailureVector[] = [
  { name: 'value-fail-version', rule: 1, description: 'first byte 0x02', encoding: '0201' },
  { name: 'value-fail-trailing-bytes', rule: 2, description: 'null, then one more byte', encoding: '010101' },
  { name: 'value-fail-truncated', rule: 3, description: 'the number 1 cut after 4 of its 8 bytes', encoding: '01043ff00000' },
  { name: 'value-fail-unknown-tag', rule: 4, description: 'tag 0x0f', encoding: '010f' },
  { name: 'value-fail-uvar-too-large', rule: 5, description: 'byte-array length 2^53 in 8 bytes', encoding: '0109' + '80'.repeat(7) + '10' },
  { name: 'value-fail-uvar-too-long', rule: 5, description: 'a 9-byte uvar (2^56)', encoding: '0109' + '80'.repeat(8) + '01' },
  { name: 'value-fail-uvar-non-minimal', rule: 6, description: 'string length 0 written as 80 00', encoding: '01058000' },
  { name: 'value-fail-count-too-large', rule: 7, description: 'an array of 2^50 elements in 10 bytes', encoding: '010a' + '80'.repeat(7) + '02' },
  { name: 'value-fail-nan-payload', rule: 8, description: 'the number NaN with payload 1: 7ff8000000000001', encoding: '0104' + '7ff8000000000001' },
  { name: 'value-fail-nan-sign', rule: 8, description: 'the number NaN with the sign bit set: fff8000000000000', encoding: '0104' + 'fff8000000000000' },
  { name: 'value-fail-date-nan-payload', rule: 8, description: 'an invalid date whose NaN has payload 1', encoding: '0108' + '7ff8000000000001' },
  { name: 'value-fail-utf8-invalid', rule: 9, description: 'UTF-8 c3 28 (a lead byte without its continuation)', encoding: '010502c328' },
  { name: 'value-fail-utf8-overlong', rule: 9, description: 'U+0000 as the overlong c0 80', encoding: '010502c080' },
  { name: 'value-fail-utf8-surrogate', rule: 9, description: 'the lone surrogate U+D800 as ed a0 80 in the UTF-8 tag', encoding: '010503eda080' },
  { name: 'value-fail-utf8-above-max', rule: 9, description: 'U+110000 as f4 90 80 80', encoding: '010504f4908080' },
  { name: 'value-fail-utf16-well-formed', rule: 10, description: '"A" in the UTF-16 tag', encoding: '0106010041' },
  { name: 'value-fail-utf16-pair', rule: 10, description: 'a well-formed surrogate pair (U+1F600) in the UTF-16 tag', encoding: '010602d83dde00' },
  { name: 'value-fail-utf16-empty', rule: 10, description: 'the empty string in the UTF-16 tag', encoding: '010600' },
  { name: 'value-fail-bigint-sign', rule: 11, description: 'bigint sign byte 0x02', encoding: '0107020101' },
  { name: 'value-fail-bigint-leading-zero', rule: 12, description: 'the bigint 255 as 00 ff', encoding: '0107000200ff' },
  { name: 'value-fail-bigint-negative-zero', rule: 13, description: 'the bigint -0 (01 00)', encoding: '01070100' },
  { name: 'value-fail-bigint-too-large', rule: 14, description: 'a bigint of 8193 bytes (2^65544 - 1)', encoding: '010700' + uvar(8193) + 'ff'.repeat(8193) },
  { name: 'value-fail-date-fraction', rule: 15, description: 'the date 0.5 ms', encoding: '0108' + f64(0.5) },
  { name: 'value-fail-date-negative-zero', rule: 15, description: 'the date -0', encoding: '0108' + f64(-0) },
  { name: 'value-fail-date-out-of-range', rule: 15, description: 'the date 8.64e15 + 1 ms', encoding: '0108' + f64(8.64e15 + 1) },
  { name: 'value-fail-date-huge', rule: 15, description: 'the date 1e300', encoding: '0108' + f64(1e300) },
  { name: 'value-fail-date-infinity', rule: 15, description: 'the date Infinity', encoding: '0108' + f64(Infinity) },
  { name: 'value-fail-date-negative-infinity', rule: 15, description: 'the date -Infinity', encoding: '0108' + f64(-Infinity) },
  { name: 'value-fail-object-key-not-string', rule: 16, description: 'an object whose key is null', encoding: '010b010101' },
  { name: 'value-fail-object-index-after-name', rule: 17, description: 'the object {"b":null,"1":null}: an array index after another key', encoding: '010b02' + str('b') + '01' + str('1') + '01' },
  { name: 'value-fail-object-index-descending', rule: 17, description: 'the object {"2":null,"1":null}: array indexes not ascending', encoding: '010b02' + str('2') + '01' + str('1') + '01' },
  { name: 'value-fail-object-duplicate-key', rule: 18, description: 'the key "a" twice', encoding: '010b02' + str('a') + '01' + str('a') + '01' },
  { name: 'value-fail-map-duplicate-key', rule: 19, description: 'a Map with the key "k" twice', encoding: '010c02' + str('k') + '01' + str('k') + '01' },
  { name: 'value-fail-set-duplicate-item', rule: 20, description: 'a Set with the item "s" twice', encoding: '010d02' + str('s') + str('s') },
  { name: 'value-fail-set-duplicate-nan', rule: 20, description: 'a Set with NaN twice (equal under SameValueZero)', encoding: '010d02' + '04' + f64(NaN) + '04' + f64(NaN) },
  { name: 'value-fail-map-negative-zero-key', rule: 21, description: 'a Map whose key is the number -0', encoding: '010c01' + '04' + f64(-0) + '01' },
  { name: 'value-fail-set-negative-zero-item', rule: 21, description: 'a Set whose item is the number -0', encoding: '010d01' + '04' + f64(-0) },
  { name: 'value-fail-depth', rule: 22, description: '65 nested arrays, one more than the default limit', encoding: '01' + '0a01'.repeat(64) + '0a00' },
  {
    name: 'value-fail-depth-map-key',
    rule: 22,
    description: '63 nested arrays holding a Map (level 64) whose key is an array (level 65): Map keys are levels too',
    encoding: '01' + '0a01'.repeat(63) + '0c01' + '0a00' + '01',
  },
];
