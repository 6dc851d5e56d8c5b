/**
 * The AWS KMS provider: the {@link KeyProvider} contract over the AWS KMS API
 * (`GenerateDataKey`, `Decrypt`, `Encrypt`, `ReEncrypt`, and
 * `GenerateDataKeyWithoutPlaintext` as an extra method), with the platform
 * `fetch` and no AWS SDK. Runtime-neutral: no `node:*` import.
 *
 * - Wire: the JSON 1.1 protocol: `POST /`, `Content-Type:
 *   application/x-amz-json-1.1`, `X-Amz-Target: TrentService.<Operation>`, a JSON
 *   body with blobs as base64; `KeySpec` or `NumberOfBytes` exactly as the caller
 *   asked; `EncryptionContext` as a JSON map (omitted when empty).
 * - Signing: SigV4 (`sigv4.ts`), service `kms`; every attempt is signed anew.
 * - `KeyId`: key id, key ARN, alias name, alias ARN, multi-Region key (`mrk-…`);
 *   the answer's `KeyId` (the key ARN) is the resolved key id.
 * - Errors: `NotFoundException` → {@link KeyNotFoundError}; `DisabledException`
 *   / `KMSInvalidStateException` → {@link KeyDisabledError};
 *   `InvalidCiphertextException` / `IncorrectKeyException` →
 *   {@link DecryptionFailedError}; `ValidationException` / `InvalidArnException`
 *   → {@link InvalidParameterError}; everything else (e.g.
 *   `AccessDeniedException`) → {@link AwsKmsError}. `ThrottlingException`,
 *   `KMSInternalException`, `DependencyTimeoutException`,
 *   `KeyUnavailableException`, HTTP 429 and 5xx, network errors and timeouts are
 *   retried with capped exponential backoff and full jitter, then thrown as an
 *   {@link AwsKmsError} with `retryable: true`. Each mapped error has an
 *   `AwsKmsError` as its `cause`.
 * - Clock skew: an `InvalidSignatureException` saying the signature expired (or is
 *   not yet current) teaches the provider its clock's offset from the answer's
 *   `Date` header; the next attempt is signed with the corrected clock.
 * @module
 */
import { type CheckedContext, checkContext } from '../../core/context.js';
import {
  DecryptionFailedError,
  type EnvelopeKitError,
  InvalidParameterError,
  KeyDisabledError,
  KeyNotFoundError,
} from '../../core/errors.js';
import {
  type DataKey,
  type DecryptedDataKey,
  type DecryptRequest,
  type EncryptRequest,
  type GenerateDataKeyRequest,
  type KeyProvider,
  type ReEncryptRequest,
  type WrappedKey,
  checkEncryptRequest,
  checkGenerateDataKeyRequest,
  checkKeyId,
  checkReEncryptRequest,
  isAnswerKeyId,
} from '../../core/provider.js';
import { anySignal, isAbortSignal } from '../../internal/abort.js';
import { base64Decode, base64Encode } from '../../internal/base64.js';
import { isBytes, utf8Encode, wipe } from '../../internal/bytes.js';
import {
  type TakenSecret,
  ResponseTooLargeError,
  parseJson,
  readBody,
  takeSecretMember,
} from '../alibaba/response.js';
import { type RetryPolicy, abortReason, backoffDelay, sleep } from '../alibaba/retry.js';
import { type AwsCredentials, type AwsCredentialsProvider, type AwsCredentialsSource, checkAwsCredentials, resolveAwsCredentials } from './credentials.js';
import { resolveAwsEndpoint } from './endpoint.js';
import {
  type AwsKmsErrorDetails,
  AWS_DECRYPTION_FAILED_TYPES,
  AWS_INVALID_PARAMETER_TYPES,
  AWS_KEY_DISABLED_TYPES,
  AWS_KEY_NOT_FOUND_TYPES,
  AWS_RETRYABLE_TYPES,
  AwsKmsError,
  errorTypeOf,
  sanitizeAwsMessage,
} from './errors.js';
import { signRequest } from './sigv4.js';

/** Provider id written into envelopes for data keys from AWS KMS. */
export const AWS_KMS_PROVIDER_ID = 'aws-kms';

/** Largest plaintext `Encrypt` takes (4096 bytes, the KMS limit). */
export const AWS_MAX_ENCRYPT_PLAINTEXT_BYTES = 4096;

