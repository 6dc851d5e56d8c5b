/**
 * Envelope encryption: `encrypt`, `decrypt` and `inspect` over format v1
 * (SPEC.md §3). The data key lives only inside these functions and is wiped on
 * every path.
 * @module
 */
import { defaultAesGcm } from '#aead-default';
import { TAG_LENGTH, type AesGcm } from './aead/types.js';
import { type CheckedContext, type EncryptionContext, checkContext, contextContains } from './context.js';
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
  LAYOUT_NAMES,
  MESSAGE_ID_LENGTH,
  SINGLE_PASS_NONCE,
  type EncryptedDataKey,
  type EnvelopeHeader,
  encodeHeader,
  envelopeFromText,
  envelopeFromTextForDecrypt,
  envelopeToText,
  parseHeader,
} from './format.js';
import { constantTimeEqual, isBytes, isWellFormed, utf8Length, wipe } from '../internal/bytes.js';
import { isAesGcm, readOptions } from '../internal/options.js';
import { randomPublicBytes } from '../internal/random.js';
import { deriveKeys, hmacOf } from './kdf.js';
import { type KeyProvider, type KeySpec, KEY_SPEC_BYTES, PROVIDER_LIMITS, checkKeyId, checkKeySpec, isProviderId } from './provider.js';

/** Options of {@link encrypt}. */
export interface EncryptOptions {
  /** The key provider that makes the data key. */
  readonly provider: KeyProvider;
  /** Master key id or alias. */
  readonly keyId: string;
  /** Authenticated, unencrypted string map stored in the envelope. Never put secrets in it. */
  readonly encryptionContext?: EncryptionContext;
  /** Data key size: `AES_256` (default) or `AES_128`. The content key is always 256 bits. */
  readonly keySpec?: KeySpec;
  /** AES-GCM backend. Defaults to the fastest one for the runtime. */
  readonly aead?: AesGcm;
}

