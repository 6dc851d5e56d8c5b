/**
 * Envelope encryption: `encrypt`, `decrypt` and `inspect` over format v1
 * (SPEC.md §3). The data key lives only inside these functions and is wiped on
 * every path.
 * @module
 */
import { defaultAesGcm } from '#aead-default';
import { TAG_LENGTH, type AesGcm } from './aead/types.js';
import { openAead, sealAead } from './aead/bulk.js';
import {
  type CheckedContext,
  type EncryptionContext,
  checkCallerContext,
  contextContains,
  contextEquals,
  hasReservedKey,
  providerContext,
} from './context.js';
import {
  DecryptionFailedError,
  EnvelopeKitError,
  InvalidParameterError,
  KeyDisabledError,
  KeyNotFoundError,
  MalformedEnvelopeError,
  NoMatchingProviderError,
  ProviderError,
} from './errors.js';
import {
  FORMAT_LIMITS,
  LAYOUT_FRAMED,
  LAYOUT_NAMES,
  LAYOUT_SINGLE,
  MAX_TEXT_ENVELOPE_BYTES,
  MESSAGE_ID_LENGTH,
  SINGLE_PASS_NONCE,
  type EncryptedDataKey,
  type EnvelopeHeader,
  authenticatedHeaderOf,
  encodeHeader,
  envelopeFromText,
  envelopeFromTextForDecrypt,
  envelopeToText,
  parseHeader,
} from './format.js';
import { byteView, constantTimeEqual, isSharedMemory, toHex, wipe } from '../internal/bytes.js';
import { readOptions } from '../internal/options.js';
import { randomBytes, randomPublicBytes } from '../internal/random.js';
import { deriveKeys, hmacOf } from './kdf.js';
import { beginFramedDecryption, framedLayout, openFramedBody } from './framed.js';
import { type RecordId, type RecordVersion, checkRecordBinding, noRecordBinding, recordBinding } from './binding.js';
import {
  type KeyProvider,
  type KeySpec,
  KEY_SPEC_BYTES,
  PROVIDER_LIMITS,
  checkKeyId,
  checkKeySpec,
  isAnswerKeyId,
  isProviderId,
  readAnswerField,
} from './provider.js';

/** One master key an envelope's data key is wrapped under: a provider and a key id or alias. */
export interface Recipient {
  readonly provider: KeyProvider;
  /** Master key id or alias. */
  readonly keyId: string;
}

/**
 * Options of {@link encrypt}. The master keys: `provider` and `keyId`, or `recipients` (one of the
 * two forms, checked when called).
 */
export interface EncryptOptions {
  /** The key provider that makes the data key (with `keyId`; or give `recipients`). */
  readonly provider?: KeyProvider;
  /** Master key id or alias (with `provider`). */
  readonly keyId?: string;
  /**
   * Several master keys, instead of `provider` and `keyId` (1 to 8): the first recipient's
   * provider generates the data key, and each other recipient's provider wraps the same key with
   * its `encrypt` operation. The envelope holds one encrypted data key per recipient, in this
   * order; any one of them decrypts it. Every recipient after the first needs a provider with `encrypt`.
   */
  readonly recipients?: readonly Recipient[];
  /** Authenticated, unencrypted string map stored in the envelope. Never put secrets in it. */
  readonly encryptionContext?: EncryptionContext;
  /** Data key size: `AES_256` (default) or `AES_128`. The content key is always 256 bits. */
  readonly keySpec?: KeySpec;
  /**
   * Binds the envelope to this record (its row), without putting the id in the encryption
   * context: the id enters the key schedule (SPEC.md §3.3, §9.10) and so the commitment and the
   * content key, but it is neither stored in the envelope nor sent to the provider. The provider
   * request is then the same for every row, so rows can share a cached data key, while an envelope
   * copied to another row does not decrypt there. `decrypt` must be given the same id (absent
   * stays absent), or it fails with DecryptionFailedError. A well-formed string of 1 to 1024 bytes
   * of UTF-8 or a safe integer; `42` and `"42"` are different ids.
   */
  readonly recordId?: RecordId;
  /**
   * Binds the envelope to this version of its record (a version counter, an `updatedAt` as text),
   * like `recordId`: not stored, not sent to the provider; `decrypt` must be given the same version,
   * so an older copy of the row is refused when the reader knows which version to expect.
   */
  readonly recordVersion?: RecordVersion;
  /** AES-GCM backend. Defaults to the fastest one for the runtime. */
  readonly aead?: AesGcm;
}

/** Options of {@link decrypt}. Give `provider` or `providers`. */
export interface DecryptOptions {
  /** The provider to ask for the data key. */
  readonly provider?: KeyProvider;
  /**
   * Several providers, in the order to try them (`provider` first): each provider is offered, in
   * turn, every encrypted data key whose provider id is its own, in header order; the first data key
   * that unwraps wins. List the cheapest and most available provider first (a local keyring before
   * a KMS across the network): a provider that is down is asked only when the ones before it failed.
   */
  readonly providers?: readonly KeyProvider[];
  /** Entries the envelope's context must contain (same key, same value); decryption fails otherwise. */
  readonly encryptionContext?: EncryptionContext;
  /** Refuse envelopes with more encrypted data keys than this (default 8, at most 255). */
  readonly maxEncryptedDataKeys?: number;
  /**
   * The master keys decryption may use (1 to 256 key ids, never aliases). Each is compared, exactly,
   * with the key id the provider says it used (`keyId` of its decrypt answer); an envelope whose data
   * key was unwrapped by any other key fails with `DecryptionFailedError`. Without it, any key the
   * providers can use is accepted.
   */
  readonly keyIds?: readonly string[];
  /**
   * The record id the envelope was written with (`recordId` of {@link EncryptOptions}): the
   * envelope does not store it, so the reader gives it again. Another id, a missing one, or one
   * where none was written fails with DecryptionFailedError, at the commitment check, before the
   * body is opened.
   */
  readonly recordId?: RecordId;
  /** The record version the envelope was written with; as `recordId`. */
  readonly recordVersion?: RecordVersion;
  /** AES-GCM backend. Defaults to the fastest one for the runtime. */
  readonly aead?: AesGcm;
}

