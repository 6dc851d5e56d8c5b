/**
 * AWS Signature Version 4 (`AWS4-HMAC-SHA256`), header form, as the AWS
 * General Reference ("Create a signed AWS API request") defines it:
 *
 * ```
 * CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n hex(SHA-256(payload))
 * CanonicalHeaders = (lowercase(name) ":" trim-and-collapse(values joined by ",") "\n")*   sorted by name
 * Scope            = yyyymmdd "/" region "/" service "/aws4_request"
 * StringToSign     = "AWS4-HMAC-SHA256" \n X-Amz-Date \n Scope \n hex(SHA-256(CanonicalRequest))
 * kSigning         = HMAC(HMAC(HMAC(HMAC("AWS4" || secret, yyyymmdd), region), service), "aws4_request")
 * Signature        = hex(HMAC-SHA256(kSigning, StringToSign))
 * ```
 *
 * One implementation both signs (the provider) and verifies over the headers a
 * client chose to sign (the emulator), on @noble/hashes, synchronously and
 * without `node:*`: this is why it is not a dependency (the small signers sign a
 * `Request` with their own choice of headers and cannot recompute a signature over
 * another client's `SignedHeaders`). It is checked against AWS's published
 * "aws-sig-v4-test-suite" (test/vectors/sigv4/).
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex, utf8Encode, wipe } from '../../internal/bytes.js';

/** The algorithm name in `Authorization` and the string to sign. */
export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';

/** One query parameter, decoded: `[name, value]`. */
export type QueryParam = readonly [name: string, value: string];

/** What a canonical request is built from. */
export interface SigV4CanonicalInput {
  /** Upper-case HTTP method. */
  readonly method: string;
  /** The path, decoded (`/` for KMS). */
  readonly path: string;
  /** Query parameters, decoded. */
  readonly query?: readonly QueryParam[];
  /** Header values by lower-case name; a name may have several values (in the order received). */
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  /** Lower-case names of the headers to sign; sorted here. */
  readonly signedHeaders: readonly string[];
  /** Lower-case hex SHA-256 of the payload. */
  readonly payloadHash: string;
  /** Normalize the path (remove `.`/`..` segments, collapse `//`), as every service but S3 does. Default true. */
  readonly normalizePath?: boolean;
}

export { toHex } from '../../internal/bytes.js';

/** Lower-case hex SHA-256 of a payload (or of the UTF-8 of a string). */
export function hashHex(payload: Uint8Array | string): string {
  return toHex(sha256(typeof payload === 'string' ? utf8Encode(payload) : payload));
}

/** RFC 3986 encoding as SigV4 wants it: everything but `A-Z a-z 0-9 - _ . ~` as `%XY` (upper-case hex over UTF-8). */
export function uriEncode(value: string, keepSlash = false): string {
  const enc = encodeURIComponent(value).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return keepSlash ? enc.replace(/%2F/g, '/') : enc;
}

/** The canonical URI of a decoded path: normalized (unless S3), each segment encoded. */
export function canonicalUri(path: string, normalize = true): string {
  if (path === '') return '/';
  let p = path;
  if (normalize) {
    const out: string[] = [];
    for (const seg of p.split('/')) {
      if (seg === '' || seg === '.') continue;
      if (seg === '..') out.pop();
      else out.push(seg);
    }
    p = '/' + out.join('/') + (out.length > 0 && /\/\.{0,2}$/.test(p) ? '/' : '');
  }
  return uriEncode(p, true);
}

