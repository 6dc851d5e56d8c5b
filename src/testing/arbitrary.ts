/**
 * Generators of records from a zod 4 schema, for property tests of an app's
 * record encryption. A walker over zod 4's public schema introspection
 * (`schema._zod.def`, zod's documented way to read a schema) builds a
 * fast-check arbitrary of values the schema accepts, with realistic PII-like
 * strings (names, emails, phone numbers, addresses, text in many scripts) for
 * plain string fields, and the values the value encoding keeps exactly
 * (`-0`, `NaN` where the schema allows it, `bigint`, `Date`, `Uint8Array`,
 * `Map`, `Set`).
 * @module
 */
import fc from 'fast-check';
import { z } from 'zod';

/** The parts of a zod 4 schema the walker reads. */
interface SchemaNode {
  readonly _zod: { readonly def: Def; readonly bag?: Record<string, unknown> };
}
/** A zod 4 definition or check definition, read loosely (its fields depend on `type` and `check`). */
type Def = { readonly type?: string; readonly check?: string; readonly checks?: readonly SchemaNode[] } & Record<string, unknown>;

/** A zod 4 schema: anything with zod 4's `_zod.def` and `safeParse`. */
export type RecordSchema<T = unknown> = z.ZodType<T>;

function node(schema: unknown, where: string): SchemaNode {
  const zod = schema !== null && (typeof schema === 'object' || typeof schema === 'function') ? (schema as { _zod?: unknown })._zod : undefined;
  const def = zod !== null && typeof zod === 'object' ? (zod as { def?: unknown }).def : undefined;
  if (def === null || typeof def !== 'object') throw new TypeError(`${where}: expected a zod 4 schema (with "_zod.def")`);
  return schema as SchemaNode;
}

/** The definition of a schema and those of its checks (a format schema such as `z.email()` is its own check). */
function checksOf(s: SchemaNode): Def[] {
  const def = s._zod.def;
  const out: Def[] = def.check ? [def] : [];
  for (const c of def.checks ?? []) out.push(c._zod.def);
  return out;
}

// Realistic personal data, in several scripts, with the punctuation real names and addresses carry.
const FIRST = ['Ada', 'Grace', 'José', 'Zoë', 'Łukasz', 'Søren', 'Amélie', 'Nguyễn', '李', 'Мария', 'محمد', 'Ngozi', 'Siobhán', "D'Arcy", 'Jean-Luc', 'Ōtsuka'];
const LAST = ['Lovelace', 'Hopper', 'Núñez', "O'Brien", 'Müller', 'Ødegaard', 'Smith-Jones', 'van der Berg', '小龙', 'Иванова', 'الحسن', 'Okafor', 'Ní Bhriain', 'Çelik', 'Kowalski', 'Đặng'];
const STREETS = ['St James Sq', 'Rue de la Paix', 'Calle Mayor', 'Hauptstraße', 'Baker Street', 'Nevsky Prospekt', '中山路', 'Ulica Długa', 'Avenida Paulista'];
const CITIES = ['London', 'Paris', 'São Paulo', 'München', 'Kraków', 'Tōkyō', 'Lagos', 'Reykjavík', 'القاهرة'];
const DOMAINS = ['example.com', 'example.org', 'mail.example.net', 'example.co.uk'];

const personName = fc.tuple(fc.constantFrom(...FIRST), fc.constantFrom(...LAST)).map(([f, l]) => `${f} ${l}`);
const emailLocal = fc.tuple(fc.constantFrom('ada', 'grace', 'jose', 'zoe', 'lukasz', 'soren', 'ngozi', 'j.smith', 'o.brien'), fc.nat({ max: 9999 }));
/** Email addresses of the shape zod's `email()` accepts. */
const email = fc.tuple(emailLocal, fc.constantFrom(...DOMAINS)).map(([[l, n], d]) => `${l}${n}@${d}`);
/** Phone numbers in E.164 (`+` and 8 to 15 digits). */
const e164 = fc.tuple(fc.integer({ min: 1, max: 9 }), fc.stringMatching(/^[0-9]{7,14}$/)).map(([c, rest]) => `+${c}${rest}`);
const phone = fc.oneof(e164, fc.tuple(fc.integer({ min: 100, max: 999 }), fc.integer({ min: 1000, max: 9999 })).map(([a, b]) => `(555) ${a}-${b}`));
const address = fc
  .tuple(fc.integer({ min: 1, max: 999 }), fc.constantFrom(...STREETS), fc.constantFrom(...CITIES))
  .map(([n, s, c]) => `${n} ${s}, ${c}`);
