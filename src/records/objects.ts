/**
 * Whole values: `encryptObject` / `decryptObject` put any supported JavaScript
 * value into a text envelope and back, types intact (SPEC.md §11), optionally
 * validated by a schema on the way out. Plus bounded-concurrency batches.
 * @module
 */
import {
  type CheckedDecryptOptions,
  type DecryptOptions,
  type EncryptOptions,
  checkDecryptOptions,
  checkEncryptOptions,
  checkPlaintext,
  decryptChecked,
  encryptChecked,
  readRecordBinding,
} from '../core/envelope.js';
import { type RecordId, type RecordVersion, checkRecordBinding, recordBinding } from '../core/binding.js';
import { EnvelopeKitError, InvalidParameterError, SchemaMismatchError, type SchemaIssue } from '../core/errors.js';
import { MAX_TEXT_ENVELOPE_BYTES, envelopeFromTextForDecrypt, envelopeToText } from '../core/format.js';
import { isBytes, wipe } from '../internal/bytes.js';
import { readOptionOf, readOptions } from '../internal/options.js';
import { checkMaxDepth, decodeValueParts, encodeValueLent, pathKey } from './value-encoding.js';
import { type RewrapOptions, checkRewrapOptions, rewrapChecked } from '../core/rewrap.js';

/**
 * A validator with zod's `safeParse` shape (any zod 4 schema fits). Its output
 * type is what {@link decryptObject} returns.
 */
export interface ValueSchema<T> {
  safeParse(data: unknown):
    | { success: true; data: T }
    | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; code?: string }[] } };
}

/** Options of {@link encryptObject}. */
export interface EncryptObjectOptions extends EncryptOptions {
  /** Nesting limit of the value (SPEC.md §11.4): an integer from 1 to 1000, default 64; anything else is refused. */
  readonly maxDepth?: number;
}

/** Options of {@link decryptObject}. */
export interface DecryptObjectOptions<T = unknown> extends DecryptOptions {
  /** Validate the decrypted value; a mismatch throws SchemaMismatchError. */
  readonly schema?: ValueSchema<T>;
  /** Nesting limit of the value (SPEC.md §11.4): an integer from 1 to 1000, default 64; anything else is refused. */
  readonly maxDepth?: number;
}

/**
 * The text of a schema issue's path, walked through the value it describes.
 * Keys of the value are data, so a key present in the value is shown by its
 * position, counted from 0 in the order the value lists them:
 * `$[property 2]`, `$[entry 0]` (a `Map` entry), `$[item 1]` (a `Set` item);
 * array indexes as `[3]`. A property the value lacks is named (`.email`), since
 * that name can only come from the schema. Never throws.
 */
function issuePath(path: readonly PropertyKey[], root: unknown, cache: PositionCache): string {
  let s = '$';
  let node: unknown = root;
  try {
    for (const p of path) {
      if (node === LOST) {
        // Below a step that could not be followed, a key might be data: show none.
        s += typeof p === 'number' ? `[${p}]` : '[?]';
      } else if (typeof p === 'symbol') {
        s += '[?]';
        node = LOST;
      } else if (node instanceof Map) {
        const i = positions(cache, node).get(p);
        s += i === undefined ? '[?]' : `[entry ${i}]`;
        node = i === undefined ? LOST : node.get(p);
      } else if (node instanceof Set) {
        const items = setItems(cache, node);
        s += typeof p === 'number' ? `[item ${p}]` : '[?]';
        node = typeof p === 'number' && p >= 0 && p < items.length ? items[p] : LOST;
      } else if (node !== null && typeof node === 'object' && !Array.isArray(node) && !isBytes(node) && !(node instanceof Date)) {
        const k = String(p);
        const i = positions(cache, node).get(k);
        s += i === undefined ? pathKey('', k) : `[property ${i}]`;
        node = i === undefined ? undefined : (node as Record<string, unknown>)[k];
      } else {
        // Array indexes are positions already; below a primitive or an absent
        // property every step comes from the schema.
        s += typeof p === 'number' ? `[${p}]` : pathKey('', p);
        node = Array.isArray(node) ? (node as unknown[])[p as number] : undefined;
      }
    }
  } catch {
    s += '[?]';
  }
  return s;
}

