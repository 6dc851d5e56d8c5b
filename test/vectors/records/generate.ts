/**
 * Deterministic generator of the records vectors: value encoding (SPEC.md §11),
 * record fields (§12) and blind indexes (§13). One `<name>.txt` per scenario,
 * in the `key: value` form of SPEC.md §10.1, written into this folder or the
 * folder given as the first argument.
 *
 * Usage: `npx tsx test/vectors/records/generate.ts [output-folder]`.
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { nobleAesGcm } from '../../../src/core/aead/noble.js';
import { TAG_LENGTH } from '../../../src/core/aead/types.js';
import { BLIND_INDEX_LABEL } from '../../../src/records/blind-index.js';
import { checkContext, providerContext } from '../../../src/core/context.js';
import { fieldBinding } from '../../../src/records/fields.js';
import { LAYOUT_FIELD, LAYOUT_SINGLE, SINGLE_PASS_NONCE, authenticatedHeaderOf, encodeHeader, envelopeToText } from '../../../src/core/format.js';
import { base64UrlEncode } from '../../../src/internal/base64.js';
import { concatBytes, utf8Encode } from '../../../src/internal/bytes.js';
import { LABELS, deriveFieldKeys, deriveRecordKeys } from '../../../src/core/kdf.js';
import { wrapDataKey } from '../../../src/providers/local/blob.js';
import { encodeValue } from '../../../src/records/value-encoding.js';
import { BLOB_NONCE, DATA_KEY_256, KEY_ID, KEY_VERSION, MASTER_KEY, MESSAGE_ID, hex, seq } from '../inputs.js';
import { fromTagged, toTaggedJson } from './tagged-json.js';
import { VALUE_FAILURE_VECTORS, VALUE_VECTORS } from './values.js';
import { writeFromCommandLine } from '../write.js';

const DATA_KEY = DATA_KEY_256;
const CONTEXT = { table: 'users' };

type Vector = { name: string; lines: [string, string][] };

/** JSON text with invisible characters (controls, U+2028/9, U+FEFF) escaped, so that the line reads as it parses. */
function jsonLine(v: unknown): string {
  return JSON.stringify(v).replace(/[\u007f-\u009f\u00ad\u2028\u2029\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** SPEC.md §10.1 value vectors: each success value as tagged JSON with its encoding; each failure as bytes and the rule they break. */
function valueVectors(): Vector[] {
  const ok = VALUE_VECTORS.map((v): Vector => ({
    name: v.name,
    lines: [
      ['name', v.name],
      ['description', v.description],
      ['expect', 'value'],
      ['value', jsonLine(v.value)],
      ['encoding', hex(encodeValue(fromTagged(v.value)))],
    ],
  }));
  const bad = VALUE_FAILURE_VECTORS.map((v): Vector => ({
    name: v.name,
    lines: [
      ['name', v.name],
      ['description', v.description],
      ['expect', 'ERR_MALFORMED_VALUE'],
      ['rule', String(v.rule)],
      ['encoding', v.encoding],
    ],
  }));
  return [...ok, ...bad];
}

type Steps = (string | number)[];
type BindingValue = string | number | null;

/** A record header (SPEC.md §12): the local EDK for the fixed data key, the given message id and layout. */
function recordHeader(messageId: Uint8Array, layout: number = LAYOUT_FIELD) {
  const context = checkContext(CONTEXT);
  // SPEC.md §3.2.1: the blob is bound to the provider context.
  const blob = wrapDataKey(nobleAesGcm, MASTER_KEY, KEY_ID, KEY_VERSION, BLOB_NONCE, DATA_KEY, providerContext(context));
  // SPEC.md §12.2: one HMAC-SHA-512 per header gives the field root and the commitment.
  const { bytes: keys, key: fieldRoot, commitment } = deriveRecordKeys(DATA_KEY, messageId);
  const input = concatBytes(utf8Encode(LABELS.fieldRecord), Uint8Array.of(0), messageId, Uint8Array.of(1));
  if (hex(keys) !== hex(hmac(sha512, DATA_KEY, input))) throw new Error('generator self-check failed: record keys');
  const header = encodeHeader({ layout, messageId, context, encryptedDataKeys: [{ providerId: 'local', keyId: KEY_ID, blob }], commitment });
  // SPEC.md §3.1: the authenticated header (the associated data of every field) leaves the data-key list out.
  const aad = authenticatedHeaderOf(header, context, layout);
  const edkLength = header.length - aad.length;
  if (hex(aad) !== hex(concatBytes(header.subarray(0, aad.length - 32), header.subarray(header.length - 32)))) throw new Error('generator self-check failed: authenticated header');
  if (edkLength <= 1) throw new Error('generator self-check failed: EDK section');
  return { messageId, blob, keys, fieldRoot, commitment, header, aad };
}
type Header = ReturnType<typeof recordHeader>;

/** One field sealed under `h` at `steps` (SPEC.md §12.2), in both stored forms. */
function sealField(h: Header, steps: Steps, recordId: BindingValue, recordVersion: BindingValue, value: unknown) {
  const binding = fieldBinding(steps, recordId ?? undefined, recordVersion ?? undefined);
  const { bytes: fieldKeys, key: fieldKey, commitment: fieldCommitment } = deriveFieldKeys(h.fieldRoot, binding);
  const input = concatBytes(utf8Encode(LABELS.field), Uint8Array.of(0), binding, Uint8Array.of(1));
  if (hex(fieldKeys) !== hex(hmac(sha512, h.fieldRoot, input))) throw new Error('generator self-check failed: field keys');
  const encoded = encodeValue(value);
  const ciphertext = new Uint8Array(encoded.length + TAG_LENGTH);
  nobleAesGcm.seal(fieldKey, SINGLE_PASS_NONCE, h.aad, encoded, ciphertext);
  const body = concatBytes(fieldCommitment, ciphertext);
  return {
    steps,
    recordId,
    recordVersion,
    value,
    binding,
    fieldKeys,
    fieldKey,
    fieldCommitment,
    encoded,
    ciphertext,
    body,
    text: envelopeToText(concatBytes(h.header, body)),
    compact: 'ekf1.' + base64UrlEncode(body),
  };
}
type Sealed = ReturnType<typeof sealField>;

const headerText = (h: Header) => 'ekh1.' + base64UrlEncode(h.header);

/** A record holding `value` at `steps`; arrays are filled with empty objects before the index. */
function put(record: Record<string, unknown>, steps: Steps, value: unknown): Record<string, unknown> {
  let node = record as Record<string | number, unknown>;
  steps.forEach((s, i) => {
    if (i === steps.length - 1) {
      node[s] = value;
      return;
    }
    const next = steps[i + 1];
    if (node[s] === undefined) node[s] = typeof next === 'number' ? [] : {};
    const child = node[s] as Record<string | number, unknown>;
    if (typeof next === 'number' && Array.isArray(child)) while (child.length <= next) child.push({});
    node = child;
  });
  return record;
}

interface ReadSide {
  /** The record the reader is given. */
  record: Record<string, unknown>;
  /** The paths of the fields it opens, in order. */
  fields: Steps[];
  headerField: string | null;
  recordId: BindingValue;
  recordVersion: BindingValue;
  allowPlaintext?: boolean;
  /** For success: the record after decryption. */
  decrypted?: Record<string, unknown>;
  /** With allowPlaintext: the paths reported as plaintext. */
  plaintextFields?: Steps[];
}

/** One field vector: inputs, the header and the described field with every intermediate value, then the read. */
function fieldVector(name: string, description: string, expect: string, h: Header, f: Sealed, read: ReadSide): Vector {
  const lines: [string, string][] = [
    ['name', name],
    ['description', description],
    ['expect', expect],
    ['master key', hex(MASTER_KEY)],
    ['key id', KEY_ID],
    ['key version', String(KEY_VERSION)],
    ['blob nonce', hex(BLOB_NONCE)],
    ['data key', hex(DATA_KEY)],
    ['message id', hex(h.messageId)],
    ['encryption context', JSON.stringify(CONTEXT)],
    ['blob', hex(h.blob)],
    ['keys', hex(h.keys)],
    ['field root', hex(h.fieldRoot)],
    ['commitment', hex(h.commitment)],
    ['header', hex(h.header)],
    ['authenticated header', hex(h.aad)],
    ['record header', headerText(h)],
    ['written at', JSON.stringify(f.steps)],
    ['written record id', JSON.stringify(f.recordId)],
    ['written record version', JSON.stringify(f.recordVersion)],
    ['value', toTaggedJson(f.value)],
    ['encoded value', hex(f.encoded)],
    ['binding', new TextDecoder().decode(f.binding)],
    ['field keys', hex(f.fieldKeys)],
    ['field key', hex(f.fieldKey)],
    ['field commitment', hex(f.fieldCommitment)],
    ['ciphertext', hex(f.ciphertext)],
    ['body', hex(f.body)],
    ['field', f.text],
    ['compact field', f.compact],
    ['record', toTaggedJson(read.record)],
    ['fields', JSON.stringify(read.fields)],
    ['header field', JSON.stringify(read.headerField)],
    ['read record id', JSON.stringify(read.recordId)],
    ['read record version', JSON.stringify(read.recordVersion)],
    ['allow plaintext', String(read.allowPlaintext ?? false)],
  ];
  if (read.plaintextFields) lines.push(['plaintext fields', JSON.stringify(read.plaintextFields)]);
  if (read.decrypted) lines.push(['decrypted', toTaggedJson(read.decrypted)]);
  return { name, lines };
}

function fieldVectors(): Vector[] {
  const h = recordHeader(MESSAGE_ID);
  const other = recordHeader(seq(0x70, 16));
  const at: Steps = ['cards', 1, 'number'];
  const card = '5500000000000004';
  const f = sealField(h, at, 'u-42', null, card);
  const self = (stored: string, steps: Steps = at) => put({}, steps, stored);
  const compact = (stored: string, header: string | null = headerText(h), steps: Steps = at) => {
    const r = put({}, steps, stored);
    if (header !== null) r._ek = header;
    return r;
  };
  const read = (record: Record<string, unknown>, more: Partial<ReadSide> = {}): ReadSide => ({
    record,
    fields: [at],
    headerField: null,
    recordId: 'u-42',
    recordVersion: null,
    ...more,
  });
  const readCompact = (record: Record<string, unknown>, more: Partial<ReadSide> = {}) => read(record, { headerField: '_ek', ...more });
  const b64 = (b: Uint8Array) => base64UrlEncode(b);
  const ok = put({}, at, card);
  const okCompact = { ...put({}, at, card), _ek: headerText(h) };
  const DF = 'ERR_DECRYPTION_FAILED';
  const MAL = 'ERR_MALFORMED_ENVELOPE';
  const UNS = 'ERR_UNSUPPORTED_VERSION';

  // A record version (an updatedAt as text), compact form.
  const version = '2026-01-01T00:00:00.000Z';
  const fv = sealField(h, ['ssn'], 'u-42', version, '078-05-1120');
  // Property names and ids that exercise the binding's JSON (§12.1).
  const escapes = sealField(h, ['notes', 'line "1"\\\n\u0001', 0, 'é😀', '\ud800'], -42, 7, 'x');
  const numeric = sealField(h, ['ssn'], 42, null, '078-05-1120');
  // A field whose commitment byte is changed: its body still opens with GCM under the right key.
  const badCommitment = f.body.slice();
  badCommitment[0]! ^= 0x01;
  // A header of layout 0x00 (a whole message) with a field sealed under it.
  const single = recordHeader(MESSAGE_ID, LAYOUT_SINGLE);
  const fSingle = sealField(single, at, 'u-42', null, card);
  // A second field, self-contained, beside compact ones.
  const cvc = sealField(h, ['cards', 1, 'cvc'], 'u-42', null, '123');
  const fOther = sealField(other, at, 'u-42', null, card);
  const shortBody = f.body.subarray(0, 47);
  // The body is 67 bytes: its last base64url character holds 2 bits and 4 unused ones; set one of those.
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const badBits = f.compact.slice(0, -1) + ALPHABET[ALPHABET.indexOf(f.compact.slice(-1)) | 1];
  if (f.body.length % 3 !== 1) throw new Error('the bad-base64 vector needs a body of 3k + 1 bytes');

  return [
    // --- success
    fieldVector('field-success', 'a self-contained field read where it was written, with its record id', 'success', h, f, read(self(f.text), { decrypted: ok })),
    fieldVector('field-compact', 'the same field in compact form: the record header in "_ek" (ekh1.), the field as its body (ekf1.)', 'success', h, f,
      readCompact(compact(f.compact), { decrypted: okCompact })),
    fieldVector('field-record-version', 'a compact field written with a record version (a date as text), read with it', 'success', h, fv,
      readCompact(compact(fv.compact, headerText(h), ['ssn']), { fields: [['ssn']], recordVersion: version, decrypted: { ssn: '078-05-1120', _ek: headerText(h) } })),
    fieldVector('field-binding-escapes', 'property names with a quote, a backslash, control characters, non-ASCII and a lone surrogate; a negative record id; a numeric version', 'success', h, escapes,
      read(self(escapes.text, escapes.steps), { fields: [escapes.steps], recordId: -42, recordVersion: 7, decrypted: put({}, escapes.steps, 'x') })),
    fieldVector('field-plaintext-allowed', 'a plaintext string, read with plaintext allowed (a migration): left as it is and reported', 'success', h, f,
      read(self(card), { allowPlaintext: true, plaintextFields: [at], decrypted: ok })),
    // --- bindings
    fieldVector('field-wrong-record-id', 'the field read with another record id', DF, h, f, read(self(f.text), { recordId: 'u-43' })),
    fieldVector('field-moved-element', 'the field moved to another array element', DF, h, f, read(self(f.text, ['cards', 0, 'number']), { fields: [['cards', 0, 'number']] })),
    fieldVector('field-moved-path', 'the field moved to another property', DF, h, f, read(self(f.text, ['cards', 1, 'cvc']), { fields: [['cards', 1, 'cvc']] })),
    fieldVector('field-record-id-type', 'written with the number 42 as record id, read with the string "42"', DF, h, numeric,
      read(self(numeric.text, ['ssn']), { fields: [['ssn']], recordId: '42' })),
    fieldVector('field-wrong-record-version', 'a field written with a record version, read with another version', DF, h, fv,
      readCompact(compact(fv.compact, headerText(h), ['ssn']), { fields: [['ssn']], recordVersion: '2025-12-31T00:00:00.000Z' })),
    fieldVector('field-missing-record-version', 'a field written with a record version, read without one', DF, h, fv,
      readCompact(compact(fv.compact, headerText(h), ['ssn']), { fields: [['ssn']] })),
    fieldVector('field-wrong-commitment', 'the first byte of the field commitment changed; the ciphertext and tag are intact, so only the commitment check catches it', DF, h, f,
      readCompact(compact('ekf1.' + b64(badCommitment)))),
    // --- compact records
    fieldVector('field-compact-other-header', 'the compact field read with the record header of another encryption of the record (another message id)', DF, h, f,
      readCompact(compact(f.compact, headerText(other)))),
    fieldVector('field-compact-reused-header', 'a record header and its field copied into another record (id u-43)', DF, h, f, readCompact(compact(f.compact), { recordId: 'u-43' })),
    fieldVector('field-compact-missing-header', 'a compact field, read in compact form, with no record header in the record', MAL, h, f, readCompact(compact(f.compact, null))),
    fieldVector('field-compact-without-header-field', 'a compact field in a record not read in compact form', MAL, h, f, read(compact(f.compact))),
    fieldVector('field-mixed-forms', 'a record read in compact form holding a compact field and a valid self-contained field under the same header', MAL, h, f,
      readCompact({ ...compact(f.compact), cards: [{}, { number: f.compact, cvc: cvc.text }] }, { fields: [at, ['cards', 1, 'cvc']] })),
    fieldVector('field-record-header-as-field', 'the record header stored where a field belongs', MAL, h, f, readCompact(compact(headerText(h)))),
    fieldVector('field-compact-header-trailing-byte', 'a record header with one byte after the commitment', MAL, h, f,
      readCompact(compact(f.compact, 'ekh1.' + b64(concatBytes(h.header, Uint8Array.of(0)))))),
    fieldVector('field-compact-header-layout-single', 'a record header of layout 0x00, with the field sealed under it', MAL, single, fSingle,
      readCompact(compact(fSingle.compact, headerText(single)))),
    fieldVector('field-compact-header-other-version', 'a record header with the prefix "ekh2."', UNS, h, f, readCompact(compact(f.compact, 'ekh2.' + b64(h.header)))),
    fieldVector('field-compact-short-body', 'a compact field of 47 bytes: shorter than commitment and tag', MAL, h, f, readCompact(compact('ekf1.' + b64(shortBody)))),
    fieldVector('field-compact-bad-base64', 'a compact field whose last character has non-zero unused bits', MAL, h, f, readCompact(compact(badBits))),
    // --- self-contained fields
    fieldVector('field-short-body', 'a self-contained field whose body is 47 bytes', MAL, h, f, read(self(envelopeToText(concatBytes(h.header, shortBody))))),
    fieldVector('field-layout-single', 'a self-contained envelope of layout 0x00 (a whole message) in a field, sealed as a field', MAL, single, fSingle, read(self(fSingle.text))),
    fieldVector('field-compact-other-field-header', 'the compact field of another header, for contrast with field-compact-other-header: its own header opens it', 'success', other, fOther,
      readCompact(compact(fOther.compact, headerText(other)), { decrypted: { ...put({}, at, card), _ek: headerText(other) } })),
    // --- what is never plaintext (§12.3 step 1), with plaintext allowed
    fieldVector('field-plaintext', 'a plaintext string where a field belongs, plaintext not allowed', 'ERR_UNENCRYPTED_FIELD', h, f, read(self(card))),
    fieldVector('field-ek2-prefix', 'a text envelope of another version ("ek2."), plaintext allowed', UNS, h, f, read(self('ek2.' + f.text.slice(4)), { allowPlaintext: true })),
    fieldVector('field-uppercase-prefix', 'a valid field with the prefix "EK1.", plaintext allowed', MAL, h, f, read(self('EK1.' + f.text.slice(4)), { allowPlaintext: true })),
    fieldVector('field-compact-other-version', 'a compact field with the prefix "ekf2.", plaintext allowed', UNS, h, f,
      readCompact(compact('ekf2.' + f.compact.slice(5)), { allowPlaintext: true })),
    fieldVector('field-compact-uppercase-prefix', 'a valid compact field with the prefix "EKF1.", plaintext allowed', MAL, h, f,
      readCompact(compact('EKF1.' + f.compact.slice(5)), { allowPlaintext: true })),
  ];
}

function blindIndexVectors(): Vector[] {
  const key = seq(0xc0, 32);
  const name = 'users.email';
  const input = '  Ada@Example.com ';
  const normalized = input.trim().toLowerCase();
  const encoded = encodeValue(normalized);
  const msg = concatBytes(utf8Encode(BLIND_INDEX_LABEL), Uint8Array.of(0), utf8Encode(name), Uint8Array.of(0), encoded);
  const mac = hmac(sha256, key, msg);
  return [64, 16].map((bits) => ({
    name: `blind-index-${bits}`,
    lines: [
      ['name', `blind-index-${bits}`],
      ['description', `blind index of a normalised email (trim, lower case), ${bits} bits`],
      ['expect', 'index'],
      ['index key', hex(key)],
      ['index name', name],
      ['bits', String(bits)],
      ['input', JSON.stringify(input)],
      ['normalized', JSON.stringify(normalized)],
      ['hmac input', hex(msg)],
      ['hmac', hex(mac)],
      ['index', base64UrlEncode(mac.subarray(0, bits / 8))],
    ],
  }));
}

writeFromCommandLine(import.meta.url, 'records vectors', () =>
  [...valueVectors(), ...fieldVectors(), ...blindIndexVectors()].map((v) => ({
    name: v.name,
    text: v.lines.map(([k, val]) => `${k}: ${val}`).join('\n') + '\n',
  })),
);
