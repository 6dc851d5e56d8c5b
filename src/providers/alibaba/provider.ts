/**
 * The Alibaba Cloud KMS provider: the {@link KeyProvider} contract over the KMS
 * 2016-01-20 API (`GenerateDataKey`, `Decrypt`), its optional operations
 * (`Encrypt`, `ReEncrypt`, `describeBlob`), and `GenerateDataKeyWithoutPlaintext`,
 * with the platform `fetch` and no cloud SDK. Runtime-neutral: no `node:*` import.
 *
 * - Signing: V3 (`ACS3-HMAC-SHA256`, the default) or V1 (`HMAC-SHA1`), see
 *   `signature-v3.ts` and `signature-v1.ts`. Every attempt is signed anew (fresh
 *   nonce and timestamp).
 * - Parameters as the API documents them: `KeyId` (id, alias or ARN),
 *   `KeySpec` or `NumberOfBytes` (whichever the caller gave), `EncryptionContext`
 *   as a JSON string; blobs and plaintexts base64. All of them travel in a
 *   form-encoded POST body, never in the URL.
 * - Limits follow the service: `Encrypt` takes 6 KiB, blobs up to
 *   {@link MAX_CIPHERTEXT_BLOB_BYTES}, contexts up to 8192 characters of JSON.
 * - Errors: `Forbidden.KeyNotFound` / `Forbidden.AliasNotFound` →
 *   {@link KeyNotFoundError}; `Rejected.Disabled` / `Rejected.PendingDeletion` →
 *   {@link KeyDisabledError}; `InvalidParameter` / `MissingParameter` →
 *   {@link InvalidParameterError} (on Decrypt and ReEncrypt an `InvalidParameter`
 *   means the blob or its context was refused, so it is
 *   {@link DecryptionFailedError}); any code containing `Throttling`,
 *   `ServiceUnavailableTemporary`, `InternalFailure`, HTTP 429/5xx without a code,
 *   network errors and timeouts are retried with capped exponential backoff and
 *   full jitter, then thrown as {@link AlibabaKmsError} with the last `RequestId`
 *   and code; a redirect is refused. Each mapped error has an `AlibabaKmsError`
 *   (with the service's `Recommend`) as its `cause`.
 * @module
 */
import type { EncryptionContext } from '../../core/context.js';
import {
  DecryptionFailedError,
  EnvelopeKitError,
  InvalidParameterError,
  KeyDisabledError,
  KeyNotFoundError,
} from '../../core/errors.js';
import { base64Decode, base64Encode } from '../../internal/base64.js';
import { utf8Encode, wipe } from '../../internal/bytes.js';
import { randomBytes } from '../../internal/random.js';
import {
  type BlobDescription,
  type DataKey,
  type DecryptedDataKey,
  type DecryptRequest,
  type GenerateDataKeyRequest,
  type KeyProvider,
  type WrappedKey,
  KEY_SPEC_BYTES,
  checkDecryptRequest,
  checkEncryptRequest,
  checkGenerateDataKeyRequest,
  checkReEncryptRequest,
  readAnswerField,
} from '../../core/provider.js';
import { KMS_CONTEXT_MAX_CHARS, type ServiceContext, checkServiceContext } from './context.js';
import {
  type AlibabaCredentials,
  type AlibabaCredentialsProvider,
  type CredentialsSource,
  checkCredentials,
  resolveCredentials,
} from './credentials.js';
import { type Param, canonicalQuery, isoSeconds, toHex } from './encoding.js';
import { resolveEndpoint } from './endpoint.js';
import {
  type AlibabaKmsErrorDetails,
  AlibabaKmsError,
  INVALID_PARAMETER_CODES,
  KEY_DISABLED_CODES,
  KEY_NOT_FOUND_CODES,
  isRetryableCode,
  sanitizeKmsMessage,
} from './errors.js';
import {
  type AnswerShape,
  type KmsAnswer,
  type TakenSecret,
  AnswerShapeError,
  ResponseTooLargeError,
  decryptResponse,
  encryptResponse,
  generateDataKeyResponse,
  parseErrorBody,
  readAnswer,
  parseJson,
  readBody,
  takeSecretMember,
} from './response.js';
import { type RetryPolicy, abortReason, backoffDelay, sleep } from './retry.js';
import { anySignal } from '../../internal/abort.js';
import { V1_SIGNATURE_METHOD, V1_SIGNATURE_VERSION, v1Signature } from './signature-v1.js';
import { hashPayload, headersToSign, v3Authorization, v3CanonicalRequest, v3Signature } from './signature-v3.js';

// Named in the TSDoc of the methods.
void KMS_CONTEXT_MAX_CHARS;

/** Provider id written into envelopes for data keys from Alibaba Cloud KMS. */
export const ALIBABA_KMS_PROVIDER_ID = 'alibaba-kms';

