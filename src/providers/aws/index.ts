/**
 * `envelope-kit/aws`: the AWS KMS provider. Runtime-neutral (the platform
 * `fetch`, SigV4 on @noble/hashes, no AWS SDK, no `node:*` import), so it runs
 * on Node 20+, in browsers and on edge runtimes. The offline emulator is the
 * Node-only `envelope-kit/aws-emulator`.
 * @module
 */
export {
  AwsKmsProvider,
  AWS_KMS_PROVIDER_ID,
  AWS_MAX_ENCRYPT_PLAINTEXT_BYTES,
  AWS_MAX_CIPHERTEXT_BLOB_BYTES,
  AWS_JSON_CONTENT_TYPE,
} from './provider.js';
export type {
  AwsKmsProviderOptions,
  AwsCallOptions,
  AwsResultMeta,
  AwsDataKey,
  AwsDecryptedDataKey,
  AwsWrappedKey,
  AwsDecryptRequest,
  AwsReEncryptRequest,
} from './provider.js';
export {
  AwsKmsError,
  AWS_KEY_NOT_FOUND_TYPES,
  AWS_KEY_DISABLED_TYPES,
  AWS_DECRYPTION_FAILED_TYPES,
  AWS_INVALID_PARAMETER_TYPES,
  AWS_RETRYABLE_TYPES,
} from './errors.js';
export type { AwsKmsFailure, AwsKmsErrorDetails } from './errors.js';
export { AWS_CREDENTIAL_ENV, awsCredentialsFromEnv } from './credentials.js';
export type { AwsCredentials, AwsCredentialsProvider } from './credentials.js';
export { resolveAwsEndpoint, isAwsRegion } from './endpoint.js';
export {
  SIGV4_ALGORITHM,
  signRequest,
  canonicalRequest,
  canonicalUri,
  canonicalQueryString,
  credentialScope,
  stringToSign,
  signature,
  authorizationHeader,
  parseAuthorization,
  amzDate,
  parseAmzDate,
  hashHex,
  uriEncode,
} from './sigv4.js';
export type { QueryParam, SigV4CanonicalInput, ParsedAuthorization, SigningCredentials } from './sigv4.js';
