/**
 * Field-level encryption of records (SPEC.md §12). `encryptFields` replaces the
 * selected fields of a record by text envelopes of layout 0x01; the record keeps
 * its shape. One data key (one provider call) per record; each field is sealed
 * under its own key derived from it and bound to the field's path and the
 * record id, so a ciphertext moved to another field, array element or record
 * does not decrypt.
 * @module
 */
import { TAG_LENGTH, type AesGcm } from '../core/aead/types.js';
import { type EncryptionContext, contextContains } from '../core/context.js';
import {
  checkEncryptOptions,
  checkDecryptOptions,
  checkOptionsObject,
  obtainDataKey,
  readOption,
  unwrapAny,
} from '../core/envelope.js';
import { DecryptionFailedError, EnvelopeKitError, InvalidParameterError, MalformedEnvelopeError, UnencryptedFieldError } from '../core/errors.js';
import {
  COMPACT_FIELD_PREFIX,
  LAYOUT_FIELD,
  RECORD_HEADER_PREFIX,
  MESSAGE_ID_LENGTH,
  SINGLE_PASS_NONCE,
  TEXT_PREFIX,
  type EnvelopeHeader,
  encodeHeader,
  envelopeFromText,
  envelopeToText,
  parseHeader,
} from '../core/format.js';
import { base64UrlDecode, base64UrlEncode } from '../internal/base64.js';
import { constantTimeEqual, utf8Encode, wipe } from '../internal/bytes.js';
import { readOptions } from '../internal/options.js';
import { randomPublicBytes } from '../internal/random.js';
import { type HmacSha256, hkdfExtract, hmacOf, keysFromPrk, nobleHmacSha256 } from '../core/kdf.js';
import { type BatchOptions, type BatchResult, type ValueSchema, applySchema, checkSchema, mapBounded } from './objects.js';
import type { KeyProvider, KeySpec } from '../core/provider.js';
import { decodeValue, encodeValue } from './value-encoding.js';
import type { BlindIndexOptions, DecryptedFields, EncryptedFields, FieldSelector } from './field-types.js';
import {
  type Located,
  type OverlapCheck,
  type Selector,
  type Step,
  RecordCopy,
  checkPropertyName,
  checkSelectors,
  guard,
  hasOwn,
  isContainer,
  refuseThenable,
} from './selectors.js';

export type { BlindIndexField, BlindIndexOptions, DecryptedFields, EncryptedField, EncryptedFields, FieldPath, FieldSelector } from './field-types.js';

/** HKDF info label of field keys (SPEC.md §12.2). */
export const FIELD_KEY_LABEL = 'envelope-kit/v1/field-key';
const FIELD_KEY_INFO = utf8Encode(FIELD_KEY_LABEL);

/** A record id: binds every field to its record. */
export type RecordId = string | number;

/** Options of {@link encryptFields}. `T` is the record's type; `F`, `I` and `H` are inferred from `fields`, `blindIndexes` and `headerField`. */
export interface EncryptFieldsOptions<
  T = Record<string, unknown>,
  F extends readonly FieldSelector<T>[] = readonly FieldSelector<T>[],
  I extends BlindIndexOptions<F[number]> = BlindIndexOptions<F[number]>,
  H extends string = string,
> {
  readonly provider: KeyProvider;
  readonly keyId: string;
  /**
   * Field selectors, checked against `T`: `ssn`, `address.street`, `cards[].number`
   * (`[]` = every element). Each must match the record, unless written with a
   * trailing `?` (`nickname?`): see {@link FieldNotFoundError}.
   */
  readonly fields: F;
  /** Binds every field to this record; decryptFields must be given the same id. */
  readonly recordId?: RecordId;
  /** Context bound to the record's data key (e.g. `{ table: 'users' }`). */
  readonly encryptionContext?: EncryptionContext;
  readonly keySpec?: KeySpec;
  /**
   * Blind indexes to compute, by field selector as written in `fields` (the
   * field's plaintext is indexed). `into` must be a new property: not a
   * selected field, not the header field, not another index's, not one the record already has.
   */
  readonly blindIndexes?: I & { readonly [K in Exclude<keyof I, F[number]>]: never };
  /**
   * Compact storage: write the record's header once, as `ekh1.…`, into this
   * top-level property (e.g. `_ek`), and each field as `ekf1.…` (its sealed value
   * only). Much smaller than self-contained fields; the header property must be
   * stored and given back with the record (SPEC.md §12.4).
   */
  readonly headerField?: H;
  readonly aead?: AesGcm;
}

