/**
 * Key schedule of suite 0x01 (SPEC.md §3.3, §12.2): one HKDF-Expand over
 * SHA-512 per derivation, keyed directly by the data key (RFC 5869 §3.3: the
 * extract step is skipped, the data key being uniformly random), whose 64
 * bytes are split into two 32-byte keys.
 *
 * Every output is one SHA-512 block, so each expand is the single HMAC call
 * `T(1) = HMAC-SHA-512(key, info || 0x01)`. A backend with a faster
 * HMAC-SHA-512 (`node:crypto`, through {@link AesGcm.hmacSha512}) runs it;
 * without one the HMAC is @noble/hashes'. Both give the same bytes.
 * @module
 */
import { nobleHmacSha512 as portableHmacSha512 } from '#aead-default';
import type { AesGcm } from './aead/types.js';
import { InvalidParameterError } from './errors.js';
import { isBytes, utf8Encode, wipe } from '../internal/bytes.js';

/**
 * HKDF info labels of suite 0x01 (SPEC.md §3.3, §12.2). Literal strings that name the format
 * version, the suite and the layout, so that no later suite or layout can share a derivation
 * with these. Each is followed by `0x00` in the info.
 */
export const LABELS = Object.freeze({
  /** Layout 0x00: content key and commitment of a whole message. */
  singlePass: 'envelope-kit/v1/suite-01/layout-00/keys',
  /** Layout 0x01: the field root and the commitment of a record's header. */
  fieldRecord: 'envelope-kit/v1/suite-01/layout-01/keys',
  /** Layout 0x01: field key and field commitment of one field. */
  field: 'envelope-kit/v1/suite-01/layout-01/field',
  /** Layout 0x02: content key and commitment of a framed envelope (SPEC.md §14.2). */
  framed: 'envelope-kit/v1/suite-01/layout-02/keys',
});

/** Bytes of one derivation: one SHA-512 output. */
export const DERIVED_LENGTH = 64;

/** HMAC-SHA-512 of `message` under `key` (RFC 2104); returns a fresh 64-byte array the caller owns. */
export type HmacSha512 = (key: Uint8Array, message: Uint8Array) => Uint8Array;

/** The portable HMAC-SHA-512 (@noble/hashes; on Node loaded on first use, through `#aead-default`). */
export const nobleHmacSha512: HmacSha512 = portableHmacSha512;

/**
 * The HMAC-SHA-512 of a backend: its own when it has one, else @noble/hashes'.
 * Reading the backend never throws a foreign error; a backend's HMAC that does
 * not return 64 bytes is refused (and what it returned is wiped).
 * @param aead - a checked backend, or `undefined` for the portable HMAC.
 * @returns the HMAC to run the key schedule with.
 * @throws InvalidParameterError (when the returned function is called) for a backend HMAC that does not return 64 bytes.
 */
export function hmacOf(aead: AesGcm | undefined): HmacSha512 {
  let mac: unknown;
  try {
    mac = aead?.hmacSha512;
  } catch {
    mac = undefined;
  }
  if (typeof mac !== 'function') return nobleHmacSha512;
  return (key, message) => {
    const out: unknown = mac.call(aead, key, message);
    if (!isBytes(out) || out.length !== DERIVED_LENGTH) {
      if (isBytes(out)) wipe(out);
      throw new InvalidParameterError('"aead.hmacSha512" must return 64 bytes');
    }
    return out;
  };
}

/**
 * `HKDF-Expand(PRK = key, info = label || 0x00 || parts..., L = 64)`, which is the one block
 * `HMAC-SHA-512(key, label || 0x00 || parts... || 0x01)` (RFC 5869 §2.3).
 * @param mac - the HMAC-SHA-512 to run it with.
 * @param key - the PRK: a data key or a field root (never copied, never wiped here).
 * @param label - the label's UTF-8 bytes.
 * @param parts - what follows the label's `0x00`, in order.
 * @returns 64 fresh bytes the caller wipes.
 */
export function expandOneBlock(mac: HmacSha512, key: Uint8Array, label: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  let n = label.length + 2;
  for (const p of parts) n += p.length;
  const m = new Uint8Array(n);
  m.set(label, 0);
  let o = label.length + 1; // m[label.length] is the 0x00 separator
  for (const p of parts) {
    m.set(p, o);
    o += p.length;
  }
  m[o] = 0x01;
  return mac(key, m);
}

const SINGLE_PASS_LABEL = utf8Encode(LABELS.singlePass);
const FIELD_RECORD_LABEL = utf8Encode(LABELS.fieldRecord);
const FIELD_LABEL = utf8Encode(LABELS.field);
const FRAMED_LABEL = utf8Encode(LABELS.framed);

/**
 * The two 32-byte halves of one derivation, as views of its 64 bytes. Wiping `bytes` wipes both
 * halves; the caller wipes it on every path.
 */
