/**
 * The AWS KMS operations the emulator answers, over a {@link LocalKeyring}:
 * GenerateDataKey, GenerateDataKeyWithoutPlaintext, Decrypt, Encrypt,
 * ReEncrypt, and for tests CreateKey, CreateAlias, DescribeKey, EnableKey and
 * DisableKey, with request and answer members as the AWS KMS API Reference
 * documents them (JSON 1.1, blobs base64).
 *
 * - `KeyId`: a key id, a key ARN (`arn:aws:kms:<region>:<account>:key/<id>`),
 *   an alias name (`alias/…`) or an alias ARN (`…:alias/<name>`). Keys made
 *   with `CreateKey` get a UUID id, or `mrk-` and 32 hex digits with
 *   `MultiRegion: true`; keys made on the keyring directly keep the keyring's id.
 *   Answers name keys by ARN.
 * - `CiphertextBlob`: the local keyring's blob (SPEC.md §6), which records the
 *   key and version; an `Encrypt` of more than 1024 bytes (the local blob's
 *   limit) is sealed with AES-256-GCM under a fresh key that a local blob wraps
 *   (`0xE1 || u16 len || local blob || nonce(12) || ciphertext || tag`, the local
 *   blob as associated data). `KeyMaterialId` is 64 hex digits derived from the
 *   key and version.
 * - Limits as the service: `NumberOfBytes` 1..1024, exactly one of `KeySpec`
 *   and `NumberOfBytes`, `Plaintext` 1..4096 bytes, `CiphertextBlob` 1..6144
 *   bytes, an encryption context of string values, at most 8192 bytes of UTF-8
 *   in all (and within the keyring's own limits).
 * - Errors: unknown key or alias → `NotFoundException`; disabled →
 *   `DisabledException`; pending deletion → `KMSInvalidStateException`; a blob
 *   that does not open (not the emulator's, altered, other context) →
 *   `InvalidCiphertextException`; a blob under another key than the `KeyId` /
 *   `SourceKeyId` given → `IncorrectKeyException`; a bad member →
 *   `ValidationException`. All HTTP 400.
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { AesGcm } from '../../../core/aead/types.js';
import { TAG_LENGTH } from '../../../core/aead/types.js';
import { type CheckedContext, checkContext } from '../../../core/context.js';
import { DecryptionFailedError, KeyNotFoundError, UnsupportedVersionError } from '../../../core/errors.js';
import { base64Decode, base64Encode } from '../../../internal/base64.js';
import { isWellFormed, utf8Encode, utf8Length, wipe } from '../../../internal/bytes.js';
import { randomBytes } from '../../../internal/random.js';
import { parseLocalBlob } from '../../local/blob.js';
import { type KeyInfo, type LocalKeyring, checkAlias } from '../../local/keyring.js';
import { toHex } from '../sigv4.js';
import { AwsApiError, awsErrors } from './errors.js';

/** The operations the emulator implements (`X-Amz-Target: TrentService.<name>`). */
export const AWS_EMULATED_OPERATIONS = Object.freeze([
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'Decrypt',
  'Encrypt',
  'ReEncrypt',
  'CreateKey',
  'CreateAlias',
  'DescribeKey',
  'EnableKey',
  'DisableKey',
] as const);

/** Largest encryption context the emulator takes: 8192 bytes of UTF-8, keys and values together. */
export const AWS_EMULATOR_MAX_CONTEXT_BYTES = 8192;

const BIG_BLOB_FORMAT = 0xe1;
const GCM_NONCE = 12;

/** The `KeyMaterialId` of a key version: hex SHA-256 of `"envelope-kit/aws-kms-emulator/v1/key-material" || 0x00 || keyId || 0x00 || version`. */
export function awsEmulatorKeyMaterialId(keyId: string, version: number): string {
  return toHex(sha256(utf8Encode(`envelope-kit/aws-kms-emulator/v1/key-material\0${keyId}\0${version}`)));
}

type Json = Record<string, unknown>;

function str(body: Json, name: string, required: true): string;
function str(body: Json, name: string, required?: false): string | undefined;
function str(body: Json, name: string, required = false): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) {
    if (required) throw awsErrors.validation(`1 validation error detected: Value null at '${lcFirst(name)}' failed to satisfy constraint: Member must not be null`);
    return undefined;
  }
  if (typeof v !== 'string') throw awsErrors.serialization(`${name} must be a string.`);
  return v;
}

function lcFirst(s: string): string {
  return s[0]!.toLowerCase() + s.slice(1);
}

