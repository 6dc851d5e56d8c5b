/**
 * Encodings shared by Alibaba Cloud's two request signatures: the RFC 3986
 * percent-encoding both use (unreserved `A-Z a-z 0-9 - _ . ~` left alone,
 * everything else `%XY` in upper-case hex over UTF-8, space as `%20`, never `+`),
 * the canonical query string (parameters sorted by name, `name=value` joined
 * with `&`), and lower-case hex.
 *
 * Implements the encoding rules of Alibaba Cloud's "Request signatures" (RPC,
 * V1) and "Request syntax and signature method V3" (CanonicalQueryString).
 * @module
 */
import { InvalidParameterError } from '../../core/errors.js';
import { isWellFormed, utf8Encode } from '../../internal/bytes.js';

/**
 * Percent-encode one name or value as both signatures require (RFC 3986):
 * `encodeURIComponent`, then also `! ' ( ) *`, which it leaves alone.
 * @throws InvalidParameterError for a string with lone surrogates (it has no UTF-8 form).
 */
export function percentEncode(value: string): string {
  if (!isWellFormed(value)) throw new InvalidParameterError('a request parameter is not well-formed Unicode');
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** One request parameter, `[name, value]`, before encoding. */
export type Param = readonly [name: string, value: string];

/** Sort parameters by name (UTF-16 code units, as the official SDKs do), then by value. */
export function sortParams(params: readonly Param[]): Param[] {
  return [...params].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
}

/** `encode(name)=encode(value)` for every parameter, sorted by name, joined with `&`. */
export function canonicalQuery(params: readonly Param[]): string {
  return sortParams(params)
    .map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`)
    .join('&');
}

export { toHex } from '../../internal/bytes.js';

/** UTF-8 bytes of a string (re-exported for the signers). */
export const utf8 = utf8Encode;

/** `YYYY-MM-DDThh:mm:ssZ` (UTC, no fraction): the timestamp both signatures carry. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Parse `YYYY-MM-DDThh:mm:ssZ` strictly; `undefined` when the text is not exactly that. */
export function parseIsoSeconds(text: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(text)) return undefined;
  const ms = Date.parse(text);
  if (!Number.isFinite(ms) || isoSeconds(ms) !== text) return undefined;
  return ms;
}