export interface DerivedPair {
  /** The whole HMAC-SHA-512 output. */
  readonly bytes: Uint8Array;
  /** Bytes 0..32: a key (content key, field root or field key). */
  readonly key: Uint8Array;
  /** Bytes 32..64: the commitment to it. */
  readonly commitment: Uint8Array;
}

/** The message id is always 16 bytes (SPEC.md §3.1), which is what lets the info parse in one way only. */
function checkMessageId(messageId: Uint8Array): void {
  if (messageId.length !== 16) throw new RangeError(`"messageId" expected Uint8Array of length 16, got length=${messageId.length}`);
}

function split(bytes: Uint8Array): DerivedPair {
  return { bytes, key: bytes.subarray(0, 32), commitment: bytes.subarray(32, DERIVED_LENGTH) };
}

/**
 * Layout 0x00 (SPEC.md §3.3): `keys = HKDF-Expand-SHA-512(PRK = dataKey,
 * info = "envelope-kit/v1/suite-01/layout-00/keys" || 0x00 || messageId || binding, 64)`;
 * the content key is `keys[0..32)`, the commitment `keys[32..64)`.
 * @param dataKey - 16 or 32 bytes from the provider.
 * @param messageId - the 16-byte message id (fixed length, so the info parses unambiguously).
 * @param binding - the record binding (SPEC.md §9.10), `[null,null]` when there is none.
 * @param mac - the HMAC-SHA-512 to run it with (default @noble/hashes).
 * @returns content key (`key`) and commitment; the caller wipes `bytes`.
 * @throws RangeError for a message id that is not 16 bytes (a caller's bug: the parser and the writer never make one).
 */
export function deriveKeys(dataKey: Uint8Array, messageId: Uint8Array, binding: Uint8Array, mac: HmacSha512 = nobleHmacSha512): DerivedPair {
  checkMessageId(messageId);
  return split(expandOneBlock(mac, dataKey, SINGLE_PASS_LABEL, messageId, binding));
}

/**
 * Layout 0x01, once per header (SPEC.md §12.2): `keys = HKDF-Expand-SHA-512(PRK = dataKey,
 * info = "envelope-kit/v1/suite-01/layout-01/keys" || 0x00 || messageId, 64)`; the field root is
 * `keys[0..32)`, the header's commitment `keys[32..64)`.
 * @param dataKey - 16 or 32 bytes from the provider.
 * @param messageId - the header's 16-byte message id.
 * @param mac - the HMAC-SHA-512 to run it with (default @noble/hashes).
 * @returns field root (`key`) and commitment; the caller wipes `bytes`.
 * @throws RangeError for a message id that is not 16 bytes.
 */
export function deriveRecordKeys(dataKey: Uint8Array, messageId: Uint8Array, mac: HmacSha512 = nobleHmacSha512): DerivedPair {
  checkMessageId(messageId);
  return split(expandOneBlock(mac, dataKey, FIELD_RECORD_LABEL, messageId));
}

/**
 * Layout 0x01, once per field (SPEC.md §12.2): `HKDF-Expand-SHA-512(PRK = fieldRoot,
 * info = "envelope-kit/v1/suite-01/layout-01/field" || 0x00 || binding, 64)`; the field key is
 * bytes 0..32, the field commitment bytes 32..64.
 * @param fieldRoot - the 32-byte field root of the record's header ({@link deriveRecordKeys}).
 * @param binding - the field binding (SPEC.md §12.1).
 * @param mac - the HMAC-SHA-512 to run it with (default @noble/hashes).
 * @returns field key (`key`) and field commitment; the caller wipes `bytes`.
 */
export function deriveFieldKeys(fieldRoot: Uint8Array, binding: Uint8Array, mac: HmacSha512 = nobleHmacSha512): DerivedPair {
  return split(expandOneBlock(mac, fieldRoot, FIELD_LABEL, binding));
}

/**
 * Layout 0x02 (SPEC.md §14.2): `keys = HKDF-Expand-SHA-512(PRK = dataKey,
 * info = "envelope-kit/v1/suite-01/layout-02/keys" || 0x00 || messageId || binding, 64)`;
 * the content key of every segment is `keys[0..32)`, the commitment `keys[32..64)`.
 * @param dataKey - 16 or 32 bytes from the provider.
 * @param messageId - the 16-byte message id.
 * @param binding - the record binding (SPEC.md §9.10), `[null,null]` when there is none.
 * @param mac - the HMAC-SHA-512 to run it with (default @noble/hashes).
 * @returns content key (`key`) and commitment; the caller wipes `bytes`.
 * @throws RangeError for a message id that is not 16 bytes.
 */
export function deriveFramedKeys(dataKey: Uint8Array, messageId: Uint8Array, binding: Uint8Array, mac: HmacSha512 = nobleHmacSha512): DerivedPair {
  checkMessageId(messageId);
  return split(expandOneBlock(mac, dataKey, FRAMED_LABEL, messageId, binding));
}
