/**
 * Re-wrapping: changing the set of master keys that can open an envelope without reading or
 * re-encrypting its body (SPEC.md §15). The body's associated data is the authenticated header,
 * which leaves the data-key list out (§3.1); the key commitment is what keeps a changed list safe
 * (§9.13).
 * @module
 */
import { TAG_LENGTH, type AesGcm } from './aead/types.js';
import { type RangeSource, readSourceHeader, sourceOf } from './source.js';
import { contextContains, providerContext } from './context.js';
import { DecryptionFailedError, InvalidParameterError, MalformedEnvelopeError, ProviderError } from './errors.js';
import {
  FORMAT_LIMITS,
  LAYOUT_FIELD,
  LAYOUT_FRAMED,
  LAYOUT_NAMES,
  LAYOUT_SINGLE,
  RECORD_HEADER_PREFIX,
  type EncryptedDataKey,
  type EnvelopeHeader,
  encodeHeader,
  envelopeFromText,
  envelopeToText,
  parseHeader,
} from './format.js';
import {
  type CheckedDecryptOptions,
  type DecryptOptions,
  type Recipient,
  checkDecryptOptions,
  checkOptionsObject,
  asProviderError,
  checkProvider,
  keyVersionOf,
  readArrayOption,
  readOption,
  readRecordBinding,
  unwrapAny,
  wrapFor,
} from './envelope.js';
import { deriveFramedKeys, deriveKeys, deriveRecordKeys, hmacOf } from './kdf.js';
import { type KeyProvider, PROVIDER_LIMITS, checkKeyId, isAnswerKeyId, isProviderId, readAnswerField } from './provider.js';
import { base64UrlDecode, base64UrlEncode } from '../internal/base64.js';
import { byteView, constantTimeEqual, wipe } from '../internal/bytes.js';

/** What a re-wrap rule sees of one encrypted data key. */
export interface EncryptedDataKeyInfo {
  /** The provider id written beside the blob. */
  readonly providerId: string;
  /** The key id written beside the blob (what the writer, or the last re-wrap, recorded). */
  readonly keyId: string;
  /** The master-key version the blob names, where a given provider can read it (`describeBlob`). */
  readonly keyVersion?: string;
  /** The blob's length in bytes. */
  readonly blobLength: number;
}

/**
 * Which encrypted data keys a rule applies to: every field given must match exactly
 * (`{ keyId: 'old-key' }`, `{ providerId: 'alibaba-kms' }`), or a function of the key.
 */
export type KeySelector =
  | { readonly providerId?: string; readonly keyId?: string; readonly keyVersion?: string }
  | ((key: EncryptedDataKeyInfo) => boolean);

/** Replace the encrypted data keys that `from` selects by one for `to`. */
export interface ReplaceRule {
  readonly from: KeySelector;
  readonly to: Recipient;
}

/**
 * Options of {@link rewrap}: the providers that can open the envelope's data key (as for
 * `decrypt`), and at least one of `replace`, `remove`, `add`.
 */
export interface RewrapOptions extends Omit<DecryptOptions, 'aead'> {
  /**
   * Each encrypted data key a rule selects is replaced, in place, by one for the rule's recipient.
   * When the recipient's provider is the key's own and offers `reEncrypt`, the provider moves the
   * blob and the data key never leaves it; otherwise the data key is unwrapped (and checked against
   * the commitment) and wrapped with the recipient's provider's `encrypt`. A key selected by an
   * earlier rule is not selected again.
   */
  readonly replace?: readonly ReplaceRule[];
  /** Drop the encrypted data keys these select (after `replace`). At least one key must remain. */
  readonly remove?: readonly KeySelector[];
  /**
   * Wrap the data key for these recipients too (after `remove`): the data key is unwrapped once and
   * checked against the commitment first. A recipient whose key is already listed (same provider id,
   * same resolved key id) is not added twice.
   */
  readonly add?: readonly Recipient[];
  /** AES-GCM backend whose HMAC checks the commitment. Defaults to the runtime's. */
  readonly aead?: AesGcm;
}

/** Checked options of {@link rewrap}. @internal */
export interface CheckedRewrap {
  readonly decrypt: CheckedDecryptOptions;
  readonly replace: readonly { readonly from: (k: EncryptedDataKeyInfo) => boolean; readonly to: Recipient }[];
  readonly remove: readonly ((k: EncryptedDataKeyInfo) => boolean)[];
  readonly add: readonly Recipient[];
  /** The record binding the commitment of layouts 0x00 and 0x02 is checked with (SPEC.md §9.10). */
  readonly binding: Uint8Array;
}

