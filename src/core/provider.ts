/**
 * The key-provider contract: what the envelope layer asks of a key management
 * service. It mirrors the KMS operations `GenerateDataKey` and `Decrypt`.
 *
 * ## What a provider must do
 * - `generateDataKey` returns a fresh random data key twice: in plaintext and
 *   encrypted under the master key (`ciphertextBlob`). The answer's `keyId` is
 *   the resolved key id, never an alias.
 * - `decrypt` takes only the blob and the encryption context: the blob names
 *   its own key. It must fail unless the context equals (as a map; order does
 *   not matter) the one given to `generateDataKey`. Its answer MUST name the
 *   master key that unwrapped the blob (`keyId`, a resolved id, never an
 *   alias): the envelope layer reports that id from `decrypt`, checks it
 *   against the caller's `keyIds`, and treats an answer without a valid one as
 *   a {@link ProviderError}.
 * - The envelope layer gives every call the envelope's context plus the
 *   reserved entry `"ek:purpose": "envelope-kit/v1/data-key"` (SPEC.md §3.2.1),
 *   so that a blob made for any other purpose under the same master key never
 *   unwraps for an envelope. A provider MUST accept reserved `ek:` keys (up to
 *   4 besides the 64 ordinary entries) and bind them like any other entry.
 * - `providerId` and the two methods are read once per call of the envelope
 *   layer, which uses only what it read.
 * - Bad parameters (see {@link GenerateDataKeyRequest}) are rejected with
 *   {@link InvalidParameterError} before any work is done.
 * - Errors are the library's own: {@link KeyNotFoundError} (unknown key id or
 *   alias), {@link KeyDisabledError} (disabled or pending deletion),
 *   {@link DecryptionFailedError} (a blob that is not the provider's, was
 *   altered, or was bound to another context: one fixed message, whatever the
 *   cause), {@link ProviderError} for anything else. A provider never puts key
 *   material in an error.
 * - Ownership: the `plaintext` a provider returns belongs to the caller, who
 *   wipes it when done. A provider must not keep a reference it relies on.
 * - A fresh data key per call is the norm. A provider that hands out one data
 *   key more than once (a cache, `withDataKeyCache`) marks those answers
 *   `reused: true` (SPEC.md §9.2).
 * - Failures worth retrying later (throttling, a 5xx, the network) may say so
 *   with `retryable: true` on the error (see {@link ProviderError}); a cache's
 *   `staleIfError` window acts only on those.
 *
 * ## Optional operations (several recipients, re-wrapping)
 * - `encrypt` wraps bytes the caller gives (a data key another recipient
 *   generated) under a master key, bound to the context like a
 *   `generateDataKey` blob: `decrypt` with an equal context returns them.
 *   Without it, a provider can only be the first recipient of an envelope.
 * - `reEncrypt` moves a blob to another master key (or to the newest version
 *   of the same one) inside the provider: the data key never reaches the
 *   caller. It must decrypt the blob with `sourceEncryptionContext` exactly as
 *   `decrypt` would (same errors), then wrap under `destinationKeyId` bound to
 *   `destinationEncryptionContext`. Without it, re-wrapping unwraps and wraps
 *   again in the caller's memory.
 * - `describeBlob` reads what a blob says about itself (its master key and
 *   key version) without a network call or a secret, or returns `undefined`
 *   when the blob is opaque. It never throws for a blob it cannot read.
 * - Answers may carry `keyVersion`: an opaque string naming the master-key
 *   version that wrapped the blob, where the provider exposes one.
 * @module
 */
import { type CheckedContext, type EncryptionContext, checkContext } from './context.js';
import { InvalidParameterError, ProviderError } from './errors.js';
import { isBytes, isWellFormed, utf8Length } from '../internal/bytes.js';

/** Key specs a data key may be requested with. */
export type KeySpec = 'AES_256' | 'AES_128';

/** Bytes in a data key of each spec. */
export const KEY_SPEC_BYTES: Readonly<Record<KeySpec, number>> = Object.freeze({ AES_256: 32, AES_128: 16 });

/** Parameters of {@link KeyProvider.generateDataKey}. */
export interface GenerateDataKeyRequest {
  /** A key id, or an alias (`alias/...`). */
  readonly keyId: string;
  /** `AES_256` (default, 32 bytes) or `AES_128` (16 bytes). Ignored when `numberOfBytes` is given. */
  readonly keySpec?: KeySpec;
  /** Integer 1..1024. Wins over `keySpec` when both are given. */
  readonly numberOfBytes?: number;
  /** String-to-string map bound to the blob; `decrypt` must be given an equal map. */
  readonly encryptionContext?: EncryptionContext;
  /**
   * How many plaintext bytes the data key will seal, when the caller knows. A hint for a data-key
   * cache (which counts bytes per key); a KMS provider ignores it and never sends it.
   */
  readonly plaintextLength?: number;
}