/** A step of an issue's path that does not lead anywhere in the value. */
const LOST: unique symbol = Symbol('lost');
/** Positions (and Set items) worked out once per node, for the issues of one mismatch. */
interface PositionCache {
  readonly keys: Map<object, Map<unknown, number>>;
  readonly items: Map<Set<unknown>, unknown[]>;
}
function setItems(cache: PositionCache, set: Set<unknown>): unknown[] {
  let a = cache.items.get(set);
  if (a === undefined) cache.items.set(set, (a = [...set]));
  return a;
}

/** Position of each own key of an object, or of each key of a Map. */
function positions(cache: PositionCache, node: object): Map<unknown, number> {
  let m = cache.keys.get(node);
  if (m === undefined) {
    m = new Map();
    const keys: Iterable<unknown> = node instanceof Map ? node.keys() : Object.keys(node);
    let i = 0;
    for (const k of keys) m.set(k, i++);
    cache.keys.set(node, m);
  }
  return m;
}

/**
 * Run a schema over a decrypted value. The error names paths (positions, not
 * keys: see {@link issuePath}) and issue codes, never values. When the value is
 * not returned (a mismatch, or a schema that throws), the byte arrays listed in
 * `wipeOnFailure` (those the decoder made for it) are zeroed first.
 * @internal
 */
export function applySchema<T>(schema: ValueSchema<T> | undefined, value: unknown, wipeOnFailure: readonly Uint8Array[] = []): T {
  if (schema === undefined) return value as T;
  let issues: SchemaIssue[];
  try {
    checkSchema(schema);
    const r = schema.safeParse(value);
    if (r.success) return r.data;
    const list = r.error?.issues;
    const cache: PositionCache = { keys: new Map(), items: new Map() };
    issues = Array.isArray(list)
      ? list.map((i: { path?: unknown; code?: unknown }) => ({
          path: issuePath(Array.isArray(i?.path) ? (i.path as PropertyKey[]) : [], value, cache),
          // Only a code shaped like zod's (`invalid_type`, `too_small`, `custom`): a validator's own text might hold a value.
          code: typeof i?.code === 'string' && /^[a-z][a-z_]{0,63}$/.test(i.code) ? i.code : 'invalid',
        }))
      : [];
  } catch (e) {
    for (const b of wipeOnFailure) b.fill(0);
    if (e instanceof InvalidParameterError) throw e;
    // A schema that throws (rather than reporting) is treated as a mismatch; its error may hold values, so it is not kept.
    throw new SchemaMismatchError([{ path: '$', code: 'schema_threw' }]);
  }
  for (const b of wipeOnFailure) b.fill(0);
  throw new SchemaMismatchError(issues.length ? issues : [{ path: '$', code: 'invalid' }]);
}

/**
 * Encrypt a JavaScript value into a text envelope (`ek1.` + base64url): a string
 * that fits in a JSON document or a text column.
 *
 * To bind the envelope to its row, give `recordId` (and `recordVersion`) rather than putting the id
 * in `encryptionContext`: the id is bound by the key schedule (SPEC.md §9.10) but neither stored nor
 * sent to the provider, so every row makes the same provider request and rows can share a cached
 * data key, while an envelope copied to another row fails to decrypt there.
 * @param value - any supported value: JSON values, `undefined`, `Date`, `bigint`, `Uint8Array`,
 *   `Map`, `Set`, `NaN`, `±Infinity`, `-0`, nested up to `maxDepth`.
 * @param options - as {@link encrypt}'s (`recordId` and `recordVersion` included), and `maxDepth`.
 * @returns the text envelope.
 * @throws InvalidParameterError for a bad option (`maxDepth` out of range, a bad `recordId` or
 *   `recordVersion` too), before any other work.
 * @throws UnsupportedValueError with the path (positions, never keys) of a value that cannot be encoded,
 *   before any provider call; and as {@link encrypt}.
 * @example
 * ```ts
 * import { LocalKeyring, encryptObject, decryptObject } from 'envelope-kit';
 * const provider = new LocalKeyring();
 * provider.createKey({ alias: 'alias/app' });
 * const text = await encryptObject({ name: 'Ada', born: new Date('1815-12-10') }, { provider, keyId: 'alias/app', recordId: 7 });
 * const back = await decryptObject(text, { provider, recordId: 7 });
 * ```
 */