const ssnLike = fc.tuple(fc.integer({ min: 100, max: 899 }), fc.integer({ min: 10, max: 99 }), fc.integer({ min: 1000, max: 9999 })).map(([a, b, c]) => `${a}-${b}-${c}`);

/** Realistic PII-like strings, plus arbitrary text (any code points, lone surrogates included) so nothing is assumed about a field's content. */
export const piiString: fc.Arbitrary<string> = fc.oneof(
  personName,
  email,
  phone,
  address,
  ssnLike,
  fc.string({ unit: 'grapheme', maxLength: 24 }),
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ maxLength: 24 }),
);

/** Length as zod's length checks count it: in code points (a lone surrogate is one). */
const codePoints = (s: string): number => [...s].length;

/** Fit a string between zod's length bounds. */
function fitLength(s: string, min: number, max: number): string {
  const points = [...s];
  const out = points.length > max ? points.slice(0, max).join('') : s;
  return out + 'x'.repeat(Math.max(0, min - codePoints(out)));
}

function stringArbitrary(s: SchemaNode, where: string): fc.Arbitrary<string> {
  let min = 0;
  let max = Infinity;
  let format: Def | undefined;
  for (const c of checksOf(s)) {
    if (c.check === 'min_length') min = Math.max(min, c.minimum as number);
    else if (c.check === 'max_length') max = Math.min(max, c.maximum as number);
    else if (c.check === 'length_equals') min = max = c.length as number;
    else if (c.check === 'string_format') {
      if (format) throw new TypeError(`${where}: more than one string format`);
      format = c;
    } else throw new TypeError(`${where}: string check "${String(c.check)}" is not supported by the generator`);
  }
  if (!format) return piiString.map((v) => fitLength(v, min, max === Infinity ? Math.max(min, 64) : max));
  const base = formatArbitrary(format, where);
  return min > 0 || max < Infinity ? base.filter((v) => codePoints(v) >= min && codePoints(v) <= max) : base;
}

function formatArbitrary(f: Def, where: string): fc.Arbitrary<string> {
  switch (f.format) {
    case 'email':
      return email;
    case 'uuid':
    case 'guid':
      return fc.uuid();
    case 'url':
      return fc.webUrl();
    case 'e164':
      return e164;
    case 'datetime':
      if (f.local || f.offset) break;
      return fc.date({ min: new Date(-62135596800000), max: new Date(253402300799999), noInvalidDate: true }).map((d) => d.toISOString());
    case 'date':
      return fc.date({ min: new Date(0), max: new Date(253402214400000), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10));
    default:
      break;
  }
  // Any other format that exposes its regular expression (starts_with, regex, cuid, ipv4, ...).
  if (f.pattern instanceof RegExp) return fc.stringMatching(f.pattern);
  throw new TypeError(`${where}: string format "${String(f.format)}" is not supported by the generator`);
}

const INT_FORMATS: Record<string, [number, number]> = {
  safeint: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
};

function numberArbitrary(s: SchemaNode, where: string): fc.Arbitrary<number> {
  let min = -Number.MAX_VALUE;
  let max = Number.MAX_VALUE;
  let minExcluded = false;
  let maxExcluded = false;
  let int = false;
  for (const c of checksOf(s)) {
    if (c.check === 'number_format') {
      const r = INT_FORMATS[c.format as string];
      if (r) {
        int = true;
        min = Math.max(min, r[0]);
        max = Math.min(max, r[1]);
      } else if (c.format === 'float32') {
        min = Math.max(min, -3.4028234663852886e38);
        max = Math.min(max, 3.4028234663852886e38);
      }
    } else if (c.check === 'greater_than') {
      const v = Number(c.value);
      if (v > min || (v === min && !c.inclusive)) [min, minExcluded] = [v, !c.inclusive];
    } else if (c.check === 'less_than') {
      const v = Number(c.value);
      if (v < max || (v === max && !c.inclusive)) [max, maxExcluded] = [v, !c.inclusive];
    } else throw new TypeError(`${where}: number check "${String(c.check)}" is not supported by the generator`);
  }
  if (int) return fc.integer({ min: Math.ceil(minExcluded ? min + 1 : min), max: Math.floor(maxExcluded ? max - 1 : max) });
  // -0 is a number zod accepts and one a round trip must keep.
  return fc.double({ min, max, minExcluded, maxExcluded, noNaN: true, noDefaultInfinity: true });
}

