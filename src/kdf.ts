/**
 * Key schedule of suite 0x01 (SPEC.md §3.3): one HKDF-SHA-256 extract from the
 * data key and the message id, then one expand per purpose with a versioned label.
 * @module
 */
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8Encode, wipe } from './internal/bytes.js';

/** HKDF info labels of suite 0x01. Literal, versioned strings. */
export const LABELS = Object.freeze({
  content: 'envelope-kit/v1/content-key',
  commitment: 'envelope-kit/v1/key-commitment',
});

const CONTENT_INFO = utf8Encode(LABELS.content);
const COMMIT_INFO = utf8Encode(LABELS.commitment);

/** Content key and commitment of one envelope. Caller wipes `contentKey`. */
export interface DerivedKeys {
  readonly contentKey: Uint8Array;
  readonly commitment: Uint8Array;
}

/**
 * `prk = HKDF-Extract(salt = messageId, ikm = dataKey)`;
 * `contentKey = HKDF-Expand(prk, "envelope-kit/v1/content-key", 32)`;
 * `commitment = HKDF-Expand(prk, "envelope-kit/v1/key-commitment", 32)`.
 */
export function deriveKeys(dataKey: Uint8Array, messageId: Uint8Array): DerivedKeys {
  const prk = extract(sha256, dataKey, messageId);
  try {
    return { contentKey: expand(sha256, prk, CONTENT_INFO, 32), commitment: expand(sha256, prk, COMMIT_INFO, 32) };
  } finally {
    wipe(prk);
  }
}
