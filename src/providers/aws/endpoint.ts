/**
 * Where AWS KMS requests go. A region gives the public endpoint
 * `https://kms.<region>.amazonaws.com/` (`.amazonaws.com.cn` in the China
 * regions), or with `fips: true` the FIPS 140 endpoint
 * `https://kms-fips.<region>.amazonaws.com/`. A custom endpoint covers an
 * interface VPC endpoint (`https://vpce-….kms.<region>.vpce.amazonaws.com`, or
 * the private DNS name), a proxy, or the loopback emulator
 * (`http://127.0.0.1:<port>`). Plain HTTP is refused except to a loopback
 * address: requests carry data keys and signed credentials. The region is
 * always needed: it is part of every signature.
 * @module
 */
import { InvalidParameterError } from '../../core/errors.js';
import { resolveEndpoint } from '../alibaba/endpoint.js';

const REGION_RE = /^[a-z]{2}(?:-[a-z]+){1,3}-\d{1,2}$/;

/** True when `region` has the shape of an AWS region id (`us-east-1`, `us-gov-west-1`, `cn-north-1`). */
export function isAwsRegion(region: unknown): region is string {
  return typeof region === 'string' && REGION_RE.test(region);
}

/**
 * The endpoint for a region, or a custom one checked.
 * @param region - e.g. `eu-west-1`.
 * @param endpoint - `https://host[:port]`, a bare host (HTTPS), or `http://` to a loopback address; wins over `fips`.
 * @param fips - use `kms-fips.<region>.amazonaws.com`.
 * @returns the origin with path `/`.
 * @throws InvalidParameterError when the region or endpoint is unusable.
 */
export function resolveAwsEndpoint(region: unknown, endpoint: unknown, fips: unknown): URL {
  if (!isAwsRegion(region)) throw new InvalidParameterError('"region" must be an AWS region id such as "us-east-1"');
  if (fips !== undefined && typeof fips !== 'boolean') throw new InvalidParameterError('"fips" must be a boolean');
  if (endpoint !== undefined) return resolveEndpoint(undefined, endpoint);
  const suffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return new URL(`https://${fips ? 'kms-fips' : 'kms'}.${region}.${suffix}/`);
}
