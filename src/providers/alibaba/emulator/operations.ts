/**
 * The KMS operations the emulator answers, over a {@link LocalKeyring}:
 * GenerateDataKey, GenerateDataKeyWithoutPlaintext, Decrypt, Encrypt and
 * ReEncrypt (KMS API 2016-01-20), with parameters and answers as the API
 * documents them.
 *
 * - `KeyId` is a key id, an alias (`alias/...`) or an ARN
 *   (`acs:kms:<region>:<account>:key/<id>` or `...:alias/<name>`).
 * - `EncryptionContext` (and `SourceEncryptionContext`,
 *   `DestinationEncryptionContext`) is a JSON object string, or flattened as
 *   `EncryptionContext.<key>=<value>` parameters (the wire style of
 *   `@alicloud/kms20160120@1.2.0`).
 * - `CiphertextBlob` is the local keyring's blob (SPEC.md §6: it records key id
 *   and version), base64. `KeyVersionId` is a UUID-shaped id derived from the key
 *   id and version (the real API returns a UUID).
 * - Errors: unknown key or alias → `Forbidden.KeyNotFound` /
 *   `Forbidden.AliasNotFound` (404); disabled or pending deletion →
 *   `Rejected.Disabled` / `Rejected.PendingDeletion` (409); a bad parameter,
 *   and a blob that does not open (tampered, other context) →
 *   `InvalidParameter` (400); a missing one → `MissingParameter` (400).
 * - `Encrypt` takes up to 6 KiB, as the service; `DryRun=true` runs every check
 *   and answers `DryRunOperation` (400) instead of the work.
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { AesGcm } from '../../../core/aead/types.js';
import { type CheckedContext, checkContext } from '../../../core/context.js';
import { DecryptionFailedError, KeyNotFoundError } from '../../../core/errors.js';
import { base64Decode, base64Encode } from '../../../internal/base64.js';
import { ByteReader, ByteWriter, utf8DecodeStrict, utf8Encode, wipe } from '../../../internal/bytes.js';
import { TAG_LENGTH } from '../../../core/aead/types.js';
import { contextLength, writeContext } from '../../../core/context.js';
import { xaesOpen } from '../../local/xaes.js';
import { randomBytes } from '../../../internal/random.js';
import { BLOB_NONCE_LENGTH, LOCAL_BLOB_FORMAT, LOCAL_KEY_ID_RE, MAX_KEY_VERSION, parseLocalBlob, wrapDataKey } from '../../local/blob.js';
import type { LocalKeyring } from '../../local/keyring.js';
import { KEY_SPEC_BYTES, type KeySpec } from '../../../core/provider.js';
import { toHex } from '../encoding.js';
import { KmsApiError, kmsErrors } from './kms-error.js';

/** An operation's answer, `RequestId` not yet added. */
export interface OperationResult {
  /** XML root element. */
  readonly root: string;
  /** Members in the order the API documents them. */
  readonly body: Record<string, string>;
}

/** The operations the emulator implements. */
export const EMULATED_ACTIONS = Object.freeze([
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'Decrypt',
  'Encrypt',
  'ReEncrypt',
] as const);

/** Largest `Plaintext` the emulator's Encrypt takes: 6 KiB, as the service. */
export const EMULATOR_MAX_ENCRYPT_BYTES = 6144;

/**
 * `DryRun=true`: the service checks the request (parameters, key, permissions) and answers the
 * error `DryRunOperation` instead of doing the work; the emulator does the same.
 */
function checkDryRun(params: ReadonlyMap<string, string>): void {
  const v = params.get('DryRun');
  if (v === undefined || v === 'false') return;
  if (v !== 'true') throw kmsErrors.invalidParameter('DryRun');
  throw kmsErrors.dryRun();
}

/**
 * Parse a blob as the local keyring lays it out (SPEC.md §6) but with up to
 * {@link EMULATOR_MAX_ENCRYPT_BYTES} sealed bytes, as an `Encrypt` blob may hold.
 */