/** Options of {@link decryptFields}. `E` is the (encrypted) record's type; `S` the schema's output type. */
export interface DecryptFieldsOptions<E = Record<string, unknown>, F extends readonly FieldSelector<E>[] = readonly FieldSelector<E>[], S = unknown> {
  readonly provider?: KeyProvider;
  readonly providers?: readonly KeyProvider[];
  /** The fields to decrypt; fields not listed are left as they are (partial decryption). Same rules as in {@link EncryptFieldsOptions.fields}. */
  readonly fields: F;
  /** Must equal the id given to encryptFields. */
  readonly recordId?: RecordId;
  /** Entries the record's context must contain. */
  readonly encryptionContext?: EncryptionContext;
  /**
   * Migration only: accept plaintext where a listed field should be encrypted, and report
   * each such field to `onPlaintextField`. Without it such a field throws UnencryptedFieldError.
   */
  readonly allowPlaintextFields?: boolean;
  /** Called with the path of every plaintext field accepted under `allowPlaintextFields`. */
  readonly onPlaintextField?: (path: string) => void;
  /** Validate the whole decrypted record; its output type is what decryptFields returns. */
  readonly schema?: ValueSchema<S>;
  /** Where the record's header is, for fields stored in compact form (see {@link EncryptFieldsOptions.headerField}). */
  readonly headerField?: string;
  readonly maxEncryptedDataKeys?: number;
  readonly aead?: AesGcm;
}

/** The canonical binding of a field: JSON of `[path steps, record id or null]` (SPEC.md §12.2). */
export function fieldBinding(steps: readonly Step[], recordId: RecordId | undefined): Uint8Array {
  return utf8Encode(JSON.stringify([steps, recordId ?? null]));
}

/**
 * `prk = HKDF-Extract(salt = messageId, ikm = dataKey)`;
 * `fieldKey = HKDF-Expand(prk, "envelope-kit/v1/field-key" || 0x00 || binding, 32)`.
 */
export function deriveFieldKey(dataKey: Uint8Array, messageId: Uint8Array, binding: Uint8Array, mac: HmacSha256 = nobleHmacSha256): Uint8Array {
  const prk = hkdfExtract(mac, messageId, dataKey);
  try {
    return fieldKeyFromPrk(mac, prk, binding);
  } finally {
    wipe(prk);
  }
}

/** The expand of {@link deriveFieldKey} from the record's PRK (extracted once per record): `T(1) = HMAC(prk, info || 0x01)`. */
function fieldKeyFromPrk(mac: HmacSha256, prk: Uint8Array, binding: Uint8Array): Uint8Array {
  const m = new Uint8Array(FIELD_KEY_INFO.length + 1 + binding.length + 1);
  m.set(FIELD_KEY_INFO, 0);
  m.set(binding, FIELD_KEY_INFO.length + 1);
  m[m.length - 1] = 0x01;
  return mac(prk, m);
}

/** Check a `headerField` option: an ordinary property name that no selector or blind index touches. */
function checkHeaderField(name: unknown, overlaps: OverlapCheck): string | undefined {
  if (name === undefined) return undefined;
  const checked = checkPropertyName(name, '"headerField"');
  overlaps.add([{ name: checked, arrays: 0 }], `"headerField" ${JSON.stringify(checked)}`);
  return checked;
}

function checkRecordId(id: unknown): RecordId | undefined {
  if (id === undefined) return undefined;
  if (typeof id === 'string' && id.length <= 1024) return id;
  if (typeof id === 'number' && Number.isSafeInteger(id)) return id;
  throw new InvalidParameterError('"recordId" must be a string (at most 1024 characters) or a safe integer');
}

/** Check a record and make its checked copy: an object (not an array, not a thenable), own properties read once. */
function checkRecord(record: unknown): RecordCopy {
  if (!guard('"record"', () => isContainer(record))) throw new InvalidParameterError('"record" must be an object');
  refuseThenable(record as object, '"record"');
  const copy = guard('"record"', () => new RecordCopy(record as object));
  refuseThenable(copy.root, '"record"');
  return copy;
}

