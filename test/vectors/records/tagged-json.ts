/**
 * The tagged JSON form in which the records vectors write values (SPEC.md
 * §10.1): plain JSON for what JSON holds, and a one-key object for the rest:
 * `{"$undefined":true}`, `{"$number":"NaN"|"Infinity"|"-Infinity"|"-0"}`,
 * `{"$bigint":"-12"}`, `{"$date":"1970-01-01T00:00:00.000Z"|"invalid"}`,
 * `{"$bytes":"00ff"}` (hex), `{"$map":[[k,v],...]}`, `{"$set":[...]}`,
 * `{"$object-null-prototype":{...}}`, and `{"$object":{...}}` for a plain
 * object that would otherwise read as one of these tags.
 * @module
 */

const TAGS = ['$undefined', '$number', '$bigint', '$date', '$bytes', '$map', '$set', '$object-null-prototype', '$object'];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function copyObject(from: Record<string, unknown>, into: Record<string, unknown>, map: (v: unknown) => unknown): Record<string, unknown> {
  // defineProperty, so that a "__proto__" key stays an ordinary own key.
  for (const k of Object.keys(from)) Object.defineProperty(into, k, { value: map(from[k]), enumerable: true, writable: true, configurable: true });
  return into;
}

/** The value a tagged JSON value (as `JSON.parse` gives it) stands for. */
export function fromTagged(j: unknown): unknown {
  if (j === null || typeof j !== 'object') return j;
  if (Array.isArray(j)) return j.map(fromTagged);
  const o = j as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && TAGS.includes(keys[0]!)) {
    const x = o[keys[0]!];
    switch (keys[0]) {
      case '$undefined':
        return undefined;
      case '$number':
        return { NaN, Infinity, '-Infinity': -Infinity, '-0': -0 }[x as string];
      case '$bigint':
        return BigInt(x as string);
      case '$date':
        return new Date(x === 'invalid' ? NaN : Date.parse(x as string));
      case '$bytes':
        return new Uint8Array(Buffer.from(x as string, 'hex'));
      case '$map':
        return new Map((x as [unknown, unknown][]).map(([k, v]) => [fromTagged(k), fromTagged(v)]));
      case '$set':
        return new Set((x as unknown[]).map(fromTagged));
      case '$object-null-prototype':
        return copyObject(x as Record<string, unknown>, Object.create(null), fromTagged);
      default:
        return copyObject(x as Record<string, unknown>, {}, fromTagged);
    }
  }
  return copyObject(o, {}, fromTagged);
}

/** The tagged JSON form of a value (to be written with `JSON.stringify`). */
export function toTagged(v: unknown): unknown {
  switch (typeof v) {
    case 'undefined':
      return { $undefined: true };
    case 'number':
      if (Number.isNaN(v)) return { $number: 'NaN' };
      if (v === Infinity) return { $number: 'Infinity' };
      if (v === -Infinity) return { $number: '-Infinity' };
      if (Object.is(v, -0)) return { $number: '-0' };
      return v;
    case 'bigint':
      return { $bigint: v.toString() };
    case 'object':
      break;
    default:
      return v;
  }
  if (v === null) return null;
  if (v instanceof Date) return { $date: Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString() };
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(toTagged);
  if (v instanceof Map) return { $map: [...v].map(([k, x]) => [toTagged(k), toTagged(x)]) };
  if (v instanceof Set) return { $set: [...v].map(toTagged) };
  if (!isPlainObject(v)) throw new Error('not a value of the value encoding');
  const body = copyObject(v, {}, toTagged);
  if (Object.getPrototypeOf(v) === null) return { '$object-null-prototype': body };
  const keys = Object.keys(body);
  return keys.length === 1 && TAGS.includes(keys[0]!) ? { $object: body } : body;
}

/** A value as tagged JSON text (one line). */
export function toTaggedJson(v: unknown): string {
  return JSON.stringify(toTagged(v));
}

/** The value a tagged JSON text stands for. */
export function fromTaggedJson(text: string): unknown {
  return fromTagged(JSON.parse(text));
}
