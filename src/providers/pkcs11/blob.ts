/**
 * The PKCS#11 provider's blob: a versioned, self-describing wrapped data key.
 *
 * ## Layout (all integers big-endian)
 * | offset | bytes | field |
 * | --- | --- | --- |
 * | 0 | 1 | format version, `0x01` |
 * | 1 | 1 | scheme: `0x01` AES-GCM (`CKM_AES_GCM`), `0x02` AES key wrap with padding (RFC 5649) |
 * | 2 | 1 | `L`, bytes of the key name (1..64) |
 * | 3 | L | key name, ASCII `A-Z a-z 0-9 . _ -` |
 * | 3+L | 4 | key version `v` (1..2^32-1): the token object labelled `name/v<v>` |
 * | 7+L | 2 | `n`, bytes of the data key (1..1024) |
 * | 9+L | ... | scheme `0x01`: IV (12) \|\| ciphertext (n) \|\| tag (16); scheme `0x02`: the RFC 5649 output (ceil8(32+n)+8) |
 *
 * `header` is bytes `0 .. 9+L` (version through `n`), `ctx` the canonical encoding of the
 * encryption context (SPEC.md §3.2).
 * - Scheme `0x01`: `ciphertext || tag = AES-GCM(master key, IV, data key, aad = header || ctx)`.
 * - Scheme `0x02`: `wrapped = KWP(master key, digest || data key || zeros)`, where
 *   `digest = SHA-256("envelope-kit/pkcs11/v1/kwp" || header || ctx)` and `zeros` are the 0..7 zero
 *   bytes that make the wrapped value a multiple of 8 bytes long (`ceil8(32+n)`). RFC 5649 has no
 *   associated data, so the digest of the context goes inside the wrapped value, and unwrapping
 *   compares it (constant time) with the digest of the context given, and checks length and zeros.
 *   The zeros are the format's own, not RFC 5649's padding (which then never occurs): SoftHSM2 2.6
 *   pads a value before wrapping it and keeps the padding when unwrapping, other modules do not,
 *   and with a multiple of 8 every RFC 5649 implementation gives the same bytes.
 * @module
 */
import { createHash } from 'node:crypto';
import { type CheckedContext, encodeContext } from '../../core/context.js';

/** First byte of every blob this format describes. */
export const PKCS11_BLOB_VERSION = 0x01;
/** Scheme byte of an AES-GCM blob. */
export const SCHEME_GCM = 0x01;
/** Scheme byte of an RFC 5649 blob. */
export const SCHEME_KWP = 0x02;
/** Bytes of the AES-GCM IV stored in a blob. */
export const GCM_IV_BYTES = 12;
/** Bytes of the AES-GCM tag. */
export const GCM_TAG_BYTES = 16;
/** Bytes of the context digest inside an RFC 5649 blob's wrapped value. */
export const KWP_DIGEST_BYTES = 32;
/** Domain-separation label of the context digest of scheme `0x02`. */
export const KWP_CONTEXT_LABEL = 'envelope-kit/pkcs11/v1/kwp';
/** Largest key version a blob can name. */
export const MAX_KEY_VERSION = 0xffffffff;
/** Largest data key a blob holds. */
export const MAX_DATA_KEY_BYTES = 1024;

/** A key name: what callers give as `keyId`, and the label prefix of its token objects. */
export const KEY_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** The label of version `version` of key `name`: `name/v<version>`. */
export function keyLabel(name: string, version: number): string {
  return `${name}/v${version}`;
}

/** Read a label back into name and version; `undefined` when it is not `name/v<digits>`. */
export function parseKeyLabel(label: string): { name: string; version: number } | undefined {
  const m = /^([A-Za-z0-9._-]{1,64})\/v([1-9][0-9]{0,9})$/.exec(label);
  if (!m) return undefined;
  const version = Number(m[2]);
  return version <= MAX_KEY_VERSION ? { name: m[1]!, version } : undefined;
}