function readEmulatorBlob(blob: Uint8Array): { keyId: string; version: number; prefix: Uint8Array; nonce: Uint8Array; sealed: Uint8Array } {
  const fail = () => kmsErrors.invalidParameter('CiphertextBlob');
  const r = new ByteReader(blob, fail);
  if (r.u8('format') !== LOCAL_BLOB_FORMAT) throw fail();
  const keyId = utf8DecodeStrict(r.lenBytes('key id', 64, 1));
  if (keyId === undefined || !LOCAL_KEY_ID_RE.test(keyId)) throw fail();
  const version = r.len('version', MAX_KEY_VERSION, 1);
  const prefix = blob.subarray(0, r.pos);
  const nonce = r.take(BLOB_NONCE_LENGTH, 'nonce');
  const sealed = blob.subarray(r.pos);
  const n = sealed.length - TAG_LENGTH;
  if (n < 1 || n > EMULATOR_MAX_ENCRYPT_BYTES) throw fail();
  return { keyId, version, prefix, nonce, sealed };
}

/**
 * The `KeyVersionId` the emulator reports for a key version: UUID-shaped, derived
 * from SHA-256 of `"envelope-kit/kms-emulator/v1/key-version" || 0x00 || keyId || 0x00 || version`.
 */
export function emulatorKeyVersionId(keyId: string, version: number): string {
  const h = toHex(sha256(utf8Encode(`envelope-kit/kms-emulator/v1/key-version\0${keyId}\0${version}`))).slice(0, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

const ARN_RE = /^acs:kms:[^:]*:[^:]*:(key\/(.+)|(alias\/.+))$/;

function required(params: ReadonlyMap<string, string>, name: string): string {
  const v = params.get(name);
  if (v === undefined || v === '') throw kmsErrors.missingParameter(name);
  return v;
}

/** A context parameter: JSON object string, or flattened `<name>.<key>=<value>` parameters. */
function readContext(params: ReadonlyMap<string, string>, name: string): CheckedContext {
  const json = params.get(name);
  const prefix = `${name}.`;
  const flat = [...params].filter(([k]) => k.startsWith(prefix));
  if (json !== undefined && flat.length > 0) throw kmsErrors.invalidParameter(name);
  let value: unknown;
  if (json !== undefined && json !== '') {
    try {
      value = JSON.parse(json);
    } catch {
      throw kmsErrors.invalidParameter(name);
    }
  } else if (flat.length > 0) {
    const obj: Record<string, string> = Object.create(null);
    for (const [k, v] of flat) obj[k.slice(prefix.length)] = v;
    value = obj;
  }
  try {
    return checkContext(value, name);
  } catch {
    throw kmsErrors.invalidParameter(name);
  }
}

function decodeBlob(text: string, name: string): Uint8Array {
  const blob = base64Decode(text);
  if (!blob || blob.length === 0) throw kmsErrors.invalidParameter(name);
  return blob;
}

/** The KMS operations over one keyring. */
export class KmsOperations {
  readonly #keyring: LocalKeyring;
  readonly #aead: AesGcm;

  /**
   * @param keyring - the keys the emulator serves.
   * @param aead - AES-GCM backend for Encrypt and ReEncrypt (same bytes as the keyring's).
   */
  constructor(keyring: LocalKeyring, aead: AesGcm) {
    this.#keyring = keyring;
    this.#aead = aead;
  }

  /**
   * Run one operation.
   * @throws KmsApiError for every failure the API reports.
   */
  async run(action: string, params: ReadonlyMap<string, string>): Promise<OperationResult> {
    switch (action) {
      case 'GenerateDataKey':
        return this.#generate(params, true);
      case 'GenerateDataKeyWithoutPlaintext':
        return this.#generate(params, false);
      case 'Decrypt':
        return this.#decrypt(params);
      case 'Encrypt':
        return this.#encrypt(params);
      case 'ReEncrypt':
        return this.#reEncrypt(params);
      default:
        throw kmsErrors.actionNotFound();
    }
  }

  /** Resolve an id, alias or ARN to a usable key id. */
  #usableKey(keyIdParam: string): string {
    const arn = ARN_RE.exec(keyIdParam);
    const ref = arn ? (arn[2] ?? arn[3]!) : keyIdParam;
    const isAlias = ref.startsWith('alias/');
    let keyId: string;
    try {
      keyId = this.#keyring.resolveKeyId(ref);
    } catch (e) {
      if (e instanceof KeyNotFoundError) throw isAlias ? kmsErrors.aliasNotFound() : kmsErrors.keyNotFound();
      throw kmsErrors.invalidParameter('KeyId');
    }
    const state = this.#keyring.describeKey(keyId).state;
    if (state === 'Disabled') throw kmsErrors.disabled();
    if (state === 'PendingDeletion') throw kmsErrors.pendingDeletion();
    return keyId;
  }

  async #generate(params: ReadonlyMap<string, string>, withPlaintext: boolean): Promise<OperationResult> {
    const keyIdParam = required(params, 'KeyId');
    const spec = params.get('KeySpec');
    if (spec !== undefined && spec !== 'AES_256' && spec !== 'AES_128') throw kmsErrors.invalidParameter('KeySpec');
    const nb = params.get('NumberOfBytes');
    let n = KEY_SPEC_BYTES[(spec as KeySpec | undefined) ?? 'AES_256'];
    if (nb !== undefined) {
      if (!/^[1-9]\d{0,3}$/.test(nb) || Number(nb) > 1024) throw kmsErrors.invalidParameter('NumberOfBytes');
      n = Number(nb);
    }
    const context = readContext(params, 'EncryptionContext');
    const keyId = this.#usableKey(keyIdParam);
    checkDryRun(params);
    const dk = await this.#keyring.generateDataKey({ keyId, numberOfBytes: n, encryptionContext: context.map });
    try {
      const version = parseLocalBlob(dk.ciphertextBlob).version;
      const body: Record<string, string> = {
        KeyId: dk.keyId,
        KeyVersionId: emulatorKeyVersionId(dk.keyId, version),
        CiphertextBlob: base64Encode(dk.ciphertextBlob),
      };
      if (withPlaintext) body['Plaintext'] = base64Encode(dk.plaintext);
      return { root: withPlaintext ? 'GenerateDataKeyResponse' : 'GenerateDataKeyWithoutPlaintextResponse', body };
    } finally {
      wipe(dk.plaintext);
    }
  }

  /** Open a blob: its key must exist and be usable, and the context must match. Caller wipes `plaintext`. */
  async #open(
    blobText: string,
    context: CheckedContext,
    params: ReadonlyMap<string, string>,
  ): Promise<{ keyId: string; version: number; plaintext: Uint8Array }> {
    const blob = decodeBlob(blobText, 'CiphertextBlob');
    const header = readEmulatorBlob(blob);
    const keyId = this.#usableKey(header.keyId);
    checkDryRun(params);
    if (header.sealed.length - TAG_LENGTH > 1024) return { keyId, version: header.version, plaintext: this.#openLarge(header, context) };
    try {
      const r = await this.#keyring.decrypt({ ciphertextBlob: blob, encryptionContext: context.map });
      return { keyId, version: header.version, plaintext: r.plaintext };
    } catch (e) {
      if (e instanceof DecryptionFailedError) throw kmsErrors.invalidParameter('CiphertextBlob');
      if (e instanceof KmsApiError) throw e;
      throw kmsErrors.internalFailure();
    }
  }

  async #decrypt(params: ReadonlyMap<string, string>): Promise<OperationResult> {
    const blobText = required(params, 'CiphertextBlob');
    const context = readContext(params, 'EncryptionContext');
    const { keyId, version, plaintext } = await this.#open(blobText, context, params);
    try {
      return {
        root: 'DecryptResponse',
        body: { KeyId: keyId, KeyVersionId: emulatorKeyVersionId(keyId, version), Plaintext: base64Encode(plaintext) },
      };
    } finally {
      wipe(plaintext);
    }
  }

  /**
   * Open a blob holding more than a data key's 1024 bytes (from `Encrypt`): XAES-256-GCM under the
   * version the blob names, the prefix and the context as associated data, as the keyring opens its
   * own (SPEC.md §6). Caller wipes the result.
   */
  #openLarge(header: ReturnType<typeof readEmulatorBlob>, context: CheckedContext): Uint8Array {
    const state = this.#keyring.exportState();
    try {
      const v = state.keys.find((x) => x.keyId === header.keyId)?.versions.find((x) => x.version === header.version);
      if (!v) throw kmsErrors.invalidParameter('CiphertextBlob');
      const aad = new Uint8Array(header.prefix.length + contextLength(context));
      aad.set(header.prefix, 0);
      const tail = aad.subarray(header.prefix.length);
      const w = new ByteWriter(tail);
      writeContext(w, context);
      w.expectFull(tail);
      const out = new Uint8Array(header.sealed.length - TAG_LENGTH);
      if (!xaesOpen(this.#aead, v.material, header.nonce, aad, header.sealed, out)) {
        wipe(out);
        throw kmsErrors.invalidParameter('CiphertextBlob');
      }
      return out;
    } finally {
      for (const k of state.keys) for (const v of k.versions) wipe(v.material);
    }
  }

  /** Wrap bytes under a key's current version. */
  #wrap(keyId: string, plaintext: Uint8Array, context: CheckedContext): { blob: Uint8Array; version: number } {
    // The keyring keeps material private; exportState hands out copies, wiped below.
    const state = this.#keyring.exportState();
    try {
      const k = state.keys.find((x) => x.keyId === keyId);
      const v = k?.versions[k.versions.length - 1];
      if (!v) throw kmsErrors.keyNotFound();
      return { blob: wrapDataKey(this.#aead, v.material, keyId, v.version, randomBytes(BLOB_NONCE_LENGTH), plaintext, context), version: v.version };
    } finally {
      for (const k of state.keys) for (const v of k.versions) wipe(v.material);
    }
  }

  async #encrypt(params: ReadonlyMap<string, string>): Promise<OperationResult> {
    const keyIdParam = required(params, 'KeyId');
    const plaintext = base64Decode(required(params, 'Plaintext'));
    try {
      if (!plaintext || plaintext.length === 0 || plaintext.length > EMULATOR_MAX_ENCRYPT_BYTES) {
        throw kmsErrors.invalidParameter('Plaintext');
      }
      const context = readContext(params, 'EncryptionContext');
      const keyId = this.#usableKey(keyIdParam);
      checkDryRun(params);
      return this.#wrapAnswer('EncryptResponse', keyId, plaintext, context);
    } finally {
      wipe(plaintext);
    }
  }

  /** Wrap `plaintext` under `keyId` and answer as `Encrypt` and `ReEncrypt` do. */
  #wrapAnswer(root: string, keyId: string, plaintext: Uint8Array, context: CheckedContext): OperationResult {
    const { blob, version } = this.#wrap(keyId, plaintext, context);
    return { root, body: { KeyId: keyId, KeyVersionId: emulatorKeyVersionId(keyId, version), CiphertextBlob: base64Encode(blob) } };
  }

  async #reEncrypt(params: ReadonlyMap<string, string>): Promise<OperationResult> {
    const blobText = required(params, 'CiphertextBlob');
    const destParam = required(params, 'DestinationKeyId');
    const source = readContext(params, 'SourceEncryptionContext');
    const destination = readContext(params, 'DestinationEncryptionContext');
    const destKeyId = this.#usableKey(destParam);
    checkDryRun(params);
    const { plaintext } = await this.#open(blobText, source, params);
    try {
      return this.#wrapAnswer('ReEncryptResponse', destKeyId, plaintext, destination);
    } finally {
      wipe(plaintext);
    }
  }
}
