/**
 * The default AES-GCM backend where `node:crypto` is not available (browsers,
 * edge runtimes): @noble/ciphers, with the platform's WebCrypto for large
 * payloads (`webcrypto.ts`). Reached only through the package's internal
 * import `#aead-default`, whose `node` condition serves `default.node.ts`
 * instead, so one mechanism, the runtime's own module resolution, picks the
 * backend and every entry point shares it.
 * @module
 */
export { webCryptoAesGcm as defaultAesGcm } from './webcrypto.js';
