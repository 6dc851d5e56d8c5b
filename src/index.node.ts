/**
 * The package entry on Node (served by the `node` export condition): the whole
 * runtime-neutral API, with `node:crypto` as the default AES-GCM backend.
 * Output is byte-identical to the portable entry.
 * @module
 */
import * as blind from './blind-index.js';
import * as env from './envelope.js';
import * as fields from './fields.js';
import { LocalKeyring as CoreLocalKeyring, type LocalKeyringOptions } from './keyring/local.js';
import { nodeAesGcm } from './node/aead.js';
import { InvalidParameterError } from './errors.js';
import { readOptions } from './internal/options.js';
import * as objects from './objects.js';

export * from './index.js';

/**
 * Options with `aead` defaulted to `node:crypto`. Reading the caller's object
 * cannot throw a foreign error: any throw becomes InvalidParameterError.
 */
function withNode<T>(options: T): T {
  if (options === null || typeof options !== 'object') return options;
  try {
    const aead = (options as { aead?: unknown }).aead;
    return aead === undefined ? { ...options, aead: nodeAesGcm } : options;
  } catch (e) {
    throw new InvalidParameterError('options could not be read', { cause: e });
  }
}

/** {@inheritDoc env.encrypt} */
export const encrypt: typeof env.encrypt = (p, o) => env.encrypt(p, withNode(o));
/** {@inheritDoc env.decrypt} */
export const decrypt: typeof env.decrypt = (e, o) => env.decrypt(e, withNode(o));
/** {@inheritDoc env.encryptText} */
export const encryptText: typeof env.encryptText = (p, o) => env.encryptText(p, withNode(o));
/** {@inheritDoc env.decryptText} */
export const decryptText: typeof env.decryptText = (e, o) => env.decryptText(e, withNode(o));
/** {@inheritDoc objects.encryptObject} */
export const encryptObject: typeof objects.encryptObject = (v, o) => objects.encryptObject(v, withNode(o));
/** {@inheritDoc objects.decryptObject} */
export const decryptObject: typeof objects.decryptObject = (e, o) => objects.decryptObject(e, withNode(o));
/** {@inheritDoc objects.encryptObjects} */
export const encryptObjects: typeof objects.encryptObjects = (v, o) => objects.encryptObjects(v, withNode(o));
/** {@inheritDoc objects.decryptObjects} */
export const decryptObjects: typeof objects.decryptObjects = (e, o) => objects.decryptObjects(e, withNode(o));
/** {@inheritDoc fields.encryptFields} */
export const encryptFields: typeof fields.encryptFields = (r, o) => fields.encryptFields(r, withNode(o));
/** {@inheritDoc fields.decryptFields} */
export const decryptFields: typeof fields.decryptFields = (r, o) => fields.decryptFields(r, withNode(o));
/** {@inheritDoc fields.encryptRecords} */
export const encryptRecords: typeof fields.encryptRecords = (r, o) => fields.encryptRecords(r, withNode(o));
/** {@inheritDoc fields.decryptRecords} */
export const decryptRecords: typeof fields.decryptRecords = (r, o) => fields.decryptRecords(r, withNode(o));
/** {@inheritDoc blind.createBlindIndexKey} */
export const createBlindIndexKey: typeof blind.createBlindIndexKey = (o) => blind.createBlindIndexKey(withNode(o));
/** {@inheritDoc blind.openBlindIndex} */
export const openBlindIndex: typeof blind.openBlindIndex = (s, o) => blind.openBlindIndex(s, withNode(o));

/** {@inheritDoc CoreLocalKeyring} On Node, wraps data keys with `node:crypto`. */
export class LocalKeyring extends CoreLocalKeyring {
  constructor(options: LocalKeyringOptions = {}) {
    const { aead } = readOptions(options, ['aead'], 'LocalKeyring options');
    super({ aead: (aead as LocalKeyringOptions['aead']) ?? nodeAesGcm });
  }
}
