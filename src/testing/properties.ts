/**
 * Invariants of an app's record encryption, as fast-check properties over
 * records generated from the app's zod 4 schema: round trip, no plaintext
 * left behind, binding, blind indexes and schema. Each property can be given
 * to `fc.assert` (it shrinks as usual); {@link checkRecordEncryption} runs
 * all that apply and throws one error naming the invariant that failed.
 * @module
 */
import fc from 'fast-check';
import { sha256 } from '@noble/hashes/sha2.js';
import { checkContext, type EncryptionContext } from '../core/context.js';
import { checkDecryptOptions, decryptChecked } from '../core/envelope.js';
import { EnvelopeKitError } from '../core/errors.js';
import { LAYOUT_FIELD, RECORD_HEADER_PREFIX, TEXT_PREFIX, envelopeFromText, keyIdRanges, parseHeader } from '../core/format.js';
import type { KeyProvider } from '../core/provider.js';
import { base64UrlDecode, base64UrlEncode } from '../internal/base64.js';
import { utf8Encode, wipe } from '../internal/bytes.js';
import { BLIND_INDEX_PURPOSE, type BlindIndex } from '../records/blind-index.js';
import { decryptFields, encryptFields, type DecryptFieldsOptions, type EncryptFieldsOptions, type RecordId, type RecordVersion } from '../records/fields.js';
import { encodeValue } from '../records/value-encoding.js';
import { recordArbitrary, sensitiveSelectors, type RecordSchema } from './arbitrary.js';
import {
  type Located,
  containsBytes,
  envelopeBytes,
  firstDifference,
  leaves,
  locate,
  parentsOf,
  pathText,
  textForms,
  valueAt,
  withValueAt,
} from './inspect.js';

/** A blind index of the configuration: `encryptFields`' `{ index, into }`, and what the property needs to judge it. */
export interface BlindIndexCheck {
  /** The index (from `openBlindIndex`), as given to `encryptFields`. */
  readonly index: BlindIndex;
  /** The property beside the field that receives the index, as given to `encryptFields`. */
  readonly into: string;
  /**
   * The intended normalisation (the one given to `openBlindIndex`): values equal after it must have
   * equal indexes, values that differ after it must have different ones. Default: none, so every
   * distinct value must have its own index.
   */
  readonly normalize?: (value: string) => string;
  /** The index key as stored (the result of `createBlindIndexKey`): with it, the stored records are searched for the key's bytes. */
  readonly storedKey?: string;
}

/**
 * What the invariants check: the options of `encryptFields` / `decryptFields`
 * (same names and types; `recordId` and `recordVersion` may also be functions
 * of the record, as in `encryptRecords`), the app's schema, and which fields
 * are sensitive.
 */
export interface RecordEncryptionConfig<T extends object = Record<string, unknown>> {
  /** The app's zod 4 schema of a plaintext record: records are generated from it and decrypted records must pass it. */
  readonly schema: RecordSchema<T>;
  /** The `fields` option of both calls. */
  readonly fields: readonly string[];
  /**
   * Selectors of the fields whose values must never appear in the stored form, whatever `fields` lists.
   * Fields marked `.meta({ sensitive: true })` in the schema are added to them.
   */
  readonly sensitive?: readonly string[];
  /** The `recordId` of both calls, or a function of the plaintext record that gives it (as `encryptRecords` takes it). */
  readonly recordId?: RecordId | ((record: T) => RecordId);
  /** The `recordVersion` of both calls, or a function of the plaintext record that gives it. */
  readonly recordVersion?: RecordVersion | ((record: T) => RecordVersion);
  /** The `encryptionContext` of both calls. */
  readonly encryptionContext?: EncryptionContext;
  /** The `blindIndexes` option of `encryptFields`, by selector, each with what {@link blindIndexProperty} needs. */
  readonly blindIndexes?: { readonly [selector: string]: BlindIndexCheck | undefined };
  /** The `headerField` of both calls (compact storage). */
  readonly headerField?: string;
  /** The provider of both calls. */
  readonly provider: KeyProvider;
  /** The `keyId` of `encryptFields`. */
  readonly keyId: string;
}

