/**
 * The default AES-GCM backend where `node:crypto` is not available (browsers,
 * edge runtimes): @noble/ciphers, with the platform's WebCrypto for large
 * payloads (`webcrypto.ts`). Reached only through the package's internal
 * import `#aead-default`, whose `node` condition serves `default.node.ts`
 * instead, so one mechanism, the runtime's own module resolution, picks the
 * backend and every entry point shares it. Both also export `nobleAesGcm` and
 * the @noble/hashes functions the key schedule, the blind index and the keyring
 * file use: imported here, loaded on first use on Node.
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';

import { nobleAesGcm } from './noble.js';
import { withWebCrypto } from './webcrypto.js';

export { nobleAesGcm };
/** The default here: @noble/ciphers, with the platform's WebCrypto for payloads of 1 KiB or more (`webcrypto.ts`). */
export const defaultAesGcm = withWebCrypto(nobleAesGcm);

/** HMAC-SHA-512 (@noble/hashes): a fresh 64-byte array. */
export const nobleHmacSha512 = (key: Uint8Array, message: Uint8Array): Uint8Array => hmac(sha512, key, message);
const sha2 = { sha256, sha512 };
/** @noble/hashes' SHA-2 hashes, for its `hmac` (the blind index). */
export const nobleSha2 = (): { readonly sha256: typeof sha256; readonly sha512: typeof sha512 } => sha2;
/** SHA-256 (@noble/hashes): a fresh 32-byte array. */
export const nobleSha256 = (message: Uint8Array): Uint8Array => sha256(message);
/** scrypt (@noble/hashes), for passphrase-protected keyring files. */
export const nobleScryptAsync: typeof scryptAsync = scryptAsync;
