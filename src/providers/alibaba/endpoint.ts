/**
 * Where KMS requests go. A region gives the public endpoint
 * `https://kms.<region>.aliyuncs.com/`; a custom endpoint covers the VPC
 * endpoint (`kms-vpc.<region>.aliyuncs.com`), a KMS instance's dedicated
 * gateway (`<instance>.cryptoservice.kms.aliyuncs.com`), or the loopback
 * emulator (`http://127.0.0.1:<port>`). Plain HTTP is refused except to a
 * loopback address: requests carry data keys and signed credentials.
 * @module
 */
import { InvalidParameterError } from '../../core/errors.js';

const REGION_RE = /^[a-z]{2,}(?:-[a-z0-9]+){1,4}$/;

/** True when `hostname` (as `URL.hostname` gives it) is a loopback address. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

/**
 * The KMS endpoint for a region, or a custom endpoint checked.
 * @param region - e.g. `cn-hangzhou`, `ap-southeast-1`.
 * @param endpoint - `https://host[:port]`, a bare host (HTTPS), or `http://` to a loopback address.
 * @returns the origin with path `/`.
 * @throws InvalidParameterError when neither is usable.
 */
export function resolveEndpoint(region: unknown, endpoint: unknown): URL {
  if (endpoint !== undefined) {
    if (typeof endpoint !== 'string' || endpoint.length === 0 || endpoint.length > 512) {
      throw new InvalidParameterError('"endpoint" must be a non-empty string of at most 512 characters');
    }
    let url: URL;
    try {
      url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`);
    } catch (e) {
      throw new InvalidParameterError('"endpoint" is not a valid URL or host name', { cause: e });
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      throw new InvalidParameterError('"endpoint" must use https (plain http is allowed only to a loopback address)');
    }
    if (url.username || url.password || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
      throw new InvalidParameterError('"endpoint" must be an origin: no credentials, path, query or fragment');
    }
    return new URL(`${url.protocol}//${url.host}/`);
  }
  if (region === undefined) throw new InvalidParameterError('give "region" (e.g. "cn-hangzhou") or "endpoint"');
  if (typeof region !== 'string' || !REGION_RE.test(region)) {
    throw new InvalidParameterError('"region" must be an Alibaba Cloud region id such as "cn-hangzhou"');
  }
  return new URL(`https://kms.${region}.aliyuncs.com/`);
}
