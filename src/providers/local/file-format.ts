/**
 * Keyring file format (SPEC.md §7): JSON metadata validated with zod, key
 * material as one base64 field, either sealed with a passphrase (scrypt +
 * AES-256-GCM, metadata as associated data) or checked by a SHA-256 checksum.
 * Runtime-neutral; `envelope-kit/node` adds the atomic file I/O.
 * @module
 */
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { z } from 'zod';
import { defaultAesGcm } from '#aead-default';
import type { AesGcm } from '../../core/aead/types.js';
import { InvalidParameterError, KeyringFileError } from '../../core/errors.js';
import { base64Decode, base64Encode } from '../../internal/base64.js';
import { concatBytes, constantTimeEqual, isBytes, utf8Encode, wipe } from '../../internal/bytes.js';
import { isAesGcm, readOptions } from '../../internal/options.js';
import { randomBytes } from '../../internal/random.js';
import { type KeyringState, LocalKeyring, MASTER_KEY_BYTES } from './keyring.js';

/** Identifies a keyring file. */
export const KEYRING_FORMAT = 'envelope-kit/keyring';
/** Keyring file version this release writes and reads. */
export const KEYRING_VERSION = 1;

/** scrypt cost parameters. */
export interface ScryptParams {
  /** CPU/memory cost, a power of two. Default 2^17. */
  readonly N: number;
  /** Block size. Default 8. */
  readonly r: number;
  /** Parallelism. Default 1. */
  readonly p: number;
}

/** Default scrypt parameters for new files (128 MiB, about a second). */
export const DEFAULT_SCRYPT: ScryptParams = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });
/** Bounds accepted on load and on save: scrypt then needs at most 128·r·N = 256 MiB, whatever a hostile file says. */
export const SCRYPT_BOUNDS = Object.freeze({ minLogN: 10, maxLogN: 18, maxR: 8, maxP: 4 });

const CHECKSUM_LABEL = utf8Encode('envelope-kit/keyring/v1/checksum');

/**
 * The file's zod schemas, built on first use: zod is loaded only when a keyring
 * file is parsed (`await import('zod')`), not when the package is imported,
 * which it would otherwise slow down by about 100 ms.
 */
function buildSchemas(z: ZodNamespace) {
  const b64 = z.string().max(1 << 22);
  const iso = z.string().max(64);
  const protectionSchema = z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('none') }).strict(),
    z
      .object({
        kind: z.literal('scrypt'),
        N: z.number().int(),
        r: z.number().int().min(1).max(SCRYPT_BOUNDS.maxR),
        p: z.number().int().min(1).max(SCRYPT_BOUNDS.maxP),
        salt: b64,
        nonce: b64,
      })
      .strict(),
  ]);
  const fileSchema = z
    .object({
      format: z.literal(KEYRING_FORMAT),
      version: z.number().int(),
      protection: protectionSchema,
      keys: z
        .array(
          z
            .object({
              keyId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
              state: z.enum(['Enabled', 'Disabled', 'PendingDeletion']),
              description: z.string().max(8192),
              createdAt: iso,
              versions: z.array(z.object({ version: z.number().int().min(1).max(0x3fff), createdAt: iso }).strict()).min(1).max(0x3fff),
            })
            .strict(),
        )
        .max(10000),
      aliases: z.record(z.string().max(255), z.string().max(64)),
      material: b64,
      checksum: b64.optional(),
    })
    .strict();
  return { protectionSchema, fileSchema };
}

type ZodNamespace = typeof import('zod').z;
type Schemas = ReturnType<typeof buildSchemas>;
let schemas: Promise<Schemas> | undefined;
function loadSchemas(): Promise<Schemas> {
  return (schemas ??= import('zod').then((m) => buildSchemas(m.z)));
}

type FileJson = z.infer<Schemas['fileSchema']>;
type Protection = z.infer<Schemas['protectionSchema']>;

/** The metadata part of the file in a fixed key order: the associated data / checksum input. */
function canonicalMetadata(f: Omit<FileJson, 'material' | 'checksum'>): Uint8Array {
  const protection =
    f.protection.kind === 'none'
      ? { kind: 'none' }
      : { kind: 'scrypt', N: f.protection.N, r: f.protection.r, p: f.protection.p, salt: f.protection.salt, nonce: f.protection.nonce };
  const keys = f.keys.map((k) => ({
    keyId: k.keyId,
    state: k.state,
    description: k.description,
    createdAt: k.createdAt,
    versions: k.versions.map((v) => ({ version: v.version, createdAt: v.createdAt })),
  }));
  const aliases = Object.keys(f.aliases)
    .sort()
    .map((a) => [a, f.aliases[a]]);
  return utf8Encode(JSON.stringify({ format: f.format, version: f.version, protection, keys, aliases }));
}

function checksum(meta: Uint8Array, material: Uint8Array): Uint8Array {
  return sha256(concatBytes(CHECKSUM_LABEL, meta, material));
}

