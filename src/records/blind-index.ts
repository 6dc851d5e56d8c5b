/**
 * Blind indexes (SPEC.md §13): a keyed, truncated HMAC-SHA-256 of a field's
 * plaintext, stored beside its ciphertext so an app can query
 * `WHERE email_idx = ?`. The index key is its own random key, stored encrypted
 * by the provider like a data key (never a record's data key, never a plain
 * hash), and is the same for every record.
 *
 * Leakage: records with equal (normalised) values have equal indexes, so
 * equality, and with it frequency, is visible to whoever reads the table. Fewer
 * bits mean more false positives (filter them after decrypting) and less
 * certainty for an observer.
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js';
import { nobleSha2 } from '#aead-default';
import { checkContext } from '../core/context.js';
import {
  type DecryptOptions,
  type EncryptOptions,
  checkDecryptOptions,
  checkEncryptOptions,
  decryptChecked,
  encryptChecked,
} from '../core/envelope.js';
import { DecryptionFailedError, InvalidParameterError } from '../core/errors.js';
import { envelopeFromText, envelopeToText } from '../core/format.js';
import { base64UrlEncode } from '../internal/base64.js';
import { concatBytes, utf8Encode, wipe } from '../internal/bytes.js';
import { readOptions } from '../internal/options.js';
import { randomBytes } from '../internal/random.js';
import { encodeValue } from './value-encoding.js';

/** HMAC input label (SPEC.md §13). */
export const BLIND_INDEX_LABEL = 'envelope-kit/v1/blind-index';
/**
 * Context entry that marks an envelope as holding a blind-index key (SPEC.md §13). The `ek:` prefix
 * is reserved for the library: `encrypt` cannot write such an envelope and `decrypt` refuses one,
 * so only {@link createBlindIndexKey} makes them and only {@link openBlindIndex} opens them.
 */
export const BLIND_INDEX_PURPOSE = 'ek:blind-index';

const NAME_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

/** A loaded blind index: computes index strings for one named index. */
export interface BlindIndex {
  /** The index name (bound into every index value). */
  readonly name: string;
  /** Bits kept of the HMAC (multiple of 8, 16..256). */
  readonly bits: number;
  /**
   * Index string (unpadded base64url) of a value: strings go through the
   * normaliser first; other values are indexed through their typed encoding.
   */
  compute(value: unknown): string;
  /** Wipe the index key. `compute` throws afterwards. */
  destroy(): void;
}

/** Options of {@link createBlindIndexKey}. */
export interface CreateBlindIndexKeyOptions extends Omit<EncryptOptions, 'encryptionContext' | 'keySpec'> {
  /** Index name, e.g. `users.email` (1..128 of `A-Z a-z 0-9 _ . : -`). */
  readonly name: string;
}

/** Options of {@link openBlindIndex}. */
export interface OpenBlindIndexOptions extends Omit<DecryptOptions, 'encryptionContext'> {
  /** Must be the name the key was created with. */
  readonly name: string;
  /** Bits to keep (multiple of 8 from 16 to 256). Default 64. */
  readonly bits?: number;
  /** Applied to string values before indexing, e.g. `(s) => s.trim().toLowerCase()`. */
  readonly normalize?: (value: string) => string;
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new InvalidParameterError('"name" must be 1 to 128 of A-Z a-z 0-9 _ . : -');
  }
  return name;
}

/**
 * Make a new blind-index key and return it encrypted by the provider, as a text
 * envelope to store in app configuration or a table of its own. Its context is exactly
 * `{"ek:blind-index": name}` (SPEC.md §13).
 * @throws InvalidParameterError for bad options; provider errors as `encrypt`.
 */
