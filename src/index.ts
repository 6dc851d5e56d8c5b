/**
 * envelope-kit: envelope encryption with KMS data keys, AES-256-GCM and a
 * self-describing, versioned envelope (SPEC.md). This entry is runtime-neutral:
 * it imports no `node:*` module. The default AES-GCM backend comes through the
 * internal import `#aead-default` (package.json "imports"): `node:crypto` under
 * the `node` condition, @noble/ciphers everywhere else, with byte-identical output.
 * @module
 */
export { encrypt, decrypt, encryptText, decryptText, inspect, MAX_PLAINTEXT_BYTES, MAX_ALLOWED_KEY_IDS, MAX_RECIPIENTS } from './core/envelope.js';
export type { EncryptOptions, DecryptOptions, DecryptResult, EnvelopeInfo, InspectOptions, Recipient } from './core/envelope.js';
export { rewrap, rewrapHeader } from './core/rewrap.js';
export type { RewrapOptions, ReplaceRule, KeySelector, EncryptedDataKeyInfo, Rewrappable, HeaderSource } from './core/rewrap.js';
export { encryptStream, decryptStream, decryptRange, SEGMENT_LIMITS, MAX_PARALLEL } from './stream/index.js';
export type {
  EncryptStreamOptions,
  DecryptStreamOptions,
  DecryptStream,
  DecryptStreamInfo,
  RangeSource,
  DecryptRangeOptions,
  DecryptRangeResult,
} from './stream/index.js';
export { withDataKeyCache, isRetryableError, CACHE_LIMITS, CACHE_DEFAULTS } from './cache/index.js';
export type { DataKeyCache, DataKeyCacheOptions, CacheStats, CacheSideStats, CacheSide, StaleServeEvent, RefreshErrorEvent } from './cache/index.js';
export { LocalKeyring, LOCAL_PROVIDER_ID, KEYRING_LIMITS, checkAlias } from './providers/local/keyring.js';
export type { KeyInfo, KeyState, CreateKeyOptions, LocalKeyringOptions, KeyringState } from './providers/local/keyring.js';
export {
  KEY_SPEC_BYTES,
  PROVIDER_LIMITS,
  checkGenerateDataKeyRequest,
  checkDecryptRequest,
  checkEncryptRequest,
  checkReEncryptRequest,
  checkKeyId,
  checkKeySpec,
  isProviderId,
} from './core/provider.js';
export type {
  KeyProvider,
  KeySpec,
  GenerateDataKeyRequest,
  DataKey,
  DecryptRequest,
  DecryptedDataKey,
  EncryptRequest,
  ReEncryptRequest,
  WrappedKey,
  BlobDescription,
  CheckedGenerateRequest,
} from './core/provider.js';
export { CONTEXT_LIMITS, RESERVED_KEY_PREFIX, PROVIDER_PURPOSE_KEY, PROVIDER_PURPOSE_VALUE } from './core/context.js';
export type { EncryptionContext } from './core/context.js';
export { FORMAT_LIMITS, TEXT_PREFIX, MAX_TEXT_LENGTH, MAX_TEXT_ENVELOPE_BYTES, envelopeToText, envelopeFromText } from './core/format.js';
import { nobleAesGcm as portableAesGcm } from '#aead-default';
import type { AesGcm as AesGcmBackend } from './core/aead/types.js';
/**
 * The portable AES-GCM backend (@noble/ciphers), byte-identical to the `node:crypto` one. On Node,
 * where it is not the default, @noble/ciphers is loaded on its first use rather than at import.
 */
export const nobleAesGcm: AesGcmBackend = portableAesGcm;
export type { AesGcm } from './core/aead/types.js';
export { WEBCRYPTO_MIN_BYTES } from './core/aead/webcrypto.js';
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
  isEnvelopeKitError,
} from './core/errors.js';
export type { ErrorCode } from './core/errors.js';
export { serializeKeyring, parseKeyring, DEFAULT_SCRYPT, SCRYPT_BOUNDS, KEYRING_FORMAT, KEYRING_VERSION, MAX_KEYRING_TEXT_BYTES } from './providers/local/file-format.js';
export type { ScryptParams, SerializeKeyringOptions, ParseKeyringOptions } from './providers/local/file-format.js';
export { encryptObject, decryptObject, encryptObjects, decryptObjects, rewrapObjects } from './records/objects.js';
export type {
  ValueSchema,
  EncryptObjectOptions,
  DecryptObjectOptions,
  EncryptObjectsOptions,
  DecryptObjectsOptions,
  BatchResult,
  BatchOptions,
  RewrapObjectsOptions,
} from './records/objects.js';
export {
  encryptFields,
  decryptFields,
  encryptRecords,
  decryptRecords,
  rewrapFields,
  rewrapRecords,
  FIELD_RECORD_LABEL,
  FIELD_LABEL,
  FIELD_COMMITMENT_LENGTH,
  MAX_RECORD_ID_BYTES,
} from './records/fields.js';
export type {
  EncryptFieldsOptions,
  DecryptFieldsOptions,
  EncryptRecordsOptions,
  DecryptRecordsOptions,
  RewrapFieldsOptions,
  RewrapRecordsOptions,
  BlindIndexField,
  BlindIndexOptions,
  RecordId,
  RecordVersion,
  EncryptedField,
  EncryptedFields,
  DecryptedFields,
  FieldPath,
  FieldSelector,
} from './records/fields.js';
export { SELECTOR_LIMITS } from './records/selectors.js';
export { createBlindIndexKey, openBlindIndex, BLIND_INDEX_LABEL } from './records/blind-index.js';
export type { BlindIndex, CreateBlindIndexKeyOptions, OpenBlindIndexOptions } from './records/blind-index.js';
export { encodeValue, decodeValue, DEFAULT_MAX_DEPTH, MAX_DEPTH_LIMIT, MAX_BIGINT_BYTES, VALUE_ENCODING_VERSION } from './records/value-encoding.js';
export { UnsupportedValueError, MalformedValueError, SchemaMismatchError, UnencryptedFieldError, FieldNotFoundError } from './core/errors.js';
export type { SchemaIssue } from './core/errors.js';
