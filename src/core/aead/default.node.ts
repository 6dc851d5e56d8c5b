/**
 * The default AES-GCM backend on Node: `node:crypto` (OpenSSL), byte-identical
 * to @noble/ciphers and much faster. Served for the internal import
 * `#aead-default` under the `node` condition (see `default.ts`).
 * @module
 */
export { nodeAesGcm as defaultAesGcm } from './node.js';