export function encryptObject(value: unknown, options: EncryptObjectOptions): Promise<string> {
  // Not an async function itself (one promise less per call); a bad option still rejects.
  let plan: EncryptPlan;
  let binding: Uint8Array;
  try {
    plan = planEncrypt(options, 'encryptObject');
    binding = readRecordBinding(options);
  } catch (e) {
    return Promise.reject(e);
  }
  return encryptPlanned(value, plan, binding);
}

/** The options of {@link encryptObject}, checked once (a batch checks them once for all its values). */
interface EncryptPlan {
  readonly depth: number;
  readonly encryption: ReturnType<typeof checkEncryptOptions>;
}

function planEncrypt(options: unknown, fn: string): EncryptPlan {
  if (options === null || typeof options !== 'object') throw new InvalidParameterError(`${fn} expects an options object`);
  const depth = checkMaxDepth(readOptionOf(options, 'maxDepth', fn));
  return { depth, encryption: checkEncryptOptions(options, fn) };
}

/** The body of {@link encryptObject}: every option was checked before the value is read. `binding`: SPEC.md §9.10. */
async function encryptPlanned(value: unknown, plan: EncryptPlan, binding: Uint8Array): Promise<string> {
  const { provider, keyId, also, keySpec, context, aead } = plan.encryption;
  // The encoding is sealed straight from the encoder's buffer, and wiped there.
  const encoded = encodeValueLent(value, plan.depth);
  try {
    // A value too long for the text form is refused before the provider is asked (SPEC.md §5).
    const pt = checkPlaintext(encoded.bytes, MAX_TEXT_ENVELOPE_BYTES);
    return envelopeToText(await encryptChecked(pt, provider, keyId, keySpec, context, aead, binding, also));
  } finally {
    encoded.release();
  }
}

/**
 * Decrypt a text envelope made by {@link encryptObject}, and validate it when a schema is given.
 * @param envelope - the text envelope.
 * @param options - as {@link decrypt}'s (give the `recordId` and `recordVersion` the value was
 *   encrypted with: the envelope does not hold them), and `schema`, `maxDepth`.
 * @returns the value, typed by the schema's output when one is given.
 * @throws InvalidParameterError for a bad option (`maxDepth` out of range, a schema without `safeParse`,
 *   a bad `recordId` or `recordVersion`), before the envelope is parsed or any provider called.
 * @throws as {@link decrypt} (DecryptionFailedError for another or a missing `recordId` or
 *   `recordVersion`); MalformedValueError when the plaintext is not the canonical encoding of a
 *   value (SPEC.md §11.3) or is nested deeper than `maxDepth`;
 *   SchemaMismatchError (distinct from decryption failures; never shows values).
 */
export function decryptObject<T = unknown>(envelope: string, options: DecryptObjectOptions<T>): Promise<T> {
  // Not an async function itself (one promise less per call); a bad option still rejects.
  let plan: DecryptPlan<T>;
  let binding: Uint8Array;
  try {
    plan = planDecrypt<T>(options, 'decryptObject');
    binding = readRecordBinding(options);
  } catch (e) {
    return Promise.reject(e);
  }
  return decryptPlanned(envelope, plan, binding);
}

/** The options of {@link decryptObject}, checked once. */
interface DecryptPlan<T> {
  readonly schema: ValueSchema<T> | undefined;
  readonly depth: number;
  readonly decryption: CheckedDecryptOptions;
}

function planDecrypt<T>(options: unknown, fn: string): DecryptPlan<T> {
  if (options === null || typeof options !== 'object') throw new InvalidParameterError(`${fn} expects an options object`);
  const schema = readOptionOf(options, 'schema', fn);
  const maxDepth = readOptionOf(options, 'maxDepth', fn);
  checkSchema(schema);
  const depth = checkMaxDepth(maxDepth);
  return { schema: schema as ValueSchema<T> | undefined, depth, decryption: checkDecryptOptions(options) };
}

/** The body of {@link decryptObject}: every option was checked before the envelope is parsed. `binding`: SPEC.md §9.10. */
async function decryptPlanned<T>(envelope: string, plan: DecryptPlan<T>, binding: Uint8Array): Promise<T> {
  const bytes = envelopeFromTextForDecrypt(envelope);
  const { plaintext } = await decryptChecked(bytes, plan.decryption, undefined, binding);
  let decoded: ReturnType<typeof decodeValueParts>;
  try {
    decoded = decodeValueParts(plaintext, plan.depth);
  } finally {
    wipe(plaintext);
  }
  return applySchema(plan.schema, decoded.value, decoded.byteArrays);
}

