/**
 * Resolving a cloud provider's credentials for one request: fixed credentials, a callback asked
 * before every attempt (refreshed credentials), or the standard environment variables.
 * @module
 */
import { InvalidParameterError, ProviderError } from '../core/errors.js';

/** How one provider's credentials are found and checked. */
export interface CredentialsResolver<C> {
  /** The service's name, for messages (`"AWS"`, `"Alibaba Cloud"`). */
  readonly service: string;
  /** The environment variables that hold the key pair, for the message when there are none. */
  readonly envNames: readonly [string, string];
  /** Check a callback's answer (throws InvalidParameterError naming `what`). */
  check(value: unknown, what: string): C;
  /** The credentials in the environment, checked, or `undefined` when there are none. */
  fromEnv(): C | undefined;
}

/**
 * The credentials for one attempt, from `source`: a callback's answer (checked), fixed credentials
 * (checked when the provider was made), or else the environment.
 * @throws InvalidParameterError when there are none or the callback answers something malformed;
 *   ProviderError when the callback throws (its error is the cause).
 */
export async function resolveCredentialsWith<C>(source: C | (() => unknown) | undefined, r: CredentialsResolver<C>): Promise<C> {
  if (typeof source === 'function') {
    let got: unknown;
    try {
      got = await (source as () => unknown)();
    } catch (e) {
      throw new ProviderError(`the ${r.service} credentials callback failed`, { cause: e });
    }
    return r.check(got, 'credentials callback result');
  }
  if (source !== undefined) return source;
  const fromEnv = r.fromEnv();
  if (!fromEnv) throw new InvalidParameterError(`no ${r.service} credentials: pass "credentials" or set ${r.envNames[0]} and ${r.envNames[1]}`);
  return fromEnv;
}
