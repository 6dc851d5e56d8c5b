/**
 * The Alibaba Cloud KMS provider: the {@link KeyProvider} contract over the KMS
 * 2016-01-20 API (`GenerateDataKey`, `Decrypt`), plus `Encrypt` and `ReEncrypt`,
 * with the platform `fetch` and no cloud SDK. Runtime-neutral: no `node:*` import.
 *
 * - Signing: V3 (`ACS3-HMAC-SHA256`, the default) or V1 (`HMAC-SHA1`), see
 *   `signature-v3.ts` and `signature-v1.ts`. Every attempt is signed anew (fresh
 *   nonce and timestamp).
 * - Parameters as the API documents them: `KeyId` (id, alias or ARN),
 *   `KeySpec`, `NumberOfBytes`, `EncryptionContext` as a JSON string; blobs and
 *   plaintexts base64.
 * - Errors: `Forbidden.KeyNotFound` / `Forbidden.AliasNotFound` →
 *   {@link KeyNotFoundError}; `Rejected.Disabled` / `Rejected.PendingDeletion` →
 *   {@link KeyDisabledError}; `InvalidParameter` / `MissingParameter` →
 *   {@link InvalidParameterError} (on Decrypt and ReEncrypt an `InvalidParameter`
 *   means the blob or its context was refused, so it is
 *   {@link DecryptionFailedError}); throttling, `ServiceUnavailableTemporary`,
 *   `InternalFailure`, HTTP 429/5xx without a code, network errors and timeouts
 *   are retried with capped exponential backoff and full jitter, then thrown as
 *   {@link AlibabaKmsError} with the last `RequestId` and code. Each mapped error
 *   has an `AlibabaKmsError` as its `cause`.
 * @module
 */
import type { z } from 'zod';
import { type CheckedContext, type EncryptionContext, checkContext } from '../../core/context.js';
import {
  DecryptionFailedError,
  EnvelopeKitError,
  InvalidParameterError,
  KeyDisabledError,
  KeyNotFoundError,
} from '../../core/errors.js';
import { base64Decode, base64Encode } from '../../internal/base64.js';
import { isBytes, wipe } from '../../internal/bytes.js';
import { randomBytes } from '../../internal/random.js';
import {
  type DataKey,
  type DecryptedDataKey,
  type DecryptRequest,
  type GenerateDataKeyRequest,
  type KeyProvider,
  PROVIDER_LIMITS,
  checkDecryptRequest,
  checkGenerateDataKeyRequest,
  checkKeyId,
} from '../../core/provider.js';
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
  RETRYABLE_CODES,
  sanitizeKmsMessage,
} from './errors.js';
import {
  type TakenSecret,
  ResponseTooLargeError,
  decryptResponse,
  encryptResponse,
  generateDataKeyResponse,
  parseErrorBody,
  parseJson,
  readBody,
  takeSecretMember,
} from './response.js';
import { type RetryPolicy, abortReason, backoffDelay, sleep } from './retry.js';
import { V1_SIGNATURE_METHOD, V1_SIGNATURE_VERSION, v1Signature } from './signature-v1.js';
import { hashPayload, headersToSign, v3Authorization, v3CanonicalRequest, v3Signature } from './signature-v3.js';

/** Provider id written into envelopes for data keys from Alibaba Cloud KMS. */
export const ALIBABA_KMS_PROVIDER_ID = 'alibaba-kms';

/** The KMS API version this provider speaks. */
export const KMS_API_VERSION = '2016-01-20';

/** Largest plaintext `Encrypt` accepts (6 KiB, the KMS limit). */
export const MAX_ENCRYPT_PLAINTEXT_BYTES = 6144;

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

