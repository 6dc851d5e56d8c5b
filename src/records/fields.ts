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
import type { BlindIndex } from './blind-index.js';
import { type EncryptionContext, contextContains } from '../core/context.js';
import {
  checkEncryptOptions,
  checkDecryptOptions,
  checkOptionsObject,
  obtainDataKey,
  readOption,
  unwrapAny,
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
  MESSAGE_ID_LENGTH,
  SINGLE_PASS_NONCE,
  type EnvelopeHeader,
  encodeHeader,
  envelopeFromText,
  envelopeToText,
  parseHeader,
} from '../core/format.js';
import { base64UrlDecode, base64UrlEncode } from '../internal/base64.js';
import { constantTimeEqual, isWellFormed, utf8Encode, utf8Length, wipe } from '../internal/bytes.js';
import { readOptions } from '../internal/options.js';
import { randomPublicBytes } from '../internal/random.js';
import { type HmacSha256, hkdfExtract, hmacOf, keysFromPrk, nobleHmacSha256 } from '../core/kdf.js';
import { type BatchOptions, type BatchResult, type ValueSchema, applySchema, mapBounded } from './objects.js';
import type { KeyProvider, KeySpec } from '../core/provider.js';
import { decodeValue, encodeValue, pathKey } from './value-encoding.js';

/** HKDF info label of field keys (SPEC.md §12.2); it names the suite (0x01) and the layout (0x01). */
export const FIELD_KEY_LABEL = 'envelope-kit/v1/suite-01/layout-01/field-key';
/** HKDF info label of field commitments (SPEC.md §12.2); it names the suite (0x01) and the layout (0x01). */
export const FIELD_COMMITMENT_LABEL = 'envelope-kit/v1/suite-01/layout-01/field-commitment';
const FIELD_KEY_INFO = utf8Encode(FIELD_KEY_LABEL);
const FIELD_COMMITMENT_INFO = utf8Encode(FIELD_COMMITMENT_LABEL);
/** Bytes of the field commitment that starts every field body (SPEC.md §12.2). */
export const FIELD_COMMITMENT_LENGTH = 32;
/** The shortest field body: field commitment and tag. */
const FIELD_BODY_MIN = FIELD_COMMITMENT_LENGTH + TAG_LENGTH;
/** Most UTF-8 bytes of a string record id or record version (SPEC.md §12.1). */
export const MAX_RECORD_ID_BYTES = 1024;

/**
 * Any string that begins like a text form of this library: `ek`, `ekf` or `ekh`,
 * digits and a dot, in any case (SPEC.md §12.3). Such a string is never taken
 * for a plaintext field value.
 */
const ENVELOPE_LIKE = /^ek[fh]?[0-9]+\./i;
/** `ekf`/`ekh` followed by the version number of another version of this format (SPEC.md §12.3). */
const OTHER_FIELD_VERSION = /^ek[fh]([1-9][0-9]{0,2})\./;

/** A record id: binds every field to its record. */
export type RecordId = string | number;
/** A record version (a version counter, an `updatedAt` as text): binds every field to one version of its record. */
export type RecordVersion = string | number;

/** Where and how to store a blind index of a field. */
export interface BlindIndexField {
  /** The index to compute (from `openBlindIndex`). */
  readonly index: BlindIndex;
  /** Property, beside the field, that receives the index string (e.g. `email_idx`). */
  readonly into: string;
}

/** Options of {@link encryptFields}. */
export interface EncryptFieldsOptions {
  readonly provider: KeyProvider;
  readonly keyId: string;
  /** Field selectors: `ssn`, `address.street`, `cards[].number` (`[]` = every element). */
  readonly fields: readonly string[];
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
  /** Blind indexes to compute, by field selector (the field's plaintext is indexed). */
  readonly blindIndexes?: Readonly<Record<string, BlindIndexField>>;
  /**
   * Compact storage: write the record's header once, as `ekh1.…`, into this
   * top-level property (e.g. `_ek`), and each field as `ekf1.…` (its sealed value
   * only). Much smaller than self-contained fields; the header property must be
   * stored and given back with the record (SPEC.md §12.4). A record that
   * already holds a header there is refused: a header is never reused.
   */
  readonly headerField?: string;
  readonly aead?: AesGcm;
}

