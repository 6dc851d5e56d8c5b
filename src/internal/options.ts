/**
 * Reading a caller's options object once, at the boundary (CONVENTIONS.md §4):
 * any throw while reading it (a proxy, a getter) becomes an
 * {@link InvalidParameterError}, never a foreign error.
 * @module
 */
import type { AesGcm } from '../core/aead/types.js';
import { InvalidParameterError } from '../core/errors.js';

/**
 * Read the named fields of an options object. `undefined` and `null` mean "no options".
 * @throws InvalidParameterError when `options` is not an object or cannot be read.
 */
export function readOptions<K extends string>(options: unknown, names: readonly K[], what: string): { [P in K]?: unknown } {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw new InvalidParameterError(`${what} must be an object`);
  const out: { [P in K]?: unknown } = {};
  try {
    for (const n of names) out[n] = (options as Record<string, unknown>)[n];
  } catch (e) {
    throw new InvalidParameterError(`${what} could not be read`, { cause: e });
  }
  return out;
}

/**
 * Read one field of an options object already known to be an object: the single-field form of
 * {@link readOptions}, with no object or name list made per call, for functions called once per
 * record. `fn` names the function in the error (`"<fn> options could not be read"`).
 * @throws InvalidParameterError when reading throws (a proxy, a getter).
 */
export function readOptionOf(options: object, name: string, fn: string): unknown {
  try {
    return (options as Record<string, unknown>)[name];
  } catch (e) {
    throw new InvalidParameterError(`${fn} options could not be read`, { cause: e });
  }
}

/** True when `a` has the shape of an {@link AesGcm} backend. Never throws. */
export function isAesGcm(a: unknown): a is AesGcm {
  try {
    return a !== null && typeof a === 'object' && typeof (a as AesGcm).seal === 'function' && typeof (a as AesGcm).open === 'function';
  } catch {
    return false;
  }
}
