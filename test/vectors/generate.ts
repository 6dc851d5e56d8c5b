/**
 * Deterministic generator of the envelope test vectors (SPEC.md §10).
 *
 * Writes one `<name>.txt` file per scenario into the output folder (default:
 * this folder). Every input is fixed (master key, key id and version, blob
 * nonce, data key, message id, record id and version), and only the library's
 * own internal functions build the bytes (`wrapDataKey`, `sealWithDataKey`,
 * `encodeHeader`, `recordBinding`, `deriveKeys`, `envelopeToText`), so two runs
 * write identical files. Each key schedule is checked against @noble/hashes'
 * HMAC-SHA-512 over the input SPEC.md §3.3 spells out.
 *
 * Failure vectors that test a parser rule (canonical `len`, context order,
 * limits, unknown version/suite/layout, ...) are built "otherwise valid": the
 * commitment and the body tag are computed over the faulty header, so a reader
 * that skipped the rule would decrypt them. Only the rule can reject them.
 *
 * Usage: `npm run vectors` or `npx tsx test/vectors/generate.ts [output-folder]`.
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { nobleAesGcm } from '../../src/core/aead/noble.js';
import { TAG_LENGTH } from '../../src/core/aead/types.js';
import { type CheckedContext, PROVIDER_PURPOSE_KEY, PROVIDER_PURPOSE_VALUE, checkContext, encodeContext, providerContext } from '../../src/core/context.js';
import { sealWithDataKey } from '../../src/core/envelope.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { type EncryptedDataKey, SINGLE_PASS_NONCE, authenticatedHeaderOf, encodeHeader, envelopeToText } from '../../src/core/format.js';
import { ByteWriter, concatBytes, utf8Encode } from '../../src/internal/bytes.js';
import { LABELS, deriveKeys } from '../../src/core/kdf.js';
import { type RecordId, type RecordVersion, checkRecordBinding, recordBinding } from '../../src/core/binding.js';
import { wrapDataKey } from '../../src/providers/local/blob.js';
import {
  BLOB_NONCE,
  BLOB_NONCE_2,
  DATA_KEY_128,
  DATA_KEY_256,
  DATA_KEY_OTHER,
  KEY_ID,
  KEY_VERSION,
  MASTER_KEY,
  MASTER_KEY_2,
  MESSAGE_ID,
  hex,
  seq,
} from './inputs.js';
import { writeFromCommandLine } from './write.js';

// ---------------------------------------------------------------- fixed inputs

const PLAINTEXT = utf8Encode('envelope-kit test vector plaintext');
/** Plaintext of the text-form vectors: one byte shorter, so the envelope length is not a multiple of 3. */
const TEXT_PLAINTEXT = PLAINTEXT.subarray(0, PLAINTEXT.length - 1);
/** Default context, keys deliberately not in canonical order. */
const CONTEXT: Record<string, string> = { tenant: 'acme', purpose: 'vectors' };
/**
 * Multi-entry Unicode context, keys given out of order. U+FF21 (EF BC A1) sorts
 * before U+1F600 (F0 9F 98 80) by UTF-8 bytes, but after it by UTF-16 code units
 * (FF21 > D83D): an implementation that sorts JavaScript strings gets it wrong.
 */
const UNICODE_CONTEXT: Record<string, string> = {
  tenant: 'acme',
  '\u{1F600}': 'emoji',
  purpose: 'clé de test',
  '\uFF21': 'fullwidth A',
  Zone: 'eu-west-1',
  a: '',
};
/** An encrypted data key for a provider no vector reader has. */
const FOREIGN_EDK: EncryptedDataKey = Object.freeze({
  providerId: 'kms.example',
  keyId: 'arn:example:kms:key/1234',
  blob: new Uint8Array(24).fill(0xee),
});

// ---------------------------------------------------------------- building blocks


function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`generator self-check failed: ${what}`);
}

/** `0x02 || len(keyId) || keyId || len(version)`: the local blob's prefix (SPEC.md §6). */
function blobPrefix(keyId: string, version: number): Uint8Array {
  return new ByteWriter(80).u8(0x02).lenBytes(utf8Encode(keyId)).len(version).finish();
}

/** A context given as raw UTF-8 entries, bypassing the checks (for faulty contexts). */
function rawContext(entries: [Uint8Array, Uint8Array][]): CheckedContext {
  return { map: Object.freeze({}), entries };
}

/** Lexicographic comparison of byte strings (SPEC.md §3.2 order). */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * The provider context (SPEC.md §3.2.1) of a header context: the library's own function for a
 * valid context; for faulty raw entries, the purpose entry inserted at its place in byte order
 * (what a reader that skipped the rule under test would hand the provider).
 */
function providerContextOf(ctx: CheckedContext, raw: boolean): CheckedContext {
  if (!raw) return providerContext(ctx);
  const purpose: [Uint8Array, Uint8Array] = [utf8Encode(PROVIDER_PURPOSE_KEY), utf8Encode(PROVIDER_PURPOSE_VALUE)];
  const entries = [...ctx.entries] as [Uint8Array, Uint8Array][];
  const at = entries.findIndex(([k]) => compareBytes(k, purpose[0]) > 0);
  entries.splice(at < 0 ? entries.length : at, 0, purpose);
  return rawContext(entries);
}

