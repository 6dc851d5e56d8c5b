/**
 * The JSON of the records vectors (SPEC.md §10.1): plain JSON for JSON values,
 * and a one-member object for each value JSON cannot hold: `{"$bigint":"-12"}`,
 * `{"$date":"1970-01-01T00:00:00.000Z"}` (`{"$date":null}` for an invalid date),
 * `{"$bytes":"00ff"}` (hex), `{"$map":[[k,v],...]}`, `{"$set":[...]}`,
 * `{"$undefined":true}`, `{"$number":"NaN"|"Infinity"|"-Infinity"|"-0"}`.
 * @module
 */

/** A value in the tagged JSON form. @throws Error for a value the form has no tag for. */
export function toTaggedJson(v: unknown): string {
  return JSON.stringify(tag(v));
}

function tag(v: unknown): unknown {
  if (v === undefined) return { $undefined: true };
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return { $number: 'NaN' };
    if (v === Infinity) return { $number: 'Infinity' };
    if (v === -Infinity) return { $number: '-Infinity' };
    if (Object.is(v, -0)) return { $number: '-0' };
    return v;
  }
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (v instanceof Date) return { $date: Number.isNaN(v.getTime()) ? null : v.toISOString() };
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('hex') };
  if (v instanceof Map) return { $map: [...v].map(([k, x]) => [tag(k), tag(x)]) };
  if (v instanceof Set) return { $set: [...v].map(tag) };
  if (Array.isArray(v)) return v.map(tag);
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, tag(x)]));
  }
  throw new Error(`no tagged JSON form for ${typeof v}`);
}

const TAGS = new Set(['$bigint', '$date', '$bytes', '$map', '$set', '$undefined', '$number']);

/** The value a tagged JSON text stands for. */
export function fromTaggedJson(text: string): unknown {
  return untag(JSON.parse(text));
}

function untag(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(untag);
  if (v === null || typeof v !== 'object') return v;
  const entries = Object.entries(v);
  if (entries.length === 1 && TAGS.has(entries[0]![0])) {
    const [k, x] = entries[0]! as [string, unknown];
    switch (k) {
      case '$bigint':
        return BigInt(x as string);
      case '$date':
        return new Date(x === null ? NaN : (x as string));
      case '$bytes':
        return new Uint8Array(Buffer.from(x as string, 'hex'));
      case '$map':
        return new Map((x as [unknown, unknown][]).map(([a, b]) => [untag(a), untag(b)]));
      case '$set':
        return new Set((x as unknown[]).map(untag));
      case '$undefined':
        return undefined;
      default:
        return Number(x as string);
    }
  }
  return Object.fromEntries(entries.map(([k, x]) => [k, untag(x)]));
}