function keyIdMember(body: Json, name: string, required: true): string;
function keyIdMember(body: Json, name: string, required?: false): string | undefined;
function keyIdMember(body: Json, name: string, required = false): string | undefined {
  const v = required ? str(body, name, true) : str(body, name);
  if (v !== undefined && (v.length < 1 || v.length > 2048)) {
    throw awsErrors.validation(`1 validation error detected: Value at '${lcFirst(name)}' failed to satisfy constraint: Member must have length between 1 and 2048`);
  }
  return v;
}

function blobMember(body: Json, name: string, max: number): Uint8Array {
  const text = str(body, name, true);
  const bytes = base64Decode(text);
  if (!bytes) throw awsErrors.serialization(`${name} is not valid base64.`);
  if (bytes.length < 1 || bytes.length > max) {
    wipe(bytes);
    throw awsErrors.validation(`1 validation error detected: Value at '${lcFirst(name)}' failed to satisfy constraint: Member must have length between 1 and ${max}`);
  }
  return bytes;
}

function contextMember(body: Json, name: string): CheckedContext {
  const v = body[name];
  if (v === undefined || v === null) return checkContext(undefined);
  if (typeof v !== 'object' || Array.isArray(v)) throw awsErrors.serialization(`${name} must be a map.`);
  let total = 0;
  for (const [k, x] of Object.entries(v as Json)) {
    if (typeof x !== 'string') throw awsErrors.serialization(`${name} values must be strings.`);
    if (!isWellFormed(k) || !isWellFormed(x)) throw awsErrors.validation(`${name} is not well-formed Unicode.`);
    total += utf8Length(k) + utf8Length(x);
  }
  if (total > AWS_EMULATOR_MAX_CONTEXT_BYTES) {
    throw awsErrors.validation(`1 validation error detected: Value at '${lcFirst(name)}' failed to satisfy constraint: Encryption context must be at most ${AWS_EMULATOR_MAX_CONTEXT_BYTES} bytes`);
  }
  try {
    return checkContext(v, name);
  } catch (e) {
    throw awsErrors.validation(`${name} is outside the emulator's limits: ${(e as Error).message}`);
  }
}

function algorithmMember(body: Json, name: string): void {
  const a = str(body, name);
  if (a !== undefined && a !== 'SYMMETRIC_DEFAULT') {
    throw awsErrors.validation(`1 validation error detected: Value '${a.slice(0, 64)}' at '${lcFirst(name)}' failed to satisfy constraint: Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]`);
  }
}

/** The keys and answers of one emulated account in one region. */
export class AwsKmsOperations {
  readonly #keyring: LocalKeyring;
  readonly #aead: AesGcm;
  readonly #region: string;
  readonly #account: string;
  /** AWS key id → keyring key id, and back. Keys made on the keyring directly are absent: same id. */
  readonly #toLocal = new Map<string, string>();
  readonly #toAws = new Map<string, string>();
  readonly #multiRegion = new Set<string>();

  /**
   * @param keyring - the keys the emulator serves.
   * @param aead - AES-GCM backend (same bytes as the keyring's) for large Encrypt plaintexts.
   * @param region - the emulated region (part of every ARN).
   * @param account - the emulated account id (part of every ARN).
   */
  constructor(keyring: LocalKeyring, aead: AesGcm, region: string, account: string) {
    this.#keyring = keyring;
    this.#aead = aead;
    this.#region = region;
    this.#account = account;
  }

  /** The ARN of a keyring key. */
  arnOf(localId: string): string {
    return `arn:aws:kms:${this.#region}:${this.#account}:key/${this.#toAws.get(localId) ?? localId}`;
  }

  /**
   * Make a key (with an alias, when given) as `CreateKey` does.
   * @returns its AWS key id and ARN, and the keyring's id.
   */
  createKey(options: { alias?: string; description?: string; multiRegion?: boolean } = {}): { keyId: string; arn: string; localKeyId: string } {
    const info = this.#keyring.createKey({ description: options.description ?? '' });
    const awsId = options.multiRegion ? `mrk-${toHex(randomBytes(16))}` : crypto.randomUUID();
    this.#toLocal.set(awsId, info.keyId);
    this.#toAws.set(info.keyId, awsId);
    if (options.multiRegion) this.#multiRegion.add(info.keyId);
    if (options.alias !== undefined) this.#keyring.createAlias(options.alias, info.keyId);
    return { keyId: awsId, arn: this.arnOf(info.keyId), localKeyId: info.keyId };
  }