/** Result of {@link decrypt}. */
export interface DecryptResult {
  /**
   * The decrypted bytes (a fresh array the caller owns). With the built-in backends it is the start of
   * the buffer the ciphertext was copied into, so its `buffer` may be 16 (zeroed) bytes longer than it.
   */
  readonly plaintext: Uint8Array;
  /**
   * Id of the master key that unwrapped the data key, as the provider answered it (not the key id
   * written in the header, which the envelope's writer chose).
   */
  readonly keyId: string;
  /** The envelope's full encryption context. */
  readonly encryptionContext: EncryptionContext;
}

/** What {@link inspect} reports: the header only, nothing secret. */
export interface EnvelopeInfo {
  readonly formatVersion: number;
  readonly suite: { readonly id: number; readonly name: string };
  readonly layout: { readonly id: number; readonly name: string };
  /** Message id, lower-case hex. */
  readonly messageId: string;
  readonly encryptionContext: EncryptionContext;
  /**
   * The encrypted data keys, in header order. `keyVersion` is the master-key version the blob names,
   * when a provider given to `inspect` can read it from the blob (`describeBlob`; the local keyring can).
   */
  readonly encryptedDataKeys: readonly { readonly providerId: string; readonly keyId: string; readonly blobLength: number; readonly keyVersion?: string }[];
  readonly headerLength: number;
  /** Length of the plaintext the body holds. */
  readonly plaintextLength: number;
  readonly totalLength: number;
  /** Framed envelopes (layout 0x02) only: plaintext bytes of every segment but the last. */
  readonly segmentSize?: number;
  /** Framed envelopes only: the number of segments. */
  readonly segmentCount?: number;
}

export function readOption<T>(options: unknown, name: string): T {
  try {
    return (options as Record<string, T>)[name]!;
  } catch (e) {
    throw new InvalidParameterError('options could not be read', { cause: e });
  }
}

export function checkOptionsObject(options: unknown, fn: string): void {
  if (options === null || typeof options !== 'object') throw new InvalidParameterError(`${fn} expects an options object`);
}

/**
 * Check a caller's provider and return a checked copy: `providerId` and the two methods are read
 * once, here, and only the copy is used afterwards (a getter that changes between reads cannot make
 * the envelope name one provider and the blob come from another). The methods run with the
 * caller's provider as `this`.
 * @internal
 */
export function checkProvider(p: unknown, what: string): KeyProvider {
  let providerId: unknown, generateDataKey: unknown, decryptFn: unknown, encryptFn: unknown, reEncryptFn: unknown, describeFn: unknown;
  try {
    if (p !== null && typeof p === 'object') {
      ({ providerId, generateDataKey, decrypt: decryptFn, encrypt: encryptFn, reEncrypt: reEncryptFn, describeBlob: describeFn } = p as Record<string, unknown>);
    }
  } catch (e) {
    throw new InvalidParameterError(`"${what}" could not be read`, { cause: e });
  }
  if (!isProviderId(providerId) || typeof generateDataKey !== 'function' || typeof decryptFn !== 'function') {
    throw new InvalidParameterError(`"${what}" must be a KeyProvider (providerId, generateDataKey, decrypt)`);
  }
  const gdk = generateDataKey as KeyProvider['generateDataKey'];
  const dec = decryptFn as KeyProvider['decrypt'];
  const checked: { -readonly [K in keyof KeyProvider]: KeyProvider[K] } = {
    providerId,
    generateDataKey: (request) => gdk.call(p, request),
    decrypt: (request) => dec.call(p, request),
  };
  // The optional operations (several recipients, re-wrapping), read once like the rest.
  if (typeof encryptFn === 'function') checked.encrypt = (request) => (encryptFn as NonNullable<KeyProvider['encrypt']>).call(p, request);
  if (typeof reEncryptFn === 'function') checked.reEncrypt = (request) => (reEncryptFn as NonNullable<KeyProvider['reEncrypt']>).call(p, request);
  if (typeof describeFn === 'function') {
    checked.describeBlob = (blob) => {
      try {
        return (describeFn as NonNullable<KeyProvider['describeBlob']>).call(p, blob);
      } catch {
        return undefined;
      }
    };
  }
  return Object.freeze(checked);
}

/** The caller's provider object behind each checked recipient: what wraps of a reused data key are remembered by. */
const RECIPIENT_SOURCE = new WeakMap<Recipient, object>();

/**
 * Blobs that other recipients made of a reused data key (a data-key cache's answer, SPEC.md §9.2),
 * by the caller's provider object, then by the first recipient's blob (which names the data key),
 * the key id and the provider context: the same data key is wrapped once per recipient, not once per
 * envelope. Blobs only (nothing secret); at most {@link WRAP_MEMO_SIZE} per provider, oldest first out.
 */
const WRAP_MEMO = new WeakMap<object, Map<string, EncryptedDataKey>>();
const WRAP_MEMO_SIZE = 1024;

