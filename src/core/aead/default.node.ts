/**
 * The default AES-GCM backend on Node: `node:crypto` (OpenSSL), byte-identical
 * to @noble/ciphers and much faster. Served for the internal import
 * `#aead-default` under the `node` condition (see `default.ts`).
 *
 * It also serves the package's `nobleAesGcm` on Node, and the @noble/hashes
 * functions the key schedule, the blind index and the keyring file fall back on,
 * loading noble on first use rather than at import: noble builds its AES tables
 * and SHA-2 constants when its modules load, which took more than half of the
 * package's import time, for code Node does not run unless asked.
 * @module
 */
import { createRequire } from 'node:module';
import { type NobleAes, nobleBackend } from './noble-backend.js';
import type { AesGcm } from './types.js';

export { nodeAesGcm as defaultAesGcm } from './node.js';

let aes: NobleAes | undefined;

/**
 * noble's AES module, loaded synchronously on first use: `require` of an ES module
 * (Node 20.19 and later; the CommonJS build needs it for @noble/ciphers in any case).
 */
function loadNoble(): NobleAes {
  if (aes === undefined) {
    // (tsup gives the CommonJS build an `import.meta.url`.)
    const m = createRequire(import.meta.url)('@noble/ciphers/aes.js') as NobleAes;
    aes = { ecb: m.ecb, gcm: m.gcm };
  }
  return aes;
}

/** The portable AES-GCM backend (@noble/ciphers), loaded on first use. */
export const nobleAesGcm: AesGcm = nobleBackend(loadNoble);

interface NobleHashes {
  readonly hmac: typeof import('@noble/hashes/hmac.js').hmac;
  readonly sha256: typeof import('@noble/hashes/sha2.js').sha256;
  readonly sha512: typeof import('@noble/hashes/sha2.js').sha512;
}
let hashes: NobleHashes | undefined;

/** @noble/hashes' HMAC and SHA-2, loaded synchronously on first use (as {@link loadNoble}). */
function loadHashes(): NobleHashes {
  if (hashes === undefined) {
    const load = createRequire(import.meta.url);
    const { hmac } = load('@noble/hashes/hmac.js') as typeof import('@noble/hashes/hmac.js');
    const { sha256, sha512 } = load('@noble/hashes/sha2.js') as typeof import('@noble/hashes/sha2.js');
    hashes = { hmac, sha256, sha512 };
  }
  return hashes;
}

/** HMAC-SHA-512 (@noble/hashes, loaded on first use): a fresh 64-byte array. */
export const nobleHmacSha512 = (key: Uint8Array, message: Uint8Array): Uint8Array => {
  const h = loadHashes();
  return h.hmac(h.sha512, key, message);
};
/** @noble/hashes' SHA-2 hashes (loaded on first use), for its `hmac` (the blind index). */
export const nobleSha2 = (): Pick<NobleHashes, 'sha256' | 'sha512'> => loadHashes();
/** SHA-256 (@noble/hashes, loaded on first use): a fresh 32-byte array. */
export const nobleSha256 = (message: Uint8Array): Uint8Array => loadHashes().sha256(message);

/** scrypt (@noble/hashes, loaded on first use), for passphrase-protected keyring files. */
export const nobleScryptAsync: typeof import('@noble/hashes/scrypt.js').scryptAsync = (password, salt, opts) => {
  const { scryptAsync } = createRequire(import.meta.url)('@noble/hashes/scrypt.js') as typeof import('@noble/hashes/scrypt.js');
  return scryptAsync(password, salt, opts);
};