/** One rule list of the options (absent: none). */
function readRules(options: unknown, name: string, shape: string): unknown[] {
  const value = readOption<unknown>(options, name);
  return value === undefined ? [] : readArrayOption(value, name, shape);
}

function checkSelector(sel: unknown, what: string): (k: EncryptedDataKeyInfo) => boolean {
  if (typeof sel === 'function') {
    return (k) => {
      let r: unknown;
      try {
        r = (sel as (k: EncryptedDataKeyInfo) => unknown)(Object.freeze({ ...k }));
      } catch (e) {
        throw new InvalidParameterError(`the "${what}" function threw`, { cause: e });
      }
      if (typeof r !== 'boolean') throw new InvalidParameterError(`the "${what}" function must return a boolean`);
      return r;
    };
  }
  if (sel === null || typeof sel !== 'object') throw new InvalidParameterError(`"${what}" must be { providerId?, keyId?, keyVersion? } or a function`);
  const providerId = readOption<unknown>(sel, 'providerId');
  const keyId = readOption<unknown>(sel, 'keyId');
  const keyVersion = readOption<unknown>(sel, 'keyVersion');
  if (providerId !== undefined && !isProviderId(providerId)) throw new InvalidParameterError(`"${what}.providerId" must be a provider id`);
  if (keyId !== undefined) checkKeyId(keyId, `${what}.keyId`);
  if (keyVersion !== undefined && (typeof keyVersion !== 'string' || keyVersion.length === 0)) {
    throw new InvalidParameterError(`"${what}.keyVersion" must be a non-empty string`);
  }
  // A selector that names nothing would select every key: refused, so that a typo cannot empty the list.
  if (providerId === undefined && keyId === undefined && keyVersion === undefined) {
    throw new InvalidParameterError(`"${what}" must name a providerId, a keyId or a keyVersion`);
  }
  return (k) =>
    (providerId === undefined || k.providerId === providerId) && (keyId === undefined || k.keyId === keyId) && (keyVersion === undefined || k.keyVersion === keyVersion);
}

function checkRecipient(r: unknown, what: string): Recipient {
  if (r === null || typeof r !== 'object') throw new InvalidParameterError(`"${what}" must be { provider, keyId }`);
  return Object.freeze({ provider: checkProvider(readOption(r, 'provider'), `${what}.provider`), keyId: checkKeyId(readOption(r, 'keyId'), `${what}.keyId`) });
}

/**
 * Check the options of {@link rewrap} once (a batch checks them once for all its items).
 * @internal
 */
export function checkRewrapOptions(options: unknown, fn = 'rewrap'): Omit<CheckedRewrap, 'binding'> {
  checkOptionsObject(options, fn);
  const replace = readRules(options, 'replace', '{ from, to }').map((rule, i) => {
    if (rule === null || typeof rule !== 'object') throw new InvalidParameterError(`"replace[${i}]" must be { from, to }`);
    return Object.freeze({ from: checkSelector(readOption(rule, 'from'), `replace[${i}].from`), to: checkRecipient(readOption(rule, 'to'), `replace[${i}].to`) });
  });
  const remove = readRules(options, 'remove', 'selectors').map((sel, i) => checkSelector(sel, `remove[${i}]`));
  const add = readRules(options, 'add', '{ provider, keyId }').map((r, i) => checkRecipient(r, `add[${i}]`));
  if (replace.length + remove.length + add.length === 0) throw new InvalidParameterError(`${fn} needs at least one "replace", "remove" or "add" rule`);
  for (const r of [...add, ...replace.map((x) => x.to)]) {
    // A recipient is reached through reEncrypt (same provider) or encrypt; without either, it cannot be wrapped for.
    if (!r.provider.encrypt && !r.provider.reEncrypt) {
      throw new InvalidParameterError(`provider ${r.provider.providerId} has neither encrypt nor reEncrypt: it cannot be a new recipient`);
    }
  }
  return { decrypt: checkDecryptOptions(options), replace, remove, add };
}

