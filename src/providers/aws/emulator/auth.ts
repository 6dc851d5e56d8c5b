/**
 * Request authentication for the AWS KMS emulator, as AWS does it: the SigV4
 * signature recomputed over exactly what was sent (method, path, query, the
 * values of the headers the client signed, the SHA-256 of the body received),
 * a credential scope for this emulator's region and the `kms` service, dated
 * the day of `X-Amz-Date`, an `X-Amz-Date` within 5 minutes of the emulator's
 * clock, and the session token of a temporary credential.
 *
 * Failures answer as the service does: `MissingAuthenticationTokenException`
 * (no `Authorization`), `IncompleteSignatureException` (a malformed one, or a
 * required header unsigned), `UnrecognizedClientException` (unknown access key
 * or wrong session token), `InvalidSignatureException` (wrong signature,
 * expired or future date, wrong scope), all HTTP 400.
 * @module
 */
import { constantTimeEqual, utf8Encode } from '../../../internal/bytes.js';
import {
  type QueryParam,
  amzDate,
  canonicalRequest,
  credentialScope,
  hashHex,
  parseAmzDate,
  parseAuthorization,
  signature,
  stringToSign,
} from '../sigv4.js';
import { awsErrors } from './errors.js';

/** A credential the emulator accepts. */
export interface AwsEmulatorCredential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** When set, requests with this access key must carry this `X-Amz-Security-Token`. */
  readonly sessionToken?: string | undefined;
}

/** What arrived, before authentication. */
export interface IncomingAwsCall {
  readonly method: string;
  /** Path, decoded. */
  readonly path: string;
  readonly query: readonly QueryParam[];
  /** Header values by lower-case name, each name's values as received. */
  readonly headers: Readonly<Record<string, readonly string[]>>;
  readonly body: Uint8Array;
}

/** Headers every request must sign. */
const REQUIRED_SIGNED = ['host', 'x-amz-date', 'x-amz-target'];

function equalStrings(a: string, b: string): boolean {
  return constantTimeEqual(utf8Encode(a), utf8Encode(b));
}

/** Verifies SigV4 signatures for one region. */
export class AwsAuthenticator {
  readonly #credentials: Map<string, AwsEmulatorCredential>;
  readonly #region: string;
  readonly #skewMs: number;
  readonly #now: () => number;

  /**
   * @param credentials - the accepted access keys.
   * @param region - the region requests must be signed for.
   * @param maxSkewMs - how far `X-Amz-Date` may be from the emulator's clock.
   * @param now - the emulator's clock.
   */
  constructor(credentials: readonly AwsEmulatorCredential[], region: string, maxSkewMs: number, now: () => number) {
    this.#credentials = new Map(credentials.map((c) => [c.accessKeyId, c]));
    this.#region = region;
    this.#skewMs = maxSkewMs;
    this.#now = now;
  }

  /**
   * Authenticate a call.
   * @returns the access key id that signed it.
   * @throws AwsApiError with the service's error type for what is wrong.
   */
  verify(call: IncomingAwsCall): string {
    const authz = call.headers['authorization'];
    if (authz === undefined) throw awsErrors.missingToken();
    if (authz.length !== 1) throw awsErrors.incompleteSignature('Authorization header appears more than once.');
    const auth = parseAuthorization(authz[0]!);
    if (!auth) {
      throw awsErrors.incompleteSignature(
        "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters, with the AWS4-HMAC-SHA256 algorithm.",
      );
    }
    const signed = auth.signedHeaders;
    const sorted = [...new Set(signed)].sort();
    if (sorted.length !== signed.length || sorted.some((h, i) => h !== signed[i])) {
      throw awsErrors.incompleteSignature('SignedHeaders must be sorted, lower case and unique.');
    }
    for (const h of REQUIRED_SIGNED) {
      if (!signed.includes(h)) throw awsErrors.incompleteSignature(`Header ${h} must be signed.`);
    }
    if (call.headers['x-amz-security-token'] !== undefined && !signed.includes('x-amz-security-token')) {
      throw awsErrors.incompleteSignature('Header x-amz-security-token must be signed.');
    }
    const values: Record<string, readonly string[]> = {};
    for (const h of signed) {
      const v = call.headers[h];
      if (v === undefined) throw awsErrors.incompleteSignature(`Signed header ${h} is missing.`);
      values[h] = v;
    }
    const c = this.#credentials.get(auth.accessKeyId);
    if (!c) throw awsErrors.unrecognizedClient();
    const dateText = values['x-amz-date']!;
    const date = dateText.length === 1 ? parseAmzDate(dateText[0]!) : undefined;
    if (date === undefined) throw awsErrors.incompleteSignature('X-Amz-Date must be one date in the ISO 8601 basic format yyyyMMddTHHmmssZ.');
    const now = this.#now();
    if (date < now - this.#skewMs) {
      throw awsErrors.invalidSignature(`Signature expired: ${amzDate(date)} is now earlier than ${amzDate(now - this.#skewMs)} (${amzDate(now)} - 5 min.)`);
    }
    if (date > now + this.#skewMs) {
      throw awsErrors.invalidSignature(`Signature not yet current: ${amzDate(date)} is still later than ${amzDate(now + this.#skewMs)} (${amzDate(now)} + 5 min.)`);
    }
    if (auth.date !== dateText[0]!.slice(0, 8)) {
      throw awsErrors.invalidSignature(`Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.date}' != '${dateText[0]!.slice(0, 8)}', from '${dateText[0]}'.`);
    }
    if (auth.service !== 'kms') throw awsErrors.invalidSignature("Credential should be scoped to correct service: 'kms'.");
    if (auth.region !== this.#region) {
      throw awsErrors.invalidSignature(`Credential should be scoped to a valid region, not '${auth.region}'.`);
    }
    const bodyHash = hashHex(call.body);
    const claimed = call.headers['x-amz-content-sha256'];
    if (claimed !== undefined && (claimed.length !== 1 || !equalStrings(claimed[0]!, bodyHash))) {
      throw awsErrors.invalidSignature('The provided x-amz-content-sha256 header does not match what was computed.');
    }
    const canonical = canonicalRequest({ method: call.method, path: call.path, query: call.query, headers: values, signedHeaders: signed, payloadHash: bodyHash });
    const scope = credentialScope(auth.date, auth.region, auth.service);
    const toSign = stringToSign(dateText[0]!, scope, canonical);
    const expected = signature(c.secretAccessKey, auth.date, auth.region, auth.service, toSign);
    if (!equalStrings(expected, auth.signature)) throw awsErrors.signatureMismatch(canonical, toSign);
    const token = call.headers['x-amz-security-token'];
    if (c.sessionToken === undefined ? token !== undefined : token === undefined || token.length !== 1 || !equalStrings(token[0]!, c.sessionToken)) {
      throw awsErrors.unrecognizedClient();
    }
    return c.accessKeyId;
  }
}
