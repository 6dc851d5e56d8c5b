/**
 * AES-GCM backend on `node:crypto` (OpenSSL). Node-only: reached through the
 * `envelope-kit/node` subpath and the package's `node` export condition.
 * @module
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import type { Aes256Key, AesGcm } from './types.js';

type GcmAlgorithm = 'aes-128-gcm' | 'aes-256-gcm';

function algorithm(key: Uint8Array): GcmAlgorithm {
  if (key.length === 32) return 'aes-256-gcm';
  if (key.length === 16) return 'aes-128-gcm';
  throw new RangeError(`"key" expected Uint8Array of length 16 or 32, got length=${key.length}`);
}

/** Chunk size for update(): bounds the temporary buffers OpenSSL's binding allocates. */
const CHUNK = 1 << 20;

/** The `node:crypto` AES-GCM backend: same bytes as {@link nobleAesGcm}, much faster on Node. */
export const nodeAesGcm: AesGcm = /* @__PURE__ */ Object.freeze({
  name: 'node',
  // open() reads each chunk before it writes the chunk's plaintext at the same offset, and takes the tag first.
  openInPlace: true,
  /** OpenSSL's HMAC-SHA-512 for the key schedule (SPEC.md §3.3): one call per derivation. */
  hmacSha512(key: Uint8Array, message: Uint8Array): Uint8Array {
    // digest() returns a Buffer over its own 64-byte ArrayBuffer (not the shared pool), so the caller may wipe it.
    return createHmac('sha512', key).update(message).digest();
  },
  /** OpenSSL's AES-256 block function, for the local keyring's XAES-256-GCM key derivation. */
  aes256Ecb(key: Uint8Array, blocks: Uint8Array): Uint8Array {
    if (key.length !== 32) throw new RangeError(`"key" expected Uint8Array of length 32, got length=${key.length}`);
    if (blocks.length % 16 !== 0) throw new RangeError(`"blocks" expected a multiple of 16 bytes, got length=${blocks.length}`);
    const c = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    const a = c.update(blocks);
    const b = c.final();
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    a.fill(0);
    return out;
  },
  /**
   * OpenSSL's AES-256 block function under one key, its context made once: one `update()` per call
   * instead of a cipher object each time. The cipher never pads and never finishes, so each
   * `update()` of whole blocks returns exactly those blocks encrypted. `dispose()` ends it with
   * `final()`, which frees the OpenSSL context (and so cleanses the key schedule).
   */
  aes256EcbKey(key: Uint8Array): Aes256Key {
    if (key.length !== 32) throw new RangeError(`"key" expected Uint8Array of length 32, got length=${key.length}`);
    let c: ReturnType<typeof createCipheriv> | undefined = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    return Object.freeze({
      encrypt(blocks: Uint8Array): Uint8Array {
        if (c === undefined) throw new Error('this AES-256 key was disposed');
        if (blocks.length % 16 !== 0) throw new RangeError(`"blocks" expected a multiple of 16 bytes, got length=${blocks.length}`);
        // A Buffer over its own ArrayBuffer (never the shared pool), so the caller may wipe it.
        const out = c.update(blocks);
        if (out.length !== blocks.length) {
          out.fill(0);
          throw new Error('AES-256-ECB returned a wrong length');
        }
        return out;
      },
      dispose(): void {
        const d = c;
        c = undefined;
        if (d !== undefined) d.final().fill(0);
      },
    });
  },
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void {
    const c = createCipheriv(algorithm(key), key, nonce, { authTagLength: 16 });
    if (aad.length > 0) c.setAAD(aad);
    let o = 0;
    for (let i = 0; i < plaintext.length; i += CHUNK) {
      const part = c.update(plaintext.subarray(i, Math.min(i + CHUNK, plaintext.length)));
      out.set(part, o);
      o += part.length;
    }
    const last = c.final();
    out.set(last, o);
    o += last.length;
    out.set(c.getAuthTag(), o);
  },
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean {
    if (sealed.length < 16) return false;
    const n = sealed.length - 16;
    const d = createDecipheriv(algorithm(key), key, nonce, { authTagLength: 16 });
    d.setAuthTag(sealed.subarray(n));
    if (aad.length > 0) d.setAAD(aad);
    let o = 0;
    try {
      for (let i = 0; i < n; i += CHUNK) {
        const part = d.update(sealed.subarray(i, Math.min(i + CHUNK, n)));
        out.set(part, o);
        part.fill(0);
        o += part.length;
      }
      d.final();
      return true;
    } catch {
      out.fill(0);
      return false;
    }
  },
});