/** The layouts a re-wrap reads: every one (SPEC.md §15). */
const ALL_LAYOUTS = [LAYOUT_SINGLE, LAYOUT_FIELD, LAYOUT_FRAMED];

/**
 * The re-wrapped data-key list of a parsed header, or `undefined` when no rule changed it
 * (SPEC.md §15 steps 2 to 6). The body is never needed.
 * @internal
 */
export async function rewrapEncryptedDataKeys(header: EnvelopeHeader, checked: CheckedRewrap): Promise<EncryptedDataKey[] | undefined> {
  const { decrypt: d } = checked;
  if (!contextContains(header.context, d.required)) throw new DecryptionFailedError();
  const pctx = providerContext(header.context).map;
  // Any provider the call was given may read a key version from its own blobs.
  const readers = [...d.providers, ...checked.replace.map((r) => r.to.provider), ...checked.add.map((r) => r.provider)];
  const describe = (e: EncryptedDataKey): EncryptedDataKeyInfo => {
    const keyVersion = keyVersionOf(e, readers);
    return { providerId: e.providerId, keyId: e.keyId, blobLength: e.blob.length, ...(keyVersion !== undefined ? { keyVersion } : {}) };
  };
  let dataKey: Uint8Array | undefined;
  // SPEC.md §15 step 3: the data key, unwrapped once, and checked against the commitment before it is wrapped for anyone.
  const openDataKey = async (): Promise<Uint8Array> => {
    if (dataKey) return dataKey;
    // The header's own context, reserved entries included (a blind-index key is re-wrapped too).
    const { dataKey: k } = await unwrapAny(header, d.providers, header.context);
    const mac = hmacOf(d.aead);
    const derived =
      header.layout === LAYOUT_FIELD
        ? deriveRecordKeys(k, header.messageId, mac)
        : header.layout === LAYOUT_FRAMED
          ? deriveFramedKeys(k, header.messageId, checked.binding, mac)
          : deriveKeys(k, header.messageId, checked.binding, mac);
    const ok = constantTimeEqual(derived.commitment, header.commitment);
    wipe(derived.bytes);
    if (!ok) {
      wipe(k);
      throw new DecryptionFailedError();
    }
    dataKey = k;
    return k;
  };
  try {
    let changed = false;
    const list: { edk: EncryptedDataKey; info: EncryptedDataKeyInfo; replaced: boolean; dropped: boolean }[] = header.encryptedDataKeys.map((edk) => ({
      edk,
      info: describe(edk),
      replaced: false,
      dropped: false,
    }));
    // Step 2: replace, in place.
    for (const rule of checked.replace) {
      for (const item of list) {
        if (item.replaced || item.dropped || !rule.from(item.info)) continue;
        const to = rule.to;
        let next: EncryptedDataKey;
        if (to.provider.providerId === item.edk.providerId && to.provider.reEncrypt) {
          next = await reEncryptFor(to, item.edk, pctx);
        } else {
          if (!to.provider.encrypt) throw new InvalidParameterError(`provider ${to.provider.providerId} has no encrypt operation: it cannot wrap another provider's data key`);
          next = await wrapFor(to, await openDataKey(), pctx);
        }
        // A replacement already listed elsewhere is not listed twice: this key is dropped instead.
        const dup = list.some((o) => o !== item && !o.dropped && o.edk.providerId === next.providerId && o.edk.keyId === next.keyId);
        item.edk = next;
        item.info = describe(next);
        item.replaced = true;
        item.dropped = dup;
        changed = true;
      }
    }
    // Step 4 (before the additions, so that an addition is never removed): remove.
    const kept = list.filter((item) => !item.dropped && !checked.remove.some((sel) => sel(item.info)));
    if (kept.length !== list.length) changed = true;
    if (kept.length === 0) throw new InvalidParameterError('the rules would remove every encrypted data key: the envelope could no longer be decrypted');
    // Step 3: add.
    const out = kept.map((x) => x.edk);
    for (const r of checked.add) {
      const next = r.provider.encrypt
        ? await wrapFor(r, await openDataKey(), pctx)
        : // A provider with reEncrypt alone adds a key by moving a copy of one of its own blobs.
          await reEncryptFor(r, ownBlob(out, r.provider), pctx);
      if (out.some((e) => e.providerId === next.providerId && e.keyId === next.keyId)) continue;
      out.push(next);
      changed = true;
    }
    if (!changed) return undefined;
    const limit = Math.max(d.maxEdks, header.encryptedDataKeys.length);
    if (out.length > limit) {
      throw new InvalidParameterError(`the result would hold ${out.length} encrypted data keys; readers accept ${d.maxEdks} unless told otherwise ("maxEncryptedDataKeys")`);
    }
    return out;
  } finally {
    wipe(dataKey);
  }
}