/** The names of the invariants, as error messages and {@link RecordEncryptionCheckError.invariant} give them. */
export type InvariantName = 'round trip' | 'no plaintext left behind' | 'binding' | 'blind index' | 'schema';

/** Options of {@link checkRecordEncryption}. */
export interface CheckRecordEncryptionOptions {
  /** Records tried per invariant (fast-check's `numRuns`, default 100). */
  readonly numRuns?: number;
  /** fast-check's seed, to replay a failure. */
  readonly seed?: number;
}

/** An invariant failed: the message names it and holds fast-check's report (seed, shrunk counterexample, the failure). */
export class RecordEncryptionCheckError extends Error {
  override readonly name: string = 'RecordEncryptionCheckError';
  /** The invariant that failed. */
  readonly invariant: InvariantName;
  constructor(invariant: InvariantName, report: string, options?: { cause?: unknown }) {
    super(`record encryption invariant "${invariant}" failed\n${report}`, options);
    this.invariant = invariant;
  }
}

type Plain = Record<string, unknown>;

function idOf<T extends object>(config: RecordEncryptionConfig<T>, r: T): { recordId?: RecordId; recordVersion?: RecordVersion } {
  const id = typeof config.recordId === 'function' ? config.recordId(r) : config.recordId;
  const version = typeof config.recordVersion === 'function' ? config.recordVersion(r) : config.recordVersion;
  return { ...(id === undefined ? {} : { recordId: id }), ...(version === undefined ? {} : { recordVersion: version }) };
}

function seal<T extends object>(config: RecordEncryptionConfig<T>, r: T): Promise<Plain> {
  const blindIndexes: Record<string, { index: BlindIndex; into: string }> = {};
  for (const [sel, b] of Object.entries(config.blindIndexes ?? {})) if (b) blindIndexes[sel] = { index: b.index, into: b.into };
  const options: EncryptFieldsOptions = {
    provider: config.provider,
    keyId: config.keyId,
    fields: config.fields,
    ...idOf(config, r),
    ...(config.encryptionContext ? { encryptionContext: config.encryptionContext } : {}),
    ...(config.blindIndexes ? { blindIndexes } : {}),
    ...(config.headerField === undefined ? {} : { headerField: config.headerField }),
  };
  return encryptFields(r as Plain, options) as Promise<Plain>;
}

function open<T extends object>(config: RecordEncryptionConfig<T>, stored: unknown, r: T, change: Partial<DecryptFieldsOptions> = {}): Promise<Plain> {
  const options: DecryptFieldsOptions = {
    provider: config.provider,
    fields: config.fields,
    ...idOf(config, r),
    ...(config.encryptionContext ? { encryptionContext: config.encryptionContext } : {}),
    ...(config.headerField === undefined ? {} : { headerField: config.headerField }),
    ...change,
  };
  return decryptFields(stored as Plain, options) as Promise<Plain>;
}

/** A copy of the arrays and ordinary objects (prototype kept, own enumerable properties in order) of a value; anything else shared. */
function copyTree(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(copyTree);
  if (v === null || typeof v !== 'object') return v;
  const proto = Object.getPrototypeOf(v) as object | null;
  if (proto !== null && proto !== Object.prototype) return v;
  const out = Object.create(proto) as Plain;
  for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: copyTree((v as Plain)[k]), enumerable: true, writable: true, configurable: true });
  return out;
}

