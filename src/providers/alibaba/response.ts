/**
 * Reading KMS answers. Bodies are read as bytes with a size cap; the one
 * secret member (`Plaintext`) is decoded from base64 straight from those bytes
 * and blanked before the rest is parsed as JSON, so a data key never becomes a
 * JavaScript string here. The remaining JSON is read by hand-written readers
 * (no schema library: the provider's bundle stays small).
 *
 * Response members as the KMS 2016-01-20 API documents them: GenerateDataKey
 * (`KeyId`, `KeyVersionId`, `Plaintext`, `CiphertextBlob`, `RequestId`),
 * Decrypt (`KeyId`, `KeyVersionId`, `Plaintext`, `RequestId`), Encrypt and
 * ReEncrypt (`KeyId`, `KeyVersionId`, `CiphertextBlob`, `RequestId`); errors
 * (`Code`, `Message`, `RequestId`, `HostId`, `Recommend`).
 * @module
 */
import { base64DecodeAscii } from '../../internal/base64.js';
import { utf8DecodeStrict, utf8Encode, wipe } from '../../internal/bytes.js';

/** Largest KMS answer read; anything longer is a malformed answer. */
export const MAX_RESPONSE_BYTES = 256 * 1024;

/** The body was longer than {@link MAX_RESPONSE_BYTES}. */
export class ResponseTooLargeError extends Error {
  constructor() {
    super(`response body exceeds ${MAX_RESPONSE_BYTES} bytes`);
    this.name = 'ResponseTooLargeError';
  }
}

/**
 * Read a response body into one buffer, refusing more than `limit` bytes.
 * The chunks are wiped once copied.
 */
export async function readBody(res: Response, limit = MAX_RESPONSE_BYTES): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        throw new ResponseTooLargeError();
      }
      chunks.push(value);
    }
    const out = new Uint8Array(total);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  } finally {
    wipe(...chunks);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const PLACEHOLDER = 0x41; // 'A'

function isJsonSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

function indexesOf(hay: Uint8Array, needle: Uint8Array): number[] {
  const out: number[] = [];
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    out.push(i);
  }
  return out;
}

/** A secret member taken out of a JSON body. */
export interface TakenSecret {
  /** The decoded bytes; the caller owns and wipes them. */
  readonly value: Uint8Array;
  /** What the member's string now holds: this many `A`s. */
  readonly placeholder: string;
}

/**
 * Find the member `"name": "<base64>"` in a JSON body, decode the base64 from the
 * bytes, and overwrite the encoded text in `body` with `A`s (so parsing the body
 * afterwards yields no secret). The member must occur exactly once and hold
 * canonical padded base64 (`\/` escapes allowed).
 * @returns the secret, `undefined` when the member is absent, or `null` when malformed.
 */
export function takeSecretMember(body: Uint8Array, name: string): TakenSecret | undefined | null {
  const at = indexesOf(body, utf8Encode(JSON.stringify(name)));
  if (at.length === 0) return undefined;
  if (at.length > 1) return null;
  let i = at[0]! + name.length + 2;
  while (isJsonSpace(body[i])) i++;
  if (body[i] !== 0x3a) return null; // ':'
  i++;
  while (isJsonSpace(body[i])) i++;
  if (body[i] !== QUOTE) return null;
  const start = ++i;
  while (i < body.length && body[i] !== QUOTE) i += body[i] === BACKSLASH ? 2 : 1;
  if (i >= body.length) return null;
  const end = i;
  const ascii = new Uint8Array(end - start);
  let n = 0;
  let ok = true;
  for (let k = start; k < end; k++) {
    const b = body[k]!;
    if (b === BACKSLASH) {
      if (body[k + 1] !== 0x2f) ok = false; // only "\/" may appear in base64 text
      continue;
    }
    ascii[n++] = b;
  }
  const value = ok ? base64DecodeAscii(ascii.subarray(0, n)) : undefined;
  wipe(ascii);
  body.fill(PLACEHOLDER, start, end);
  if (!value) return null;
  return { value, placeholder: 'A'.repeat(end - start) };
}