/** A blind index to compute, checked: its `compute` read once. */
interface PlannedIndex {
  readonly index: object;
  readonly compute: (value: unknown) => unknown;
  readonly into: string;
}

/** The checked `blindIndexes` option, by selector. Each `into` is added to the overlap check (beside its field). */
function checkBlindIndexes(option: unknown, selectors: readonly Selector[], overlaps: OverlapCheck): Map<Selector, PlannedIndex> {
  const out = new Map<Selector, PlannedIndex>();
  if (option === undefined) return out;
  const byText = new Map(selectors.map((s) => [s.text, s]));
  const entries = guard('"blindIndexes"', () => {
    if (!isContainer(option)) throw new InvalidParameterError('"blindIndexes" must be an object keyed by field selector');
    const keys = Object.keys(option);
    if (keys.length > selectors.length) throw new InvalidParameterError('"blindIndexes" has more entries than "fields" has selectors');
    return keys.map((k) => [k, option[k]] as const);
  });
  for (const [text, b] of entries) {
    const sel = byText.get(text);
    if (!sel) throw new InvalidParameterError(`blind index for ${JSON.stringify(text)}, which is not in "fields"`);
    const what = `blind index for ${JSON.stringify(text)}`;
    if (sel.segments[sel.segments.length - 1]!.arrays > 0) {
      throw new InvalidParameterError(`${what}: the field must be a property, not the elements of an array (a selector ending in "[]")`);
    }
    const { into, index, compute } = guard(what, () => {
      const index: unknown = isContainer(b) ? b.index : undefined;
      return { into: isContainer(b) ? b.into : undefined, index, compute: isContainer(index) ? index.compute : undefined };
    });
    if (typeof into !== 'string' || typeof compute !== 'function') throw new InvalidParameterError(`${what} needs { index, into }`);
    const name = checkPropertyName(into, `${what}: "into"`);
    overlaps.add([...sel.segments.slice(0, -1), { name, arrays: 0 }], `blind index target ${JSON.stringify(name)} (of ${JSON.stringify(text)})`);
    out.set(sel, { index: index as object, compute: compute as (value: unknown) => unknown, into: name });
  }
  return out;
}

/**
 * The blind index of a located field. A primitive is indexed as read; an
 * object through its encoding (decoded again), so that the index and the
 * ciphertext come from one reading of the record.
 */
function computeIndex(b: PlannedIndex, l: Located, encoded: Uint8Array): string {
  const value = l.value !== null && typeof l.value === 'object' ? decodeValue(encoded) : l.value;
  try {
    let idx: unknown;
    try {
      idx = b.compute.call(b.index, value);
    } catch (e) {
      if (e instanceof EnvelopeKitError) throw e;
      throw new InvalidParameterError(`blind index for ${JSON.stringify(l.selector.text)} could not be computed`, { cause: e });
    }
    if (typeof idx !== 'string') throw new InvalidParameterError(`blind index for ${JSON.stringify(l.selector.text)} did not compute a string`);
    return idx;
  } finally {
    if (value !== l.value) wipeDecoded(value);
  }
}

/** Zero every byte array in a value the library decoded (never one the caller owns). */
function wipeDecoded(value: unknown): void {
  const stack: unknown[] = [value];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    if (v instanceof Uint8Array) v.fill(0);
    else if (v instanceof Map) for (const [k, e] of v) stack.push(k, e);
    else if (v instanceof Set) for (const e of v) stack.push(e);
    else if (Array.isArray(v)) stack.push(...v);
    else if (!(v instanceof Date)) for (const k of Object.keys(v)) stack.push((v as Record<string, unknown>)[k]);
  }
}

/** Everything `encryptFields` needs from its options, checked once (a batch checks them once for all its records). */
interface EncryptPlan extends ReturnType<typeof checkEncryptOptions> {
  readonly selectors: readonly Selector[];
  readonly headerField: string | undefined;
  readonly blind: Map<Selector, PlannedIndex>;
}

function planEncrypt(options: unknown, fn: string): EncryptPlan {
  const checked = checkEncryptOptions(options, fn);
  const { selectors, overlaps } = checkSelectors(readOption(options, 'fields'));
  const headerField = checkHeaderField(readOption(options, 'headerField'), overlaps);
  const blind = checkBlindIndexes(readOption<unknown>(options, 'blindIndexes'), selectors, overlaps);
  return { ...checked, selectors, headerField, blind };
}