/** The decrypted record without what encryptFields added: the header property and each blind index. */
function withoutAdded<T extends object>(config: RecordEncryptionConfig<T>, d: Plain): Plain {
  const out = copyTree(d) as Plain;
  if (config.headerField !== undefined) delete out[config.headerField];
  for (const [sel, b] of Object.entries(config.blindIndexes ?? {})) {
    if (!b) continue;
    for (const p of parentsOf(out, sel)) if (p.value !== null && typeof p.value === 'object') delete (p.value as Plain)[b.into];
  }
  return out;
}

const show = (v: unknown): string =>
  JSON.stringify(v, (_, x: unknown) =>
    typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? `Uint8Array(${x.length})` : x instanceof Map ? { Map: [...x] } : x instanceof Set ? { Set: [...x] } : x,
  ) ?? String(v);

async function roundTrip<T extends object>(config: RecordEncryptionConfig<T>, r: T): Promise<void> {
  const stored = await seal(config, r);
  const back = withoutAdded(config, await open(config, stored, r));
  const diff = firstDifference(back, r);
  if (diff !== undefined) throw new Error(`the decrypted record differs from the original at ${diff}`);
}

/**
 * Round trip: `decryptFields(encryptFields(r))` deep-equals `r` with
 * `Object.is` semantics (`-0`, `NaN`), prototypes and key order included, once the
 * header property and blind indexes `encryptFields` added are removed.
 * @param config what to check.
 * @returns a fast-check property for `fc.assert`.
 */
export function roundTripProperty<T extends object>(config: RecordEncryptionConfig<T>): fc.IAsyncPropertyWithHooks<[T]> {
  return fc.asyncProperty(recordArbitrary(config.schema), (r) => roundTrip(config, r));
}

/** The selectors the no-plaintext property searches for: `sensitive` and the schema's `.meta({ sensitive: true })` fields. */
export function sensitiveFieldsOf<T extends object>(config: RecordEncryptionConfig<T>): string[] {
  return [...new Set([...(config.sensitive ?? []), ...sensitiveSelectors(config.schema)])];
}

/** Shortest sensitive text (in UTF-16 code units) searched for; shorter values occur by chance and prove nothing. */
export const MIN_SENSITIVE_LENGTH = 4;

/** What a stored record shows of its sensitive values. */
export interface PlaintextReport {
  /** Each sensitive value found: the field it belongs to and where in the stored record it is readable. */
  readonly leaks: readonly { readonly field: string; readonly storedAt: string }[];
  /** Paths of the blind indexes in the stored record: documented leakage (equal values have equal indexes), not searched. */
  readonly blindIndexes: readonly string[];
}

function needlesOf(v: unknown): { text: string[]; bytes: Uint8Array[] } {
  const text: string[] = [];
  const bytes: Uint8Array[] = [];
  for (const l of leaves(v)) {
    for (const t of textForms(l.value)) if (t.length >= MIN_SENSITIVE_LENGTH) text.push(t);
    if (l.value instanceof Uint8Array && l.value.length >= MIN_SENSITIVE_LENGTH) bytes.push(l.value);
  }
  for (const t of text) bytes.push(utf8Encode(t));
  return { text, bytes };
}

/**
 * Search a stored record for the sensitive values of its plaintext. Every
 * leaf of the stored record (and every key) is searched in its text forms
 * (strings as they are, numbers and bigints in decimal, dates in ISO 8601
 * and milliseconds, bytes in hex, base64 and base64url), and the bytes of
 * every envelope (its header holds the context and key ids in clear) for the
 * UTF-8 of each sensitive value. Sensitive values are searched for in the
 * same text forms; those shorter than {@link MIN_SENSITIVE_LENGTH} characters
 * (and booleans, `null`, `undefined`, non-finite numbers) are skipped, since
 * they occur by chance. Searched are the field's own place in the stored
 * record (and all below it: keys too) and the bytes of every envelope and
 * header anywhere; other plaintext fields are not, since in generated records
 * they hold equal values only by chance.
 * @param config what was encrypted, and which fields are sensitive.
 * @param record the plaintext record.
 * @param stored what `encryptFields` made of it.
 * @returns the leaks found and the blind indexes seen.
 */
