/**
 * Deterministic generator of the records vectors: value encoding (SPEC.md §11),
 * record fields (§12) and blind indexes (§13). One `<name>.txt` per scenario,
 * in the `key: value` form of SPEC.md §10.1, written into this folder or the
 * folder given as the first argument.
 *
 * Usage: `npx tsx test/vectors/records/generate.ts [output-folder]`.
 * @module
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { nobleAesGcm } from '../../../src/core/aead/noble.js';
import { TAG_LENGTH } from '../../../src/core/aead/types.js';
import { BLIND_INDEX_LABEL } from '../../../src/records/blind-index.js';
import { checkContext, providerContext } from '../../../src/core/context.js';
import { deriveFieldKey, fieldBinding } from '../../../src/records/fields.js';
import { LAYOUT_FIELD, SINGLE_PASS_NONCE, encodeHeader, envelopeToText } from '../../../src/core/format.js';
import { base64UrlEncode } from '../../../src/internal/base64.js';
import { concatBytes, utf8Encode } from '../../../src/internal/bytes.js';
import { deriveKeys } from '../../../src/core/kdf.js';
import { wrapDataKey } from '../../../src/providers/local/blob.js';
import { encodeValue } from '../../../src/records/value-encoding.js';
import { BLOB_NONCE, DATA_KEY_256, KEY_ID, KEY_VERSION, MASTER_KEY, MESSAGE_ID, hex, seq } from '../inputs.js';
import { VALUE_VECTORS } from './values.js';

const DATA_KEY = DATA_KEY_256;
const CONTEXT = { table: 'users' };

type Vector = { name: string; lines: [string, string][] };

function valueVectors(): Vector[] {
  return VALUE_VECTORS.map((v) => ({
    name: v.name,
    lines: [
      ['name', v.name],
      ['description', v.description],
      ['expect', 'value'],
      ['value', v.literal],
      ['encoding', hex(encodeValue(v.value()))],
    ],
  }));
}

/** One field envelope (layout 0x01) at `steps`, bound to `recordId`, holding `value`. */
function fieldEnvelope(steps: (string | number)[], recordId: string | number | undefined, value: unknown) {
  const context = checkContext(CONTEXT);
  // SPEC.md §3.2.1: the blob is bound to the provider context.
  const blob = wrapDataKey(nobleAesGcm, MASTER_KEY, KEY_ID, KEY_VERSION, BLOB_NONCE, DATA_KEY, providerContext(context));
  const { contentKey, commitment } = deriveKeys(DATA_KEY, MESSAGE_ID);
  contentKey.fill(0);
  const header = encodeHeader({
    layout: LAYOUT_FIELD,
    messageId: MESSAGE_ID,
    context,
    encryptedDataKeys: [{ providerId: 'local', keyId: KEY_ID, blob }],
    commitment,
  });
  const binding = fieldBinding(steps, recordId);
  const prk = hmac(sha256, MESSAGE_ID, DATA_KEY);
  const fieldKey = deriveFieldKey(DATA_KEY, MESSAGE_ID, binding);
  const encoded = encodeValue(value);
  const env = new Uint8Array(header.length + encoded.length + TAG_LENGTH);
  env.set(header, 0);
  nobleAesGcm.seal(fieldKey, SINGLE_PASS_NONCE, header, encoded, env.subarray(header.length));
  return { blob, header, binding, prk, fieldKey, encoded, commitment, text: envelopeToText(env) };
}