async function wrapReused(r: Recipient, firstBlob: Uint8Array, dataKey: Uint8Array, context: EncryptionContext, contextKey: string): Promise<EncryptedDataKey> {
  const source = RECIPIENT_SOURCE.get(r);
  if (!source) return wrapFor(r, dataKey, context);
  let memo = WRAP_MEMO.get(source);
  if (!memo) WRAP_MEMO.set(source, (memo = new Map()));
  const id = `${toHex(firstBlob)}|${r.keyId}|${contextKey}`;
  const hit = memo.get(id);
  if (hit) return { ...hit, blob: hit.blob.slice() };
  const made = await wrapFor(r, dataKey, context);
  memo.set(id, { ...made, blob: made.blob.slice() });
  if (memo.size > WRAP_MEMO_SIZE) memo.delete(memo.keys().next().value!);
  return made;
}


/**
 * An array option, copied once (a proxy or a getter that throws is the caller's bad argument).
 * @param what - the option's name; `shape` says what its items are, for the message.
 * @internal
 */
export function readArrayOption(value: unknown, what: string, shape: string): unknown[] {
  try {
    if (!Array.isArray(value)) throw new InvalidParameterError(`"${what}" must be an array of ${shape}`);
    return [...(value as unknown[])];
  } catch (e) {
    if (e instanceof InvalidParameterError) throw e;
    throw new InvalidParameterError(`"${what}" could not be read`, { cause: e });
  }
}

/** The `maxEncryptedDataKeys` option: an integer 1..255, `fallback` when absent. @internal */
export function checkMaxEncryptedDataKeys(value: unknown, fallback: number): number {
  const max = value ?? fallback;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > FORMAT_LIMITS.maxEncryptedDataKeys) {
    throw new InvalidParameterError('"maxEncryptedDataKeys" must be an integer from 1 to 255');
  }
  return max;
}

/** Most recipients of one encryption: the number of data keys a reader accepts by default (SPEC.md §5). */
export const MAX_RECIPIENTS = FORMAT_LIMITS.defaultMaxEncryptedDataKeys;

/**
 * The master keys of an encryption, checked: `provider` and `keyId`, or `recipients` (1 to
 * {@link MAX_RECIPIENTS}; every one after the first with a provider that has `encrypt`; no key
 * named twice for one provider). The first generates the data key.
 * @internal
 */
export function checkRecipients(options: unknown): { provider: KeyProvider; keyId: string; also: readonly Recipient[] } {
  const list = readOption<unknown>(options, 'recipients');
  if (list === undefined) {
    return { provider: checkProvider(readOption(options, 'provider'), 'provider'), keyId: checkKeyId(readOption(options, 'keyId')), also: [] };
  }
  if (readOption(options, 'provider') !== undefined || readOption(options, 'keyId') !== undefined) {
    throw new InvalidParameterError('give "provider" and "keyId", or "recipients", not both');
  }
  const items = readArrayOption(list, 'recipients', '{ provider, keyId }');
  if (items.length === 0 || items.length > MAX_RECIPIENTS) {
    throw new InvalidParameterError(`"recipients" must list 1 to ${MAX_RECIPIENTS} recipients`);
  }
  const seen = new Set<string>();
  const checked = items.map((r, i) => {
    if (r === null || typeof r !== 'object') throw new InvalidParameterError(`"recipients[${i}]" must be { provider, keyId }`);
    const raw = readOption<unknown>(r, 'provider');
    const provider = checkProvider(raw, `recipients[${i}].provider`);
    const keyId = checkKeyId(readOption(r, 'keyId'), `recipients[${i}].keyId`);
    if (i > 0 && !provider.encrypt) {
      throw new InvalidParameterError(`"recipients[${i}].provider" (${provider.providerId}) has no encrypt operation: it can only be the first recipient`);
    }
    const id = `${provider.providerId}\u0000${keyId}`;
    if (seen.has(id)) throw new InvalidParameterError(`"recipients[${i}]" names the same key as an earlier recipient`);
    seen.add(id);
    const checkedRecipient = Object.freeze({ provider, keyId });
    RECIPIENT_SOURCE.set(checkedRecipient, raw as object);
    return checkedRecipient;
  });
  return { provider: checked[0]!.provider, keyId: checked[0]!.keyId, also: Object.freeze(checked.slice(1)) };
}

/**
 * Check a caller's AES-GCM backend and return a checked copy whose members were read once
 * (`undefined`: the default backend, the library's own).
 * @internal
 */
export function checkAead(a: unknown): AesGcm {
  if (a === undefined) return defaultAesGcm;
  if (a === null || typeof a !== 'object') throw new InvalidParameterError('"aead" must be an AesGcm backend');
  let name: unknown, seal: unknown, open: unknown, openInPlace: unknown, hmacSha512: unknown;
  try {
    ({ name, seal, open, openInPlace, hmacSha512 } = a as Record<string, unknown>);
  } catch (e) {
    throw new InvalidParameterError('"aead" could not be read', { cause: e });
  }
  if (typeof seal !== 'function' || typeof open !== 'function') throw new InvalidParameterError('"aead" must be an AesGcm backend');
  const s = seal as AesGcm['seal'];
  const o = open as AesGcm['open'];
  const mac = hmacSha512 as AesGcm['hmacSha512'];
  const copy: AesGcm = {
    name: typeof name === 'string' ? name : 'custom',
    seal: (key, nonce, aad, plaintext, out) => s.call(a, key, nonce, aad, plaintext, out),
    open: (key, nonce, aad, sealed, out) => o.call(a, key, nonce, aad, sealed, out),
    openInPlace: openInPlace === true,
    ...(typeof mac === 'function' ? { hmacSha512: (key: Uint8Array, message: Uint8Array) => mac.call(a, key, message) } : {}),
  };
  return Object.freeze(copy);
}