/** The KMS API version this provider speaks. */
export const KMS_API_VERSION = '2016-01-20';

/** Largest plaintext `Encrypt` accepts (6 KiB, the KMS limit); also the most `Decrypt` may return. */
export const MAX_ENCRYPT_PLAINTEXT_BYTES = 6144;

/**
 * Largest ciphertext blob the provider's direct API sends or accepts: room for a 6 KiB `Encrypt`
 * plaintext and the service's header. Blobs inside an envelope stay within 4096 bytes (SPEC.md §5),
 * which the envelope layer checks.
 */
export const MAX_CIPHERTEXT_BLOB_BYTES = 8192;

/** Which request signature to use. */
export type AlibabaSignatureVersion = 'v3' | 'v1';

/** Options of the {@link AlibabaKmsProvider} constructor. Give `region` or `endpoint`. */
export interface AlibabaKmsProviderOptions {
  /** Region id, e.g. `cn-hangzhou`: requests go to `https://kms.<region>.aliyuncs.com/`. */
  readonly region?: string;
  /**
   * Custom endpoint (wins over `region`): a VPC endpoint, a KMS instance's gateway,
   * or the loopback emulator. `https://host[:port]` or a bare host; `http://` only to
   * a loopback address.
   */
  readonly endpoint?: string;
  /**
   * An AccessKey (optionally with an STS token), or a callback asked before every
   * attempt (for rotating STS credentials). Default: the environment variables
   * `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET`,
   * `ALIBABA_CLOUD_SECURITY_TOKEN`, read at each request.
   */
  readonly credentials?: AlibabaCredentials | AlibabaCredentialsProvider;
  /** `v3` (`ACS3-HMAC-SHA256`, default) or `v1` (`HMAC-SHA1`, the RPC signature). */
  readonly signatureVersion?: AlibabaSignatureVersion;
  /** Attempts per call, the first included: 1..10, default 3. */
  readonly maxAttempts?: number;
  /** Time allowed for each attempt, in ms: 1..600000, default 10000. */
  readonly timeoutMs?: number;
  /** Base of the exponential backoff between attempts, in ms: 0..60000, default 100. */
  readonly retryBaseDelayMs?: number;
  /** Cap on one backoff, in ms: 0..300000, default 2000. */
  readonly retryMaxDelayMs?: number;
  /** Aborts every call made through this provider (e.g. on shutdown). */
  readonly signal?: AbortSignal;
  /** The `fetch` to use; default `globalThis.fetch`. */
  readonly fetch?: typeof fetch;
}

/** Per-call options, accepted beside each request's own fields. */
export interface AlibabaCallOptions {
  /** Aborts this call: pending attempt and backoff. */
  readonly signal?: AbortSignal;
}

/** What the KMS answer adds to every result. */
export interface AlibabaResultMeta {
  /** The key version that wrapped (or unwrapped) the data, as KMS reports it. */
  readonly keyVersionId: string | undefined;
  /** KMS `RequestId`. */
  readonly requestId: string;
}

/** Answer of {@link AlibabaKmsProvider.generateDataKey}. `keyVersion` is the service's `KeyVersionId`. */
export interface AlibabaDataKey extends DataKey, AlibabaResultMeta {}
/** Answer of {@link AlibabaKmsProvider.generateDataKeyWithoutPlaintext}: the blob only. */
export interface AlibabaWrappedDataKey extends WrappedKey, AlibabaResultMeta {}
/** Answer of {@link AlibabaKmsProvider.decrypt}. */
export interface AlibabaDecryptedDataKey extends DecryptedDataKey, AlibabaResultMeta {}

/** Parameters of {@link AlibabaKmsProvider.generateDataKeyWithoutPlaintext}: as `generateDataKey`'s. */
export type AlibabaGenerateDataKeyWithoutPlaintextRequest = GenerateDataKeyRequest & AlibabaCallOptions;

/** Parameters of {@link AlibabaKmsProvider.encrypt}. */
export interface AlibabaEncryptRequest extends AlibabaCallOptions {
  /** Key id, alias (`alias/...`) or ARN. */
  readonly keyId: string;
  /** 1 to 6144 bytes to encrypt (typically a data key). Not modified. */
  readonly plaintext: Uint8Array;
  /** Bound to the ciphertext; Decrypt must be given an equal map. */
  readonly encryptionContext?: EncryptionContext;
}

/** Parameters of {@link AlibabaKmsProvider.reEncrypt}. */
export interface AlibabaReEncryptRequest extends AlibabaCallOptions {
  /** A blob from this provider (GenerateDataKey, Encrypt or ReEncrypt). */
  readonly ciphertextBlob: Uint8Array;
  /** Key id, alias or ARN to wrap under. */
  readonly destinationKeyId: string;
  /** The context the blob was made with. */
  readonly sourceEncryptionContext?: EncryptionContext;
  /** The context to bind the new blob to. */
  readonly destinationEncryptionContext?: EncryptionContext;
}