/** Largest ciphertext blob KMS takes (6144 bytes, the KMS limit). */
export const AWS_MAX_CIPHERTEXT_BLOB_BYTES = 6144;

/** The JSON 1.1 content type of every request. */
export const AWS_JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';

/** Options of the {@link AwsKmsProvider} constructor. */
export interface AwsKmsProviderOptions {
  /** Region id, e.g. `eu-west-1`: requests go to `https://kms.<region>.amazonaws.com/` and are signed for it. Required. */
  readonly region: string;
  /** Use the FIPS 140 endpoint `https://kms-fips.<region>.amazonaws.com/`. Default false. */
  readonly fips?: boolean;
  /**
   * Custom endpoint (wins over `fips`): an interface VPC endpoint, a proxy, or the loopback emulator.
   * `https://host[:port]` or a bare host; `http://` only to a loopback address.
   */
  readonly endpoint?: string;
  /**
   * Credentials, or a callback asked before every attempt (for refreshed, temporary credentials).
   * Default: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` from the environment,
   * read at each request, where there is a `process.env`.
   */
  readonly credentials?: AwsCredentials | AwsCredentialsProvider;
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
  /** The clock requests are signed with, in ms since the epoch; default `Date.now`. */
  readonly now?: () => number;
}

/** Per-call options, accepted beside each request's own fields. */
export interface AwsCallOptions {
  /** Aborts this call: pending attempt and backoff. */
  readonly signal?: AbortSignal;
}

/** What every KMS answer adds to a result. */
export interface AwsResultMeta {
  /** `x-amzn-RequestId` of the answer. */
  readonly requestId: string | undefined;
}

/** Answer of {@link AwsKmsProvider.generateDataKey}. */
export interface AwsDataKey extends DataKey, AwsResultMeta {}
/** Answer of {@link AwsKmsProvider.decrypt}. */
export interface AwsDecryptedDataKey extends DecryptedDataKey, AwsResultMeta {}
/** Answer of {@link AwsKmsProvider.encrypt}, {@link AwsKmsProvider.reEncrypt} and {@link AwsKmsProvider.generateDataKeyWithoutPlaintext}. */
export interface AwsWrappedKey extends WrappedKey, AwsResultMeta {}

/** Parameters of {@link AwsKmsProvider.decrypt}: the contract's, plus the key the blob must be under. */
export interface AwsDecryptRequest extends DecryptRequest, AwsCallOptions {
  /** When given, KMS refuses (`IncorrectKeyException` → {@link DecryptionFailedError}) a blob under any other key. */
  readonly keyId?: string;
}

/** Parameters of {@link AwsKmsProvider.reEncrypt}: the contract's, plus the key the blob must be under. */
export interface AwsReEncryptRequest extends ReEncryptRequest, AwsCallOptions {
  /** When given, KMS refuses a blob under any other key (`SourceKeyId`). */
  readonly sourceKeyId?: string;
}

interface Settings {
  readonly region: string;
  readonly endpoint: URL;
  readonly fips: boolean;
  readonly credentials: AwsCredentialsSource;
  readonly retry: RetryPolicy;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly fetch: typeof fetch;
  readonly now: () => number;
}

interface CallResult {
  readonly json: Record<string, unknown>;
  readonly secret: TakenSecret | undefined;
  readonly requestId: string | undefined;
  readonly attempts: number;
}

type Outcome =
  | { ok: true; result: CallResult }
  | { ok: false; final: true; error: Error }
  | { ok: false; final: false; details: AwsKmsErrorDetails; cause?: unknown };

function intOption(value: unknown, name: string, min: number, max: number, dflt: number): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidParameterError(`"${name}" must be an integer from ${min} to ${max}`);
  }
  return value;
}

/**
 * Read a request's fields once into a plain object (CONVENTIONS.md §4): only that copy is checked and
 * used afterwards, so a getter cannot answer the check one value and the request another.
 * @throws InvalidParameterError when `request` is not an object or cannot be read.
 */
function snapshot(request: unknown, names: readonly string[], what: string): Record<string, unknown> {
  if (request === null || typeof request !== 'object') throw new InvalidParameterError(`${what} expects a request object`);
  const out: Record<string, unknown> = {};
  try {
    for (const n of names) out[n] = (request as Record<string, unknown>)[n];
  } catch (e) {
    throw new InvalidParameterError(`${what} request could not be read`, { cause: e });
  }
  return out;
}

