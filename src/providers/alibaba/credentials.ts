/**
 * Where the Alibaba Cloud KMS provider gets its AccessKey: given in the
 * options, read from the standard environment variables, or asked of a
 * callback on every request (for STS tokens that rotate).
 *
 * The variables are the ones Alibaba Cloud's SDKs read:
 * `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and, for
 * STS, `ALIBABA_CLOUD_SECURITY_TOKEN`. They are read through
 * `globalThis.process?.env`, so the module also loads where there is no
 * `process` (browsers, some edge runtimes).
 * @module
 */
import { type CredentialsResolver, resolveCredentialsWith } from '../../internal/credentials.js';
import { InvalidParameterError } from '../../core/errors.js';

/** An Alibaba Cloud AccessKey pair, with an STS security token when temporary. */
export interface AlibabaCredentials {
  /** AccessKey ID (not secret, but identifying). */
  readonly accessKeyId: string;
  /** AccessKey secret. Never logged, never put in an error. */
  readonly accessKeySecret: string;
  /** STS security token, for temporary credentials. */
  readonly securityToken?: string | undefined;
}

/** A callback that returns current credentials; called before every request attempt. */
export type AlibabaCredentialsProvider = () => AlibabaCredentials | Promise<AlibabaCredentials>;

/** Names of the environment variables read when no credentials are given. */
export const CREDENTIAL_ENV = /* @__PURE__ */ Object.freeze({
  accessKeyId: 'ALIBABA_CLOUD_ACCESS_KEY_ID',
  accessKeySecret: 'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
  securityToken: 'ALIBABA_CLOUD_SECURITY_TOKEN',
});

const ACCESS_KEY_ID_RE = /^[\x21-\x7e]{1,256}$/;

/**
 * Check a credentials object and return a frozen copy (read once, so a getter
 * cannot change it afterwards).
 * @throws InvalidParameterError naming the field (never its value).
 */
export function checkCredentials(value: unknown, what = 'credentials'): AlibabaCredentials {
  if (value === null || typeof value !== 'object') {
    throw new InvalidParameterError(`"${what}" must be an object with accessKeyId and accessKeySecret`);
  }
  let accessKeyId: unknown, accessKeySecret: unknown, securityToken: unknown;
  try {
    ({ accessKeyId, accessKeySecret, securityToken } = value as Record<string, unknown>);
  } catch (e) {
    throw new InvalidParameterError(`"${what}" could not be read`, { cause: e });
  }
  if (typeof accessKeyId !== 'string' || !ACCESS_KEY_ID_RE.test(accessKeyId)) {
    throw new InvalidParameterError(`"${what}.accessKeyId" must be 1 to 256 printable ASCII characters`);
  }
  if (typeof accessKeySecret !== 'string' || !/^[\x20-\x7e]{1,1024}$/.test(accessKeySecret)) {
    throw new InvalidParameterError(`"${what}.accessKeySecret" must be 1 to 1024 printable ASCII characters`);
  }
  if (securityToken !== undefined && (typeof securityToken !== 'string' || !/^[\x20-\x7e]{1,8192}$/.test(securityToken))) {
    throw new InvalidParameterError(`"${what}.securityToken" must be 1 to 8192 printable ASCII characters when given`);
  }
  return Object.freeze({ accessKeyId, accessKeySecret, securityToken: securityToken === '' ? undefined : securityToken });
}

/** The environment, read defensively: `undefined` where there is no `process`. */
function env(): Record<string, string | undefined> | undefined {
  try {
    const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
    return p && typeof p.env === 'object' && p.env !== null ? p.env : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Credentials from `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET`
 * and (optional) `ALIBABA_CLOUD_SECURITY_TOKEN`.
 * @returns the credentials, or `undefined` when the ID or secret is not set.
 * @throws InvalidParameterError when they are set but malformed.
 */
export function credentialsFromEnv(): AlibabaCredentials | undefined {
  const e = env();
  const accessKeyId = e?.[CREDENTIAL_ENV.accessKeyId];
  const accessKeySecret = e?.[CREDENTIAL_ENV.accessKeySecret];
  if (!accessKeyId || !accessKeySecret) return undefined;
  const token = e?.[CREDENTIAL_ENV.securityToken];
  return checkCredentials({ accessKeyId, accessKeySecret, securityToken: token || undefined }, 'environment credentials');
}

/** A checked credentials source: fixed credentials, a callback, or the environment (read per request). */
export type CredentialsSource = AlibabaCredentials | AlibabaCredentialsProvider | undefined;

/**
 * Resolve the credentials for one request attempt.
 * @throws InvalidParameterError when there are none or the callback returns something malformed;
 *   ProviderError when the callback throws.
 */
export function resolveCredentials(source: CredentialsSource): Promise<AlibabaCredentials> {
  return resolveCredentialsWith<AlibabaCredentials>(source, ALIBABA_RESOLVER);
}

const ALIBABA_RESOLVER: CredentialsResolver<AlibabaCredentials> = {
  service: 'Alibaba Cloud',
  envNames: [CREDENTIAL_ENV.accessKeyId, CREDENTIAL_ENV.accessKeySecret],
  check: (v, what) => checkCredentials(v, what),
  fromEnv: () => credentialsFromEnv(),
};