/** Answer of {@link KeyProvider.generateDataKey}. */
export interface DataKey {
  /** The resolved key id (never an alias). */
  readonly keyId: string;
  /** The data key in plaintext. The caller owns it and wipes it. */
  readonly plaintext: Uint8Array;
  /** The data key encrypted under the master key; identifies its own key. */
  readonly ciphertextBlob: Uint8Array;
  /**
   * True when this data key may seal more than one envelope (a data-key cache's answer). The
   * envelope layer then draws every message id straight from the CSPRNG (SPEC.md §9.2). A provider
   * that ever returns one data key twice MUST set it.
   */
  readonly reused?: boolean;
  /** The master-key version that wrapped the blob, where the provider exposes one. */
  readonly keyVersion?: string;
}

/** Parameters of {@link KeyProvider.decrypt}. */
export interface DecryptRequest {
  /** A blob from this provider's `generateDataKey`. */
  readonly ciphertextBlob: Uint8Array;
  /** Must equal the context the blob was made with. */
  readonly encryptionContext?: EncryptionContext;
}

/** Answer of {@link KeyProvider.decrypt}. */
export interface DecryptedDataKey {
  /**
   * The id of the master key that unwrapped the blob (resolved, never an alias; 1..2048 UTF-8 bytes).
   * Required: it is the key id `decrypt` reports and the one `keyIds` is checked against.
   */
  readonly keyId: string;
  /** The data key in plaintext. The caller owns it and wipes it. */
  readonly plaintext: Uint8Array;
  /** The master-key version that had wrapped the blob, where the provider exposes one. */
  readonly keyVersion?: string;
}

/** Parameters of {@link KeyProvider.encrypt}. */
export interface EncryptRequest {
  /** A key id, or an alias (`alias/...`). */
  readonly keyId: string;
  /** The bytes to wrap (a data key: 1..1024 bytes; a provider may accept more). Not kept by the provider. */
  readonly plaintext: Uint8Array;
  /** String-to-string map bound to the blob; `decrypt` must be given an equal map. */
  readonly encryptionContext?: EncryptionContext;
}

/** Answer of {@link KeyProvider.encrypt} and {@link KeyProvider.reEncrypt}. */
export interface WrappedKey {
  /** The resolved id of the master key that wrapped the blob (never an alias). */
  readonly keyId: string;
  /** The bytes wrapped under that master key; identifies its own key. */
  readonly ciphertextBlob: Uint8Array;
  /** The master-key version that wrapped the blob, where the provider exposes one. */
  readonly keyVersion?: string;
}

/** Parameters of {@link KeyProvider.reEncrypt}. */
export interface ReEncryptRequest {
  /** A blob of this provider's. */
  readonly ciphertextBlob: Uint8Array;
  /** The context the blob is bound to. */
  readonly sourceEncryptionContext?: EncryptionContext;
  /** The master key (id or alias) to wrap under; the blob's own key id moves it to that key's newest version. */
  readonly destinationKeyId: string;
  /** The context the new blob is bound to. */
  readonly destinationEncryptionContext?: EncryptionContext;
}

/** What {@link KeyProvider.describeBlob} can tell about a blob without a secret. */
export interface BlobDescription {
  /** The master key the blob names. */
  readonly keyId?: string;
  /** The master-key version the blob names. */
  readonly keyVersion?: string;
}

/**
 * A key management service as the envelope layer sees it.
 * @see the module documentation for the full contract.
 */
