/**
 * Deterministic generator of the local keyring vectors (SPEC.md §6, §7, §10.4).
 *
 * Three kinds, one `<name>.txt` per scenario:
 * - `xaes`: the C2SP XAES-256-GCM vectors, every intermediate value.
 * - `blob`: a local blob (§6) given to the keyring's `decrypt` with a context.
 * - `keyring file`: a keyring file (§7) given to `parseKeyring` with options.
 *
 * Failure vectors are **otherwise valid**: a blob's XAES-256-GCM seal is made
 * over its own (faulty) prefix, and a file's checksum or scrypt seal over its
 * own (faulty) metadata, with the very parameters it names. A reader that
 * skipped the rule under test would therefore accept the vector; only the
 * rule rejects it. Blobs are built with the library's own `wrapDataKey` and
 * `xaesSeal`; files with the SPEC-only writer of `test/keyring-file-spec.ts`
 * (the library refuses to write most of them).
 *
 * Usage: `npm run vectors` or `npx tsx test/vectors/keyring/generate.ts [output-folder]`.
 * @module
 */
import { createCipheriv } from 'node:crypto';
import { nobleAesGcm } from '../../../src/core/aead/noble.js';
import { checkContext, encodeContext } from '../../../src/core/context.js';
import type { ErrorCode } from '../../../src/core/errors.js';
import { ByteWriter, concatBytes, utf8Encode } from '../../../src/internal/bytes.js';
import { wrapDataKey } from '../../../src/providers/local/blob.js';
import { xaesDerive, xaesSeal } from '../../../src/providers/local/xaes.js';
import { type SpecFileJson, specFileKey, specMeta, specPlainFile, specSealedFile, specSkeleton } from '../../keyring-file-spec.js';
import { BLOB_NONCE, DATA_KEY_128, DATA_KEY_256, KEY_ID, MASTER_KEY, hex, seq } from '../inputs.js';
import { writeFromCommandLine } from '../write.js';

type Expect = 'success' | ErrorCode;
type Fields = [string, string][];

interface Vector {
  readonly name: string;
  readonly text: string;
}

function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`generator self-check failed: ${what}`);
}

function vector(name: string, kind: string, description: string, expect: Expect, fields: Fields): Vector {
  const all: Fields = [['name', name], ['kind', kind], ['description', description], ['expect', expect], ...fields];
  for (const [k, v] of all) assert(!/[\r\n]/.test(v) && v === v.trim(), `${name}: field ${k} is one trimmed line`);
  return { name, text: all.map(([k, v]) => `${k}: ${v}`).join('\n') + '\n' };
}

// ---------------------------------------------------------------- xaes (C2SP)

function xaesVector(name: string, key: Uint8Array, aad: string): Vector {
  const nonce = utf8Encode('ABCDEFGHIJKLMNOPQRSTUVWX');
  const plaintext = utf8Encode('XAES-256-GCM');
  const d = xaesDerive(nobleAesGcm, key, nonce);
  const ct = new Uint8Array(plaintext.length + 16);
  xaesSeal(nobleAesGcm, key, nonce, utf8Encode(aad), plaintext, ct);
  const m = (i: number) => concatBytes(Uint8Array.of(0, i, 0x58, 0), nonce.subarray(0, 12));
  return vector(name, 'xaes', `XAES-256-GCM vector of C2SP (MSB of L = ${d.L[0]! >> 7}).`, 'success', [
    ['key', hex(key)],
    ['nonce', hex(nonce)],
    ['L', hex(d.L)],
    ['K1', hex(d.K1)],
    ['M1', hex(m(1))],
    ['M2', hex(m(2))],
    ['Kx', hex(d.Kx)],
    ['Nx', hex(d.Nx)],
    ['plaintext', hex(plaintext)],
    ['aad', hex(utf8Encode(aad))],
    ['ciphertext', hex(ct)],
  ]);
}

// ---------------------------------------------------------------- blobs (§6)

const CONTEXT = { tenant: 'acme', purpose: 'vectors' };

interface BlobScenario {
  name: string;
  description: string;
  expect: Expect;
  masterKey?: Uint8Array;
  keyVersion?: number;
  keyState?: 'Enabled' | 'Disabled';
  dataKey?: Uint8Array;
  /** Context the blob is made with; `readContext` is what decrypt is given (default: the same). */
  context?: Record<string, string>;
  readContext?: Record<string, string>;
  /** The prefix, when it is not the canonical one for KEY_ID and the key version. */
  prefix?: Uint8Array;
  /** Seal with AES-256-GCM under the master key itself (no XAES derivation). */
  plainGcm?: boolean;
  mutate?: (blob: Uint8Array, prefixLength: number) => Uint8Array;
}