/** Options of {@link decryptFields}. */
export interface DecryptFieldsOptions<T = unknown> {
  readonly provider?: KeyProvider;
  readonly providers?: readonly KeyProvider[];
  /** The fields to decrypt; fields not listed are left as they are (partial decryption). */
  readonly fields: readonly string[];
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
  /** Validate the whole decrypted record. */
  readonly schema?: ValueSchema<T>;
  /**
   * Where the record's header is, for fields stored in compact form (see
   * {@link EncryptFieldsOptions.headerField}). With it, every listed field must
   * be a compact field under that header; without it, none may be.
   */
  readonly headerField?: string;
  readonly maxEncryptedDataKeys?: number;
  readonly aead?: AesGcm;
}

type Segment = { readonly name: string; readonly arrays: number };
type Selector = { readonly text: string; readonly segments: readonly Segment[] };
type Step = string | number;
type Located = { readonly steps: readonly Step[]; readonly path: string; readonly selector: string };

const SEGMENT_RE = /^([^.[\]]+)((?:\[\])*)$/;

/** Parse `a.b[].c` into segments. @throws InvalidParameterError */
function parseSelector(text: unknown): Selector {
  if (typeof text !== 'string' || text.length === 0 || text.length > 1024) {
    throw new InvalidParameterError('field selectors must be non-empty strings like "address.street" or "cards[].number"');
  }
  const segments = text.split('.').map((part) => {
    const m = SEGMENT_RE.exec(part);
    if (!m) throw new InvalidParameterError(`invalid field selector ${JSON.stringify(text)}`);
    return { name: m[1]!, arrays: m[2]!.length / 2 };
  });
  return { text, segments };
}

function checkSelectors(fields: unknown): Selector[] {
  const list = guard('"fields"', () => {
    if (!Array.isArray(fields) || fields.length === 0) throw new InvalidParameterError('"fields" must be a non-empty array of selectors');
    return [...(fields as unknown[])];
  });
  const sels = list.map(parseSelector);
  // a covers b when a's segments are a prefix of b's (the last one by name, with no more `[]` than b's).
  const covers = (a: Selector, b: Selector): boolean => {
    const x = a.segments;
    const y = b.segments;
    if (x.length > y.length) return false;
    for (let k = 0; k < x.length; k++) {
      if (x[k]!.name !== y[k]!.name) return false;
      if (k < x.length - 1 ? x[k]!.arrays !== y[k]!.arrays : x[k]!.arrays > y[k]!.arrays) return false;
    }
    return true;
  };
  for (let i = 0; i < sels.length; i++) {
    for (let j = 0; j < sels.length; j++) {
      if (i !== j && covers(sels[i]!, sels[j]!)) {
        throw new InvalidParameterError(`field selectors ${JSON.stringify(sels[i]!.text)} and ${JSON.stringify(sels[j]!.text)} overlap`);
      }
    }
  }
  return sels;
}

/** Run `f`, turning any foreign throw (a hostile proxy or getter in the caller's input) into InvalidParameterError. */
function guard<R>(what: string, f: () => R): R {
  try {
    return f();
  } catch (e) {
    if (e instanceof EnvelopeKitError) throw e;
    throw new InvalidParameterError(`${what} could not be read`, { cause: e });
  }
}

