/**
 * The provider contract (src/core/provider.ts), as one suite every provider runs: the local keyring,
 * the Alibaba provider on its emulator, the AWS provider on its emulator, PKCS#11 on SoftHSM2.
 *
 * Usage, in `test/contract/<provider>.test.ts`:
 *
 * ```ts
 * providerContract('local keyring', async () => {
 *   const kr = new LocalKeyring();
 *   return { provider: kr, keyId: kr.createKey({ alias: 'alias/app' }).keyId, alias: 'alias/app', otherKeyId: kr.createKey().keyId,
 *            disable: async (id) => kr.disableKey(id), rotate: async (id) => void kr.rotateKey(id) };
 * });
 * ```
 *
 * `setup` runs before each case and gives a fresh provider with two usable master keys. Optional
 * hooks turn on the cases that need them: `alias` (an alias of `keyId`), `disable(keyId)` (after
 * which the key is disabled), `rotate(keyId)` (a new key version), `teardown`. The optional
 * operations (`encrypt`, `reEncrypt`, `describeBlob`) are tested when the provider has them; a
 * provider that says it offers them (`expect`) fails when it does not.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  DecryptionFailedError,
  EnvelopeKitError,
  InvalidParameterError,
  KeyDisabledError,
  KeyNotFoundError,
  type KeyProvider,
  decrypt,
  encrypt,
} from '../../src/index.js';

/** What a provider's set-up gives the suite. */
export interface ContractSetup {
  readonly provider: KeyProvider;
  /** A usable master key (id, as the provider reports resolved ids). */
  readonly keyId: string;
  /** A second usable master key. */
  readonly otherKeyId: string;
  /** An alias of `keyId`, if the provider has aliases. */
  readonly alias?: string;
  /** A key id of the provider's form that names no key. Default: derived from `keyId`. */
  readonly missingKeyId?: string;
  /** Disable a key (then `generateDataKey` and `decrypt` under it give KeyDisabledError). */
  readonly disable?: (keyId: string) => Promise<void>;
  /** Add a key version (old blobs must still decrypt). */
  readonly rotate?: (keyId: string) => Promise<void>;
  /** Which optional operations the provider must offer. */
  readonly expect?: { readonly encrypt?: boolean; readonly reEncrypt?: boolean };
  /** Bytes that must never appear in an error message (e.g. a secret the provider was configured with). */
  readonly secrets?: readonly Uint8Array[];
  readonly teardown?: () => Promise<void>;
}

const PURPOSE = { 'ek:purpose': 'envelope-kit/v1/data-key' };
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The error a promise rejects with (fails when it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** No error's message (or its causes' messages) holds any of these bytes, as hex or as base64. */
function expectNoSecret(err: unknown, secrets: readonly Uint8Array[]): void {
  let text = '';
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    text += `${String((e as Error).message)} ${String((e as Error).stack)}`;
  }
  for (const s of secrets) {
    if (s.length < 8) continue;
    expect(text).not.toContain(hex(s));
    expect(text).not.toContain(Buffer.from(s).toString('base64'));
  }
}

/** Flip one bit of each byte position in turn (a few positions across the blob). */
function flips(blob: Uint8Array): Uint8Array[] {
  const at = [0, 1, Math.floor(blob.length / 2), blob.length - 17, blob.length - 1].filter((i, k, a) => i >= 0 && i < blob.length && a.indexOf(i) === k);
  return at.map((i) => {
    const b = blob.slice();
    b[i]! ^= 0x01;
    return b;
  });
}