  /**
   * Run one operation.
   * @throws AwsApiError for every failure the service reports.
   */
  async run(operation: string, body: Json): Promise<Json> {
    switch (operation) {
      case 'GenerateDataKey':
        return this.#generate(body, true);
      case 'GenerateDataKeyWithoutPlaintext':
        return this.#generate(body, false);
      case 'Decrypt':
        return this.#decrypt(body);
      case 'Encrypt':
        return this.#encrypt(body);
      case 'ReEncrypt':
        return this.#reEncrypt(body);
      case 'CreateKey':
        return this.#createKey(body);
      case 'CreateAlias':
        return this.#createAlias(body);
      case 'DescribeKey':
        return { KeyMetadata: this.#metadata(this.#resolve(keyIdMember(body, 'KeyId', true))) };
      case 'EnableKey':
        this.#keyring.enableKey(this.#resolve(keyIdMember(body, 'KeyId', true)));
        return {};
      case 'DisableKey':
        this.#keyring.disableKey(this.#resolve(keyIdMember(body, 'KeyId', true)));
        return {};
      default:
        throw awsErrors.unknownOperation();
    }
  }

  /** Resolve a key id, key ARN, alias or alias ARN to a keyring key id (any state). */
  #resolve(ref: string): string {
    let r = ref;
    const arn = /^arn:aws:kms:([^:]*):([^:]*):((?:key|alias)\/.+)$/.exec(ref);
    if (arn) {
      if (arn[1] !== this.#region || arn[2] !== this.#account) throw awsErrors.notFound(`Invalid arn ${this.#region}`);
      r = arn[3]!;
      if (r.startsWith('key/')) r = r.slice(4);
    } else if (ref.startsWith('arn:')) {
      throw awsErrors.notFound('Invalid arn');
    }
    const isAlias = r.startsWith('alias/');
    const local = isAlias ? r : (this.#toLocal.get(r) ?? (this.#toAws.has(r) ? undefined : r));
    if (local === undefined) throw awsErrors.notFound(`Key '${this.#arnLike(ref)}' does not exist`);
    try {
      return this.#keyring.resolveKeyId(local);
    } catch (e) {
      if (e instanceof KeyNotFoundError) {
        throw isAlias ? awsErrors.notFound(`Alias ${this.#aliasArn(r)} is not found.`) : awsErrors.notFound(`Key '${this.#arnLike(ref)}' does not exist`);
      }
      throw awsErrors.notFound('Invalid keyId');
    }
  }

  #arnLike(ref: string): string {
    return ref.startsWith('arn:') ? ref : `arn:aws:kms:${this.#region}:${this.#account}:key/${ref}`;
  }

  #aliasArn(alias: string): string {
    return `arn:aws:kms:${this.#region}:${this.#account}:${alias}`;
  }

