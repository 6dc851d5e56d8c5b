/**
 * The key-provider contract as a test suite: the cases every {@link KeyProvider} must pass, per the
 * contract's module documentation in `src/core/provider.ts`. A provider's contract test calls
 * {@link providerContract} once with a `setup` that builds a fresh provider and its keys.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { type ErrorCode, EnvelopeKitError } from '../../src/core/errors.js';
import type { EncryptionContext } from '../../src/core/context.js';
import type { KeyProvider } from '../../src/core/provider.js';
import { decrypt, encrypt } from '../../src/index.js';
import { expectNoSecret } from '../core-helpers.js';

/** What a provider's `setup` gives the contract suite. */
export interface ContractFixture {
  /** The provider under test. */
  readonly provider: KeyProvider;
  /** A usable master key, as its resolved id (the id the provider answers). */
  readonly keyId: string;
  /** An alias of `keyId` (`alias/...`), when the provider has aliases: answers must name `keyId`. */
  readonly alias?: string;
  /** A second usable master key (resolved id), the destination of `reEncrypt`. */
  readonly otherKeyId: string;
  /** A disabled master key, when the provider can disable keys: every use is `KeyDisabledError`. */
  readonly disabledKeyId?: string;
  /** A well-formed key id the provider does not know: `KeyNotFoundError`. */
  readonly missingKeyId: string;
  /** Rotate `keyId` to a new version, when the provider can: blobs made before stay readable. */
  readonly rotate?: () => Promise<void>;
  /** Release what `setup` started (a server, a keyring). */
  readonly teardown?: () => Promise<void>;
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const hexOf = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

async function caught(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  return expect.fail('expected a rejection');
}

async function expectCode(f: () => unknown, code: ErrorCode): Promise<EnvelopeKitError> {
  const e = await caught(f);
  expect(e).toBeInstanceOf(EnvelopeKitError);
  expect((e as EnvelopeKitError).code, String((e as Error).message)).toBe(code);
  return e as EnvelopeKitError;
}

/** Every text an error shows: message, stack, JSON and those of its causes. */
function errorText(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof Error) {
      parts.push(e.message, e.stack ?? '');
      try {
        parts.push(JSON.stringify(e));
      } catch {
        /* a cause that cannot be serialised shows nothing more */
      }
      e = e.cause;
    } else {
      parts.push(String(e));
      break;
    }
  }
  return parts.join('\n');
}

/**
 * Define the contract cases for one provider.
 *
 * Each case calls `setup` for a fresh fixture and `teardown` after it. The optional cases run only
 * when the fixture offers them: `disabledKeyId`, `rotate`, `alias`, and the provider's optional
 * `encrypt`, `reEncrypt` and `describeBlob`.
 *
 * @param name - shown in the `describe` title.
 * @param setup - builds a fresh {@link ContractFixture}.
 * @example
 * ```ts
 * providerContract('local keyring', async () => {
 *   const provider = new LocalKeyring();
 *   const { keyId } = provider.createKey({ alias: 'alias/app' });
 *   const { keyId: otherKeyId } = provider.createKey();
 *   return { provider, keyId, alias: 'alias/app', otherKeyId, missingKeyId: 'nope' };
 * });
 * ```
 */
