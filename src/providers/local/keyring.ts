/**
 * The local keyring: master keys held in memory, the embedded default provider.
 * Works with no network. Persist it with `saveKeyring` / `loadKeyring` from
 * `envelope-kit/node`.
 * @module
 */
import { defaultAesGcm } from '#aead-default';
import type { AesGcm } from '../../core/aead/types.js';
import {
  DecryptionFailedError,
  InvalidParameterError,
  KeyDisabledError,
  KeyNotFoundError,
  UnsupportedVersionError,
} from '../../core/errors.js';
import { isBytes, isWellFormed, toHex, utf8Length, wipe } from '../../internal/bytes.js';
import { isAesGcm, readOptions } from '../../internal/options.js';
import { randomBytes, randomPublicBytes } from '../../internal/random.js';
import {
  type DataKey,
  type DecryptedDataKey,
  type DecryptRequest,
  type GenerateDataKeyRequest,
  type BlobDescription,
  type EncryptRequest,
  type KeyProvider,
  type ReEncryptRequest,
  type WrappedKey,
  checkDecryptRequest,
  checkEncryptRequest,
  checkGenerateDataKeyRequest,
  checkReEncryptRequest,
} from '../../core/provider.js';
import type { CheckedContext } from '../../core/context.js';
import { BLOB_NONCE_LENGTH, LOCAL_KEY_ID_RE, MAX_KEY_VERSION, readLocalBlob, unwrapDataKey, wrapDataKey } from './blob.js';
import { type XaesKey, xaesKey } from './xaes.js';

/** Provider id the local keyring writes into envelopes. */
export const LOCAL_PROVIDER_ID = 'local';

/** Length of master key material (AES-256). */
export const MASTER_KEY_BYTES = 32;

/**
 * Limits of a local keyring (SPEC.md §7). Every length is in bytes of UTF-8.
 * The keyring refuses to grow past them, and {@link LocalKeyring.fromState}
 * and the keyring file refuse anything larger before doing any other work.
 */
export const KEYRING_LIMITS = /* @__PURE__ */ Object.freeze({
  /** Keys in one keyring. */
  maxKeys: 10000,
  /** Versions of one key (version numbers are 1..16383). */
  maxVersionsPerKey: MAX_KEY_VERSION,
  /** Versions of all keys together (2 MiB of key material). */
  maxTotalVersions: 65536,
  /** Aliases in one keyring. */
  maxAliases: 10000,
  /** Bytes of an alias, `alias/` included (aliases are ASCII). */
  maxAliasBytes: 255,
  /** Bytes of UTF-8 of a key id (key ids are ASCII). */
  maxKeyIdBytes: 64,
  /** Bytes of UTF-8 of a key's description. */
  maxDescriptionBytes: 8192,
  /** Bytes of UTF-8 of a `createdAt` timestamp. */
  maxCreatedAtBytes: 64,
});

/** Lifecycle state of a master key, as in the KMS API. */
export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';
const KEY_STATES: readonly KeyState[] = ['Enabled', 'Disabled', 'PendingDeletion'];

/** What the keyring tells about a key: never its material. */
export interface KeyInfo {
  readonly keyId: string;
  readonly state: KeyState;
  readonly description: string;
  readonly createdAt: string;
  /** The version new data keys are wrapped under. */
  readonly currentVersion: number;
  /** Every version, oldest first; all of them still decrypt. */
  readonly versions: readonly { readonly version: number; readonly createdAt: string }[];
  /** Aliases that point at this key, sorted. */
  readonly aliases: readonly string[];
}

/** Options of {@link LocalKeyring.createKey}. */
export interface CreateKeyOptions {
  /** An alias to create for the new key (`alias/...`). */
  readonly alias?: string;
  /** Free text kept with the key. Not secret, not encrypted. */
  readonly description?: string;
}