const GENERATE_FIELDS = ['keyId', 'keySpec', 'numberOfBytes', 'encryptionContext', 'signal'];

function readField(request: unknown, name: string): unknown {
  try {
    return (request as Record<string, unknown> | null)?.[name];
  } catch (e) {
    throw new InvalidParameterError('request could not be read', { cause: e });
  }
}

function readCallSignal(request: unknown): AbortSignal | undefined {
  const s = readField(request, 'signal');
  if (s === undefined) return undefined;
  if (!isAbortSignal(s)) throw new InvalidParameterError('"signal" must be an AbortSignal');
  return s;
}

/**
 * A `decrypt` request checked as the contract's `checkDecryptRequest` does, but with KMS's own
 * limit on blobs (6144 bytes: an `Encrypt` blob of 4096 bytes is longer than a data key's).
 */
function checkAwsDecryptRequest(request: unknown): { blob: Uint8Array; context: CheckedContext } {
  if (request === null || typeof request !== 'object') throw new InvalidParameterError('decrypt expects a request object');
  const blob = readField(request, 'ciphertextBlob');
  const encryptionContext = readField(request, 'encryptionContext');
  if (!isBytes(blob) || blob.length === 0 || blob.length > AWS_MAX_CIPHERTEXT_BLOB_BYTES) {
    throw new InvalidParameterError(`"ciphertextBlob" must be a Uint8Array of 1 to ${AWS_MAX_CIPHERTEXT_BLOB_BYTES} bytes`);
  }
  return { blob: new Uint8Array(blob), context: checkContext(encryptionContext) };
}

/** The context as KMS takes it: a JSON map; omitted when empty. */
function withContext(body: Record<string, unknown>, name: string, ctx: CheckedContext): Record<string, unknown> {
  if (ctx.entries.length > 0) body[name] = ctx.map;
  return body;
}

/**
 * The few answer shapes the provider reads, checked by hand (no schema library: the provider is meant
 * for browser and edge bundles). A field rule answers whether a value is acceptable; `undefined` is
 * accepted only by optional rules. Extra members are ignored, as KMS may add some.
 */
type FieldRule = (v: unknown) => boolean;
type Shape = Readonly<Record<string, FieldRule>>;
const B64_RE = /^[A-Za-z0-9+/]+={0,2}$/;
const b64: FieldRule = (v) => typeof v === 'string' && v.length >= 4 && v.length <= 16384 && B64_RE.test(v);
const answerKeyId: FieldRule = (v) => isAnswerKeyId(v);
const str: FieldRule = (v) => typeof v === 'string';
const optional =
  (rule: FieldRule): FieldRule =>
  (v) =>
    v === undefined || rule(v);
const boundedString =
  (min: number, max: number): FieldRule =>
  (v) =>
    typeof v === 'string' && v.length >= min && v.length <= max;
const keyMaterialId = optional(boundedString(1, 256));
const generateAnswer: Shape = { CiphertextBlob: b64, KeyId: answerKeyId, Plaintext: str, KeyMaterialId: keyMaterialId };
const withoutPlaintextAnswer: Shape = { CiphertextBlob: b64, KeyId: answerKeyId, KeyMaterialId: keyMaterialId };
const decryptAnswer: Shape = { KeyId: answerKeyId, Plaintext: str, KeyMaterialId: keyMaterialId };
const wrapAnswer: Shape = { CiphertextBlob: b64, KeyId: answerKeyId, KeyMaterialId: keyMaterialId };
const errorAnswer: Shape = {
  __type: optional(boundedString(0, 512)),
  code: optional(boundedString(0, 256)),
  message: optional(boundedString(0, 65536)),
  Message: optional(boundedString(0, 65536)),
};

/** The members of a KMS answer the provider reads (each shape requires those its operation returns). */
interface KmsAnswer {
  readonly CiphertextBlob: string;
  readonly KeyId: string;
  readonly Plaintext: string;
  readonly KeyMaterialId?: string;
}

/** Read `value` as `shape`: the listed members, each checked; the first bad one is named in the error (never its value). */
function readShape(shape: Shape, value: unknown): { success: true; data: Record<string, string | undefined> } | { success: false; error: TypeError } {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { success: false, error: new TypeError('the answer is not a JSON object') };
  const data: Record<string, string | undefined> = {};
  for (const [name, rule] of Object.entries(shape)) {
    const v = Object.prototype.hasOwnProperty.call(value, name) ? (value as Record<string, unknown>)[name] : undefined;
    if (!rule(v)) return { success: false, error: new TypeError(`member ${name} is missing or not of the documented form`) };
    data[name] = v as string | undefined;
  }
  return { success: true, data };
}