/** `len(providerId) || providerId || len(keyId) || keyId || len(blob) || blob`. */
function encodeEdk(e: EncryptedDataKey): Uint8Array {
  return new ByteWriter(128).lenBytes(utf8Encode(e.providerId)).lenBytes(utf8Encode(e.keyId)).lenBytes(e.blob).finish();
}

/** The pieces of a header, each already encoded, so that any of them can be made faulty. */
interface HeaderParts {
  prefix: Uint8Array; // magic || version || suite || layout
  messageId: Uint8Array;
  context: Uint8Array;
  edkCount: number;
  edks: Uint8Array[];
  commitment: Uint8Array;
}

function joinHeader(p: HeaderParts): Uint8Array {
  return concatBytes(p.prefix, p.messageId, p.context, Uint8Array.of(p.edkCount), ...p.edks, p.commitment);
}

/** SPEC.md §3.1: the authenticated header, the header without the EDK count and the EDKs. */
function joinAad(p: HeaderParts): Uint8Array {
  return concatBytes(p.prefix, p.messageId, p.context, p.commitment);
}

/** AES-256-GCM over a (possibly faulty) header: `header || ciphertext || tag`, aad = the authenticated header (SPEC.md §3.4). */
function sealRaw(contentKey: Uint8Array, header: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(header.length + plaintext.length + TAG_LENGTH);
  out.set(header, 0);
  nobleAesGcm.seal(contentKey, SINGLE_PASS_NONCE, aad, plaintext, out.subarray(header.length));
  return out;
}

type Expect = 'success' | ErrorCode;

interface Scenario {
  name: string;
  description: string;
  expect: Expect;
  /** `binary` (the default): decrypt `envelope`; `text`: decrypt `envelope text`. */
  form?: 'binary' | 'text';
  keyState?: 'Enabled' | 'Disabled';
  dataKey?: Uint8Array;
  messageId?: Uint8Array;
  context?: Record<string, string>;
  /** Faulty context entries, used instead of `context` for the header and the blob. */
  rawContextEntries?: [Uint8Array, Uint8Array][];
  /** The header's context is not a valid map (e.g. a key twice), though `context` gives the map a lenient reader would see. */
  invalidContext?: boolean;
  /** Wrap the blob under the header context alone, without the purpose entry (a blob made for another purpose). */
  blobWithoutPurpose?: boolean;
  /** Open the envelope as a blind-index key of this name (SPEC.md §13) instead of as a message. */
  blindIndexName?: string;
  /** The reader's allow-list of master keys (SPEC.md §3.5 step 3). */
  allowedKeyIds?: string[];
  requiredContext?: Record<string, string>;
  plaintext?: Uint8Array;
  /** Key id and version the blob names (default: the keyring's key). */
  blobKeyId?: string;
  blobKeyVersion?: number;
  /** Build the encrypted data keys from the local one (default: just it). */
  edks?: (local: EncryptedDataKey) => EncryptedDataKey[];
  /** Change the encoded header pieces; the header is then sealed as changed ("otherwise valid"). */
  header?: (p: HeaderParts) => void;
  /**
   * Re-wrap after sealing (SPEC.md §9.13): the header's data-key list becomes this, the body stays
   * as sealed. Given the EDKs sealed and the context the blobs are bound to.
   */
  rewrapEdks?: (local: EncryptedDataKey, blobContext: CheckedContext) => EncryptedDataKey[];
  /** Change the finished envelope bytes (after sealing). */
  mutate?: (envelope: Uint8Array) => Uint8Array;
  /** Change the finished text form (text-form vectors). */
  mutateText?: (text: string) => string;
  /** The record id and version the envelope is written with (SPEC.md §9.10); absent by default. */
  recordId?: RecordId;
  recordVersion?: RecordVersion;
  /** What the reader gives, when it differs from what was written (`null`: nothing). */
  readRecordId?: RecordId | null;
  readRecordVersion?: RecordVersion | null;
}

interface Vector {
  readonly name: string;
  /** The file's text. */
  readonly text: string;
}