/** Options of the {@link LocalKeyring} constructor. */
export interface LocalKeyringOptions {
  /** AES-GCM backend; defaults to @noble/ciphers (the `envelope-kit/node` keyring uses `node:crypto`). */
  readonly aead?: AesGcm;
  /**
   * The form of the ids `createKey` draws: `'short'` (the default: 6 characters of `a-k m n p-z 2-9`) or
   * `'uuid'` (a random UUID, the form of Alibaba Cloud KMS and AWS KMS key ids; what the emulators use).
   */
  readonly keyIdFormat?: 'short' | 'uuid';
}

interface VersionRecord {
  readonly version: number;
  readonly createdAt: string;
  readonly material: Uint8Array;
}
interface KeyRecord {
  readonly keyId: string;
  state: KeyState;
  readonly description: string;
  readonly createdAt: string;
  readonly versions: VersionRecord[];
}

/** The complete state of a keyring, material included. Used by the keyring file; handle as a secret. */
export interface KeyringState {
  readonly keys: readonly {
    readonly keyId: string;
    readonly state: KeyState;
    readonly description: string;
    readonly createdAt: string;
    readonly versions: readonly { readonly version: number; readonly createdAt: string; readonly material: Uint8Array }[];
  }[];
  readonly aliases: Readonly<Record<string, string>>;
  /** Generation of the keyring file this state was read from or last written to (SPEC.md §7); 0 or absent: none. */
  readonly generation?: number;
}

const ALIAS_RE = /^alias\/[A-Za-z0-9_/-]{1,249}$/;
const KEY_ID_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';

