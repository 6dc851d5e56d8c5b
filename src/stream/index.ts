/**
 * Streams and random access over framed envelopes (layout 0x02, SPEC.md §14), runtime-neutral.
 * @module
 */
export { encryptStream, decryptStream } from './web.js';
export type { EncryptStreamOptions, DecryptStreamOptions, DecryptStream, DecryptStreamInfo } from './web.js';
export { decryptRange } from './range.js';
export type { RangeSource, DecryptRangeOptions, DecryptRangeResult } from './range.js';
export { SEGMENT_LIMITS } from '../core/format.js';
export { MAX_PARALLEL } from '../core/framed.js';