/**
 * Encrypt the selected fields of a record. Returns a new record of the same
 * shape (the input is not modified) in which each selected field holds a text
 * envelope; absent optional fields (`name?`) stay absent.
 * @param record - any object but an array or a thenable; copied, never modified.
 * @param options - `fields` are checked against the record's type (`FieldSelector<T>`).
 * @returns the copy, typed {@link EncryptedFields}: sealed fields as `EncryptedField<V>`,
 *   blind indexes as strings beside their fields, the header property (optional) with `headerField`.
 * @throws FieldNotFoundError for a selector that matches nothing (and is not marked `?`);
 *   InvalidParameterError for bad selectors, names, blind-index targets, a thenable, or a record that does not fit
 *   the selectors; UnsupportedValueError for a field value that cannot be encoded; provider errors as {@link encrypt}.
 *   All of them before the provider is called.
 * @example
 * ```ts
 * import { LocalKeyring, encryptFields, decryptFields } from 'envelope-kit';
 * const provider = new LocalKeyring();
 * provider.createKey({ alias: 'alias/users' });
 * const row = { id: 7, email: 'ada@example.com', address: { street: '12 Lane' } };
 * const stored = await encryptFields(row, { provider, keyId: 'alias/users', fields: ['email', 'address.street'], recordId: row.id });
 * const back = await decryptFields(stored, { provider, fields: ['email', 'address.street'], recordId: 7 });
 * ```
 */
export async function encryptFields<
  T extends object,
  const F extends readonly FieldSelector<NoInfer<T>>[],
  const I extends BlindIndexOptions<F[number]> = {},
  const H extends string = never,
>(record: T, options: EncryptFieldsOptions<NoInfer<T>, F, I, H>): Promise<EncryptedFields<T, F[number], I, H>> {
  const copy = checkRecord(record);
  const plan = planEncrypt(options, 'encryptFields');
  const recordId = checkRecordId(readOption(options, 'recordId'));
  return (await encryptRecord(copy, plan, recordId)) as EncryptedFields<T, F[number], I, H>;
}

/** The body of {@link encryptFields}, on a checked copy and checked options. */
async function encryptRecord(copy: RecordCopy, plan: EncryptPlan, recordId: RecordId | undefined): Promise<object> {
  const { provider, keyId, keySpec, context, aead, selectors, headerField, blind } = plan;
  const out = copy.root;
  // Locate and encode everything before asking the provider: bad input costs no KMS call.
  const located = guard('"record"', () => selectors.flatMap((s) => copy.locate(s)));
  const encoded: Uint8Array[] = [];
  try {
    for (const l of located) encoded.push(encodeValue(l.value));
    const indexes = located.map((l, i) => {
      const b = blind.get(l.selector);
      if (!b) return undefined;
      if (hasOwn(copy.parentOf(l.steps), b.into)) {
        throw new InvalidParameterError(`blind index target ${JSON.stringify(b.into)} (of ${JSON.stringify(l.selector.text)}) is already a property of the record`);
      }
      return computeIndex(b, l, encoded[i]!);
    });
    if (located.length === 0) return out;
    const { dataKey, edk } = await obtainDataKey(provider, keyId, keySpec, context);
    let prk: Uint8Array | undefined;
    try {
      const messageId = randomPublicBytes(MESSAGE_ID_LENGTH);
      const mac = hmacOf(aead);
      prk = hkdfExtract(mac, messageId, dataKey);
      const { contentKey, commitment } = keysFromPrk(mac, prk);
      wipe(contentKey);
      const header = encodeHeader({ layout: LAYOUT_FIELD, messageId, context, encryptedDataKeys: [edk], commitment });
      // Compact storage keeps the header once, beside the fields (SPEC.md §12.4).
      const stored = headerField === undefined ? header : new Uint8Array(0);
      if (headerField !== undefined) copy.set([headerField], RECORD_HEADER_PREFIX + base64UrlEncode(header));
      const recordPrk = prk;
      located.forEach((l, i) => {
        const fieldKey = fieldKeyFromPrk(mac, recordPrk, fieldBinding(l.steps, recordId));
        try {
          const pt = encoded[i]!;
          const env = new Uint8Array(stored.length + pt.length + TAG_LENGTH);
          env.set(stored, 0);
          aead.seal(fieldKey, SINGLE_PASS_NONCE, header, pt, env.subarray(stored.length));
          const idx = indexes[i];
          if (idx !== undefined) copy.set([...l.steps.slice(0, -1), blind.get(l.selector)!.into], idx);
          copy.set(l.steps, headerField === undefined ? envelopeToText(env) : COMPACT_FIELD_PREFIX + base64UrlEncode(env));
        } finally {
          wipe(fieldKey);
        }
      });
    } finally {
      wipe(dataKey, prk);
    }
    // Not a thenable: the copy was checked, and only strings were written into it.
    return out;
  } finally {
    for (const e of encoded) wipe(e);
  }
}