/** Parse a JSON body (already free of secrets); `undefined` when it is not JSON. */
export function parseJson(body: Uint8Array): unknown {
  const text = utf8DecodeStrict(body);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A member of a checked answer could not be read as documented. */
export class AnswerShapeError extends Error {
  /** @param member - the member that is missing or malformed. */
  constructor(readonly member: string) {
    super(`member ${member} is missing or not as documented`);
    this.name = 'AnswerShapeError';
  }
}

const BLOB_TEXT_RE = /^[A-Za-z0-9+/]+={0,2}$/;

function stringMember(json: Record<string, unknown>, name: string, min: number, max: number, optional: boolean): string | undefined {
  const v = Object.prototype.hasOwnProperty.call(json, name) ? json[name] : undefined;
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v.length < min || v.length > max) throw new AnswerShapeError(name);
  return v;
}

/** A KMS answer's members as the provider reads them (`Plaintext` already taken out). */
export interface KmsAnswer {
  readonly KeyId: string;
  readonly KeyVersionId: string | undefined;
  readonly RequestId: string;
  /** Present when the operation returns one (GenerateDataKey*, Encrypt, ReEncrypt). */
  readonly CiphertextBlob: string | undefined;
  /** The placeholder left where the secret member was, when the operation returns one. */
  readonly Plaintext: string | undefined;
}

/** Which members an operation's answer must carry. */
export interface AnswerShape {
  readonly ciphertextBlob: boolean;
  readonly plaintext: boolean;
}

/** GenerateDataKey: `KeyId`, `KeyVersionId`, `Plaintext`, `CiphertextBlob`, `RequestId`. */
export const generateDataKeyResponse: AnswerShape = Object.freeze({ ciphertextBlob: true, plaintext: true });
/** GenerateDataKeyWithoutPlaintext, Encrypt and ReEncrypt: `KeyId`, `KeyVersionId`, `CiphertextBlob`, `RequestId`. */
export const encryptResponse: AnswerShape = Object.freeze({ ciphertextBlob: true, plaintext: false });
/** Decrypt: `KeyId`, `KeyVersionId`, `Plaintext`, `RequestId`. */
export const decryptResponse: AnswerShape = Object.freeze({ ciphertextBlob: false, plaintext: true });

/**
 * Read a KMS answer (a hand-written reader: the members the API documents, nothing else looked at).
 * @throws AnswerShapeError naming the first member that is missing or malformed.
 */
export function readAnswer(json: unknown, shape: AnswerShape): KmsAnswer {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new AnswerShapeError('(body)');
  const o = json as Record<string, unknown>;
  const KeyId = stringMember(o, 'KeyId', 1, 2048, false)!;
  const KeyVersionId = stringMember(o, 'KeyVersionId', 1, 256, true);
  const RequestId = stringMember(o, 'RequestId', 1, 256, false)!;
  let CiphertextBlob: string | undefined;
  if (shape.ciphertextBlob) {
    CiphertextBlob = stringMember(o, 'CiphertextBlob', 4, 65536, false)!;
    if (!BLOB_TEXT_RE.test(CiphertextBlob)) throw new AnswerShapeError('CiphertextBlob');
  }
  const Plaintext = shape.plaintext ? stringMember(o, 'Plaintext', 0, 65536, false) : undefined;
  return { KeyId, KeyVersionId, RequestId, CiphertextBlob, Plaintext };
}

/** What a KMS error answer says. Every member may be missing (a proxy's 502 page has none). */
export interface KmsErrorBody {
  readonly code?: string | undefined;
  readonly message?: string | undefined;
  readonly requestId?: string | undefined;
  readonly hostId?: string | undefined;
  /** `Recommend`: the service's link to its diagnosis page for this request. */
  readonly recommend?: string | undefined;
}

function optionalText(o: Record<string, unknown>, names: readonly string[], min: number, max: number): string | undefined {
  for (const n of names) {
    const v = Object.prototype.hasOwnProperty.call(o, n) ? o[n] : undefined;
    if (v === undefined) continue;
    return typeof v === 'string' && v.length >= min && v.length <= max ? v : undefined;
  }
  return undefined;
}

/**
 * Read a KMS error body (JSON `Code`/`Message`/`RequestId`/`HostId`/`Recommend`, either case);
 * `{}` when unreadable. A member of the wrong type or length is left out.
 */
export function parseErrorBody(body: Uint8Array): KmsErrorBody {
  const json = parseJson(body);
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return {};
  const o = json as Record<string, unknown>;
  return {
    code: optionalText(o, ['Code', 'code'], 1, 256),
    message: optionalText(o, ['Message', 'message'], 0, 65536),
    requestId: optionalText(o, ['RequestId', 'requestId'], 0, 256),
    hostId: optionalText(o, ['HostId', 'hostId'], 0, 512),
    recommend: optionalText(o, ['Recommend', 'recommend'], 0, 2048),
  };
}