function fieldVectors(): Vector[] {
  const steps = ['cards', 1, 'number'];
  const f = fieldEnvelope(steps, 'u-42', '5500000000000004');
  const common = (name: string, description: string, expect: string, at: (string | number)[], recordId: string): Vector => ({
    name,
    lines: [
      ['name', name],
      ['description', description],
      ['expect', expect],
      ['master key', hex(MASTER_KEY)],
      ['key id', KEY_ID],
      ['key version', String(KEY_VERSION)],
      ['blob nonce', hex(BLOB_NONCE)],
      ['data key', hex(DATA_KEY)],
      ['message id', hex(MESSAGE_ID)],
      ['encryption context', JSON.stringify(CONTEXT)],
      ['blob', hex(f.blob)],
      ['written at', JSON.stringify(steps)],
      ['written record id', JSON.stringify('u-42')],
      ['binding', new TextDecoder().decode(f.binding)],
      ['prk', hex(f.prk)],
      ['commitment', hex(f.commitment)],
      ['field key', hex(f.fieldKey)],
      ['header', hex(f.header)],
      ['value', JSON.stringify('5500000000000004')],
      ['encoded value', hex(f.encoded)],
      ['field', f.text],
      ['read at', JSON.stringify(at)],
      ['read record id', JSON.stringify(recordId)],
    ],
  });
  const numeric = fieldEnvelope(['ssn'], 42, '078-05-1120');
  // Compact form (SPEC.md §12.4): the same header and body, stored apart.
  const env = Buffer.from(f.text.slice('ek1.'.length), 'base64url');
  const recordHeader = 'ekh1.' + Buffer.from(f.header).toString('base64url');
  const compactField = 'ekf1.' + env.subarray(f.header.length).toString('base64url');
  const compact = (name: string, description: string, expect: string, header: string): Vector => {
    const v = common(name, description, expect, steps, 'u-42');
    const i = v.lines.findIndex(([k]) => k === 'field');
    v.lines.splice(i, 1, ['header field', '_ek'], ['record header', header], ['field', compactField]);
    return v;
  };
  const otherHeader = 'ekh1.' + Buffer.from(fieldEnvelope(steps, 'u-42', 'x').header.map((b, i) => (i === 5 ? b ^ 0xff : b))).toString('base64url');
  return [
    compact('field-compact', 'the same field in compact form: the record header stored apart (ekh1.), the field as its body (ekf1.)', 'success', recordHeader),
    compact('field-compact-other-header', 'the compact field read with a record header whose message id differs', 'ERR_DECRYPTION_FAILED', otherHeader),
    common('field-success', 'a field read where it was written, with its record id', 'success', steps, 'u-42'),
    common('field-wrong-record-id', 'the same field read with another record id', 'ERR_DECRYPTION_FAILED', steps, 'u-43'),
    common('field-moved-element', 'the same field moved to another array element', 'ERR_DECRYPTION_FAILED', ['cards', 0, 'number'], 'u-42'),
    common('field-moved-path', 'the same field moved to another property', 'ERR_DECRYPTION_FAILED', ['cards', 1, 'cvc'], 'u-42'),
    {
      name: 'field-record-id-type',
      lines: [
        ['name', 'field-record-id-type'],
        ['description', 'written with the number 42 as record id, read with the string "42"'],
        ['expect', 'ERR_DECRYPTION_FAILED'],
        ['master key', hex(MASTER_KEY)],
        ['key id', KEY_ID],
        ['key version', String(KEY_VERSION)],
        ['encryption context', JSON.stringify(CONTEXT)],
        ['written at', JSON.stringify(['ssn'])],
        ['written record id', '42'],
        ['binding', new TextDecoder().decode(numeric.binding)],
        ['field key', hex(numeric.fieldKey)],
        ['encoded value', hex(numeric.encoded)],
        ['field', numeric.text],
        ['read at', JSON.stringify(['ssn'])],
        ['read record id', JSON.stringify('42')],
      ],
    },
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

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? here);
mkdirSync(out, { recursive: true });
for (const f of readdirSync(out)) if (f.endsWith('.txt')) rmSync(path.join(out, f));
const all = [...valueVectors(), ...fieldVectors(), ...blindIndexVectors()];
for (const v of all) {
  writeFileSync(path.join(out, `${v.name}.txt`), v.lines.map(([k, val]) => `${k}: ${val}`).join('\n') + '\n');
}
console.log(`wrote ${all.length} records vectors to ${out}`);