export function providerContract(name: string, setup: () => Promise<ContractFixture>): void {
  /** Run `body` on a fresh fixture, tearing it down whatever happens. */
  const withFixture = (body: (f: ContractFixture) => Promise<void>) => async () => {
    const f = await setup();
    try {
      await body(f);
    } finally {
      await f.teardown?.();
    }
  };
  const ctx: EncryptionContext = { tenant: 'acme', purpose: 'contract' };

  describe(`provider contract: ${name}`, () => {
    it('providerId is 1..64 of a-z 0-9 . _ -', withFixture(async ({ provider }) => {
      expect(provider.providerId).toMatch(/^[a-z0-9._-]{1,64}$/);
    }));

    it('generateDataKey: AES_256 (default) 32 bytes, AES_128 16, numberOfBytes 1 and 1024 win over keySpec', withFixture(async ({ provider, keyId }) => {
      expect((await provider.generateDataKey({ keyId })).plaintext).toHaveLength(32);
      expect((await provider.generateDataKey({ keyId, keySpec: 'AES_256' })).plaintext).toHaveLength(32);
      expect((await provider.generateDataKey({ keyId, keySpec: 'AES_128' })).plaintext).toHaveLength(16);
      for (const n of [1, 1024]) {
        const dk = await provider.generateDataKey({ keyId, keySpec: 'AES_128', numberOfBytes: n });
        expect(dk.plaintext).toHaveLength(n);
        expect((await provider.decrypt({ ciphertextBlob: dk.ciphertextBlob })).plaintext).toEqual(dk.plaintext);
      }
    }));

    it('answers name the resolved key id, never an alias', withFixture(async ({ provider, keyId, alias }) => {
      expect((await provider.generateDataKey({ keyId })).keyId).toBe(keyId);
      if (alias === undefined) return;
      const dk = await provider.generateDataKey({ keyId: alias, encryptionContext: ctx });
      expect(dk.keyId).toBe(keyId);
      expect((await provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: ctx })).keyId).toBe(keyId);
      if (provider.encrypt) expect((await provider.encrypt({ keyId: alias, plaintext: utf8('k') })).keyId).toBe(keyId);
    }));

    it('each call gives a fresh data key and a fresh blob', withFixture(async ({ provider, keyId }) => {
      const a = await provider.generateDataKey({ keyId });
      const b = await provider.generateDataKey({ keyId });
      expect(hexOf(a.plaintext)).not.toBe(hexOf(b.plaintext));
      expect(hexOf(a.ciphertextBlob)).not.toBe(hexOf(b.ciphertextBlob));
      expect(a.reused ?? false).toBe(false);
    }));

    it('decrypt returns the data key and names the key that unwrapped it', withFixture(async ({ provider, keyId }) => {
      const dk = await provider.generateDataKey({ keyId, encryptionContext: ctx });
      const out = await provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: ctx });
      expect(out.plaintext).toEqual(dk.plaintext);
      expect(out.keyId).toBe(keyId);
      if (dk.keyVersion !== undefined) expect(typeof dk.keyVersion).toBe('string');
      if (out.keyVersion !== undefined && dk.keyVersion !== undefined) expect(out.keyVersion).toBe(dk.keyVersion);
    }));

    it('the context is a map: the order of its entries does not matter', withFixture(async ({ provider, keyId }) => {
      const dk = await provider.generateDataKey({ keyId, encryptionContext: { a: '1', b: '2', c: '3' } });
      const out = await provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { c: '3', a: '1', b: '2' } });
      expect(out.plaintext).toEqual(dk.plaintext);
    }));

    it('a wrong, missing or extra context entry is DecryptionFailedError', withFixture(async ({ provider, keyId }) => {
      const dk = await provider.generateDataKey({ keyId, encryptionContext: ctx });
      const blob = dk.ciphertextBlob;
      const messages = new Set<string>();
      for (const encryptionContext of [
        { ...ctx, tenant: 'other' },
        { tenant: 'acme' },
        { ...ctx, extra: 'x' },
        {},
        undefined,
      ]) {
        const e = await expectCode(() => provider.decrypt({ ciphertextBlob: blob, encryptionContext }), 'ERR_DECRYPTION_FAILED');
        messages.add(e.message);
        expectNoSecret(errorText(e), dk.plaintext, 'error');
      }
      expect(messages.size).toBe(1);
      const plain = await provider.generateDataKey({ keyId });
      await expectCode(() => provider.decrypt({ ciphertextBlob: plain.ciphertextBlob, encryptionContext: { a: 'b' } }), 'ERR_DECRYPTION_FAILED');
    }));

    it('a bit flipped anywhere in the blob is refused; in its last 16 bytes, as DecryptionFailedError', withFixture(async ({ provider, keyId }) => {
      const dk = await provider.generateDataKey({ keyId, encryptionContext: ctx });
      const blob = dk.ciphertextBlob;
      const step = Math.max(1, Math.floor(blob.length / 24));
      for (let i = 0; i < blob.length; i += i >= blob.length - 16 ? 1 : step) {
        const bad = new Uint8Array(blob);
        bad[i]! ^= 1 << (i % 8);
        const e = await caught(() => provider.decrypt({ ciphertextBlob: bad, encryptionContext: ctx }));
        expect(e, `flip at ${i}`).toBeInstanceOf(EnvelopeKitError);
        const code = (e as EnvelopeKitError).code;
        // A flip in a readable header may name another (unknown) key; it never unwraps.
        expect(['ERR_DECRYPTION_FAILED', 'ERR_KEY_NOT_FOUND', 'ERR_KEY_DISABLED'], `flip at ${i}: ${code}`).toContain(code);
        if (i >= blob.length - 16) expect(code, `flip at ${i}`).toBe('ERR_DECRYPTION_FAILED');
        expectNoSecret(errorText(e), dk.plaintext, 'error');
      }
      await expectCode(() => provider.decrypt({ ciphertextBlob: blob.subarray(0, blob.length - 1), encryptionContext: ctx }), 'ERR_DECRYPTION_FAILED');
    }));

    it('an unknown key is KeyNotFoundError', withFixture(async ({ provider, missingKeyId }) => {
      await expectCode(() => provider.generateDataKey({ keyId: missingKeyId }), 'ERR_KEY_NOT_FOUND');
      if (provider.encrypt) await expectCode(() => provider.encrypt!({ keyId: missingKeyId, plaintext: utf8('k') }), 'ERR_KEY_NOT_FOUND');
    }));

    it('a disabled key is KeyDisabledError', withFixture(async ({ provider, disabledKeyId }) => {
      if (disabledKeyId === undefined) return;
      await expectCode(() => provider.generateDataKey({ keyId: disabledKeyId }), 'ERR_KEY_DISABLED');
      if (provider.encrypt) await expectCode(() => provider.encrypt!({ keyId: disabledKeyId, plaintext: utf8('k') }), 'ERR_KEY_DISABLED');
    }));

    it('bad parameters are InvalidParameterError before any work (even for an unknown key)', withFixture(async ({ provider, missingKeyId }) => {
      const bad: unknown[] = [
        undefined,
        null,
        'x',
        {},
        { keyId: '' },
        { keyId: 42 },
        { keyId: missingKeyId, numberOfBytes: 0 },
        { keyId: missingKeyId, numberOfBytes: 1025 },
        { keyId: missingKeyId, numberOfBytes: 1.5 },
        { keyId: missingKeyId, numberOfBytes: '32' },
        { keyId: missingKeyId, keySpec: 'AES_512' },
        { keyId: missingKeyId, encryptionContext: { a: 1 } },
        { keyId: missingKeyId, encryptionContext: 'a=b' },
      ];
      for (const r of bad) {
        await expectCode(() => provider.generateDataKey(r as never), 'ERR_INVALID_PARAMETER');
      }
      for (const r of [undefined, {}, { ciphertextBlob: 'abc' }, { ciphertextBlob: new Uint8Array(0) }, { ciphertextBlob: new Uint8Array(8), encryptionContext: { a: 1 } }]) {
        await expectCode(() => provider.decrypt(r as never), 'ERR_INVALID_PARAMETER');
      }
      if (provider.encrypt) {
        for (const r of [undefined, { keyId: missingKeyId }, { keyId: missingKeyId, plaintext: new Uint8Array(0) }, { keyId: missingKeyId, plaintext: 'k' }, { keyId: '', plaintext: utf8('k') }]) {
          await expectCode(() => provider.encrypt!(r as never), 'ERR_INVALID_PARAMETER');
        }
      }
      if (provider.reEncrypt) {
        for (const r of [undefined, { ciphertextBlob: new Uint8Array(8) }, { ciphertextBlob: new Uint8Array(0), destinationKeyId: missingKeyId }, { ciphertextBlob: new Uint8Array(8), destinationKeyId: missingKeyId, sourceEncryptionContext: { a: 1 } }]) {
          await expectCode(() => provider.reEncrypt!(r as never), 'ERR_INVALID_PARAMETER');
        }
      }
    }));

    it('reserved ek: entries are accepted and bound like any other', withFixture(async ({ provider, keyId }) => {
      const reserved = { ...ctx, 'ek:purpose': 'envelope-kit/v1/data-key', 'ek:a': '1', 'ek:b': '2', 'ek:c': '3' };
      const dk = await provider.generateDataKey({ keyId, encryptionContext: reserved });
      expect((await provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: reserved })).plaintext).toEqual(dk.plaintext);
      await expectCode(() => provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: ctx }), 'ERR_DECRYPTION_FAILED');
      await expectCode(
        () => provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { ...reserved, 'ek:purpose': 'other' } }),
        'ERR_DECRYPTION_FAILED',
      );
    }));

    it('encrypt: decrypt with an equal context returns the bytes given (when offered)', withFixture(async ({ provider, keyId }) => {
      if (!provider.encrypt) return;
      for (const n of [1, 32, 1024]) {
        const plaintext = new Uint8Array(n).map((_, i) => (i * 7 + n) & 0xff);
        const w = await provider.encrypt({ keyId, plaintext: new Uint8Array(plaintext), encryptionContext: ctx });
        expect(w.keyId).toBe(keyId);
        const out = await provider.decrypt({ ciphertextBlob: w.ciphertextBlob, encryptionContext: { purpose: 'contract', tenant: 'acme' } });
        expect(out.plaintext).toEqual(plaintext);
        expect(out.keyId).toBe(keyId);
        await expectCode(() => provider.decrypt({ ciphertextBlob: w.ciphertextBlob }), 'ERR_DECRYPTION_FAILED');
      }
      // The provider keeps no reference to the caller's bytes: wiping them after the call changes nothing.
      const given = utf8('wiped after the call');
      const w = await provider.encrypt({ keyId, plaintext: given });
      given.fill(0);
      expect((await provider.decrypt({ ciphertextBlob: w.ciphertextBlob })).plaintext).toEqual(utf8('wiped after the call'));
    }));

    it('reEncrypt: the new blob opens under the destination key and context only (when offered)', withFixture(async ({ provider, keyId, otherKeyId }) => {
      if (!provider.reEncrypt) return;
      const dk = await provider.generateDataKey({ keyId, encryptionContext: ctx });
      const destCtx = { tenant: 'acme', purpose: 'moved' };
      const moved = await provider.reEncrypt({
        ciphertextBlob: dk.ciphertextBlob,
        sourceEncryptionContext: ctx,
        destinationKeyId: otherKeyId,
        destinationEncryptionContext: destCtx,
      });
      expect(moved.keyId).toBe(otherKeyId);
      const out = await provider.decrypt({ ciphertextBlob: moved.ciphertextBlob, encryptionContext: destCtx });
      expect(out.plaintext).toEqual(dk.plaintext);
      expect(out.keyId).toBe(otherKeyId);
      await expectCode(() => provider.decrypt({ ciphertextBlob: moved.ciphertextBlob, encryptionContext: ctx }), 'ERR_DECRYPTION_FAILED');
      // The source context is checked as decrypt checks it.
      const e = await expectCode(
        () => provider.reEncrypt!({ ciphertextBlob: dk.ciphertextBlob, sourceEncryptionContext: destCtx, destinationKeyId: otherKeyId }),
        'ERR_DECRYPTION_FAILED',
      );
      expectNoSecret(errorText(e), dk.plaintext, 'error');
      // Moving to the blob's own key works too.
      const same = await provider.reEncrypt({ ciphertextBlob: dk.ciphertextBlob, sourceEncryptionContext: ctx, destinationKeyId: keyId });
      expect((await provider.decrypt({ ciphertextBlob: same.ciphertextBlob })).plaintext).toEqual(dk.plaintext);
    }));

    it('describeBlob never throws on junk (when offered)', withFixture(async ({ provider, keyId }) => {
      if (!provider.describeBlob) return;
      const dk = await provider.generateDataKey({ keyId });
      const d = provider.describeBlob(dk.ciphertextBlob);
      if (d !== undefined) {
        if (d.keyId !== undefined) expect(d.keyId).toBe(keyId);
        if (d.keyVersion !== undefined && dk.keyVersion !== undefined) expect(d.keyVersion).toBe(dk.keyVersion);
      }
      const junk: unknown[] = [new Uint8Array(0), new Uint8Array(1), new Uint8Array(5000), utf8('junk'), dk.ciphertextBlob.subarray(0, 3), 'str', null, undefined, {}, 42];
      for (const j of junk) expect(() => provider.describeBlob!(j as Uint8Array)).not.toThrow();
    }));

    it('rotation keeps old blobs readable (when the fixture can rotate)', withFixture(async ({ provider, keyId, rotate }) => {
      if (!rotate) return;
      const before = await provider.generateDataKey({ keyId, encryptionContext: ctx });
      await rotate();
      const after = await provider.generateDataKey({ keyId, encryptionContext: ctx });
      if (before.keyVersion !== undefined && after.keyVersion !== undefined) expect(after.keyVersion).not.toBe(before.keyVersion);
      for (const dk of [before, after]) {
        const out = await provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: ctx });
        expect(out.plaintext).toEqual(dk.plaintext);
        expect(out.keyId).toBe(keyId);
      }
    }));

    it('envelope encrypt/decrypt round trip through the provider', withFixture(async ({ provider, keyId, alias }) => {
      const message = utf8('a message sealed through the provider');
      const env = await encrypt(message, { provider, keyId: alias ?? keyId, encryptionContext: ctx });
      const out = await decrypt(env, { provider, encryptionContext: ctx });
      expect(out.plaintext).toEqual(message);
      expect(out.keyId).toBe(keyId);
      await expectCode(() => decrypt(env, { provider, encryptionContext: { ...ctx, tenant: 'x' } }), 'ERR_DECRYPTION_FAILED');
    }));
  });
}
