/**
 * Encryption contexts as Alibaba Cloud KMS takes them: a JSON object of string keys and string
 * values, at most {@link KMS_CONTEXT_MAX_CHARS} characters of JSON in all (the service's limit; it
 * has no per-value limit of its own). The provider's direct API checks contexts against that limit,
 * not the envelope layer's (which is stricter: 64 entries, 256-byte keys, 2048-byte values), so a
 * context the service would refuse is an {@link InvalidParameterError} before any request, and
 * never reaches `Decrypt` to come back as a refused blob.
 * @module
 */
import { InvalidParameterError } from '../../core/errors.js';
import { isWellFormed, utf8Encode } from '../../internal/bytes.js';

/** Most characters of JSON an `EncryptionContext` parameter may hold (the service's limit). */
export const KMS_CONTEXT_MAX_CHARS = 8192;

/** A context checked for the service: its entries, and the JSON text sent (`undefined` when empty). */
export interface ServiceContext {
  /** The entries as sent, keys in the order of their UTF-8 bytes. */
  readonly map: Readonly<Record<string, string>>;
  /** The `EncryptionContext` parameter's value; `undefined` for an empty context (not sent). */
  readonly json: string | undefined;
}

function compareUtf8(a: string, b: string): number {
  const x = utf8Encode(a);
  const y = utf8Encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/**
 * Check a context for Alibaba Cloud KMS: `undefined` or a plain object of non-empty string keys and
 * string values (well-formed Unicode), its JSON at most {@link KMS_CONTEXT_MAX_CHARS} characters.
 * @param input - the caller's context.
 * @param what - the parameter's name, for the message.
 * @returns the checked entries and the JSON to send.
 * @throws InvalidParameterError
 */
export function checkServiceContext(input: unknown, what = 'encryptionContext'): ServiceContext {
  if (input === undefined) return { map: {}, json: undefined };
  if (input === null || typeof input !== 'object') throw new InvalidParameterError(`"${what}" must be a plain object of string values`);
  let pairs: [string, string][];
  try {
    const proto = Object.getPrototypeOf(input);
    if (Array.isArray(input) || (proto !== Object.prototype && proto !== null)) {
      throw new InvalidParameterError(`"${what}" must be a plain object of string values`);
    }
    if (Object.getOwnPropertySymbols(input).length > 0) throw new InvalidParameterError(`"${what}" must not have symbol keys`);
    const keys = Object.keys(input);
    // Every entry takes at least 6 characters of JSON ("k":"" and a comma): a bound before any copy.
    if (keys.length > KMS_CONTEXT_MAX_CHARS / 6) {
      throw new InvalidParameterError(`"${what}" is longer than ${KMS_CONTEXT_MAX_CHARS} characters of JSON`);
    }
    pairs = keys.map((k) => {
      const v = (input as Record<string, unknown>)[k];
      if (typeof v !== 'string') throw new InvalidParameterError(`"${what}" value for a key must be a string`);
      return [k, v];
    });
  } catch (e) {
    if (e instanceof InvalidParameterError) throw e;
    throw new InvalidParameterError(`"${what}" could not be read`, { cause: e });
  }
  let total = 2;
  for (const [k, v] of pairs) {
    if (k.length === 0) throw new InvalidParameterError(`"${what}" keys must not be empty`);
    total += k.length + v.length + 6;
    if (total > KMS_CONTEXT_MAX_CHARS * 2) break;
    if (!isWellFormed(k) || !isWellFormed(v)) throw new InvalidParameterError(`"${what}" keys and values must be well-formed Unicode`);
  }
  if (pairs.length === 0) return { map: {}, json: undefined };
  pairs.sort((a, b) => compareUtf8(a[0], b[0]));
  const map: Record<string, string> = Object.create(null);
  for (const [k, v] of pairs) map[k] = v;
  const json = JSON.stringify(Object.fromEntries(pairs));
  if (json.length > KMS_CONTEXT_MAX_CHARS) {
    throw new InvalidParameterError(`"${what}" is ${json.length} characters of JSON; the service's limit is ${KMS_CONTEXT_MAX_CHARS}`);
  }
  return { map, json };
}
