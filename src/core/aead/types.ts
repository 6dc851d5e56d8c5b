/**
 * The AES-GCM seam: the only place envelope-kit touches a block cipher.
 * Two backends implement it: {@link nobleAesGcm} (@noble/ciphers, every runtime)
 * and `nodeAesGcm` (`envelope-kit/node`, `node:crypto`). Both produce
 * byte-identical output.
 * @module
 */

/** AES-GCM with a 16-byte tag and a 12-byte nonce; key of 16 or 32 bytes. */
export interface AesGcm {
  /** Short name for diagnostics (`"noble"`, `"node"`). */
  readonly name: string;
  /**
   * Encrypt `plaintext` and write `ciphertext || tag` into `out`
   * (`out.length === plaintext.length + 16`).
   */
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void;
  /**
   * Decrypt `sealed` (`ciphertext || tag`) into `out` (`out.length === sealed.length - 16`).
   * Returns false when the tag does not verify; `out` is then zeroed.
   */
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean;
  /**
   * Optional: true when `open` also works in place, with `out` the start of
   * `sealed` itself (`out = sealed.subarray(0, sealed.length - 16)`). `decrypt`
   * then writes the plaintext over its copy of the ciphertext instead of
   * allocating a second payload-sized buffer. Both built-in backends do.
   */
  readonly openInPlace?: boolean;
  /**
   * Optional: HMAC-SHA-512 (RFC 2104) of `message` under `key`, as a fresh
   * 64-byte array the caller owns (and wipes). When present the key schedule
   * (SPEC.md §3.3, §12.2: one HMAC-SHA-512 call per derivation) runs on it
   * instead of @noble/hashes; it must return exactly HMAC-SHA-512, and an
   * answer that is not 64 bytes is refused. The `node:crypto` backend provides
   * it (OpenSSL); a backend without it loses nothing but speed.
   */
  readonly hmacSha512?: (key: Uint8Array, message: Uint8Array) => Uint8Array;
  /**
   * Optional: AES-256 in ECB mode without padding (FIPS 197) over `blocks`
   * (a whole number of 16-byte blocks) under the 32-byte `key`, as a fresh
   * array. When present the local keyring's XAES-256-GCM key derivation
   * (SPEC.md §6) runs on it instead of @noble/ciphers; it must return exactly
   * AES-256. Both built-in backends provide it.
   */
  readonly aes256Ecb?: (key: Uint8Array, blocks: Uint8Array) => Uint8Array;
  /**
   * Optional: the same AES-256 block function under one fixed 32-byte `key`,
   * set up once (its key schedule kept) for many calls: the local keyring
   * keeps one per master key version and derives each blob's XAES-256-GCM key
   * (SPEC.md §6) with a single `encrypt`. It must give exactly what
   * {@link AesGcm.aes256Ecb} gives; `dispose` erases the key schedule, and
   * `encrypt` throws afterwards. A backend without it loses nothing but speed.
   */
  readonly aes256EcbKey?: (key: Uint8Array) => Aes256Key;
}

/** AES-256 (FIPS 197) under one key, set up once: see {@link AesGcm.aes256EcbKey}. Holds key material until disposed. */
export interface Aes256Key {
  /** AES-256 in ECB mode without padding over `blocks` (a whole number of 16-byte blocks), as a fresh array the caller wipes. */
  encrypt(blocks: Uint8Array): Uint8Array;
  /** Erase the key schedule; later calls of `encrypt` throw. Idempotent. */
  dispose(): void;
}

/** GCM tag length used everywhere in the format. */
export const TAG_LENGTH = 16;
/** GCM nonce length used everywhere in the format. */
export const NONCE_LENGTH = 12;