/** A random (version 4) UUID in lower-case hex, as KMS key ids are written. */
function randomUuid(): string {
  const b = randomPublicBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Check an alias name: `alias/` then 1..249 of `A-Z a-z 0-9 _ / -` (255 characters
 * at most in all), not starting with the reserved `alias/acs`.
 * @throws InvalidParameterError
 */
export function checkAlias(alias: unknown): string {
  // The length first: the pattern never runs over a long string.
  if (typeof alias !== 'string' || alias.length > KEYRING_LIMITS.maxAliasBytes || !ALIAS_RE.test(alias)) {
    throw new InvalidParameterError('"alias" must be "alias/" followed by 1 to 249 of A-Z a-z 0-9 _ / -');
  }
  if (alias.startsWith('alias/acs')) throw new InvalidParameterError('aliases starting with "alias/acs" are reserved');
  return alias;
}

function now(): string {
  return new Date().toISOString();
}

/** A well-formed string of at most `max` bytes of UTF-8 (length checked before anything is counted). */
function isBoundedText(s: unknown, max: number): s is string {
  return typeof s === 'string' && s.length <= max && isWellFormed(s) && utf8Length(s) <= max;
}

/** The generation a keyring file may carry: an integer 0..2^53-1. */
export function isGeneration(g: unknown): g is number {
  return typeof g === 'number' && Number.isSafeInteger(g) && g >= 0;
}

let setGeneration: (kr: LocalKeyring, generation: number) => void;
/** Internal (not exported from the package): record the generation of the file a keyring was written to. */
export function _setKeyringGeneration(kr: LocalKeyring, generation: number): void {
  setGeneration(kr, generation);
}
let deletedIds: (kr: LocalKeyring) => ReadonlySet<string>;
/** Internal: key ids whose material this keyring destroyed with `deleteKeyMaterial`. */
export function _deletedKeyIds(kr: LocalKeyring): ReadonlySet<string> {
  return deletedIds(kr);
}

/**
 * An in-memory set of master keys implementing the {@link KeyProvider} contract.
 *
 * Data keys are random and wrapped with XAES-256-GCM (a fresh 24-byte nonce
 * from the CSPRNG for each) under the key's current version, with the
 * canonical encoding of the encryption context as associated data; the blob
 * records key id and version (SPEC.md §6).
 *
 * @example
 * ```ts
 * import { LocalKeyring, encrypt, decrypt } from 'envelope-kit';
 * const keyring = new LocalKeyring();
 * keyring.createKey({ alias: 'alias/users' });
 * const env = await encrypt(new TextEncoder().encode('hi'), { provider: keyring, keyId: 'alias/users' });
 * const { plaintext } = await decrypt(env, { provider: keyring });
 * ```
 */
export class LocalKeyring implements KeyProvider {
  /** Always `"local"`. */
  readonly providerId: string = LOCAL_PROVIDER_ID;
  readonly #keys = new Map<string, KeyRecord>();
  readonly #aliases = new Map<string, string>();
  readonly #deleted = new Set<string>();
  readonly #aead: AesGcm;
  /**
   * Each master key version made ready for XAES-256-GCM (SPEC.md §6: its subkey `K1`, and on Node
   * one AES-256 context under it), made on first use and disposed of with the material.
   */
  readonly #prepared = new Map<Uint8Array, XaesKey>();
  #versionCount = 0;
  #generation = 0;

  static {
    setGeneration = (kr, g) => {
      kr.#generation = g;
    };
    deletedIds = (kr) => kr.#deleted;
  }

  constructor(options: LocalKeyringOptions = {}) {
    const { aead, keyIdFormat } = readOptions(options, ['aead', 'keyIdFormat'], 'LocalKeyring options');
    if (aead !== undefined && !isAesGcm(aead)) throw new InvalidParameterError('"aead" must be an AesGcm backend');
    if (keyIdFormat !== undefined && keyIdFormat !== 'short' && keyIdFormat !== 'uuid') throw new InvalidParameterError('"keyIdFormat" must be "short" or "uuid"');
    this.#aead = aead ?? defaultAesGcm;
    this.#uuidKeyIds = keyIdFormat === 'uuid';
  }

  /** Whether `createKey` draws UUIDs (`keyIdFormat: 'uuid'`). */
  readonly #uuidKeyIds: boolean;

  /**
   * Make a new master key with fresh random material.
   * @returns the new key's description (its id is 6 random characters from a 32-letter alphabet).
   * @throws InvalidParameterError for a bad or taken alias.
   */
  createKey(options: CreateKeyOptions = {}): KeyInfo {
    const { alias, description = '' } = readOptions(options, ['alias', 'description'], 'createKey options');
    if (alias !== undefined) {
      checkAlias(alias);
      if (this.#aliases.has(alias as string)) throw new InvalidParameterError(`alias ${alias} already exists`);
    }
    if (!isBoundedText(description, KEYRING_LIMITS.maxDescriptionBytes)) {
      throw new InvalidParameterError(`"description" must be a well-formed string of at most ${KEYRING_LIMITS.maxDescriptionBytes} bytes of UTF-8`);
    }
    if (this.#keys.size >= KEYRING_LIMITS.maxKeys) throw new InvalidParameterError(`a keyring holds at most ${KEYRING_LIMITS.maxKeys} keys`);
    if (alias !== undefined && this.#aliases.size >= KEYRING_LIMITS.maxAliases) {
      throw new InvalidParameterError(`a keyring holds at most ${KEYRING_LIMITS.maxAliases} aliases`);
    }
    if (this.#versionCount >= KEYRING_LIMITS.maxTotalVersions) {
      throw new InvalidParameterError(`a keyring holds at most ${KEYRING_LIMITS.maxTotalVersions} key versions`);
    }
    let keyId: string;
    do {
      keyId = this.#uuidKeyIds ? randomUuid() : Array.from(randomPublicBytes(6), (b) => KEY_ID_ALPHABET[b & 31]).join('');
    } while (this.#keys.has(keyId));
    const createdAt = now();
    this.#keys.set(keyId, {
      keyId,
      state: 'Enabled',
      description,
      createdAt,
      versions: [{ version: 1, createdAt, material: randomBytes(32) }],
    });
    this.#versionCount++;
    if (alias !== undefined) this.#aliases.set(alias as string, keyId);
    return this.describeKey(keyId);
  }

  /** Resolve a key id or alias to a key id. @throws KeyNotFoundError */
  resolveKeyId(keyIdOrAlias: string): string {
    if (typeof keyIdOrAlias !== 'string') throw new InvalidParameterError('"keyId" must be a string');
    const id = keyIdOrAlias.startsWith('alias/') ? this.#aliases.get(keyIdOrAlias) : keyIdOrAlias;
    if (id === undefined || !this.#keys.has(id)) throw new KeyNotFoundError(`key not found: ${keyIdOrAlias}`);
    return id;
  }

  #record(keyIdOrAlias: string): KeyRecord {
    return this.#keys.get(this.resolveKeyId(keyIdOrAlias))!;
  }

  /** Describe a key (no material). @throws KeyNotFoundError */
  describeKey(keyIdOrAlias: string): KeyInfo {
    const k = this.#record(keyIdOrAlias);
    const aliases = [...this.#aliases].filter(([, id]) => id === k.keyId).map(([a]) => a).sort();
    return Object.freeze({
      keyId: k.keyId,
      state: k.state,
      description: k.description,
      createdAt: k.createdAt,
      currentVersion: k.versions[k.versions.length - 1]!.version,
      versions: Object.freeze(k.versions.map((v) => Object.freeze({ version: v.version, createdAt: v.createdAt }))),
      aliases: Object.freeze(aliases),
    });
  }

  /**
   * Generation of the keyring file this keyring was last read from or written
   * to (SPEC.md §7); 0 for a keyring never saved. Pin it (`minGeneration` of
   * `loadKeyring`) to detect a keyring file replaced by an older copy.
   */
  get generation(): number {
    return this.#generation;
  }

  /** Every key, in creation order. */
  listKeys(): KeyInfo[] {
    return [...this.#keys.keys()].map((id) => this.describeKey(id));
  }

  /** Every alias and the key id it names. */
  listAliases(): { alias: string; keyId: string }[] {
    return [...this.#aliases].map(([alias, keyId]) => ({ alias, keyId })).sort((a, b) => (a.alias < b.alias ? -1 : 1));
  }

  /**
   * Add a version with fresh material. New data keys use it; older versions still decrypt.
   * @returns the new version number.
   */
  rotateKey(keyIdOrAlias: string): number {
    const k = this.#record(keyIdOrAlias);
    const version = k.versions[k.versions.length - 1]!.version + 1;
    if (version > MAX_KEY_VERSION) throw new InvalidParameterError(`key ${k.keyId} has reached ${MAX_KEY_VERSION} versions`);
    if (this.#versionCount >= KEYRING_LIMITS.maxTotalVersions) {
      throw new InvalidParameterError(`a keyring holds at most ${KEYRING_LIMITS.maxTotalVersions} key versions`);
    }
    k.versions.push({ version, createdAt: now(), material: randomBytes(32) });
    this.#versionCount++;
    return version;
  }

  /** Allow the key to be used again. */
  enableKey(keyIdOrAlias: string): void {
    this.#record(keyIdOrAlias).state = 'Enabled';
  }
  /** Refuse every use of the key (generate and decrypt) until it is enabled. */
  disableKey(keyIdOrAlias: string): void {
    this.#record(keyIdOrAlias).state = 'Disabled';
  }
  /** Mark the key pending deletion: refused like a disabled key, and removable with {@link deleteKeyMaterial}. */
  scheduleKeyDeletion(keyIdOrAlias: string): void {
    this.#record(keyIdOrAlias).state = 'PendingDeletion';
  }
  /** Undo {@link scheduleKeyDeletion}; the key comes back disabled, as in the KMS API. */
  cancelKeyDeletion(keyIdOrAlias: string): void {
    const k = this.#record(keyIdOrAlias);
    if (k.state === 'PendingDeletion') k.state = 'Disabled';
  }
  /**
   * Destroy a key pending deletion: its material is wiped and everything it
   * wrapped becomes unreadable. @throws InvalidParameterError unless pending deletion.
   */
  deleteKeyMaterial(keyIdOrAlias: string): void {
    const k = this.#record(keyIdOrAlias);
    if (k.state !== 'PendingDeletion') throw new InvalidParameterError('only a key pending deletion can be deleted');
    for (const v of k.versions) this.#forget(v.material);
    this.#versionCount -= k.versions.length;
    this.#keys.delete(k.keyId);
    this.#deleted.add(k.keyId);
    for (const [a, id] of [...this.#aliases]) if (id === k.keyId) this.#aliases.delete(a);
  }

  /** Point a new alias at a key. @throws InvalidParameterError when the alias exists */
  createAlias(alias: string, keyIdOrAlias: string): void {
    checkAlias(alias);
    if (this.#aliases.has(alias)) throw new InvalidParameterError(`alias ${alias} already exists`);
    if (this.#aliases.size >= KEYRING_LIMITS.maxAliases) throw new InvalidParameterError(`a keyring holds at most ${KEYRING_LIMITS.maxAliases} aliases`);
    this.#aliases.set(alias, this.resolveKeyId(keyIdOrAlias));
  }
  /** Point an existing alias at another key. */
  updateAlias(alias: string, keyIdOrAlias: string): void {
    checkAlias(alias);
    if (!this.#aliases.has(alias)) throw new KeyNotFoundError(`alias not found: ${alias}`);
    this.#aliases.set(alias, this.resolveKeyId(keyIdOrAlias));
  }
  /** Remove an alias (the key stays). */
  deleteAlias(alias: string): void {
    checkAlias(alias);
    if (!this.#aliases.delete(alias)) throw new KeyNotFoundError(`alias not found: ${alias}`);
  }

  #usable(k: KeyRecord): void {
    if (k.state === 'Disabled') throw new KeyDisabledError(`key ${k.keyId} is disabled`);
    if (k.state === 'PendingDeletion') throw new KeyDisabledError(`key ${k.keyId} is pending deletion`);
  }

  /** {@inheritDoc KeyProvider.generateDataKey} */
  async generateDataKey(request: GenerateDataKeyRequest): Promise<DataKey> {
    const req = checkGenerateDataKeyRequest(request);
    const k = this.#record(req.keyId);
    this.#usable(k);
    const v = k.versions[k.versions.length - 1]!;
    // SPEC.md §6, §9.2: the data key and the blob nonce come straight from the CSPRNG, never from
    // the public pool: one direct call for this blob draws both (the nonce after the key), which
    // costs half of two calls; nothing drawn waits in memory for a later blob. The key is moved
    // into an array of its own (the caller owns it whole) and its bytes in the draw are zeroed.
    const n = req.numberOfBytes;
    const drawn = randomBytes(n + BLOB_NONCE_LENGTH);
    const plaintext = drawn.slice(0, n);
    drawn.fill(0, 0, n);
    try {
      const ciphertextBlob = wrapDataKey(this.#aead, v.material, k.keyId, v.version, drawn.subarray(n), plaintext, req.context, this.#xaesKey(v.material));
      return { keyId: k.keyId, plaintext, ciphertextBlob, keyVersion: String(v.version) };
    } catch (e) {
      wipe(plaintext);
      throw e;
    }
  }

  /** Wrap `plaintext` under the newest version of a usable key; the caller keeps (and wipes) `plaintext`. */
  #wrap(keyIdOrAlias: string, plaintext: Uint8Array, context: CheckedContext): WrappedKey {
    const k = this.#record(keyIdOrAlias);
    this.#usable(k);
    const v = k.versions[k.versions.length - 1]!;
    const nonce = randomBytes(BLOB_NONCE_LENGTH);
    const ciphertextBlob = wrapDataKey(this.#aead, v.material, k.keyId, v.version, nonce, plaintext, context, this.#xaesKey(v.material));
    return { keyId: k.keyId, ciphertextBlob, keyVersion: String(v.version) };
  }

  /**
   * Wrap given bytes (1..1024) under the newest version of `keyId`, bound to the context, as
   * `generateDataKey` wraps the keys it draws (SPEC.md §6).
   * {@inheritDoc KeyProvider.encrypt}
   */
  async encrypt(request: EncryptRequest): Promise<WrappedKey> {
    const req = checkEncryptRequest(request);
    try {
      return this.#wrap(req.keyId, req.plaintext, req.context);
    } finally {
      wipe(req.plaintext);
    }
  }

  /**
   * Unwrap a blob as `decrypt` does (same checks, same errors), and wrap its data key under the newest
   * version of `destinationKeyId`. The data key never leaves the keyring.
   * {@inheritDoc KeyProvider.reEncrypt}
   */
  async reEncrypt(request: ReEncryptRequest): Promise<WrappedKey> {
    const req = checkReEncryptRequest(request);
    const dataKey = this.#unwrap(req.blob, req.sourceContext).plaintext;
    try {
      return this.#wrap(req.destinationKeyId, dataKey, req.destinationContext);
    } finally {
      wipe(dataKey);
    }
  }

  /** The key id and version a local blob names, read without a key; `undefined` for anything else. */
  describeBlob(blob: Uint8Array): BlobDescription | undefined {
    try {
      if (!isBytes(blob)) return undefined;
      const h = readLocalBlob(new Uint8Array(blob));
      return { keyId: h.keyId, keyVersion: String(h.version) };
    } catch {
      return undefined;
    }
  }

  /** {@inheritDoc KeyProvider.decrypt} */
  async decrypt(request: DecryptRequest): Promise<DecryptedDataKey> {
    // `blob` is the request check's own copy: the header may be views of it.
    const { blob, context } = checkDecryptRequest(request);
    return this.#unwrap(blob, context);
  }

  #unwrap(blob: Uint8Array, context: CheckedContext): DecryptedDataKey {
    let header;
    try {
      header = readLocalBlob(blob);
    } catch (e) {
      if (e instanceof UnsupportedVersionError) throw new DecryptionFailedError({ cause: e });
      throw e;
    }
    const k = this.#keys.get(header.keyId);
    if (!k) throw new KeyNotFoundError(`key not found: ${header.keyId}`);
    this.#usable(k);
    const v = k.versions.find((x) => x.version === header.version);
    if (!v) throw new DecryptionFailedError();
    const plaintext = unwrapDataKey(this.#aead, v.material, header, context, this.#xaesKey(v.material));
    return { keyId: k.keyId, plaintext, keyVersion: String(v.version) };
  }

  /** Every key and alias, material included (copies). For the keyring file; handle as a secret. */
  exportState(): KeyringState {
    return {
      keys: [...this.#keys.values()].map((k) => ({
        keyId: k.keyId,
        state: k.state,
        description: k.description,
        createdAt: k.createdAt,
        versions: k.versions.map((v) => ({ version: v.version, createdAt: v.createdAt, material: v.material.slice() })),
      })),
      aliases: Object.fromEntries(this.#aliases),
      generation: this.#generation,
    };
  }

  /**
   * Build a keyring from a state (as {@link exportState} gives). The material is copied.
   * @throws InvalidParameterError when the state is inconsistent.
   */
  static fromState(state: KeyringState, options: LocalKeyringOptions = {}): LocalKeyring {
    const kr = new this(options);
    try {
      kr.#loadState(state);
    } catch (e) {
      kr.destroy();
      if (e instanceof InvalidParameterError) throw e;
      // A state from outside (wrong types, proxies): never a foreign error.
      throw new InvalidParameterError('keyring state is invalid', { cause: e });
    }
    return kr;
  }

  /**
   * Read an untrusted state once: every field is read a single time into a
   * checked copy, every count and length is bounded before anything is
   * iterated or matched, and aliases must be own data properties.
   */
  #loadState(state: KeyringState): void {
    const L = KEYRING_LIMITS;
    if (state === null || typeof state !== 'object') throw new InvalidParameterError('keyring state must be an object');
    const { keys, aliases, generation = 0 } = state;
    if (!isGeneration(generation)) throw new InvalidParameterError('keyring state has an invalid generation');
    if (!Array.isArray(keys) || keys.length > L.maxKeys) throw new InvalidParameterError(`keyring state must have at most ${L.maxKeys} keys`);
    let total = 0;
    for (let i = 0; i < keys.length; i++) {
      const k: unknown = keys[i];
      if (k === null || typeof k !== 'object') throw new InvalidParameterError('keyring state has an invalid key record');
      const { keyId, state: st, description, createdAt, versions } = k as KeyringState['keys'][number];
      if (!(KEY_STATES as readonly unknown[]).includes(st) || !isBoundedText(description, L.maxDescriptionBytes) || !isBoundedText(createdAt, L.maxCreatedAtBytes)) {
        throw new InvalidParameterError('keyring state has an invalid key record');
      }
      if (typeof keyId !== 'string' || keyId.length > L.maxKeyIdBytes || !LOCAL_KEY_ID_RE.test(keyId) || this.#keys.has(keyId)) {
        throw new InvalidParameterError('keyring state has an invalid or duplicate key id');
      }
      if (!Array.isArray(versions) || versions.length === 0 || versions.length > L.maxVersionsPerKey) {
        throw new InvalidParameterError(`key ${keyId} must have 1 to ${L.maxVersionsPerKey} versions`);
      }
      total += versions.length;
      if (total > L.maxTotalVersions) throw new InvalidParameterError(`keyring state has more than ${L.maxTotalVersions} key versions`);
      const copied: VersionRecord[] = [];
      let prev = 0;
      for (let j = 0; j < versions.length; j++) {
        const raw: unknown = versions[j];
        const { version, createdAt: vCreatedAt, material } = (raw ?? {}) as VersionRecord;
        if (
          !Number.isInteger(version) ||
          version <= prev ||
          version > MAX_KEY_VERSION ||
          !isBoundedText(vCreatedAt, L.maxCreatedAtBytes) ||
          !isBytes(material) ||
          material.length !== MASTER_KEY_BYTES
        ) {
          for (const c of copied) wipe(c.material);
          throw new InvalidParameterError(`key ${keyId} has an invalid version`);
        }
        prev = version;
        copied.push({ version, createdAt: vCreatedAt, material: material.slice() });
      }
      this.#keys.set(keyId, { keyId, state: st, description, createdAt, versions: copied });
      this.#versionCount += copied.length;
    }
    if (aliases === null || typeof aliases !== 'object' || Array.isArray(aliases)) throw new InvalidParameterError('keyring state aliases must be an object');
    const names = Reflect.ownKeys(aliases);
    if (names.length > L.maxAliases) throw new InvalidParameterError(`keyring state must have at most ${L.maxAliases} aliases`);
    for (const name of names) {
      // Only own, enumerable data properties named like an alias: never __proto__, a getter or a symbol.
      const d = typeof name === 'string' ? Object.getOwnPropertyDescriptor(aliases, name) : undefined;
      if (typeof name !== 'string' || !d || !('value' in d) || !d.enumerable) throw new InvalidParameterError('keyring state aliases must be plain data properties');
      checkAlias(name);
      const keyId: unknown = d.value;
      if (typeof keyId !== 'string' || !this.#keys.has(keyId)) throw new InvalidParameterError(`alias ${name} names an unknown key`);
      this.#aliases.set(name, keyId);
    }
    this.#generation = generation;
  }

  /** A version's material made ready for XAES-256-GCM: one AES call per blob, and no cipher set up per blob. */
  #xaesKey(material: Uint8Array): XaesKey {
    let k = this.#prepared.get(material);
    if (k === undefined) {
      k = xaesKey(this.#aead, material);
      this.#prepared.set(material, k);
    }
    return k;
  }

  /** Wipe a version's material, and dispose of what was made from it (its subkey, its AES-256 context). */
  #forget(material: Uint8Array): void {
    const k = this.#prepared.get(material);
    this.#prepared.delete(material);
    wipe(material);
    k?.dispose();
  }

  /** Wipe every key's material. The keyring is unusable afterwards. */
  destroy(): void {
    for (const k of this.#keys.values()) for (const v of k.versions) this.#forget(v.material);
    this.#keys.clear();
    this.#versionCount = 0;
    this.#aliases.clear();
  }

  /** JSON form: metadata only, never material. */
  toJSON(): { providerId: string; keys: KeyInfo[] } {
    return { providerId: this.providerId, keys: this.listKeys() };
  }

  /** What `util.inspect` shows: metadata only. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `LocalKeyring { keys: ${this.#keys.size}, aliases: ${this.#aliases.size} }`;
  }
}
