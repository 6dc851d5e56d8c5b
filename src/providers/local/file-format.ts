/**
 * Keyring file format (SPEC.md §7): JSON metadata checked by a hand-written reader, key
 * material as one base64 field, either sealed with a passphrase (scrypt +
 * AES-256-GCM, metadata as associated data) or, only when the caller says
 * `protection: 'none'`, stored in clear with a SHA-256 checksum. Every input
 * is bounded (size, nesting, counts, scrypt work) before the expensive work.
 * Runtime-neutral; `envelope-kit/node` adds the atomic file I/O.
 * @module
 */
import { defaultAesGcm, nobleScryptAsync, nobleSha256 } from '#aead-default';
import type { AesGcm } from '../../core/aead/types.js';
import { InvalidParameterError, KeyringFileError } from '../../core/errors.js';
import { base64Decode, base64Encode } from '../../internal/base64.js';
import { concatBytes, constantTimeEqual, isBytes, isWellFormed, utf8Encode, utf8Length, wipe } from '../../internal/bytes.js';
import { isAesGcm, readOptions } from '../../internal/options.js';
import { randomBytes } from '../../internal/random.js';
import { LOCAL_KEY_ID_RE, MAX_KEY_VERSION } from './blob.js';
import { KEYRING_LIMITS, type KeyState, type KeyringState, LocalKeyring, MASTER_KEY_BYTES, _setKeyringGeneration, checkAlias, isGeneration } from './keyring.js';

/** Identifies a keyring file. */
export const KEYRING_FORMAT = 'envelope-kit/keyring';
/** Keyring file version this release writes and reads. */
export const KEYRING_VERSION = 2;

/** Largest keyring file, in bytes of UTF-8 (a keyring text, in UTF-16 code units and in UTF-8 bytes). */
export const MAX_KEYRING_TEXT_BYTES = 16 * 1024 * 1024;
/** Deepest nesting of arrays and objects in a keyring file (root, keys, key, versions, version). */
const MAX_JSON_DEPTH = 5;
/** Most JSON values (strings, containers, separators) a keyring file may hold. */
const MAX_JSON_TOKENS = 1 << 21;
/** Longest passphrase, in bytes. */
const MAX_PASSPHRASE_BYTES = 65536;

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
/**
 * Bounds on scrypt parameters, checked on save and on load before scrypt runs
 * (SPEC.md §7): `N` a power of two, `r` 1..8, `p` 1..4,
 * `minNR ≤ N·r` (at least 16 MiB: one eighth of the default's cost, so a file
 * cannot carry a weak stretching of the passphrase), `N·r ≤ maxNR` (at most
 * 256 MiB of memory) and `N·r·p ≤ maxNRP` (at most twice the default's work),
 * whatever a hostile file says.
 */
export const SCRYPT_BOUNDS = Object.freeze({ maxR: 8, maxP: 4, minNR: 2 ** 17, maxNR: 2 ** 21, maxNRP: 2 ** 21 });

const CHECKSUM_LABEL = utf8Encode('envelope-kit/keyring/v1/checksum');

/** The protection block of a keyring file (SPEC.md §7). */
type Protection =
  | { readonly kind: 'none' }
  | { readonly kind: 'scrypt'; readonly N: number; readonly r: number; readonly p: number; readonly salt: string; readonly nonce: string };

/** A keyring file's JSON, checked: every field of the shape SPEC.md §7 gives it, and nothing else. */
interface FileJson {
  readonly format: typeof KEYRING_FORMAT;
  readonly version: typeof KEYRING_VERSION;
  readonly generation: number;
  readonly protection: Protection;
  readonly keys: readonly {
    readonly keyId: string;
    readonly state: KeyState;
    readonly description: string;
    readonly createdAt: string;
    readonly versions: readonly { readonly version: number; readonly createdAt: string }[];
  }[];
  readonly aliases: Readonly<Record<string, string>>;
  readonly material: string;
  readonly checksum?: string;
}

