/**
 * XAES-256-GCM (C2SP, https://c2sp.org/XAES-256-GCM): AES-256-GCM under a key
 * derived from the input key and the first half of a 192-bit nonce, with the
 * NIST SP 800-108r1 counter-mode KDF over CMAC-AES256. A random 192-bit nonce
 * is safe for about 2^80 messages under one key, where AES-256-GCM's random
 * 96-bit nonce is limited to 2^32. The local keyring wraps data keys with it
 * (SPEC.md §6).
 *
 * The AES-256 block function comes from the backend's optional `aes256Ecb`
 * (OpenSSL with `envelope-kit/node`), else from @noble/ciphers; the GCM part
 * from the backend's `seal` / `open`.
 * @module
 */
import { ecb } from '@noble/ciphers/aes.js';
import type { AesGcm } from '../../core/aead/types.js';
import { wipe } from '../../internal/bytes.js';

/** XAES-256-GCM nonce length: 24 bytes (192 bits). */
export const XAES_NONCE_LENGTH = 24;

function aes256Ecb(aead: AesGcm, key: Uint8Array, blocks: Uint8Array): Uint8Array {
  if (typeof aead.aes256Ecb === 'function') {
    const out = aead.aes256Ecb(key, blocks);
    if (!(out instanceof Uint8Array) || out.length !== blocks.length) throw new Error('AesGcm.aes256Ecb returned a wrong length');
    return out;
  }
  return ecb(key, { disablePadding: true }).encrypt(blocks);
}

/** The values of the C2SP key derivation, each a fresh array; wipe them (they are secret). */
export interface XaesDerivation {
  /** `L = AES-256(K, 0^128)`. */
  readonly L: Uint8Array;
  /** The CMAC subkey: `L << 1`, xor `0x87` in the last byte when the top bit of `L` is set. */
  readonly K1: Uint8Array;
  /** `Kx = AES-256(K, M1 xor K1) || AES-256(K, M2 xor K1)`. */
  readonly Kx: Uint8Array;
  /** `Nx = N[12:24]` (a view of the nonce). */
  readonly Nx: Uint8Array;
}

/** Steps 1 and 2: `L` and the CMAC subkey `K1`, which depend on the key alone. Fresh arrays; wipe them. */
function subkeys(aead: AesGcm, key: Uint8Array): { L: Uint8Array; K1: Uint8Array } {
  if (key.length !== 32) throw new RangeError(`"key" expected Uint8Array of length 32, got length=${key.length}`);
  const L = aes256Ecb(aead, key, new Uint8Array(16)); // 1.
  const K1 = new Uint8Array(16); // 2.
  for (let i = 0; i < 15; i++) K1[i] = ((L[i]! << 1) | (L[i + 1]! >>> 7)) & 0xff;
  K1[15] = (L[15]! << 1) & 0xff;
  if (L[0]! & 0x80) K1[15]! ^= 0x87;
  return { L, K1 };
}

/**
 * The CMAC subkey `K1` of a key (steps 1 and 2), to pass to {@link xaesSeal} and
 * {@link xaesOpen} for many messages under one key: it saves one AES call per
 * message. Secret: wipe it with the key.
 */
export function xaesSubkey(aead: AesGcm, key: Uint8Array): Uint8Array {
  const { L, K1 } = subkeys(aead, key);
  wipe(L);
  return K1;
}

/**
 * Steps 1 to 6 of the C2SP "Detailed key derivation algorithm".
 * @param key - 32 bytes.
 * @param nonce - 24 bytes.
 */
export function xaesDerive(aead: AesGcm, key: Uint8Array, nonce: Uint8Array): XaesDerivation {
  if (nonce.length !== XAES_NONCE_LENGTH) throw new RangeError(`"nonce" expected Uint8Array of length 24, got length=${nonce.length}`);
  const { L, K1 } = subkeys(aead, key);
  return { L, K1, Kx: deriveKx(aead, key, K1, nonce), Nx: nonce.subarray(12, 24) };
}

/** Steps 3 to 5: `Kx` from the key, its subkey `K1` and the nonce. */
function deriveKx(aead: AesGcm, key: Uint8Array, K1: Uint8Array, nonce: Uint8Array): Uint8Array {
  if (nonce.length !== XAES_NONCE_LENGTH) throw new RangeError(`"nonce" expected Uint8Array of length 24, got length=${nonce.length}`);
  if (K1.length !== 16) throw new RangeError(`"K1" expected Uint8Array of length 16, got length=${K1.length}`);
  const M = new Uint8Array(32); // 3. and 4., xored with K1
  M.set([0x00, 0x01, 0x58, 0x00], 0);
  M.set(nonce.subarray(0, 12), 4);
  M.set([0x00, 0x02, 0x58, 0x00], 16);
  M.set(nonce.subarray(0, 12), 20);
  for (let i = 0; i < 32; i++) M[i]! ^= K1[i & 15]!;
  try {
    return aes256Ecb(aead, key, M); // 5.
  } finally {
    wipe(M);
  }
}

/** `Kx` for one message, from `K1` when the caller keeps it (else derived and wiped here). */
function messageKey(aead: AesGcm, key: Uint8Array, nonce: Uint8Array, k1: Uint8Array | undefined): Uint8Array {
  if (k1 !== undefined) return deriveKx(aead, key, k1, nonce);
  const K1 = xaesSubkey(aead, key);
  try {
    return deriveKx(aead, key, K1, nonce);
  } finally {
    wipe(K1);
  }
}

/**
 * XAES-256-GCM seal: writes `ciphertext || tag` into `out` (`plaintext.length + 16` bytes).
 * @param k1 - optional: the key's {@link xaesSubkey}, kept by a caller that seals many messages.
 */
export function xaesSeal(aead: AesGcm, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, k1?: Uint8Array): void {
  const Kx = messageKey(aead, key, nonce, k1);
  try {
    aead.seal(Kx, nonce.subarray(12, 24), aad, plaintext, out); // 6.
  } finally {
    wipe(Kx);
  }
}

/**
 * XAES-256-GCM open of `ciphertext || tag` into `out`; false (and `out` zeroed) when the tag does not verify.
 * @param k1 - optional, as in {@link xaesSeal}.
 */
export function xaesOpen(aead: AesGcm, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array, k1?: Uint8Array): boolean {
  const Kx = messageKey(aead, key, nonce, k1);
  try {
    return aead.open(Kx, nonce.subarray(12, 24), aad, sealed, out); // 6.
  } finally {
    wipe(Kx);
  }
}