/**
 * Decrypt the selected fields of a record made by {@link encryptFields}. Fields
 * not listed are left untouched. Fails closed: a listed field that holds
 * anything but a field envelope throws UnencryptedFieldError (unless
 * `allowPlaintextFields` is set for a migration, in which case each is reported).
 * @param record - the stored record, ideally typed as encryptFields returned it; copied, never modified.
 * @returns the copy, typed {@link DecryptedFields} (each listed `EncryptedField<V>` a `V` again),
 *   or the schema's output type when `schema` is given.
 * @throws FieldNotFoundError, InvalidParameterError (as {@link encryptFields}), UnencryptedFieldError,
 *   DecryptionFailedError (wrong record id, moved field, tampering), SchemaMismatchError, and as {@link decrypt}.
 */
export async function decryptFields<E extends object, const F extends readonly FieldSelector<NoInfer<E>>[], S = never>(
  record: E,
  options: DecryptFieldsOptions<NoInfer<E>, F, S>,
): Promise<[S] extends [never] ? DecryptedFields<E, F[number]> : S> {
  const copy = checkRecord(record);
  const plan = planDecrypt(options);
  const recordId = checkRecordId(readOption(options, 'recordId'));
  return (await decryptRecord(copy, plan, recordId)) as [S] extends [never] ? DecryptedFields<E, F[number]> : S;
}

/** Everything `decryptFields` needs from its options, checked once. */
interface DecryptPlan {
  readonly base: ReturnType<typeof checkDecryptOptions>;
  readonly selectors: readonly Selector[];
  readonly allowPlain: boolean;
  readonly onPlain: ((path: string) => void) | undefined;
  readonly schema: ValueSchema<unknown> | undefined;
  readonly headerField: string | undefined;
}

function planDecrypt(options: unknown): DecryptPlan {
  const base = checkDecryptOptions(options);
  const { selectors, overlaps } = checkSelectors(readOption(options, 'fields'));
  const allowPlain = readOption<unknown>(options, 'allowPlaintextFields');
  const onPlain = readOption<unknown>(options, 'onPlaintextField');
  if (allowPlain !== undefined && typeof allowPlain !== 'boolean') throw new InvalidParameterError('"allowPlaintextFields" must be a boolean');
  if (allowPlain && typeof onPlain !== 'function') {
    throw new InvalidParameterError('"allowPlaintextFields" needs an "onPlaintextField" callback so that every plaintext field is reported');
  }
  if (onPlain !== undefined && typeof onPlain !== 'function') throw new InvalidParameterError('"onPlaintextField" must be a function');
  const schema = readOption<unknown>(options, 'schema');
  checkSchema(schema);
  const headerField = checkHeaderField(readOption(options, 'headerField'), overlaps);
  return {
    base,
    selectors,
    allowPlain: allowPlain === true,
    onPlain: onPlain as ((path: string) => void) | undefined,
    schema: schema as ValueSchema<unknown> | undefined,
    headerField,
  };
}