/** Check a schema argument without calling it. Never throws a foreign error. */
export function checkSchema(schema: unknown): void {
  if (schema === undefined) return;
  let ok = false;
  try {
    ok = schema !== null && typeof schema === 'object' && typeof (schema as ValueSchema<unknown>).safeParse === 'function';
  } catch {
    ok = false;
  }
  if (!ok) throw new InvalidParameterError('"schema" must have a safeParse method (a zod schema)');
}

/**
 * One item's outcome in a batch: the value, or the error it failed with (always
 * an {@link EnvelopeKitError}: anything else an item throws, such as a
 * caller's callback, is wrapped in an InvalidParameterError with it as `cause`).
 * Order matches the input.
 */
export type BatchResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: EnvelopeKitError };

/** Batch options: how many items are in flight at once (default 8, 1..256). */
export interface BatchOptions {
  readonly concurrency?: number;
}

/**
 * Run `fn` over `items` with at most `concurrency` in flight, keeping order and
 * collecting each item's failure instead of stopping.
 * @internal
 */
export async function mapBounded<I, O>(items: readonly I[], concurrency: unknown, fn: (item: I, index: number) => Promise<O>): Promise<BatchResult<O>[]> {
  let list: I[];
  try {
    if (!Array.isArray(items)) throw new InvalidParameterError('batch input must be an array');
    list = [...items];
  } catch (e) {
    if (e instanceof InvalidParameterError) throw e;
    throw new InvalidParameterError('batch input could not be read', { cause: e });
  }
  const c = concurrency ?? 8;
  if (typeof c !== 'number' || !Number.isInteger(c) || c < 1 || c > 256) {
    throw new InvalidParameterError('"concurrency" must be an integer from 1 to 256');
  }
  const out: BatchResult<O>[] = new Array(list.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < list.length) {
      const i = next++;
      try {
        out[i] = { ok: true, value: await fn(list[i]!, i) };
      } catch (error) {
        out[i] = {
          ok: false,
          error: error instanceof EnvelopeKitError ? error : new InvalidParameterError(`batch item ${i} failed with an error that is not the library's own`, { cause: error }),
        };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(c, list.length) }, worker));
  return out;
}

/**
 * Options of {@link encryptObjects}: those of {@link encryptObject}, with `recordId` and
 * `recordVersion` functions of the value and its index, as in `encryptRecords`: a batch's options
 * are checked once and shared by its items, so what differs per item comes from the item.
 */
export type EncryptObjectsOptions<T = unknown> = Omit<EncryptObjectOptions, 'recordId' | 'recordVersion'> &
  BatchOptions & {
    /** The record id of each value (see `recordId` of {@link EncryptObjectOptions}), e.g. `(row) => row.id`. */
    readonly recordId?: (value: T, index: number) => RecordId;
    /** The record version of each value, e.g. `(row) => row.version`. */
    readonly recordVersion?: (value: T, index: number) => RecordVersion;
  };

/**
 * Options of {@link decryptObjects}: those of {@link decryptObject}, with `recordId` and
 * `recordVersion` functions of the envelope and its index, as in `decryptRecords`. An envelope does
 * not hold its record id (it is never stored), so the function usually reads it from the caller's
 * row at that index: `recordId: (_, i) => rows[i].id`.
 */
export type DecryptObjectsOptions<T = unknown> = Omit<DecryptObjectOptions<T>, 'recordId' | 'recordVersion'> &
  BatchOptions & {
    /** The record id each envelope was written with. */
    readonly recordId?: (envelope: string, index: number) => RecordId;
    /** The record version each envelope was written with. */
    readonly recordVersion?: (envelope: string, index: number) => RecordVersion;
  };

/**
 * The per-item record binding of a batch (SPEC.md §9.10): `recordId` and `recordVersion` are read
 * once and must be functions (or absent); each item's values are checked as `encryptObject`'s. A
 * function that throws, or returns a bad id, fails its item with an InvalidParameterError.
 */
