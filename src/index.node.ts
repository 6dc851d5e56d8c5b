/**
 * The package entry on Node (served by the `node` export condition): the whole
 * runtime-neutral API, with `node:crypto` as the default AES-GCM backend.
 * Output is byte-identical to the portable entry.
 * @module
 */
import {
  type DecryptOptions,
  type DecryptResult,
  type EncryptOptions,
  decrypt as coreDecrypt,
  decryptText as coreDecryptText,
  encrypt as coreEncrypt,
  encryptText as coreEncryptText,
} from './envelope.js';
import { LocalKeyring as CoreLocalKeyring, type LocalKeyringOptions } from './keyring/local.js';
import { nodeAesGcm } from './node/aead.js';

export * from './index.js';

function withNode<T extends { aead?: unknown }>(options: T): T {
  if (options === null || typeof options !== 'object') return options;
  return options.aead === undefined ? { ...options, aead: nodeAesGcm } : options;
}

/** {@inheritDoc encrypt} */
export function encrypt(plaintext: Uint8Array, options: EncryptOptions): Promise<Uint8Array> {
  return coreEncrypt(plaintext, withNode(options));
}
/** {@inheritDoc decrypt} */
export function decrypt(envelope: Uint8Array, options: DecryptOptions): Promise<DecryptResult> {
  return coreDecrypt(envelope, withNode(options));
}
/** {@inheritDoc encryptText} */
export function encryptText(plaintext: Uint8Array, options: EncryptOptions): Promise<string> {
  return coreEncryptText(plaintext, withNode(options));
}
/** {@inheritDoc decryptText} */
export function decryptText(envelope: string, options: DecryptOptions): Promise<DecryptResult> {
  return coreDecryptText(envelope, withNode(options));
}

/** {@inheritDoc CoreLocalKeyring} On Node, wraps data keys with `node:crypto`. */
export class LocalKeyring extends CoreLocalKeyring {
  constructor(options: LocalKeyringOptions = {}) {
    super({ ...options, aead: options?.aead ?? nodeAesGcm });
  }
}
