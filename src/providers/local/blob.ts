/**
 * The local keyring's blob: a data key wrapped with XAES-256-GCM under one
 * version of a master key, bound to the encryption context (SPEC.md §6).
 * @module
 */
import type { AesGcm } from '../../core/aead/types.js';
import { TAG_LENGTH } from '../../core/aead/types.js';
import { type CheckedContext, contextLength, writeContext } from '../../core/context.js';
import { DecryptionFailedError, UnsupportedVersionError } from '../../core/errors.js';
import { ByteReader, ByteWriter, lenSize, utf8DecodeStrict, utf8Encode, wipe } from '../../internal/bytes.js';
import { PROVIDER_LIMITS } from '../../core/provider.js';
import { XAES_NONCE_LENGTH, type XaesKey, xaesOpen, xaesSeal } from './xaes.js';

/** First byte of every local blob of this layout (XAES-256-GCM). */
export const LOCAL_BLOB_FORMAT = 0x02;
/** Length of a blob's nonce: the 24-byte XAES-256-GCM nonce, fresh from the CSPRNG for every blob. */
export const BLOB_NONCE_LENGTH = XAES_NONCE_LENGTH;
/** Key ids: 1..64 of `A-Z a-z 0-9 _ -`. */
export const LOCAL_KEY_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** Highest key version number (fits the two-byte `len` encoding). */
export const MAX_KEY_VERSION = 0x3fff;

/** What a local blob says about itself before it is opened. */
export interface LocalBlobHeader {
  readonly keyId: string;
  readonly version: number;
  /** `format || len(keyId) || keyId || len(version)`: the blob's prefix, used as associated data. */
  readonly prefix: Uint8Array;
  readonly nonce: Uint8Array;
  readonly sealed: Uint8Array;
}

function blobPrefix(keyId: string, version: number): Uint8Array {
  const id = utf8Encode(keyId);
  const out = new Uint8Array(1 + lenSize(id.length) + id.length + lenSize(version));
  const w = new ByteWriter(out).u8(LOCAL_BLOB_FORMAT).lenBytes(id).len(version);
  w.expectFull(out);
  return out;
}

/** SPEC.md §6: the associated data `prefix || context`, written into one array. */
function blobAad(prefix: Uint8Array, ctx: CheckedContext): Uint8Array {
  const aad = new Uint8Array(prefix.length + contextLength(ctx));
  aad.set(prefix, 0);
  const ctxPart = aad.subarray(prefix.length);
  const w = new ByteWriter(ctxPart);
  writeContext(w, ctx);
  w.expectFull(ctxPart);
  return aad;
}

/**
 * SPEC.md §6: `blob = 0x02 || len(keyId) || keyId || len(version) || nonce || XAES-256-GCM(master, nonce, dataKey, aad = prefix || context)`.
 * @param nonce - 24 bytes; callers draw it with `randomBytes` (the CSPRNG itself, never the public pool). Only the vector generator fixes it.
 */
export function wrapDataKey(
  aead: AesGcm,
  master: Uint8Array,
  keyId: string,
  version: number,
  nonce: Uint8Array,
  dataKey: Uint8Array,
  ctx: CheckedContext,
  prepared?: XaesKey,
): Uint8Array {
  if (nonce.length !== BLOB_NONCE_LENGTH) throw new RangeError(`"nonce" expected Uint8Array of length ${BLOB_NONCE_LENGTH}, got length=${nonce.length}`);
  const prefix = blobPrefix(keyId, version);
  const aad = blobAad(prefix, ctx);
  const out = new Uint8Array(prefix.length + BLOB_NONCE_LENGTH + dataKey.length + TAG_LENGTH);
  out.set(prefix, 0);
  out.set(nonce, prefix.length);
  xaesSeal(aead, master, nonce, aad, dataKey, out.subarray(prefix.length + BLOB_NONCE_LENGTH), prepared);
  return out;
}

/**
 * Parse a local blob's header (SPEC.md §6 step 2). A format byte other than 0x02 is an
 * {@link UnsupportedVersionError} (the keyring reports it as a decryption failure); any other
 * malformation is a decryption failure (the blob is opaque to callers). `prefix`, `nonce` and
 * `sealed` are copies.
 */
export function parseLocalBlob(blob: Uint8Array): LocalBlobHeader {
  const h = readLocalBlob(blob);
  return { keyId: h.keyId, version: h.version, prefix: h.prefix.slice(), nonce: h.nonce.slice(), sealed: h.sealed.slice() };
}

/**
 * {@link parseLocalBlob} with `prefix`, `nonce` and `sealed` as views of `blob`, for a caller
 * whose `blob` is a private copy that nothing else writes (the keyring's own copy of a request).
 * @internal
 */
export function readLocalBlob(blob: Uint8Array): LocalBlobHeader {
  const fail = () => new DecryptionFailedError();
  const r = new ByteReader(blob, fail);
  const format = r.u8('format');
  if (format !== LOCAL_BLOB_FORMAT) throw new UnsupportedVersionError('blob', format);
  const keyIdBytes = r.lenBytes('key id', 64, 1);
  const keyId = utf8DecodeStrict(keyIdBytes);
  if (keyId === undefined || !LOCAL_KEY_ID_RE.test(keyId)) throw fail();
  const version = r.len('version', MAX_KEY_VERSION, 1);
  const prefix = blob.subarray(0, r.pos);
  const nonce = r.take(BLOB_NONCE_LENGTH, 'nonce');
  const sealed = blob.subarray(r.pos);
  const n = sealed.length - TAG_LENGTH;
  if (n < PROVIDER_LIMITS.minNumberOfBytes || n > PROVIDER_LIMITS.maxNumberOfBytes) throw fail();
  return { keyId, version, prefix, nonce, sealed };
}

/**
 * Open a parsed blob with the master key material; throws DecryptionFailedError on any mismatch.
 * @param prepared - optional: the master key made ready for XAES-256-GCM (`xaesKey`), kept by the keyring.
 */
export function unwrapDataKey(aead: AesGcm, master: Uint8Array, header: LocalBlobHeader, ctx: CheckedContext, prepared?: XaesKey): Uint8Array {
  const aad = blobAad(header.prefix, ctx);
  const out = new Uint8Array(header.sealed.length - TAG_LENGTH);
  if (!xaesOpen(aead, master, header.nonce, aad, header.sealed, out, prepared)) {
    wipe(out);
    throw new DecryptionFailedError();
  }
  return out;
}