function prefixOf(keyIdBytes: Uint8Array, version: number, format = 0x02): Uint8Array {
  return new ByteWriter(80).u8(format).lenBytes(keyIdBytes).len(version).finish();
}

function blobVector(s: BlobScenario): Vector {
  const master = s.masterKey ?? MASTER_KEY;
  const version = s.keyVersion ?? 1;
  const dataKey = s.dataKey ?? DATA_KEY_256;
  const ctx = checkContext(s.context ?? CONTEXT);
  const prefix = s.prefix ?? prefixOf(utf8Encode(KEY_ID), version);
  const aad = concatBytes(prefix, encodeContext(ctx));
  const d = xaesDerive(nobleAesGcm, master, BLOB_NONCE);
  let sealed: Uint8Array;
  if (s.plainGcm) {
    const c = createCipheriv('aes-256-gcm', master, d.Nx).setAAD(aad);
    sealed = concatBytes(c.update(dataKey), c.final(), c.getAuthTag());
  } else {
    sealed = new Uint8Array(dataKey.length + 16);
    xaesSeal(nobleAesGcm, master, BLOB_NONCE, aad, dataKey, sealed);
  }
  let blob = concatBytes(prefix, BLOB_NONCE, sealed);
  if (!s.prefix && !s.plainGcm) {
    // The library's own path gives the same bytes.
    const lib = wrapDataKey(nobleAesGcm, master, KEY_ID, version, BLOB_NONCE, dataKey, ctx);
    assert(hex(lib) === hex(blob), `${s.name}: wrapDataKey matches`);
  }
  if (s.mutate) blob = s.mutate(blob.slice(), prefix.length);
  return vector(s.name, 'blob', s.description, s.expect, [
    ['master key', hex(master)],
    ['key id', KEY_ID],
    ['key version', String(version)],
    ['key state', s.keyState ?? 'Enabled'],
    ['encryption context', JSON.stringify(s.readContext ?? s.context ?? CONTEXT)],
    ['data key', hex(dataKey)],
    ['nonce', hex(BLOB_NONCE)],
    ['L', hex(d.L)],
    ['K1', hex(d.K1)],
    ['Kx', hex(d.Kx)],
    ['Nx', hex(d.Nx)],
    ['blob aad', hex(aad)],
    ['blob', hex(blob)],
  ]);
}

const flip = (i: number) => (b: Uint8Array) => {
  b[i < 0 ? b.length + i : i]! ^= 0x01;
  return b;
};