function isContainer(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stepsPath(steps: readonly Step[]): string {
  let p = '$';
  for (const s of steps) p = typeof s === 'number' ? `${p}[${s}]` : pathKey(p, s);
  return p;
}

/** Every concrete location a selector names in `record`. Absent fields are skipped. */
function locate(record: unknown, sel: Selector): Located[] {
  const out: Located[] = [];
  const walk = (node: unknown, i: number, steps: Step[]): void => {
    const seg = sel.segments[i]!;
    if (!isContainer(node)) {
      if (node === undefined || node === null) return;
      throw new InvalidParameterError(`field ${sel.text}: ${stepsPath(steps)} is not an object`);
    }
    if (!Object.prototype.hasOwnProperty.call(node, seg.name)) return;
    const expand = (v: unknown, depth: number, st: Step[]): void => {
      if (depth === seg.arrays) {
        if (i === sel.segments.length - 1) out.push({ steps: st, path: stepsPath(st), selector: sel.text });
        else walk(v, i + 1, st);
        return;
      }
      if (v === undefined || v === null) return;
      if (!Array.isArray(v)) throw new InvalidParameterError(`field ${sel.text}: ${stepsPath(st)} is not an array`);
      v.forEach((el, k) => expand(el, depth + 1, [...st, k]));
    };
    expand(node[seg.name], 0, [...steps, seg.name]);
  };
  walk(record, 0, []);
  return out;
}

function getAt(root: unknown, steps: readonly Step[]): unknown {
  let n = root as Record<Step, unknown>;
  for (const s of steps) n = n[s] as Record<Step, unknown>;
  return n;
}

/** Copy-on-write: shallow-copy each container on the way to `steps`, then set the value. */
function setAt(root: Record<string, unknown>, steps: readonly Step[], value: unknown, copied: Set<unknown>): void {
  let n: Record<Step, unknown> = root;
  for (let i = 0; i < steps.length - 1; i++) {
    const s = steps[i]!;
    let child = n[s] as Record<Step, unknown>;
    if (!copied.has(child)) {
      child = shallowCopy(child) as Record<Step, unknown>;
      copied.add(child);
      n[s] = child;
    }
    n = child;
  }
  n[steps[steps.length - 1]!] = value;
}

/** A shallow copy that keeps the prototype (plain, null-prototype or class instance). */
function shallowCopy(v: object): object {
  if (Array.isArray(v)) return [...v];
  return Object.assign(Object.create(Object.getPrototypeOf(v)), v);
}

function cloneRoot(record: Record<string, unknown>, copied: Set<unknown>): Record<string, unknown> {
  const root = shallowCopy(record) as Record<string, unknown>;
  copied.add(root);
  return root;
}

/**
 * The canonical binding of a field (SPEC.md §12.1): UTF-8 of the JSON of
 * `[path steps, record id or null, record version or null]`, without spaces.
 */
export function fieldBinding(steps: readonly Step[], recordId: RecordId | undefined, recordVersion?: RecordVersion): Uint8Array {
  return utf8Encode(JSON.stringify([steps, recordId ?? null, recordVersion ?? null]));
}

/** Field key and field commitment of one binding. Caller wipes `fieldKey`. */
export interface FieldKeys {
  readonly fieldKey: Uint8Array;
  readonly commitment: Uint8Array;
}

/**
 * `prk = HKDF-Extract(salt = messageId, ikm = dataKey)`;
 * `fieldKey = HKDF-Expand(prk, FIELD_KEY_LABEL || 0x00 || binding, 32)`;
 * `commitment = HKDF-Expand(prk, FIELD_COMMITMENT_LABEL || 0x00 || binding, 32)` (SPEC.md §12.2).
 */
export function deriveFieldKeys(dataKey: Uint8Array, messageId: Uint8Array, binding: Uint8Array, mac: HmacSha256 = nobleHmacSha256): FieldKeys {
  const prk = hkdfExtract(mac, messageId, dataKey);
  try {
    return fieldKeysFromPrk(mac, prk, binding);
  } finally {
    wipe(prk);
  }
}

/** The expands of {@link deriveFieldKeys} from the record's PRK (extracted once per record). */
function fieldKeysFromPrk(mac: HmacSha256, prk: Uint8Array, binding: Uint8Array): FieldKeys {
  const fieldKey = expandWithBinding(mac, prk, FIELD_KEY_INFO, binding);
  try {
    return { fieldKey, commitment: expandWithBinding(mac, prk, FIELD_COMMITMENT_INFO, binding) };
  } catch (e) {
    wipe(fieldKey);
    throw e;
  }
}

/** `HKDF-Expand(prk, label || 0x00 || binding, 32)`: the single block `T(1) = HMAC(prk, label || 0x00 || binding || 0x01)`. */
function expandWithBinding(mac: HmacSha256, prk: Uint8Array, label: Uint8Array, binding: Uint8Array): Uint8Array {
  const m = new Uint8Array(label.length + 1 + binding.length + 1);
  m.set(label, 0);
  m.set(binding, label.length + 1);
  m[m.length - 1] = 0x01;
  return mac(prk, m);
}

/** Check a `headerField` option against the selectors: a top-level property no selector touches. */
function checkHeaderField(name: unknown, selectors: readonly Selector[]): string | undefined {
  if (name === undefined) return undefined;
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
    throw new InvalidParameterError('"headerField" must be a property name of 1 to 256 characters');
  }
  if (selectors.some((s) => s.segments[0]!.name === name)) {
    throw new InvalidParameterError(`"headerField" ${JSON.stringify(name)} is also a selected field`);
  }
  return name;
}