/**
 * The file's shape is broken: one fixed message, and as `cause` a `TypeError` naming where (a JSON
 * path of property names and indices, never a value) and which rule.
 */
function shapeError(path: string, rule: string): KeyringFileError {
  return new KeyringFileError('keyring file is malformed', { cause: new TypeError(`${path}: ${rule}`) });
}

type JsonObject = { readonly [k: string]: unknown };

/** An object with exactly the `required` properties, and perhaps the `optional` ones. */
function readObject(v: unknown, path: string, required: readonly string[], optional: readonly string[] = []): JsonObject {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw shapeError(path, 'expected an object');
  // JSON.parse makes plain objects whose properties are all own and enumerable (`__proto__` too).
  for (const k of Object.keys(v)) if (!required.includes(k) && !optional.includes(k)) throw shapeError(path, 'unexpected property');
  for (const k of required) if (!Object.hasOwn(v, k)) throw shapeError(`${path}.${k}`, 'missing');
  return v as JsonObject;
}

function readArray(v: unknown, path: string, min: number, max: number): readonly unknown[] {
  if (!Array.isArray(v)) throw shapeError(path, 'expected an array');
  if (v.length < min || v.length > max) throw shapeError(path, `expected ${min} to ${max} items`);
  return v;
}

function readInt(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw shapeError(path, 'expected an integer');
  if (v < min || v > max) throw shapeError(path, `expected ${min} to ${max}`);
  return v;
}

/** A string of at most `max` UTF-16 code units (base64 fields, ids: their characters are ASCII). */
function readString(v: unknown, path: string, max: number): string {
  if (typeof v !== 'string') throw shapeError(path, 'expected a string');
  if (v.length > max) throw shapeError(path, `expected at most ${max} characters`);
  return v;
}

/** A well-formed string of at most `max` bytes of UTF-8. */
function readText(v: unknown, path: string, max: number): string {
  const s = readString(v, path, max);
  if (!isWellFormed(s) || utf8Length(s) > max) throw shapeError(path, `expected at most ${max} bytes of well-formed UTF-8`);
  return s;
}

function readProtection(v: unknown): Protection {
  const kind = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as { kind?: unknown }).kind : undefined;
  if (kind === 'none') {
    readObject(v, '$.protection', ['kind']);
    return { kind: 'none' };
  }
  if (kind !== 'scrypt') throw shapeError('$.protection.kind', "expected 'none' or 'scrypt'");
  const o = readObject(v, '$.protection', ['kind', 'N', 'r', 'p', 'salt', 'nonce']);
  const int = (k: string) => readInt(o[k], `$.protection.${k}`, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  return {
    kind: 'scrypt',
    N: int('N'),
    r: int('r'),
    p: int('p'),
    salt: readString(o.salt, '$.protection.salt', MAX_KEYRING_TEXT_BYTES),
    nonce: readString(o.nonce, '$.protection.nonce', MAX_KEYRING_TEXT_BYTES),
  };
}

/**
 * Check a parsed keyring file against its shape (SPEC.md §7) and copy it: only the checked copy is
 * read afterwards. Bounds on sizes and counts come from {@link KEYRING_LIMITS}; scrypt's, the base64
 * fields' and the material's are checked where they are used.
 * @throws KeyringFileError (`'keyring file is malformed'`, the broken rule as `cause`)
 */