/** Largest plaintext a single-pass envelope holds (GCM's limit is larger; this keeps lengths exact in JS numbers). */
export const MAX_PLAINTEXT_BYTES = 2 ** 32 - 1;

/**
 * Seal `plaintext` under an already generated data key (SPEC.md §3). Exposed for
 * the vector generator; applications call {@link encrypt}.
 * @param binding - the record binding (SPEC.md §9.10); `[null,null]` by default.
 * @internal
 */
export async function sealWithDataKey(
  aead: AesGcm,
  dataKey: Uint8Array,
  messageId: Uint8Array,
  context: CheckedContext,
  encryptedDataKeys: readonly EncryptedDataKey[],
  plaintext: Uint8Array,
  binding: Uint8Array = noRecordBinding(),
): Promise<Uint8Array> {
  // SPEC.md §3.3: one HMAC-SHA-512 gives the content key and the commitment.
  const { bytes: keys, key: contentKey, commitment } = deriveKeys(dataKey, messageId, binding, hmacOf(aead));
  try {
    // Header and body in one array; the associated data is the authenticated header (SPEC.md §3.1, §3.4).
    const out = encodeHeader({ messageId, context, encryptedDataKeys, commitment }, plaintext.length + TAG_LENGTH);
    const headerLength = out.length - plaintext.length - TAG_LENGTH;
    const aad = authenticatedHeaderOf(out.subarray(0, headerLength), context);
    await sealAead(aead, contentKey, SINGLE_PASS_NONCE, aad, plaintext, out.subarray(headerLength));
    return out;
  } finally {
    wipe(keys);
  }
}

/**
 * Encrypt bytes into a binary envelope: ask the provider for a fresh data key,
 * derive the content key, encrypt with AES-256-GCM, wipe the keys.
 *
 * @param plaintext - bytes to encrypt (0 B to 4 GiB - 1); not modified.
 * @param options - provider, key id or alias, optional encryption context and key spec; optional
 *   `recordId` and `recordVersion` to bind the envelope to its row without putting the id in the
 *   context (so that rows can share a cached data key).
 * @returns the binary envelope.
 * @throws InvalidParameterError for bad arguments (a bad `recordId` or `recordVersion` too), before
 *   the provider is asked; KeyNotFoundError, KeyDisabledError, ProviderError from the provider.
 * @example
 * ```ts
 * import { LocalKeyring, encrypt } from 'envelope-kit';
 * const provider = new LocalKeyring();
 * const { keyId } = provider.createKey();
 * const envelope = await encrypt(new TextEncoder().encode('secret'), { provider, keyId, encryptionContext: { table: 'users' }, recordId: 42 });
 * ```
 */
export async function encrypt(plaintext: Uint8Array, options: EncryptOptions): Promise<Uint8Array> {
  const pt = checkPlaintext(plaintext);
  const { provider, keyId, also, keySpec, context, aead } = checkEncryptOptions(options, 'encrypt');
  return encryptChecked(pt, provider, keyId, keySpec, context, aead, readRecordBinding(options), also);
}

/**
 * The `recordId` and `recordVersion` options of one envelope, checked, as the record binding's
 * bytes (SPEC.md §9.10). Call after {@link checkOptionsObject}.
 * @internal
 */
export function readRecordBinding(options: unknown): Uint8Array {
  return recordBinding(checkRecordBinding(readOption(options, 'recordId'), readOption(options, 'recordVersion')));
}

/**
 * The plaintext argument as a plain view of its memory (read through the intrinsic accessors, so
 * a subclass's `length` cannot lie), within the size limit.
 * @internal
 */
export function checkPlaintext(plaintext: unknown, max = MAX_PLAINTEXT_BYTES): Uint8Array {
  const pt = byteView(plaintext);
  if (!pt) throw new InvalidParameterError('"plaintext" must be a Uint8Array (not a view of a detached ArrayBuffer)');
  if (pt.length > max) throw new InvalidParameterError(`"plaintext" is longer than ${max} bytes`);
  return pt;
}

/**
 * {@link encrypt} on checked arguments; `context` may hold reserved entries (the library's own envelopes).
 * `binding` is the record binding (SPEC.md §9.10), `[null,null]` by default.
 * @internal
 */
export async function encryptChecked(
  pt: Uint8Array,
  provider: KeyProvider,
  keyId: string,
  keySpec: KeySpec,
  context: CheckedContext,
  aead: AesGcm,
  binding: Uint8Array = noRecordBinding(),
  also: readonly Recipient[] = [],
): Promise<Uint8Array> {
  const n = pt.length;
  const { dataKey, edks, messageId } = await obtainDataKey(provider, keyId, keySpec, context, n, also);
  try {
    // The caller may have transferred or shrunk the plaintext's buffer while the provider was awaited:
    // sealing the view then would silently encrypt fewer bytes than were given.
    if (pt.length !== n) throw new InvalidParameterError('"plaintext" was detached or resized while the data key was requested');
    return await sealWithDataKey(aead, dataKey, messageId, context, edks, pt, binding);
  } finally {
    wipe(dataKey);
  }
}

/**
 * Check the options every encrypting call shares (provider, key id, key spec,
 * context, backend), reading each once.
 * @internal
 */
export function checkEncryptOptions(
  options: unknown,
  fn: string,
): { provider: KeyProvider; keyId: string; also: readonly Recipient[]; keySpec: KeySpec; context: CheckedContext; aead: AesGcm } {
  checkOptionsObject(options, fn);
  return {
    ...checkRecipients(options),
    keySpec: checkKeySpec(readOption(options, 'keySpec')),
    context: checkCallerContext(readOption(options, 'encryptionContext')),
    aead: checkAead(readOption(options, 'aead')),
  };
}