function ownBlob(list: readonly EncryptedDataKey[], provider: KeyProvider): EncryptedDataKey {
  const e = list.find((x) => x.providerId === provider.providerId);
  if (!e) throw new InvalidParameterError(`provider ${provider.providerId} has no encrypt operation and no blob of its own in the envelope to move`);
  return e;
}

/** SPEC.md §15 step 2: the provider moves one of its blobs to `to.keyId`, bound to the same provider context. */
async function reEncryptFor(to: Recipient, edk: EncryptedDataKey, encryptionContext: Record<string, string>): Promise<EncryptedDataKey> {
  let answer: unknown;
  try {
    answer = await to.provider.reEncrypt!({
      ciphertextBlob: edk.blob.slice(),
      sourceEncryptionContext: encryptionContext,
      destinationKeyId: to.keyId,
      destinationEncryptionContext: encryptionContext,
    });
  } catch (e) {
    throw asProviderError(e, 'reEncrypt failed');
  }
  const blob = byteView(readAnswerField(answer, 'ciphertextBlob'));
  if (!blob || blob.length < 1 || blob.length > PROVIDER_LIMITS.maxBlobBytes) throw new ProviderError('provider returned an invalid ciphertextBlob');
  const keyId = readAnswerField(answer, 'keyId');
  if (!isAnswerKeyId(keyId)) throw new ProviderError('provider returned an invalid keyId');
  return { providerId: to.provider.providerId, keyId, blob: new Uint8Array(blob) };
}

/** The header of `header` with its data-key list replaced; every other byte is the same (checked). @internal */
export function replaceEncryptedDataKeys(header: EnvelopeHeader, edks: readonly EncryptedDataKey[]): Uint8Array {
  const out = encodeHeader({
    layout: header.layout,
    messageId: header.messageId,
    context: header.context,
    encryptedDataKeys: edks,
    commitment: header.commitment,
    ...(header.segmentSize !== undefined ? { segmentSize: header.segmentSize } : {}),
  });
  // SPEC.md §15 step 5: the authenticated header is the same bytes (canonical encodings, §1.2).
  const again = parseHeader(out, FORMAT_LIMITS.maxEncryptedDataKeys, ALL_LAYOUTS, 'header').header;
  if (!constantTimeEqual(again.aad, header.aad)) throw new ProviderError('re-wrapped header does not keep the authenticated header');
  return out;
}

/** The forms {@link rewrap} takes: a binary envelope, a text envelope (`ek1.`), a record header (`ekh1.`). */
export type Rewrappable = Uint8Array | string;

/**
 * Change the master keys that can open an envelope without reading or re-encrypting its body
 * (SPEC.md §15): replace, remove or add encrypted data keys. Works on every layout (single pass,
 * framed, record fields), on the binary and the text form, and on a record header (`ekh1.`).
 *
 * The body is copied unchanged (byte for byte) after the new header; to re-wrap without holding
 * the body at all (a large file), use {@link rewrapHeader}.
 *
 * @param envelope - a binary envelope, its text form, or a record header string.
 * @param options - the providers that can open the data key (`provider`/`providers`, as for
 *   `decrypt`), the rules (`replace`, `remove`, `add`), and for layouts 0x00 and 0x02 the
 *   `recordId`/`recordVersion` the envelope was written with (the commitment check needs them
 *   when the data key is unwrapped).
 * @returns the envelope in the form it was given; the same value when no rule changed anything.
 * @throws InvalidParameterError for bad options, rules that would leave no data key or more than
 *   `maxEncryptedDataKeys`; MalformedEnvelopeError, UnsupportedVersionError for bytes that are not an
 *   envelope; DecryptionFailedError when the data key cannot be unwrapped or fails the commitment
 *   (wrong `recordId`); the providers' errors.
 * @example
 * ```ts
 * import { LocalKeyring, encrypt, decrypt, rewrap } from 'envelope-kit';
 * const keyring = new LocalKeyring();
 * const oldKey = keyring.createKey().keyId;
 * const newKey = keyring.createKey().keyId;
 * const envelope = await encrypt(new Uint8Array([1, 2, 3]), { provider: keyring, keyId: oldKey });
 * const moved = await rewrap(envelope, { provider: keyring, replace: [{ from: { keyId: oldKey }, to: { provider: keyring, keyId: newKey } }] });
 * await decrypt(moved, { provider: keyring, keyIds: [newKey] });
 * ```
 */