async function build(s: Scenario): Promise<Vector> {
  let fieldsBefore: [string, string][] = [];
  const dataKey = s.dataKey ?? DATA_KEY_256;
  const messageId = s.messageId ?? MESSAGE_ID;
  const plaintext = s.plaintext ?? PLAINTEXT;
  const contextInput = s.context ?? CONTEXT;
  const ctx = s.rawContextEntries ? rawContext(s.rawContextEntries) : checkContext(contextInput);
  const blobKeyId = s.blobKeyId ?? KEY_ID;
  const blobKeyVersion = s.blobKeyVersion ?? KEY_VERSION;

  // SPEC.md §3.2.1: the provider is asked with the provider context.
  const pctx = providerContextOf(ctx, s.rawContextEntries !== undefined);
  const blobCtx = s.blobWithoutPurpose ? ctx : pctx;
  // SPEC.md §6: the local provider's blob.
  const blob = wrapDataKey(nobleAesGcm, MASTER_KEY, blobKeyId, blobKeyVersion, BLOB_NONCE, dataKey, blobCtx);
  const prefix = blobPrefix(blobKeyId, blobKeyVersion);
  const blobAad = concatBytes(prefix, encodeContext(blobCtx));
  assert(equalBytes(blob.subarray(0, prefix.length), prefix), 'blob prefix');
  assert(equalBytes(blob.subarray(prefix.length, prefix.length + BLOB_NONCE.length), BLOB_NONCE), 'blob nonce');

  // SPEC.md §9.10: the record binding; §3.3: the key schedule, one HMAC-SHA-512.
  const binding = recordBinding(checkRecordBinding(s.recordId, s.recordVersion));
  assert(new TextDecoder().decode(binding) === JSON.stringify([s.recordId ?? null, s.recordVersion ?? null]), 'binding');
  const keysInput = concatBytes(utf8Encode(LABELS.singlePass), Uint8Array.of(0x00), messageId, binding, Uint8Array.of(0x01));
  const { bytes: keys, key: contentKey, commitment } = deriveKeys(dataKey, messageId, binding);
  assert(equalBytes(keys, hmac(sha512, dataKey, keysInput)), 'keys');
  const readRecordId = s.readRecordId === undefined ? s.recordId : (s.readRecordId ?? undefined);
  const readRecordVersion = s.readRecordVersion === undefined ? s.recordVersion : (s.readRecordVersion ?? undefined);

  const local: EncryptedDataKey = { providerId: 'local', keyId: blobKeyId, blob };
  const edks = s.edks ? s.edks(local) : [local];
  const parts: HeaderParts = {
    prefix: Uint8Array.of(0x45, 0x4b, 0x01, 0x01, 0x00),
    messageId: messageId.slice(),
    context: encodeContext(ctx),
    edkCount: edks.length,
    edks: edks.map(encodeEdk),
    commitment: commitment.slice(),
  };

  let header: Uint8Array;
  let aad: Uint8Array;
  let envelope: Uint8Array;
  if (!s.header && !s.rawContextEntries) {
    // The library's own path; the hand-assembled header must be the same bytes.
    header = encodeHeader({ messageId, context: ctx, encryptedDataKeys: edks, commitment });
    assert(equalBytes(header, joinHeader(parts)), 'joinHeader matches encodeHeader');
    aad = joinAad(parts);
    assert(equalBytes(aad, authenticatedHeaderOf(header, ctx)), 'joinAad matches authenticatedHeaderOf');
    envelope = await sealWithDataKey(nobleAesGcm, dataKey, messageId, ctx, edks, plaintext, binding);
    assert(equalBytes(envelope, sealRaw(contentKey, header, aad, plaintext)), 'sealRaw matches sealWithDataKey');
  } else {
    s.header?.(parts);
    header = joinHeader(parts);
    aad = joinAad(parts);
    envelope = sealRaw(contentKey, header, aad, plaintext);
  }
  if (s.rewrapEdks) {
    // SPEC.md §9.13: the data-key list changed after sealing; the body is the same bytes.
    const before = envelope;
    const newEdks = s.rewrapEdks(local, blobCtx);
    parts.edkCount = newEdks.length;
    parts.edks = newEdks.map(encodeEdk);
    const rewrapped = joinHeader(parts);
    envelope = concatBytes(rewrapped, before.subarray(header.length));
    fieldsBefore = [['envelope before rewrap', hex(before)]];
    header = rewrapped;
  }
  const body = envelope.subarray(header.length);
  assert(equalBytes(joinAad(parts), aad), 'the authenticated header does not hold the data-key list');
  if (s.mutate) envelope = s.mutate(envelope.slice());
  let text = envelopeToText(envelope);
  if (s.mutateText) text = s.mutateText(text);

  const fields: [string, string][] = [
    ['name', s.name],
    ['description', s.description],
    ['expect', s.expect],
    ['form', s.form ?? 'binary'],
    ['master key', hex(MASTER_KEY)],
    ['key id', KEY_ID],
    ['key version', String(KEY_VERSION)],
    ['key state', s.keyState ?? 'Enabled'],
    ['data key', hex(dataKey)],
    ['message id', hex(messageId)],
    ['encryption context', s.rawContextEntries || s.invalidContext ? INVALID_CONTEXT : JSON.stringify(contextInput)],
    ['provider context', s.rawContextEntries || s.invalidContext ? INVALID_CONTEXT : JSON.stringify(pctx.map)],
    ['written record id', JSON.stringify(s.recordId ?? null)],
    ['written record version', JSON.stringify(s.recordVersion ?? null)],
    ['read record id', JSON.stringify(readRecordId ?? null)],
    ['read record version', JSON.stringify(readRecordVersion ?? null)],
  ];
  if (s.requiredContext) fields.push(['required context', JSON.stringify(s.requiredContext)]);
  if (s.blindIndexName !== undefined) fields.push(['blind index name', s.blindIndexName]);
  if (s.allowedKeyIds) fields.push(['allowed key ids', JSON.stringify(s.allowedKeyIds)]);
  if (blobKeyId !== KEY_ID) fields.push(['blob key id', blobKeyId]);
  if (blobKeyVersion !== KEY_VERSION) fields.push(['blob key version', String(blobKeyVersion)]);
  fields.push(
    ['blob nonce', hex(BLOB_NONCE)],
    ['blob aad', hex(blobAad)],
    ['blob', hex(blob)],
    ['binding', hex(binding)],
    ['keys input', hex(keysInput)],
    ['keys', hex(keys)],
    ['content key', hex(contentKey)],
    ['commitment', hex(commitment)],
    ['header', hex(header)],
    ['authenticated header', hex(aad)],
    ...fieldsBefore,
    ['plaintext', hex(plaintext)],
    ['body', hex(body)],
    ['envelope', hex(envelope)],
    ['envelope text', text],
  );
  for (const [k, v] of fields) assert(!/[\r\n]/.test(v) && v === v.trim(), `field ${k} is one trimmed line`);
  return { name: s.name, text: fields.map(([k, v]) => `${k}: ${v}`).join('\n') + '\n' };
}

