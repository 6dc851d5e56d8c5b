/**
 * Alibaba Cloud's RPC request signature V1 (`SignatureMethod=HMAC-SHA1`,
 * `SignatureVersion=1.0`), from the "Request signatures" document:
 *
 * ```
 * StringToSign = HTTPMethod || "&" || percentEncode("/") || "&" || percentEncode(CanonicalizedQueryString)
 * Signature    = Base64(HMAC-SHA1(key = AccessKeySecret || "&", StringToSign))
 * ```
 *
 * `CanonicalizedQueryString` covers every request parameter (common and
 * operation-specific, query and form body) except `Signature` itself.
 * Published example (AccessKeyId `testid`, secret `testsecret`, DescribeRegions):
 * `OLeaidS1JvxuMvnyHOwuJ+uX5qY=` for GET, `MxbnVAM4w6sft9xjVpe/GCKueuk=` for POST.
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { base64Encode } from '../../internal/base64.js';
import { type Param, canonicalQuery, percentEncode, utf8 } from './encoding.js';

/** The value of `SignatureMethod` for V1. */
export const V1_SIGNATURE_METHOD = 'HMAC-SHA1';
/** The value of `SignatureVersion` for V1. */
export const V1_SIGNATURE_VERSION = '1.0';

/**
 * The V1 string to sign.
 * @param method - `GET` or `POST` (upper case, as sent).
 * @param params - every parameter but `Signature`.
 * @returns `METHOD&%2F&percentEncode(canonical query)`.
 */
export function v1StringToSign(method: string, params: readonly Param[]): string {
  return `${method}&${percentEncode('/')}&${percentEncode(canonicalQuery(params.filter(([k]) => k !== 'Signature')))}`;
}

/**
 * The V1 signature of a request.
 * @param method - `GET` or `POST`.
 * @param params - every parameter (a `Signature` entry is ignored).
 * @param accessKeySecret - the AccessKey secret; `&` is appended as the documentation requires.
 * @returns the base64 signature, the value of the `Signature` parameter.
 */
export function v1Signature(method: string, params: readonly Param[], accessKeySecret: string): string {
  const key = utf8(accessKeySecret + '&');
  try {
    return base64Encode(hmac(sha1, key, utf8(v1StringToSign(method, params))));
  } finally {
    key.fill(0);
  }
}