function passphraseBytes(passphrase: unknown): Uint8Array {
  if (typeof passphrase === 'string' && passphrase.length > 0) return utf8Encode(passphrase);
  // A copy (`slice` on a Buffer is a view): this is wiped, and the caller's passphrase must not be.
  if (isBytes(passphrase) && passphrase.length > 0) return new Uint8Array(passphrase);
  throw new InvalidParameterError('"passphrase" must be a non-empty string or Uint8Array');
}

function checkScrypt(p: ScryptParams, err: (m: string) => Error): void {
  if (typeof p.N !== 'number' || typeof p.r !== 'number' || typeof p.p !== 'number') throw err('scrypt N, r and p must be numbers');
  const logN = Math.log2(p.N);
  if (!Number.isInteger(logN) || logN < SCRYPT_BOUNDS.minLogN || logN > SCRYPT_BOUNDS.maxLogN) {
    throw err(`scrypt N must be a power of two from 2^${SCRYPT_BOUNDS.minLogN} to 2^${SCRYPT_BOUNDS.maxLogN}`);
  }
  if (!Number.isInteger(p.r) || p.r < 1 || p.r > SCRYPT_BOUNDS.maxR) throw err(`scrypt r must be 1..${SCRYPT_BOUNDS.maxR}`);
  if (!Number.isInteger(p.p) || p.p < 1 || p.p > SCRYPT_BOUNDS.maxP) throw err(`scrypt p must be 1..${SCRYPT_BOUNDS.maxP}`);
}

async function deriveFileKey(passphrase: Uint8Array, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  return scryptAsync(passphrase, salt, { N: params.N, r: params.r, p: params.p, dkLen: 32, maxmem: 1024 * params.N * params.r + 1024 * 1024 });
}

/** Options of {@link serializeKeyring}. */
export interface SerializeKeyringOptions {
  /** Seal the key material with this passphrase (scrypt + AES-256-GCM). Without it the material is stored in clear. */
  readonly passphrase?: string | Uint8Array;
  /** scrypt cost; defaults to {@link DEFAULT_SCRYPT}. */
  readonly scrypt?: ScryptParams;
  readonly aead?: AesGcm;
}

/** Options of {@link parseKeyring}. */
export interface ParseKeyringOptions {
  /** Required when the file is passphrase-protected. */
  readonly passphrase?: string | Uint8Array;
  /** AES-GCM backend of the returned keyring and of the file seal. */
  readonly aead?: AesGcm;
}

/**
 * Serialize a keyring to the keyring-file JSON text (SPEC.md §7).
 * @throws InvalidParameterError for bad options.
 */
export async function serializeKeyring(keyring: LocalKeyring, options: SerializeKeyringOptions = {}): Promise<string> {
  const opts = readOptions(options, ['passphrase', 'scrypt', 'aead'], 'serializeKeyring options');
  const aead = opts.aead ?? defaultAesGcm;
  if (!isAesGcm(aead)) throw new InvalidParameterError('"aead" must be an AesGcm backend');
  let scrypt: ScryptParams = DEFAULT_SCRYPT;
  if (opts.scrypt !== undefined && opts.scrypt !== null) {
    const { N, r, p } = readOptions(opts.scrypt, ['N', 'r', 'p'], '"scrypt"');
    scrypt = { N, r, p } as ScryptParams;
    checkScrypt(scrypt, (m) => new InvalidParameterError(m));
  }
  let state: KeyringState;
  try {
    if (!(keyring instanceof LocalKeyring)) throw new InvalidParameterError('"keyring" must be a LocalKeyring');
    state = keyring.exportState();
  } catch (e) {
    if (e instanceof InvalidParameterError) throw e;
    // instanceof and exportState throw on proxies
    throw new InvalidParameterError('"keyring" must be a LocalKeyring', { cause: e });
  }
  const material = concatBytes(...state.keys.flatMap((k) => k.versions.map((v) => v.material)));
  for (const k of state.keys) for (const v of k.versions) wipe(v.material);
  let pass: Uint8Array | undefined;
  let fileKey: Uint8Array | undefined;
  try {
    let protection: Protection = { kind: 'none' };
    if (opts.passphrase !== undefined) {
      pass = passphraseBytes(opts.passphrase);
      const params = scrypt;
      const salt = randomBytes(16);
      const nonce = randomBytes(12);
      protection = { kind: 'scrypt', N: params.N, r: params.r, p: params.p, salt: base64Encode(salt), nonce: base64Encode(nonce) };
      fileKey = await deriveFileKey(pass, salt, params);
    }
    const meta = {
      format: KEYRING_FORMAT as typeof KEYRING_FORMAT,
      version: KEYRING_VERSION,
      protection,
      keys: state.keys.map((k) => ({
        keyId: k.keyId,
        state: k.state,
        description: k.description,
        createdAt: k.createdAt,
        versions: k.versions.map((v) => ({ version: v.version, createdAt: v.createdAt })),
      })),
      aliases: { ...state.aliases },
    };
    const metaBytes = canonicalMetadata(meta);
    let out: FileJson;
    if (protection.kind === 'scrypt' && fileKey) {
      const sealed = new Uint8Array(material.length + 16);
      aead.seal(fileKey, base64Decode(protection.nonce)!, metaBytes, material, sealed);
      out = { ...meta, material: base64Encode(sealed) };
    } else {
      out = { ...meta, material: base64Encode(material), checksum: base64Encode(checksum(metaBytes, material)) };
    }
    return JSON.stringify(out, null, 2) + '\n';
  } finally {
    wipe(material, pass, fileKey);
  }
}