export function findPlaintext<T extends object>(config: RecordEncryptionConfig<T>, record: T, stored: unknown): PlaintextReport {
  const indexPaths = new Set<string>();
  for (const [sel, b] of Object.entries(config.blindIndexes ?? {})) {
    if (b) for (const p of parentsOf(stored, sel)) indexPaths.add(pathText([...p.steps, b.into]));
  }
  const hay = leaves(stored).filter((l) => !indexPaths.has(pathText(l.steps)));
  const leaks: { field: string; storedAt: string }[] = [];
  for (const field of sensitiveFieldsOf(config)) {
    for (const at of locate(record, field)) {
      const n = needlesOf(at.value);
      // The field's own place and everything below it, and every envelope (their headers are in clear).
      const own = (h: Located) => at.steps.every((s, i) => h.steps[i] === s);
      for (const h of hay) {
        if (!own(h) && !(typeof h.value === 'string' && envelopeBytes(h.value))) continue;
        const env = typeof h.value === 'string' ? envelopeBytes(h.value) : undefined;
        const found = env
          ? n.bytes.some((b) => containsBytes(env, b))
          : textForms(h.value).some((t) => n.text.some((s) => t.includes(s))) || (h.value instanceof Uint8Array && n.bytes.some((b) => containsBytes(h.value as Uint8Array, b)));
        if (found) leaks.push({ field: pathText(at.steps), storedAt: pathText(h.steps) });
      }
    }
  }
  return { leaks, blindIndexes: [...indexPaths] };
}

/**
 * No plaintext left behind: no value of a sensitive field (the `sensitive`
 * selectors, and fields marked `.meta({ sensitive: true })`) is readable in the
 * stored record, whatever `fields` lists, so a sensitive field missing from
 * `fields` fails. Searched as {@link findPlaintext} says (values shorter than
 * 4 characters are skipped); blind indexes are not searched (see
 * {@link PlaintextReport.blindIndexes}).
 * @param config what to check; it must name at least one sensitive field.
 * @returns a fast-check property for `fc.assert`.
 * @throws TypeError when no field is sensitive.
 */
export function noPlaintextProperty<T extends object>(config: RecordEncryptionConfig<T>): fc.IAsyncPropertyWithHooks<[T]> {
  if (sensitiveFieldsOf(config).length === 0) throw new TypeError('no sensitive field: give "sensitive" or mark fields with .meta({ sensitive: true })');
  return fc.asyncProperty(recordArbitrary(config.schema), async (r) => {
    const { leaks } = findPlaintext(config, r, await seal(config, r));
    if (leaks.length > 0) throw new Error(`sensitive field ${leaks[0]!.field} is readable in the stored record at ${leaks[0]!.storedAt}`);
  });
}

/** Where a stored record holds sealed fields (envelope strings at the places `fields` selects). */
function sealedPlaces(fields: readonly string[], stored: unknown): Located[] {
  const out: Located[] = [];
  for (const f of fields) for (const l of locate(stored, f)) if (typeof l.value === 'string' && envelopeBytes(l.value)) out.push(l);
  return out;
}

async function mustFail(what: string, p: Promise<unknown>, code?: string): Promise<void> {
  let result: unknown;
  try {
    result = await p;
  } catch (e) {
    if (!(e instanceof EnvelopeKitError)) throw new Error(`${what}: failed with ${String(e)}, not with an envelope-kit error`);
    if (code !== undefined && e.code !== code) throw new Error(`${what}: failed with ${e.code}, not ${code}`);
    return;
  }
  throw new Error(`${what}: decrypted (to ${show(result).slice(0, 200)})`);
}

/** A record id other than `id` (or some id when there is none). */
function otherId(id: RecordId | undefined): RecordId {
  if (id === undefined) return 'another-record';
  if (typeof id === 'number') return id === Number.MAX_SAFE_INTEGER ? id - 1 : id + 1;
  return id.length < 512 ? `${id}'` : id.slice(1) || 'x';
}