/** Answer of {@link AlibabaKmsProvider.generateDataKey}. */
export interface AlibabaDataKey extends DataKey, AlibabaResultMeta {}
/** Answer of {@link AlibabaKmsProvider.decrypt}. */
export interface AlibabaDecryptedDataKey extends DecryptedDataKey, AlibabaResultMeta {}

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
export interface AlibabaCiphertext extends AlibabaResultMeta {
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
function contextParam(name: string, ctx: CheckedContext): Param[] {
  return ctx.entries.length === 0 ? [] : [[name, JSON.stringify(ctx.map)]];
}

function checkBlobArg(blob: unknown, what: string): Uint8Array {
  if (!isBytes(blob) || blob.length === 0 || blob.length > PROVIDER_LIMITS.maxBlobBytes) {
    throw new InvalidParameterError(`"${what}" must be a Uint8Array of 1 to ${PROVIDER_LIMITS.maxBlobBytes} bytes`);
  }
  return blob.slice();
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
   * `GenerateDataKey`: a fresh data key, in plaintext and wrapped under `keyId`.
   * @param request - see {@link GenerateDataKeyRequest}; `signal` aborts the call.
   * @returns the key (resolved `keyId`, never an alias), its blob, `keyVersionId`, `requestId`.
   * @throws InvalidParameterError, KeyNotFoundError, KeyDisabledError, AlibabaKmsError
   */
  async generateDataKey(request: GenerateDataKeyRequest & AlibabaCallOptions): Promise<AlibabaDataKey> {
    const req = checkGenerateDataKeyRequest(request);
    const signal = readCallSignal(request);
    const params: Param[] = [
      ['KeyId', req.keyId],
      ['NumberOfBytes', String(req.numberOfBytes)],
      ...contextParam('EncryptionContext', req.context),
    ];
    const action = 'GenerateDataKey';
    const result = await this.#call(action, params, 'generate', signal, 'Plaintext');
    const secret = result.secret;
    try {
      const body = this.#validate(action, generateDataKeyResponse, result);
      if (secret!.value.length !== req.numberOfBytes) this.#malformed(action, body.RequestId, body.attempts, 'data key of the wrong length');
      const ciphertextBlob = this.#decodeBlob(action, body.CiphertextBlob, body.RequestId, body.attempts);
      const plaintext = secret!.value;
      return { keyId: body.KeyId, plaintext, ciphertextBlob, keyVersionId: body.KeyVersionId, requestId: body.RequestId };
    } catch (e) {
      wipe(secret?.value);
      throw e;
    }
  }

  /**
   * `Decrypt`: recover the data key in a blob. The blob names its own key.
   * @param request - see {@link DecryptRequest}; `signal` aborts the call.
   * @returns the key id that unwrapped it, the data key, `keyVersionId`, `requestId`.
   * @throws InvalidParameterError, DecryptionFailedError, KeyNotFoundError, KeyDisabledError, AlibabaKmsError
   */
  async decrypt(request: DecryptRequest & AlibabaCallOptions): Promise<AlibabaDecryptedDataKey> {
    const { blob, context } = checkDecryptRequest(request);
    const signal = readCallSignal(request);
    const action = 'Decrypt';
    const params: Param[] = [['CiphertextBlob', base64Encode(blob)], ...contextParam('EncryptionContext', context)];
    const result = await this.#call(action, params, 'unwrap', signal, 'Plaintext');
    const secret = result.secret;
    try {
      const body = this.#validate(action, decryptResponse, result);
      const n = secret!.value.length;
      if (n < PROVIDER_LIMITS.minNumberOfBytes || n > PROVIDER_LIMITS.maxNumberOfBytes) {
        this.#malformed(action, body.RequestId, body.attempts, 'data key of the wrong length');
      }
      return { keyId: body.KeyId, plaintext: secret!.value, keyVersionId: body.KeyVersionId, requestId: body.RequestId };
    } catch (e) {
      wipe(secret?.value);
      throw e;
    }
  }

  /**
   * `Encrypt`: wrap caller-supplied bytes (e.g. an existing data key) under another master key.
   *
   * Note: the request carries the plaintext base64-encoded, and both signatures
   * cover it, so it passes through JavaScript strings on the way out.
   * @returns the resolved key id, the blob, `keyVersionId`, `requestId`.
   * @throws InvalidParameterError, KeyNotFoundError, KeyDisabledError, AlibabaKmsError
   */
  async encrypt(request: AlibabaEncryptRequest): Promise<AlibabaCiphertext> {
    if (request === null || typeof request !== 'object') throw new InvalidParameterError('encrypt expects a request object');
    let keyId: unknown, plaintext: unknown, encryptionContext: unknown;
    try {
      ({ keyId, plaintext, encryptionContext } = request);
    } catch (e) {
      throw new InvalidParameterError('encrypt request could not be read', { cause: e });
    }
    const id = checkKeyId(keyId);
    if (!isBytes(plaintext) || plaintext.length === 0 || plaintext.length > MAX_ENCRYPT_PLAINTEXT_BYTES) {
      throw new InvalidParameterError(`"plaintext" must be a Uint8Array of 1 to ${MAX_ENCRYPT_PLAINTEXT_BYTES} bytes`);
    }
    const ctx = checkContext(encryptionContext);
    const signal = readCallSignal(request);
    const action = 'Encrypt';
    const params: Param[] = [['KeyId', id], ['Plaintext', base64Encode(plaintext)], ...contextParam('EncryptionContext', ctx)];
    return this.#ciphertextAnswer(action, await this.#call(action, params, 'generate', signal));
  }

  /**
   * `ReEncrypt`: unwrap a blob and wrap its content under `destinationKeyId` (which
   * may be the same key, for a rotated version or a new context), inside KMS: the
   * plaintext never leaves it.
   * @returns the destination key id, the new blob, `keyVersionId`, `requestId`.
   * @throws InvalidParameterError, DecryptionFailedError, KeyNotFoundError, KeyDisabledError, AlibabaKmsError
   */
  async reEncrypt(request: AlibabaReEncryptRequest): Promise<AlibabaCiphertext> {
    if (request === null || typeof request !== 'object') throw new InvalidParameterError('reEncrypt expects a request object');
    let blob: unknown, dest: unknown, srcCtx: unknown, dstCtx: unknown;
    try {
      ({ ciphertextBlob: blob, destinationKeyId: dest, sourceEncryptionContext: srcCtx, destinationEncryptionContext: dstCtx } =
        request);
    } catch (e) {
      throw new InvalidParameterError('reEncrypt request could not be read', { cause: e });
    }
    const b = checkBlobArg(blob, 'ciphertextBlob');
    const destinationKeyId = checkKeyId(dest, 'destinationKeyId');
    const source = checkContext(srcCtx, 'sourceEncryptionContext');
    const destination = checkContext(dstCtx, 'destinationEncryptionContext');
    const signal = readCallSignal(request);
    const action = 'ReEncrypt';
    const params: Param[] = [
      ['CiphertextBlob', base64Encode(b)],
      ['DestinationKeyId', destinationKeyId],
      ...contextParam('SourceEncryptionContext', source),
      ...contextParam('DestinationEncryptionContext', destination),
    ];
    return this.#ciphertextAnswer(action, await this.#call(action, params, 'unwrap', signal));
  }

  /** The answer of `Encrypt` and `ReEncrypt`: checked, the blob decoded to bytes. */
  #ciphertextAnswer(action: string, result: CallResult): AlibabaCiphertext {
    const body = this.#validate(action, encryptResponse, result);
    return {
      keyId: body.KeyId,
      ciphertextBlob: this.#decodeBlob(action, body.CiphertextBlob, body.RequestId, body.attempts),
      keyVersionId: body.KeyVersionId,
      requestId: body.RequestId,
    };
  }

