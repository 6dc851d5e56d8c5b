/** Shared test helpers. */
import fc from 'fast-check';

/** Runs for property tests: `FC_NUM_RUNS` raises them for slow, thorough runs. */
export function runs(base: number): number {
  const env = Number(process.env.FC_NUM_RUNS);
  return Number.isFinite(env) && env > 0 ? Math.max(base, env) : base;
}

/** Deep equality with Object.is semantics (so -0 ≠ 0 and NaN = NaN), for every supported type. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  const pa = Object.getPrototypeOf(a);
  if (pa !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Date) return Object.is(a.getTime(), (b as Date).getTime());
  if (a instanceof Uint8Array) return a.length === (b as Uint8Array).length && a.every((x, i) => x === (b as Uint8Array)[i]);
  if (a instanceof Map) {
    const ea = [...a];
    const eb = [...(b as Map<unknown, unknown>)];
    return ea.length === eb.length && ea.every(([k, v], i) => sameValue(k, eb[i]![0]) && sameValue(v, eb[i]![1]));
  }
  if (a instanceof Set) {
    const ea = [...a];
    const eb = [...(b as Set<unknown>)];
    return ea.length === eb.length && ea.every((v, i) => sameValue(v, eb[i]));
  }
  const ka = Reflect.ownKeys(a);
  const kb = Reflect.ownKeys(b as object);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => sameValue((a as Record<PropertyKey, unknown>)[k], (b as Record<PropertyKey, unknown>)[k]));
}

/** Any value the value encoding supports. */
export const supportedValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constant(undefined),
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.constantFrom(NaN, -0, 0, Infinity, -Infinity),
    fc.string({ unit: 'binary' }),
    fc.string(),
    fc.bigInt(),
    fc.date({ noInvalidDate: false }),
    fc.uint8Array({ maxLength: 64 }),
  ),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    fc.array(tie('node'), { maxLength: 5 }),
    fc.dictionary(fc.string(), tie('node'), { maxKeys: 5 }),
    fc.array(fc.tuple(tie('node'), tie('node')), { maxLength: 4 }).map((e) => new Map(e)),
    fc.array(tie('node'), { maxLength: 4 }).map((e) => new Set(e)),
  ),
})).node;