// ---------------------------------------------------------------- scenarios

/** The `encryption context` (and `provider context`) of a vector whose header context is not a valid map (SPEC.md §10.1). */
const INVALID_CONTEXT = '(not a valid context; see the header)';
/** The 32-byte key held by the blind-index key vectors. */
const INDEX_KEY = seq(0xc0, 32);
/** The context of a blind-index key named `users.email` (SPEC.md §13). */
const INDEX_CONTEXT = { 'ek:blind-index': 'users.email' };

const enc = utf8Encode;
const ctxEntry = (k: string, v: string): [Uint8Array, Uint8Array] => [enc(k), enc(v)];
/** Flip the lowest bit of byte `i` (negative: from the end). */
const flip = (i: number) => (e: Uint8Array) => {
  e[i < 0 ? e.length + i : i]! ^= 0x01;
  return e;
};
/** Envelope text for an envelope whose length is not a multiple of 3 (so padding would apply). */
function padded(text: string): string {
  const n = text.length - 4; // after "ek1."
  assert(n % 4 !== 0, 'padding vector needs a length that is not a multiple of 3');
  return text + '='.repeat(4 - (n % 4));
}

const SCENARIOS: Scenario[] = [
  // -- success
  {
    name: 'success-empty-context',
    description: 'One local encrypted data key, empty encryption context, AES_256 data key.',
    expect: 'success',
    context: {},
  },
  {
    name: 'success-unicode-context',
    description:
      'Six-entry Unicode context given out of order (an empty value, non-ASCII keys); the header holds it sorted by UTF-8 key bytes, where U+FF21 comes before U+1F600.',
    expect: 'success',
    context: UNICODE_CONTEXT,
  },
  {
    name: 'success-required-context',
    description: 'The reader requires {"tenant":"acme"}, which the envelope context contains (containment, not equality).',
    expect: 'success',
    requiredContext: { tenant: 'acme' },
  },
  {
    name: 'success-aes128-data-key',
    description: 'AES_128 data key (16 bytes): the key schedule is the same; the content key is still 32 bytes.',
    expect: 'success',
    dataKey: DATA_KEY_128,
  },
  {
    name: 'success-unknown-provider-first',
    description: 'Two encrypted data keys: the first for provider "kms.example" (no such provider given), the second local.',
    expect: 'success',
    edks: (local) => [FOREIGN_EDK, local],
  },
  {
    name: 'success-first-edk-key-not-found',
    description:
      'Two local encrypted data keys: the first names a key the keyring does not hold (ERR_KEY_NOT_FOUND, remembered), the second opens.',
    expect: 'success',
    edks: (local) => {
      const missing = wrapDataKey(nobleAesGcm, MASTER_KEY, 'missing-key', 1, BLOB_NONCE, DATA_KEY_256, providerContext(checkContext(CONTEXT)));
      return [{ providerId: 'local', keyId: 'missing-key', blob: missing }, local];
    },
  },
  {
    name: 'success-three-recipients',
    description:
      'Three encrypted data keys of one data key (SPEC.md §3.6): the local key, a KMS ("kms.example"), and a second local master key the reader\'s keyring does not hold. The reader\'s local keyring opens the first.',
    expect: 'success',
    edks: (local) => {
      const backup = wrapDataKey(nobleAesGcm, MASTER_KEY_2, 'backup-key', 1, BLOB_NONCE_2, DATA_KEY_256, providerContext(checkContext(CONTEXT)));
      return [local, FOREIGN_EDK, { providerId: 'local', keyId: 'backup-key', blob: backup }];
    },
  },
  {
    name: 'success-rewrapped',
    description:
      'Sealed with one encrypted data key for "kms.example" alone, then re-wrapped (SPEC.md §9.13): the list became the local key\'s data key only. The body is the bytes sealed before (see "envelope before rewrap"); the authenticated header did not change.',
    expect: 'success',
    edks: () => [FOREIGN_EDK],
    rewrapEdks: (local) => [local],
  },
  {
    name: 'fail-rewrap-other-data-key',
    description:
      'The data-key list edited after sealing: the local key\'s blob replaced by a valid blob of the same master key and provider context that holds another data key. The provider opens it; the commitment refuses the key (SPEC.md §9.13).',
    expect: 'ERR_DECRYPTION_FAILED',
    rewrapEdks: (local, blobContext) => {
      const other = wrapDataKey(nobleAesGcm, MASTER_KEY, KEY_ID, KEY_VERSION, BLOB_NONCE_2, DATA_KEY_OTHER, blobContext);
      return [{ ...local, blob: other }];
    },
  },
  {
    name: 'fail-rewrap-other-data-key-first',
    description:
      'A blob holding another data key (same master key, same provider context) put before the genuine one: the first to unwrap decides, and its key fails the commitment; the reader does not try the next (SPEC.md §3.5 step 5).',
    expect: 'ERR_DECRYPTION_FAILED',
    rewrapEdks: (local, blobContext) => {
      const other = wrapDataKey(nobleAesGcm, MASTER_KEY, KEY_ID, KEY_VERSION, BLOB_NONCE_2, DATA_KEY_OTHER, blobContext);
      return [{ ...local, blob: other }, local];
    },
  },
  {
    name: 'success-empty-plaintext',
    description: 'Empty plaintext: the body is the 16-byte tag alone.',
    expect: 'success',
    plaintext: new Uint8Array(0),
  },
  {
    name: 'success-eight-edks',
    description: 'Eight copies of the local encrypted data key: exactly the default limit on their count.',
    expect: 'success',
    edks: (local) => Array.from({ length: 8 }, () => local),
  },

  // -- the record binding (SPEC.md §9.10): not in the envelope, given again by the reader
  {
    name: 'success-record-id',
    description: 'Written and read with the record id "u-42" (a string) and no version: the binding ["u-42",null] enters the key schedule; it is not stored in the envelope.',
    expect: 'success',
    recordId: 'u-42',
  },
  {
    name: 'success-record-id-version',
    description: 'Written and read with the record id 42 (an integer) and the record version 7: the binding is [42,7].',
    expect: 'success',
    recordId: 42,
    recordVersion: 7,
  },
  {
    name: 'fail-record-id-wrong',
    description: 'Written with the record id "u-42", read with "u-43": the commitment derived with the reader\'s binding does not match, before the body is opened.',
    expect: 'ERR_DECRYPTION_FAILED',
    recordId: 'u-42',
    readRecordId: 'u-43',
  },
  {
    name: 'fail-record-id-missing',
    description: 'Written with the record id "u-42", read without one (the binding [null,null]): a missing id fails like a wrong one.',
    expect: 'ERR_DECRYPTION_FAILED',
    recordId: 'u-42',
    readRecordId: null,
  },
  {
    name: 'fail-record-id-unexpected',
    description: 'Written without a record id, read with the record id "u-42".',
    expect: 'ERR_DECRYPTION_FAILED',
    readRecordId: 'u-42',
  },
  {
    name: 'fail-record-id-type',
    description: 'Written with the record id 42 (an integer), read with "42" (a string): the bindings [42,null] and ["42",null] differ.',
    expect: 'ERR_DECRYPTION_FAILED',
    recordId: 42,
    readRecordId: '42',
  },
  {
    name: 'fail-record-version-wrong',
    description: 'Written with the record id 42 and the version 7, read with the same id and the version 6 (an older copy of the row).',
    expect: 'ERR_DECRYPTION_FAILED',
    recordId: 42,
    recordVersion: 7,
    readRecordVersion: 6,
  },

  // -- tampering and cryptographic failures
  {
    name: 'fail-body-tag-tampered',
    description: 'Last byte of the body (the GCM tag) changed.',
    expect: 'ERR_DECRYPTION_FAILED',
    mutate: flip(-1),
  },
  {
    name: 'fail-ciphertext-tampered',
    description: 'First byte of the ciphertext changed.',
    expect: 'ERR_DECRYPTION_FAILED',
    mutate: (e) => flip(e.length - PLAINTEXT.length - TAG_LENGTH)(e),
  },
  {
    name: 'fail-header-context-tampered',
    description:
      'One byte of a context value changed in the header ("acme" becomes "acmd"): the blob no longer opens (its AAD holds the context), and the body tag would fail too.',
    expect: 'ERR_DECRYPTION_FAILED',
    mutate: (e) => {
      // "tenant" -> "acme": find the value bytes and change the last one.
      const needle = enc('acme');
      for (let i = 21; i + needle.length <= e.length; i++) {
        if (needle.every((b, j) => e[i + j] === b)) return flip(i + 3)(e);
      }
      throw new Error('context value not found');
    },
  },
  {
    name: 'success-header-key-id-changed',
    description:
      'The key id written beside the blob changed after sealing ("vector-key-1" becomes "vector-key-0"): the data-key list is not authenticated (SPEC.md §9.13), the local provider reads its key id from the blob, and the reader reports the key id the provider answered with, "vector-key-1" (§9.4).',
    expect: 'success',
    rewrapEdks: (local) => [{ ...local, keyId: 'vector-key-0' }],
  },
  {
    name: 'fail-message-id-tampered',
    description: 'First byte of the message id changed: the derived commitment no longer matches the header\'s.',
    expect: 'ERR_DECRYPTION_FAILED',
    mutate: flip(5),
  },
  {
    name: 'fail-wrong-commitment',
    description:
      'Last byte of the commitment changed, and the body sealed over that header with the right content key: only the commitment check rejects it.',
    expect: 'ERR_DECRYPTION_FAILED',
    header: (p) => {
      p.commitment[31]! ^= 0x01;
    },
  },
  {
    name: 'fail-blob-tampered',
    description: 'Last byte of the local blob (its GCM tag) changed, body sealed over that header: only the blob check rejects it.',
    expect: 'ERR_DECRYPTION_FAILED',
    header: (p) => {
      const e = p.edks[0]!;
      e[e.length - 1]! ^= 0x01;
    },
  },
  {
    name: 'fail-required-context-mismatch',
    description: 'The reader requires {"tenant":"other"}; the envelope says "acme". Rejected before any provider is asked.',
    expect: 'ERR_DECRYPTION_FAILED',
    requiredContext: { tenant: 'other' },
  },
  {
    name: 'fail-required-context-missing-key',
    description: 'The reader requires {"region":"eu"}; the envelope context has no "region" entry.',
    expect: 'ERR_DECRYPTION_FAILED',
    requiredContext: { tenant: 'acme', region: 'eu' },
  },
  {
    name: 'fail-truncated-ciphertext',
    description: 'Last byte removed: the header parses and the body is still 16 bytes or more, so the GCM tag fails.',
    expect: 'ERR_DECRYPTION_FAILED',
    mutate: (e) => e.subarray(0, e.length - 1),
  },
  {
    name: 'fail-data-key-wrong-length',
    description:
      'The blob holds a 24-byte data key (the local provider allows 1..1024 bytes), but a data key of suite 0x01 is 16 or 32 bytes: the answer is not a data key of this envelope, a decryption failure.',
    expect: 'ERR_DECRYPTION_FAILED',
    dataKey: seq(0x20, 24),
  },
  {
    name: 'fail-blob-without-purpose',
    description:
      'The blob was made under the envelope context alone, without the "ek:purpose" entry (as a ciphertext another application made under the same master key), and commitment and body are built from the very bytes it holds: the provider is asked with the provider context, so it refuses.',
    expect: 'ERR_DECRYPTION_FAILED',
    dataKey: DATA_KEY_128,
    blobWithoutPurpose: true,
  },
  {
    name: 'success-key-allowed',
    description: 'The reader allows only master key "vector-key-1", the key the provider says it used.',
    expect: 'success',
    allowedKeyIds: ['vector-key-1'],
  },
  {
    name: 'fail-key-not-allowed',
    description:
      'The reader allows only master key "other-key"; the provider unwraps the data key with "vector-key-1", so the answer is refused (whatever the header says).',
    expect: 'ERR_DECRYPTION_FAILED',
    allowedKeyIds: ['other-key'],
  },

  // -- malformed envelopes (header failures)
  {
    name: 'fail-truncated-header',
    description: 'Envelope cut in the middle of the blob: the header cannot be read.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    mutate: (e) => e.subarray(0, 80),
  },
  {
    name: 'fail-truncated-body',
    description: 'Empty plaintext and the last byte removed: the body is 15 bytes, shorter than a tag.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    plaintext: new Uint8Array(0),
    mutate: (e) => e.subarray(0, e.length - 1),
  },
  {
    name: 'fail-bad-magic',
    description: 'Magic "EJ" instead of "EK".',
    expect: 'ERR_MALFORMED_ENVELOPE',
    header: (p) => {
      p.prefix[1] = 0x4a;
    },
  },
  {
    name: 'fail-non-canonical-len',
    description: 'The provider id length 5 written in the two-byte form (0x80 0x05), otherwise valid.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    header: (p) => {
      p.edks[0] = concatBytes(Uint8Array.of(0x80), p.edks[0]!);
    },
  },
  {
    name: 'fail-context-out-of-order',
    description: 'Context entries "tenant" then "purpose" (not sorted by key bytes), otherwise valid.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    header: (p) => {
      const w = new ByteWriter(64).u8(2);
      w.lenBytes(enc('tenant')).lenBytes(enc('acme')).lenBytes(enc('purpose')).lenBytes(enc('vectors'));
      p.context = w.finish();
    },
  },
  {
    name: 'fail-context-duplicate-key',
    description:
      'Context with "tenant" twice (same value), otherwise valid: the blob is wrapped with the map a reader that kept one of the two would see.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    invalidContext: true,
    header: (p) => {
      const w = new ByteWriter(64).u8(3).lenBytes(enc('purpose')).lenBytes(enc('vectors'));
      w.lenBytes(enc('tenant')).lenBytes(enc('acme')).lenBytes(enc('tenant')).lenBytes(enc('acme'));
      p.context = w.finish();
    },
  },
  {
    name: 'fail-context-empty-key',
    description: 'Context with an empty key (keys are 1 to 256 bytes).',
    expect: 'ERR_MALFORMED_ENVELOPE',
    rawContextEntries: [ctxEntry('', 'x')],
  },
  {
    name: 'fail-context-key-too-long',
    description: 'Context key of 257 bytes (the limit is 256), otherwise valid.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    rawContextEntries: [ctxEntry('k'.repeat(257), 'v')],
  },
  {
    name: 'fail-context-too-many-entries',
    description: 'Context with 65 entries (the limit is 64), otherwise valid.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    rawContextEntries: Array.from({ length: 65 }, (_, i) => ctxEntry(`k${String(i).padStart(2, '0')}`, 'v')),
  },
  {
    name: 'fail-context-invalid-utf8',
    description: 'Context value bytes c3 28 (not UTF-8), otherwise valid.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    rawContextEntries: [[enc('tenant'), Uint8Array.of(0xc3, 0x28)]],
  },
  {
    name: 'fail-provider-id-invalid',
    description: 'Provider id "Local" (upper case is outside a-z 0-9 . _ -), otherwise valid.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    edks: (local) => [{ ...local, providerId: 'Local' }],
  },
  {
    name: 'fail-unknown-version',
    description: 'Format version 0x02, otherwise valid.',
    expect: 'ERR_UNSUPPORTED_VERSION',
    header: (p) => {
      p.prefix[2] = 0x02;
    },
  },
  {
    name: 'fail-unknown-suite',
    description: 'Suite 0x02 (unassigned), otherwise valid.',
    expect: 'ERR_UNSUPPORTED_VERSION',
    header: (p) => {
      p.prefix[3] = 0x02;
    },
  },
  {
    name: 'fail-unknown-layout',
    description: 'Layout 0xff (unassigned), otherwise valid.',
    expect: 'ERR_UNSUPPORTED_VERSION',
    header: (p) => {
      p.prefix[4] = 0xff;
    },
  },
  {
    name: 'fail-edk-count-zero',
    description: 'No encrypted data key (count 0).',
    expect: 'ERR_MALFORMED_ENVELOPE',
    edks: () => [],
  },
  {
    name: 'fail-edk-count-over-limit',
    description: 'Nine copies of the local encrypted data key: one more than the default limit of 8, otherwise valid.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    edks: (local) => Array.from({ length: 9 }, () => local),
  },

  {
    name: 'fail-reserved-context-key',
    description:
      'The header context holds the key "ek:other": keys starting with "ek:" are reserved for the library, and an envelope read as a message holds none.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    context: { 'ek:other': 'x', tenant: 'acme' },
  },

  // -- blind-index keys (SPEC.md §13)
  {
    name: 'success-blind-index-key',
    description: 'A blind-index key named "users.email": 32 bytes under the context {"ek:blind-index": "users.email"}, opened as that index key.',
    expect: 'success',
    context: INDEX_CONTEXT,
    plaintext: INDEX_KEY,
    blindIndexName: 'users.email',
  },
  {
    name: 'fail-blind-index-key-read-as-message',
    description: 'The blind-index key of success-blind-index-key read as an ordinary message: its context holds a reserved key.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    context: INDEX_CONTEXT,
    plaintext: INDEX_KEY,
  },
  {
    name: 'fail-blind-index-key-other-name',
    description: 'The blind-index key "users.email" opened as the index key "users.phone".',
    expect: 'ERR_DECRYPTION_FAILED',
    context: INDEX_CONTEXT,
    plaintext: INDEX_KEY,
    blindIndexName: 'users.phone',
  },
  {
    name: 'fail-blind-index-key-extra-entry',
    description: 'A blind-index key whose context holds one entry more than {"ek:blind-index": "users.email"}: the context must be exactly that.',
    expect: 'ERR_DECRYPTION_FAILED',
    context: { ...INDEX_CONTEXT, tenant: 'acme' },
    plaintext: INDEX_KEY,
    blindIndexName: 'users.email',
  },
  {
    name: 'fail-blind-index-key-not-bound',
    description: 'An ordinary envelope (context {"tenant":"acme","purpose":"vectors"}) holding 32 bytes, opened as the index key "users.email".',
    expect: 'ERR_DECRYPTION_FAILED',
    plaintext: INDEX_KEY,
    blindIndexName: 'users.email',
  },
  {
    name: 'fail-blind-index-key-wrong-length',
    description: 'A blind-index key envelope that holds 16 bytes instead of 32.',
    expect: 'ERR_DECRYPTION_FAILED',
    context: INDEX_CONTEXT,
    plaintext: INDEX_KEY.subarray(0, 16),
    blindIndexName: 'users.email',
  },

  // -- provider and key failures
  {
    name: 'fail-no-matching-provider',
    description: 'The only encrypted data key is for provider "kms.example"; the reader has only the local provider.',
    expect: 'ERR_NO_MATCHING_PROVIDER',
    edks: () => [FOREIGN_EDK],
  },
  {
    name: 'fail-key-not-found',
    description: 'The blob (and header) name key "missing-key", which the keyring does not hold.',
    expect: 'ERR_KEY_NOT_FOUND',
    blobKeyId: 'missing-key',
  },
  {
    name: 'fail-key-version-not-found',
    description: 'The blob names version 2 of the key; the keyring holds only version 1.',
    expect: 'ERR_DECRYPTION_FAILED',
    blobKeyVersion: 2,
  },
  {
    name: 'fail-key-disabled',
    description: 'The keyring\'s key is disabled.',
    expect: 'ERR_KEY_DISABLED',
    keyState: 'Disabled',
  },

  // -- text form
  {
    name: 'text-fail-padding',
    description: 'Text form with "=" padding (the text form is unpadded base64url).',
    expect: 'ERR_MALFORMED_ENVELOPE',
    form: 'text',
    plaintext: TEXT_PLAINTEXT,
    mutateText: padded,
  },
  {
    name: 'text-fail-bad-prefix',
    description: 'Text form with prefix "EK1." (the prefix is "ek1.", case-sensitive).',
    expect: 'ERR_MALFORMED_ENVELOPE',
    form: 'text',
    plaintext: TEXT_PLAINTEXT,
    mutateText: (t) => 'EK1.' + t.slice(4),
  },
  {
    name: 'text-fail-standard-alphabet',
    description: 'Text form using the standard base64 alphabet ("+" and "/" instead of "-" and "_").',
    expect: 'ERR_MALFORMED_ENVELOPE',
    form: 'text',
    plaintext: TEXT_PLAINTEXT,
    mutateText: (t) => {
      const out = 'ek1.' + t.slice(4).replace(/-/g, '+').replace(/_/g, '/');
      assert(out !== t, 'standard-alphabet vector needs a "-" or "_" in the text');
      return out;
    },
  },
  {
    name: 'text-fail-nonzero-trailing-bits',
    description: 'Last base64url character changed so that its unused low bits are not zero (not the canonical encoding).',
    expect: 'ERR_MALFORMED_ENVELOPE',
    form: 'text',
    plaintext: TEXT_PLAINTEXT,
    mutateText: (t) => {
      const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const n = t.length - 4;
      assert(n % 4 === 2 || n % 4 === 3, 'trailing-bits vector needs a partial last group');
      const v = A.indexOf(t[t.length - 1]!);
      return t.slice(0, -1) + A[v | 1]!;
    },
  },
  {
    name: 'text-fail-ek2-prefix',
    description: 'Text form with prefix "ek2.": a later format version.',
    expect: 'ERR_UNSUPPORTED_VERSION',
    form: 'text',
    plaintext: TEXT_PLAINTEXT,
    mutateText: (t) => 'ek2.' + t.slice(4),
  },
  ...textPrefixVectors(),
];

