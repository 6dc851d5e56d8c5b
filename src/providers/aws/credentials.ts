/**
 * Where the AWS KMS provider gets its credentials: given in the options, read
 * from the standard environment variables (`AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) at each request, or asked of a
 * callback before every attempt (refreshed, temporary credentials: STS, an
 * instance role, SSO, or the AWS SDK's own providers wrapped in a function).
 *
 * The environment is read through `globalThis.process?.env`, so the module also
 * loads where there is no `process` (browsers, some edge runtimes).
 * @module
 */
import { type CredentialsResolver, resolveCredentialsWith } from '../../internal/credentials.js';
import { InvalidParameterError } from '../../core/errors.js';

/** AWS credentials: an access key, with a session token when temporary. */
export interface AwsCredentials {
  /** Access key id (not secret, but identifying). */
  readonly accessKeyId: string;
  /** Secret access key. Never logged, never put in an error. */
  readonly secretAccessKey: string;
  /** Session token, for temporary credentials. Never logged, never put in an error. */
  readonly sessionToken?: string | undefined;
}

/** A callback that returns current credentials; called before every request attempt. */
export type AwsCredentialsProvider = () => AwsCredentials | Promise<AwsCredentials>;

/** Names of the environment variables read when no credentials are given. */
export const AWS_CREDENTIAL_ENV = Object.freeze({
  accessKeyId: 'AWS_ACCESS_KEY_ID',
  secretAccessKey: 'AWS_SECRET_ACCESS_KEY',
  sessionToken: 'AWS_SESSION_TOKEN',
});

/**
 * Check a credentials object and return a frozen copy (read once, so a getter
 * cannot change it afterwards).
 * @throws InvalidParameterError naming the field (never its value).
 */
export function checkAwsCredentials(value: unknown, what = 'credentials'): AwsCredentials {
  if (value === null || typeof value !== 'object') {
    throw new InvalidParameterError(`"${what}" must be an object with accessKeyId and secretAccessKey`);
  }
  let accessKeyId: unknown, secretAccessKey: unknown, sessionToken: unknown;
  try {
    ({ accessKeyId, secretAccessKey, sessionToken } = value as Record<string, unknown>);
  } catch (e) {
    throw new InvalidParameterError(`"${what}" could not be read`, { cause: e });
  }
  if (typeof accessKeyId !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(accessKeyId) || /[/,=]/.test(accessKeyId)) {
    throw new InvalidParameterError(`"${what}.accessKeyId" must be 1 to 128 printable ASCII characters without "/", "," or "="`);
  }
  if (typeof secretAccessKey !== 'string' || !/^[\x20-\x7e]{1,1024}$/.test(secretAccessKey)) {
    throw new InvalidParameterError(`"${what}.secretAccessKey" must be 1 to 1024 printable ASCII characters`);
  }
  if (sessionToken !== undefined && sessionToken !== '' && (typeof sessionToken !== 'string' || !/^[\x21-\x7e]{1,16384}$/.test(sessionToken))) {
    throw new InvalidParameterError(`"${what}.sessionToken" must be 1 to 16384 printable ASCII characters when given`);
  }
  return Object.freeze({ accessKeyId, secretAccessKey, sessionToken: sessionToken === '' ? undefined : (sessionToken as string | undefined) });
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
 * Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (optional) `AWS_SESSION_TOKEN`.
 * @returns the credentials, or `undefined` when the id or the secret is not set (or there is no environment).
 * @throws InvalidParameterError when they are set but malformed.
 */
export function awsCredentialsFromEnv(): AwsCredentials | undefined {
  const e = env();
  let accessKeyId: string | undefined, secretAccessKey: string | undefined, sessionToken: string | undefined;
  try {
    accessKeyId = e?.[AWS_CREDENTIAL_ENV.accessKeyId];
    secretAccessKey = e?.[AWS_CREDENTIAL_ENV.secretAccessKey];
    sessionToken = e?.[AWS_CREDENTIAL_ENV.sessionToken];
  } catch {
    return undefined;
  }
  if (!accessKeyId || !secretAccessKey) return undefined;
  return checkAwsCredentials({ accessKeyId, secretAccessKey, sessionToken: sessionToken || undefined }, 'environment credentials');
}

/** A checked credentials source: fixed credentials, a callback, or the environment (read per request). */
export type AwsCredentialsSource = AwsCredentials | AwsCredentialsProvider | undefined;

/**
 * Resolve the credentials for one request attempt.
 * @throws InvalidParameterError when there are none or the callback returns something malformed;
 *   ProviderError when the callback throws (its error is the cause).
 */
export function resolveAwsCredentials(source: AwsCredentialsSource): Promise<AwsCredentials> {
  return resolveCredentialsWith<AwsCredentials>(source, AWS_RESOLVER);
}

const AWS_RESOLVER: CredentialsResolver<AwsCredentials> = {
  service: 'AWS',
  envNames: [AWS_CREDENTIAL_ENV.accessKeyId, AWS_CREDENTIAL_ENV.secretAccessKey],
  check: (v, what) => checkAwsCredentials(v, what),
  fromEnv: () => awsCredentialsFromEnv(),
};