const BLOBS: BlobScenario[] = [
  { name: 'blob-success', description: 'A 32-byte data key wrapped under version 1 of the key.', expect: 'success' },
  { name: 'blob-success-version-200', description: 'Key version 200: its len() takes two bytes (80 c8).', expect: 'success', keyVersion: 200 },
  {
    name: 'blob-success-msb-of-l-set',
    description: 'Master key 03 * 32, whose L has its top bit set (K1 takes the 0x87 reduction); a 16-byte data key; empty context.',
    expect: 'success',
    masterKey: new Uint8Array(32).fill(3),
    dataKey: DATA_KEY_128,
    context: {},
  },
  {
    name: 'blob-fail-format-01',
    description: 'Format byte 0x01 (the former layout), sealed over that prefix: refused.',
    expect: 'ERR_DECRYPTION_FAILED',
    prefix: prefixOf(utf8Encode(KEY_ID), 1, 0x01),
  },
  { name: 'blob-fail-format-ff', description: 'Format byte 0xff, sealed over that prefix.', expect: 'ERR_DECRYPTION_FAILED', prefix: prefixOf(utf8Encode(KEY_ID), 1, 0xff) },
  {
    name: 'blob-fail-aes-gcm-under-master-key',
    description: 'The data key sealed with AES-256-GCM under the master key itself with nonce N[12:24], skipping the XAES key derivation: refused.',
    expect: 'ERR_DECRYPTION_FAILED',
    plainGcm: true,
  },
  { name: 'blob-fail-truncated-nonce', description: 'Cut 10 bytes into the 24-byte nonce.', expect: 'ERR_DECRYPTION_FAILED', mutate: (b, p) => b.subarray(0, p + 10) },
  {
    name: 'blob-fail-nonce-12-bytes',
    description: 'Only 12 bytes of nonce (an AES-GCM-sized nonce) before the ciphertext: the 24 bytes read as N swallow part of it.',
    expect: 'ERR_DECRYPTION_FAILED',
    mutate: (b, p) => concatBytes(b.subarray(0, p + 12), b.subarray(p + 24)),
  },
  { name: 'blob-fail-key-id-empty', description: 'Key id of 0 bytes, sealed over that prefix.', expect: 'ERR_DECRYPTION_FAILED', prefix: prefixOf(new Uint8Array(0), 1) },
  {
    name: 'blob-fail-key-id-65-bytes',
    description: 'Key id of 65 bytes (the limit is 64), sealed over that prefix.',
    expect: 'ERR_DECRYPTION_FAILED',
    prefix: prefixOf(utf8Encode('k'.repeat(65)), 1),
  },
  {
    name: 'blob-fail-key-id-bad-character',
    description: 'Key id "vector key 1" (a space is outside A-Z a-z 0-9 _ -), sealed over that prefix.',
    expect: 'ERR_DECRYPTION_FAILED',
    prefix: prefixOf(utf8Encode('vector key 1'), 1),
  },
  {
    name: 'blob-fail-key-id-invalid-utf8',
    description: 'Key id bytes c3 28 (not UTF-8), sealed over that prefix.',
    expect: 'ERR_DECRYPTION_FAILED',
    prefix: prefixOf(Uint8Array.of(0xc3, 0x28), 1),
  },
  { name: 'blob-fail-version-zero', description: 'Key version 0 (versions are 1..16383), sealed over that prefix.', expect: 'ERR_DECRYPTION_FAILED', prefix: prefixOf(utf8Encode(KEY_ID), 0) },
  {
    name: 'blob-fail-version-non-canonical',
    description: 'Key version 1 written in the two-byte form 80 01, sealed over that prefix: a reader that accepted it would open the blob.',
    expect: 'ERR_DECRYPTION_FAILED',
    prefix: concatBytes(Uint8Array.of(0x02), new ByteWriter(16).lenBytes(utf8Encode(KEY_ID)).finish(), Uint8Array.of(0x80, 0x01)),
  },
  {
    name: 'blob-fail-version-16384',
    description: 'Key version 16384 (c0 00), above the limit of 16383, sealed over that prefix.',
    expect: 'ERR_DECRYPTION_FAILED',
    prefix: concatBytes(Uint8Array.of(0x02), new ByteWriter(16).lenBytes(utf8Encode(KEY_ID)).finish(), Uint8Array.of(0xc0, 0x00)),
  },
  { name: 'blob-fail-data-key-empty', description: 'A 0-byte data key (data keys are 1..1024 bytes), validly sealed.', expect: 'ERR_DECRYPTION_FAILED', dataKey: new Uint8Array(0) },
  { name: 'blob-fail-data-key-1025-bytes', description: 'A 1025-byte data key, validly sealed.', expect: 'ERR_DECRYPTION_FAILED', dataKey: seq(0, 1025) },
  { name: 'blob-fail-tag-tampered', description: 'Last byte (the GCM tag) changed.', expect: 'ERR_DECRYPTION_FAILED', mutate: flip(-1) },
  { name: 'blob-fail-nonce-first-half-tampered', description: 'First byte of N changed: another Kx.', expect: 'ERR_DECRYPTION_FAILED', mutate: (b, p) => flip(p)(b) },
  { name: 'blob-fail-nonce-second-half-tampered', description: 'Byte 12 of N changed: another Nx.', expect: 'ERR_DECRYPTION_FAILED', mutate: (b, p) => flip(p + 12)(b) },
  { name: 'blob-fail-prefix-tampered', description: 'The key id byte "1" changed to "0": the prefix is in the associated data.', expect: 'ERR_KEY_NOT_FOUND', mutate: (b, p) => flip(p - 2)(b) },
  {
    name: 'blob-fail-context-mismatch',
    description: 'Made with {"tenant":"acme","purpose":"vectors"}, decrypted with {"tenant":"acme"}.',
    expect: 'ERR_DECRYPTION_FAILED',
    readContext: { tenant: 'acme' },
  },
  {
    name: 'blob-fail-wrong-key-version',
    description: 'The blob names version 2; the keyring holds version 1 only.',
    expect: 'ERR_DECRYPTION_FAILED',
    prefix: prefixOf(utf8Encode(KEY_ID), 2),
  },
  { name: 'blob-fail-unknown-key', description: 'The blob names key "missing-key", which the keyring does not hold.', expect: 'ERR_KEY_NOT_FOUND', prefix: prefixOf(utf8Encode('missing-key'), 1) },
  { name: 'blob-fail-key-disabled', description: 'The keyring\'s key is disabled.', expect: 'ERR_KEY_DISABLED', keyState: 'Disabled' },
  { name: 'blob-fail-too-long', description: 'A blob of 4097 bytes (blobs are 1..4096): refused before parsing.', expect: 'ERR_INVALID_PARAMETER', mutate: (b) => concatBytes(b, new Uint8Array(4097 - b.length)) },
  { name: 'blob-fail-empty', description: 'An empty blob.', expect: 'ERR_INVALID_PARAMETER', mutate: () => new Uint8Array(0) },
];