/**
 * Ask a provider for a data key and check its answer, and draw the message id to seal with it.
 * The caller wipes `dataKey`. The provider is asked with the provider context of `context`
 * (SPEC.md §3.2.1) and told how many plaintext bytes the key will seal (a cache counts them), when that is known.
 * @internal
 */
export async function obtainDataKey(
  provider: KeyProvider,
  keyId: string,
  keySpec: KeySpec,
  context: CheckedContext,
  plaintextLength: number | undefined,
  also: readonly Recipient[] = [],
): Promise<{ dataKey: Uint8Array; edks: EncryptedDataKey[]; messageId: Uint8Array }> {
  let dk: unknown;
  const encryptionContext = providerContext(context).map;
  try {
    // A stream does not know its length: the request then says nothing (a cache with a byte limit does not serve it).
    dk = await provider.generateDataKey(
      plaintextLength === undefined ? { keyId, keySpec, encryptionContext } : { keyId, keySpec, encryptionContext, plaintextLength },
    );
  } catch (e) {
    throw asProviderError(e, 'generateDataKey failed');
  }
  let dataKey: Uint8Array | undefined;
  // The answer is untrusted: each field is read once.
  const field = (name: string): unknown => readAnswerField(dk, name);
  try {
    dataKey = byteView(field('plaintext'));
    if (!dataKey || dataKey.length !== KEY_SPEC_BYTES[keySpec]) {
      throw new ProviderError('provider returned a data key of the wrong type or length');
    }
    const blob = byteView(field('ciphertextBlob'));
    if (!blob || blob.length < 1 || blob.length > PROVIDER_LIMITS.maxBlobBytes) {
      throw new ProviderError('provider returned an invalid ciphertextBlob');
    }
    const resolvedKeyId = field('keyId');
    if (!isAnswerKeyId(resolvedKeyId)) throw new ProviderError('provider returned an invalid keyId');
    // SPEC.md §9.2: a data key that may seal other envelopes (a cache's) gets message ids straight
    // from the CSPRNG, never from the pool of public random bytes.
    const reused = field('reused') === true;
    const messageId = reused ? randomBytes(MESSAGE_ID_LENGTH) : randomPublicBytes(MESSAGE_ID_LENGTH);
    const first: EncryptedDataKey = { providerId: provider.providerId, keyId: resolvedKeyId, blob: new Uint8Array(blob) };
    // SPEC.md §3.6 step 2: every other recipient wraps the same data key, bound to the same provider context.
    // A reused data key (a cache's) is wrapped for each other recipient once, and the blob remembered.
    const key = dataKey;
    const contextKey = reused ? JSON.stringify(Object.entries(encryptionContext).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : '';
    const others = await Promise.all(also.map((r) => (reused ? wrapReused(r, first.blob, key, encryptionContext, contextKey) : wrapFor(r, key, encryptionContext))));
    return { dataKey, edks: [first, ...others], messageId };
  } catch (e) {
    wipe(dataKey);
    throw e;
  }
}

/**
 * Wrap a data key for one more recipient with its provider's `encrypt`, and check the answer as a
 * `generateDataKey` answer is checked. The provider is given a copy, wiped afterwards.
 * @internal
 */
export async function wrapFor(r: Recipient, dataKey: Uint8Array, encryptionContext: EncryptionContext): Promise<EncryptedDataKey> {
  const encryptFn = r.provider.encrypt;
  if (!encryptFn) throw new InvalidParameterError(`provider ${r.provider.providerId} has no encrypt operation`);
  const plaintext = dataKey.slice();
  let answer: unknown;
  try {
    answer = await encryptFn({ keyId: r.keyId, plaintext, encryptionContext });
  } catch (e) {
    throw asProviderError(e, 'encrypt failed');
  } finally {
    wipe(plaintext);
  }
  const blob = byteView(readAnswerField(answer, 'ciphertextBlob'));
  if (!blob || blob.length < 1 || blob.length > PROVIDER_LIMITS.maxBlobBytes) throw new ProviderError('provider returned an invalid ciphertextBlob');
  const keyId = readAnswerField(answer, 'keyId');
  if (!isAnswerKeyId(keyId)) throw new ProviderError('provider returned an invalid keyId');
  return { providerId: r.provider.providerId, keyId, blob: new Uint8Array(blob) };
}

/** A provider's failure as the library's error: its own errors pass, anything else becomes a ProviderError. @internal */
export function asProviderError(e: unknown, what: string): EnvelopeKitError {
  if (e instanceof EnvelopeKitError) return e;
  return new ProviderError(what, { cause: e });
}

/** Most entries in a `keyIds` allow-list. */
export const MAX_ALLOWED_KEY_IDS = 256;

/** Checked options of {@link decrypt}. @internal */
export interface CheckedDecryptOptions {
  readonly providers: KeyProvider[];
  readonly required: CheckedContext;
  readonly maxEdks: number;
  readonly aead: AesGcm;
  /** The master keys the providers may have used, when the caller restricted them. */
  readonly keyIds: ReadonlySet<string> | undefined;
}

/**
 * The allow-list that goes with a checked provider list, so that every caller of
 * {@link unwrapAny} with the `providers` of {@link checkDecryptOptions} applies it.
 */
const ALLOWED_KEY_IDS = new WeakMap<readonly KeyProvider[], ReadonlySet<string>>();

function checkKeyIds(value: unknown): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined;
  const list = readArrayOption(value, 'keyIds', 'key ids');
  if (list.length === 0 || list.length > MAX_ALLOWED_KEY_IDS) {
    throw new InvalidParameterError(`"keyIds" must list 1 to ${MAX_ALLOWED_KEY_IDS} key ids`);
  }
  return new Set(
    list.map((id, i) => {
      const k = checkKeyId(id, `keyIds[${i}]`);
      // The allow-list is checked against the key id the provider answers with, which is never an alias.
      if (k.startsWith('alias/')) throw new InvalidParameterError(`"keyIds[${i}]" is an alias: list the key ids the provider reports`);
      return k;
    }),
  );
}