export async function createBlindIndexKey(options: CreateBlindIndexKeyOptions): Promise<string> {
  if (options === null || typeof options !== 'object') throw new InvalidParameterError('createBlindIndexKey expects an options object');
  const o = readOptions(options, ['name', 'provider', 'keyId', 'recipients', 'aead'], 'createBlindIndexKey options');
  const name = checkName(o.name);
  const { provider, keyId, also, keySpec, aead } = checkEncryptOptions(
    { provider: o.provider, keyId: o.keyId, recipients: o.recipients, aead: o.aead },
    'createBlindIndexKey',
  );
  // The reserved binding, on the library's own path (callers' contexts may not hold "ek:" keys).
  const context = checkContext({ [BLIND_INDEX_PURPOSE]: name });
  const key = randomBytes(32);
  try {
    return envelopeToText(await encryptChecked(key, provider, keyId, keySpec, context, aead, undefined, also));
  } finally {
    wipe(key);
  }
}

/**
 * Decrypt a stored blind-index key and return the index. Keep the returned
 * object for the life of the app and call `destroy()` when done.
 * @throws DecryptionFailedError when the stored key is not a blind-index key of that name (its
 *   context is not exactly `{"ek:blind-index": name}`, or it does not hold 32 bytes); as `decrypt`.
 */
export async function openBlindIndex(stored: string, options: OpenBlindIndexOptions): Promise<BlindIndex> {
  if (options === null || typeof options !== 'object') throw new InvalidParameterError('openBlindIndex expects an options object');
  const o = readOptions(options, ['name', 'bits', 'normalize', 'provider', 'providers', 'aead', 'maxEncryptedDataKeys', 'keyIds'], 'openBlindIndex options');
  const name = checkName(o.name);
  const bits = o.bits ?? 64;
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 16 || bits > 256 || bits % 8 !== 0) {
    throw new InvalidParameterError('"bits" must be a multiple of 8 from 16 to 256');
  }
  const normalize = o.normalize as ((s: string) => string) | undefined;
  if (normalize !== undefined && typeof normalize !== 'function') throw new InvalidParameterError('"normalize" must be a function');
  const checked = checkDecryptOptions({
    provider: o.provider,
    providers: o.providers,
    aead: o.aead,
    maxEncryptedDataKeys: o.maxEncryptedDataKeys,
    keyIds: o.keyIds,
  });
  const bytes = envelopeFromText(stored);
  // SPEC.md §13: the context must be exactly the reserved binding, no entry more or less.
  const { plaintext } = await decryptChecked(bytes, checked, checkContext({ [BLIND_INDEX_PURPOSE]: name }));
  if (plaintext.length !== 32) {
    wipe(plaintext);
    throw new DecryptionFailedError();
  }
  let key: Uint8Array | undefined = plaintext;
  const prefix = concatBytes(utf8Encode(BLIND_INDEX_LABEL), new Uint8Array(1), utf8Encode(name), new Uint8Array(1));
  const index: BlindIndex = {
    name,
    bits,
    compute(value: unknown): string {
      if (!key) throw new InvalidParameterError('this blind index was destroyed');
      let v = value;
      if (typeof v === 'string' && normalize) {
        v = normalize(v);
        if (typeof v !== 'string') throw new InvalidParameterError('"normalize" must return a string');
      }
      const enc = encodeValue(v);
      let input: Uint8Array | undefined;
      let mac: Uint8Array | undefined;
      try {
        // The HMAC input holds the encoded plaintext: wiped with the encoding and the full HMAC.
        input = concatBytes(prefix, enc);
        // SHA-256 through `#aead-default`: on Node @noble/hashes' SHA-2 is loaded on first use, not at import.
        mac = hmac(nobleSha2().sha256, key, input);
        return base64UrlEncode(mac.subarray(0, bits / 8));
      } finally {
        wipe(mac, enc, input);
      }
    },
    destroy(): void {
      wipe(key);
      key = undefined;
    },
  };
  Object.defineProperty(index, Symbol.for('nodejs.util.inspect.custom'), {
    value: () => `BlindIndex { name: ${JSON.stringify(name)}, bits: ${bits} }`,
  });
  return Object.freeze(index);
}
