/**
 * AES-GCM backend on @noble/ciphers: pure JavaScript, runs in every runtime.
 * @module
 */
import { ecb, gcm } from '@noble/ciphers/aes.js';
import { nobleBackend } from './noble-backend.js';
import type { AesGcm } from './types.js';

const aes = { ecb, gcm };

/** The portable AES-GCM backend (@noble/ciphers). */
export const nobleAesGcm: AesGcm = nobleBackend(() => aes);