export interface KeyProvider {
  /**
   * Stable identifier of the provider kind, stored in every envelope beside the
   * blob (`"local"`, `"alibaba-kms"`, ...). 1..64 bytes of `a-z 0-9 . _ -` (ASCII). The envelope layer
   * reads it once per call.
   */
  readonly providerId: string;
  /**
   * Make a new data key under the master key `keyId`.
   * @throws InvalidParameterError, KeyNotFoundError, KeyDisabledError, ProviderError
   */
  generateDataKey(request: GenerateDataKeyRequest): Promise<DataKey>;
  /**
   * Recover the data key in `ciphertextBlob`.
   * @throws InvalidParameterError, DecryptionFailedError, KeyNotFoundError, KeyDisabledError, ProviderError
   */
  decrypt(request: DecryptRequest): Promise<DecryptedDataKey>;
  /**
   * Optional: wrap given bytes under the master key `keyId`, bound to the context.
   * @throws InvalidParameterError, KeyNotFoundError, KeyDisabledError, ProviderError
   */
  encrypt?(request: EncryptRequest): Promise<WrappedKey>;
  /**
   * Optional: move a blob to another master key (or to the newest version of its own) without the
   * data key leaving the provider.
   * @throws InvalidParameterError, DecryptionFailedError, KeyNotFoundError, KeyDisabledError, ProviderError
   */
  reEncrypt?(request: ReEncryptRequest): Promise<WrappedKey>;
  /** Optional: what a blob says about itself, read locally; `undefined` when it is opaque. Never throws. */
  describeBlob?(blob: Uint8Array): BlobDescription | undefined;
}

/** Limits on what a provider may return or an envelope may hold (SPEC.md §5). */
export const PROVIDER_LIMITS = Object.freeze({
  maxProviderIdBytes: 64,
  maxKeyIdBytes: 2048,
  maxBlobBytes: 4096,
  minNumberOfBytes: 1,
  maxNumberOfBytes: 1024,
});

const PROVIDER_ID_RE = /^[a-z0-9._-]{1,64}$/;

/** True when `id` is a valid provider id. */
export function isProviderId(id: unknown): id is string {
  return typeof id === 'string' && PROVIDER_ID_RE.test(id);
}

/** A checked {@link GenerateDataKeyRequest}. */
export interface CheckedGenerateRequest {
  readonly keyId: string;
  readonly numberOfBytes: number;
  readonly context: CheckedContext;
}

/** Check a key id or alias argument. */
export function checkKeyId(keyId: unknown, what = 'keyId'): string {
  if (typeof keyId !== 'string' || keyId.length === 0) {
    throw new InvalidParameterError(`"${what}" must be a non-empty string`);
  }
  if (!isWellFormed(keyId) || utf8Length(keyId) > PROVIDER_LIMITS.maxKeyIdBytes) {
    throw new InvalidParameterError(`"${what}" must be well-formed and at most ${PROVIDER_LIMITS.maxKeyIdBytes} bytes of UTF-8`);
  }
  return keyId;
}

/** Check `keySpec` alone; `undefined` means AES_256. */
export function checkKeySpec(keySpec: unknown): KeySpec {
  if (keySpec === undefined) return 'AES_256';
  if (keySpec === 'AES_256' || keySpec === 'AES_128') return keySpec;
  throw new InvalidParameterError('"keySpec" must be "AES_256" or "AES_128"');
}

/**
 * Validate a `generateDataKey` request as every provider must: `numberOfBytes`
 * an integer 1..1024 that wins over `keySpec`, `keySpec` one of the two specs,
 * a non-empty key id, a string-to-string context.
 * @throws InvalidParameterError
 */
export function checkGenerateDataKeyRequest(request: unknown): CheckedGenerateRequest {
  if (request === null || typeof request !== 'object') {
    throw new InvalidParameterError('generateDataKey expects a request object');
  }
  const r = request as Record<string, unknown>;
  let keyId: unknown, keySpec: unknown, numberOfBytes: unknown, encryptionContext: unknown;
  try {
    ({ keyId, keySpec, numberOfBytes, encryptionContext } = r);
  } catch (e) {
    throw new InvalidParameterError('generateDataKey request could not be read', { cause: e });
  }
  const id = checkKeyId(keyId);
  const spec = checkKeySpec(keySpec);
  let n = KEY_SPEC_BYTES[spec];
  if (numberOfBytes !== undefined) {
    if (
      typeof numberOfBytes !== 'number' ||
      !Number.isInteger(numberOfBytes) ||
      numberOfBytes < PROVIDER_LIMITS.minNumberOfBytes ||
      numberOfBytes > PROVIDER_LIMITS.maxNumberOfBytes
    ) {
      throw new InvalidParameterError('"numberOfBytes" must be an integer from 1 to 1024');
    }
    n = numberOfBytes;
  }
  return { keyId: id, numberOfBytes: n, context: checkContext(encryptionContext) };
}

/**
 * Validate an `encrypt` request: a key id or alias, 1..`maxPlaintextBytes` bytes (default 1024, the
 * data-key limit; a provider passes its service's own limit), a string-to-string context. The
 * plaintext is copied: the caller may wipe theirs at once.
 * @throws InvalidParameterError
 */