/** The body of {@link decryptFields}, on a checked copy and checked options. */
async function decryptRecord(copy: RecordCopy, plan: DecryptPlan, recordId: RecordId | undefined): Promise<unknown> {
  const { base, selectors, allowPlain, onPlain, schema, headerField } = plan;
  // The checked copy is read first, then receives the decrypted values.
  const input = copy.root;
  const located = guard('"record"', () => selectors.flatMap((s) => copy.locate(s)));
  type Parsed = { loc: Located; header: EnvelopeHeader; body: Uint8Array };
  const parsed: Parsed[] = [];
  const plain: Located[] = [];
  let recordHeader: EnvelopeHeader | undefined;
  /** The record's header for compact fields, read and parsed once (SPEC.md §12.4). */
  const readRecordHeader = (path: string): EnvelopeHeader => {
    if (recordHeader) return recordHeader;
    if (headerField === undefined) throw new MalformedEnvelopeError(`field ${path} is a compact field: give "headerField" to decrypt it`);
    const h = hasOwn(input, headerField) ? input[headerField] : undefined;
    if (typeof h !== 'string' || !h.startsWith(RECORD_HEADER_PREFIX)) {
      throw new MalformedEnvelopeError(`record header ${JSON.stringify(headerField)} is missing or not a record header`);
    }
    const bytes = base64UrlDecode(h.slice(RECORD_HEADER_PREFIX.length));
    if (!bytes) throw new MalformedEnvelopeError('record header is not canonical base64url');
    recordHeader = parseHeader(bytes, base.maxEdks, [LAYOUT_FIELD], true).header;
    return recordHeader;
  };
  for (const loc of located) {
    const v = loc.value;
    if (typeof v === 'string' && v.startsWith(COMPACT_FIELD_PREFIX)) {
      const header = readRecordHeader(loc.path);
      const body = base64UrlDecode(v.slice(COMPACT_FIELD_PREFIX.length));
      if (!body || body.length < TAG_LENGTH) throw new MalformedEnvelopeError(`field ${loc.path}: compact field is not canonical base64url of at least 16 bytes`);
      if (!contextContains(header.context, base.required)) throw new DecryptionFailedError();
      parsed.push({ loc, header, body });
      continue;
    }
    if (typeof v !== 'string' || !v.startsWith(TEXT_PREFIX)) {
      if (allowPlain) {
        plain.push(loc);
        continue;
      }
      throw new UnencryptedFieldError(loc.path);
    }
    let bytes: Uint8Array;
    let header: EnvelopeHeader;
    let bodyOffset: number;
    try {
      bytes = envelopeFromText(v);
      ({ header, bodyOffset } = parseHeader(bytes, base.maxEdks, [LAYOUT_FIELD]));
    } catch (e) {
      if (e instanceof MalformedEnvelopeError) throw new MalformedEnvelopeError(`field ${loc.path}: ${e.message}`, { cause: e });
      throw e;
    }
    if (!contextContains(header.context, base.required)) throw new DecryptionFailedError();
    parsed.push({ loc, header, body: bytes.subarray(bodyOffset) });
  }
  for (const p of plain) {
    try {
      onPlain!(p.path);
    } catch (e) {
      throw new InvalidParameterError('"onPlaintextField" threw', { cause: e });
    }
  }

  // One provider call per distinct record header (normally exactly one per record).
  const keys = new Map<string, { dataKey: Uint8Array; prk: Uint8Array; header: EnvelopeHeader }>();
  const mac = hmacOf(base.aead);
  const out = copy.root;
  // Every value decoded here, to wipe its byte arrays if the record is not returned.
  const decoded: unknown[] = [];
  try {
    for (const p of parsed) {
      const id = hex(p.header.bytes);
      let entry = keys.get(id);
      if (!entry) {
        const { dataKey } = await unwrapAny(p.header, base.providers);
        let prk: Uint8Array;
        try {
          prk = hkdfExtract(mac, p.header.messageId, dataKey);
        } catch (e) {
          wipe(dataKey);
          throw e;
        }
        entry = { dataKey, prk, header: p.header };
        keys.set(id, entry);
        const { contentKey, commitment } = keysFromPrk(mac, entry.prk);
        wipe(contentKey);
        const ok = constantTimeEqual(commitment, p.header.commitment);
        wipe(commitment);
        if (!ok) throw new DecryptionFailedError();
      }
      const fieldKey = fieldKeyFromPrk(mac, entry.prk, fieldBinding(p.loc.steps, recordId));
      const pt = new Uint8Array(p.body.length - TAG_LENGTH);
      try {
        if (!base.aead.open(fieldKey, SINGLE_PASS_NONCE, p.header.bytes, p.body, pt)) throw new DecryptionFailedError();
        const value = decodeValue(pt);
        decoded.push(value);
        copy.set(p.loc.steps, value);
      } finally {
        wipe(fieldKey, pt);
      }
    }
  } catch (e) {
    for (const v of decoded) wipeDecoded(v);
    throw e;
  } finally {
    for (const k of keys.values()) wipe(k.dataKey, k.prk);
  }
  // Not a thenable: the copy was checked, and decoded values are never functions; a schema's output is checked.
  if (schema === undefined) return out;
  let result: unknown;
  try {
    result = applySchema(schema, out);
    if (result !== null && (typeof result === 'object' || typeof result === 'function')) refuseThenable(result, 'the schema\'s output');
  } catch (e) {
    for (const v of decoded) wipeDecoded(v);
    throw e;
  }
  return result;
}