/**
 * A {@link KeyProvider} backed by AWS KMS, over `fetch` with SigV4 (no AWS SDK).
 *
 * The IAM identity needs `kms:GenerateDataKey` and `kms:Decrypt` on the key (and `kms:Encrypt`,
 * `kms:ReEncryptFrom` / `kms:ReEncryptTo`, `kms:GenerateDataKeyWithoutPlaintext` for those methods).
 *
 * @example
 * ```ts
 * import { encrypt, decrypt } from 'envelope-kit';
 * import { AwsKmsProvider } from 'envelope-kit/aws';
 *
 * // Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
 * const provider = new AwsKmsProvider({ region: 'eu-west-1' });
 * const envelope = await encrypt(new TextEncoder().encode('secret'), {
 *   provider,
 *   keyId: 'alias/my-app',
 *   encryptionContext: { table: 'users' },
 * });
 * const { plaintext } = await decrypt(envelope, { provider });
 * ```
 */
export class AwsKmsProvider implements KeyProvider {
  /** Always `"aws-kms"`. */
  readonly providerId: string = AWS_KMS_PROVIDER_ID;
  readonly #s: Settings;
  /** Correction of the signing clock learnt from KMS's `Date` after a "signature expired" answer, in ms. */
  #clockOffsetMs = 0;

