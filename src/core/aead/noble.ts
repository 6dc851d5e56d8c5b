/**
 * AES-GCM backend on @noble/ciphers: pure JavaScript, runs in every runtime.
 * @module
 */
import { gcm } from '@noble/ciphers/aes.js';
import type { AesGcm } from './types.js';

/** The portable AES-GCM backend (@noble/ciphers). */
export const nobleAesGcm: AesGcm = Object.freeze({
  name: 'noble',
  // open() has read all of `sealed` (tag checked, plaintext made) before it writes `out`.
  openInPlace: true,
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void {
    const sealed = gcm(key, nonce, aad).encrypt(plaintext);
    out.set(sealed);
    sealed.fill(0);
  },
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean {
    let pt: Uint8Array;
    try {
      pt = gcm(key, nonce, aad).decrypt(sealed);
    } catch {
      out.fill(0);
      return false;
    }
    out.set(pt);
    pt.fill(0);
    return true;
  },
});
