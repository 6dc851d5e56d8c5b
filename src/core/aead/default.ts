/**
 * The default AES-GCM backend where `node:crypto` is not available (browsers,
 * edge runtimes): @noble/ciphers. Reached only through the package's internal
 * import `#aead-default`, whose `node` condition serves `default.node.ts`
 * instead, so one mechanism, the runtime's own module resolution, picks the
 * backend and every entry point shares it. Both also export `nobleAesGcm`.
 * @module
 */
export { nobleAesGcm as defaultAesGcm, nobleAesGcm } from './noble.js';