  /**
   * @param options - `region` (required), `fips` or `endpoint`; credentials, retries, timeout.
   * @throws InvalidParameterError for a bad option (the message names it, never a secret).
   */
  constructor(options: AwsKmsProviderOptions) {
    if (options === null || typeof options !== 'object') {
      throw new InvalidParameterError('AwsKmsProvider expects an options object');
    }
    let o: AwsKmsProviderOptions;
    try {
      o = { ...options };
    } catch (e) {
      throw new InvalidParameterError('options could not be read', { cause: e });
    }
    const endpoint = resolveAwsEndpoint(o.region, o.endpoint, o.fips);
    let credentials: AwsCredentialsSource;
    if (o.credentials === undefined) credentials = undefined;
    else if (typeof o.credentials === 'function') credentials = o.credentials;
    else credentials = checkAwsCredentials(o.credentials);
    const retry: RetryPolicy = {
      maxAttempts: intOption(o.maxAttempts, 'maxAttempts', 1, 10, 3),
      baseDelayMs: intOption(o.retryBaseDelayMs, 'retryBaseDelayMs', 0, 60_000, 100),
      maxDelayMs: intOption(o.retryMaxDelayMs, 'retryMaxDelayMs', 0, 300_000, 2000),
    };
    const timeoutMs = intOption(o.timeoutMs, 'timeoutMs', 1, 600_000, 10_000);
    if (o.signal !== undefined && !isAbortSignal(o.signal)) throw new InvalidParameterError('"signal" must be an AbortSignal');
    if (o.now !== undefined && typeof o.now !== 'function') throw new InvalidParameterError('"now" must be a function');
    const f = o.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch;
    if (typeof f !== 'function') throw new InvalidParameterError('no fetch: this runtime has no globalThis.fetch; pass "fetch"');
    this.#s = Object.freeze({
      region: o.region,
      endpoint,
      fips: o.fips === true && o.endpoint === undefined,
      credentials,
      retry,
      timeoutMs,
      signal: o.signal,
      fetch: o.fetch ? f : f.bind(globalThis),
      now: o.now ?? Date.now,
    });
  }

  /** The endpoint requests go to (origin with `/`). */
  get endpoint(): string {
    return this.#s.endpoint.href;
  }

  /** The region requests are signed for. */
  get region(): string {
    return this.#s.region;
  }

  /**
   * `GenerateDataKey`: a fresh data key, in plaintext and wrapped under `keyId`. `NumberOfBytes` is
   * sent when the caller gave `numberOfBytes` (it wins over `keySpec`), otherwise `KeySpec`.
   * @param request - see {@link GenerateDataKeyRequest}; `signal` aborts the call.
   * @returns the key (resolved `keyId`: the key ARN), its blob, `keyVersion` (KMS `KeyMaterialId`, when given), `requestId`.
   * @throws InvalidParameterError, KeyNotFoundError, KeyDisabledError, AwsKmsError
   */
  async generateDataKey(request: GenerateDataKeyRequest & AwsCallOptions): Promise<AwsDataKey> {
    const r = snapshot(request, GENERATE_FIELDS, 'generateDataKey');
    const req = checkGenerateDataKeyRequest(r);
    const body = this.#generateBody(r, req);
    const signal = readCallSignal(r);
    const op = 'GenerateDataKey';
    const result = await this.#call(op, body, signal, 'Plaintext');
    const secret = result.secret;
    try {
      const a = this.#validate(op, generateAnswer, result);
      if (secret === undefined || secret.value.length !== req.numberOfBytes) this.#malformed(op, result, 'data key of the wrong length');
      const ciphertextBlob = this.#decodeBlob(op, a.CiphertextBlob, result);
      return { keyId: a.KeyId, plaintext: secret.value, ciphertextBlob, keyVersion: a.KeyMaterialId, requestId: result.requestId };
    } catch (e) {
      wipe(secret?.value);
      throw e;
    }
  }

  /**
   * `GenerateDataKeyWithoutPlaintext`: a fresh data key wrapped under `keyId`, never seen in plaintext
   * here (for a recipient that decrypts it later). Same parameters as {@link generateDataKey}.
   * @returns the resolved key id (the key ARN), the blob, `keyVersion`, `requestId`.
   * @throws InvalidParameterError, KeyNotFoundError, KeyDisabledError, AwsKmsError
   */
  async generateDataKeyWithoutPlaintext(request: GenerateDataKeyRequest & AwsCallOptions): Promise<AwsWrappedKey> {
    const r = snapshot(request, GENERATE_FIELDS, 'generateDataKeyWithoutPlaintext');
    const req = checkGenerateDataKeyRequest(r);
    const body = this.#generateBody(r, req);
    const signal = readCallSignal(r);
    const op = 'GenerateDataKeyWithoutPlaintext';
    const result = await this.#call(op, body, signal);
    const a = this.#validate(op, withoutPlaintextAnswer, result);
    return { keyId: a.KeyId, ciphertextBlob: this.#decodeBlob(op, a.CiphertextBlob, result), keyVersion: a.KeyMaterialId, requestId: result.requestId };
  }

  /**
   * `Decrypt`: recover the data key in a blob. The blob names its own key; `keyId`, when given, must be it.
   * @param request - see {@link AwsDecryptRequest}; `signal` aborts the call.
   * @returns the key ARN that unwrapped it, the data key, `keyVersion`, `requestId`.
   * @throws InvalidParameterError, DecryptionFailedError, KeyNotFoundError, KeyDisabledError, AwsKmsError
   */
  async decrypt(request: AwsDecryptRequest): Promise<AwsDecryptedDataKey> {
    const r = snapshot(request, ['ciphertextBlob', 'encryptionContext', 'keyId', 'signal'], 'decrypt');
    const { blob, context } = checkAwsDecryptRequest(r);
    const keyId = r['keyId'];
    const signal = readCallSignal(r);
    const body = withContext({ CiphertextBlob: base64Encode(blob) }, 'EncryptionContext', context);
    if (keyId !== undefined) body['KeyId'] = checkKeyId(keyId);
    const op = 'Decrypt';
    const result = await this.#call(op, body, signal, 'Plaintext');
    const secret = result.secret;
    try {
      const a = this.#validate(op, decryptAnswer, result);
      const n = secret?.value.length ?? 0;
      if (secret === undefined || n < 1 || n > AWS_MAX_ENCRYPT_PLAINTEXT_BYTES) this.#malformed(op, result, 'plaintext of a wrong length');
      return { keyId: a.KeyId, plaintext: secret.value, keyVersion: a.KeyMaterialId, requestId: result.requestId };
    } catch (e) {
      wipe(secret?.value);
      throw e;
    }
  }

  /**
   * `Encrypt`: wrap caller-supplied bytes (a data key another recipient generated; 1 to 4096 bytes)
   * under `keyId`, bound to the context.
   *
   * Note: the request carries the plaintext base64-encoded inside the signed JSON body, so it passes
   * through a JavaScript string on the way out.
   * @returns the resolved key id (the key ARN), the blob, `keyVersion`, `requestId`.
   * @throws InvalidParameterError, KeyNotFoundError, KeyDisabledError, AwsKmsError
   */
  async encrypt(request: EncryptRequest & AwsCallOptions): Promise<AwsWrappedKey> {
    const r = snapshot(request, ['keyId', 'plaintext', 'encryptionContext', 'signal'], 'encrypt');
    const signal = readCallSignal(r);
    const req = checkEncryptRequest(r, AWS_MAX_ENCRYPT_PLAINTEXT_BYTES);
    let body: Record<string, unknown>;
    try {
      body = withContext({ KeyId: req.keyId, Plaintext: base64Encode(req.plaintext) }, 'EncryptionContext', req.context);
    } finally {
      wipe(req.plaintext);
    }
    const op = 'Encrypt';
    const result = await this.#call(op, body, signal);
    return this.#wrapped(op, result);
  }

  /**
   * `ReEncrypt`: unwrap a blob and wrap its content under `destinationKeyId` (the same key, for its
   * newest key material or a new context), inside KMS: the data key never leaves it. The identity
   * needs `kms:ReEncryptFrom` on the source key and `kms:ReEncryptTo` on the destination key.
   * @returns the destination key ARN, the new blob, `keyVersion`, `requestId`.
   * @throws InvalidParameterError, DecryptionFailedError, KeyNotFoundError, KeyDisabledError, AwsKmsError
   */
  async reEncrypt(request: AwsReEncryptRequest): Promise<AwsWrappedKey> {
    const r = snapshot(
      request,
      ['ciphertextBlob', 'sourceEncryptionContext', 'sourceKeyId', 'destinationKeyId', 'destinationEncryptionContext', 'signal'],
      'reEncrypt',
    );
    const req = checkReEncryptRequest(r, AWS_MAX_CIPHERTEXT_BLOB_BYTES);
    const sourceKeyId = r['sourceKeyId'];
    const signal = readCallSignal(r);
    const body: Record<string, unknown> = { CiphertextBlob: base64Encode(req.blob) };
    withContext(body, 'SourceEncryptionContext', req.sourceContext);
    if (sourceKeyId !== undefined) body['SourceKeyId'] = checkKeyId(sourceKeyId, 'sourceKeyId');
    body['DestinationKeyId'] = req.destinationKeyId;
    withContext(body, 'DestinationEncryptionContext', req.destinationContext);
    const op = 'ReEncrypt';
    const result = await this.#call(op, body, signal);
    return this.#wrapped(op, result);
  }

  /** AWS KMS blobs are opaque: always `undefined`. */
  describeBlob(_blob: Uint8Array): undefined {
    return undefined;
  }

  /** JSON form: where requests go, never credentials. */
  toJSON(): { providerId: string; region: string; endpoint: string; fips: boolean } {
    return { providerId: this.providerId, region: this.region, endpoint: this.endpoint, fips: this.#s.fips };
  }

  /** What `util.inspect` shows: no credentials. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `AwsKmsProvider { region: '${this.region}', endpoint: '${this.endpoint}' }`;
  }

  // ---------------------------------------------------------------------------------------------

  /** `KeySpec` or `NumberOfBytes` as the caller asked (`numberOfBytes` wins, as the contract says). */
  #generateBody(request: Record<string, unknown>, req: ReturnType<typeof checkGenerateDataKeyRequest>): Record<string, unknown> {
    const body: Record<string, unknown> = { KeyId: req.keyId };
    if (request['numberOfBytes'] !== undefined) body['NumberOfBytes'] = req.numberOfBytes;
    else body['KeySpec'] = req.numberOfBytes === 16 ? 'AES_128' : 'AES_256';
    return withContext(body, 'EncryptionContext', req.context);
  }

  #wrapped(op: string, result: CallResult): AwsWrappedKey {
    const a = this.#validate(op, wrapAnswer, result);
    return { keyId: a.KeyId, ciphertextBlob: this.#decodeBlob(op, a.CiphertextBlob, result), keyVersion: a.KeyMaterialId, requestId: result.requestId };
  }

  #malformed(op: string, r: { requestId?: string | undefined; attempts: number }, what: string, cause?: unknown): never {
    throw new AwsKmsError(
      { failure: 'malformed-response', operation: op, requestId: r.requestId, attempts: r.attempts, retryable: false, awsMessage: what },
      { cause },
    );
  }

  /** The answer read as `shape`; the members a shape requires are strings, `KeyMaterialId` may be absent. */
  #validate(op: string, shape: Shape, result: CallResult): KmsAnswer {
    const r = readShape(shape, result.json);
    if (!r.success) this.#malformed(op, result, 'response does not match the documented shape', r.error);
    // The Plaintext member we blanked must be the one read here: same run of placeholders.
    const plaintext = (r.data as { Plaintext?: unknown }).Plaintext;
    if (plaintext !== undefined && (result.secret === undefined || plaintext !== result.secret.placeholder)) {
      this.#malformed(op, result, 'Plaintext member is not where it was expected');
    }
    return r.data as unknown as KmsAnswer;
  }

  #decodeBlob(op: string, text: string, result: CallResult): Uint8Array {
    const blob = base64Decode(text);
    if (!blob || blob.length === 0 || blob.length > AWS_MAX_CIPHERTEXT_BLOB_BYTES) {
      this.#malformed(op, result, `CiphertextBlob is not canonical base64 of 1 to ${AWS_MAX_CIPHERTEXT_BLOB_BYTES} bytes`);
    }
    return blob;
  }

  /** Make the request, retrying what is retryable; map what is not. */
  async #call(op: string, body: Record<string, unknown>, callSignal: AbortSignal | undefined, secretMember?: string): Promise<CallResult> {
    const { retry } = this.#s;
    const signals = [this.#s.signal, callSignal].filter((s): s is AbortSignal => s !== undefined);
    const payload = utf8Encode(JSON.stringify(body));
    try {
      let last: AwsKmsErrorDetails | undefined;
      let lastCause: unknown;
      for (let attempt = 1; attempt <= retry.maxAttempts; attempt++) {
        if (attempt > 1) {
          const linked = anySignal(signals);
          try {
            await sleep(backoffDelay(attempt - 1, retry), linked.signal);
          } catch (e) {
            throw this.#aborted(op, attempt - 1, last, e);
          } finally {
            linked.dispose();
          }
        }
        const aborted = signals.find((s) => s.aborted);
        if (aborted) throw this.#aborted(op, attempt - 1, last, abortReason(aborted));
        const outcome = await this.#attempt(op, payload, signals, attempt, secretMember);
        if (outcome.ok) return outcome.result;
        if (outcome.final) throw outcome.error instanceof AwsKmsError ? mapAwsError(outcome.error) : outcome.error;
        last = outcome.details;
        lastCause = outcome.cause;
      }
      throw new AwsKmsError({ ...last!, attempts: retry.maxAttempts, retryable: true }, { cause: lastCause });
    } finally {
      // The payload holds a base64 plaintext for Encrypt.
      wipe(payload);
    }
  }

  #aborted(op: string, attempts: number, last: AwsKmsErrorDetails | undefined, reason: unknown): AwsKmsError {
    return new AwsKmsError(
      { failure: 'aborted', operation: op, attempts, retryable: false, requestId: last?.requestId, errorType: last?.errorType },
      { cause: reason },
    );
  }

  async #attempt(op: string, payload: Uint8Array, signals: AbortSignal[], attempt: number, secretMember: string | undefined): Promise<Outcome> {
    const credentials = await resolveAwsCredentials(this.#s.credentials);
    const endpoint = this.#s.endpoint;
    const headers = signRequest({
      method: 'POST',
      path: '/',
      headers: { host: endpoint.host, 'content-type': AWS_JSON_CONTENT_TYPE, 'x-amz-target': `TrentService.${op}` },
      body: payload,
      credentials,
      region: this.#s.region,
      service: 'kms',
      now: this.#s.now() + this.#clockOffsetMs,
    });
    // `host` is signed but set by fetch itself (a browser forbids setting it).
    delete headers['host'];
    const linked = anySignal(signals);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      linked.abort(new DOMException('KMS request timed out', 'TimeoutError'));
    }, this.#s.timeoutMs);
    let status: number;
    let requestId: string | undefined;
    let headerType: string | null = null;
    let serverDate: string | null = null;
    let body: Uint8Array;
    // fetch gets a copy of its own (a runtime may keep or transfer it), wiped once the answer is in.
    const sent = payload.slice();
    try {
      const res = await this.#s.fetch(endpoint.href, {
        method: 'POST',
        headers,
        body: sent,
        redirect: 'error',
        signal: linked.signal,
      });
      status = res.status;
      requestId = res.headers.get('x-amzn-requestid') ?? undefined;
      headerType = res.headers.get('x-amzn-errortype');
      serverDate = res.headers.get('date');
      body = await readBody(res);
    } catch (e) {
      const userAbort = signals.find((s) => s.aborted);
      if (userAbort) return { ok: false, final: true, error: this.#aborted(op, attempt, undefined, abortReason(userAbort)) };
      if (e instanceof ResponseTooLargeError) {
        return { ok: false, final: true, error: new AwsKmsError({ failure: 'malformed-response', operation: op, attempts: attempt, retryable: false }, { cause: e }) };
      }
      // A fetch error names the URL at most, never a header; it is kept as the cause.
      return { ok: false, final: false, details: { failure: timedOut ? 'timeout' : 'network', operation: op, attempts: attempt, retryable: true }, cause: e };
    } finally {
      clearTimeout(timer);
      linked.dispose();
      wipe(sent);
    }
    if (requestId !== undefined && !/^[\x21-\x7e]{1,128}$/.test(requestId)) requestId = undefined;
    if (status >= 200 && status < 300) {
      let secret: TakenSecret | undefined | null;
      try {
        secret = secretMember === undefined ? undefined : takeSecretMember(body, secretMember);
        if (secret === null) this.#malformed(op, { requestId, attempts: attempt }, `${secretMember} is not canonical base64`);
        const json = parseJson(body);
        if (json === null || typeof json !== 'object' || Array.isArray(json)) this.#malformed(op, { requestId, attempts: attempt }, 'response is not a JSON object');
        return { ok: true, result: { json: json as Record<string, unknown>, secret, requestId, attempts: attempt } };
      } catch (e) {
        wipe(secret?.value);
        return { ok: false, final: true, error: e as Error };
      } finally {
        wipe(body);
      }
    }
    const parsed = readShape(errorAnswer, parseJson(body));
    wipe(body);
    const e = parsed.success ? parsed.data : {};
    const errorType = errorTypeOf(e.__type) ?? errorTypeOf(e.code) ?? errorTypeOf(headerType);
    const details: AwsKmsErrorDetails = {
      failure: 'kms',
      operation: op,
      errorType,
      requestId,
      httpStatus: status,
      attempts: attempt,
      retryable: false,
      awsMessage: sanitizeAwsMessage(e.message ?? e.Message, [credentials.secretAccessKey, credentials.sessionToken]),
    };
    // A clock more than 5 minutes off (a browser, a VM after resume): as the AWS SDKs do, learn the
    // offset from the answer's Date header and sign the next attempt with the corrected clock.
    if (errorType === 'InvalidSignatureException' && /^Signature (?:expired|not yet current)/.test(details.awsMessage ?? '') && serverDate !== null) {
      const server = Date.parse(serverDate);
      const local = this.#s.now();
      if (Number.isFinite(server) && Math.abs(server + 1000 - (local + this.#clockOffsetMs)) > 4 * 60_000) {
        this.#clockOffsetMs = server - local;
        if (attempt < this.#s.retry.maxAttempts) return { ok: false, final: false, details: { ...details, retryable: false } };
      }
    }
    const retryable = (errorType !== undefined && AWS_RETRYABLE_TYPES.has(errorType)) || status === 429 || status >= 500;
    if (retryable) return { ok: false, final: false, details: { ...details, retryable: true } };
    return { ok: false, final: true, error: new AwsKmsError(details) };
  }
}

/** Turn a non-retryable KMS error into the library's category, keeping it as the cause. */
function mapAwsError(e: AwsKmsError): EnvelopeKitError {
  const t = e.errorType;
  if (t === undefined) return e;
  const where = `AWS KMS ${e.operation}: ${t}${e.requestId ? ` (RequestId ${e.requestId})` : ''}`;
  if (AWS_KEY_NOT_FOUND_TYPES.has(t)) return new KeyNotFoundError(`${where}: key not found`, { cause: e });
  if (AWS_KEY_DISABLED_TYPES.has(t)) return new KeyDisabledError(`${where}: key is disabled or not in a usable state`, { cause: e });
  if (AWS_DECRYPTION_FAILED_TYPES.has(t)) return new DecryptionFailedError({ cause: e });
  if (AWS_INVALID_PARAMETER_TYPES.has(t)) return new InvalidParameterError(`${where}: parameter rejected`, { cause: e });
  return e;
}

