/**
 * `envelope-kit/node`: Node-only parts. The `node:crypto` AES-GCM backend and
 * keyring files on disk (atomic writes, mode 0600), and files and `node:stream` adapters for
 * framed envelopes (SPEC.md §14).
 * @module
 */
export { nodeAesGcm } from './core/aead/node.js';
export { saveKeyring, loadKeyring, writeFileAtomic, MAX_KEYRING_FILE_BYTES } from './providers/local/file.node.js';
export type { SaveKeyringOptions, LoadKeyringOptions } from './providers/local/file.node.js';
export {
  serializeKeyring,
  parseKeyring,
  DEFAULT_SCRYPT,
  SCRYPT_BOUNDS,
  KEYRING_FORMAT,
  KEYRING_VERSION,
  MAX_KEYRING_TEXT_BYTES,
} from './providers/local/file-format.js';
export type { ScryptParams, SerializeKeyringOptions, ParseKeyringOptions } from './providers/local/file-format.js';
export { encryptFile, decryptFile, inspectFile, writeStreamAtomic, openFileSource, createEncryptStream, createDecryptStream } from './stream/node.js';
export type { AtomicWriteOptions, EncryptFileOptions, DecryptFileOptions, DecryptFileResult } from './stream/node.js';
export { rewrapFile } from './stream/rewrap-file.node.js';
export type { RewrapFileOptions, RewrapFileResult } from './stream/rewrap-file.node.js';
