/**
 * The error the AWS KMS provider throws when KMS (or the network to it) fails
 * for a reason outside the library's other categories, and the tables that
 * map KMS error types (`__type` of a JSON 1.1 error answer) to those
 * categories.
 *
 * Error types from the AWS KMS API Reference ("Errors" of GenerateDataKey,
 * Decrypt, Encrypt, ReEncrypt, and "Common Errors").
 * @module
 */
import { ProviderError } from '../../core/errors.js';

/** Why an {@link AwsKmsError} was thrown. */
export type AwsKmsFailure =
  /** KMS answered with an error (see `errorType`). */
  | 'kms'
  /** The request never got an HTTP answer (connection refused, reset, DNS...). */
  | 'network'
  /** An attempt took longer than the provider's `timeoutMs`. */
  | 'timeout'
  /** The caller's `AbortSignal` fired. */
  | 'aborted'
  /** KMS answered 2xx with a body that is not the documented response. */
  | 'malformed-response';

/** What {@link AwsKmsError} carries besides the message. */
export interface AwsKmsErrorDetails {
  readonly failure: AwsKmsFailure;
  /** The KMS operation, e.g. `GenerateDataKey`. */
  readonly operation: string;
  /** The error type, e.g. `AccessDeniedException` (namespace removed), when KMS answered with one. */
  readonly errorType?: string | undefined;
  /** `x-amzn-RequestId` of the last answer, when known: quote it to AWS support. */
  readonly requestId?: string | undefined;
  /** HTTP status of the last answer, when there was one. */
  readonly httpStatus?: number | undefined;
  /** How many attempts were made. */
  readonly attempts: number;
  /** True when the failure was of a retryable kind and the attempts ran out. */
  readonly retryable: boolean;
  /** KMS `message`, shortened, with any echoed canonical request or string to sign removed. */
  readonly awsMessage?: string | undefined;
}

/**
 * AWS KMS failed: an error answer outside the mapped categories (e.g.
 * `AccessDeniedException`), a retryable failure that outlived every attempt, a
 * timeout, an abort, or a malformed answer. A {@link ProviderError}
 * (`ERR_PROVIDER`) with the request id and error type. Mapped failures (key
 * not found, key disabled, invalid parameter, decryption failed) are thrown as
 * the library's own classes with an `AwsKmsError` as their `cause`.
 *
 * The message names the operation, error type, HTTP status and request id;
 * never a credential, a key or a plaintext.
 */
export class AwsKmsError extends ProviderError {
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'AwsKmsError';
  /** Why it failed. */
  readonly failure: AwsKmsFailure;
  /** The KMS operation. */
  readonly operation: string;
  /** The KMS error type (`__type` without its namespace), when KMS answered with one. */
  readonly errorType: string | undefined;
  /** `x-amzn-RequestId` of the last answer, when known. */
  readonly requestId: string | undefined;
  /** HTTP status of the last answer. */
  readonly httpStatus: number | undefined;
  /** Attempts made. */
  readonly attempts: number;
  /** KMS `message` (shortened; echoed signing material removed). */
  readonly awsMessage: string | undefined;

  /**
   * @param details - what failed; see {@link AwsKmsErrorDetails}.
   * @param options - `cause`: the underlying error, if any.
   */
  constructor(details: AwsKmsErrorDetails, options?: { cause?: unknown }) {
    super(describe(details), { ...options, retryable: details.retryable });
    this.failure = details.failure;
    this.operation = details.operation;
    this.errorType = details.errorType;
    this.requestId = details.requestId;
    this.httpStatus = details.httpStatus;
    this.attempts = details.attempts;
    this.awsMessage = details.awsMessage;
  }
}

function describe(d: AwsKmsErrorDetails): string {
  const parts: string[] = [];
  if (d.errorType !== undefined) parts.push(d.errorType);
  if (d.httpStatus !== undefined) parts.push(`HTTP ${d.httpStatus}`);
  if (d.requestId !== undefined) parts.push(`RequestId ${d.requestId}`);
  parts.push(`${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`);
  const what: Record<AwsKmsFailure, string> = {
    kms: 'failed',
    network: 'failed: network error',
    timeout: 'timed out',
    aborted: 'aborted',
    'malformed-response': 'returned a malformed response',
  };
  return `AWS KMS ${d.operation} ${what[d.failure]} (${parts.join(', ')})`;
}

/** Error types meaning the key (id, ARN or alias) does not exist. */
export const AWS_KEY_NOT_FOUND_TYPES: ReadonlySet<string> = new Set(['NotFoundException']);
/** Error types meaning the key exists but cannot be used now (disabled, pending deletion or import, ...). */
export const AWS_KEY_DISABLED_TYPES: ReadonlySet<string> = new Set(['DisabledException', 'KMSInvalidStateException']);
/** Error types meaning the blob was refused: not KMS's, altered, other context, or another key than the one named. */
export const AWS_DECRYPTION_FAILED_TYPES: ReadonlySet<string> = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);
/** Error types meaning a parameter was refused. */
export const AWS_INVALID_PARAMETER_TYPES: ReadonlySet<string> = new Set(['ValidationException', 'InvalidArnException']);
/** Error types retried with backoff (as are HTTP 429 and every 5xx). */
export const AWS_RETRYABLE_TYPES: ReadonlySet<string> = new Set([
  'ThrottlingException',
  'KMSInternalException',
  'DependencyTimeoutException',
  'KeyUnavailableException',
  'ServiceUnavailableException',
  'InternalFailure',
]);

/**
 * Keep a KMS message safe to carry: no echoed canonical request or string to sign (an
 * `InvalidSignatureException` may quote them, and a canonical request holds the session token), none
 * of the given secrets, at most 300 characters.
 */
export function sanitizeAwsMessage(message: unknown, secrets: readonly (string | undefined)[] = []): string | undefined {
  if (typeof message !== 'string') return undefined;
  let m = message;
  const lower = m.toLowerCase();
  const cut = ['canonical string', 'canonical request', 'string-to-sign', 'string to sign']
    .map((s) => lower.indexOf(s))
    .filter((i) => i >= 0);
  if (cut.length > 0) m = m.slice(0, Math.min(...cut)).trimEnd() + ' [signing details removed]';
  for (const s of secrets) if (s !== undefined && s.length >= 4) m = m.split(s).join('[redacted]');
  return m.length > 300 ? m.slice(0, 300) + '…' : m;
}

/** The error type of a JSON 1.1 error answer: `__type` (or `x-amzn-ErrorType`) without namespace or URL. */
export function errorTypeOf(type: unknown): string | undefined {
  if (typeof type !== 'string' || type.length === 0 || type.length > 256) return undefined;
  let t = type;
  const hash = t.lastIndexOf('#');
  if (hash >= 0) t = t.slice(hash + 1);
  const colon = t.indexOf(':');
  if (colon >= 0) t = t.slice(0, colon);
  return /^[A-Za-z][A-Za-z0-9_.]{0,127}$/.test(t) ? t : undefined;
}
