/**
 * Shared helpers of the core test files: fast-check run counts, error
 * assertions, and small in-test key providers (a recording wrapper and an
 * in-memory provider kind that can wrap an existing data key, to build
 * envelopes with several encrypted data keys).
 * @module
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { CONTEXT_LIMITS } from '../src/core/context.js';
import { type CheckedContext, checkContext, contextEquals } from '../src/core/context.js';
import { DecryptionFailedError, EnvelopeKitError, type ErrorCode, KeyNotFoundError } from '../src/core/errors.js';
import type {
  DataKey,
  DecryptedDataKey,
  DecryptRequest,
  GenerateDataKeyRequest,
  KeyProvider,
} from '../src/core/provider.js';
import { checkDecryptRequest, checkGenerateDataKeyRequest } from '../src/core/provider.js';
import { nobleAesGcm } from '../src/core/aead/noble.js';
import { checkProvider, obtainDataKey, sealWithDataKey } from '../src/core/envelope.js';
import { LAYOUT_FIELD, LAYOUT_FRAMED, LAYOUT_SINGLE, envelopeToText, keyIdRanges, parseHeader } from '../src/core/format.js';
import { BLIND_INDEX_PURPOSE } from '../src/records/blind-index.js';

/**
 * fast-check run count: `FC_NUM_RUNS` from the environment when set, else `def`.
 * `divisor` scales the environment value down for expensive properties (1 MiB plaintexts).
 */
export function numRuns(def: number, divisor = 1): number {
  const env = Number(process.env.FC_NUM_RUNS);
  if (Number.isInteger(env) && env > 0) return Math.max(1, Math.ceil(env / divisor));
  return def;
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const fromUtf8 = (b: Uint8Array): string => new TextDecoder().decode(b);
export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
export const b64url = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

/** Run `f` and return what it threw (sync or async); fail the test when it does not throw. */
export async function caught(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  expect.fail('expected a throw, but the call succeeded');
}

/** Expect `f` to throw an EnvelopeKitError with `code`, and return it. */
export async function expectCode(f: () => unknown, code: ErrorCode): Promise<EnvelopeKitError> {
  const e = await caught(f);
  expect(e).toBeInstanceOf(EnvelopeKitError);
  expect((e as EnvelopeKitError).code, String((e as Error).message)).toBe(code);
  return e as EnvelopeKitError;
}

/**
 * Expect `f` either to return, or to throw an EnvelopeKitError (never a raw
 * TypeError, RangeError, ZodError, ...). Returns the error, if any.
 */
export async function expectOnlyOwnErrors(f: () => unknown): Promise<EnvelopeKitError | undefined> {
  try {
    await f();
    return undefined;
  } catch (e) {
    if (!(e instanceof EnvelopeKitError)) {
      throw new Error(`foreign error escaped: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`, { cause: e });
    }
    return e;
  }
}

/**
 * Assert that no 8-character window of the hex, base64 or base64url form of
 * `secret` occurs in `text`. (8 base64 characters are 48 bits: a chance match is negligible.)
 */
export function expectNoSecret(text: string, secret: Uint8Array, what = 'text'): void {
  for (const enc of [hex(secret), b64(secret).replace(/=+$/, ''), b64url(secret)]) {
    for (let i = 0; i + 8 <= enc.length; i++) {
      const window = enc.slice(i, i + 8);
      if (text.includes(window)) expect.fail(`${what} contains part of a secret (${window})`);
    }
  }
}

/** Byte equality that stays fast for megabytes (vitest's deep equality walks element by element). */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  const same = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(
    Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
  );
  if (!same) expect.fail('byte arrays differ');
}

/** True when every byte is zero. */
export function allZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

/**
 * Wraps a provider and keeps a reference to every plaintext data key it hands
 * out, so a test can check that the envelope layer wiped it.
 * With `ignoreContext`, decrypt unwraps with the context the blob was made with
 * whatever the caller passes (a provider that does not bind the context), so
 * that failures in the envelope layer after a successful unwrap can be reached.
 */
export class RecordingProvider implements KeyProvider {
  readonly providerId: string;
  readonly handedOut: Uint8Array[] = [];
  /** Copies of the keys handed out, made before the envelope layer saw them. */
  readonly copies: Uint8Array[] = [];
  readonly #contexts = new Map<string, Readonly<Record<string, string>> | undefined>();
  constructor(
    readonly inner: KeyProvider,
    readonly options: { ignoreContext?: boolean } = {},
  ) {
    this.providerId = inner.providerId;
  }
  #record<T extends { plaintext: Uint8Array }>(answer: T): T {
    this.handedOut.push(answer.plaintext);
    this.copies.push(answer.plaintext.slice());
    return answer;
  }
  async generateDataKey(request: GenerateDataKeyRequest): Promise<DataKey> {
    const answer = await this.inner.generateDataKey(request);
    this.#contexts.set(hex(answer.ciphertextBlob), request.encryptionContext);
    return this.#record(answer);
  }
  async decrypt(request: DecryptRequest): Promise<DecryptedDataKey> {
    const ctx = this.options.ignoreContext ? this.#contexts.get(hex(request.ciphertextBlob)) : request.encryptionContext;
    return this.#record(await this.inner.decrypt({ ciphertextBlob: request.ciphertextBlob, encryptionContext: ctx }));
  }
}