/** A record id or record version (SPEC.md §12.1): a well-formed string of 1..1024 UTF-8 bytes, or a safe integer. */
function checkRecordId(id: unknown, name: 'recordId' | 'recordVersion' = 'recordId'): RecordId | undefined {
  if (id === undefined) return undefined;
  if (typeof id === 'string' && id.length > 0 && id.length <= MAX_RECORD_ID_BYTES && isWellFormed(id) && utf8Length(id) <= MAX_RECORD_ID_BYTES) return id;
  if (typeof id === 'number' && Number.isSafeInteger(id)) return id;
  throw new InvalidParameterError(`"${name}" must be a well-formed string of 1 to ${MAX_RECORD_ID_BYTES} bytes of UTF-8, or a safe integer`);
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

function checkRecord(record: unknown): Record<string, unknown> {
  if (!guard('"record"', () => isContainer(record))) throw new InvalidParameterError('"record" must be an object');
  return record as Record<string, unknown>;
}

/**
 * Encrypt the selected fields of a record. Returns a new record of the same
 * shape (the input is not modified) in which each selected field holds a text
 * envelope; absent fields stay absent.
 * @throws InvalidParameterError for bad selectors or a record that does not fit them, for a
 *   record that already holds a record header in `headerField`, and for a selected field that
 *   already holds an envelope (SPEC.md §12.2: nothing is sealed under an existing header);
 *   UnsupportedValueError for a field value that cannot be encoded; provider errors as {@link encrypt}.
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
export async function encryptFields<T extends object>(record: T, options: EncryptFieldsOptions): Promise<T> {
  const input = checkRecord(record);
  const { provider, keyId, keySpec, context, aead } = checkEncryptOptions(options, 'encryptFields');
  const recordId = checkRecordId(readOption(options, 'recordId'));
  const recordVersion = checkRecordId(readOption(options, 'recordVersion'), 'recordVersion');
  const selectors = checkSelectors(readOption(options, 'fields'));
  const headerField = checkHeaderField(readOption(options, 'headerField'), selectors);
  const blindOption = readOption<unknown>(options, 'blindIndexes');
  // Checked copies of the blind-index options: selector -> { index, into }.
  const blind = guard('"blindIndexes"', () => {
    if (blindOption === undefined) return undefined;
    if (!isContainer(blindOption)) throw new InvalidParameterError('"blindIndexes" must be an object keyed by field selector');
    const out: Record<string, BlindIndexField> = {};
    for (const [sel, b] of Object.entries(blindOption)) {
      if (!selectors.some((s) => s.text === sel)) throw new InvalidParameterError(`blind index for ${JSON.stringify(sel)}, which is not in "fields"`);
      const into: unknown = isContainer(b) ? b.into : undefined;
      const index: unknown = isContainer(b) ? b.index : undefined;
      if (typeof into !== 'string' || !into || !isContainer(index) || typeof index.compute !== 'function') {
        throw new InvalidParameterError(`blind index for ${JSON.stringify(sel)} needs { index, into }`);
      }
      Object.defineProperty(out, sel, { value: { index: index as unknown as BlindIndex, into }, enumerable: true });
    }
    return out;
  });
  // Locate and encode everything before asking the provider: bad input costs no KMS call.
  const located = guard('"record"', () => selectors.flatMap((s) => locate(input, s)));
  // Never seal under an existing header, and never seal a sealed value (SPEC.md §12.2): every call makes a fresh header.
  if (headerField !== undefined) {
    const existing = guard('"record"', () => (Object.prototype.hasOwnProperty.call(input, headerField) ? input[headerField] : undefined));
    if (existing !== undefined && existing !== null) {
      throw new InvalidParameterError(
        `the record already holds a record header in ${JSON.stringify(headerField)}: a header is never reused; decrypt the record and encrypt all of its fields in one call`,
      );
    }
  }
  for (const l of located) {
    const v = guard('"record"', () => getAt(input, l.steps));
    if (typeof v === 'string' && ENVELOPE_LIKE.test(v)) {
      throw new InvalidParameterError(`field ${l.path} already holds an envelope: decrypt the record before encrypting it again`);
    }
  }
  const encoded = located.map((l) => encodeValue(guard('"record"', () => getAt(input, l.steps))));
  const copied = new Set<unknown>();
  const out = guard('"record"', () => cloneRoot(input, copied));
  try {
    if (located.length === 0) return out as T;
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
      if (headerField !== undefined) setAt(out, [headerField], RECORD_HEADER_PREFIX + base64UrlEncode(header), copied);
      const recordPrk = prk;
      located.forEach((l, i) => {
        // SPEC.md §12.2: body = field commitment || AES-256-GCM(field key, zero nonce, encoding, aad = header).
        const { fieldKey, commitment: fieldCommitment } = fieldKeysFromPrk(mac, recordPrk, fieldBinding(l.steps, recordId, recordVersion));
        try {
          const pt = encoded[i]!;
          const env = new Uint8Array(stored.length + FIELD_COMMITMENT_LENGTH + pt.length + TAG_LENGTH);
          env.set(stored, 0);
          env.set(fieldCommitment, stored.length);
          aead.seal(fieldKey, SINGLE_PASS_NONCE, header, pt, env.subarray(stored.length + FIELD_COMMITMENT_LENGTH));
          const b = blind?.[l.selector];
          if (b) {
            const parentSteps = l.steps.slice(0, -1);
            const idx = b.index.compute(getAt(input, l.steps));
            setAt(out, [...parentSteps, b.into], idx, copied);
          }
          setAt(out, l.steps, headerField === undefined ? envelopeToText(env) : COMPACT_FIELD_PREFIX + base64UrlEncode(env), copied);
        } finally {
          wipe(fieldKey);
        }
      });
    } finally {
      wipe(dataKey, prk);
    }
    return out as T;
  } finally {
    for (const e of encoded) wipe(e);
  }
}

/**
 * Decrypt the selected fields of a record made by {@link encryptFields}. Fields
 * not listed are left untouched. Fails closed: a listed field that holds
 * anything but a field envelope throws UnencryptedFieldError (unless
 * `allowPlaintextFields` is set for a migration, in which case each is reported);
 * a string that looks like an envelope of this library is never plaintext
 * (SPEC.md §12.3 step 1).
 * @throws UnencryptedFieldError; MalformedEnvelopeError and UnsupportedVersionError for a field or
 *   record header that is not one this release reads, or compact and self-contained fields mixed;
 *   DecryptionFailedError (wrong record id or version, moved field, tampering),
 *   SchemaMismatchError, and as {@link decrypt}.
 */
export async function decryptFields<T = Record<string, unknown>>(record: object, options: DecryptFieldsOptions<T>): Promise<T> {
  const input = checkRecord(record);
  const base = checkDecryptOptions(options);
  const recordId = checkRecordId(readOption(options, 'recordId'));
  const recordVersion = checkRecordId(readOption(options, 'recordVersion'), 'recordVersion');
  const selectors = checkSelectors(readOption(options, 'fields'));
  const allowPlain = readOption<unknown>(options, 'allowPlaintextFields');
  const onPlain = readOption<unknown>(options, 'onPlaintextField');
  if (allowPlain !== undefined && typeof allowPlain !== 'boolean') throw new InvalidParameterError('"allowPlaintextFields" must be a boolean');
  if (allowPlain && typeof onPlain !== 'function') {
    throw new InvalidParameterError('"allowPlaintextFields" needs an "onPlaintextField" callback so that every plaintext field is reported');
  }
  const schema = readOption<ValueSchema<T> | undefined>(options, 'schema');
  const headerField = checkHeaderField(readOption(options, 'headerField'), selectors);

  const located = guard('"record"', () => selectors.flatMap((s) => locate(input, s)));
  type Parsed = { loc: Located; header: EnvelopeHeader; body: Uint8Array };
  const parsed: Parsed[] = [];
  const compact: { loc: Located; body: Uint8Array }[] = [];
  const plain: Located[] = [];
  // SPEC.md §12.3 step 1: the form of every field, checked before any key is used.
  for (const loc of located) {
    const v = guard('"record"', () => getAt(input, loc.steps));
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
  for (const p of plain) (onPlain as (path: string) => void)(p.path);

  // One provider call per distinct record header (normally exactly one per record).
  const keys = new Map<string, { dataKey: Uint8Array; prk: Uint8Array; header: EnvelopeHeader }>();
  const mac = hmacOf(base.aead);
  const copied = new Set<unknown>();
  const out = guard('"record"', () => cloneRoot(input, copied));
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
      // SPEC.md §12.3: the field commitment, in constant time, before the body is opened.
      const { fieldKey, commitment: fieldCommitment } = fieldKeysFromPrk(mac, entry.prk, fieldBinding(p.loc.steps, recordId, recordVersion));
      const pt = new Uint8Array(p.body.length - FIELD_BODY_MIN);
      try {
        if (!constantTimeEqual(fieldCommitment, p.body.subarray(0, FIELD_COMMITMENT_LENGTH))) throw new DecryptionFailedError();
        if (!base.aead.open(fieldKey, SINGLE_PASS_NONCE, p.header.bytes, p.body.subarray(FIELD_COMMITMENT_LENGTH), pt)) throw new DecryptionFailedError();
        setAt(out, p.loc.steps, decodeValue(pt), copied);
      } finally {
        wipe(fieldKey, pt);
      }
    }
  } finally {
    for (const k of keys.values()) wipe(k.dataKey, k.prk);
  }
  return applySchema(schema, out);
}

