/**
 * Request authentication for the emulator, as Alibaba Cloud's API gateway does
 * it: a V1 (`HMAC-SHA1`) or V3 (`ACS3-HMAC-SHA256`) signature recomputed over
 * exactly what was sent (the decoded query and form parameters for V1; the
 * method, path, decoded query, the signed headers' values and the body's
 * SHA-256 for V3), a timestamp within the allowed skew, and a nonce never seen
 * before within that window.
 *
 * Both wire styles of the official SDKs pass: `@alicloud/kms20160120@1.2.0`
 * (V1, `EncryptionContext.<key>=<value>` flattened into the query, `!*()` left
 * unencoded in the URL) and `@alicloud/openapi-client` (V3, parameters in the
 * query, `Action`/`Version` as `x-acs-action`/`x-acs-version` headers). Percent-
 * encoding differences in the URL do not matter: the server decodes, then
 * re-encodes canonically, as the signature documents prescribe.
 * @module
 */
import type { IncomingHttpHeaders } from 'node:http';
import { constantTimeEqual, utf8Encode } from '../../../internal/bytes.js';
import { type Param, parseIsoSeconds } from '../encoding.js';
import { V1_SIGNATURE_METHOD, V1_SIGNATURE_VERSION, v1Signature, v1StringToSign } from '../signature-v1.js';
import { hashPayload, parseV3Authorization, v3CanonicalRequest, v3Signature } from '../signature-v3.js';
import { kmsErrors } from './kms-error.js';

/** A credential the emulator accepts. */
export interface EmulatorCredential {
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
  /** When set, requests with this AccessKey must carry this STS token. */
  readonly securityToken?: string | undefined;
}

/** What arrived, before authentication. */
export interface IncomingCall {
  readonly method: string;
  readonly pathname: string;
  readonly query: readonly Param[];
  readonly form: readonly Param[];
  /** Header values by lower-case name, each name's values as received. */
  readonly headers: Readonly<Record<string, readonly string[]>>;
  readonly body: Uint8Array;
}

/** An authenticated call. */
export interface AuthenticatedCall {
  readonly signatureVersion: 'v1' | 'v3';
  readonly accessKeyId: string;
  readonly action: string;
  readonly version: string;
  /** Operation parameters (common ones removed), from query and form body. */
  readonly params: ReadonlyMap<string, string>;
  /** Answer format: V3 is always JSON; V1 follows `Format` (default XML, as the API). */
  readonly format: 'JSON' | 'XML';
}

/** V1 common parameters, removed from the operation's parameters. */
const V1_COMMON = new Set([
  'Action',
  'Version',
  'Format',
  'AccessKeyId',
  'SignatureMethod',
  'SignatureVersion',
  'SignatureNonce',
  'Timestamp',
  'Signature',
  'SecurityToken',
  'SignatureType',
  'RegionId',
]);

/** Headers V3 requires to be signed. */
const V3_REQUIRED = ['host', 'x-acs-action', 'x-acs-content-sha256', 'x-acs-date', 'x-acs-signature-nonce', 'x-acs-version'];

/** Copy Node's `headersDistinct` (or `headers`) into plain arrays by lower-case name. */
export function distinctHeaders(h: IncomingHttpHeaders | NodeJS.Dict<string[]>): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null);
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? [...v] : [v];
  }
  return out;
}

function mergeParams(a: readonly Param[], b: readonly Param[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of [...a, ...b]) {
    if (m.has(k)) throw kmsErrors.invalidParameter(k);
    m.set(k, v);
  }
  return m;
}

function equalStrings(a: string, b: string): boolean {
  return constantTimeEqual(utf8Encode(a), utf8Encode(b));
}

/**
 * Verifies signatures, timestamps and nonces.
 */
export class Authenticator {
  readonly #credentials: Map<string, EmulatorCredential>;
  readonly #skewMs: number;
  readonly #now: () => number;
  /** nonce key → time after which it may be forgotten. */
  readonly #nonces = new Map<string, number>();

  /**
   * @param credentials - the accepted AccessKeys.
   * @param maxSkewMs - how far a request's timestamp may be from the emulator's clock.
   * @param now - the emulator's clock.
   */
  constructor(credentials: readonly EmulatorCredential[], maxSkewMs: number, now: () => number) {
    this.#credentials = new Map(credentials.map((c) => [c.accessKeyId, c]));
    this.#skewMs = maxSkewMs;
    this.#now = now;
  }

  /**
   * Authenticate a call.
   * @throws KmsApiError with the gateway's code for what is wrong.
   */
  verify(call: IncomingCall): AuthenticatedCall {
    const authorization = call.headers['authorization'];
    if (authorization !== undefined) {
      if (authorization.length !== 1 || !authorization[0]!.startsWith('ACS3-HMAC-SHA256 ')) throw kmsErrors.incompleteSignature();
      return this.#verifyV3(call, authorization[0]!);
    }
    if (call.query.some(([k]) => k === 'Signature') || call.form.some(([k]) => k === 'Signature')) return this.#verifyV1(call);
    throw kmsErrors.incompleteSignature('The request carries no signature.');
  }