  /** Resolve and require the key to be usable. */
  #usable(ref: string): string {
    const id = this.#resolve(ref);
    this.#checkState(id);
    return id;
  }

  #checkState(localId: string): void {
    const state = this.#keyring.describeKey(localId).state;
    if (state === 'Disabled') throw awsErrors.disabled(this.arnOf(localId));
    if (state === 'PendingDeletion') throw awsErrors.invalidState(this.arnOf(localId));
  }

  async #generate(body: Json, withPlaintext: boolean): Promise<Json> {
    const keyRef = keyIdMember(body, 'KeyId', true);
    const spec = str(body, 'KeySpec');
    const nb = body['NumberOfBytes'];
    if ((spec === undefined) === (nb === undefined || nb === null)) throw awsErrors.validation('Please specify either number of bytes or key spec.');
    let n: number;
    if (spec !== undefined) {
      if (spec !== 'AES_256' && spec !== 'AES_128') {
        throw awsErrors.validation(`1 validation error detected: Value '${spec.slice(0, 64)}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]`);
      }
      n = spec === 'AES_256' ? 32 : 16;
    } else {
      if (typeof nb !== 'number' || !Number.isInteger(nb)) throw awsErrors.serialization('NumberOfBytes must be an integer.');
      if (nb < 1) throw awsErrors.validation(`1 validation error detected: Value '${nb}' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1`);
      if (nb > 1024) throw awsErrors.validation(`1 validation error detected: Value '${nb}' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024`);
      n = nb;
    }
    const context = contextMember(body, 'EncryptionContext');
    const localId = this.#usable(keyRef);
    const dk = await this.#keyring.generateDataKey({ keyId: localId, numberOfBytes: n, encryptionContext: context.map });
    try {
      const version = parseLocalBlob(dk.ciphertextBlob).version;
      const out: Json = { CiphertextBlob: base64Encode(dk.ciphertextBlob), KeyId: this.arnOf(localId) };
      if (withPlaintext) out['Plaintext'] = base64Encode(dk.plaintext);
      out['KeyMaterialId'] = awsEmulatorKeyMaterialId(localId, version);
      return out;
    } finally {
      wipe(dk.plaintext);
    }
  }

  /** Open a blob, under `expectedRef` when given. Caller wipes `plaintext`. */
  async #open(blob: Uint8Array, context: CheckedContext, expectedRef: string | undefined): Promise<{ localId: string; version: number; plaintext: Uint8Array }> {
    let inner = blob;
    let big: { nonce: Uint8Array; sealed: Uint8Array } | undefined;
    if (blob[0] === BIG_BLOB_FORMAT) {
      const len = blob.length >= 3 ? (blob[1]! << 8) | blob[2]! : -1;
      if (len < 1 || blob.length < 3 + len + GCM_NONCE + TAG_LENGTH + 1) throw awsErrors.invalidCiphertext();
      inner = blob.subarray(3, 3 + len);
      big = { nonce: blob.subarray(3 + len, 3 + len + GCM_NONCE), sealed: blob.subarray(3 + len + GCM_NONCE) };
    }
    let header;
    try {
      header = parseLocalBlob(inner);
    } catch (e) {
      if (e instanceof DecryptionFailedError || e instanceof UnsupportedVersionError) throw awsErrors.invalidCiphertext();
      throw e;
    }
    if (expectedRef !== undefined && this.#resolve(expectedRef) !== header.keyId) throw awsErrors.incorrectKey();
    let localId: string;
    try {
      localId = this.#keyring.resolveKeyId(header.keyId);
    } catch {
      throw awsErrors.invalidCiphertext();
    }
    this.#checkState(localId);
    let key: Uint8Array;
    try {
      key = (await this.#keyring.decrypt({ ciphertextBlob: inner, encryptionContext: context.map })).plaintext;
    } catch (e) {
      if (e instanceof DecryptionFailedError) throw awsErrors.invalidCiphertext();
      throw awsErrors.internal();
    }
    if (!big) return { localId, version: header.version, plaintext: key };
    try {
      const out = new Uint8Array(big.sealed.length - TAG_LENGTH);
      if (key.length !== 32 || !this.#aead.open(key, big.nonce, inner, big.sealed, out)) throw awsErrors.invalidCiphertext();
      return { localId, version: header.version, plaintext: out };
    } finally {
      wipe(key);
    }
  }

  async #decrypt(body: Json): Promise<Json> {
    const blob = blobMember(body, 'CiphertextBlob', 6144);
    const context = contextMember(body, 'EncryptionContext');
    algorithmMember(body, 'EncryptionAlgorithm');
    const keyRef = keyIdMember(body, 'KeyId');
    const { localId, version, plaintext } = await this.#open(blob, context, keyRef);
    try {
      return {
        KeyId: this.arnOf(localId),
        Plaintext: base64Encode(plaintext),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        KeyMaterialId: awsEmulatorKeyMaterialId(localId, version),
      };
    } finally {
      wipe(plaintext);
    }
  }

  /** Wrap bytes under a usable key's current version. */
  async #wrap(localId: string, plaintext: Uint8Array, context: CheckedContext): Promise<{ blob: Uint8Array; version: number }> {
    if (plaintext.length <= 1024) {
      const w = await this.#keyring.encrypt({ keyId: localId, plaintext, encryptionContext: context.map });
      return { blob: w.ciphertextBlob, version: Number(w.keyVersion) };
    }
    const dk = await this.#keyring.generateDataKey({ keyId: localId, numberOfBytes: 32, encryptionContext: context.map });
    try {
      const inner = dk.ciphertextBlob;
      const nonce = randomBytes(GCM_NONCE);
      const out = new Uint8Array(3 + inner.length + GCM_NONCE + plaintext.length + TAG_LENGTH);
      out[0] = BIG_BLOB_FORMAT;
      out[1] = inner.length >> 8;
      out[2] = inner.length & 0xff;
      out.set(inner, 3);
      out.set(nonce, 3 + inner.length);
      this.#aead.seal(dk.plaintext, nonce, inner, plaintext, out.subarray(3 + inner.length + GCM_NONCE));
      return { blob: out, version: Number(dk.keyVersion) };
    } finally {
      wipe(dk.plaintext);
    }
  }

  async #encrypt(body: Json): Promise<Json> {
    const keyRef = keyIdMember(body, 'KeyId', true);
    const plaintext = blobMember(body, 'Plaintext', 4096);
    try {
      const context = contextMember(body, 'EncryptionContext');
      algorithmMember(body, 'EncryptionAlgorithm');
      const localId = this.#usable(keyRef);
      const { blob, version } = await this.#wrap(localId, plaintext, context);
      return {
        CiphertextBlob: base64Encode(blob),
        KeyId: this.arnOf(localId),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        KeyMaterialId: awsEmulatorKeyMaterialId(localId, version),
      };
    } finally {
      wipe(plaintext);
    }
  }

  async #reEncrypt(body: Json): Promise<Json> {
    const blob = blobMember(body, 'CiphertextBlob', 6144);
    const source = contextMember(body, 'SourceEncryptionContext');
    const sourceRef = keyIdMember(body, 'SourceKeyId');
    const destRef = keyIdMember(body, 'DestinationKeyId', true);
    const destination = contextMember(body, 'DestinationEncryptionContext');
    algorithmMember(body, 'SourceEncryptionAlgorithm');
    algorithmMember(body, 'DestinationEncryptionAlgorithm');
    const destId = this.#usable(destRef);
    const opened = await this.#open(blob, source, sourceRef);
    try {
      const { blob: out, version } = await this.#wrap(destId, opened.plaintext, destination);
      return {
        CiphertextBlob: base64Encode(out),
        SourceKeyId: this.arnOf(opened.localId),
        KeyId: this.arnOf(destId),
        SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        SourceKeyMaterialId: awsEmulatorKeyMaterialId(opened.localId, opened.version),
        DestinationKeyMaterialId: awsEmulatorKeyMaterialId(destId, version),
      };
    } finally {
      wipe(opened.plaintext);
    }
  }

  #createKey(body: Json): Json {
    const description = str(body, 'Description') ?? '';
    const usage = str(body, 'KeyUsage');
    const spec = str(body, 'KeySpec') ?? str(body, 'CustomerMasterKeySpec');
    if (usage !== undefined && usage !== 'ENCRYPT_DECRYPT') throw awsErrors.validation('The emulator makes symmetric ENCRYPT_DECRYPT keys only.');
    if (spec !== undefined && spec !== 'SYMMETRIC_DEFAULT') throw awsErrors.validation('The emulator makes SYMMETRIC_DEFAULT keys only.');
    const multi = body['MultiRegion'];
    if (multi !== undefined && typeof multi !== 'boolean') throw awsErrors.serialization('MultiRegion must be a boolean.');
    let made;
    try {
      made = this.createKey({ description, multiRegion: multi === true });
    } catch (e) {
      throw awsErrors.validation((e as Error).message);
    }
    return { KeyMetadata: this.#metadata(made.localKeyId) };
  }

  #createAlias(body: Json): Json {
    const alias = str(body, 'AliasName', true);
    const target = keyIdMember(body, 'TargetKeyId', true);
    if (alias.startsWith('alias/aws/')) throw awsErrors.validation('Alias must not begin with alias/aws/.');
    try {
      checkAlias(alias);
    } catch {
      throw awsErrors.validation(`1 validation error detected: Value '${alias.slice(0, 64)}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$`);
    }
    if (target.startsWith('alias/') || /^arn:[^:]*:kms:[^:]*:[^:]*:alias\//.test(target)) throw awsErrors.validation('TargetKeyId must be a key id or key ARN.');
    const localId = this.#resolve(target);
    if (this.#keyring.listAliases().some((a) => a.alias === alias)) throw awsErrors.alreadyExists(`An alias with the name ${this.#aliasArn(alias)} already exists`);
    this.#keyring.createAlias(alias, localId);
    return {};
  }

  #metadata(localId: string): Json {
    const k: KeyInfo = this.#keyring.describeKey(localId);
    const awsId = this.#toAws.get(localId) ?? localId;
    return {
      AWSAccountId: this.#account,
      KeyId: awsId,
      Arn: this.arnOf(localId),
      CreationDate: Math.floor(Date.parse(k.createdAt) / 1000),
      Enabled: k.state === 'Enabled',
      Description: k.description,
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: k.state,
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      KeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: this.#multiRegion.has(localId),
    };
  }
}

/** True when `e` is an answer the service would give (not a bug of the emulator). */
export function isAwsApiError(e: unknown): e is AwsApiError {
  return e instanceof AwsApiError;
}
