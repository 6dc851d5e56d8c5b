/**
 * Alibaba Cloud's request signature V3 (`ACS3-HMAC-SHA256`), from "Request
 * syntax and signature method V3":
 *
 * ```
 * CanonicalRequest = Method \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n HashedRequestPayload
 * CanonicalHeaders = (lowercase(name) ":" trim(value) "\n")*   for host, content-type and every x-acs-* header, sorted
 * StringToSign     = "ACS3-HMAC-SHA256" \n hex(SHA-256(CanonicalRequest))
 * Signature        = hex(HMAC-SHA256(AccessKeySecret, StringToSign))
 * Authorization    = "ACS3-HMAC-SHA256 Credential=" AccessKeyId ",SignedHeaders=" SignedHeaders ",Signature=" Signature
 * ```
 *
 * RPC APIs (KMS among them) use `/` as CanonicalURI. The published worked
 * example (RunInstances, 2023-10-26T10:22:32Z) hashes its canonical request to
 * `7ea06492…e259` and signs it to `06563a9e…83c0`.
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { type Param, canonicalQuery, percentEncode, sortParams, toHex, utf8 } from './encoding.js';

/** The V3 signature algorithm name. */
export const V3_ALGORITHM = 'ACS3-HMAC-SHA256';

/** What a V3 canonical request is built from. */
export interface V3CanonicalInput {
  /** Upper-case HTTP method. */
  readonly method: string;
  /** Path as sent; `/` for RPC APIs. */
  readonly canonicalUri: string;
  /** Query parameters, decoded. */
  readonly query: readonly Param[];
  /** Header values by lower-case name; every name in `signedHeaders` must be present. */
  readonly headers: Readonly<Record<string, string>>;
  /** Lower-case header names to sign, sorted. */
  readonly signedHeaders: readonly string[];
  /** Lower-case hex SHA-256 of the body (of the empty string when there is none). */
  readonly hashedPayload: string;
  /**
   * How parameter names enter the canonical query string: `encoded` (default: percent-encoded, as
   * the V3 document writes it) or `raw` (as `@alicloud/openapi-util`'s signer does it: names as
   * they are, values percent-encoded). The two agree for names of unreserved characters only.
   */
  readonly queryNames?: 'encoded' | 'raw';
}

/** The canonical query with names as they are and values percent-encoded (the official SDK's form). */
export function canonicalQueryRawNames(params: readonly Param[]): string {
  return sortParams(params)
    .map(([k, v]) => `${k}=${percentEncode(v)}`)
    .join('&');
}

/** Lower-case hex SHA-256 of a payload: the value of `x-acs-content-sha256`. */
export function hashPayload(payload: Uint8Array): string {
  return toHex(sha256(payload));
}

/** Which headers V3 signs: `host`, `content-type` and every `x-acs-*` header, lower case, sorted. */
export function headersToSign(names: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const n of names) {
    const l = n.toLowerCase();
    if (l === 'host' || l === 'content-type' || l.startsWith('x-acs-')) out.add(l);
  }
  return [...out].sort();
}

/**
 * Build the V3 canonical request.
 * @throws RangeError when a signed header has no value.
 */
export function v3CanonicalRequest(input: V3CanonicalInput): string {
  let headers = '';
  for (const name of input.signedHeaders) {
    const v = input.headers[name];
    if (v === undefined) throw new RangeError(`signed header ${name} is missing`);
    headers += `${name}:${v.trim()}\n`;
  }
  return [
    input.method,
    input.canonicalUri,
    input.queryNames === 'raw' ? canonicalQueryRawNames(input.query) : canonicalQuery(input.query),
    headers,
    input.signedHeaders.join(';'),
    input.hashedPayload,
  ].join('\n');
}

/** `ACS3-HMAC-SHA256 \n hex(SHA-256(canonicalRequest))`. */
export function v3StringToSign(canonicalRequest: string): string {
  return `${V3_ALGORITHM}\n${toHex(sha256(utf8(canonicalRequest)))}`;
}

/**
 * The V3 signature of a canonical request.
 * @param canonicalRequest - from {@link v3CanonicalRequest}.
 * @param accessKeySecret - the AccessKey secret (used as the HMAC key as is).
 * @returns lower-case hex HMAC-SHA256.
 */
export function v3Signature(canonicalRequest: string, accessKeySecret: string): string {
  const key = utf8(accessKeySecret);
  try {
    return toHex(hmac(sha256, key, utf8(v3StringToSign(canonicalRequest))));
  } finally {
    key.fill(0);
  }
}

/** The `Authorization` header value. */
export function v3Authorization(accessKeyId: string, signedHeaders: readonly string[], signature: string): string {
  return `${V3_ALGORITHM} Credential=${accessKeyId},SignedHeaders=${signedHeaders.join(';')},Signature=${signature}`;
}

/** The parts of a V3 `Authorization` header, or `undefined` when it is not one. */
export function parseV3Authorization(
  value: string,
): { accessKeyId: string; signedHeaders: string[]; signature: string } | undefined {
  const m = /^ACS3-HMAC-SHA256 Credential=([^,\s]+),SignedHeaders=([a-z0-9;-]+),Signature=([0-9a-f]{64})$/.exec(value.trim());
  if (!m) return undefined;
  return { accessKeyId: m[1]!, signedHeaders: m[2]!.split(';'), signature: m[3]! };
}