/** What a blob's header says. */
export interface Pkcs11BlobHeader {
  readonly scheme: typeof SCHEME_GCM | typeof SCHEME_KWP;
  readonly name: string;
  readonly version: number;
  readonly dataKeyLength: number;
  /** Bytes 0 .. 9+L, bound to the ciphertext. */
  readonly header: Uint8Array;
  /** Scheme `0x01`: the IV. */
  readonly iv: Uint8Array | undefined;
  /** Scheme `0x01`: ciphertext || tag; scheme `0x02`: the RFC 5649 output. */
  readonly body: Uint8Array;
}

/** Bytes of the value an RFC 5649 blob wraps for an `n`-byte data key: `ceil8(32 + n)`. */
export function kwpInputLength(n: number): number {
  return Math.ceil((KWP_DIGEST_BYTES + n) / 8) * 8;
}

/** Bytes of the RFC 5649 output in a blob for an `n`-byte data key: `ceil8(32 + n) + 8`. */
export function kwpOutputLength(n: number): number {
  return kwpInputLength(n) + 8;
}

/** Encode a blob header (bytes 0 .. 9+L). */
export function encodeHeader(scheme: number, name: string, version: number, dataKeyLength: number): Uint8Array {
  const nb = new TextEncoder().encode(name);
  const out = new Uint8Array(9 + nb.length);
  out[0] = PKCS11_BLOB_VERSION;
  out[1] = scheme;
  out[2] = nb.length;
  out.set(nb, 3);
  const dv = new DataView(out.buffer);
  dv.setUint32(3 + nb.length, version);
  dv.setUint16(7 + nb.length, dataKeyLength);
  return out;
}

/**
 * Parse a blob's header; `undefined` for anything that is not a well-formed blob of this format
 * (wrong version or scheme, a name outside the alphabet, lengths that do not add up). Never throws.
 */
export function readPkcs11Blob(blob: Uint8Array): Pkcs11BlobHeader | undefined {
  if (blob.length < 10 || blob[0] !== PKCS11_BLOB_VERSION) return undefined;
  const scheme = blob[1];
  if (scheme !== SCHEME_GCM && scheme !== SCHEME_KWP) return undefined;
  const L = blob[2]!;
  if (L < 1 || L > 64 || blob.length < 9 + L) return undefined;
  let name = '';
  for (let i = 0; i < L; i++) name += String.fromCharCode(blob[3 + i]!);
  if (!KEY_NAME_RE.test(name)) return undefined;
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.length);
  const version = dv.getUint32(3 + L);
  const n = dv.getUint16(7 + L);
  if (version < 1 || n < 1 || n > MAX_DATA_KEY_BYTES) return undefined;
  const header = blob.subarray(0, 9 + L);
  const rest = blob.subarray(9 + L);
  if (scheme === SCHEME_GCM) {
    if (rest.length !== GCM_IV_BYTES + n + GCM_TAG_BYTES) return undefined;
    return { scheme, name, version, dataKeyLength: n, header, iv: rest.subarray(0, GCM_IV_BYTES), body: rest.subarray(GCM_IV_BYTES) };
  }
  if (rest.length !== kwpOutputLength(n)) return undefined;
  return { scheme, name, version, dataKeyLength: n, header, iv: undefined, body: rest };
}

/** Scheme `0x01` associated data: `header || ctx`. */
export function gcmAad(header: Uint8Array, context: CheckedContext): Uint8Array {
  const ctx = encodeContext(context);
  const out = new Uint8Array(header.length + ctx.length);
  out.set(header, 0);
  out.set(ctx, header.length);
  return out;
}

/** Scheme `0x02` context digest: `SHA-256("envelope-kit/pkcs11/v1/kwp" || header || ctx)`. */
export function kwpContextDigest(header: Uint8Array, context: CheckedContext): Uint8Array {
  const h = createHash('sha256');
  h.update(KWP_CONTEXT_LABEL);
  h.update(header);
  h.update(encodeContext(context));
  return new Uint8Array(h.digest());
}
