/**
 * The AES-GCM backend of browsers and edge runtimes: the platform's WebCrypto
 * (`crypto.subtle`, AES-GCM of W3C Web Cryptography §30) for large payloads,
 * @noble/ciphers for small ones. WebCrypto is asynchronous and pays a fixed cost
 * per call (a key import, a promise, copies in and out), so it only wins above
 * a size; below it, and wherever `crypto.subtle` is missing, the synchronous
 * @noble/ciphers code runs. Both give the same bytes (NIST SP 800-38D, 16-byte
 * tag, 12-byte nonce).
 *
 * Served as the default backend through `#aead-default` (see `default.ts`) where
 * the `node` condition does not apply. On Node the default stays `node:crypto`:
 * measured, `crypto.subtle` is slower than `createCipheriv` at every size there
 * (see {@link WEBCRYPTO_MIN_BYTES}).
 * @module
 */
import { nobleAesGcm } from './noble.js';
import { TAG_LENGTH, type AesGcm } from './types.js';

/**
 * Smallest payload (plaintext bytes, or a segment's) sealed or opened through WebCrypto; below
 * it @noble/ciphers runs.
 *
 * Measured with `npm run bench:browser` (bench/browser.ts) in headless Chromium 156 on a
 * 2-core x86_64 machine with AES-NI (load average about 2): one seal + open of n bytes
 * (key import included) took, median of 200,
 * noble: 0.03 ms at 1 KiB, 0.06 ms at 4 KiB, 0.21 ms at 16 KiB;
 * WebCrypto: 0.07 ms at 1 KiB, 0.07 ms at 4 KiB, 0.08 ms at 16 KiB.
 * They cross between 4 and 8 KiB; 8 KiB keeps every value and record field (a few hundred
 * bytes) on noble, and every stream segment (4 KiB minimum, 64 KiB by default) of 8 KiB or more
 * on WebCrypto.
 * On Node 20 (`crypto.subtle` vs `node:crypto`, same machine): WebCrypto was slower at every
 * size from 1 KiB to 64 MiB (e.g. 1 MiB: 1.3 ms vs 0.9 ms; 64 MiB: 95 ms vs 62 ms), so Node
 * keeps `node:crypto` and never reaches this code.
 */
export const WEBCRYPTO_MIN_BYTES = 8192;

/** The part of `SubtleCrypto` used here (the project's types do not assume a DOM). */
interface Subtle {
  importKey(format: 'raw', key: Uint8Array, algorithm: 'AES-GCM', extractable: false, usages: ('encrypt' | 'decrypt')[]): Promise<unknown>;
  encrypt(algorithm: GcmParams, key: unknown, data: Uint8Array): Promise<ArrayBuffer>;
  decrypt(algorithm: GcmParams, key: unknown, data: Uint8Array): Promise<ArrayBuffer>;
}
interface GcmParams {
  name: 'AES-GCM';
  iv: Uint8Array;
  additionalData: Uint8Array;
  tagLength: 128;
}

/** The runtime's `crypto.subtle`, or undefined where there is none (read each time: never throws). */
export function platformSubtle(): Subtle | undefined {
  try {
    const s = (globalThis as { crypto?: { subtle?: unknown } }).crypto?.subtle;
    return s !== null && typeof s === 'object' && typeof (s as Subtle).encrypt === 'function' ? (s as Subtle) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The browser and edge default: {@link nobleAesGcm}'s synchronous methods, and WebCrypto for
 * payloads of {@link WEBCRYPTO_MIN_BYTES} or more through {@link sealAead} / {@link openAead}
 * (the library's single-pass `encrypt`/`decrypt` and stream segments). Same bytes either way.
 * Only this object (the library's own default, by identity) takes the WebCrypto path: a backend
 * a caller passes as `aead`, even a copy of this one, runs as given.
 */
export const webCryptoAesGcm: AesGcm = Object.freeze({ ...nobleAesGcm, name: 'webcrypto' });

/**
 * Whether `aead` should seal or open `length` bytes through WebCrypto: it is
 * {@link webCryptoAesGcm}, the payload is at least {@link WEBCRYPTO_MIN_BYTES}, and the runtime
 * has `crypto.subtle`.
 */
export function prefersWebCrypto(aead: AesGcm, length: number): boolean {
  return aead === webCryptoAesGcm && length >= WEBCRYPTO_MIN_BYTES && platformSubtle() !== undefined;
}

/**
 * Import a raw AES-GCM key into WebCrypto (not extractable). WebCrypto copies `key` before this
 * returns, so the caller may wipe its bytes at once.
 */
export function importWebKey(key: Uint8Array): Promise<unknown> {
  const subtle = platformSubtle();
  if (subtle === undefined) return Promise.reject(new Error('WebCrypto (crypto.subtle) is not available'));
  return subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']);
}

/**
 * Seal on WebCrypto under an imported key: `ciphertext || tag` into `out`
 * (`plaintext.length + 16` bytes). `plaintext`, `nonce` and `aad` are copied when this is called.
 */
export async function webSeal(webKey: unknown, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): Promise<void> {
  const sealed = new Uint8Array(await platformSubtle()!.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, webKey, plaintext));
  if (sealed.length !== out.length) throw new Error('WebCrypto AES-GCM returned a wrong length');
  out.set(sealed);
}

/**
 * Open on WebCrypto under an imported key into `out` (`sealed.length - 16` bytes; it may be the
 * start of `sealed`, which is copied when this is called). False when the tag does not verify
 * (`out` is then zeroed); the runtime's own copy of the plaintext is wiped.
 */
export async function webOpen(webKey: unknown, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array): Promise<boolean> {
  if (sealed.length < TAG_LENGTH) {
    out.fill(0);
    return false;
  }
  let pt: Uint8Array;
  try {
    pt = new Uint8Array(await platformSubtle()!.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, webKey, sealed));
  } catch {
    out.fill(0);
    return false;
  }
  try {
    if (pt.length !== out.length) {
      out.fill(0);
      return false;
    }
    out.set(pt);
    return true;
  } finally {
    pt.fill(0);
  }
}