/** Answer of {@link AlibabaKmsProvider.encrypt} and {@link AlibabaKmsProvider.reEncrypt}. */
export interface AlibabaCiphertext extends WrappedKey, AlibabaResultMeta {
  /** The key that wrapped the blob (resolved id, never an alias). */
  readonly keyId: string;
  /** The new blob. */
  readonly ciphertextBlob: Uint8Array;
}

interface Settings {
  readonly endpoint: URL;
  readonly credentials: CredentialsSource;
  readonly signatureVersion: AlibabaSignatureVersion;
  readonly retry: RetryPolicy;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly fetch: typeof fetch;
}

/** What kind of operation an error mapping is for. */
type OpKind = 'generate' | 'unwrap';

interface CallResult {
  readonly json: unknown;
  readonly secret: TakenSecret | undefined;
  /** Attempts it took. */
  readonly attempts: number;
}

function intOption(value: unknown, name: string, min: number, max: number, dflt: number): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidParameterError(`"${name}" must be an integer from ${min} to ${max}`);
  }
  return value;
}

function isAbortSignal(v: unknown): v is AbortSignal {
  return (
    v !== null &&
    typeof v === 'object' &&
    typeof (v as AbortSignal).aborted === 'boolean' &&
    typeof (v as AbortSignal).addEventListener === 'function'
  );
}

function readCallSignal(request: unknown): AbortSignal | undefined {
  let s: unknown;
  try {
    s = (request as { signal?: unknown } | null)?.signal;
  } catch (e) {
    throw new InvalidParameterError('request could not be read', { cause: e });
  }
  if (s === undefined) return undefined;
  if (!isAbortSignal(s)) throw new InvalidParameterError('"signal" must be an AbortSignal');
  return s;
}

/** `EncryptionContext` as the API takes it: a JSON object, keys in canonical order; omitted when empty. */
function contextParam(name: string, ctx: ServiceContext): Param[] {
  return ctx.json === undefined ? [] : [[name, ctx.json]];
}

/** Read one field of the caller's request (a throwing getter is a bad parameter). */
function requestField(request: unknown, name: string): unknown {
  try {
    return readAnswerField(request, name);
  } catch (e) {
    throw new InvalidParameterError('request could not be read', { cause: (e as Error).cause });
  }
}

/**
 * A {@link KeyProvider} backed by Alibaba Cloud KMS (API 2016-01-20).
 *
 * The RAM identity needs `kms:GenerateDataKey` and `kms:Decrypt` on the key
 * (and `kms:Encrypt` / `kms:ReEncrypt*` for those methods).
 *
 * @example
 * ```ts
 * import { encrypt, decrypt } from 'envelope-kit';
 * import { AlibabaKmsProvider } from 'envelope-kit/alibaba';
 *
 * // Credentials from ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET.
 * const provider = new AlibabaKmsProvider({ region: 'cn-hangzhou' });
 * const envelope = await encrypt(new TextEncoder().encode('secret'), {
 *   provider,
 *   keyId: 'alias/my-app',
 *   encryptionContext: { table: 'users' },
 * });
 * const { plaintext } = await decrypt(envelope, { provider });
 * ```
 */
export class AlibabaKmsProvider implements KeyProvider {
  /** Always `"alibaba-kms"`. */
  readonly providerId: string = ALIBABA_KMS_PROVIDER_ID;
  readonly #s: Settings;