function readFile(json: unknown): FileJson {
  const L = KEYRING_LIMITS;
  const f = readObject(json, '$', ['format', 'version', 'generation', 'protection', 'keys', 'aliases', 'material'], ['checksum']);
  if (f.format !== KEYRING_FORMAT) throw shapeError('$.format', `expected ${JSON.stringify(KEYRING_FORMAT)}`);
  if (f.version !== KEYRING_VERSION) throw shapeError('$.version', `expected ${KEYRING_VERSION}`);
  const generation = readInt(f.generation, '$.generation', 0, Number.MAX_SAFE_INTEGER);
  const protection = readProtection(f.protection);
  const keys = readArray(f.keys, '$.keys', 0, L.maxKeys).map((kv, i) => {
    const at = `$.keys[${i}]`;
    const k = readObject(kv, at, ['keyId', 'state', 'description', 'createdAt', 'versions']);
    const keyId = readString(k.keyId, `${at}.keyId`, L.maxKeyIdBytes);
    if (!LOCAL_KEY_ID_RE.test(keyId)) throw shapeError(`${at}.keyId`, 'expected 1 to 64 of A-Z a-z 0-9 _ -');
    const state = k.state;
    if (state !== 'Enabled' && state !== 'Disabled' && state !== 'PendingDeletion') {
      throw shapeError(`${at}.state`, "expected 'Enabled', 'Disabled' or 'PendingDeletion'");
    }
    const versions = readArray(k.versions, `${at}.versions`, 1, L.maxVersionsPerKey).map((vv, j) => {
      const vat = `${at}.versions[${j}]`;
      const v = readObject(vv, vat, ['version', 'createdAt']);
      return { version: readInt(v.version, `${vat}.version`, 1, MAX_KEY_VERSION), createdAt: readText(v.createdAt, `${vat}.createdAt`, L.maxCreatedAtBytes) };
    });
    return {
      keyId,
      state: state as KeyState,
      description: readText(k.description, `${at}.description`, L.maxDescriptionBytes),
      createdAt: readText(k.createdAt, `${at}.createdAt`, L.maxCreatedAtBytes),
      versions,
    };
  });
  const a = f.aliases;
  if (a === null || typeof a !== 'object' || Array.isArray(a)) throw shapeError('$.aliases', 'expected an object');
  // No prototype: alias names (already checked by checkAlias) become property names.
  const aliases: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name of Object.keys(a)) {
    if (name.length > L.maxAliasBytes) throw shapeError('$.aliases', `expected alias names of at most ${L.maxAliasBytes} characters`);
    aliases[name] = readString((a as JsonObject)[name], '$.aliases[*]', L.maxKeyIdBytes);
  }
  const material = readString(f.material, '$.material', MAX_KEYRING_TEXT_BYTES);
  const out: FileJson = { format: KEYRING_FORMAT, version: KEYRING_VERSION, generation, protection, keys, aliases, material };
  return Object.hasOwn(f, 'checksum') ? { ...out, checksum: readString(f.checksum, '$.checksum', MAX_KEYRING_TEXT_BYTES) } : out;
}

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
  return utf8Encode(JSON.stringify({ format: f.format, version: f.version, generation: f.generation, protection, keys, aliases }));
}

function checksum(meta: Uint8Array, material: Uint8Array): Uint8Array {
  return nobleSha256(concatBytes(CHECKSUM_LABEL, meta, material));
}

function passphraseBytes(passphrase: unknown): Uint8Array {
  if (typeof passphrase === 'string' && passphrase.length > 0) {
    // A lone surrogate would become U+FFFD in UTF-8, so two different passphrases would open the same file.
    if (!isWellFormed(passphrase)) throw new InvalidParameterError('"passphrase" must be well-formed Unicode (it has a lone surrogate)');
    if (passphrase.length > MAX_PASSPHRASE_BYTES || utf8Length(passphrase) > MAX_PASSPHRASE_BYTES) {
      throw new InvalidParameterError(`"passphrase" must be at most ${MAX_PASSPHRASE_BYTES} bytes`);
    }
    return utf8Encode(passphrase);
  }
  if (isBytes(passphrase) && passphrase.length > 0) {
    if (passphrase.length > MAX_PASSPHRASE_BYTES) throw new InvalidParameterError(`"passphrase" must be at most ${MAX_PASSPHRASE_BYTES} bytes`);
    // A copy (`slice` on a Buffer is a view): this is wiped, and the caller's passphrase must not be.
    return new Uint8Array(passphrase);
  }
  throw new InvalidParameterError('"passphrase" must be a non-empty string or Uint8Array');
}