// ---------------------------------------------------------------- keyring files (§7)

const MATERIAL = concatBytes(MASTER_KEY, seq(0x20, 32), seq(0xc0, 32));
const PASSPHRASE = 'correct horse battery staple';
const FLOOR = { N: 2 ** 14, r: 8, p: 1 };
const SALT = seq(0x10, 16);
const FILE_NONCE = seq(0x30, 12);
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

/** Two keys (three versions), two aliases, every state field used. */
function richJson(protection: SpecFileJson['protection']): SpecFileJson {
  const f = specSkeleton(protection, KEY_ID);
  f.keys[0]!.versions.push({ version: 2, createdAt: '2025-02-01T00:00:00.000Z' });
  f.keys[0]!.description = 'vector key, clé, \u{1f511}';
  f.keys.push({
    keyId: 'vector-key-2',
    state: 'Disabled',
    description: '',
    createdAt: '2025-03-01T00:00:00.000Z',
    versions: [{ version: 1, createdAt: '2025-03-01T00:00:00.000Z' }],
  });
  f.aliases = { 'alias/app': KEY_ID, 'alias/old': 'vector-key-2' };
  return f;
}
const scrypt = (p = FLOOR, salt = SALT, nonce = FILE_NONCE) => ({ kind: 'scrypt' as const, ...p, salt: b64(salt), nonce: b64(nonce) });

interface FileScenario {
  name: string;
  description: string;
  expect: Expect;
  /** Options given to the reader (JSON: `passphrase` or `protection`, optional `minGeneration`). */
  options: Record<string, unknown>;
  json?: SpecFileJson;
  material?: Uint8Array;
  /** Passphrase the file is sealed with (default PASSPHRASE). */
  sealWith?: string;
  /** Change the finished file text (after the checksum or seal). */
  mutate?: (text: string) => string;
  /** Change the parsed file after sealing and write it back compact. */
  mutateJson?: (json: Record<string, unknown>) => void;
}

function fileVector(s: FileScenario): Vector {
  const json = s.json ?? richJson({ kind: 'none' });
  const material = s.material ?? MATERIAL;
  let text = json.protection.kind === 'none' ? specPlainFile(json, material) : specSealedFile(json, material, s.sealWith ?? PASSPHRASE);
  const parsed = JSON.parse(text) as Record<string, unknown>;
  s.mutateJson?.(parsed);
  text = JSON.stringify(parsed);
  if (s.mutate) text = s.mutate(text);
  const fields: Fields = [['options', JSON.stringify(s.options)], ['meta', specMeta(json).toString('utf8')]];
  if (json.protection.kind === 'scrypt' && s.expect === 'success') {
    const { N, r, p } = json.protection;
    fields.push(['file key', hex(specFileKey(s.sealWith ?? PASSPHRASE, Buffer.from(json.protection.salt, 'base64'), N, r, p))]);
  }
  if (s.expect === 'success') fields.push(['material', hex(material)]);
  fields.push(['file', text]);
  return vector(s.name, 'keyring file', s.description, s.expect, fields);
}

const NONE = { protection: 'none' };
const PASS = { passphrase: PASSPHRASE };