/**
 * Parse keyring-file JSON text into a {@link LocalKeyring}.
 * @throws KeyringFileError when the text is not a keyring file, is corrupt or tampered,
 *   or the passphrase is wrong (these cannot be told apart); InvalidParameterError for a missing passphrase.
 */
export async function parseKeyring(text: string, options: ParseKeyringOptions = {}): Promise<LocalKeyring> {
  if (typeof text !== 'string') throw new InvalidParameterError('keyring text must be a string');
  const opts = readOptions(options, ['passphrase', 'aead'], 'parseKeyring options');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // No cause: V8's SyntaxError quotes the text around the error, which may be key material.
    throw new KeyringFileError('keyring file is not valid JSON');
  }
  if (json && typeof json === 'object' && (json as { format?: unknown }).format === KEYRING_FORMAT) {
    const v = (json as { version?: unknown }).version;
    if (typeof v === 'number' && v !== KEYRING_VERSION) throw new KeyringFileError(`unsupported keyring file version ${v}`);
  }
  const { fileSchema } = await loadSchemas();
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) throw new KeyringFileError('keyring file is malformed', { cause: parsed.error });
  const f = parsed.data;
  const aead = opts.aead ?? defaultAesGcm;
  if (!isAesGcm(aead)) throw new InvalidParameterError('"aead" must be an AesGcm backend');
  const metaBytes = canonicalMetadata(f);
  const totalVersions = f.keys.reduce((n, k) => n + k.versions.length, 0);
  let material: Uint8Array | undefined;
  let pass: Uint8Array | undefined;
  let fileKey: Uint8Array | undefined;
  try {
    const raw = base64Decode(f.material);
    if (!raw) throw new KeyringFileError('keyring file is malformed: material is not canonical base64');
    if (f.protection.kind === 'scrypt') {
      if (f.checksum !== undefined) throw new KeyringFileError('keyring file is malformed: unexpected checksum');
      if (opts.passphrase === undefined) throw new InvalidParameterError('this keyring file is protected: give "passphrase"');
      checkScrypt(f.protection, (m) => new KeyringFileError(`keyring file is malformed: ${m}`));
      const salt = base64Decode(f.protection.salt);
      const nonce = base64Decode(f.protection.nonce);
      if (!salt || salt.length < 16 || salt.length > 64 || !nonce || nonce.length !== 12 || raw.length < 16) {
        wipe(raw);
        throw new KeyringFileError('keyring file is malformed: bad salt, nonce or material');
      }
      pass = passphraseBytes(opts.passphrase);
      fileKey = await deriveFileKey(pass, salt, f.protection);
      material = new Uint8Array(raw.length - 16);
      const ok = aead.open(fileKey, nonce, metaBytes, raw, material);
      wipe(raw);
      if (!ok) throw new KeyringFileError('keyring file could not be opened: wrong passphrase, or the file is corrupt or tampered');
    } else {
      material = raw;
      // A passphrase for a file that has none: the file may have been swapped for an unprotected one.
      if (opts.passphrase !== undefined) {
        throw new KeyringFileError('keyring file is not passphrase-protected, but a passphrase was given');
      }
      const sum = f.checksum === undefined ? undefined : base64Decode(f.checksum);
      if (!sum || !constantTimeEqual(sum, checksum(metaBytes, material))) {
        throw new KeyringFileError('keyring file is corrupt or tampered (checksum mismatch)');
      }
    }
    if (material.length !== totalVersions * MASTER_KEY_BYTES) throw new KeyringFileError('keyring file is malformed: material length');
    let o = 0;
    const m = material;
    const state: KeyringState = {
      keys: f.keys.map((k) => ({
        ...k,
        versions: k.versions.map((v) => ({ ...v, material: m.subarray(o, (o += MASTER_KEY_BYTES)) })),
      })),
      aliases: f.aliases,
    };
    try {
      return LocalKeyring.fromState(state, { aead });
    } catch (e) {
      throw new KeyringFileError('keyring file is inconsistent', { cause: e });
    }
  } finally {
    wipe(material, pass, fileKey);
  }
}