/** Options of {@link decrypt}. Give `provider` or `providers`. */
export interface DecryptOptions {
  /** The provider to ask for the data key. */
  readonly provider?: KeyProvider;
  /** Several providers; each encrypted data key is offered to those whose `providerId` matches, in order. */
  readonly providers?: readonly KeyProvider[];
  /** Entries the envelope's context must contain (same key, same value); decryption fails otherwise. */
  readonly encryptionContext?: EncryptionContext;
  /** Refuse envelopes with more encrypted data keys than this (default 8, at most 255). */
  readonly maxEncryptedDataKeys?: number;
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
  /** Id of the master key whose data key opened the envelope. */
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
  readonly encryptedDataKeys: readonly { readonly providerId: string; readonly keyId: string; readonly blobLength: number }[];
  readonly headerLength: number;
  /** Length of the plaintext the body holds. */
  readonly plaintextLength: number;
  readonly totalLength: number;
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

export function checkProvider(p: unknown, what: string): KeyProvider {
  try {
    if (
      p !== null &&
      typeof p === 'object' &&
      isProviderId((p as KeyProvider).providerId) &&
      typeof (p as KeyProvider).generateDataKey === 'function' &&
      typeof (p as KeyProvider).decrypt === 'function'
    ) {
      return p as KeyProvider;
    }
  } catch (e) {
    throw new InvalidParameterError(`"${what}" could not be read`, { cause: e });
  }
  throw new InvalidParameterError(`"${what}" must be a KeyProvider (providerId, generateDataKey, decrypt)`);
}

export function checkAead(a: unknown): AesGcm {
  if (a === undefined) return defaultAesGcm;
  if (isAesGcm(a)) return a;
  throw new InvalidParameterError('"aead" must be an AesGcm backend');
}

/** Largest plaintext a single-pass envelope holds (GCM's limit is larger; this keeps lengths exact in JS numbers). */
export const MAX_PLAINTEXT_BYTES = 2 ** 32 - 1;

/**
 * Seal `plaintext` under an already generated data key (SPEC.md §3). Exposed for
 * the vector generator; applications call {@link encrypt}.
 * @internal
 */
export function sealWithDataKey(
  aead: AesGcm,
  dataKey: Uint8Array,
  messageId: Uint8Array,
  context: CheckedContext,
  encryptedDataKeys: readonly EncryptedDataKey[],
  plaintext: Uint8Array,
): Uint8Array {
  const { contentKey, commitment } = deriveKeys(dataKey, messageId, hmacOf(aead));
  try {
    // Header and body in one array: the header is written at its start, then used in place as the associated data.
    const out = encodeHeader({ messageId, context, encryptedDataKeys, commitment }, plaintext.length + TAG_LENGTH);
    const headerLength = out.length - plaintext.length - TAG_LENGTH;
    aead.seal(contentKey, SINGLE_PASS_NONCE, out.subarray(0, headerLength), plaintext, out.subarray(headerLength));
    return out;
  } finally {
    wipe(contentKey);
  }
}

/**
 * Encrypt bytes into a binary envelope: ask the provider for a fresh data key,
 * derive the content key, encrypt with AES-256-GCM, wipe the keys.
 *
 * @param plaintext - bytes to encrypt (0 B to 4 GiB - 1); not modified.
 * @param options - provider, key id or alias, optional encryption context and key spec.
 * @returns the binary envelope.
 * @throws InvalidParameterError for bad arguments; KeyNotFoundError, KeyDisabledError,
 *   ProviderError from the provider.
 * @example
 * ```ts
 * import { LocalKeyring, encrypt } from 'envelope-kit';
 * const provider = new LocalKeyring();
 * const { keyId } = provider.createKey();
 * const envelope = await encrypt(new TextEncoder().encode('secret'), { provider, keyId, encryptionContext: { table: 'users' } });
 * ```
 */
export async function encrypt(plaintext: Uint8Array, options: EncryptOptions): Promise<Uint8Array> {
  if (!isBytes(plaintext)) throw new InvalidParameterError('"plaintext" must be a Uint8Array');
  if (plaintext.length > MAX_PLAINTEXT_BYTES) throw new InvalidParameterError(`"plaintext" is longer than ${MAX_PLAINTEXT_BYTES} bytes`);
  const { provider, keyId, keySpec, context, aead } = checkEncryptOptions(options, 'encrypt');
  const { dataKey, edk } = await obtainDataKey(provider, keyId, keySpec, context);
  try {
    return sealWithDataKey(aead, dataKey, randomPublicBytes(MESSAGE_ID_LENGTH), context, [edk], plaintext);
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
): { provider: KeyProvider; keyId: string; keySpec: KeySpec; context: CheckedContext; aead: AesGcm } {
  checkOptionsObject(options, fn);
  return {
    provider: checkProvider(readOption(options, 'provider'), 'provider'),
    keyId: checkKeyId(readOption(options, 'keyId')),
    keySpec: checkKeySpec(readOption(options, 'keySpec')),
    context: checkContext(readOption(options, 'encryptionContext')),
    aead: checkAead(readOption(options, 'aead')),
  };
}

/**
 * Ask a provider for a data key and check its answer. The caller wipes `dataKey`.
 * @internal
 */
export async function obtainDataKey(
  provider: KeyProvider,
  keyId: string,
  keySpec: KeySpec,
  context: CheckedContext,
): Promise<{ dataKey: Uint8Array; edk: EncryptedDataKey }> {
  let dk: unknown;
  try {
    dk = await provider.generateDataKey({ keyId, keySpec, encryptionContext: context.map });
  } catch (e) {
    throw asProviderError(e, 'generateDataKey failed');
  }
  let dataKey: Uint8Array | undefined;
  // The answer is untrusted: read each field once, and a throwing getter is the provider's fault.
  const field = (name: string): unknown => {
    try {
      return dk !== null && typeof dk === 'object' ? (dk as Record<string, unknown>)[name] : undefined;
    } catch (e) {
      throw new ProviderError('provider returned an unreadable answer', { cause: e });
    }
  };
  try {
    const pt = field('plaintext');
    if (isBytes(pt)) dataKey = pt;
    if (!dataKey || dataKey.length !== KEY_SPEC_BYTES[keySpec]) {
      throw new ProviderError('provider returned a data key of the wrong type or length');
    }
    const blob = field('ciphertextBlob');
    if (!isBytes(blob) || blob.length < 1 || blob.length > PROVIDER_LIMITS.maxBlobBytes) {
      throw new ProviderError('provider returned an invalid ciphertextBlob');
    }
    const resolvedKeyId = field('keyId');
    if (
      typeof resolvedKeyId !== 'string' ||
      resolvedKeyId.length === 0 ||
      !isWellFormed(resolvedKeyId) ||
      utf8Length(resolvedKeyId) > PROVIDER_LIMITS.maxKeyIdBytes
    ) {
      throw new ProviderError('provider returned an invalid keyId');
    }
    return { dataKey, edk: { providerId: provider.providerId, keyId: resolvedKeyId, blob: new Uint8Array(blob) } };
  } catch (e) {
    wipe(dataKey);
    throw e;
  }
}

function asProviderError(e: unknown, what: string): EnvelopeKitError {
  if (e instanceof EnvelopeKitError) return e;
  return new ProviderError(what, { cause: e });
}

/** @internal */
export function checkDecryptOptions(options: unknown): {
  providers: KeyProvider[];
  required: CheckedContext;
  maxEdks: number;
  aead: AesGcm;
} {
  checkOptionsObject(options, 'decrypt');
  const one = readOption<unknown>(options, 'provider');
  const many = readOption<unknown>(options, 'providers');
  const providers: KeyProvider[] = [];
  if (one !== undefined) providers.push(checkProvider(one, 'provider'));
  if (many !== undefined) {
    let list: unknown[];
    try {
      if (!Array.isArray(many)) throw new InvalidParameterError('"providers" must be an array of KeyProvider');
      list = [...(many as unknown[])];
    } catch (e) {
      if (e instanceof InvalidParameterError) throw e;
      throw new InvalidParameterError('"providers" could not be read', { cause: e });
    }
    list.forEach((p, i) => providers.push(checkProvider(p, `providers[${i}]`)));
  }
  if (providers.length === 0) throw new InvalidParameterError('decrypt needs "provider" or "providers"');
  const max = readOption<unknown>(options, 'maxEncryptedDataKeys') ?? FORMAT_LIMITS.defaultMaxEncryptedDataKeys;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > FORMAT_LIMITS.maxEncryptedDataKeys) {
    throw new InvalidParameterError('"maxEncryptedDataKeys" must be an integer from 1 to 255');
  }
  return {
    providers,
    required: checkContext(readOption(options, 'encryptionContext')),
    maxEdks: max,
    aead: checkAead(readOption(options, 'aead')),
  };
}

/** Ask the providers for the data key of one of the envelope's encrypted data keys. SPEC.md §3.5 step 3. */
export async function unwrapAny(
  header: EnvelopeHeader,
  providers: readonly KeyProvider[],
): Promise<{ dataKey: Uint8Array; keyId: string }> {
  let matched = false;
  let disabled: unknown;
  let notFound: unknown;
  let other: unknown;
  for (const edk of header.encryptedDataKeys) {
    for (const p of providers) {
      if (p.providerId !== edk.providerId) continue;
      matched = true;
      let res: unknown;
      try {
        res = await p.decrypt({ ciphertextBlob: edk.blob.slice(), encryptionContext: header.context.map });
      } catch (e) {
        if (e instanceof KeyDisabledError) disabled ??= e;
        else if (e instanceof KeyNotFoundError) notFound ??= e;
        else other ??= e instanceof EnvelopeKitError ? e : new ProviderError('provider decrypt failed', { cause: e });
        continue;
      }
      let pt: unknown;
      try {
        pt = (res as { plaintext?: unknown } | null)?.plaintext;
      } catch (e) {
        other ??= new ProviderError('provider returned an unreadable answer', { cause: e });
        continue;
      }
      if (isBytes(pt) && (pt.length === 16 || pt.length === 32)) return { dataKey: pt, keyId: edk.keyId };
      if (isBytes(pt)) wipe(pt);
      other ??= new ProviderError('provider returned a data key of the wrong type or length');
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
 *   envelope's context must contain.
 * @returns plaintext, key id and the envelope's full encryption context.
 * @throws MalformedEnvelopeError, UnsupportedVersionError for bytes that are not a v1 envelope;
 *   NoMatchingProviderError when no provider matches; DecryptionFailedError (one fixed message)
 *   for a wrong key, a wrong context, or any tampering; KeyNotFoundError, KeyDisabledError from the provider.
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
  if (!isBytes(envelope)) throw new MalformedEnvelopeError('envelope must be a Uint8Array');
  const { providers, required, maxEdks, aead } = checkDecryptOptions(options);
  // Read the envelope once, now: the caller's buffer may change while the provider is awaited.
  // Memory another thread can write (a SharedArrayBuffer) is copied whole before it is parsed.
  // Otherwise parseHeader copies what it keeps (`slice` of a plain Uint8Array view, which copies,
  // unlike `slice` on a Buffer), and the body is copied just below.
  const bytes = isSharedMemory(envelope)
    ? new Uint8Array(envelope)
    : new Uint8Array(envelope.buffer, envelope.byteOffset, envelope.length);
  const { header, bodyOffset } = parseHeader(bytes, maxEdks);
  // SPEC.md §3.5 step 2: the caller's context must be contained in the envelope's.
  if (!contextContains(header.context, required)) throw new DecryptionFailedError();
  // The copy of the body is also where the plaintext goes when the backend opens in place:
  // one payload-sized buffer in all.
  const body = new Uint8Array(bytes.length - bodyOffset);
  body.set(bytes.subarray(bodyOffset));
  const { dataKey, keyId } = await unwrapAny(header, providers);
  let contentKey: Uint8Array | undefined;
  let commitment: Uint8Array | undefined;
  try {
    ({ contentKey, commitment } = deriveKeys(dataKey, header.messageId, hmacOf(aead)));
    if (!constantTimeEqual(commitment, header.commitment)) throw new DecryptionFailedError();
    const n = body.length - TAG_LENGTH;
    const inPlace = opensInPlace(aead);
    const plaintext = inPlace ? body.subarray(0, n) : new Uint8Array(n);
    if (!aead.open(contentKey, SINGLE_PASS_NONCE, header.bytes, body, plaintext)) throw new DecryptionFailedError();
    if (inPlace) body.fill(0, n); // the tag: not secret, but nothing is left behind the plaintext
    return { plaintext, keyId, encryptionContext: header.context.map };
  } finally {
    wipe(dataKey, contentKey, commitment);
  }
}

/** True for a view of memory that another thread may write while we read it. */
function isSharedMemory(bytes: Uint8Array): boolean {
  return Object.prototype.toString.call(bytes.buffer) !== '[object ArrayBuffer]';
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
  return envelopeToText(await encrypt(plaintext, options));
}

/** {@link decrypt} for the text form. */
export async function decryptText(envelope: string, options: DecryptOptions): Promise<DecryptResult> {
  if (typeof envelope !== 'string') throw new MalformedEnvelopeError('text envelope must be a string');
  return decrypt(envelopeFromTextForDecrypt(envelope), options);
}

const SUITE_NAMES: Record<number, string> = { 0x01: 'AES-256-GCM, HKDF-SHA-256, key commitment' };

/**
 * Read what an envelope's header says, without decrypting and without any secret.
 * Accepts the binary or the text form.
 * @throws MalformedEnvelopeError, UnsupportedVersionError
 */
export function inspect(envelope: Uint8Array | string, options: { maxEncryptedDataKeys?: number } = {}): EnvelopeInfo {
  const bytes = typeof envelope === 'string' ? envelopeFromText(envelope) : envelope;
  if (!isBytes(bytes)) throw new MalformedEnvelopeError('envelope must be a Uint8Array or a text envelope');
  const max = readOptions(options, ['maxEncryptedDataKeys'], 'inspect options').maxEncryptedDataKeys ?? FORMAT_LIMITS.maxEncryptedDataKeys;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > FORMAT_LIMITS.maxEncryptedDataKeys) {
    throw new InvalidParameterError('"maxEncryptedDataKeys" must be an integer from 1 to 255');
  }
  const { header, bodyOffset } = parseHeader(bytes, max, Object.keys(LAYOUT_NAMES).map(Number));
  return Object.freeze({
    formatVersion: header.version,
    suite: { id: header.suite, name: SUITE_NAMES[header.suite]! },
    layout: { id: header.layout, name: LAYOUT_NAMES[header.layout]! },
    messageId: Array.from(header.messageId, (b) => b.toString(16).padStart(2, '0')).join(''),
    encryptionContext: header.context.map,
    encryptedDataKeys: header.encryptedDataKeys.map((e) => ({ providerId: e.providerId, keyId: e.keyId, blobLength: e.blob.length })),
    headerLength: bodyOffset,
    plaintextLength: bytes.length - bodyOffset - TAG_LENGTH,
    totalLength: bytes.length,
  });
}