/**
 * A test provider kind with a configurable provider id. Blobs are random
 * handles into an in-memory table; the context is checked as the contract says.
 * `wrap` adds a blob for an existing data key (several providers, one envelope).
 */
export class MemoryProvider implements KeyProvider {
  readonly #table = new Map<string, { keyId: string; key: Uint8Array; ctx: CheckedContext }>();
  decryptCalls = 0;
  constructor(
    readonly providerId: string,
    readonly keyId = 'mem-key',
  ) {}
  wrap(dataKey: Uint8Array, ctx: CheckedContext): Uint8Array {
    const blob = crypto.getRandomValues(new Uint8Array(16));
    this.#table.set(hex(blob), { keyId: this.keyId, key: dataKey.slice(), ctx });
    return blob;
  }
  async generateDataKey(request: GenerateDataKeyRequest): Promise<DataKey> {
    const req = checkGenerateDataKeyRequest(request);
    if (req.keyId !== this.keyId) throw new KeyNotFoundError(`key not found: ${req.keyId}`);
    const plaintext = crypto.getRandomValues(new Uint8Array(req.numberOfBytes));
    return { keyId: this.keyId, plaintext, ciphertextBlob: this.wrap(plaintext, req.context) };
  }
  async decrypt(request: DecryptRequest): Promise<DecryptedDataKey> {
    this.decryptCalls++;
    const { blob, context } = checkDecryptRequest(request);
    const entry = this.#table.get(hex(blob));
    if (!entry || !contextEquals(entry.ctx, context)) throw new DecryptionFailedError();
    return { keyId: entry.keyId, plaintext: entry.key.slice() };
  }
}

/** Context keys: unicode graphemes, any code point, and names that are special to JavaScript objects. */
const contextKey = fc
  .oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 16 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }),
    fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', '0', '10', '2', 'a'.repeat(CONTEXT_LIMITS.maxKeyBytes), '\u{1f600}'.repeat(64)),
  )
  .filter((k) => utf8(k).length <= CONTEXT_LIMITS.maxKeyBytes && !k.startsWith('ek:'));
const contextValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ unit: 'grapheme', maxLength: 24 }),
  fc.constantFrom('', 'v'.repeat(CONTEXT_LIMITS.maxValueBytes), '\u00e9'.repeat(CONTEXT_LIMITS.maxValueBytes / 2)),
);
/** Arbitrary valid encryption contexts. */
export const contextArb = fc.dictionary(contextKey, contextValue, { maxKeys: 10 });

export { checkContext };


/**
 * A stored blind-index key (SPEC.md §13) holding `key`, built below the public API (which only
 * makes index keys of its own random bytes): the provider's data key seals `key` under the
 * reserved context `{"ek:blind-index": name}`.
 */
export async function storedIndexKey(provider: KeyProvider, keyId: string, name: string, key: Uint8Array): Promise<string> {
  const ctx = checkContext({ [BLIND_INDEX_PURPOSE]: name });
  const { dataKey, edks, messageId } = await obtainDataKey(checkProvider(provider, "provider"), keyId, "AES_256", ctx, key.length);
  try {
    return envelopeToText(await sealWithDataKey(nobleAesGcm, dataKey, messageId, ctx, edks, key));
  } finally {
    dataKey.fill(0);
  }
}

/** Strict base64url (no padding, zero trailing bits), decoded independently of the library; `undefined` if not canonical. */
function strictBase64Url(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return undefined;
  const b = Buffer.from(s, 'base64url');
  return b.toString('base64url') === s ? new Uint8Array(b) : undefined;
}

/**
 * SPEC.md §9.13: whether `changed` differs from the valid envelope `original` only in the bytes of
 * the key ids written beside the blobs (not their length bytes): the one change to a valid envelope
 * that may still decrypt, and then to exactly the original plaintext. Both binary (an envelope of
 * layout 0x00, 0x01 or 0x02, or a record header), or both text with the same prefix (`ek1.`,
 * `ekh1.`; character i after it covers bits [6i, 6i+6) of the bytes, so the bytes that differ are
 * compared). Anything else (another length, a non-canonical text, a compact field, which has no
 * data-key list) is `false`: such a change must be refused.
 */
export function onlyKeyIdsChanged(original: Uint8Array | string, changed: Uint8Array | string): boolean {
  let before: Uint8Array | undefined;
  let after: Uint8Array | undefined;
  let headerOnly = false;
  if (typeof original === 'string' || typeof changed === 'string') {
    if (typeof original !== 'string' || typeof changed !== 'string') return false;
    const prefix = /^(ek1\.|ekh1\.)/.exec(original)?.[1];
    if (prefix === undefined || !changed.startsWith(prefix)) return false;
    headerOnly = prefix === 'ekh1.';
    before = strictBase64Url(original.slice(prefix.length));
    after = strictBase64Url(changed.slice(prefix.length));
  } else {
    before = original;
    after = changed;
  }
  if (!before || !after || before.length !== after.length) return false;
  let ranges: [number, number][];
  try {
    ranges = keyIdRanges(parseHeader(before, 255, [LAYOUT_SINGLE, LAYOUT_FIELD, LAYOUT_FRAMED], headerOnly ? 'header' : 'prefix').header);
  } catch {
    return false;
  }
  let differs = false;
  for (let i = 0; i < before.length; i++) {
    if (before[i] === after[i]) continue;
    if (!ranges.some(([s, e]) => i >= s && i < e)) return false;
    differs = true;
  }
  return differs;
}
