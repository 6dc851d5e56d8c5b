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
 * (see {@link WEBCRYPTO_MIN_BYTES} for the figures).
 * @module
 */
import { TAG_LENGTH, type AesGcm } from './types.js';

/**
 * Smallest payload (plaintext bytes, or a segment's) sealed or opened through WebCrypto; below
 * it @noble/ciphers runs.
 *
 * Measured with `npm run bench:browser` (bench/browser.ts) on a shared 2-core x86_64 machine
 * (load average 4 to 9 during the runs), one seal + one open of n bytes, key import included,
 * median of 15 batches:
 * - headless Chromium 156: WebCrypto beats noble at every size measured, from 16 B (0.012 ms
 *   against 0.046 ms) and 1 KiB (0.012 against 0.097) to 64 KiB (0.10 against 3.8) and 1 MiB
 *   (2.8 against 42);
 * - Node 20's `crypto.subtle`, which is also what @edge-runtime/vm offers: slower than noble at
 *   16 B (0.062 against 0.037 ms) and at 256 B (0.048 against 0.045), faster from 1 KiB (0.046
 *   against 0.081) on.
 * 1 KiB is where both runtimes gain; below it Chromium loses at most 0.09 ms a call, and small
 * values stay on the synchronous path. Every stream segment (4 KiB at least) goes to WebCrypto.
 * Against `node:crypto`, Node's `crypto.subtle` was slower at every size from 16 B (12×) to
 * 64 MiB (246 ms against 176 ms), so Node keeps `node:crypto` and never reaches this code.
 */
export const WEBCRYPTO_MIN_BYTES = 1024;

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

/** The backends made by {@link withWebCrypto}: only these take the WebCrypto path. */
const webCryptoBackends = new WeakSet<AesGcm>();

/**
 * The browser and edge default (`default.ts`): `base`'s synchronous methods (@noble/ciphers), and
 * WebCrypto for payloads of {@link WEBCRYPTO_MIN_BYTES} or more through `sealAead` / `openAead`
 * (`bulk.ts`: the library's single-pass `encrypt`/`decrypt`) and the stream segment ciphers. Same
 * bytes either way. Only the object returned (the library's own default, by identity) takes the
 * WebCrypto path: a backend a caller passes as `aead`, even a copy of this one, runs as given.
 * @returns a frozen backend named `"webcrypto"`.
 */
export function withWebCrypto(base: AesGcm): AesGcm {
  const aead: AesGcm = Object.freeze({ ...base, name: 'webcrypto' });
  webCryptoBackends.add(aead);
  return aead;
}

/**
 * Whether `aead` should seal or open `length` bytes through WebCrypto: it was made by
 * {@link withWebCrypto}, the payload is at least {@link WEBCRYPTO_MIN_BYTES}, and the runtime
 * has `crypto.subtle`.
 */
export function prefersWebCrypto(aead: AesGcm, length: number): boolean {
  return webCryptoBackends.has(aead) && length >= WEBCRYPTO_MIN_BYTES && platformSubtle() !== undefined;
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
