/**
 * envelope-kit: envelope encryption with KMS data keys, AES-256-GCM and a
 * self-describing, versioned envelope (SPEC.md). This entry is runtime-neutral:
 * it imports no `node:*` module. On Node the package's `node` export condition
 * serves `index.node.ts`, the same API on the `node:crypto` AES-GCM backend.
 * @module
 */
export { encrypt, decrypt, encryptText, decryptText, inspect, MAX_PLAINTEXT_BYTES } from './envelope.js';
export type { EncryptOptions, DecryptOptions, DecryptResult, EnvelopeInfo } from './envelope.js';
export { LocalKeyring, LOCAL_PROVIDER_ID, checkAlias } from './keyring/local.js';
export type { KeyInfo, KeyState, CreateKeyOptions, LocalKeyringOptions, KeyringState } from './keyring/local.js';
export {
  KEY_SPEC_BYTES,
  PROVIDER_LIMITS,
  checkGenerateDataKeyRequest,
  checkDecryptRequest,
  checkKeyId,
  checkKeySpec,
  isProviderId,
} from './provider.js';
export type {
  KeyProvider,
  KeySpec,
  GenerateDataKeyRequest,
  DataKey,
  DecryptRequest,
  DecryptedDataKey,
  CheckedGenerateRequest,
} from './provider.js';
export { CONTEXT_LIMITS } from './context.js';
export type { EncryptionContext } from './context.js';
export { FORMAT_LIMITS, TEXT_PREFIX, envelopeToText, envelopeFromText } from './format.js';
export { nobleAesGcm } from './aead/noble.js';
export type { AesGcm } from './aead/types.js';
export {
  EnvelopeKitError,
  InvalidParameterError,
  MalformedEnvelopeError,
  UnsupportedVersionError,
  NoMatchingProviderError,
  KeyNotFoundError,
  KeyDisabledError,
  DecryptionFailedError,
  ProviderError,
  KeyringFileError,
  DECRYPTION_FAILED_MESSAGE,
} from './errors.js';
export type { ErrorCode } from './errors.js';
export { serializeKeyring, parseKeyring, DEFAULT_SCRYPT, SCRYPT_BOUNDS, KEYRING_FORMAT, KEYRING_VERSION } from './keyring/file-format.js';
export type { ScryptParams, SerializeKeyringOptions, ParseKeyringOptions } from './keyring/file-format.js';
export { encryptObject, decryptObject, encryptObjects, decryptObjects } from './objects.js';
export type { ValueSchema, EncryptObjectOptions, DecryptObjectOptions, BatchResult, BatchOptions } from './objects.js';
export { encryptFields, decryptFields, encryptRecords, decryptRecords, FIELD_KEY_LABEL } from './fields.js';
export type { EncryptFieldsOptions, DecryptFieldsOptions, BlindIndexField, RecordId } from './fields.js';
export { createBlindIndexKey, openBlindIndex, BLIND_INDEX_LABEL } from './blind-index.js';
export type { BlindIndex, CreateBlindIndexKeyOptions, OpenBlindIndexOptions } from './blind-index.js';
export { encodeValue, decodeValue, DEFAULT_MAX_DEPTH, VALUE_ENCODING_VERSION } from './value-encoding.js';
export { UnsupportedValueError, SchemaMismatchError, UnencryptedFieldError } from './errors.js';
export type { SchemaIssue } from './errors.js';