  #credential(accessKeyId: string | undefined): EmulatorCredential {
    if (accessKeyId === undefined || accessKeyId === '') throw kmsErrors.missingParameter('AccessKeyId');
    const c = this.#credentials.get(accessKeyId);
    if (!c) throw kmsErrors.accessKeyNotFound();
    return c;
  }

  #checkTime(text: string | undefined, name: string): void {
    const t = text === undefined ? undefined : parseIsoSeconds(text);
    if (t === undefined) throw kmsErrors.illegalTimestamp(name);
    if (Math.abs(this.#now() - t) > this.#skewMs) throw kmsErrors.expiredTimestamp();
  }

  #checkToken(c: EmulatorCredential, sent: string | undefined): void {
    if (c.securityToken === undefined ? sent !== undefined : sent === undefined || !equalStrings(sent, c.securityToken)) {
      throw kmsErrors.securityTokenMismatch();
    }
  }

  /** Record a nonce; a nonce seen within the window is a replay. Checked after the signature. */
  #useNonce(accessKeyId: string, nonce: string): void {
    const now = this.#now();
    if (this.#nonces.size > 10_000) for (const [k, until] of this.#nonces) if (until < now) this.#nonces.delete(k);
    const key = `${accessKeyId}\n${nonce}`;
    const until = this.#nonces.get(key);
    if (until !== undefined && until >= now) throw kmsErrors.nonceUsed();
    this.#nonces.set(key, now + 2 * this.#skewMs);
  }

  #verifyV1(call: IncomingCall): AuthenticatedCall {
    const all = mergeParams(call.query, call.form);
    const get = (k: string) => all.get(k);
    if (get('SignatureMethod') !== V1_SIGNATURE_METHOD || get('SignatureVersion') !== V1_SIGNATURE_VERSION) {
      throw kmsErrors.incompleteSignature('SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0.');
    }
    const c = this.#credential(get('AccessKeyId'));
    this.#checkTime(get('Timestamp'), 'Timestamp');
    const nonce = get('SignatureNonce');
    if (!nonce) throw kmsErrors.missingParameter('SignatureNonce');
    const params = [...all].filter(([k]) => k !== 'Signature');
    const expected = v1Signature(call.method, params, c.accessKeySecret);
    if (!equalStrings(expected, get('Signature')!)) throw kmsErrors.signatureDoesNotMatch(v1StringToSign(call.method, params));
    this.#checkToken(c, get('SecurityToken'));
    this.#useNonce(c.accessKeyId, nonce);
    const action = get('Action');
    if (!action) throw kmsErrors.missingParameter('Action');
    const format = (get('Format') ?? 'XML').toUpperCase();
    if (format !== 'JSON' && format !== 'XML') throw kmsErrors.invalidParameter('Format');
    return {
      signatureVersion: 'v1',
      accessKeyId: c.accessKeyId,
      action,
      version: get('Version') ?? '',
      params: new Map([...all].filter(([k]) => !V1_COMMON.has(k))),
      format,
    };
  }

  #verifyV3(call: IncomingCall, authorization: string): AuthenticatedCall {
    const auth = parseV3Authorization(authorization);
    if (!auth) throw kmsErrors.incompleteSignature('The Authorization header is malformed.');
    const signed = auth.signedHeaders;
    const sorted = [...new Set(signed)].sort();
    if (sorted.length !== signed.length || sorted.some((h, i) => h !== signed[i])) {
      throw kmsErrors.incompleteSignature('SignedHeaders must be sorted and unique.');
    }
    for (const h of V3_REQUIRED) if (!signed.includes(h)) throw kmsErrors.incompleteSignature(`Header ${h} must be signed.`);
    for (const h of Object.keys(call.headers)) {
      if ((h.startsWith('x-acs-') || h === 'content-type') && !signed.includes(h)) {
        throw kmsErrors.incompleteSignature(`Header ${h} must be signed.`);
      }
    }
    const one: Record<string, string> = {};
    for (const h of signed) {
      const v = call.headers[h];
      if (v === undefined) throw kmsErrors.incompleteSignature(`Signed header ${h} is missing.`);
      if (v.length !== 1) throw kmsErrors.incompleteSignature(`Signed header ${h} appears more than once.`);
      one[h] = v[0]!;
    }
    const c = this.#credential(auth.accessKeyId);
    const namedKey = one['x-acs-accesskey-id'];
    if (namedKey !== undefined && namedKey !== auth.accessKeyId) throw kmsErrors.incompleteSignature('x-acs-accesskey-id differs from the Credential.');
    this.#checkTime(one['x-acs-date'], 'x-acs-date');
    const nonce = one['x-acs-signature-nonce']!;
    if (!nonce) throw kmsErrors.missingParameter('x-acs-signature-nonce');
    const hashed = one['x-acs-content-sha256']!;
    const canonical = v3CanonicalRequest({
      method: call.method,
      canonicalUri: call.pathname,
      query: call.query,
      headers: one,
      signedHeaders: signed,
      hashedPayload: hashed,
    });
    // The V3 document percent-encodes parameter names; Alibaba's own signer (@alicloud/openapi-util)
    // leaves them as they are. The gateway accepts what the SDK sends, so either form passes.
    const matches =
      equalStrings(v3Signature(canonical, c.accessKeySecret), auth.signature) ||
      equalStrings(
        v3Signature(v3CanonicalRequest({ method: call.method, canonicalUri: call.pathname, query: call.query, headers: one, signedHeaders: signed, hashedPayload: hashed, queryNames: 'raw' }), c.accessKeySecret),
        auth.signature,
      );
    if (!matches) throw kmsErrors.signatureDoesNotMatch();
    if (!equalStrings(hashPayload(call.body), hashed)) throw kmsErrors.signatureDoesNotMatch();
    this.#checkToken(c, one['x-acs-security-token']);
    this.#useNonce(c.accessKeyId, nonce);
    const params = mergeParams(call.query, call.form);
    for (const [k, header] of [['Action', 'x-acs-action'], ['Version', 'x-acs-version']] as const) {
      const v = params.get(k);
      if (v !== undefined && v !== one[header]) throw kmsErrors.invalidParameter(k);
      params.delete(k);
    }
    return {
      signatureVersion: 'v3',
      accessKeyId: c.accessKeyId,
      action: one['x-acs-action']!,
      version: one['x-acs-version']!,
      params,
      format: 'JSON',
    };
  }
}
