/**
 * AES-GCM backend on @noble/ciphers: pure JavaScript, runs in every runtime.
 * @module
 */
import { ecb, gcm } from '@noble/ciphers/aes.js';
import type { AesGcm } from './types.js';

/** The portable AES-GCM backend (@noble/ciphers). */
export const nobleAesGcm: AesGcm = Object.freeze({
  name: 'noble',
  // open() has read all of `sealed` (tag checked, plaintext made) before it writes `out`.
  openInPlace: true,
  /** AES-256 block function (the local keyring's XAES-256-GCM key derivation). */
  aes256Ecb(key: Uint8Array, blocks: Uint8Array): Uint8Array {
    if (key.length !== 32) throw new RangeError(`"key" expected Uint8Array of length 32, got length=${key.length}`);
    return ecb(key, { disablePadding: true }).encrypt(blocks);
  },
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
