/**
 * Field-level encryption of records (SPEC.md §12). `encryptFields` replaces the
 * selected fields of a record by text envelopes of layout 0x01; the record keeps
 * its shape. One data key (one provider call) per record; each field is sealed
 * under its own key derived from it and bound to the field's path, the record
 * id and the record version, so a ciphertext moved to another field, array
 * element, record or version does not decrypt. Each field carries a commitment
 * to its key (SPEC.md §12.2), checked before the body is opened, so a field
 * opens under at most one binding.
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
  type Recipient,
} from '../core/envelope.js';
import {
  DecryptionFailedError,
  EnvelopeKitError,
  InvalidParameterError,
  MalformedEnvelopeError,
  UnencryptedFieldError,
  UnsupportedVersionError,
} from '../core/errors.js';
import {
  COMPACT_FIELD_PREFIX,
  LAYOUT_FIELD,
  RECORD_HEADER_PREFIX,
  SINGLE_PASS_NONCE,
  type EnvelopeHeader,
  authenticatedHeaderOf,
  encodeHeader,
  envelopeFromText,
  envelopeToText,
  parseHeader,
} from '../core/format.js';
import { base64UrlDecode, base64UrlEncode } from '../internal/base64.js';
import { constantTimeEqual, toHex, utf8Encode, wipe } from '../internal/bytes.js';
import { readOptions } from '../internal/options.js';
import { LABELS, deriveFieldKeys, deriveRecordKeys, hmacOf } from '../core/kdf.js';
import { type RecordBinding, type RecordId, type RecordVersion, checkRecordBinding as checkBinding, checkRecordId } from '../core/binding.js';
import { type BatchOptions, type BatchResult, type ValueSchema, applySchema, checkSchema, mapBounded } from './objects.js';
import type { KeyProvider, KeySpec } from '../core/provider.js';
import { decodeValue, encodeValue } from './value-encoding.js';
import { type CheckedRewrap, type RewrapOptions, checkRewrapOptions, replaceEncryptedDataKeys, rewrapEncryptedDataKeys } from '../core/rewrap.js';
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
export type { RecordId, RecordVersion } from '../core/binding.js';
export { MAX_RECORD_ID_BYTES } from '../core/binding.js';

/**
 * HKDF info label of a record header's field root and commitment (SPEC.md §12.2), one derivation
 * per header; it names the suite (0x01) and the layout (0x01).
 */
export const FIELD_RECORD_LABEL = LABELS.fieldRecord;
/** HKDF info label of each field's key and field commitment (SPEC.md §12.2); it names the suite (0x01) and the layout (0x01). */
export const FIELD_LABEL = LABELS.field;
/** Bytes of the field commitment that starts every field body (SPEC.md §12.2). */
export const FIELD_COMMITMENT_LENGTH = 32;
/** The shortest field body: field commitment and tag. */
const FIELD_BODY_MIN = FIELD_COMMITMENT_LENGTH + TAG_LENGTH;

/**
 * Any string that begins like a text form of this library: `ek`, `ekf` or `ekh`,
 * digits and a dot, in any case (SPEC.md §12.3). Such a string is never taken
 * for a plaintext field value.
 */
const ENVELOPE_LIKE = /^ek[fh]?[0-9]+\./i;
/** `ekf`/`ekh` followed by the version number of another version of this format (SPEC.md §12.3). */
const OTHER_FIELD_VERSION = /^ek[fh]([1-9][0-9]{0,2})\./;

/** Options of {@link encryptFields}. `T` is the record's type; `F`, `I` and `H` are inferred from `fields`, `blindIndexes` and `headerField`. */
export interface EncryptFieldsOptions<
  T = Record<string, unknown>,
  F extends readonly FieldSelector<T>[] = readonly FieldSelector<T>[],
  I extends BlindIndexOptions<F[number]> = BlindIndexOptions<F[number]>,
  H extends string = string,