/** SPEC.md §7: the scrypt bounds, before scrypt runs. */
function checkScrypt(p: ScryptParams, err: (m: string) => Error): void {
  const B = SCRYPT_BOUNDS;
  if (typeof p.N !== 'number' || typeof p.r !== 'number' || typeof p.p !== 'number') throw err('scrypt N, r and p must be numbers');
  if (!Number.isSafeInteger(p.N) || p.N < 2 || (p.N & (p.N - 1)) !== 0 || p.N > B.maxNR) throw err('scrypt N must be a power of two');
  if (!Number.isInteger(p.r) || p.r < 1 || p.r > B.maxR) throw err(`scrypt r must be 1..${B.maxR}`);
  if (!Number.isInteger(p.p) || p.p < 1 || p.p > B.maxP) throw err(`scrypt p must be 1..${B.maxP}`);
  const nr = p.N * p.r;
  if (nr < B.minNR) throw err(`scrypt N·r must be at least 2^17 (the passphrase would be stretched too weakly)`);
  if (nr > B.maxNR) throw err('scrypt N·r must be at most 2^21 (256 MiB)');
  if (nr * p.p > B.maxNRP) throw err('scrypt N·r·p must be at most 2^21');
}

async function deriveFileKey(passphrase: Uint8Array, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  return nobleScryptAsync(passphrase, salt, { N: params.N, r: params.r, p: params.p, dkLen: 32, maxmem: 1024 * params.N * params.r + 1024 * 1024 });
}

/**
 * JSON text of a keyring file, parsed only after its size, nesting and number
 * of values are bounded in one linear pass (SPEC.md §7): `JSON.parse` never
 * sees deep or huge input.
 * @throws KeyringFileError
 */
function parseBoundedJson(text: string): unknown {
  const tooLarge = () => new KeyringFileError(`keyring file is too large (more than ${MAX_KEYRING_TEXT_BYTES} bytes)`);
  if (text.length > MAX_KEYRING_TEXT_BYTES) throw tooLarge();
  let depth = 0;
  let tokens = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: skip to its closing quote
      tokens++;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) throw new KeyringFileError('keyring file is malformed: nested too deeply');
      tokens++;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    } else if (c === 0x2c) {
      tokens++;
    }
    if (tokens > MAX_JSON_TOKENS) throw new KeyringFileError('keyring file is malformed: too many values');
  }
  // A code unit is at most 3 bytes of UTF-8: count them only when that bound does not already settle it.
  if (text.length * 3 > MAX_KEYRING_TEXT_BYTES && utf8Length(text) > MAX_KEYRING_TEXT_BYTES) throw tooLarge();
  try {
    return JSON.parse(text);
  } catch {
    // No cause: V8's SyntaxError quotes the text around the error, which may be key material.
    throw new KeyringFileError('keyring file is not valid JSON');
  }
}

/** `'none'` or `'scrypt'`: the protection a keyring file text names, or undefined when it is not a readable keyring file. Never throws. */
export function _keyringProtectionKind(text: string): 'none' | 'scrypt' | undefined {
  try {
    const kind = (parseBoundedJson(text) as { protection?: { kind?: unknown } } | null)?.protection?.kind;
    return kind === 'none' || kind === 'scrypt' ? kind : undefined;
  } catch {
    return undefined;
  }
}

/** Options of {@link serializeKeyring}. */
export interface SerializeKeyringOptions {
  /** Seal the key material with this passphrase (scrypt + AES-256-GCM). Required unless `protection` is `'none'`. */
  readonly passphrase?: string | Uint8Array;
  /**
   * `'none'` stores the master keys **in clear** (base64, with a checksum
   * against accidental corruption): an explicit choice, never the default. A
   * missing passphrase without it is an error. `'passphrase'` (the same as
   * leaving it out) requires `passphrase`.
   */
  readonly protection?: 'passphrase' | 'none';
  /** scrypt cost; defaults to {@link DEFAULT_SCRYPT}. Bounded by {@link SCRYPT_BOUNDS}. */
  readonly scrypt?: ScryptParams;
  readonly aead?: AesGcm;
}

