/**
 * XAES-256-GCM (C2SP, https://c2sp.org/XAES-256-GCM): AES-256-GCM under a key
 * derived from the input key and the first half of a 192-bit nonce, with the
 * NIST SP 800-108r1 counter-mode KDF over CMAC-AES256. A random 192-bit nonce
 * is safe for about 2^80 messages under one key, where AES-256-GCM's random
 * 96-bit nonce is limited to 2^32. The local keyring wraps data keys with it
 * (SPEC.md §6).
 *
 * The AES-256 block function comes from the backend's optional `aes256EcbKey`
 * or `aes256Ecb` (OpenSSL with `envelope-kit/node`), else from the runtime's
 * default backend (`#aead-default`: OpenSSL on Node, @noble/ciphers elsewhere),
 * so that Node never loads noble's AES for it; the GCM part from the backend's
 * `seal` / `open`.
 * @module
 */
import { defaultAesGcm } from '#aead-default';
import type { Aes256Key, AesGcm } from '../../core/aead/types.js';
import { wipe } from '../../internal/bytes.js';

/** XAES-256-GCM nonce length: 24 bytes (192 bits). */
export const XAES_NONCE_LENGTH = 24;

function aes256Ecb(aead: AesGcm, key: Uint8Array, blocks: Uint8Array): Uint8Array {
  if (typeof aead.aes256Ecb === 'function') {
    const out = aead.aes256Ecb(key, blocks);
    if (!(out instanceof Uint8Array) || out.length !== blocks.length) throw new Error('AesGcm.aes256Ecb returned a wrong length');
    return out;
  }
  // Both default backends have the block function; a backend without one borrows it.
  const fallback = defaultAesGcm.aes256Ecb;
  if (typeof fallback !== 'function') throw new Error('the default AES-GCM backend has no AES-256 block function');
  return fallback(key, blocks);
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

/** The AES-256 block function under one key: the backend's `aes256EcbKey` when it has one, else a call per use. */
function blockFunction(aead: AesGcm, key: Uint8Array): Aes256Key {
  const keyed = aead.aes256EcbKey;
  if (typeof keyed === 'function') {
    const k = keyed.call(aead, key);
    return {
      encrypt(blocks: Uint8Array): Uint8Array {
        const out = k.encrypt(blocks);
        if (!(out instanceof Uint8Array) || out.length !== blocks.length) throw new Error('AesGcm.aes256EcbKey returned a wrong length');
        return out;
      },
      dispose: () => k.dispose(),
    };
  }
  let held: Uint8Array | undefined = key;
  return {
    encrypt(blocks: Uint8Array): Uint8Array {
      if (held === undefined) throw new Error('this AES-256 key was disposed');
      return aes256Ecb(aead, held, blocks);
    },
    dispose(): void {
      held = undefined;
    },
  };
}

/** Steps 1 and 2: `L` and the CMAC subkey `K1`, which depend on the key alone. Fresh arrays; wipe them. */
function subkeys(block: Aes256Key): { L: Uint8Array; K1: Uint8Array } {
  const L = block.encrypt(new Uint8Array(16)); // 1.
  const K1 = new Uint8Array(16); // 2.
  for (let i = 0; i < 15; i++) K1[i] = ((L[i]! << 1) | (L[i + 1]! >>> 7)) & 0xff;
  K1[15] = (L[15]! << 1) & 0xff;
  if (L[0]! & 0x80) K1[15]! ^= 0x87;
  return { L, K1 };
}

function checkKey(key: Uint8Array): void {
  if (key.length !== 32) throw new RangeError(`"key" expected Uint8Array of length 32, got length=${key.length}`);
}

/**
 * A key made ready for many XAES-256-GCM messages: steps 1 and 2 (the CMAC
 * subkey `K1`) done once, and the AES-256 block function under the key set up
 * once (the backend's `aes256EcbKey`, one OpenSSL context on Node), so that
 * each message costs a single AES call of two blocks. Holds secrets:
 * `dispose` wipes `K1` and erases the key schedule, and every use afterwards
 * throws.
 */
export interface XaesKey {
  /** Steps 3 to 5: `Kx` for one 24-byte nonce, a fresh array the caller wipes. @throws Error after `dispose` */
  messageKey(nonce: Uint8Array): Uint8Array;
  /** Wipe `K1` and erase the key schedule. Idempotent. */
  dispose(): void;
}

/**
 * Prepare `key` (32 bytes) for {@link xaesSeal} and {@link xaesOpen} over many messages.
 * The caller disposes of it when the key goes (the local keyring: with the material).
 */
export function xaesKey(aead: AesGcm, key: Uint8Array): XaesKey {
  checkKey(key);
  const block = blockFunction(aead, key);
  let K1: Uint8Array | undefined;
  try {
    const s = subkeys(block);
    wipe(s.L);
    K1 = s.K1;
  } catch (e) {
    block.dispose();
    throw e;
  }
  return Object.freeze({
    messageKey(nonce: Uint8Array): Uint8Array {
      if (K1 === undefined) throw new Error('this XAES-256-GCM key was disposed');
      return deriveKx(block, K1, nonce);
    },
    dispose(): void {
      wipe(K1);
      K1 = undefined;
      block.dispose();
    },
  });
}

/**
 * Steps 1 to 6 of the C2SP "Detailed key derivation algorithm".
 * @param key - 32 bytes.
 * @param nonce - 24 bytes.
 */
export function xaesDerive(aead: AesGcm, key: Uint8Array, nonce: Uint8Array): XaesDerivation {
  if (nonce.length !== XAES_NONCE_LENGTH) throw new RangeError(`"nonce" expected Uint8Array of length 24, got length=${nonce.length}`);
  checkKey(key);
  const block = blockFunction(aead, key);
  try {
    const { L, K1 } = subkeys(block);
    return { L, K1, Kx: deriveKx(block, K1, nonce), Nx: nonce.subarray(12, 24) };
  } finally {
    block.dispose();
  }
}

/** Steps 3 to 5: `Kx` from the key's block function, its subkey `K1` and the nonce. */
function deriveKx(block: Aes256Key, K1: Uint8Array, nonce: Uint8Array): Uint8Array {
  if (nonce.length !== XAES_NONCE_LENGTH) throw new RangeError(`"nonce" expected Uint8Array of length 24, got length=${nonce.length}`);
  const M = new Uint8Array(32); // 3. and 4., xored with K1
  M[1] = 0x01;
  M[2] = 0x58;
  M[17] = 0x02;
  M[18] = 0x58;
  for (let i = 0; i < 12; i++) M[4 + i] = M[20 + i] = nonce[i]!;
  for (let i = 0; i < 32; i++) M[i]! ^= K1[i & 15]!;
  try {
    return block.encrypt(M); // 5.
  } finally {
    wipe(M);
  }
}

/** `Kx` for one message, from the prepared key when the caller keeps one (else derived here, and everything wiped). */
function messageKey(aead: AesGcm, key: Uint8Array, nonce: Uint8Array, prepared: XaesKey | undefined): Uint8Array {
  if (prepared !== undefined) return prepared.messageKey(nonce);
  const k = xaesKey(aead, key);
  try {
    return k.messageKey(nonce);
  } finally {
    k.dispose();
  }
}

/**
 * XAES-256-GCM seal: writes `ciphertext || tag` into `out` (`plaintext.length + 16` bytes).
 * @param prepared - optional: {@link xaesKey} of this same `key`, kept by a caller that seals many messages.
 */
export function xaesSeal(aead: AesGcm, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, prepared?: XaesKey): void {
  const Kx = messageKey(aead, key, nonce, prepared);
  try {
    aead.seal(Kx, nonce.subarray(12, 24), aad, plaintext, out); // 6.
  } finally {
    wipe(Kx);
  }
}

/**
 * XAES-256-GCM open of `ciphertext || tag` into `out`; false (and `out` zeroed) when the tag does not verify.
 * @param prepared - optional, as in {@link xaesSeal}.
 */
export function xaesOpen(aead: AesGcm, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array, prepared?: XaesKey): boolean {
  const Kx = messageKey(aead, key, nonce, prepared);
  try {
    return aead.open(Kx, nonce.subarray(12, 24), aad, sealed, out); // 6.
  } finally {
    wipe(Kx);
  }
}