function hex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, '0');
  return s;
}

/** Options of {@link encryptRecords}: those of {@link encryptFields}, with `recordId` a function of the record. */
export type EncryptRecordsOptions<
  T = Record<string, unknown>,
  F extends readonly FieldSelector<T>[] = readonly FieldSelector<T>[],
  I extends BlindIndexOptions<F[number]> = BlindIndexOptions<F[number]>,
  H extends string = string,
> = Omit<EncryptFieldsOptions<T, F, I, H>, 'recordId'> & BatchOptions & { readonly recordId?: (record: T, index: number) => RecordId };

/** Options of {@link decryptRecords}: those of {@link decryptFields}, with `recordId` a function of the record. */
export type DecryptRecordsOptions<E = Record<string, unknown>, F extends readonly FieldSelector<E>[] = readonly FieldSelector<E>[], S = unknown> = Omit<
  DecryptFieldsOptions<E, F, S>,
  'recordId'
> &
  BatchOptions & { readonly recordId?: (record: E, index: number) => RecordId };

/**
 * {@link encryptFields} over many records; `recordId` may be a function of the
 * record. The options are checked once, before any record; each record's
 * failure (an {@link EnvelopeKitError}) is its own result.
 */
export function encryptRecords<
  T extends object,
  const F extends readonly FieldSelector<NoInfer<T>>[],
  const I extends BlindIndexOptions<F[number]> = {},
  const H extends string = never,
>(records: readonly T[], options: EncryptRecordsOptions<NoInfer<T>, F, I, H>): Promise<BatchResult<EncryptedFields<T, F[number], I, H>>[]> {
  return batchFields(records, options, 'encryptRecords', (o) => planEncrypt(o, 'encryptRecords'), encryptRecord) as Promise<
    BatchResult<EncryptedFields<T, F[number], I, H>>[]
  >;
}

/** Shared body of the record batches: options checked once, a per-record id, bounded concurrency. */
async function batchFields<P>(
  records: readonly unknown[],
  options: unknown,
  fn: string,
  plan: (options: unknown) => P,
  each: (copy: RecordCopy, plan: P, recordId: RecordId | undefined) => Promise<unknown>,
): Promise<BatchResult<unknown>[]> {
  checkOptionsObject(options, fn);
  const { recordId: idOf, concurrency } = readOptions(options, ['recordId', 'concurrency'], `${fn} options`);
  if (idOf !== undefined && typeof idOf !== 'function') throw new InvalidParameterError('"recordId" must be a function of the record in a batch');
  const checked = plan(options);
  return mapBounded(records, concurrency, async (r, i) => {
    const copy = checkRecord(r);
    let id: unknown;
    if (idOf !== undefined) {
      try {
        id = (idOf as (r: unknown, i: number) => unknown)(r, i);
      } catch (e) {
        throw new InvalidParameterError('the "recordId" function threw', { cause: e });
      }
    }
    return each(copy, checked, checkRecordId(id));
  });
}

/**
 * {@link decryptFields} over many records; `recordId` may be a function of the
 * record. The options are checked once, before any record.
 */
export function decryptRecords<E extends object, const F extends readonly FieldSelector<NoInfer<E>>[], S = never>(
  records: readonly E[],
  options: DecryptRecordsOptions<NoInfer<E>, F, S>,
): Promise<BatchResult<[S] extends [never] ? DecryptedFields<E, F[number]> : S>[]> {
  return batchFields(records, options, 'decryptRecords', planDecrypt, decryptRecord) as Promise<
    BatchResult<[S] extends [never] ? DecryptedFields<E, F[number]> : S>[]
  >;
}