/** The canonical query string: encoded pairs sorted by name, then value; `name=` for an empty value. */
export function canonicalQueryString(query: readonly QueryParam[]): string {
  return query
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** A header's canonical value: every value trimmed, inner runs of spaces collapsed, joined with `,`. */
function canonicalValue(v: string | readonly string[]): string {
  const values = typeof v === 'string' ? [v] : v;
  return values.map((x) => x.trim().replace(/\s+/g, ' ')).join(',');
}

/**
 * Build the canonical request.
 * @throws RangeError when a signed header is missing.
 */
export function canonicalRequest(input: SigV4CanonicalInput): string {
  const signed = [...new Set(input.signedHeaders.map((h) => h.toLowerCase()))].sort();
  let headers = '';
  for (const name of signed) {
    const v = input.headers[name];
    if (v === undefined) throw new RangeError(`signed header ${name} is missing`);
    headers += `${name}:${canonicalValue(v)}\n`;
  }
  return [
    input.method.toUpperCase(),
    canonicalUri(input.path, input.normalizePath ?? true),
    canonicalQueryString(input.query ?? []),
    headers,
    signed.join(';'),
    input.payloadHash,
  ].join('\n');
}

/** `yyyymmdd/region/service/aws4_request`. */
export function credentialScope(date: string, region: string, service: string): string {
  return `${date}/${region}/${service}/aws4_request`;
}

/** The string to sign for an `X-Amz-Date` (`yyyymmddThhmmssZ`) and a scope. */
export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return `${SIGV4_ALGORITHM}\n${amzDate}\n${scope}\n${hashHex(canonical)}`;
}

/**
 * The signature of a string to sign.
 * @param secretAccessKey - the secret key (only ever used as HMAC key material, never returned).
 * @returns lower-case hex.
 */
export function signature(secretAccessKey: string, date: string, region: string, service: string, toSign: string): string {
  const k0 = utf8Encode(`AWS4${secretAccessKey}`);
  const kDate = hmac(sha256, k0, utf8Encode(date));
  const kRegion = hmac(sha256, kDate, utf8Encode(region));
  const kService = hmac(sha256, kRegion, utf8Encode(service));
  const kSigning = hmac(sha256, kService, utf8Encode('aws4_request'));
  try {
    return toHex(hmac(sha256, kSigning, utf8Encode(toSign)));
  } finally {
    wipe(k0, kDate, kRegion, kService, kSigning);
  }
}

/** `X-Amz-Date` of a time: `yyyymmddThhmmssZ` (UTC). */
export function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** Parse `yyyymmddThhmmssZ` strictly; `undefined` when it is not exactly that. */
export function parseAmzDate(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return Number.isFinite(ms) && amzDate(ms) === text ? ms : undefined;
}

/** The `Authorization` header value. */
export function authorizationHeader(accessKeyId: string, scope: string, signedHeaders: readonly string[], sig: string): string {
  const signed = [...new Set(signedHeaders.map((h) => h.toLowerCase()))].sort();
  return `${SIGV4_ALGORITHM} Credential=${accessKeyId}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${sig}`;
}

/** The parts of an `Authorization` header. */
export interface ParsedAuthorization {
  readonly accessKeyId: string;
  readonly date: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

/** Parse an `AWS4-HMAC-SHA256` `Authorization` header; `undefined` when it is not one. */
export function parseAuthorization(value: string): ParsedAuthorization | undefined {
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;._-]+),\s*Signature=([0-9a-f]{64})$/.exec(
      value.trim(),
    );
  if (!m) return undefined;
  return { accessKeyId: m[1]!, date: m[2]!, region: m[3]!, service: m[4]!, signedHeaders: m[5]!.split(';'), signature: m[6]! };
}

/** Credentials a request is signed with. */
export interface SigningCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

/**
 * Sign a request: add `x-amz-date` (and `x-amz-security-token` when there is a session token, signed)
 * and `authorization` to `headers`. Every header given is signed; `host` must be among them.
 * @returns a new header object (lower-case names).
 */
export function signRequest(input: {
  readonly method: string;
  readonly path: string;
  readonly query?: readonly QueryParam[];
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  readonly credentials: SigningCredentials;
  readonly region: string;
  readonly service: string;
  readonly now: number;
}): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers)) headers[k.toLowerCase()] = v;
  const date = amzDate(input.now);
  headers['x-amz-date'] = date;
  if (input.credentials.sessionToken !== undefined) headers['x-amz-security-token'] = input.credentials.sessionToken;
  const signed = Object.keys(headers).sort();
  const canonical = canonicalRequest({
    method: input.method,
    path: input.path,
    query: input.query,
    headers,
    signedHeaders: signed,
    payloadHash: hashHex(input.body),
  });
  const scope = credentialScope(date.slice(0, 8), input.region, input.service);
  const sig = signature(input.credentials.secretAccessKey, date.slice(0, 8), input.region, input.service, stringToSign(date, scope, canonical));
  headers['authorization'] = authorizationHeader(input.credentials.accessKeyId, scope, signed, sig);
  return headers;
}