const FILES: FileScenario[] = [
  { name: 'file-success-none', description: 'Protection none, opened with protection: "none": two keys, three versions, two aliases.', expect: 'success', options: NONE },
  { name: 'file-success-scrypt', description: 'Protection scrypt at the floor (N = 2^14, r = 8, p = 1).', expect: 'success', options: PASS, json: richJson(scrypt()) },
  {
    name: 'file-success-min-generation',
    description: 'Generation 4, read with minGeneration 4.',
    expect: 'success',
    options: { ...PASS, minGeneration: 4 },
    json: { ...richJson(scrypt()), generation: 4 },
  },
  {
    name: 'file-fail-below-min-generation',
    description: 'A validly sealed file of generation 3, read with minGeneration 4: an older copy of the file.',
    expect: 'ERR_KEYRING_FILE',
    options: { ...PASS, minGeneration: 4 },
    json: { ...richJson(scrypt()), generation: 3 },
  },
  { name: 'file-fail-version-1', description: 'Version 1 (the former format), checksum valid.', expect: 'ERR_KEYRING_FILE', options: NONE, json: { ...richJson({ kind: 'none' }), version: 1 } },
  { name: 'file-fail-version-3', description: 'Version 3, checksum valid.', expect: 'ERR_KEYRING_FILE', options: NONE, json: { ...richJson({ kind: 'none' }), version: 3 } },
  {
    name: 'file-fail-unknown-member',
    description: 'An extra root member "comment" (not covered by the checksum, which is otherwise valid).',
    expect: 'ERR_KEYRING_FILE',
    options: NONE,
    mutateJson: (j) => {
      j.comment = 'x';
    },
  },
  {
    name: 'file-fail-checksum-mismatch',
    description: 'A key state changed after the checksum was computed.',
    expect: 'ERR_KEYRING_FILE',
    options: NONE,
    mutateJson: (j) => {
      (j.keys as { state: string }[])[1]!.state = 'Enabled';
    },
  },
  {
    name: 'file-fail-checksum-with-scrypt',
    description: 'A validly sealed file that also has a checksum member.',
    expect: 'ERR_KEYRING_FILE',
    options: PASS,
    json: richJson(scrypt()),
    mutateJson: (j) => {
      j.checksum = b64(new Uint8Array(32));
    },
  },
  {
    name: 'file-fail-material-not-canonical',
    description: 'The material with a space in the middle of its base64 (a lenient decoder skips it and gets the same bytes, so the checksum matches).',
    expect: 'ERR_KEYRING_FILE',
    options: NONE,
    mutateJson: (j) => {
      const m = j.material as string;
      j.material = m.slice(0, 64) + ' ' + m.slice(64);
    },
  },
  {
    name: 'file-fail-material-length',
    description: '97 bytes of material for three versions (96 expected), checksum computed over them.',
    expect: 'ERR_KEYRING_FILE',
    options: NONE,
    material: concatBytes(MATERIAL, Uint8Array.of(0)),
  },
  {
    name: 'file-fail-scrypt-below-floor',
    description: 'scrypt N = 2^10, r = 1 (N·r below 2^17: about 1 ms per guess), validly sealed with those parameters.',
    expect: 'ERR_KEYRING_FILE',
    options: PASS,
    json: richJson(scrypt({ N: 2 ** 10, r: 1, p: 1 })),
  },
  {
    name: 'file-fail-scrypt-above-ceiling',
    description: 'scrypt N = 2^17, r = 8, p = 3 (N·r·p above 2^21), validly sealed with those parameters.',
    expect: 'ERR_KEYRING_FILE',
    options: PASS,
    json: richJson(scrypt({ N: 2 ** 17, r: 8, p: 3 })),
  },
  {
    name: 'file-fail-scrypt-r-9',
    description: 'scrypt r = 9 (r is 1..8), N = 2^14, validly sealed with those parameters.',
    expect: 'ERR_KEYRING_FILE',
    options: PASS,
    json: richJson(scrypt({ N: 2 ** 14, r: 9, p: 1 })),
  },
  {
    name: 'file-fail-salt-15-bytes',
    description: 'A 15-byte salt (16..64 required), validly sealed with it.',
    expect: 'ERR_KEYRING_FILE',
    options: PASS,
    json: richJson(scrypt(FLOOR, seq(0x10, 15))),
  },
  {
    name: 'file-fail-nonce-16-bytes',
    description: 'A 16-byte AES-GCM nonce (12 required), validly sealed with it.',
    expect: 'ERR_KEYRING_FILE',
    options: PASS,
    json: richJson(scrypt(FLOOR, SALT, seq(0x30, 16))),
  },
  {
    name: 'file-fail-alias-proto',
    description: 'An alias named "__proto__", checksum computed over it: never a property name.',
    expect: 'ERR_KEYRING_FILE',
    options: NONE,
    json: (() => {
      const f = richJson({ kind: 'none' });
      Object.defineProperty(f.aliases, '__proto__', { value: KEY_ID, enumerable: true, writable: true, configurable: true });
      return f;
    })(),
  },
  {
    name: 'file-fail-alias-unknown-key',
    description: 'Alias "alias/ghost" names key "ghost", which the file does not hold; checksum valid.',
    expect: 'ERR_KEYRING_FILE',
    options: NONE,
    json: { ...richJson({ kind: 'none' }), aliases: { 'alias/ghost': 'ghost' } },
  },
  {
    name: 'file-fail-duplicate-key-id',
    description: 'Both keys named "vector-key-1"; checksum valid.',
    expect: 'ERR_KEYRING_FILE',
    options: NONE,
    json: (() => {
      const f = richJson({ kind: 'none' });
      f.keys[1]!.keyId = KEY_ID;
      f.aliases = {};
      return f;
    })(),
  },
  {
    name: 'file-fail-versions-not-increasing',
    description: 'Versions 2 then 1; checksum valid.',
    expect: 'ERR_KEYRING_FILE',
    options: NONE,
    json: (() => {
      const f = richJson({ kind: 'none' });
      f.keys[0]!.versions.reverse();
      return f;
    })(),
  },
  {
    name: 'file-fail-description-8194-bytes',
    description: 'A description of 4097 "é": 4097 UTF-16 code units but 8194 bytes of UTF-8 (the limit is 8192 bytes); checksum valid.',
    expect: 'ERR_KEYRING_FILE',
    options: NONE,
    json: (() => {
      const f = richJson({ kind: 'none' });
      f.keys[0]!.description = '\u00e9'.repeat(4097);
      return f;
    })(),
  },
  {
    name: 'file-fail-lone-surrogate',
    description: 'A description holding the lone surrogate \\ud800 (written as a JSON escape); checksum valid.',
    expect: 'ERR_KEYRING_FILE',
    options: NONE,
    json: (() => {
      const f = richJson({ kind: 'none' });
      f.keys[0]!.description = 'lone \ud800';
      return f;
    })(),
  },
  { name: 'file-fail-passphrase-for-plain-file', description: 'A valid unprotected file read with a passphrase: a sealed file swapped for a plain one.', expect: 'ERR_KEYRING_FILE', options: PASS },
  {
    name: 'file-fail-none-for-sealed-file',
    description: 'A valid sealed file read with protection: "none".',
    expect: 'ERR_KEYRING_FILE',
    options: NONE,
    json: richJson(scrypt()),
  },
  { name: 'file-fail-wrong-passphrase', description: 'A valid sealed file read with another passphrase.', expect: 'ERR_KEYRING_FILE', options: { passphrase: 'wrong' }, json: richJson(scrypt()) },
  {
    name: 'file-fail-sealed-metadata-changed',
    description: 'A sealed file whose disabled key was set back to "Enabled" after sealing: the metadata is the associated data.',
    expect: 'ERR_KEYRING_FILE',
    options: PASS,
    json: richJson(scrypt()),
    mutateJson: (j) => {
      (j.keys as { state: string }[])[1]!.state = 'Enabled';
    },
  },
  {
    name: 'file-fail-lone-surrogate-passphrase',
    description: 'A file sealed with "pass\\ufffdword", read with "pass\\ud800word" (whose UTF-8 would be the same bytes): refused as an argument.',
    expect: 'ERR_INVALID_PARAMETER',
    options: { passphrase: 'pass\ud800word' },
    sealWith: 'pass\ufffdword',
    json: richJson(scrypt()),
  },
  { name: 'file-fail-no-protection-option', description: 'A valid unprotected file read with neither a passphrase nor protection: "none".', expect: 'ERR_INVALID_PARAMETER', options: {} },
];

/** Every vector, in scenario order. */
export function buildVectors(): Vector[] {
  const all = [
    xaesVector('xaes-c2sp-1', new Uint8Array(32).fill(1), ''),
    xaesVector('xaes-c2sp-3', new Uint8Array(32).fill(3), 'c2sp.org/XAES-256-GCM'),
    ...BLOBS.map(blobVector),
    ...FILES.map(fileVector),
  ];
  const seen = new Set<string>();
  for (const v of all) {
    assert(/^[a-z0-9-]+$/.test(v.name) && !seen.has(v.name), `unique file name ${v.name}`);
    seen.add(v.name);
  }
  return all;
}

writeFromCommandLine(import.meta.url, 'keyring vectors', buildVectors);