function bigintArbitrary(s: SchemaNode, where: string): fc.Arbitrary<bigint> {
  let min: bigint | undefined;
  let max: bigint | undefined;
  for (const c of checksOf(s)) {
    if (c.check === 'greater_than') min = (c.value as bigint) + (c.inclusive ? 0n : 1n);
    else if (c.check === 'less_than') max = (c.value as bigint) - (c.inclusive ? 0n : 1n);
    else if (c.check !== 'bigint_format') throw new TypeError(`${where}: bigint check "${String(c.check)}" is not supported by the generator`);
  }
  return fc.bigInt({ min: min ?? -(2n ** 128n), max: max ?? 2n ** 128n });
}

function lengthBounds(s: SchemaNode): { minLength: number; maxLength: number } {
  let minLength = 0;
  let maxLength = 4;
  let maxSet = false;
  for (const c of checksOf(s)) {
    if (c.check === 'min_length') minLength = c.minimum as number;
    else if (c.check === 'max_length') [maxLength, maxSet] = [c.maximum as number, true];
    else if (c.check === 'length_equals') [minLength, maxLength, maxSet] = [c.length as number, c.length as number, true];
  }
  if (!maxSet) maxLength = Math.max(maxLength, minLength);
  return { minLength, maxLength };
}

/** Optional (absent or `undefined`) in an object: the key may be left out. */
function isOptional(s: SchemaNode): boolean {
  const t = s._zod.def.type;
  return t === 'optional' || t === 'default' || t === 'prefault' || t === 'catch';
}

function walk(schema: unknown, where: string): fc.Arbitrary<unknown> {
  const s = node(schema, where);
  const def = s._zod.def;
  switch (def.type) {
    case 'string':
      return stringArbitrary(s, where);
    case 'number':
      return numberArbitrary(s, where);
    case 'bigint':
      return bigintArbitrary(s, where);
    case 'boolean':
      return fc.boolean();
    case 'date':
      return fc.date({ noInvalidDate: true });
    case 'nan':
      return fc.constant(Number.NaN);
    case 'null':
      return fc.constant(null);
    case 'undefined':
    case 'void':
      return fc.constant(undefined);
    case 'literal':
      return fc.constantFrom(...(def.values as unknown[]));
    case 'enum':
      return fc.constantFrom(...new Set(Object.values(def.entries as Record<string, unknown>)));
    case 'optional':
      return fc.option(walk(def.innerType, where), { nil: undefined });
    case 'nullable':
      return fc.option(walk(def.innerType, where), { nil: null });
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
    case 'nonoptional':
      return walk(def.innerType, where);
    case 'pipe':
      // The input side: what the app hands to encryptFields before any transform.
      return walk(def.in, where);
    case 'array':
      return fc.array(walk(def.element, `${where}[]`), lengthBounds(s));
    case 'tuple': {
      const items = (def.items as unknown[]).map((it, i) => walk(it, `${where}[${i}]`));
      const head = fc.tuple(...items);
      if (!def.rest) return head;
      return fc.tuple(head, fc.array(walk(def.rest, `${where}[]`), { maxLength: 3 })).map(([h, r]) => [...h, ...r]);
    }
    case 'set':
      return fc.array(walk(def.valueType, `${where}[item]`), lengthBounds(s)).map((v) => new Set(v));
    case 'map':
      return fc.array(fc.tuple(walk(def.keyType, `${where}[key]`), walk(def.valueType, `${where}[value]`)), { maxLength: 4 }).map((e) => new Map(e));
    case 'record': {
      const key = walk(def.keyType, `${where}[key]`);
      return fc.dictionary(key.map(String), walk(def.valueType, `${where}[value]`), { maxKeys: 4, noNullPrototype: true });
    }
    case 'object': {
      const shape = def.shape as Record<string, unknown>;
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      const required: string[] = [];
      for (const [k, v] of Object.entries(shape)) {
        model[k] = walk(v, `${where}.${k}`);
        if (!isOptional(node(v, `${where}.${k}`))) required.push(k);
      }
      return fc.record(model, { requiredKeys: required });
    }
    case 'union':
      return fc.oneof(...(def.options as unknown[]).map((o) => walk(o, where)));
    case 'custom': {
      // z.instanceof(Uint8Array) records its class; the value encoding keeps Uint8Array (SPEC.md §11).
      const cls = s._zod.bag?.Class;
      if (cls === Uint8Array) return fc.uint8Array({ maxLength: 48 });
      throw new TypeError(`${where}: z.custom cannot be generated; use z.instanceof(Uint8Array) for bytes`);
    }
    case 'lazy':
      return walk((def.getter as () => unknown)(), where);
    case 'any':
    case 'unknown':
      return fc.oneof(piiString, fc.integer(), fc.boolean(), fc.constant(null));
    default:
      throw new TypeError(`${where}: zod type "${String(def.type)}" is not supported by the generator`);
  }
}