function hex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, '0');
  return s;
}

/** {@link encryptFields} over many records; `recordId` may be a function of the record. */
export function encryptRecords<T extends object>(
  records: readonly T[],
  options: Omit<EncryptFieldsOptions, 'recordId' | 'recordVersion'> &
    BatchOptions & { readonly recordId?: (record: T, index: number) => RecordId; readonly recordVersion?: (record: T, index: number) => RecordVersion },
): Promise<BatchResult<T>[]> {
  return batchFields(records, options, (r, o) => encryptFields(r as T, o as EncryptFieldsOptions)) as Promise<BatchResult<T>[]>;
}

/** Shared body of the record batches: checked options, a per-record id, bounded concurrency. */
async function batchFields<O>(
  records: readonly unknown[],
  options: unknown,
  each: (record: unknown, options: object) => Promise<O>,
): Promise<BatchResult<O>[]> {
  checkOptionsObject(options, 'batch');
  const { recordId: idOf, recordVersion: versionOf, concurrency } = readOptions(options, ['recordId', 'recordVersion', 'concurrency'], 'batch options');
  if (idOf !== undefined && typeof idOf !== 'function') throw new InvalidParameterError('"recordId" must be a function of the record in a batch');
  if (versionOf !== undefined && typeof versionOf !== 'function') throw new InvalidParameterError('"recordVersion" must be a function of the record in a batch');
  const rest = guard('options', () => ({ ...(options as object) }));
  type Of = ((r: unknown, i: number) => RecordId) | undefined;
  return mapBounded(records, concurrency, (r, i) => each(r, { ...rest, recordId: (idOf as Of)?.(r, i), recordVersion: (versionOf as Of)?.(r, i) }));
}

/** {@link decryptFields} over many records; `recordId` may be a function of the record. */
export function decryptRecords<T = Record<string, unknown>>(
  records: readonly object[],
  options: Omit<DecryptFieldsOptions<T>, 'recordId' | 'recordVersion'> &
    BatchOptions & {
      readonly recordId?: (record: object, index: number) => RecordId;
      readonly recordVersion?: (record: object, index: number) => RecordVersion;
    },
): Promise<BatchResult<T>[]> {
  return batchFields(records, options, (r, o) => decryptFields<T>(r as object, o as DecryptFieldsOptions<T>));
}