function batchRecordBinding(options: unknown, fn: string): (item: unknown, index: number) => Uint8Array {
  const { recordId: idOf, recordVersion: versionOf } = readOptions(options, ['recordId', 'recordVersion'], `${fn} options`);
  if (idOf !== undefined && typeof idOf !== 'function') throw new InvalidParameterError('"recordId" must be a function of the item and its index in a batch');
  if (versionOf !== undefined && typeof versionOf !== 'function') {
    throw new InvalidParameterError('"recordVersion" must be a function of the item and its index in a batch');
  }
  const call = (f: unknown, name: string, item: unknown, i: number): unknown => {
    if (f === undefined) return undefined;
    try {
      return (f as (item: unknown, i: number) => unknown)(item, i);
    } catch (e) {
      throw new InvalidParameterError(`the "${name}" function threw`, { cause: e });
    }
  };
  return (item, i) => recordBinding(checkRecordBinding(call(idOf, 'recordId', item, i), call(versionOf, 'recordVersion', item, i)));
}

/**
 * {@link encryptObject} over an array: one envelope (and one data key) per value. With `recordId`
 * (a function of the value and its index), each envelope is bound to its own row without the id
 * entering the encryption context, so the provider request is the same for every value.
 * @param values - the values to encrypt.
 * @param options - as {@link encryptObject}'s, `recordId` and `recordVersion` as functions, and `concurrency`.
 * @returns one result per value, in order.
 * @throws InvalidParameterError for a bad option, before the first item.
 */
export async function encryptObjects<T = unknown>(values: readonly T[], options: EncryptObjectsOptions<NoInfer<T>>): Promise<BatchResult<string>[]> {
  const plan = planEncrypt(options, 'encryptObjects'); // a bad option fails the call, not each item
  const { concurrency } = readOptions(options, ['concurrency'], 'encryptObjects options');
  const bindingOf = batchRecordBinding(options, 'encryptObjects');
  return mapBounded(values, concurrency, async (v, i) => encryptPlanned(v, plan, bindingOf(v, i)));
}

/**
 * {@link decryptObject} over an array of text envelopes.
 * @param envelopes - the text envelopes.
 * @param options - as {@link decryptObject}'s, `recordId` and `recordVersion` as functions of the
 *   envelope and its index, and `concurrency`.
 * @returns one result per envelope, in order.
 * @throws InvalidParameterError for a bad option, before the first item.
 */
export async function decryptObjects<T = unknown>(envelopes: readonly string[], options: DecryptObjectsOptions<T>): Promise<BatchResult<T>[]> {
  const plan = planDecrypt<T>(options, 'decryptObjects'); // a bad option fails the call, not each item
  const { concurrency } = readOptions(options, ['concurrency'], 'decryptObjects options');
  const bindingOf = batchRecordBinding(options, 'decryptObjects');
  return mapBounded(envelopes, concurrency, async (e, i) => decryptPlanned(e, plan, bindingOf(e, i)));
}

/**
 * Options of {@link rewrapObjects}: those of `rewrap`, with `recordId` and `recordVersion` functions
 * of the envelope and its index (as in {@link decryptObjects}: needed when a data key is unwrapped
 * to be wrapped again, since the commitment depends on them), and `concurrency`.
 */
export type RewrapObjectsOptions = Omit<RewrapOptions, 'recordId' | 'recordVersion'> &
  BatchOptions & {
    readonly recordId?: (envelope: string, index: number) => RecordId;
    readonly recordVersion?: (envelope: string, index: number) => RecordVersion;
  };

/**
 * `rewrap` over an array of text envelopes (from {@link encryptObject}, `encryptText`, or any
 * other): at most `concurrency` in flight (default 8), in order, each envelope's failure its own
 * result. No envelope's body is decrypted. The options are checked once, before the first item.
 * @returns one result per envelope, in order: the re-wrapped envelope (the same string when no rule applied).
 * @throws InvalidParameterError for a bad option, before the first item.
 */
export async function rewrapObjects(envelopes: readonly string[], options: RewrapObjectsOptions): Promise<BatchResult<string>[]> {
  const checked = checkRewrapOptions(options, 'rewrapObjects');
  const { concurrency } = readOptions(options, ['concurrency'], 'rewrapObjects options');
  const bindingOf = batchRecordBinding(options, 'rewrapObjects');
  return mapBounded(envelopes, concurrency, async (e, i) => {
    if (typeof e !== 'string') throw new InvalidParameterError(`envelope ${i} must be a text envelope string`);
    return rewrapChecked(e, { ...checked, binding: bindingOf(e, i) });
  });
}
