/**
 * The default AES-GCM backend on Node: `node:crypto` (OpenSSL), byte-identical
 * to @noble/ciphers and much faster. Served for the internal import
 * `#aead-default` under the `node` condition (see `default.ts`).
 *
 * It also serves the package's `nobleAesGcm` on Node, loading @noble/ciphers on
 * first use rather than at import: noble builds its AES tables when its module
 * loads, which took more than half of the package's import time, for a backend
 * Node does not use unless asked.
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