/**
 * SPEC.md §4: `ek` + a version 1..255 in canonical decimal + `.` is a version prefix
 * (ERR_UNSUPPORTED_VERSION unless it is `ek1.`); anything else is malformed.
 */
function textPrefixVectors(): Scenario[] {
  const cases: [string, Expect, string][] = [
    ['ek10', 'ERR_UNSUPPORTED_VERSION', 'version 10, a later format version'],
    ['ek255', 'ERR_UNSUPPORTED_VERSION', 'version 255, the largest a version byte holds'],
    ['ek0', 'ERR_MALFORMED_ENVELOPE', 'version 0 is not a version prefix (versions are 1 to 255)'],
    ['ek00', 'ERR_MALFORMED_ENVELOPE', 'a leading zero: not canonical decimal, so not a version prefix'],
    ['ek01', 'ERR_MALFORMED_ENVELOPE', 'a leading zero: not canonical decimal (it is not "ek1.")'],
    ['ek09', 'ERR_MALFORMED_ENVELOPE', 'a leading zero: not canonical decimal'],
    ['ek256', 'ERR_MALFORMED_ENVELOPE', '256 is beyond the version byte'],
    ['ek1000', 'ERR_MALFORMED_ENVELOPE', 'four digits: beyond the version byte'],
  ];
  return cases.map(([prefix, expect, why]) => ({
    name: `text-fail-${prefix}-prefix`,
    description: `Text form with prefix "${prefix}.": ${why}.`,
    expect,
    form: 'text' as const,
    plaintext: TEXT_PLAINTEXT,
    mutateText: (t: string) => `${prefix}.` + t.slice(4),
  }));
}

/** Every vector, in scenario order. */
export async function buildVectors(): Promise<Vector[]> {
  const seen = new Set<string>();
  const vectors: Vector[] = [];
  for (const s of SCENARIOS) {
    assert(/^[a-z0-9-]+$/.test(s.name) && !seen.has(s.name), `unique file name ${s.name}`);
    seen.add(s.name);
    vectors.push(await build(s));
  }
  return vectors;
}

writeFromCommandLine(import.meta.url, 'vectors', buildVectors);