/** Options of {@link parseKeyring}. */
export interface ParseKeyringOptions {
  /** The passphrase of a protected file. Required unless `protection` is `'none'`. */
  readonly passphrase?: string | Uint8Array;
  /**
   * `'none'` accepts a file whose master keys are stored in clear; without it
   * (and without a passphrase) nothing is read. A protected file is refused
   * when it is given, and an unprotected file when a passphrase is.
   */
  readonly protection?: 'passphrase' | 'none';
  /**
   * Refuse a file whose generation (SPEC.md §7) is lower: a file replaced by
   * an older copy of itself. Pin the `generation` of the keyring after each
   * save somewhere the file's attacker cannot roll back.
   */
  readonly minGeneration?: number;
  /** AES-GCM backend of the returned keyring and of the file seal. */
  readonly aead?: AesGcm;
}

/** The protection the options ask for: a passphrase, or the explicit `'none'`. @throws InvalidParameterError */
function chooseProtection(passphrase: unknown, protection: unknown, what: string): 'passphrase' | 'none' {
  if (protection !== undefined && protection !== 'passphrase' && protection !== 'none') {
    throw new InvalidParameterError(`${what}: "protection" must be 'passphrase' or 'none'`);
  }
  if (protection === 'none') {
    if (passphrase !== undefined) throw new InvalidParameterError(`${what}: give either "passphrase" or protection: 'none', not both`);
    return 'none';
  }
  if (passphrase === undefined) {
    throw new InvalidParameterError(
      `${what}: "passphrase" is missing; give a passphrase, or protection: 'none' for a file that holds the master keys in clear`,
    );
  }
  return 'passphrase';
}

function checkParseOptions(opts: { [K in 'passphrase' | 'protection' | 'minGeneration' | 'aead']?: unknown }) {
  const kind = chooseProtection(opts.passphrase, opts.protection, 'parseKeyring');
  const aead = opts.aead ?? defaultAesGcm;
  if (!isAesGcm(aead)) throw new InvalidParameterError('"aead" must be an AesGcm backend');
  const minGeneration = opts.minGeneration ?? 0;
  if (!isGeneration(minGeneration)) throw new InvalidParameterError('"minGeneration" must be an integer from 0 to 2^53 - 1');
  if (kind === 'passphrase') wipe(passphraseBytes(opts.passphrase)); // checked before any work
  return { kind, aead, minGeneration };
}

/** Internal: check {@link ParseKeyringOptions} without reading anything. @throws InvalidParameterError */
export function _checkParseOptions(options: ParseKeyringOptions): void {
  checkParseOptions(readOptions(options, ['passphrase', 'protection', 'minGeneration', 'aead'], 'loadKeyring options'));
}

/** Internal: check {@link SerializeKeyringOptions} without serializing anything. @throws InvalidParameterError */
export function _checkSerializeOptions(options: SerializeKeyringOptions): void {
  const opts = readOptions(options, ['passphrase', 'protection', 'scrypt', 'aead'], 'serializeKeyring options');
  const kind = chooseProtection(opts.passphrase, opts.protection, 'saveKeyring');
  if (opts.aead !== undefined && !isAesGcm(opts.aead)) throw new InvalidParameterError('"aead" must be an AesGcm backend');
  if (opts.scrypt !== undefined && opts.scrypt !== null) {
    if (kind === 'none') throw new InvalidParameterError(`"scrypt" has no meaning with protection: 'none'`);
    const { N, r, p } = readOptions(opts.scrypt, ['N', 'r', 'p'], '"scrypt"');
    checkScrypt({ N, r, p } as ScryptParams, (m) => new InvalidParameterError(m));
  }
  if (kind === 'passphrase') wipe(passphraseBytes(opts.passphrase));
}