/** @internal */
export function checkDecryptOptions(options: unknown): CheckedDecryptOptions {
  checkOptionsObject(options, 'decrypt');
  const one = readOption<unknown>(options, 'provider');
  const many = readOption<unknown>(options, 'providers');
  const providers: KeyProvider[] = [];
  if (one !== undefined) providers.push(checkProvider(one, 'provider'));
  if (many !== undefined) readArrayOption(many, 'providers', 'KeyProvider').forEach((p, i) => providers.push(checkProvider(p, `providers[${i}]`)));
  if (providers.length === 0) throw new InvalidParameterError('decrypt needs "provider" or "providers"');
  const max = checkMaxEncryptedDataKeys(readOption(options, 'maxEncryptedDataKeys'), FORMAT_LIMITS.defaultMaxEncryptedDataKeys);
  const keyIds = checkKeyIds(readOption(options, 'keyIds'));
  if (keyIds) ALLOWED_KEY_IDS.set(providers, keyIds);
  return {
    providers,
    required: checkCallerContext(readOption(options, 'encryptionContext')),
    maxEdks: max,
    aead: checkAead(readOption(options, 'aead')),
    keyIds,
  };
}

/**
 * SPEC.md §3.5 step 1.11: the reserved keys of the header's context. Without `exact`, the context
 * must hold none (an envelope holding one is the library's own, such as a blind-index key, and is
 * not opened as a message); with `exact`, it must be exactly that context.
 * @internal
 */
export function checkReservedBinding(header: EnvelopeHeader, exact?: CheckedContext): void {
  if (exact) {
    if (!contextEquals(header.context, exact)) throw new DecryptionFailedError();
  } else if (hasReservedKey(header.context)) {
    throw new MalformedEnvelopeError('the envelope\'s context holds a key reserved for the library ("ek:..."): this is not an envelope this function opens');
  }
}

/**
 * Ask the providers for the data key of one of the envelope's encrypted data keys. SPEC.md §3.5 step 3.
 * Each provider is asked with the provider context (SPEC.md §3.2.1); an answer counts only when it is a
 * data key of 16 or 32 bytes, names the master key it used, and that key is allowed (`keyIds`).
 * @returns the data key (a fresh array the caller wipes) and the key id the provider answered with.
 * @internal
 */
export async function unwrapAny(
  header: EnvelopeHeader,
  providers: readonly KeyProvider[],
  exact?: CheckedContext,
): Promise<{ dataKey: Uint8Array; keyId: string }> {
  checkReservedBinding(header, exact);
  const allowed = ALLOWED_KEY_IDS.get(providers);
  const encryptionContext = providerContext(header.context).map;
  let matched = false;
  let disabled: unknown;
  let notFound: unknown;
  let other: unknown;
  // SPEC.md §3.5 step 3: the caller's providers in order, each with its own EDKs in header order.
  for (const p of providers) {
    for (const edk of header.encryptedDataKeys) {
      if (p.providerId !== edk.providerId) continue;
      matched = true;
      let res: unknown;
      try {
        res = await p.decrypt({ ciphertextBlob: edk.blob.slice(), encryptionContext });
      } catch (e) {
        if (e instanceof KeyDisabledError) disabled ??= e;
        else if (e instanceof KeyNotFoundError) notFound ??= e;
        else other ??= e instanceof EnvelopeKitError ? e : new ProviderError('provider decrypt failed', { cause: e });
        continue;
      }
      let pt: unknown, answeredKeyId: unknown;
      try {
        if (res !== null && typeof res === 'object') ({ plaintext: pt, keyId: answeredKeyId } = res as Record<string, unknown>);
      } catch (e) {
        other ??= new ProviderError('provider returned an unreadable answer', { cause: e });
        continue;
      }
      const key = byteView(pt);
      if (!key) {
        other ??= new ProviderError('provider returned a data key that is not a Uint8Array');
        continue;
      }
      // Copy the answer into memory of our own and wipe the provider's (the caller owns it, SPEC.md §2).
      const dataKey = new Uint8Array(key);
      wipe(key);
      // SPEC.md §3.5 step 3.1: the answer must name the key that unwrapped the blob.
      if (!isAnswerKeyId(answeredKeyId)) {
        wipe(dataKey);
        other ??= new ProviderError('provider decrypt answer does not name a valid keyId');
        continue;
      }
      // Step 3.2: a data key of suite 0x01 is 16 or 32 bytes. Any other answer is not a data key of
      // this envelope (e.g. another secret under the same master key): a decryption failure.
      if (dataKey.length !== 16 && dataKey.length !== 32) {
        wipe(dataKey);
        other ??= new DecryptionFailedError();
        continue;
      }
      // Step 3.3: the allow-list, checked against the provider's answer.
      if (allowed && !allowed.has(answeredKeyId)) {
        wipe(dataKey);
        other ??= new DecryptionFailedError();
        continue;
      }
      return { dataKey, keyId: answeredKeyId };
    }
  }
  if (!matched) {
    const ids = [...new Set(header.encryptedDataKeys.map((e) => e.providerId))].join(', ');
    throw new NoMatchingProviderError(`no provider given for this envelope's encrypted data keys (providers: ${ids})`);
  }
  // Administrative states are reported as such; every cryptographic failure is one fixed error.
  if (other === undefined && disabled !== undefined) throw disabled;
  if (other === undefined && notFound !== undefined) throw notFound;
  if (other instanceof EnvelopeKitError && !(other instanceof DecryptionFailedError)) throw other;
  throw new DecryptionFailedError();
}

