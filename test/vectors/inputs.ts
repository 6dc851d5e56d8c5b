/**
 * The fixed inputs every vector generator shares (SPEC.md §10): one master key,
 * key id and version, blob nonce, data keys and message id, written as readable
 * byte sequences so that a reader can retype them.
 * @module
 */

/** `start, start+1, ...` (mod 256), `n` bytes: readable fixed inputs. */
export function seq(start: number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
}

/** Lower-case hex, as every vector file writes bytes. */
export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

export const MASTER_KEY = seq(0x00, 32);
export const KEY_ID = 'vector-key-1';
export const KEY_VERSION = 1;
/** The 24-byte XAES-256-GCM nonce of the local blob (SPEC.md §6). */
export const BLOB_NONCE = seq(0xa0, 24);
export const DATA_KEY_256 = seq(0x40, 32);
export const DATA_KEY_128 = seq(0x80, 16);
export const MESSAGE_ID = seq(0x60, 16);
/** A second master key, for vectors with several recipients. */
export const MASTER_KEY_2 = seq(0x20, 32);
/** A second blob nonce, for a second blob in one vector. */
export const BLOB_NONCE_2 = seq(0xc0, 24);
/** A data key that is not the envelope's (a substituted blob holds it). */
export const DATA_KEY_OTHER = seq(0xe0, 32);