/** Internal: {@link serializeKeyring} writing the given generation, without updating the keyring's. */
export async function _serializeKeyring(keyring: LocalKeyring, options: SerializeKeyringOptions, generation: number | undefined): Promise<{ text: string; generation: number }> {
  const opts = readOptions(options, ['passphrase', 'protection', 'scrypt', 'aead'], 'serializeKeyring options');
  const kind = chooseProtection(opts.passphrase, opts.protection, 'serializeKeyring');
  const aead = opts.aead ?? defaultAesGcm;
  if (!isAesGcm(aead)) throw new InvalidParameterError('"aead" must be an AesGcm backend');
  let scrypt: ScryptParams = DEFAULT_SCRYPT;
  if (opts.scrypt !== undefined && opts.scrypt !== null) {
    if (kind === 'none') throw new InvalidParameterError(`"scrypt" has no meaning with protection: 'none'`);
    const { N, r, p } = readOptions(opts.scrypt, ['N', 'r', 'p'], '"scrypt"');
    scrypt = { N, r, p } as ScryptParams;
    checkScrypt(scrypt, (m) => new InvalidParameterError(m));
  }
  let pass: Uint8Array | undefined;
  if (kind === 'passphrase') pass = passphraseBytes(opts.passphrase);
  let state: KeyringState;
  try {
    if (!(keyring instanceof LocalKeyring)) throw new InvalidParameterError('"keyring" must be a LocalKeyring');
    state = keyring.exportState();
  } catch (e) {
    wipe(pass);
    if (e instanceof InvalidParameterError) throw e;
    // instanceof and exportState throw on proxies
    throw new InvalidParameterError('"keyring" must be a LocalKeyring', { cause: e });
  }
  const gen = generation ?? (state.generation ?? 0) + 1;
  const material = concatBytes(...state.keys.flatMap((k) => k.versions.map((v) => v.material)));
  for (const k of state.keys) for (const v of k.versions) wipe(v.material);
  let fileKey: Uint8Array | undefined;
  try {
    if (!isGeneration(gen)) throw new InvalidParameterError('the keyring generation is exhausted');
    let protection: Protection = { kind: 'none' };
    if (pass) {
      const params = scrypt;
      const salt = randomBytes(16);
      const nonce = randomBytes(12);
      protection = { kind: 'scrypt', N: params.N, r: params.r, p: params.p, salt: base64Encode(salt), nonce: base64Encode(nonce) };
      fileKey = await deriveFileKey(pass, salt, params);
    }
    const meta = {
      format: KEYRING_FORMAT as typeof KEYRING_FORMAT,
      version: KEYRING_VERSION as typeof KEYRING_VERSION,
      generation: gen,
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
    const text = JSON.stringify(out, null, 2) + '\n';
    if (utf8Length(text) > MAX_KEYRING_TEXT_BYTES) {
      throw new InvalidParameterError(`this keyring is too large for a keyring file (more than ${MAX_KEYRING_TEXT_BYTES} bytes)`);
    }
    return { text, generation: gen };
  } finally {
    wipe(material, pass, fileKey);
  }
}

/**
 * Serialize a keyring to the keyring-file JSON text (SPEC.md §7), with the
 * next generation (`keyring.generation + 1`, which the keyring then reports).
 * @param options - `passphrase`, or `protection: 'none'` to store the master keys in clear; `scrypt` cost.
 * @throws InvalidParameterError for bad options, a missing passphrase without `protection: 'none'`,
 *   or a keyring too large for a file.
 */
export async function serializeKeyring(keyring: LocalKeyring, options: SerializeKeyringOptions = {}): Promise<string> {
  const { text, generation } = await _serializeKeyring(keyring, options, undefined);
  _setKeyringGeneration(keyring, generation);
  return text;
}

/**
 * Parse keyring-file JSON text into a {@link LocalKeyring}.
 * @param options - `passphrase`, or `protection: 'none'` for an unprotected file; `minGeneration`.
 * @throws KeyringFileError when the text is not a keyring file, is too large, corrupt or tampered,
 *   older than `minGeneration`, or the passphrase is wrong (these cannot be told apart);
 *   InvalidParameterError for bad options, or no passphrase for a protected file.
 */
export async function parseKeyring(text: string, options: ParseKeyringOptions = {}): Promise<LocalKeyring> {
  if (typeof text !== 'string') throw new InvalidParameterError('keyring text must be a string');
  const opts = readOptions(options, ['passphrase', 'protection', 'minGeneration', 'aead'], 'parseKeyring options');
  const { kind, aead, minGeneration } = checkParseOptions(opts);
  const json = parseBoundedJson(text);
  if (json && typeof json === 'object' && (json as { format?: unknown }).format === KEYRING_FORMAT) {
    const v = (json as { version?: unknown }).version;
    if (typeof v === 'number' && v !== KEYRING_VERSION) throw new KeyringFileError(`unsupported keyring file version ${v}`);
    // Alias names become property names: refuse __proto__ and anything else that is not an alias before the reader copies them.
    const aliases = (json as { aliases?: unknown }).aliases;
    if (aliases && typeof aliases === 'object' && !Array.isArray(aliases)) {
      const names = Object.keys(aliases);
      if (names.length > KEYRING_LIMITS.maxAliases) throw new KeyringFileError('keyring file is malformed: too many aliases');
      for (const a of names) {
        try {
          checkAlias(a);
        } catch {
          throw new KeyringFileError('keyring file is malformed: an alias name is not a valid alias');
        }
      }
    }
  }
  const f = readFile(json);
  // Either mismatch of file and options is the file's fault: it may have been swapped.
  if (f.protection.kind === 'scrypt' && kind === 'none') {
    throw new KeyringFileError(`keyring file is passphrase-protected, but protection: 'none' was given`);
  }
  const metaBytes = canonicalMetadata(f);
  const totalVersions = f.keys.reduce((n, k) => n + k.versions.length, 0);
  if (totalVersions > KEYRING_LIMITS.maxTotalVersions) throw new KeyringFileError('keyring file is malformed: too many key versions');
  let material: Uint8Array | undefined;
  let pass: Uint8Array | undefined;
  let fileKey: Uint8Array | undefined;
  try {
    const raw = base64Decode(f.material);
    if (!raw) throw new KeyringFileError('keyring file is malformed: material is not canonical base64');
    if (f.protection.kind === 'scrypt') {
      if (f.checksum !== undefined) {
        wipe(raw);
        throw new KeyringFileError('keyring file is malformed: unexpected checksum');
      }
      try {
        checkScrypt(f.protection, (m) => new KeyringFileError(`keyring file is malformed: ${m}`));
      } catch (e) {
        wipe(raw);
        throw e;
      }
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
      if (kind === 'passphrase') {
        throw new KeyringFileError('keyring file is not passphrase-protected, but a passphrase was given');
      }
      const sum = f.checksum === undefined ? undefined : base64Decode(f.checksum);
      if (!sum || !constantTimeEqual(sum, checksum(metaBytes, material))) {
        throw new KeyringFileError('keyring file is corrupt or tampered (checksum mismatch)');
      }
    }
    if (material.length !== totalVersions * MASTER_KEY_BYTES) throw new KeyringFileError('keyring file is malformed: material length');
    // After authentication: the generation is part of the sealed metadata.
    if (f.generation < minGeneration) {
      throw new KeyringFileError(`keyring file is older than required: generation ${f.generation}, at least ${minGeneration} required`);
    }
    let o = 0;
    const m = material;
    const aliases: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const a of Object.keys(f.aliases)) aliases[a] = f.aliases[a]!;
    const state: KeyringState = {
      keys: f.keys.map((k) => ({
        ...k,
        versions: k.versions.map((v) => ({ ...v, material: m.subarray(o, (o += MASTER_KEY_BYTES)) })),
      })),
      aliases,
      generation: f.generation,
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