  /** JSON form: where requests go, never credentials. */
  toJSON(): { providerId: string; endpoint: string; signatureVersion: AlibabaSignatureVersion } {
    return { providerId: this.providerId, endpoint: this.endpoint, signatureVersion: this.signatureVersion };
  }

  /** What `util.inspect` and `console.log` show: no credentials. */
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

  #validate<T extends { RequestId: string; Plaintext?: string }>(
    action: string,
    schema: z.ZodType<T>,
    { json, secret, attempts }: CallResult,
  ): T & { attempts: number } {
    const r = schema.safeParse(json);
    const requestId = (json as { RequestId?: unknown } | null)?.RequestId;
    const rid = typeof requestId === 'string' ? requestId : undefined;
    if (!r.success) this.#malformed(action, rid, attempts, 'response does not match the documented shape', r.error);
    // The Plaintext member we blanked must be the one zod read: same length of placeholders.
    if (r.data.Plaintext !== undefined && (secret === undefined || r.data.Plaintext !== secret.placeholder)) {
      this.#malformed(action, rid, attempts, 'Plaintext member is not where it was expected');
    }
    return { ...r.data, attempts };
  }

  #decodeBlob(action: string, b64: string, requestId: string, attempts: number): Uint8Array {
    const blob = base64Decode(b64);
    if (!blob || blob.length === 0 || blob.length > PROVIDER_LIMITS.maxBlobBytes) {
      this.#malformed(action, requestId, attempts, 'CiphertextBlob is not canonical base64 of 1 to 4096 bytes');
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
      body = await readBody(res);
    } catch (e) {
      const userAbort = signals.find((s) => s.aborted);
      if (userAbort) return { ok: false, final: true, error: this.#aborted(action, attempt, undefined, abortReason(userAbort)) };
      if (e instanceof ResponseTooLargeError) {
        return { ok: false, final: true, error: new AlibabaKmsError({ failure: 'malformed-response', action, attempts: attempt, retryable: false }, { cause: e }) };
      }
      const failure = timedOut ? 'timeout' : 'network';
      return { ok: false, final: false, details: { failure, action, attempts: attempt, retryable: true }, cause: e };
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
    };
    const retryable =
      err.code !== undefined ? RETRYABLE_CODES.has(err.code) : status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
    if (retryable) return { ok: false, final: false, details: { ...details, retryable: true } };
    return { ok: false, final: true, error: new AlibabaKmsError(details) };
  }

  /** Build and sign one attempt's request. */
  #sign(action: string, params: Param[], c: AlibabaCredentials): { url: string; init: RequestInit } {
    const endpoint = this.#s.endpoint;
    const nonce = toHex(randomBytes(16));
    const timestamp = isoSeconds(Date.now());
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
        url: `${endpoint.origin}/?${canonicalQuery(all)}`,
        // Never follow a redirect: a 3xx (a browser's opaque redirect: status 0) is not a 2xx and fails the call.
        // 'manual', not 'error', which workerd (Cloudflare Workers) refuses.
        init: { method: 'POST', headers: { accept: 'application/json' }, redirect: 'manual' },
      };
    }
    const headers: Record<string, string> = {
      'x-acs-action': action,
      'x-acs-version': KMS_API_VERSION,
      'x-acs-date': timestamp,
      'x-acs-signature-nonce': nonce,
      'x-acs-content-sha256': EMPTY_PAYLOAD_SHA256,
    };
    if (c.securityToken !== undefined) {
      headers['x-acs-accesskey-id'] = c.accessKeyId;
      headers['x-acs-security-token'] = c.securityToken;
    }
    const signedHeaders = headersToSign(['host', ...Object.keys(headers)]);
    const canonical = v3CanonicalRequest({
      method: 'POST',
      canonicalUri: '/',
      query: params,
      headers: { ...headers, host: endpoint.host },
      signedHeaders,
      hashedPayload: EMPTY_PAYLOAD_SHA256,
    });
    headers['authorization'] = v3Authorization(c.accessKeyId, signedHeaders, v3Signature(canonical, c.accessKeySecret));
    headers['accept'] = 'application/json';
    const query = canonicalQuery(params);
    return {
      url: query ? `${endpoint.origin}/?${query}` : `${endpoint.origin}/`,
      init: { method: 'POST', headers, redirect: 'manual' },
    };
  }
}

/** SHA-256 of the empty body, hex. */
const EMPTY_PAYLOAD_SHA256 = hashPayload(new Uint8Array(0));

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

/** One AbortController that aborts when any of `signals` does; `dispose` removes the listeners. */
function anySignal(signals: readonly AbortSignal[]): {
  signal: AbortSignal;
  abort(reason: unknown): void;
  dispose(): void;
} {
  const ctrl = new AbortController();
  const offs: (() => void)[] = [];
  for (const s of signals) {
    if (s.aborted) {
      ctrl.abort(abortReason(s));
      break;
    }
    const on = () => ctrl.abort(abortReason(s));
    s.addEventListener('abort', on, { once: true });
    offs.push(() => s.removeEventListener('abort', on));
  }
  return {
    signal: ctrl.signal,
    abort: (reason) => ctrl.abort(reason),
    dispose: () => offs.forEach((off) => off()),
  };
}