  /**
   * @param options - `region` or `endpoint`; credentials, signature version, retries, timeout.
   * @throws InvalidParameterError for a bad option (the message names it, never a secret).
   */
  constructor(options: AlibabaKmsProviderOptions) {
    if (options === null || typeof options !== 'object') {
      throw new InvalidParameterError('AlibabaKmsProvider expects an options object');
    }
    let o: AlibabaKmsProviderOptions;
    try {
      o = { ...options };
    } catch (e) {
      throw new InvalidParameterError('options could not be read', { cause: e });
    }
    const endpoint = resolveEndpoint(o.region, o.endpoint);
    let credentials: CredentialsSource;
    if (o.credentials === undefined) credentials = undefined;
    else if (typeof o.credentials === 'function') credentials = o.credentials;
    else credentials = checkCredentials(o.credentials);
    const signatureVersion = o.signatureVersion ?? 'v3';
    if (signatureVersion !== 'v3' && signatureVersion !== 'v1') {
      throw new InvalidParameterError('"signatureVersion" must be "v3" or "v1"');
    }
    const retry: RetryPolicy = {
      maxAttempts: intOption(o.maxAttempts, 'maxAttempts', 1, 10, 3),
      baseDelayMs: intOption(o.retryBaseDelayMs, 'retryBaseDelayMs', 0, 60_000, 100),
      maxDelayMs: intOption(o.retryMaxDelayMs, 'retryMaxDelayMs', 0, 300_000, 2000),
    };
    const timeoutMs = intOption(o.timeoutMs, 'timeoutMs', 1, 600_000, 10_000);
    if (o.signal !== undefined && !isAbortSignal(o.signal)) throw new InvalidParameterError('"signal" must be an AbortSignal');
    const f = o.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch;
    if (typeof f !== 'function') throw new InvalidParameterError('no fetch: this runtime has no globalThis.fetch; pass "fetch"');
    this.#s = Object.freeze({
      endpoint,
      credentials,
      signatureVersion,
      retry,
      timeoutMs,
      signal: o.signal,
      fetch: o.fetch ? f : f.bind(globalThis),
    });
  }

  /** The endpoint requests go to (origin with `/`). */
  get endpoint(): string {
    return this.#s.endpoint.href;
  }

  /** The signature version in use. */
  get signatureVersion(): AlibabaSignatureVersion {
    return this.#s.signatureVersion;
  }

  /**
   * `GenerateDataKey`: a fresh data key, in plaintext and wrapped under `keyId`. Sends
   * `NumberOfBytes` when the caller gave it, else `KeySpec` (`AES_256` by default).
   * @param request - see {@link GenerateDataKeyRequest}; `signal` aborts the call. The context is
   *   checked against the service's limit ({@link KMS_CONTEXT_MAX_CHARS} characters of JSON).
   * @returns the key (resolved `keyId`, never an alias), its blob, `keyVersion` (= `keyVersionId`), `requestId`.
   * @throws InvalidParameterError, KeyNotFoundError, KeyDisabledError, AlibabaKmsError
   */
  async generateDataKey(request: GenerateDataKeyRequest & AlibabaCallOptions): Promise<AlibabaDataKey> {
    const { params, numberOfBytes, signal } = this.#generateParams(request);
    const action = 'GenerateDataKey';
    const result = await this.#call(action, params, 'generate', signal, 'Plaintext');
    const secret = result.secret;
    try {
      const body = this.#validate(action, generateDataKeyResponse, result);
      if (secret!.value.length !== numberOfBytes) this.#malformed(action, body.RequestId, body.attempts, 'data key of the wrong length');
      const ciphertextBlob = this.#decodeBlob(action, body.CiphertextBlob!, body.RequestId, body.attempts);
      const plaintext = secret!.value;
      return { keyId: body.KeyId, plaintext, ciphertextBlob, ...versionOf(body), requestId: body.RequestId };
    } catch (e) {
      wipe(secret?.value);
      throw e;
    }
  }

  /**
   * `GenerateDataKeyWithoutPlaintext`: a fresh data key wrapped under `keyId`, its plaintext never
   * sent (for a data key another party will `decrypt` later). Parameters as {@link generateDataKey}.
   * @returns the resolved `keyId`, the blob, `keyVersion` (= `keyVersionId`), `requestId`.
   * @throws InvalidParameterError, KeyNotFoundError, KeyDisabledError, AlibabaKmsError
   */
  async generateDataKeyWithoutPlaintext(request: AlibabaGenerateDataKeyWithoutPlaintextRequest): Promise<AlibabaWrappedDataKey> {
    const { params, signal } = this.#generateParams(request);
    return this.#ciphertextAnswer('GenerateDataKeyWithoutPlaintext', await this.#call('GenerateDataKeyWithoutPlaintext', params, 'generate', signal));
  }

  /** The checked parameters of `GenerateDataKey` and `GenerateDataKeyWithoutPlaintext`. */
  #generateParams(request: unknown): { params: Param[]; numberOfBytes: number; signal: AbortSignal | undefined } {
    const encryptionContext = request !== null && typeof request === 'object' ? requestField(request, 'encryptionContext') : undefined;
    const rawNumber = request !== null && typeof request === 'object' ? requestField(request, 'numberOfBytes') : undefined;
    const rawSpec = request !== null && typeof request === 'object' ? requestField(request, 'keySpec') : undefined;
    const req = checkGenerateDataKeyRequest(
      request === null || typeof request !== 'object'
        ? request
        : { keyId: requestField(request, 'keyId'), keySpec: rawSpec, numberOfBytes: rawNumber },
    );
    const context = checkServiceContext(encryptionContext);
    const signal = readCallSignal(request);
    // SPEC: numberOfBytes wins over keySpec; only one of the two is sent, as the caller asked.
    const size: Param =
      rawNumber !== undefined ? ['NumberOfBytes', String(req.numberOfBytes)] : ['KeySpec', rawSpec === 'AES_128' ? 'AES_128' : 'AES_256'];
    const numberOfBytes = rawNumber !== undefined ? req.numberOfBytes : KEY_SPEC_BYTES[rawSpec === 'AES_128' ? 'AES_128' : 'AES_256'];
    return { params: [['KeyId', req.keyId], size, ...contextParam('EncryptionContext', context)], numberOfBytes, signal };
  }

  /**
   * `Decrypt`: recover what a blob holds (a data key, or up to 6 KiB from `encrypt`). The blob
   * names its own key. Blobs up to {@link MAX_CIPHERTEXT_BLOB_BYTES} bytes are accepted.
   * @param request - see {@link DecryptRequest}; `signal` aborts the call.
   * @returns the key id that unwrapped it, the plaintext, `keyVersion` (= `keyVersionId`), `requestId`.
   * @throws InvalidParameterError, DecryptionFailedError, KeyNotFoundError, KeyDisabledError, AlibabaKmsError
   */
  async decrypt(request: DecryptRequest & AlibabaCallOptions): Promise<AlibabaDecryptedDataKey> {
    const encryptionContext = request !== null && typeof request === 'object' ? requestField(request, 'encryptionContext') : undefined;
    const { blob } = checkDecryptRequest(
      request === null || typeof request !== 'object' ? request : { ciphertextBlob: requestField(request, 'ciphertextBlob') },
      MAX_CIPHERTEXT_BLOB_BYTES,
    );
    const context = checkServiceContext(encryptionContext);
    const signal = readCallSignal(request);
    const action = 'Decrypt';
    const params: Param[] = [['CiphertextBlob', base64Encode(blob)], ...contextParam('EncryptionContext', context)];
    const result = await this.#call(action, params, 'unwrap', signal, 'Plaintext');
    const secret = result.secret;
    try {
      const body = this.#validate(action, decryptResponse, result);
      const n = secret!.value.length;
      if (n < 1 || n > MAX_ENCRYPT_PLAINTEXT_BYTES) {
        this.#malformed(action, body.RequestId, body.attempts, 'plaintext of the wrong length');
      }
      return { keyId: body.KeyId, plaintext: secret!.value, ...versionOf(body), requestId: body.RequestId };
    } catch (e) {
      wipe(secret?.value);
      throw e;
    }
  }

  /**
   * `Encrypt`: wrap caller-supplied bytes (1 to 6144, the service's limit; typically a data key
   * another recipient made) under a master key, bound to the context.
   *
   * Note: the request carries the plaintext base64-encoded in the (form-encoded) body, and both
   * signatures cover it, so it passes through JavaScript strings on the way out.
   * @returns the resolved key id, the blob, `keyVersion` (= `keyVersionId`), `requestId`.
   * @throws InvalidParameterError, KeyNotFoundError, KeyDisabledError, AlibabaKmsError
   */
  async encrypt(request: AlibabaEncryptRequest): Promise<AlibabaCiphertext> {
    const encryptionContext = request !== null && typeof request === 'object' ? requestField(request, 'encryptionContext') : undefined;
    const req = checkEncryptRequest(
      request === null || typeof request !== 'object'
        ? request
        : { keyId: requestField(request, 'keyId'), plaintext: requestField(request, 'plaintext') },
      MAX_ENCRYPT_PLAINTEXT_BYTES,
    );
    try {
      const ctx = checkServiceContext(encryptionContext);
      const signal = readCallSignal(request);
      const action = 'Encrypt';
      const params: Param[] = [['KeyId', req.keyId], ['Plaintext', base64Encode(req.plaintext)], ...contextParam('EncryptionContext', ctx)];
      return this.#ciphertextAnswer(action, await this.#call(action, params, 'generate', signal));
    } finally {
      wipe(req.plaintext);
    }
  }

  /**
   * `ReEncrypt`: unwrap a blob and wrap its content under `destinationKeyId` (which
   * may be the same key, for a rotated version or a new context), inside KMS: the
   * plaintext never leaves it. Sends `CiphertextBlob`, `SourceEncryptionContext`,
   * `DestinationKeyId`, `DestinationEncryptionContext`.
   * @returns the destination key id, the new blob, `keyVersion` (= `keyVersionId`), `requestId`.
   * @throws InvalidParameterError, DecryptionFailedError, KeyNotFoundError, KeyDisabledError, AlibabaKmsError
   */
  async reEncrypt(request: AlibabaReEncryptRequest): Promise<AlibabaCiphertext> {
    const isObj = request !== null && typeof request === 'object';
    const srcCtx = isObj ? requestField(request, 'sourceEncryptionContext') : undefined;
    const dstCtx = isObj ? requestField(request, 'destinationEncryptionContext') : undefined;
    const req = checkReEncryptRequest(
      isObj ? { ciphertextBlob: requestField(request, 'ciphertextBlob'), destinationKeyId: requestField(request, 'destinationKeyId') } : request,
      MAX_CIPHERTEXT_BLOB_BYTES,
    );
    const source = checkServiceContext(srcCtx, 'sourceEncryptionContext');
    const destination = checkServiceContext(dstCtx, 'destinationEncryptionContext');
    const signal = readCallSignal(request);
    const action = 'ReEncrypt';
    const params: Param[] = [
      ['CiphertextBlob', base64Encode(req.blob)],
      ['DestinationKeyId', req.destinationKeyId],
      ...contextParam('SourceEncryptionContext', source),
      ...contextParam('DestinationEncryptionContext', destination),
    ];
    return this.#ciphertextAnswer(action, await this.#call(action, params, 'unwrap', signal));
  }

  /**
   * What a blob says about itself: nothing. The service's blobs are opaque (their layout is not
   * documented), so this is always `undefined`; it never throws and makes no request.
   */
  describeBlob(_blob: Uint8Array): BlobDescription | undefined {
    return undefined;
  }

  /** The answer of `Encrypt`, `ReEncrypt` and `GenerateDataKeyWithoutPlaintext`: checked, the blob decoded to bytes. */
  #ciphertextAnswer(action: string, result: CallResult): AlibabaCiphertext {
    const body = this.#validate(action, encryptResponse, result);
    return {
      keyId: body.KeyId,
      ciphertextBlob: this.#decodeBlob(action, body.CiphertextBlob!, body.RequestId, body.attempts),
      ...versionOf(body),
      requestId: body.RequestId,
    };
  }

  /** JSON form: where requests go, never credentials. */
  toJSON(): { providerId: string; endpoint: string; signatureVersion: AlibabaSignatureVersion } {
    return { providerId: this.providerId, endpoint: this.endpoint, signatureVersion: this.signatureVersion };
  }

  /** What `util.inspect` shows: no credentials. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `AlibabaKmsProvider { endpoint: '${this.endpoint}', signatureVersion: '${this.signatureVersion}' }`;
  }

  // ---------------------------------------------------------------------------------------------

  #malformed(action: string, requestId: string | undefined, attempts: number, what: string, cause?: unknown): never {
    throw new AlibabaKmsError(
      { failure: 'malformed-response', action, requestId, attempts, retryable: false, kmsMessage: what },
      { cause },
    );
  }

  #validate(action: string, shape: AnswerShape, { json, secret, attempts }: CallResult): KmsAnswer & { attempts: number } {
    const requestId = (json as { RequestId?: unknown } | null)?.RequestId;
    const rid = typeof requestId === 'string' ? requestId : undefined;
    let answer: KmsAnswer;
    try {
      answer = readAnswer(json, shape);
    } catch (e) {
      if (!(e instanceof AnswerShapeError)) throw e;
      this.#malformed(action, rid, attempts, 'response does not match the documented shape', e);
    }
    // The Plaintext member we blanked must be the one read: same length of placeholders.
    if (shape.plaintext && (secret === undefined || answer.Plaintext !== secret.placeholder)) {
      this.#malformed(action, rid, attempts, 'Plaintext member is not where it was expected');
    }
    return { ...answer, attempts };
  }

  #decodeBlob(action: string, b64: string, requestId: string, attempts: number): Uint8Array {
    const blob = base64Decode(b64);
    if (!blob || blob.length === 0 || blob.length > MAX_CIPHERTEXT_BLOB_BYTES) {
      this.#malformed(action, requestId, attempts, `CiphertextBlob is not canonical base64 of 1 to ${MAX_CIPHERTEXT_BLOB_BYTES} bytes`);
    }
    return blob;
  }

  /** Make the request, retrying what is retryable; map what is not. */
  async #call(action: string, params: Param[], kind: OpKind, callSignal: AbortSignal | undefined, secretMember?: string): Promise<CallResult> {
    const { retry } = this.#s;
    const signals = [this.#s.signal, callSignal].filter((s): s is AbortSignal => s !== undefined);
    let last: AlibabaKmsErrorDetails | undefined;
    let lastCause: unknown;
    for (let attempt = 1; attempt <= retry.maxAttempts; attempt++) {
      if (attempt > 1) {
        const linked = anySignal(signals);
        try {
          await sleep(backoffDelay(attempt - 1, retry), linked.signal);
        } catch (e) {
          throw this.#aborted(action, attempt - 1, last, e);
        } finally {
          linked.dispose();
        }
      }
      const aborted = signals.find((s) => s.aborted);
      if (aborted) throw this.#aborted(action, attempt - 1, last, abortReason(aborted));
      const outcome = await this.#attempt(action, params, signals, attempt, secretMember);
      if (outcome.ok) return outcome.result;
      if (outcome.final) throw outcome.error instanceof AlibabaKmsError ? mapKmsError(outcome.error, kind) : outcome.error;
      last = outcome.details;
      lastCause = outcome.cause;
    }
    throw new AlibabaKmsError({ ...last!, attempts: retry.maxAttempts, retryable: true }, { cause: lastCause });
  }

  #aborted(action: string, attempts: number, last: AlibabaKmsErrorDetails | undefined, reason: unknown): AlibabaKmsError {
    return new AlibabaKmsError(
      { failure: 'aborted', action, attempts, retryable: false, requestId: last?.requestId, kmsCode: last?.kmsCode },
      { cause: reason },
    );
  }

  async #attempt(
    action: string,
    params: Param[],
    signals: AbortSignal[],
    attempt: number,
    secretMember: string | undefined,
  ): Promise<
    | { ok: true; result: CallResult }
    | { ok: false; final: true; error: Error }
    | { ok: false; final: false; details: AlibabaKmsErrorDetails; cause?: unknown }
  > {
    const credentials = await resolveCredentials(this.#s.credentials);
    const { url, init } = this.#sign(action, params, credentials);
    const linked = anySignal(signals);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      linked.abort(new DOMException('KMS request timed out', 'TimeoutError'));
    }, this.#s.timeoutMs);
    let status: number;
    let body: Uint8Array;
    try {
      const res = await this.#s.fetch(url, { ...init, signal: linked.signal });
      status = res.status;
      // `redirect: 'manual'`: a browser answers an opaque redirect (status 0), a server runtime the 3xx.
      if (res.type === 'opaqueredirect' || (status >= 300 && status < 400)) {
        await res.body?.cancel().catch(() => {});
        return {
          ok: false,
          final: true,
          error: new AlibabaKmsError({ failure: 'redirect', action, attempts: attempt, retryable: false, httpStatus: status === 0 ? undefined : status }),
        };
      }
      body = await readBody(res);
    } catch (e) {
      const userAbort = signals.find((s) => s.aborted);
      if (userAbort) return { ok: false, final: true, error: this.#aborted(action, attempt, undefined, abortReason(userAbort)) };
      if (e instanceof ResponseTooLargeError) {
        return { ok: false, final: true, error: new AlibabaKmsError({ failure: 'malformed-response', action, attempts: attempt, retryable: false }, { cause: e }) };
      }
      const failure = timedOut ? 'timeout' : 'network';
      return { ok: false, final: false, details: { failure, action, attempts: attempt, retryable: true }, cause: scrubbedCause(e, [String(init.body ?? ''), credentials.securityToken ?? '', credentials.accessKeySecret, ...params.map((p) => p[1])]) };
    } finally {
      clearTimeout(timer);
      linked.dispose();
    }
    if (status >= 200 && status < 300) {
      let secret: TakenSecret | undefined | null;
      try {
        secret = secretMember === undefined ? undefined : takeSecretMember(body, secretMember);
        if (secret === null) this.#malformed(action, undefined, attempt, `${secretMember} is not canonical base64`);
        const json = parseJson(body);
        if (json === undefined) this.#malformed(action, undefined, attempt, 'response is not JSON');
        return { ok: true, result: { json, secret, attempts: attempt } };
      } catch (e) {
        wipe(secret?.value);
        return { ok: false, final: true, error: e as Error };
      } finally {
        wipe(body);
      }
    }
    const err = parseErrorBody(body);
    wipe(body);
    const details: AlibabaKmsErrorDetails = {
      failure: 'kms',
      action,
      kmsCode: err.code,
      requestId: err.requestId,
      hostId: err.hostId,
      httpStatus: status,
      attempts: attempt,
      retryable: false,
      kmsMessage: sanitizeKmsMessage(err.message),
      recommend: sanitizeKmsMessage(err.recommend),
    };
    const retryable =
      err.code !== undefined ? isRetryableCode(err.code) : status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
    if (retryable) return { ok: false, final: false, details: { ...details, retryable: true } };
    return { ok: false, final: true, error: new AlibabaKmsError(details) };
  }

  /**
   * Build and sign one attempt's request. Every parameter travels in a form-encoded POST body
   * (`application/x-www-form-urlencoded`, as the official clients send it), never in the URL: the
   * URL is the endpoint's origin and `/`, so neither a proxy's log nor an error quoting the URL
   * shows a token, a plaintext or a context, and no large parameter meets a URL length limit.
   * `redirect: 'manual'` (which every runtime accepts, unlike `'error'` on workerd): a redirect is
   * refused as an {@link AlibabaKmsError} rather than followed.
   */
  #sign(action: string, params: Param[], c: AlibabaCredentials): { url: string; init: RequestInit } {
    const endpoint = this.#s.endpoint;
    const nonce = toHex(randomBytes(16));
    const timestamp = isoSeconds(Date.now());
    const url = `${endpoint.origin}/`;
    if (this.#s.signatureVersion === 'v1') {
      const all: Param[] = [
        ...params,
        ['Action', action],
        ['Version', KMS_API_VERSION],
        ['Format', 'JSON'],
        ['AccessKeyId', c.accessKeyId],
        ['SignatureMethod', V1_SIGNATURE_METHOD],
        ['SignatureVersion', V1_SIGNATURE_VERSION],
        ['SignatureNonce', nonce],
        ['Timestamp', timestamp],
      ];
      if (c.securityToken !== undefined) all.push(['SecurityToken', c.securityToken]);
      all.push(['Signature', v1Signature('POST', all, c.accessKeySecret)]);
      return {
        url,
        init: { method: 'POST', headers: { accept: 'application/json', 'content-type': FORM_CONTENT_TYPE }, body: canonicalQuery(all), redirect: 'manual' },
      };
    }
    const body = canonicalQuery(params);
    const hashed = hashPayload(utf8Encode(body));
    const headers: Record<string, string> = {
      'content-type': FORM_CONTENT_TYPE,
      'x-acs-action': action,
      'x-acs-version': KMS_API_VERSION,
      'x-acs-date': timestamp,
      'x-acs-signature-nonce': nonce,
      'x-acs-content-sha256': hashed,
    };
    if (c.securityToken !== undefined) {
      headers['x-acs-accesskey-id'] = c.accessKeyId;
      headers['x-acs-security-token'] = c.securityToken;
    }
    const signedHeaders = headersToSign(['host', ...Object.keys(headers)]);
    const canonical = v3CanonicalRequest({
      method: 'POST',
      canonicalUri: '/',
      query: [],
      headers: { ...headers, host: endpoint.host },
      signedHeaders,
      hashedPayload: hashed,
    });
    headers['authorization'] = v3Authorization(c.accessKeyId, signedHeaders, v3Signature(canonical, c.accessKeySecret));
    headers['accept'] = 'application/json';
    return { url, init: { method: 'POST', headers, body, redirect: 'manual' } };
  }
}

