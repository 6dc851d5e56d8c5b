/**
 * `envelope-kit/alibaba`: the Alibaba Cloud KMS provider. Runtime-neutral (the
 * platform `fetch`, @noble/hashes, no `node:*` import), so it runs on Node 20+,
 * in browsers and on edge runtimes. The offline emulator is the Node-only
 * `envelope-kit/alibaba-emulator`.
 * @module
 */
export {
  AlibabaKmsProvider,
  ALIBABA_KMS_PROVIDER_ID,
  KMS_API_VERSION,
  MAX_ENCRYPT_PLAINTEXT_BYTES,
  MAX_CIPHERTEXT_BLOB_BYTES,
  scrubUrls,
} from './provider.js';
export { KMS_CONTEXT_MAX_CHARS, checkServiceContext } from './context.js';
export type { ServiceContext } from './context.js';
export type {
  AlibabaKmsProviderOptions,
  AlibabaCallOptions,
  AlibabaSignatureVersion,
  AlibabaResultMeta,
  AlibabaDataKey,
  AlibabaDecryptedDataKey,
  AlibabaEncryptRequest,
  AlibabaReEncryptRequest,
  AlibabaCiphertext,
  AlibabaWrappedDataKey,
  AlibabaGenerateDataKeyWithoutPlaintextRequest,
} from './provider.js';
export { AlibabaKmsError, isRetryableCode, RETRYABLE_CODES, KEY_NOT_FOUND_CODES, KEY_DISABLED_CODES, INVALID_PARAMETER_CODES } from './errors.js';
export type { AlibabaKmsFailure, AlibabaKmsErrorDetails } from './errors.js';
export { CREDENTIAL_ENV, credentialsFromEnv } from './credentials.js';
export type { AlibabaCredentials, AlibabaCredentialsProvider } from './credentials.js';
export { resolveEndpoint } from './endpoint.js';
export { percentEncode, canonicalQuery } from './encoding.js';
export type { Param } from './encoding.js';
export { v1Signature, v1StringToSign, V1_SIGNATURE_METHOD, V1_SIGNATURE_VERSION } from './signature-v1.js';
export {
  v3CanonicalRequest,
  v3StringToSign,
  v3Signature,
  v3Authorization,
  parseV3Authorization,
  hashPayload,
  headersToSign,
  canonicalQueryRawNames,
  V3_ALGORITHM,
} from './signature-v3.js';
export type { V3CanonicalInput } from './signature-v3.js';