/**
 * Decrypt a binary envelope.
 *
 * @param envelope - a binary envelope from {@link encrypt}.
 * @param options - `provider` or `providers`; optional `encryptionContext` whose entries the
 *   envelope's context must contain; optional `keyIds`, the master keys it may use; the
 *   `recordId` and `recordVersion` the envelope was written with, if any.
 * @returns plaintext, the key id the provider reports, and the envelope's full encryption context.
 * @throws MalformedEnvelopeError, UnsupportedVersionError for bytes that are not a v1 envelope
 *   (or an envelope of the library's own, such as a blind-index key); InvalidParameterError for bad
 *   options; NoMatchingProviderError when no provider matches; DecryptionFailedError (one fixed
 *   message) for a wrong key, a wrong context, a key outside `keyIds`, another (or a missing)
 *   `recordId` or `recordVersion`, or any tampering; KeyNotFoundError, KeyDisabledError from the provider.
 * @example
 * ```ts
 * import { LocalKeyring, encrypt, decrypt } from 'envelope-kit';
 * const provider = new LocalKeyring();
 * const { keyId } = provider.createKey();
 * const envelope = await encrypt(new Uint8Array([1, 2, 3]), { provider, keyId, encryptionContext: { table: 'users' } });
 * const { plaintext } = await decrypt(envelope, { provider, encryptionContext: { table: 'users' } });
 * ```
 */
export async function decrypt(envelope: Uint8Array, options: DecryptOptions): Promise<DecryptResult> {
  const view = byteView(envelope);
  if (!view) throw new MalformedEnvelopeError('envelope must be a Uint8Array (not a view of a detached ArrayBuffer)');
  return decryptChecked(view, checkDecryptOptions(options), undefined, readRecordBinding(options));
}

/**
 * {@link decrypt} on checked arguments. With `exact`, the envelope's context must be exactly
 * that (reserved) context: the library's path to its own envelopes (SPEC.md §13). `binding` is
 * the record binding the reader expects (SPEC.md §9.10), `[null,null]` by default.
 * @internal
 */
export async function decryptChecked(
  view: Uint8Array,
  options: CheckedDecryptOptions,
  exact?: CheckedContext,
  binding: Uint8Array = noRecordBinding(),
): Promise<DecryptResult> {
  const { providers, required, maxEdks, aead } = options;
  // Read the envelope once, now: the caller's buffer may change while the provider is awaited.
  // Memory another thread can write (a SharedArrayBuffer) is copied whole before it is parsed.
  // Otherwise parseHeader copies what it keeps (`slice` of a plain Uint8Array view, which copies,
  // unlike `slice` on a Buffer), and the body is copied just below.
  const bytes = isSharedMemory(view) ? new Uint8Array(view) : view;
  // The library's own envelopes (`exact`) are single-pass; a caller's message may also be framed (SPEC.md §14.4).
  const { header, bodyOffset } = parseHeader(bytes, maxEdks, exact ? [LAYOUT_SINGLE] : [LAYOUT_SINGLE, LAYOUT_FRAMED]);
  if (header.layout === LAYOUT_FRAMED) return decryptFramed(header, bytes.subarray(bodyOffset), options, binding);
  // SPEC.md §3.5 step 1.11: reserved context keys.
  checkReservedBinding(header, exact);
  // SPEC.md §3.5 step 2: the caller's context must be contained in the envelope's.
  if (!contextContains(header.context, required)) throw new DecryptionFailedError();
  // The copy of the body is also where the plaintext goes when the backend opens in place:
  // one payload-sized buffer in all.
  const body = new Uint8Array(bytes.length - bodyOffset);
  body.set(bytes.subarray(bodyOffset));
  const { dataKey, keyId } = await unwrapAny(header, providers, exact);
  let keys: Uint8Array | undefined;
  try {
    // SPEC.md §3.5 steps 4 and 5: the record binding is the reader's; another one fails here, before the body is opened.
    const derived = deriveKeys(dataKey, header.messageId, binding, hmacOf(aead));
    keys = derived.bytes;
    const contentKey = derived.key;
    if (!constantTimeEqual(derived.commitment, header.commitment)) throw new DecryptionFailedError();
    const n = body.length - TAG_LENGTH;
    const inPlace = opensInPlace(aead);
    const plaintext = inPlace ? body.subarray(0, n) : new Uint8Array(n);
    if (!(await openAead(aead, contentKey, SINGLE_PASS_NONCE, header.aad, body, plaintext))) throw new DecryptionFailedError();
    if (inPlace) body.fill(0, n); // the tag: not secret, but nothing is left behind the plaintext
    return { plaintext, keyId, encryptionContext: header.context.map };
  } finally {
    wipe(dataKey, keys);
  }
}