> {
  /** The provider that makes the data key (with `keyId`; or give `recipients`, as for `encrypt`). */
  readonly provider?: KeyProvider;
  /** Master key id or alias (with `provider`). */
  readonly keyId?: string;
  /** Several master keys instead of `provider` and `keyId` (see `recipients` of `encrypt`): any one opens every field. */
  readonly recipients?: readonly Recipient[];
  /**
   * Field selectors, checked against `T`: `ssn`, `address.street`, `cards[].number`
   * (`[]` = every element). Each must match the record, unless written with a
   * trailing `?` (`nickname?`): see {@link FieldNotFoundError}.
   */
  readonly fields: F;
  /** Binds every field to this record; decryptFields must be given the same id. */
  readonly recordId?: RecordId;
  /**
   * Binds every field to this version of the record (a version counter or an
   * `updatedAt` the application stores); decryptFields must be given the same
   * version, so a field of another version does not decrypt.
   */
  readonly recordVersion?: RecordVersion;
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
   * stored and given back with the record (SPEC.md §12.4). A record that
   * already holds a header there is refused: a header is never reused.
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
  /** Must equal the version given to encryptFields (the version the application expects to read). */
  readonly recordVersion?: RecordVersion;
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
  /**
   * Where the record's header is, for fields stored in compact form (see
   * {@link EncryptFieldsOptions.headerField}). With it, every listed field must
   * be a compact field under that header; without it, none may be.
   */
  readonly headerField?: string;
  readonly maxEncryptedDataKeys?: number;
  /** The master keys the record's data key may be unwrapped with (as the `keyIds` option of `decrypt`). */
  readonly keyIds?: readonly string[];
  readonly aead?: AesGcm;
}

/**
 * The canonical binding of a field (SPEC.md §12.1): UTF-8 of the JSON of
 * `[path steps, record id or null, record version or null]`, without spaces.
 */
export function fieldBinding(steps: readonly Step[], recordId: RecordId | undefined, recordVersion?: RecordVersion): Uint8Array {
  return utf8Encode(JSON.stringify([steps, recordId ?? null, recordVersion ?? null]));
}

/** Check a `headerField` option: an ordinary property name that no selector or blind index touches. */
function checkHeaderField(name: unknown, overlaps: OverlapCheck): string | undefined {
  if (name === undefined) return undefined;
  const checked = checkPropertyName(name, '"headerField"');
  overlaps.add([{ name: checked, arrays: 0 }], `"headerField" ${JSON.stringify(checked)}`);
  return checked;
}

/** What a selected field holds (SPEC.md §12.3 step 1): plaintext, a text envelope (`ek` + digits), or a compact field. */
type FieldForm = 'plain' | 'text' | 'compact';

/**
 * The form of a field value. A string that looks like any text form of this
 * library is never plaintext: a compact field of another version, or a record
 * header where a field belongs, is refused here (text envelopes of other
 * versions are refused by the text-form reader, SPEC.md §4).
 * @throws MalformedEnvelopeError, UnsupportedVersionError
 */
function fieldForm(v: unknown, path: string): FieldForm {
  if (typeof v !== 'string' || !ENVELOPE_LIKE.test(v)) return 'plain';
  if (v.startsWith(COMPACT_FIELD_PREFIX)) return 'compact';
  if (/^ek[0-9]/i.test(v)) return 'text';
  if (v.startsWith(RECORD_HEADER_PREFIX)) throw new MalformedEnvelopeError(`field ${path} holds a record header, not a field`);
  const m = OTHER_FIELD_VERSION.exec(v);
  if (m) throw new UnsupportedVersionError('version', Number(m[1]));
  throw new MalformedEnvelopeError(`field ${path}: not a field of this format (prefixes are lower case, "ekf1.")`);
}