/** A context the record's does not contain. */
function otherContext(ctx: EncryptionContext | undefined): EncryptionContext {
  const keys = Object.keys(ctx ?? {});
  if (ctx && keys.length > 0) return { ...ctx, [keys[0]!]: `${ctx[keys[0]!]}'` };
  return { table: 'another-table' };
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Whether `changed` differs from the stored string `text` (a self-contained field or a record
 * header) only in the bytes of key ids written beside the blobs of its data-key list: the one
 * change that may still decrypt, to the same record, since the data-key list is not authenticated
 * and the local provider reads its key id from the blob (SPEC.md §9.13).
 */
function onlyKeyIdsChanged(text: string, changed: string): boolean {
  const prefix = text.startsWith(TEXT_PREFIX) ? TEXT_PREFIX : text.startsWith(RECORD_HEADER_PREFIX) ? RECORD_HEADER_PREFIX : undefined;
  if (prefix === undefined || !changed.startsWith(prefix)) return false;
  const before = base64UrlDecode(text.slice(prefix.length));
  const after = base64UrlDecode(changed.slice(prefix.length));
  if (!before || !after || before.length !== after.length) return false;
  let ranges: [number, number][];
  try {
    ranges = keyIdRanges(parseHeader(before, 255, [LAYOUT_FIELD], prefix === RECORD_HEADER_PREFIX).header);
  } catch {
    return false;
  }
  for (let b = 0; b < before.length; b++) {
    if (before[b] !== after[b] && !ranges.some(([s, e]) => b >= s && b < e)) return false;
  }
  return true;
}

/**
 * Binding: a sealed field moved to another path or array element of its
 * record, or put at its own path in another record (one with another record
 * id), fails to decrypt with `ERR_DECRYPTION_FAILED`; so does the record read
 * with another record id or another encryption context; and one character
 * changed anywhere in a sealed field or the header property makes
 * `decryptFields` throw, unless the change is confined to the bytes of a key id
 * written beside a blob (the data-key list is not authenticated, SPEC.md
 * §9.13): then it may decrypt, but only to the same record. Without `recordId`, fields move between records
 * unnoticed, and this property fails.
 * @param config what to check.
 * @returns a fast-check property over two records and the choices of field, place and character.
 */
export function bindingProperty<T extends object>(config: RecordEncryptionConfig<T>): fc.IAsyncPropertyWithHooks<[T, T, number, number, number]> {
  const arb = recordArbitrary(config.schema);
  const D = 'ERR_DECRYPTION_FAILED';
  return fc.asyncProperty(arb, arb, fc.nat(), fc.nat(), fc.nat(), async (r, r2, i, j, k) => {
    const stored = await seal(config, r);
    const places = sealedPlaces(config.fields, stored);
    if (places.length === 0) return;
    const a = places[i % places.length]!;
    if (places.length > 1) {
      const b = places.filter((p) => p !== a)[j % (places.length - 1)]!;
      await mustFail(`field ${pathText(a.steps)} moved to ${pathText(b.steps)}`, open(config, withValueAt(stored, b.steps, a.value), r), D);
    }
    const id = idOf(config, r).recordId;
    const id2 = idOf(config, r2).recordId;
    // Two generated records with the same id are two versions of one row, not two rows.
    if (typeof config.recordId !== 'function' || id !== id2) {
      const stored2 = await seal(config, r2);
      const mine = new Set(places.map((p) => pathText(p.steps)));
      const theirs = sealedPlaces(config.fields, stored2).filter((p) => mine.has(pathText(p.steps)));
      if (theirs.length > 0) {
        const c = theirs[j % theirs.length]!;
        await mustFail(`field ${pathText(c.steps)} of another record put in this one`, open(config, withValueAt(stored, c.steps, c.value), r), D);
      }
    }
    await mustFail('the record read with another record id', open(config, stored, r, { recordId: otherId(id) }), D);
    await mustFail('the record read with another encryption context', open(config, stored, r, { encryptionContext: otherContext(config.encryptionContext) }), D);
    const targets = config.headerField === undefined ? places : [...places, { steps: [config.headerField], value: stored[config.headerField] }];
    const t = targets[k % targets.length]!;
    const text = t.value as string;
    const at = (i + j) % text.length;
    const was = B64URL.indexOf(text[at]!);
    const changed = text.slice(0, at) + B64URL[(was + 1 + (k % 63)) % 64] + text.slice(at + 1);
    const what = `${pathText(t.steps)} with character ${at} changed`;
    if (!onlyKeyIdsChanged(text, changed)) {
      await mustFail(what, open(config, withValueAt(stored, t.steps, changed), r));
      return;
    }
    // A change confined to a key id beside a blob may decrypt, and then to the same record (SPEC.md §9.13).
    let back: Plain;
    try {
      back = await open(config, withValueAt(stored, t.steps, changed), r);
    } catch (e) {
      if (!(e instanceof EnvelopeKitError)) throw new Error(`${what}: failed with ${String(e)}, not with an envelope-kit error`);
      return;
    }
    // (withValueAt made the containers on the way plain objects, so a null prototype may have become Object.prototype.)
    const diff = firstDifference(withoutAdded(config, back), r, '$', true);
    if (diff !== undefined) throw new Error(`${what} (a key id only): decrypted to another record (it differs at ${diff})`);
  });
}

/** A key for "equal after the intended normalisation": typed, so `1`, `1n` and `"1"` differ, and `-0` is not `0`. */
function sameKey(v: unknown, normalize: ((s: string) => string) | undefined): string {
  if (typeof v === 'string') return `s:${normalize ? normalize(v) : v}`;
  return `v:${base64UrlEncode(encodeValue(v))}`;
}

/** Poisson tail P(X > t) for mean m. */
function poissonAbove(t: number, m: number): number {
  let term = Math.exp(-m);
  let cdf = term;
  for (let x = 1; x <= t; x++) cdf += term *= m / x;
  return Math.max(0, 1 - cdf);
}

/**
 * How many pairs of different values may share an index by chance: the
 * smallest t with P(more than t colliding pairs) below 10⁻⁹, for n values and
 * a b-bit index (pairs collide as a Poisson count of mean n(n−1)/2 / 2^b, the
 * birthday bound). At 64 bits and a few dozen values that is 0.
 */
export function allowedCollisions(n: number, bits: number): number {
  const mean = (n * (n - 1)) / 2 / 2 ** bits;
  let t = 0;
  while (poissonAbove(t, mean) > 1e-9 && t < (n * (n - 1)) / 2) t++;
  return t;
}

/**
 * Blind index, for each configured index over a sample of records: the
 * stored index is the index of the field's value; values equal after the
 * intended `normalize` (case and surrounding spaces changed, when they are
 * equal after it) have equal indexes; values that differ after it have
 * different indexes, allowing {@link allowedCollisions} pairs at the index's
 * width; an index is never the unkeyed SHA-256 of the value; and, with
 * `storedKey`, no stored record holds the index key's bytes (raw, or in hex,
 * base64 or base64url, nor the stored key text).
 * @param config what to check; it must have `blindIndexes`.
 * @returns a fast-check property over 2 to 12 records.
 * @throws TypeError when there is no blind index.
 */
export function blindIndexProperty<T extends object>(config: RecordEncryptionConfig<T>): fc.IAsyncPropertyWithHooks<[T[]]> {
  const entries = Object.entries(config.blindIndexes ?? {}).filter((e): e is [string, BlindIndexCheck] => e[1] !== undefined);
  if (entries.length === 0) throw new TypeError('no blind index in the configuration');
  return fc.asyncProperty(fc.array(recordArbitrary(config.schema), { minLength: 2, maxLength: 12 }), async (records) => {
    const stored = await Promise.all(records.map((r) => seal(config, r)));
    for (const [sel, b] of entries) {
      const byKey = new Map<string, { index: string; value: unknown }>();
      for (const [n, r] of records.entries()) {
        const parents = parentsOf(stored[n], sel);
        const name = (sel.endsWith('?') ? sel.slice(0, -1) : sel).split('.').pop()!;
        for (const p of parents) {
          const idx = valueAt(p.value, [b.into]);
          const value = valueAt(r, [...p.steps, name]);
          if (typeof idx !== 'string') continue;
          const where = `${pathText([...p.steps, b.into])} of record ${n}`;
          if (idx !== b.index.compute(value)) throw new Error(`${where} is not the index of ${pathText([...p.steps, name])}`);
          const plain = typeof value === 'string' ? utf8Encode(b.normalize ? b.normalize(value) : value) : encodeValue(value);
          if (idx === base64UrlEncode(sha256(plain).subarray(0, b.index.bits / 8))) throw new Error(`${where} is an unkeyed hash of the value`);
          if (typeof value === 'string' && b.normalize) {
            for (const variant of [value.toUpperCase(), value.toLowerCase(), ` ${value} `]) {
              if (b.normalize(variant) === b.normalize(value) && b.index.compute(variant) !== idx) {
                throw new Error(`${show(variant)} and ${show(value)} are equal after normalisation but have different indexes`);
              }
            }
          }
          const key = sameKey(value, b.normalize);
          const seen = byKey.get(key);
          if (seen && seen.index !== idx) throw new Error(`equal values ${show(seen.value)} and ${show(value)} have different indexes`);
          byKey.set(key, { index: idx, value });
        }
      }
      const groups = new Map<string, unknown[]>();
      for (const { index, value } of byKey.values()) groups.set(index, [...(groups.get(index) ?? []), value]);
      let pairs = 0;
      for (const g of groups.values()) pairs += (g.length * (g.length - 1)) / 2;
      if (pairs > allowedCollisions(byKey.size, b.index.bits)) {
        const g = [...groups.values()].find((x) => x.length > 1)!;
        throw new Error(`different values ${g.map(show).join(' and ')} have the same ${b.index.bits}-bit index (${pairs} colliding pairs among ${byKey.size} values)`);
      }
      if (b.storedKey !== undefined) await keyNotStored(config, b, stored);
    }
  });
}

async function keyNotStored<T extends object>(config: RecordEncryptionConfig<T>, b: BlindIndexCheck, stored: readonly Plain[]): Promise<void> {
  const { plaintext: key } = await decryptChecked(
    envelopeFromText(b.storedKey!),
    checkDecryptOptions({ provider: config.provider }),
    checkContext({ [BLIND_INDEX_PURPOSE]: b.index.name }),
  );
  try {
    const forms = [...textForms(key), b.storedKey!];
    for (const [n, s] of stored.entries()) {
      for (const l of leaves(s)) {
        const env = typeof l.value === 'string' ? envelopeBytes(l.value) : undefined;
        const hit =
          (env && containsBytes(env, key)) ||
          (l.value instanceof Uint8Array && containsBytes(l.value, key)) ||
          textForms(l.value).some((t) => forms.some((f) => t.includes(f)));
        if (hit) throw new Error(`record ${n} holds the key of blind index ${JSON.stringify(b.index.name)} at ${pathText(l.steps)}`);
      }
    }
  } finally {
    wipe(key);
  }
}

/**
 * Schema: the decrypted record (header property and blind indexes removed)
 * passes `schema.safeParse`, and the schema's output equals it, so a schema
 * that strips or rewrites a field the app stores fails (a union of objects
 * whose first option lacks a key, say). A schema with intended transforms
 * fails this property by design.
 * @param config what to check.
 * @returns a fast-check property for `fc.assert`.
 */
export function schemaProperty<T extends object>(config: RecordEncryptionConfig<T>): fc.IAsyncPropertyWithHooks<[T]> {
  return fc.asyncProperty(recordArbitrary(config.schema), async (r) => {
    const back = withoutAdded(config, await open(config, await seal(config, r), r));
    const res = config.schema.safeParse(back);
    if (!res.success) throw new Error(`the decrypted record fails the schema: ${res.error.issues.map((i) => `${i.code} at $${i.path.map((p) => `.${String(p)}`).join('')}`).join('; ')}`);
    // zod's output objects are plain where a record may hold null-prototype ones: not a change of data.
    const diff = firstDifference(res.data, back, '$', true);
    if (diff !== undefined) throw new Error(`the schema's output differs from the decrypted record at ${diff}`);
  });
}

/**
 * The properties that apply to a configuration, by invariant: round trip,
 * binding and schema always; no plaintext left behind when a field is
 * sensitive; blind index when there are blind indexes.
 * @param config what to check.
 * @returns the properties, in the order {@link checkRecordEncryption} runs them.
 */
export function recordEncryptionProperties<T extends object>(config: RecordEncryptionConfig<T>): { readonly invariant: InvariantName; readonly property: fc.IAsyncPropertyWithHooks<never> }[] {
  const out: { invariant: InvariantName; property: fc.IAsyncPropertyWithHooks<never> }[] = [
    { invariant: 'round trip', property: roundTripProperty(config) as fc.IAsyncPropertyWithHooks<never> },
  ];
  if (sensitiveFieldsOf(config).length > 0) out.push({ invariant: 'no plaintext left behind', property: noPlaintextProperty(config) as fc.IAsyncPropertyWithHooks<never> });
  out.push({ invariant: 'binding', property: bindingProperty(config) as fc.IAsyncPropertyWithHooks<never> });
  if (Object.values(config.blindIndexes ?? {}).some((b) => b !== undefined)) {
    out.push({ invariant: 'blind index', property: blindIndexProperty(config) as fc.IAsyncPropertyWithHooks<never> });
  }
  out.push({ invariant: 'schema', property: schemaProperty(config) as fc.IAsyncPropertyWithHooks<never> });
  return out;
}

/**
 * Check an app's record encryption: run every invariant that applies
 * ({@link recordEncryptionProperties}) with fast-check, in turn, and throw at
 * the first that fails. It only throws, so it works in any test runner
 * (vitest, jest, `node:test`).
 * @param config what to check: the app's schema, the options of `encryptFields` / `decryptFields`, the sensitive fields.
 * @param options `numRuns` (default 100) and `seed` (to replay a failure).
 * @returns when every invariant held.
 * @throws RecordEncryptionCheckError naming the invariant, with fast-check's report (seed, shrunk counterexample, the failure).
 * @example
 * ```ts
 * await checkRecordEncryption({ schema: User, fields: ['email', 'ssn'], sensitive: ['email', 'ssn'], recordId: (u) => u.id, provider, keyId: 'alias/users' });
 * ```
 */
export async function checkRecordEncryption<T extends object>(config: RecordEncryptionConfig<T>, options: CheckRecordEncryptionOptions = {}): Promise<void> {
  const parameters: fc.Parameters<never> = { numRuns: options.numRuns ?? 100, ...(options.seed === undefined ? {} : { seed: options.seed }) };
  for (const { invariant, property } of recordEncryptionProperties(config)) {
    const details = await fc.check(property, parameters);
    if (details.failed) {
      const cause = details.errorInstance;
      const why = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
      throw new RecordEncryptionCheckError(invariant, `${fc.defaultReportMessage(details) ?? 'failed'}\nFailure: ${why}`, { cause });
    }
  }
}