/** The body's media type (both signatures sign form parameters as they sign query parameters). */
const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/** `keyVersion` and `keyVersionId` of an answer, both from the service's `KeyVersionId`. */
function versionOf(body: KmsAnswer): { keyVersion?: string; keyVersionId: string | undefined } {
  return body.KeyVersionId === undefined ? { keyVersionId: undefined } : { keyVersion: body.KeyVersionId, keyVersionId: body.KeyVersionId };
}

/** Replace every URL in a text by `<url>`: a URL may carry what a log should not. */
export function scrubUrls(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>]*/gi, '<url>');
}

/**
 * The cause kept for a failed `fetch`: a plain error with the original's name and its message
 * with URLs, the request body and every value `sent` (token, parameters) scrubbed (a custom
 * `fetch` may quote the request, or keep it in properties). Nothing else of the original is kept.
 */
function scrubbedCause(e: unknown, sent: readonly string[], depth = 0): Error {
  const name = e instanceof Error && typeof e.name === 'string' ? e.name : 'Error';
  let message = e instanceof Error && typeof e.message === 'string' ? e.message : String(e);
  // Longest first: the whole body before the values in it.
  for (const t of [...sent].sort((a, b) => b.length - a.length)) if (t.length >= 8) message = message.split(t).join('<redacted>');
  const out = new Error(scrubUrls(message).slice(0, 500));
  out.name = name;
  const inner = e instanceof Error ? e.cause : undefined;
  if (inner instanceof Error && depth < 4) Object.defineProperty(out, 'cause', { value: scrubbedCause(inner, sent, depth + 1), enumerable: false });
  return out;
}

/** Turn a non-retryable KMS error into the library's category, keeping it as the cause. */
function mapKmsError(e: AlibabaKmsError, kind: OpKind): EnvelopeKitError {
  const code = e.kmsCode;
  if (code === undefined) return e;
  const where = `Alibaba Cloud KMS ${e.action}: ${code}${e.requestId ? ` (RequestId ${e.requestId})` : ''}`;
  if (KEY_NOT_FOUND_CODES.has(code)) return new KeyNotFoundError(`${where}: key not found`, { cause: e });
  if (KEY_DISABLED_CODES.has(code)) return new KeyDisabledError(`${where}: key is disabled or pending deletion`, { cause: e });
  if (kind === 'unwrap' && code === 'InvalidParameter') return new DecryptionFailedError({ cause: e });
  if (INVALID_PARAMETER_CODES.has(code)) return new InvalidParameterError(`${where}: parameter rejected`, { cause: e });
  return e;
}