/** A framed envelope held in memory (SPEC.md §14.4): checked, unwrapped, then every segment opened in order. */
async function decryptFramed(header: EnvelopeHeader, body: Uint8Array, options: CheckedDecryptOptions, binding: Uint8Array): Promise<DecryptResult> {
  const segmentSize = header.segmentSize!;
  // The length rules first: a body no writer makes is refused before any provider is asked.
  framedLayout(body.length, segmentSize);
  // The body is read after the provider was awaited: keep a copy of our own (the caller's buffer may change meanwhile).
  const copy = new Uint8Array(body);
  const { cipher, keyId } = await beginFramedDecryption(header, options, binding, 1);
  try {
    return { plaintext: openFramedBody(cipher, copy, segmentSize), keyId, encryptionContext: header.context.map };
  } finally {
    cipher.dispose();
  }
}

/** Whether the backend declares that `open` may write the plaintext over the start of `sealed`. Never throws. */
function opensInPlace(aead: AesGcm): boolean {
  try {
    return aead.openInPlace === true;
  } catch {
    return false;
  }
}

/** {@link encrypt}, returning the text form (`ek1.` + base64url), safe in JSON and text columns. */
export async function encryptText(plaintext: Uint8Array, options: EncryptOptions): Promise<string> {
  // Refused before the provider is asked: an envelope this long has no text form in any engine (SPEC.md §5).
  const pt = checkPlaintext(plaintext, MAX_TEXT_ENVELOPE_BYTES);
  const { provider, keyId, also, keySpec, context, aead } = checkEncryptOptions(options, 'encryptText');
  return envelopeToText(await encryptChecked(pt, provider, keyId, keySpec, context, aead, readRecordBinding(options), also));
}

/** {@link decrypt} for the text form. */
export async function decryptText(envelope: string, options: DecryptOptions): Promise<DecryptResult> {
  if (typeof envelope !== 'string') throw new MalformedEnvelopeError('text envelope must be a string');
  return decrypt(envelopeFromTextForDecrypt(envelope), options);
}

const SUITE_NAMES: Record<number, string> = { 0x01: 'AES-256-GCM, HKDF-SHA-512, key commitment' };

/**
 * Read what an envelope's header says, without decrypting and without any secret.
 * Accepts the binary or the text form.
 * @throws MalformedEnvelopeError, UnsupportedVersionError
 */
export function inspect(envelope: Uint8Array | string, options: InspectOptions = {}): EnvelopeInfo {
  const bytes = typeof envelope === 'string' ? envelopeFromText(envelope) : byteView(envelope);
  if (!bytes) throw new MalformedEnvelopeError('envelope must be a Uint8Array or a text envelope');
  const { max, providers } = checkInspectOptions(options);
  const { header, bodyOffset } = parseHeader(bytes, max, Object.keys(LAYOUT_NAMES).map(Number));
  return envelopeInfo(header, bodyOffset, bytes.length, providers);
}

/** Options of {@link inspect}. */
export interface InspectOptions {
  /** Most encrypted data keys to accept (default 255: inspect reads any envelope). */
  readonly maxEncryptedDataKeys?: number;
  /**
   * Providers that can read a key version from their blobs without a secret (`describeBlob`): each
   * data key of theirs is then reported with its `keyVersion`. No provider is called over a network.
   */
  readonly providers?: readonly KeyProvider[];
}

/** @internal */
export function checkInspectOptions(options: unknown): { max: number; providers: readonly KeyProvider[] } {
  const o = readOptions(options, ['maxEncryptedDataKeys', 'providers'], 'inspect options');
  const max = checkMaxEncryptedDataKeys(o.maxEncryptedDataKeys, FORMAT_LIMITS.maxEncryptedDataKeys);
  const providers = o.providers === undefined ? [] : readArrayOption(o.providers, 'providers', 'KeyProvider').map((p, i) => checkProvider(p, `providers[${i}]`));
  return { max, providers };
}

/** The key version a provider reads from one of its blobs, if any. Never throws. @internal */
export function keyVersionOf(edk: EncryptedDataKey, providers: readonly KeyProvider[]): string | undefined {
  for (const p of providers) {
    if (p.providerId !== edk.providerId || !p.describeBlob) continue;
    let v: unknown;
    try {
      v = readAnswerField(p.describeBlob(edk.blob.slice()), 'keyVersion');
    } catch {
      v = undefined;
    }
    return typeof v === 'string' && v.length > 0 && v.length <= 256 ? v : undefined;
  }
  return undefined;
}

/**
 * What {@link inspect} reports, from a parsed header and the envelope's whole length (which a
 * reader of a file knows without reading the body).
 * @throws MalformedEnvelopeError for a framed body of a length no writer makes.
 * @internal
 */
export function envelopeInfo(header: EnvelopeHeader, bodyOffset: number, totalLength: number, providers: readonly KeyProvider[] = []): EnvelopeInfo {
  const framed = header.layout === LAYOUT_FRAMED ? framedLayout(totalLength - bodyOffset, header.segmentSize!) : undefined;
  return Object.freeze({
    formatVersion: header.version,
    suite: { id: header.suite, name: SUITE_NAMES[header.suite]! },
    layout: { id: header.layout, name: LAYOUT_NAMES[header.layout]! },
    messageId: toHex(header.messageId),
    encryptionContext: header.context.map,
    encryptedDataKeys: header.encryptedDataKeys.map((e) => {
      const keyVersion = keyVersionOf(e, providers);
      return { providerId: e.providerId, keyId: e.keyId, blobLength: e.blob.length, ...(keyVersion !== undefined ? { keyVersion } : {}) };
    }),
    headerLength: bodyOffset,
    plaintextLength: framed ? framed.plaintextLength : totalLength - bodyOffset - TAG_LENGTH,
    totalLength,
    ...(framed ? { segmentSize: header.segmentSize!, segmentCount: framed.segments } : {}),
  });
}

