/**
 * `envelope-kit/pkcs11`: master keys in a PKCS#11 token (an HSM, or SoftHSM2 for tests). Node
 * only: it loads the optional peer dependency `pkcs11js` (a native addon) on first use, so that
 * no other entry point of envelope-kit ever needs it.
 * @module
 */
export { Pkcs11Provider, PKCS11_PROVIDER_ID, PKCS11_LIMITS, SOFTHSM2_DEBIAN_MODULE } from './provider.js';
export type { Pkcs11ProviderOptions, Pkcs11KeyVersion, Pkcs11WrapScheme, Pkcs11DataKeySource } from './provider.js';
export { Pkcs11ProviderError, CKR } from './errors.js';
export type { Pkcs11Failure } from './errors.js';
export { loadPkcs11Binding, BINDING_PACKAGE, CK } from './binding.js';
export type { Pkcs11Binding, Pkcs11Module, Pkcs11Handle, Pkcs11Attribute, Pkcs11Mechanism } from './binding.js';
export {
  readPkcs11Blob,
  encodeHeader,
  keyLabel,
  parseKeyLabel,
  PKCS11_BLOB_VERSION,
  SCHEME_GCM,
  SCHEME_KWP,
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  KWP_DIGEST_BYTES,
  KWP_CONTEXT_LABEL,
  KEY_NAME_RE,
} from './blob.js';
export type { Pkcs11BlobHeader } from './blob.js';
