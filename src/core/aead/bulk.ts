/**
 * The one place a whole single-pass body (SPEC.md §3.4, §3.5 step 6) is sealed or opened:
 * synchronously on the backend, or, for the browser and edge default backend and a payload of
 * {@link WEBCRYPTO_MIN_BYTES} or more, on the platform's WebCrypto. Same bytes either way.
 * @module
 */
import { InvalidParameterError } from '../errors.js';
import type { AesGcm } from './types.js';
import { importWebKey, prefersWebCrypto, webOpen, webSeal } from './webcrypto.js';

export { WEBCRYPTO_MIN_BYTES } from './webcrypto.js';

/**
 * {@link AesGcm.seal}, on WebCrypto when that is faster (see `webcrypto.ts`). The key, nonce,
 * associated data and plaintext are read (copied, on WebCrypto) before this returns its promise.
 */
export async function sealAead(aead: AesGcm, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): Promise<void> {
  if (!prefersWebCrypto(aead, plaintext.length)) {
    aead.seal(key, nonce, aad, plaintext, out);
    return;
  }
  const n = plaintext.length;
  const webKey = await importWebKey(key);
  // The key import is awaited: a caller's buffer transferred or shrunk meanwhile is refused, never sealed short.
  if (plaintext.length !== n) throw new InvalidParameterError('"plaintext" was detached or resized while it was being encrypted');
  await webSeal(webKey, nonce, aad, plaintext, out);
}

/**
 * {@link AesGcm.open}, on WebCrypto when that is faster. `out` may be the start of `sealed` when
 * the backend opens in place (the default backends do). False when the tag does not verify, and
 * `out` is then zeroed.
 */
export async function openAead(aead: AesGcm, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array): Promise<boolean> {
  if (!prefersWebCrypto(aead, out.length)) return aead.open(key, nonce, aad, sealed, out);
  let webKey: unknown;
  try {
    webKey = await importWebKey(key);
  } catch {
    out.fill(0);
    return false;
  }
  return webOpen(webKey, nonce, aad, sealed, out);
}