export async function rewrap<T extends Rewrappable>(envelope: T, options: RewrapOptions): Promise<T> {
  const checked = { ...checkRewrapOptions(options), binding: readRecordBinding(options) };
  return rewrapChecked(envelope, checked);
}

/** {@link rewrap} on checked options. @internal */
export async function rewrapChecked<T extends Rewrappable>(envelope: T, checked: CheckedRewrap): Promise<T> {
  if (typeof envelope === 'string') {
    if (envelope.startsWith(RECORD_HEADER_PREFIX)) {
      const bytes = base64UrlDecode(envelope.slice(RECORD_HEADER_PREFIX.length));
      if (!bytes) throw new MalformedEnvelopeError('record header is not canonical base64url');
      const { header } = parseHeader(bytes, checked.decrypt.maxEdks, [LAYOUT_FIELD], 'header');
      const edks = await rewrapEncryptedDataKeys(header, checked);
      return (edks ? RECORD_HEADER_PREFIX + base64UrlEncode(replaceEncryptedDataKeys(header, edks)) : envelope) as T;
    }
    // Anything else is read as the text form, which refuses it with its own error.
    const out = await rewrapBytes(envelopeFromText(envelope), checked);
    return (out ? envelopeToText(out) : envelope) as T;
  }
  const view = byteView(envelope);
  if (!view) throw new MalformedEnvelopeError('envelope must be a Uint8Array or a text envelope');
  return ((await rewrapBytes(view, checked)) ?? view.slice()) as T;
}

async function rewrapBytes(bytes: Uint8Array, checked: CheckedRewrap): Promise<Uint8Array | undefined> {
  // Read once: the caller's buffer may change while a provider is awaited.
  const copy = new Uint8Array(bytes);
  const { header, bodyOffset } = parseHeader(copy, checked.decrypt.maxEdks, ALL_LAYOUTS, 'envelope');
  const edks = await rewrapEncryptedDataKeys(header, checked);
  if (!edks) return undefined;
  const next = replaceEncryptedDataKeys(header, edks);
  const out = new Uint8Array(next.length + copy.length - bodyOffset);
  out.set(next, 0);
  out.set(copy.subarray(bodyOffset), next.length);
  return out;
}

/** A source {@link rewrapHeader} reads the header from: bytes, a `Blob`, or `{ size, read }` (as `decryptRange`'s). */
export type HeaderSource = Uint8Array | Blob | RangeSource;

/**
 * {@link rewrap} for an envelope too large to hold: reads only its header from `source` and returns
 * the new header and the offset where the body starts in the source. The re-wrapped envelope is
 * `header || source[bodyOffset..]`: write the header, then copy the body as it is.
 * @returns `changed: false` (and the old header) when no rule changed anything.
 * @throws as {@link rewrap}.
 */
export async function rewrapHeader(
  source: HeaderSource,
  options: RewrapOptions,
): Promise<{ readonly header: Uint8Array; readonly bodyOffset: number; readonly changed: boolean; readonly layout: string }> {
  const checked = { ...checkRewrapOptions(options, 'rewrapHeader'), binding: readRecordBinding(options) };
  const src = sourceOf(source);
  const { header, bodyOffset } = await readSourceHeader(src, checked.decrypt.maxEdks, ALL_LAYOUTS);
  // SPEC.md §3.5 step 1.10: a whole message or a framed envelope has at least a tag after its header.
  if (header.layout !== LAYOUT_FIELD && src.size - bodyOffset < TAG_LENGTH) throw new MalformedEnvelopeError('truncated: body');
  const edks = await rewrapEncryptedDataKeys(header, checked);
  return Object.freeze({
    header: edks ? replaceEncryptedDataKeys(header, edks) : header.bytes.slice(),
    bodyOffset,
    changed: edks !== undefined,
    layout: LAYOUT_NAMES[header.layout]!,
  });
}