/** Define the contract cases for one provider. */
export function providerContract(name: string, setup: () => Promise<ContractSetup>): void {
  describe(`provider contract: ${name}`, () => {
    let current: ContractSetup | undefined;
    const get = async (): Promise<ContractSetup> => (current = await setup());
    afterEach(async () => {
      await current?.teardown?.();
      current = undefined;
    });

    it('has a valid providerId', async () => {
      const { provider } = await get();
      expect(provider.providerId).toMatch(/^[a-z0-9._-]{1,64}$/);
    });

    it('generateDataKey: AES_256 by default, AES_128, numberOfBytes 1 and 1024 (which wins over keySpec), fresh keys each call', async () => {
      const { provider, keyId } = await get();
      const a = await provider.generateDataKey({ keyId });
      expect(a.plaintext).toBeInstanceOf(Uint8Array);
      expect(a.plaintext.length).toBe(32);
      expect(a.ciphertextBlob.length).toBeGreaterThan(0);
      expect(a.ciphertextBlob.length).toBeLessThanOrEqual(4096);
      expect(a.keyId.length).toBeGreaterThan(0);
      expect((await provider.generateDataKey({ keyId, keySpec: 'AES_128' })).plaintext.length).toBe(16);
      expect((await provider.generateDataKey({ keyId, numberOfBytes: 1 })).plaintext.length).toBe(1);
      expect((await provider.generateDataKey({ keyId, numberOfBytes: 1024, keySpec: 'AES_128' })).plaintext.length).toBe(1024);
      const b = await provider.generateDataKey({ keyId });
      expect(hex(a.plaintext)).not.toBe(hex(b.plaintext));
      expect(hex(a.ciphertextBlob)).not.toBe(hex(b.ciphertextBlob));
    });

    it('generateDataKey through an alias answers the resolved key id, never the alias', async () => {
      const s = await get();
      if (!s.alias) return;
      const viaAlias = await s.provider.generateDataKey({ keyId: s.alias });
      const direct = await s.provider.generateDataKey({ keyId: s.keyId });
      expect(viaAlias.keyId).toBe(direct.keyId);
      expect(viaAlias.keyId.startsWith('alias/')).toBe(false);
    });

    it('decrypt returns the data key and names the key that unwrapped it', async () => {
      const { provider, keyId } = await get();
      const dk = await provider.generateDataKey({ keyId, encryptionContext: { tenant: 'acme', ...PURPOSE } });
      const back = await provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { ...PURPOSE, tenant: 'acme' } });
      expect(hex(back.plaintext)).toBe(hex(dk.plaintext));
      expect(back.keyId).toBe(dk.keyId);
    });

    it('the context is a map: order does not matter; another, a missing or an extra entry fails with DecryptionFailedError', async () => {
      const { provider, keyId } = await get();
      const ctx = { a: '1', b: '2', ...PURPOSE };
      const dk = await provider.generateDataKey({ keyId, encryptionContext: ctx });
      const reordered = Object.fromEntries(Object.entries(ctx).reverse());
      expect(hex((await provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: reordered })).plaintext)).toBe(hex(dk.plaintext));
      for (const wrong of [{ a: '1', b: '3', ...PURPOSE }, { a: '1', ...PURPOSE }, { ...ctx, c: '' }, {}, undefined]) {
        const e = await rejection(provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, ...(wrong ? { encryptionContext: wrong } : {}) }));
        expect(e).toBeInstanceOf(DecryptionFailedError);
      }
    });

    it('a changed blob fails with DecryptionFailedError (or, where the change hits the key reference, KeyNotFoundError), never a result', async () => {
      const { provider, keyId } = await get();
      const dk = await provider.generateDataKey({ keyId, encryptionContext: PURPOSE });
      for (const blob of flips(dk.ciphertextBlob)) {
        const e = await rejection(provider.decrypt({ ciphertextBlob: blob, encryptionContext: PURPOSE }));
        expect(e).toBeInstanceOf(EnvelopeKitError);
        expect([DecryptionFailedError, KeyNotFoundError, InvalidParameterError].some((c) => e instanceof c)).toBe(true);
        expectNoSecret(e, [dk.plaintext]);
      }
    });

    it('an unknown key is KeyNotFoundError', async () => {
      const s = await get();
      const missing = s.missingKeyId ?? `${s.keyId.slice(0, -1)}${s.keyId.endsWith('0') ? '1' : '0'}-missing`;
      expect(await rejection(s.provider.generateDataKey({ keyId: missing }))).toBeInstanceOf(KeyNotFoundError);
    });

    it('a disabled key is KeyDisabledError on generateDataKey and on decrypt', async () => {
      const s = await get();
      if (!s.disable) return;
      const dk = await s.provider.generateDataKey({ keyId: s.otherKeyId, encryptionContext: PURPOSE });
      await s.disable(s.otherKeyId);
      expect(await rejection(s.provider.generateDataKey({ keyId: s.otherKeyId }))).toBeInstanceOf(KeyDisabledError);
      expect(await rejection(s.provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: PURPOSE }))).toBeInstanceOf(KeyDisabledError);
    });

    it('bad parameters are InvalidParameterError before any work', async () => {
      const { provider, keyId } = await get();
      const bad: unknown[] = [
        null,
        'x',
        {},
        { keyId: '' },
        { keyId: 42 },
        { keyId, keySpec: 'AES_512' },
        { keyId, numberOfBytes: 0 },
        { keyId, numberOfBytes: 1025 },
        { keyId, numberOfBytes: 1.5 },
        { keyId, encryptionContext: { a: 1 } },
        { keyId, encryptionContext: 'a=b' },
      ];
      for (const r of bad) expect(await rejection(provider.generateDataKey(r as never)), JSON.stringify(r)).toBeInstanceOf(InvalidParameterError);
      for (const r of [null, {}, { ciphertextBlob: 'AAAA' }, { ciphertextBlob: new Uint8Array(0) }, { ciphertextBlob: new Uint8Array(10), encryptionContext: { a: 1 } }]) {
        expect(await rejection(provider.decrypt(r as never)), JSON.stringify(r)).toBeInstanceOf(InvalidParameterError);
      }
    });

    it('accepts reserved ek: entries (up to 4 besides 64 ordinary ones) and binds them like any other', async () => {
      const { provider, keyId } = await get();
      const ctx: Record<string, string> = { ...PURPOSE, 'ek:blind-index': 'users.email' };
      for (let i = 0; i < 64; i++) ctx[`k${i}`] = `v${i}`;
      const dk = await provider.generateDataKey({ keyId, encryptionContext: ctx });
      expect(hex((await provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: ctx })).plaintext)).toBe(hex(dk.plaintext));
      const { 'ek:blind-index': _dropped, ...without } = ctx;
      expect(await rejection(provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: without }))).toBeInstanceOf(DecryptionFailedError);
    });

    it('rotation keeps older blobs readable', async () => {
      const s = await get();
      if (!s.rotate) return;
      const before = await s.provider.generateDataKey({ keyId: s.keyId, encryptionContext: PURPOSE });
      await s.rotate(s.keyId);
      const after = await s.provider.generateDataKey({ keyId: s.keyId, encryptionContext: PURPOSE });
      for (const dk of [before, after]) {
        expect(hex((await s.provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: PURPOSE })).plaintext)).toBe(hex(dk.plaintext));
      }
    });

    it('encrypt (when offered) wraps given bytes, bound to the context, opened by decrypt', async () => {
      const s = await get();
      if (s.expect?.encrypt) expect(typeof s.provider.encrypt).toBe('function');
      if (!s.provider.encrypt) return;
      const key = new Uint8Array(32).map((_, i) => i * 7);
      const given = key.slice();
      const w = await s.provider.encrypt({ keyId: s.alias ?? s.keyId, plaintext: given, encryptionContext: { t: 'x', ...PURPOSE } });
      expect(w.keyId.startsWith('alias/')).toBe(false);
      expect(w.ciphertextBlob.length).toBeGreaterThan(0);
      const back = await s.provider.decrypt({ ciphertextBlob: w.ciphertextBlob, encryptionContext: { ...PURPOSE, t: 'x' } });
      expect(hex(back.plaintext)).toBe(hex(key));
      expect(back.keyId).toBe(w.keyId);
      expect(await rejection(s.provider.decrypt({ ciphertextBlob: w.ciphertextBlob, encryptionContext: PURPOSE }))).toBeInstanceOf(DecryptionFailedError);
      for (const r of [{ keyId: s.keyId }, { keyId: s.keyId, plaintext: new Uint8Array(0) }, { keyId: '', plaintext: key }]) {
        expect(await rejection(s.provider.encrypt(r as never))).toBeInstanceOf(InvalidParameterError);
      }
    });

    it('reEncrypt (when offered) moves a blob to another key: the new blob opens under the destination context and names the destination key', async () => {
      const s = await get();
      if (s.expect?.reEncrypt) expect(typeof s.provider.reEncrypt).toBe('function');
      if (!s.provider.reEncrypt) return;
      const dk = await s.provider.generateDataKey({ keyId: s.keyId, encryptionContext: { from: 'a', ...PURPOSE } });
      const moved = await s.provider.reEncrypt({
        ciphertextBlob: dk.ciphertextBlob,
        sourceEncryptionContext: { from: 'a', ...PURPOSE },
        destinationKeyId: s.otherKeyId,
        destinationEncryptionContext: { to: 'b', ...PURPOSE },
      });
      const direct = await s.provider.generateDataKey({ keyId: s.otherKeyId });
      expect(moved.keyId).toBe(direct.keyId);
      const back = await s.provider.decrypt({ ciphertextBlob: moved.ciphertextBlob, encryptionContext: { to: 'b', ...PURPOSE } });
      expect(hex(back.plaintext)).toBe(hex(dk.plaintext));
      expect(back.keyId).toBe(direct.keyId);
      expect(await rejection(s.provider.decrypt({ ciphertextBlob: moved.ciphertextBlob, encryptionContext: { from: 'a', ...PURPOSE } }))).toBeInstanceOf(DecryptionFailedError);
      // The source context is checked as decrypt checks it.
      expect(
        await rejection(s.provider.reEncrypt({ ciphertextBlob: dk.ciphertextBlob, sourceEncryptionContext: PURPOSE, destinationKeyId: s.otherKeyId, destinationEncryptionContext: PURPOSE })),
      ).toBeInstanceOf(DecryptionFailedError);
      // To the same key: a blob of its newest version, the same data key.
      const same = await s.provider.reEncrypt({ ciphertextBlob: dk.ciphertextBlob, sourceEncryptionContext: { from: 'a', ...PURPOSE }, destinationKeyId: s.keyId, destinationEncryptionContext: PURPOSE });
      expect(hex((await s.provider.decrypt({ ciphertextBlob: same.ciphertextBlob, encryptionContext: PURPOSE })).plaintext)).toBe(hex(dk.plaintext));
    });

    it('describeBlob (when offered) never throws, and names the key of its own blobs when it can read them', async () => {
      const s = await get();
      if (!s.provider.describeBlob) return;
      for (const junk of [new Uint8Array(0), new Uint8Array(1), new Uint8Array(4096).fill(0xff), 'x' as never, null as never]) {
        expect(() => s.provider.describeBlob!(junk)).not.toThrow();
      }
      const dk = await s.provider.generateDataKey({ keyId: s.keyId });
      const d = s.provider.describeBlob(dk.ciphertextBlob);
      if (d?.keyId !== undefined) expect(d.keyId).toBe(dk.keyId);
    });

    it('no error message holds the data key', async () => {
      const { provider, keyId, secrets = [] } = await get();
      const dk = await provider.generateDataKey({ keyId, encryptionContext: PURPOSE });
      const errors = [
        await rejection(provider.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { other: 'x' } })),
        await rejection(provider.decrypt({ ciphertextBlob: flips(dk.ciphertextBlob)[0]!, encryptionContext: PURPOSE })),
      ];
      for (const e of errors) expectNoSecret(e, [dk.plaintext, ...secrets]);
    });

    it('envelopes round-trip through the provider, and through two recipients when it can wrap given keys', async () => {
      const s = await get();
      const pt = new TextEncoder().encode('contract');
      const env = await encrypt(pt, { provider: s.provider, keyId: s.keyId, encryptionContext: { t: 'c' } });
      expect(new TextDecoder().decode((await decrypt(env, { provider: s.provider, encryptionContext: { t: 'c' } })).plaintext)).toBe('contract');
      if (!s.provider.encrypt) return;
      const two = await encrypt(pt, { recipients: [{ provider: s.provider, keyId: s.keyId }, { provider: s.provider, keyId: s.otherKeyId }] });
      const other = await s.provider.generateDataKey({ keyId: s.otherKeyId });
      expect((await decrypt(two, { provider: s.provider, keyIds: [other.keyId] })).keyId).toBe(other.keyId);
    });
  });
}