/**
 * An arbitrary of records the schema accepts: objects (optional keys sometimes
 * absent), arrays, tuples, optional and nullable values, strings with their
 * length bounds and formats (`email`, `uuid`, `url`, `e164`, `iso.datetime`,
 * `iso.date`, any format with a pattern), numbers (`int`, bounds, `-0`),
 * bigints, booleans, dates, `Uint8Array` (`z.instanceof(Uint8Array)`), maps,
 * sets, records, enums, literals and unions. Plain strings are realistic
 * PII-like values or arbitrary text. Pipes and transforms are generated from
 * their input side.
 * @param schema a zod 4 schema.
 * @returns a fast-check arbitrary (it shrinks as fast-check's own do).
 * @throws TypeError when the schema holds a type or check the generator cannot honour
 *   (refinements other than formats and bounds, `z.custom` other than `z.instanceof(Uint8Array)`).
 * @example
 * ```ts
 * fc.assert(fc.property(recordArbitrary(UserSchema), (u) => UserSchema.safeParse(u).success));
 * ```
 */
export function recordArbitrary<T>(schema: RecordSchema<T>): fc.Arbitrary<T> {
  return walk(schema, '$') as fc.Arbitrary<T>;
}

/**
 * Selectors of the fields marked `.meta({ sensitive: true })` in the schema
 * (`email`, `address.street`, `cards[].number`). A mark inside something a
 * selector cannot enter (a map, a record, a set, a union) marks the nearest
 * property a selector can name.
 * @param schema a zod 4 schema.
 * @returns the selectors, in the schema's order.
 */
export function sensitiveSelectors(schema: RecordSchema): string[] {
  const out: string[] = [];
  const marked = (s: SchemaNode): boolean => {
    const meta = z.globalRegistry.get(s as unknown as z.ZodType) as { sensitive?: unknown } | undefined;
    return meta?.sensitive === true;
  };
  // Does anything under `s` carry the mark?
  const anyMarked = (schema: unknown, depth: number): boolean => {
    if (depth > 32) return false;
    const s = node(schema, '$');
    if (marked(s)) return true;
    const d = s._zod.def;
    const kids: unknown[] = [d.innerType, d.in, d.element, d.keyType, d.valueType, d.rest, ...((d.options as unknown[]) ?? []), ...((d.items as unknown[]) ?? [])];
    if (d.shape) kids.push(...Object.values(d.shape as object));
    return kids.some((k) => k !== undefined && k !== null && anyMarked(k, depth + 1));
  };
  const visit = (schema: unknown, path: string): void => {
    const s = node(schema, path || '$');
    if (path && marked(s)) return void out.push(path);
    const d = s._zod.def;
    switch (d.type) {
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'catch':
      case 'readonly':
      case 'nonoptional':
        return visit(d.innerType, path);
      case 'pipe':
        return visit(d.in, path);
      case 'object':
        for (const [k, v] of Object.entries(d.shape as object)) visit(v, path ? `${path}.${k}` : k);
        return;
      case 'array':
        return path ? visit(d.element, `${path}[]`) : undefined;
      default:
        if (path && anyMarked(s, 0)) out.push(path);
    }
  };
  visit(schema, '');
  return out;
}
