/**
 * The AES-GCM backend on @noble/ciphers, built over a function that returns
 * noble's AES module: imported statically where noble is the default backend
 * (`noble.ts`), loaded on first use on Node (`default.node.ts`), where
 * `node:crypto` is the default and noble's AES tables would only slow the import.
 * @module
 */
import type { AesGcm } from './types.js';

/** The parts of `@noble/ciphers/aes.js` the backend calls. */
export interface NobleAes {
  readonly ecb: typeof import('@noble/ciphers/aes.js').ecb;
  readonly gcm: typeof import('@noble/ciphers/aes.js').gcm;
}

/**
 * The portable AES-GCM backend over noble's AES module.
 * @param aes - returns the module (called on every operation; it should cache).
 * @returns a frozen {@link AesGcm} named `"noble"`.
 */
export function nobleBackend(aes: () => NobleAes): AesGcm {
  return Object.freeze({
    name: 'noble',
    // open() has read all of `sealed` (tag checked, plaintext made) before it writes `out`.
    openInPlace: true,
    /** AES-256 block function (the local keyring's XAES-256-GCM key derivation). */
    aes256Ecb(key: Uint8Array, blocks: Uint8Array): Uint8Array {
      if (key.length !== 32) throw new RangeError(`"key" expected Uint8Array of length 32, got length=${key.length}`);
      return aes().ecb(key, { disablePadding: true }).encrypt(blocks);
    },
    seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void {
      const sealed = aes().gcm(key, nonce, aad).encrypt(plaintext);
      out.set(sealed);
      sealed.fill(0);
    },
    open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean {
      const { gcm } = aes();
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
}
