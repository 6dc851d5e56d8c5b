/**
 * The error the Alibaba Cloud KMS provider throws when KMS (or the network to
 * it) fails for a reason outside the library's other categories, and the table
 * that maps KMS error codes to those categories.
 *
 * KMS codes from the KMS 2016-01-20 "Common error codes" table and the
 * operations' own tables: `Forbidden.KeyNotFound` / `Forbidden.AliasNotFound`
 * (404), `Rejected.Disabled` / `Rejected.PendingDeletion` (409),
 * `InvalidParameter` / `MissingParameter` (400), `InternalFailure` (500),
 * `ServiceUnavailableTemporary` (503); the retryable set is the one Alibaba's
 * own KMS clients back off on (`Rejected.Throttling`,
 * `ServiceUnavailableTemporary`, `InternalFailure`) plus the API gateway's
 * `Throttling*` codes: any code containing `Throttling` (see {@link isRetryableCode}).
 * @module
 */
import { ProviderError } from '../../core/errors.js';

/** Why an {@link AlibabaKmsError} was thrown. */
export type AlibabaKmsFailure =
  /** KMS answered with an error (see `kmsCode`). */
  | 'kms'
  /** The request never got an HTTP answer (connection refused, reset, DNS...). */
  | 'network'
  /** An attempt took longer than the provider's `timeoutMs`. */
  | 'timeout'
  /** The caller's `AbortSignal` fired. */
  | 'aborted'
  /** KMS answered 2xx with a body that is not the documented response. */
  | 'malformed-response'
  /** The answer was a redirect (3xx): KMS never redirects, so the endpoint is not KMS. */
  | 'redirect';

/** What {@link AlibabaKmsError} carries besides the message. */
export interface AlibabaKmsErrorDetails {
  readonly failure: AlibabaKmsFailure;
  /** The KMS API operation, e.g. `GenerateDataKey`. */
  readonly action: string;
  /** KMS error code (`Code`), when KMS answered with one. */
  readonly kmsCode?: string | undefined;
  /** KMS `RequestId` of the last attempt, when known: quote it to Alibaba Cloud support. */
  readonly requestId?: string | undefined;
  /** KMS `HostId`, when given. */
  readonly hostId?: string | undefined;
  /** HTTP status of the last answer, when there was one. */
  readonly httpStatus?: number | undefined;
  /** How many attempts were made. */
  readonly attempts: number;
  /** True when the failure was of a retryable kind and the attempts ran out. */
  readonly retryable: boolean;
  /** KMS `Message`, shortened and stripped of any echoed string-to-sign. */
  readonly kmsMessage?: string | undefined;
  /** KMS `Recommend`: the service's diagnosis link for the request, when given. */
  readonly recommend?: string | undefined;
}

/**
 * Alibaba Cloud KMS failed: an error answer outside the mapped categories, a
 * retryable failure that outlived every attempt, a timeout, an abort, or a
 * malformed answer. A {@link ProviderError} (`ERR_PROVIDER`) with the KMS
 * `RequestId` and code. Mapped failures (key not found, key disabled, invalid
 * parameter, decryption failed) are thrown as the library's own classes with an
 * `AlibabaKmsError` as their `cause`.
 *
 * The message names the operation, code, HTTP status and RequestId; never a
 * credential, a key or a plaintext.
 */
export class AlibabaKmsError extends ProviderError {
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'AlibabaKmsError';
  /** Why it failed. */
  readonly failure: AlibabaKmsFailure;
  /** The KMS API operation. */
  readonly action: string;
  /** KMS error code, when KMS answered with one. */
  readonly kmsCode: string | undefined;
  /** KMS `RequestId` of the last attempt, when known. */
  readonly requestId: string | undefined;
  /** KMS `HostId`, when given. */
  readonly hostId: string | undefined;
  /** HTTP status of the last answer. */
  readonly httpStatus: number | undefined;
  /** Attempts made. */
  readonly attempts: number;
  /** KMS `Message` (shortened; an echoed string-to-sign is removed). */
  readonly kmsMessage: string | undefined;
  /** KMS `Recommend`: the service's diagnosis link for the request, when it gave one. */
  readonly recommend: string | undefined;

  /**
   * @param details - what failed; see {@link AlibabaKmsErrorDetails}.
   * @param options - `cause`: the underlying error, if any.
   */
  constructor(details: AlibabaKmsErrorDetails, options?: { cause?: unknown }) {
    super(describe(details), { ...options, retryable: details.retryable });
    this.failure = details.failure;
    this.action = details.action;
    this.kmsCode = details.kmsCode;
    this.requestId = details.requestId;
    this.hostId = details.hostId;
    this.httpStatus = details.httpStatus;
    this.attempts = details.attempts;
    this.kmsMessage = details.kmsMessage;
    this.recommend = details.recommend;
  }
}

function describe(d: AlibabaKmsErrorDetails): string {
  const parts: string[] = [];
  if (d.kmsCode !== undefined) parts.push(d.kmsCode);
  if (d.httpStatus !== undefined) parts.push(`HTTP ${d.httpStatus}`);
  if (d.requestId !== undefined) parts.push(`RequestId ${d.requestId}`);
  parts.push(`${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`);
  const what: Record<AlibabaKmsFailure, string> = {
    kms: 'failed',
    network: 'failed: network error',
    timeout: 'timed out',
    aborted: 'aborted',
    'malformed-response': 'returned a malformed response',
    redirect: 'answered with a redirect',
  };
  return `Alibaba Cloud KMS ${d.action} ${what[d.failure]} (${parts.join(', ')})`;
}

/** KMS codes meaning the key id or alias is unknown. */
export const KEY_NOT_FOUND_CODES: ReadonlySet<string> = new Set(['Forbidden.KeyNotFound', 'Forbidden.AliasNotFound']);
/** KMS codes meaning the key exists but cannot be used. */
export const KEY_DISABLED_CODES: ReadonlySet<string> = new Set(['Rejected.Disabled', 'Rejected.PendingDeletion']);
/** KMS codes meaning a parameter was rejected. */
export const INVALID_PARAMETER_CODES: ReadonlySet<string> = new Set(['InvalidParameter', 'MissingParameter']);
/**
 * KMS and API-gateway codes that are retried with backoff. `SerivceUnavailableTemporary`
 * is the spelling in the KMS common error table; both spellings are retried.
 */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'Throttling',
  'Throttling.User',
  'Throttling.Api',
  'Rejected.Throttling',
  'ServiceUnavailableTemporary',
  'SerivceUnavailableTemporary',
  'ServiceUnavailable',
  'InternalFailure',
  'InternalError',
]);

/**
 * Whether a KMS or gateway error code is retried: one of {@link RETRYABLE_CODES}, or any code
 * containing `Throttling` (`Throttling.Concurrent`, `Throttling.User`...), as Alibaba's own SDKs do.
 */
export function isRetryableCode(code: string): boolean {
  return RETRYABLE_CODES.has(code) || code.includes('Throttling');
}

/** Keep a KMS message safe to carry: no echoed string-to-sign, at most 300 characters. */
export function sanitizeKmsMessage(message: unknown): string | undefined {
  if (typeof message !== 'string') return undefined;
  let m = message;
  const i = m.toLowerCase().indexOf('string to sign');
  if (i >= 0) m = m.slice(0, i).trimEnd() + ' [string to sign removed]';
  return m.length > 300 ? m.slice(0, 300) + '…' : m;
}
