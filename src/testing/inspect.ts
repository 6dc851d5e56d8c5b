/**
 * Reading records for the invariants of `envelope-kit/testing`: values at a
 * selector's paths, every leaf of a stored record with its path, and deep
 * equality with `Object.is` semantics that says where two values differ.
 * @module
 */
import { base64Encode, base64UrlDecode, base64UrlEncode } from '../internal/base64.js';
import { toHex } from '../internal/bytes.js';

/** One step of a concrete path: a property name or an array index. */
export type PathStep = string | number;

/** A place in a record that a selector reached, and the value there. */
export interface Located {
  readonly steps: readonly PathStep[];
  readonly value: unknown;
}

/** Text of a concrete path, as the library's selectors write it (`cards[1].number`). */
export function pathText(steps: readonly PathStep[]): string {
  let out = '';
  for (const s of steps) out += typeof s === 'number' ? `[${s}]` : out && !s.startsWith('[') ? `.${s}` : s;
  return out || '$';
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';

/**
 * Every place a selector (`a.b`, `cards[].number`, `tags[]`, a trailing `?`
 * ignored) reaches in a value; absent properties and `null` on the way are skipped.
 */
export function locate(value: unknown, selector: string): Located[] {
  const text = selector.endsWith('?') ? selector.slice(0, -1) : selector;
  let here: Located[] = [{ steps: [], value }];
  for (const seg of text.split('.')) {
    const m = /^([^[\]]+)((?:\[\])*)$/.exec(seg);
    if (!m) return [];
    const name = m[1]!;
    const arrays = m[2]!.length / 2;
    let next: Located[] = [];
    for (const l of here) {
      if (isObject(l.value) && !Array.isArray(l.value) && Object.prototype.hasOwnProperty.call(l.value, name)) {
        next.push({ steps: [...l.steps, name], value: l.value[name] });
      }
    }
    for (let i = 0; i < arrays; i++) {
      const deeper: Located[] = [];
      for (const l of next) if (Array.isArray(l.value)) l.value.forEach((v, j) => deeper.push({ steps: [...l.steps, j], value: v }));
      next = deeper;
    }
    here = next;
  }
  return here;
}

/** The parents of a selector's last property (where a blind index's `into` goes). */
export function parentsOf(value: unknown, selector: string): Located[] {
  const text = selector.endsWith('?') ? selector.slice(0, -1) : selector;
  const cut = text.lastIndexOf('.');
  return cut < 0 ? [{ steps: [], value }] : locate(value, text.slice(0, cut));
}

/** A copy of `value` with `v` at `steps` (containers on the way copied, the rest shared). */
export function withValueAt(value: unknown, steps: readonly PathStep[], v: unknown): unknown {
  if (steps.length === 0) return v;
  const [head, ...rest] = steps;
  const copy = (Array.isArray(value) ? [...(value as unknown[])] : { ...(value as object) }) as Record<PropertyKey, unknown>;
  Object.defineProperty(copy, head!, { value: withValueAt(copy[head!], rest, v), enumerable: true, writable: true, configurable: true });
  return copy;
}

/** The value at a concrete path, or `undefined`. */
export function valueAt(value: unknown, steps: readonly PathStep[]): unknown {
  let v = value;
  for (const s of steps) v = isObject(v) ? (v as Record<PropertyKey, unknown>)[s] : undefined;
  return v;
}

/**
 * Where two values first differ, with `Object.is` semantics (`-0` is not `0`,
 * `NaN` equals `NaN`), comparing prototypes, own keys in order, dates by time,
 * bytes, maps and sets in order; `undefined` when they are equal. With
 * `plainIsNull`, null-prototype objects and plain objects compare equal.
 */
export function firstDifference(a: unknown, b: unknown, path = '$', plainIsNull = false): string | undefined {
  if (Object.is(a, b)) return undefined;
  if (typeof a !== typeof b || !isObject(a) || !isObject(b)) return path;
  const proto = (v: object) => {
    const p = Object.getPrototypeOf(v) as unknown;
    return plainIsNull && p === Object.prototype ? null : p;
  };
  if (proto(a) !== proto(b)) return path;
  if (a instanceof Date) return Object.is(a.getTime(), (b as unknown as Date).getTime()) ? undefined : path;
  if (a instanceof Uint8Array) {
    const y = b as unknown as Uint8Array;
    return a.length === y.length && a.every((x, i) => x === y[i]) ? undefined : path;
  }
  if (a instanceof Map || a instanceof Set) {
    const ea = [...(a as Map<unknown, unknown>)];
    const eb = [...(b as unknown as Map<unknown, unknown>)];
    if (ea.length !== eb.length) return path;
    for (let i = 0; i < ea.length; i++) {
      const d = firstDifference(ea[i], eb[i], `${path}[entry ${i}]`, plainIsNull);
      if (d) return d;
    }
    return undefined;
  }
  const ka = Reflect.ownKeys(a);
  const kb = Reflect.ownKeys(b);
  for (let i = 0; i < Math.max(ka.length, kb.length); i++) {
    if (ka[i] !== kb[i]) return `${path} (keys ${ka.map(String).join(', ')} vs ${kb.map(String).join(', ')})`;
  }
  for (const k of ka) {
    const d = firstDifference((a as Record<PropertyKey, unknown>)[k], (b as Record<PropertyKey, unknown>)[k], Array.isArray(a) ? `${path}[${String(k)}]` : `${path}.${String(k)}`, plainIsNull);
    if (d) return d;
  }
  return undefined;
}


/** The text forms a stored or sensitive leaf is searched in or for: strings as they are, numbers and bigints in decimal, dates in ISO 8601 and milliseconds, bytes in hex, base64 and base64url. */
export function textForms(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (typeof v === 'number') return Number.isFinite(v) ? [String(v)] : [];
  if (typeof v === 'bigint') return [String(v)];
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? [] : [v.toISOString(), String(v.getTime())];
  if (v instanceof Uint8Array) return [toHex(v), toHex(v).toUpperCase(), base64Encode(v), base64UrlEncode(v)];
  return [];
}

/** Every leaf of a value (and every key of its objects and maps), with its path. */
export function leaves(value: unknown, steps: PathStep[] = [], out: Located[] = []): Located[] {
  if (value instanceof Map) {
    let i = 0;
    for (const [k, v] of value) {
      leaves(k, [...steps, `[entry ${i}].key`], out);
      leaves(v, [...steps, `[entry ${i++}].value`], out);
    }
  } else if (value instanceof Set) {
    let i = 0;
    for (const v of value) leaves(v, [...steps, `[item ${i++}]`], out);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => leaves(v, [...steps, i], out));
  } else if (isObject(value) && !(value instanceof Date) && !(value instanceof Uint8Array)) {
    for (const k of Object.keys(value)) {
      out.push({ steps: [...steps, `[key ${JSON.stringify(k)}]`], value: k });
      leaves(value[k], [...steps, k], out);
    }
  } else out.push({ steps, value });
  return out;
}

/** The bytes of a text form of this library (`ek1.`, `ekf1.`, `ekh1.` and base64url), or `undefined` for any other string. */
export function envelopeBytes(s: string): Uint8Array | undefined {
  const m = /^ek[fh]?1\.(.*)$/s.exec(s);
  return m ? base64UrlDecode(m[1]!) : undefined;
}

/** Whether `needle` occurs in `hay`. */
export function containsBytes(hay: Uint8Array, needle: Uint8Array): boolean {
  if (needle.length === 0) return true;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}
