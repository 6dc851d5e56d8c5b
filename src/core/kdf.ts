/**
 * Key schedule of suite 0x01 (SPEC.md §3.3): one HKDF-SHA-256 extract from the
 * data key and the message id, then one expand per purpose with a versioned label.
 *
 * HKDF (RFC 5869) is written out here as its HMAC calls, so that a backend
 * with a faster HMAC-SHA-256 (`node:crypto`, through {@link AesGcm.hmacSha256})
 * can run it: every output is 32 bytes, one hash length, so each expand is the
 * single block `T(1) = HMAC(prk, info || 0x01)`. Without such a backend the
 * HMAC is @noble/hashes'. Both give the same bytes.
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { AesGcm } from './aead/types.js';
import { InvalidParameterError } from './errors.js';
import { isBytes, utf8Encode, wipe } from '../internal/bytes.js';

/**
 * HKDF info labels of suite 0x01 (SPEC.md §3.3). Literal strings that name the format version,
 * the suite and, for a key of one layout only, the layout, so that no later suite or layout can
 * share a derivation with these. The commitment is the suite's: every layout's header carries it.
 */
export const LABELS = Object.freeze({
  content: 'envelope-kit/v1/suite-01/layout-00/content-key',
  commitment: 'envelope-kit/v1/suite-01/key-commitment',
});

/** HMAC-SHA-256 of `message` under `key` (RFC 2104); returns a fresh 32-byte array the caller owns. */
export type HmacSha256 = (key: Uint8Array, message: Uint8Array) => Uint8Array;

/** The portable HMAC-SHA-256 (@noble/hashes). */
export const nobleHmacSha256: HmacSha256 = (key, message) => hmac(sha256, key, message);

/**
 * The HMAC-SHA-256 of a backend: its own when it has one, else @noble/hashes'.
 * Reading the backend never throws a foreign error; a backend's HMAC that does
 * not return 32 bytes is refused.
 */
export function hmacOf(aead: AesGcm | undefined): HmacSha256 {
  let mac: unknown;
  try {
    mac = aead?.hmacSha256;
  } catch {
    mac = undefined;
  }
  if (typeof mac !== 'function') return nobleHmacSha256;
  return (key, message) => {
    const out: unknown = mac.call(aead, key, message);
    if (!isBytes(out) || out.length !== 32) throw new InvalidParameterError('"aead.hmacSha256" must return 32 bytes');
    return out;
  };
}

/** `info || 0x01`: the whole HMAC input of `T(1)` in HKDF-Expand. */
export function expandBlockInput(info: Uint8Array): Uint8Array {
  const m = new Uint8Array(info.length + 1);
  m.set(info, 0);
  m[info.length] = 0x01;
  return m;
}

const CONTENT_T1 = expandBlockInput(utf8Encode(LABELS.content));
const COMMIT_T1 = expandBlockInput(utf8Encode(LABELS.commitment));

/** Content key and commitment of one envelope. Caller wipes `contentKey`. */
export interface DerivedKeys {
  readonly contentKey: Uint8Array;
  readonly commitment: Uint8Array;
}

/** `HKDF-Extract(salt, ikm) = HMAC(salt, ikm)` (RFC 5869 §2.2). The caller wipes the result. */
export function hkdfExtract(mac: HmacSha256, salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return mac(salt, ikm);
}

/**
 * `prk = HKDF-Extract(salt = messageId, ikm = dataKey)`;
 * `contentKey = HKDF-Expand(prk, "envelope-kit/v1/suite-01/layout-00/content-key", 32)`;
 * `commitment = HKDF-Expand(prk, "envelope-kit/v1/suite-01/key-commitment", 32)`.
 * @param mac - the HMAC-SHA-256 to run it with (default @noble/hashes).
 */
export function deriveKeys(dataKey: Uint8Array, messageId: Uint8Array, mac: HmacSha256 = nobleHmacSha256): DerivedKeys {
  const prk = hkdfExtract(mac, messageId, dataKey);
  try {
    return keysFromPrk(mac, prk);
  } finally {
    wipe(prk);
  }
}

/** The two expands of {@link deriveKeys}, from an already extracted `prk` (which the caller wipes). */
export function keysFromPrk(mac: HmacSha256, prk: Uint8Array): DerivedKeys {
  const contentKey = mac(prk, CONTENT_T1);
  try {
    return { contentKey, commitment: mac(prk, COMMIT_T1) };
  } catch (e) {
    wipe(contentKey);
    throw e;
  }
}