export function checkEncryptRequest(
  request: unknown,
  maxPlaintextBytes: number = PROVIDER_LIMITS.maxNumberOfBytes,
): { keyId: string; plaintext: Uint8Array; context: CheckedContext } {
  if (request === null || typeof request !== 'object') {
    throw new InvalidParameterError('encrypt expects a request object');
  }
  let keyId: unknown, plaintext: unknown, encryptionContext: unknown;
  try {
    ({ keyId, plaintext, encryptionContext } = request as Record<string, unknown>);
  } catch (e) {
    throw new InvalidParameterError('encrypt request could not be read', { cause: e });
  }
  const id = checkKeyId(keyId);
  if (!isBytes(plaintext) || plaintext.length === 0 || plaintext.length > maxPlaintextBytes) {
    throw new InvalidParameterError(`"plaintext" must be a Uint8Array of 1 to ${maxPlaintextBytes} bytes`);
  }
  const context = checkContext(encryptionContext);
  return { keyId: id, plaintext: new Uint8Array(plaintext), context };
}

/**
 * Validate a `reEncrypt` request: a blob of 1..`maxBlobBytes` bytes (default 4096), the source
 * context, a destination key id or alias and the destination context.
 * @throws InvalidParameterError
 */
export function checkReEncryptRequest(
  request: unknown,
  maxBlobBytes: number = PROVIDER_LIMITS.maxBlobBytes,
): { blob: Uint8Array; sourceContext: CheckedContext; destinationKeyId: string; destinationContext: CheckedContext } {
  if (request === null || typeof request !== 'object') {
    throw new InvalidParameterError('reEncrypt expects a request object');
  }
  let blob: unknown, src: unknown, dest: unknown, destCtx: unknown;
  try {
    ({ ciphertextBlob: blob, sourceEncryptionContext: src, destinationKeyId: dest, destinationEncryptionContext: destCtx } =
      request as Record<string, unknown>);
  } catch (e) {
    throw new InvalidParameterError('reEncrypt request could not be read', { cause: e });
  }
  if (!isBytes(blob) || blob.length === 0 || blob.length > maxBlobBytes) {
    throw new InvalidParameterError(`"ciphertextBlob" must be a Uint8Array of 1 to ${maxBlobBytes} bytes`);
  }
  const destinationKeyId = checkKeyId(dest, 'destinationKeyId');
  const sourceContext = checkContext(src);
  const destinationContext = checkContext(destCtx);
  return { blob: new Uint8Array(blob), sourceContext, destinationKeyId, destinationContext };
}

/**
 * Validate a `decrypt` request as every provider must: a blob of 1..`maxBlobBytes` bytes (default
 * 4096, the envelope's limit; a provider's direct API may pass its service's own), a context.
 * @throws InvalidParameterError
 */
export function checkDecryptRequest(
  request: unknown,
  maxBlobBytes: number = PROVIDER_LIMITS.maxBlobBytes,
): { blob: Uint8Array; context: CheckedContext } {
  if (request === null || typeof request !== 'object') {
    throw new InvalidParameterError('decrypt expects a request object');
  }
  let blob: unknown, encryptionContext: unknown;
  try {
    ({ ciphertextBlob: blob, encryptionContext } = request as Record<string, unknown>);
  } catch (e) {
    throw new InvalidParameterError('decrypt request could not be read', { cause: e });
  }
  if (!isBytes(blob) || blob.length === 0 || blob.length > maxBlobBytes) {
    throw new InvalidParameterError(`"ciphertextBlob" must be a Uint8Array of 1 to ${maxBlobBytes} bytes`);
  }
  return { blob: new Uint8Array(blob), context: checkContext(encryptionContext) };
}

/**
 * A key id as a provider must answer it: a non-empty, well-formed string of at most 2048 UTF-8 bytes.
 * @internal
 */
export function isAnswerKeyId(id: unknown): id is string {
  return typeof id === 'string' && id.length > 0 && isWellFormed(id) && utf8Length(id) <= PROVIDER_LIMITS.maxKeyIdBytes;
}

/**
 * Read one field of a provider's (untrusted) answer; a throwing getter is the provider's fault.
 * @throws ProviderError when the field cannot be read.
 * @internal
 */
export function readAnswerField(answer: unknown, name: string): unknown {
  try {
    return answer !== null && typeof answer === 'object' ? (answer as Record<string, unknown>)[name] : undefined;
  } catch (e) {
    throw new ProviderError('provider returned an unreadable answer', { cause: e });
  }
}