/** The record header of compact fields (SPEC.md §12.4), read and parsed once. @throws MalformedEnvelopeError, UnsupportedVersionError */
function readRecordHeader(input: Record<string, unknown>, headerField: string, maxEdks: number): EnvelopeHeader {
  const h = guard('"record"', () => (Object.prototype.hasOwnProperty.call(input, headerField) ? input[headerField] : undefined));
  if (typeof h !== 'string') throw new MalformedEnvelopeError(`record header ${JSON.stringify(headerField)} is missing`);
  if (!h.startsWith(RECORD_HEADER_PREFIX)) {
    const m = /^ekh([1-9][0-9]{0,2})\./.exec(h);
    if (m) throw new UnsupportedVersionError('version', Number(m[1]));
    throw new MalformedEnvelopeError(`record header ${JSON.stringify(headerField)} is not a record header (expected prefix "ekh1.")`);
  }
  const bytes = base64UrlDecode(h.slice(RECORD_HEADER_PREFIX.length));
  if (!bytes) throw new MalformedEnvelopeError('record header is not canonical base64url');
  return parseHeader(bytes, maxEdks, [LAYOUT_FIELD], true).header;
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

/** The `recordId` and `recordVersion` options of one record (what binds its fields to it, SPEC.md §12.1), checked. */
function checkRecordBinding(options: unknown): RecordBinding {
  return checkBinding(readOption(options, 'recordId'), readOption(options, 'recordVersion'));
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
  return (await encryptRecord(copy, plan, checkRecordBinding(options))) as EncryptedFields<T, F[number], I, H>;
}

/** The body of {@link encryptFields}, on a checked copy and checked options. */
async function encryptRecord(copy: RecordCopy, plan: EncryptPlan, binding: RecordBinding): Promise<object> {
  const { provider, keyId, also, keySpec, context, aead, selectors, headerField, blind } = plan;
  const { recordId, recordVersion } = binding;
  const out = copy.root;
  // Locate and encode everything before asking the provider: bad input costs no KMS call.
  const located = guard('"record"', () => selectors.flatMap((s) => copy.locate(s)));
  // Never seal under an existing header, and never seal a sealed value (SPEC.md §12.2): every call makes a fresh header.
  if (headerField !== undefined && hasOwn(out, headerField)) {
    const existing = out[headerField];
    if (existing !== undefined && existing !== null) {
      throw new InvalidParameterError(
        `the record already holds a record header in ${JSON.stringify(headerField)}: a header is never reused; decrypt the record and encrypt all of its fields in one call`,
      );
    }
  }
  for (const l of located) {
    if (typeof l.value === 'string' && ENVELOPE_LIKE.test(l.value)) {
      throw new InvalidParameterError(`field ${l.path} already holds an envelope: decrypt the record before encrypting it again`);
    }
  }
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
    const { dataKey, edks, messageId } = await obtainDataKey(
      provider,
      keyId,
      keySpec,
      context,
      encoded.reduce((sum, e) => sum + e.length, 0),
      also,
    );
    let recordKeys: Uint8Array | undefined;
    try {
      const mac = hmacOf(aead);
      // SPEC.md §12.2: one derivation per header gives the field root and the header's commitment.
      const derived = deriveRecordKeys(dataKey, messageId, mac);
      recordKeys = derived.bytes;
      const fieldRoot = derived.key;
      const header = encodeHeader({ layout: LAYOUT_FIELD, messageId, context, encryptedDataKeys: edks, commitment: derived.commitment });
      const aad = authenticatedHeaderOf(header, context, LAYOUT_FIELD);
      // Compact storage keeps the header once, beside the fields (SPEC.md §12.4).
      const stored = headerField === undefined ? header : new Uint8Array(0);
      if (headerField !== undefined) copy.set([headerField], RECORD_HEADER_PREFIX + base64UrlEncode(header));
      located.forEach((l, i) => {
        // SPEC.md §12.2: body = field commitment || AES-256-GCM(field key, zero nonce, encoding, aad = authenticated header).
        const { bytes: fieldKeys, key: fieldKey, commitment: fieldCommitment } = deriveFieldKeys(fieldRoot, fieldBinding(l.steps, recordId, recordVersion), mac);
        try {
          const pt = encoded[i]!;
          const env = new Uint8Array(stored.length + FIELD_COMMITMENT_LENGTH + pt.length + TAG_LENGTH);
          env.set(stored, 0);
          env.set(fieldCommitment, stored.length);
          aead.seal(fieldKey, SINGLE_PASS_NONCE, aad, pt, env.subarray(stored.length + FIELD_COMMITMENT_LENGTH));
          const idx = indexes[i];
          if (idx !== undefined) copy.set([...l.steps.slice(0, -1), blind.get(l.selector)!.into], idx);
          copy.set(l.steps, headerField === undefined ? envelopeToText(env) : COMPACT_FIELD_PREFIX + base64UrlEncode(env));
        } finally {
          wipe(fieldKeys);
        }
      });
    } finally {
      wipe(dataKey, recordKeys);
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
  return (await decryptRecord(copy, plan, checkRecordBinding(options))) as [S] extends [never] ? DecryptedFields<E, F[number]> : S;
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
async function decryptRecord(copy: RecordCopy, plan: DecryptPlan, binding: RecordBinding): Promise<unknown> {
  const { base, selectors, allowPlain, onPlain, schema, headerField } = plan;
  const { recordId, recordVersion } = binding;
  // The checked copy is read first, then receives the decrypted values.
  const input = copy.root;
  const located = guard('"record"', () => selectors.flatMap((s) => copy.locate(s)));
  type Parsed = { loc: Located; header: EnvelopeHeader; body: Uint8Array };
  const parsed: Parsed[] = [];
  const compact: { loc: Located; body: Uint8Array }[] = [];
  const plain: Located[] = [];
  // SPEC.md §12.3 step 1: the form of every field, checked before any key is used.
  for (const loc of located) {
    const v = loc.value;
    const form = fieldForm(v, loc.path);
    if (form === 'plain') {
      if (allowPlain) {
        plain.push(loc);
        continue;
      }
      throw new UnencryptedFieldError(loc.path);
    }
    const text = v as string;
    if (form === 'compact') {
      // With a record header, every field is a compact field under it; without one, none is (SPEC.md §12.4).
      if (headerField === undefined) throw new MalformedEnvelopeError(`field ${loc.path} is a compact field: give "headerField" to decrypt it`);
      const body = base64UrlDecode(text.slice(COMPACT_FIELD_PREFIX.length));
      if (!body || body.length < FIELD_BODY_MIN) {
        throw new MalformedEnvelopeError(`field ${loc.path}: compact field is not canonical base64url of at least ${FIELD_BODY_MIN} bytes`);
      }
      compact.push({ loc, body });
      continue;
    }
    let header: EnvelopeHeader;
    let body: Uint8Array;
    try {
      const bytes = envelopeFromText(text);
      if (headerField !== undefined) throw new MalformedEnvelopeError('a self-contained field in a record read in compact form ("headerField")');
      const r = parseHeader(bytes, base.maxEdks, [LAYOUT_FIELD]);
      header = r.header;
      body = bytes.subarray(r.bodyOffset);
    } catch (e) {
      if (e instanceof MalformedEnvelopeError) throw new MalformedEnvelopeError(`field ${loc.path}: ${e.message}`, { cause: e });
      throw e;
    }
    if (body.length < FIELD_BODY_MIN) throw new MalformedEnvelopeError(`field ${loc.path}: body shorter than ${FIELD_BODY_MIN} bytes`);
    parsed.push({ loc, header, body });
  }
  // Step 2: the record header, read once, when there is a compact field.
  if (compact.length > 0) {
    const header = readRecordHeader(input, headerField!, base.maxEdks);
    for (const c of compact) parsed.push({ loc: c.loc, header, body: c.body });
  }
  // Step 3: the required context, before any provider call.
  for (const p of parsed) if (!contextContains(p.header.context, base.required)) throw new DecryptionFailedError();
  for (const p of plain) {
    try {
      onPlain!(p.path);
    } catch (e) {
      throw new InvalidParameterError('"onPlaintextField" threw', { cause: e });
    }
  }

  // One provider call per distinct record header (normally exactly one per record); each keeps the
  // 64 bytes of its record keys (field root and commitment, SPEC.md §12.2), wiped at the end.
  const keys = new Map<string, { recordKeys: Uint8Array; fieldRoot: Uint8Array }>();
  const mac = hmacOf(base.aead);
  const out = copy.root;
  // Every value decoded here, to wipe its byte arrays if the record is not returned.
  const decoded: unknown[] = [];
  try {
    for (const p of parsed) {
      // SPEC.md §12.3 step 4: the data key of each distinct header (all of its bytes, the data-key list included) is
      // unwrapped once, so a field's own data-key list is always read: a changed blob or provider id fails.
      const id = toHex(p.header.bytes);
      let entry = keys.get(id);
      if (!entry) {
        const { dataKey } = await unwrapAny(p.header, base.providers);
        let derived: ReturnType<typeof deriveRecordKeys>;
        try {
          derived = deriveRecordKeys(dataKey, p.header.messageId, mac);
        } finally {
          wipe(dataKey);
        }
        entry = { recordKeys: derived.bytes, fieldRoot: derived.key };
        keys.set(id, entry);
        // SPEC.md §12.3 step 5: the header's commitment.
        if (!constantTimeEqual(derived.commitment, p.header.commitment)) throw new DecryptionFailedError();
      }
      // SPEC.md §12.3 step 6: the field commitment, in constant time, before the body is opened.
      const { bytes: fieldKeys, key: fieldKey, commitment: fieldCommitment } = deriveFieldKeys(entry.fieldRoot, fieldBinding(p.loc.steps, recordId, recordVersion), mac);
      const pt = new Uint8Array(p.body.length - FIELD_BODY_MIN);
      try {
        if (!constantTimeEqual(fieldCommitment, p.body.subarray(0, FIELD_COMMITMENT_LENGTH))) throw new DecryptionFailedError();
        if (!base.aead.open(fieldKey, SINGLE_PASS_NONCE, p.header.aad, p.body.subarray(FIELD_COMMITMENT_LENGTH), pt)) throw new DecryptionFailedError();
        const value = decodeValue(pt);
        decoded.push(value);
        copy.set(p.loc.steps, value);
      } finally {
        wipe(fieldKeys, pt);
      }
    }
  } catch (e) {
    for (const v of decoded) wipeDecoded(v);
    throw e;
  } finally {
    for (const k of keys.values()) wipe(k.recordKeys);
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


/** Options of {@link encryptRecords}: those of {@link encryptFields}, with `recordId` a function of the record. */
export type EncryptRecordsOptions<
  T = Record<string, unknown>,
  F extends readonly FieldSelector<T>[] = readonly FieldSelector<T>[],
  I extends BlindIndexOptions<F[number]> = BlindIndexOptions<F[number]>,
  H extends string = string,
> = Omit<EncryptFieldsOptions<T, F, I, H>, 'recordId' | 'recordVersion'> &
  BatchOptions & { readonly recordId?: (record: T, index: number) => RecordId; readonly recordVersion?: (record: T, index: number) => RecordVersion };

/** Options of {@link decryptRecords}: those of {@link decryptFields}, with `recordId` a function of the record. */
export type DecryptRecordsOptions<E = Record<string, unknown>, F extends readonly FieldSelector<E>[] = readonly FieldSelector<E>[], S = unknown> = Omit<
  DecryptFieldsOptions<E, F, S>,
  'recordId' | 'recordVersion'
> &
  BatchOptions & { readonly recordId?: (record: E, index: number) => RecordId; readonly recordVersion?: (record: E, index: number) => RecordVersion };

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
  each: (copy: RecordCopy, plan: P, binding: RecordBinding) => Promise<unknown>,
): Promise<BatchResult<unknown>[]> {
  checkOptionsObject(options, fn);
  const { recordId: idOf, recordVersion: versionOf, concurrency } = readOptions(options, ['recordId', 'recordVersion', 'concurrency'], `${fn} options`);
  if (idOf !== undefined && typeof idOf !== 'function') throw new InvalidParameterError('"recordId" must be a function of the record in a batch');
  if (versionOf !== undefined && typeof versionOf !== 'function') throw new InvalidParameterError('"recordVersion" must be a function of the record in a batch');
  const checked = plan(options);
  const call = (f: unknown, name: string, r: unknown, i: number): unknown => {
    if (f === undefined) return undefined;
    try {
      return (f as (r: unknown, i: number) => unknown)(r, i);
    } catch (e) {
      throw new InvalidParameterError(`the "${name}" function threw`, { cause: e });
    }
  };
  return mapBounded(records, concurrency, async (r, i) => {
    const copy = checkRecord(r);
    const recordId = checkRecordId(call(idOf, 'recordId', r, i));
    const recordVersion = checkRecordId(call(versionOf, 'recordVersion', r, i), 'recordVersion');
    return each(copy, checked, { recordId, recordVersion });
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

/**
 * Options of {@link rewrapFields}: those of `rewrap` (the providers, the rules, the record id and
 * version are not needed: a record header's commitment does not depend on them, SPEC.md §12.2),
 * and where the record's fields are.
 */
export interface RewrapFieldsOptions<E = Record<string, unknown>, F extends readonly FieldSelector<E>[] = readonly FieldSelector<E>[]>
  extends Omit<RewrapOptions, 'recordId' | 'recordVersion'> {
  /** The encrypted fields, as given to `encryptFields` (without `headerField`). Absent fields are skipped. */
  readonly fields?: F;
  /** For a record in compact form: the property holding its record header (`ekh1.`), the only thing re-wrapped. */
  readonly headerField?: string;
}

/**
 * Re-wrap a record's encrypted fields (SPEC.md §15) without reading or re-encrypting them: the
 * record header of a compact record (`headerField`), or the header every self-contained field
 * carries (`fields`), which is re-wrapped once and replaced in each field, so that the fields still
 * share one header. Returns a new record (the input is not modified); everything else is kept as is.
 * @throws InvalidParameterError (give `fields` or `headerField`, not both), MalformedEnvelopeError for
 *   a field that is not an encrypted field, and as `rewrap`.
 */
export async function rewrapFields<E extends object, const F extends readonly FieldSelector<NoInfer<E>>[]>(
  record: E,
  options: RewrapFieldsOptions<NoInfer<E>, F>,
): Promise<E> {
  const plan = planRewrapFields(options, 'rewrapFields');
  return (await rewrapRecordChecked(checkRecord(record), plan)) as E;
}

interface RewrapFieldsPlan {
  readonly checked: CheckedRewrap;
  readonly selectors: readonly Selector[];
  readonly headerField: string | undefined;
}

function planRewrapFields(options: unknown, fn: string): RewrapFieldsPlan {
  checkOptionsObject(options, fn);
  if (readOption(options, 'recordId') !== undefined || readOption(options, 'recordVersion') !== undefined) {
    throw new InvalidParameterError(`${fn} does not take "recordId" or "recordVersion": a record header's commitment does not depend on them`);
  }
  const checked = { ...checkRewrapOptions(options, fn), binding: new Uint8Array(0) };
  const fields = readOption<unknown>(options, 'fields');
  const headerField = readOption<unknown>(options, 'headerField');
  if ((fields === undefined) === (headerField === undefined)) throw new InvalidParameterError(`${fn} needs "fields" (self-contained fields) or "headerField" (compact form), not both`);
  if (headerField !== undefined) return { checked, selectors: [], headerField: checkPropertyName(headerField, '"headerField"') };
  return { checked, selectors: checkSelectors(fields).selectors, headerField: undefined };
}

async function rewrapRecordChecked(copy: RecordCopy, plan: RewrapFieldsPlan): Promise<unknown> {
  const { checked, selectors, headerField } = plan;
  if (headerField !== undefined) {
    const header = readRecordHeader(copy.root, headerField, checked.decrypt.maxEdks);
    const edks = await rewrapEncryptedDataKeys(header, checked);
    if (edks) copy.set([headerField], RECORD_HEADER_PREFIX + base64UrlEncode(replaceEncryptedDataKeys(header, edks)));
    return copy.root;
  }
  const located = guard('"record"', () => selectors.flatMap((s) => copy.locate(s)));
  // One re-wrap per distinct authenticated header (normally one per record), applied to every field under it.
  const byHeader = new Map<string, { header: EnvelopeHeader; fields: { loc: Located; body: Uint8Array }[] }>();
  for (const loc of located) {
    const form = fieldForm(loc.value, loc.path);
    if (form !== 'text') throw new MalformedEnvelopeError(`field ${loc.path} is not a self-contained encrypted field`);
    let parsed;
    try {
      const bytes = envelopeFromText(loc.value as string);
      parsed = parseHeader(bytes, checked.decrypt.maxEdks, [LAYOUT_FIELD]);
      parsed = { header: parsed.header, body: bytes.subarray(parsed.bodyOffset) };
    } catch (e) {
      if (e instanceof MalformedEnvelopeError) throw new MalformedEnvelopeError(`field ${loc.path}: ${e.message}`, { cause: e });
      throw e;
    }
    const id = toHex(parsed.header.aad);
    const group = byHeader.get(id) ?? { header: parsed.header, fields: [] };
    group.fields.push({ loc, body: parsed.body });
    byHeader.set(id, group);
  }
  for (const { header, fields } of byHeader.values()) {
    const edks = await rewrapEncryptedDataKeys(header, checked);
    if (!edks) continue;
    const next = replaceEncryptedDataKeys(header, edks);
    for (const f of fields) {
      const env = new Uint8Array(next.length + f.body.length);
      env.set(next, 0);
      env.set(f.body, next.length);
      copy.set(f.loc.steps, envelopeToText(env));
    }
  }
  return copy.root;
}

/** Options of {@link rewrapRecords}: those of {@link rewrapFields}, and `concurrency`. */
export type RewrapRecordsOptions<E = Record<string, unknown>, F extends readonly FieldSelector<E>[] = readonly FieldSelector<E>[]> = RewrapFieldsOptions<E, F> & BatchOptions;

/**
 * {@link rewrapFields} over many records, with at most `concurrency` in flight (default 8), in
 * order, each record's failure its own result. The options are checked once, before any record.
 * Use it to move stored records to a new master key, or to the newest version of theirs after a
 * rotation (`replace: [{ from: { keyId }, to: { provider, keyId } }]`).
 */
export function rewrapRecords<E extends object, const F extends readonly FieldSelector<NoInfer<E>>[]>(
  records: readonly E[],
  options: RewrapRecordsOptions<NoInfer<E>, F>,
): Promise<BatchResult<E>[]> {
  const plan = planRewrapFields(options, 'rewrapRecords');
  const { concurrency } = readOptions(options, ['concurrency'], 'rewrapRecords options');
  return mapBounded(records, concurrency, async (r) => (await rewrapRecordChecked(checkRecord(r), plan)) as E);
}
