/**
 * The envelope's use of a master key is its own (SPEC.md §3.2.1, §9.9): every provider call
 * carries the reserved entry "ek:purpose", a provider answer that is not a data key of this
 * suite is a decryption failure, `keyIds` restricts the master keys, and `decrypt` reports the
 * key the provider used. The `ek:` prefix is reserved, and a blind-index key is opened only by
 * `openBlindIndex` (SPEC.md §13).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleAesGcm } from '../src/core/aead/noble.js';
import { PROVIDER_PURPOSE_KEY, PROVIDER_PURPOSE_VALUE, providerContext } from '../src/core/context.js';
import { sealWithDataKey } from '../src/core/envelope.js';
import { parseHeader } from '../src/core/format.js';
import {
  LocalKeyring,
  createBlindIndexKey,
  decrypt,
  decryptFields,
  decryptObject,
  decryptText,
  encrypt,
  encryptFields,
  encryptObject,
  encryptRecords,
  encryptText,
  envelopeToText,
  inspect,
  openBlindIndex,
} from '../src/index.js';
import type { DecryptRequest, GenerateDataKeyRequest, KeyProvider } from '../src/core/provider.js';
import { AlibabaKmsProvider } from '../src/providers/alibaba/index.js';
import { emulator, providerFor } from './alibaba-helpers.js';
import { checkContext, contextArb, expectCode, numRuns, storedIndexKey, utf8 } from './core-helpers.js';

function keyring(): { kr: LocalKeyring; keyId: string } {
  const kr = new LocalKeyring();
  const { keyId } = kr.createKey({ alias: 'alias/app' });
  return { kr, keyId };
}

/**
 * What an attacker builds around a blob of someone else's secret: an envelope whose data key is
 * `guess`, with the blob and the context the secret was wrapped with.
 */
async function envelopeAround(guess: Uint8Array, blob: Uint8Array, providerId: string, keyId: string, context: Record<string, string>): Promise<Uint8Array> {
  const ctx = checkContext(context);
  return await sealWithDataKey(nobleAesGcm, guess, crypto.getRandomValues(new Uint8Array(16)), ctx, [{ providerId, keyId, blob }], utf8('probe'));
}

/** Ten guesses at a 16-digit card number, one of them right. */
const SECRET = '4111111111111111';
const GUESSES = Array.from({ length: 10 }, (_, d) => `411111111111111${d}`);

describe('decrypt is no oracle for other secrets under the same master key (SPEC.md §9.9)', () => {
  it('Alibaba KMS: an Encrypt ciphertext of a 16-byte secret, placed in envelopes built from guesses, never opens', async () => {
    const { kms, keyId } = await emulator();
    const provider = providerFor(kms);
    // Another application encrypts a card number under the same master key, with its own context.
    const other = { app: 'billing' };
    const { ciphertextBlob } = await provider.encrypt({ keyId, plaintext: utf8(SECRET), encryptionContext: other });
    // The blob does hold the secret, for whoever asks with that context: the attack had a target.
    const raw = await provider.decrypt({ ciphertextBlob, encryptionContext: other });
    expect(new TextDecoder().decode(raw.plaintext)).toBe(SECRET);
    for (const guess of GUESSES) {
      const env = await envelopeAround(utf8(guess), ciphertextBlob, provider.providerId, keyId, other);
      await expectCode(() => decrypt(env, { provider }), 'ERR_DECRYPTION_FAILED');
    }
  });

  it('local keyring: a 16-byte key wrapped for another purpose never opens as a data key, whatever the guess', async () => {
    const { kr, keyId } = keyring();
    // generateDataKey called directly, as another component would, without the purpose entry.
    const other = { app: 'tokens' };
    const secret = await kr.generateDataKey({ keyId, numberOfBytes: 16, encryptionContext: other });
    const guesses = [secret.plaintext, ...Array.from({ length: 4 }, () => crypto.getRandomValues(new Uint8Array(16)))];
    for (const guess of guesses) {
      const env = await envelopeAround(guess, secret.ciphertextBlob, 'local', keyId, other);
      await expectCode(() => decrypt(env, { provider: kr }), 'ERR_DECRYPTION_FAILED');
    }
  });

  it('every provider call carries "ek:purpose": "envelope-kit/v1/data-key", which the header does not store', async () => {
    const { kr, keyId } = keyring();
    const seen: Record<string, string>[] = [];
    const spy: KeyProvider = {
      providerId: 'local',
      generateDataKey: (r: GenerateDataKeyRequest) => (seen.push({ ...r.encryptionContext }), kr.generateDataKey(r)),
      decrypt: (r: DecryptRequest) => (seen.push({ ...r.encryptionContext }), kr.decrypt(r)),
    };
    const env = await encrypt(utf8('x'), { provider: spy, keyId, encryptionContext: { table: 'users' } });
    await decrypt(env, { provider: spy });
    expect(seen).toEqual([
      { table: 'users', [PROVIDER_PURPOSE_KEY]: PROVIDER_PURPOSE_VALUE },
      { table: 'users', [PROVIDER_PURPOSE_KEY]: PROVIDER_PURPOSE_VALUE },
    ]);
    expect(inspect(env).encryptionContext).toEqual({ table: 'users' });
    expect(PROVIDER_PURPOSE_VALUE).toBe('envelope-kit/v1/data-key');
  });

  it('a provider answer that is not 16 or 32 bytes is a decryption failure, not a provider error', async () => {
    const { kr, keyId } = keyring();
    const env = await encrypt(utf8('x'), { provider: kr, keyId });
    for (const n of [0, 1, 15, 17, 24, 31, 33, 64]) {
      const odd: KeyProvider = {
        providerId: 'local',
        generateDataKey: (r) => kr.generateDataKey(r),
        decrypt: async (r) => ({ keyId: (await kr.decrypt(r)).keyId, plaintext: new Uint8Array(n) }),
      };
      await expectCode(() => decrypt(env, { provider: odd }), 'ERR_DECRYPTION_FAILED');
    }
  });
});

describe('the key id decrypt reports (SPEC.md §9.4)', () => {
  it('is the key the provider used, not the one written in the header', async () => {
    const { kr, keyId } = keyring();
    const ctx = checkContext({ t: '1' });
    const dk = await kr.generateDataKey({ keyId, encryptionContext: providerContext(ctx).map });
    // The header names another key than the one that wrapped the blob.
    const env = await sealWithDataKey(nobleAesGcm, dk.plaintext, crypto.getRandomValues(new Uint8Array(16)), ctx, [{ providerId: 'local', keyId: 'claimed-key', blob: dk.ciphertextBlob }], utf8('x'));
    expect(inspect(env).encryptedDataKeys[0]!.keyId).toBe('claimed-key');
    expect((await decrypt(env, { provider: kr })).keyId).toBe(keyId);
    // An allow-list of the claimed key does not let it through: it is checked against the answer.
    await expectCode(() => decrypt(env, { provider: kr, keyIds: ['claimed-key'] }), 'ERR_DECRYPTION_FAILED');
    expect((await decrypt(env, { provider: kr, keyIds: [keyId] })).keyId).toBe(keyId);
  });

  it('a decrypt answer that does not name a valid key id is a provider error (the contract requires it)', async () => {
    const { kr, keyId } = keyring();
    const env = await encrypt(utf8('x'), { provider: kr, keyId });
    for (const answered of [undefined, '', 42, '\ud800', 'k'.repeat(2049)]) {
      const p: KeyProvider = {
        providerId: 'local',
        generateDataKey: (r) => kr.generateDataKey(r),
        decrypt: async (r) => ({ plaintext: (await kr.decrypt(r)).plaintext, keyId: answered as string }),
      };
      await expectCode(() => decrypt(env, { provider: p }), 'ERR_PROVIDER');
    }
  });
});

describe('keyIds: the master keys decrypt may use', () => {
  it('accepts an envelope of a listed key and refuses any other, in every decrypting call', async () => {
    const { kr, keyId } = keyring();
    const { keyId: otherKey } = kr.createKey();
    const env = await encrypt(utf8('x'), { provider: kr, keyId });
    expect((await decrypt(env, { provider: kr, keyIds: [otherKey, keyId] })).keyId).toBe(keyId);
    await expectCode(() => decrypt(env, { provider: kr, keyIds: [otherKey] }), 'ERR_DECRYPTION_FAILED');
    const text = await encryptObject({ a: 1 }, { provider: kr, keyId });
    await expectCode(() => decryptObject(text, { provider: kr, keyIds: [otherKey] }), 'ERR_DECRYPTION_FAILED');
    const row = await encryptFields({ email: 'a@b' }, { provider: kr, keyId, fields: ['email'] });
    await expectCode(() => decryptFields(row, { provider: kr, fields: ['email'], keyIds: [otherKey] } as never), 'ERR_DECRYPTION_FAILED');
    expect(await decryptFields(row, { provider: kr, fields: ['email'], keyIds: [keyId] } as never)).toEqual({ email: 'a@b' });
    const stored = await createBlindIndexKey({ provider: kr, keyId, name: 'users.email' });
    await expectCode(() => openBlindIndex(stored, { provider: kr, name: 'users.email', keyIds: [otherKey] }), 'ERR_DECRYPTION_FAILED');
  });

  it('must be a non-empty array of key ids, never aliases', async () => {
    const { kr, keyId } = keyring();
    const env = await encrypt(utf8('x'), { provider: kr, keyId });
    for (const bad of [[], 'k', [''], [42], ['alias/app'], Array.from({ length: 257 }, (_, i) => `k${i}`), new Proxy([], { get: () => { throw new Error('x'); } })]) {
      await expectCode(() => decrypt(env, { provider: kr, keyIds: bad as never }), 'ERR_INVALID_PARAMETER');
    }
  });

  it('property: decrypt succeeds exactly when the key that encrypted is listed', async () => {
    const { kr } = keyring();
    const ids = [kr.createKey().keyId, kr.createKey().keyId, kr.createKey().keyId];
    await fc.assert(
      fc.asyncProperty(fc.nat(2), fc.subarray(ids, { minLength: 1 }), async (which, allowed) => {
        const env = await encrypt(utf8('p'), { provider: kr, keyId: ids[which]! });
        const r = decrypt(env, { provider: kr, keyIds: allowed });
        if (allowed.includes(ids[which]!)) expect((await r).keyId).toBe(ids[which]);
        else await expectCode(() => r, 'ERR_DECRYPTION_FAILED');
      }),
      { numRuns: numRuns(30) },
    );
  });
});

describe('the "ek:" prefix is reserved (SPEC.md §3.2.1)', () => {
  it('no call of the envelope or records API takes a context with an "ek:" key', async () => {
    const { kr, keyId } = keyring();
    const env = await encrypt(utf8('x'), { provider: kr, keyId });
    const text = envelopeToText(env);
    const row = await encryptFields({ a: 'x' }, { provider: kr, keyId, fields: ['a'] });
    const reserved: Record<string, string>[] = [{ 'ek:blind-index': 'users.email' }, { 'ek:purpose': PROVIDER_PURPOSE_VALUE }, { 'ek:': '' }, { ok: '1', 'ek:x': 'y' }];
    for (const ctx of reserved) {
      await expectCode(() => encrypt(utf8('x'), { provider: kr, keyId, encryptionContext: ctx }), 'ERR_INVALID_PARAMETER');
      await expectCode(() => encryptText(utf8('x'), { provider: kr, keyId, encryptionContext: ctx }), 'ERR_INVALID_PARAMETER');
      await expectCode(() => decrypt(env, { provider: kr, encryptionContext: ctx }), 'ERR_INVALID_PARAMETER');
      await expectCode(() => decryptText(text, { provider: kr, encryptionContext: ctx }), 'ERR_INVALID_PARAMETER');
      await expectCode(() => encryptObject(1, { provider: kr, keyId, encryptionContext: ctx }), 'ERR_INVALID_PARAMETER');
      await expectCode(() => decryptObject(text, { provider: kr, encryptionContext: ctx }), 'ERR_INVALID_PARAMETER');
      await expectCode(() => encryptFields({ a: 'x' }, { provider: kr, keyId, fields: ['a'], encryptionContext: ctx }), 'ERR_INVALID_PARAMETER');
      await expectCode(() => decryptFields(row, { provider: kr, fields: ['a'], encryptionContext: ctx }), 'ERR_INVALID_PARAMETER');
      // A batch checks its options once, before any record: the whole call is refused.
      await expectCode(() => encryptRecords([{ a: 'x' }], { provider: kr, keyId, fields: ['a'], encryptionContext: ctx }), 'ERR_INVALID_PARAMETER');
    }
    // Only the exact prefix: "EK:", "ek" and "e:k" are ordinary keys.
    const ordinary: Record<string, string>[] = [{ 'EK:x': '1' }, { ek: '1' }, { 'e:k': '1' }, { 'ekx:': '1' }];
    for (const ctx of ordinary) {
      const e = await encrypt(utf8('x'), { provider: kr, keyId, encryptionContext: ctx });
      expect((await decrypt(e, { provider: kr, encryptionContext: ctx })).encryptionContext).toEqual(ctx);
    }
  });

  it('an envelope whose header holds a reserved key is not opened as a message', async () => {
    const { kr, keyId } = keyring();
    const ctx = checkContext({ 'ek:other': 'x' });
    const dk = await kr.generateDataKey({ keyId, encryptionContext: providerContext(ctx).map });
    const env = await sealWithDataKey(nobleAesGcm, dk.plaintext, crypto.getRandomValues(new Uint8Array(16)), ctx, [{ providerId: 'local', keyId, blob: dk.ciphertextBlob }], utf8('x'));
    await expectCode(() => decrypt(env, { provider: kr }), 'ERR_MALFORMED_ENVELOPE');
    expect(inspect(env).encryptionContext).toEqual({ 'ek:other': 'x' });
  });
});

describe('blind-index keys are opened by openBlindIndex only (SPEC.md §13)', () => {
  it('plain decryptText refuses a stored index key, and plain encrypt cannot mint one', async () => {
    const { kr, keyId } = keyring();
    const stored = await createBlindIndexKey({ provider: kr, keyId, name: 'users.email' });
    expect(inspect(stored).encryptionContext).toEqual({ 'ek:blind-index': 'users.email' });
    await expectCode(() => decryptText(stored, { provider: kr }), 'ERR_MALFORMED_ENVELOPE');
    await expectCode(() => decryptObject(stored, { provider: kr }), 'ERR_MALFORMED_ENVELOPE');
    await expectCode(
      () => encrypt(new Uint8Array(32), { provider: kr, keyId, encryptionContext: { 'ek:blind-index': 'users.email' } }),
      'ERR_INVALID_PARAMETER',
    );
    const index = await openBlindIndex(stored, { provider: kr, name: 'users.email' });
    expect(index.compute('a@b')).toMatch(/^[A-Za-z0-9_-]{11}$/);
    index.destroy();
  });

  it('the context must be exactly {"ek:blind-index": name}: an extra entry, another name or none is refused', async () => {
    const { kr, keyId } = keyring();
    const key = crypto.getRandomValues(new Uint8Array(32));
    const good = await storedIndexKey(kr, keyId, 'users.email', key);
    (await openBlindIndex(good, { provider: kr, name: 'users.email' })).destroy();
    await expectCode(() => openBlindIndex(good, { provider: kr, name: 'users.phone' }), 'ERR_DECRYPTION_FAILED');
    // One entry more than the binding.
    const ctx = checkContext({ 'ek:blind-index': 'users.email', tenant: 'acme' });
    const dk = await kr.generateDataKey({ keyId, encryptionContext: providerContext(ctx).map });
    const extra = envelopeToText(
      await sealWithDataKey(nobleAesGcm, dk.plaintext, crypto.getRandomValues(new Uint8Array(16)), ctx, [{ providerId: 'local', keyId, blob: dk.ciphertextBlob }], key),
    );
    await expectCode(() => openBlindIndex(extra, { provider: kr, name: 'users.email' }), 'ERR_DECRYPTION_FAILED');
    // An ordinary envelope of 32 bytes.
    const plain = await encryptText(key, { provider: kr, keyId });
    await expectCode(() => openBlindIndex(plain, { provider: kr, name: 'users.email' }), 'ERR_DECRYPTION_FAILED');
  });

  it('works the same through a KMS', async () => {
    const { kms, keyId } = await emulator();
    const provider: AlibabaKmsProvider = providerFor(kms);
    const stored = await createBlindIndexKey({ provider, keyId, name: 'users.email' });
    await expectCode(() => decryptText(stored, { provider }), 'ERR_MALFORMED_ENVELOPE');
    (await openBlindIndex(stored, { provider, name: 'users.email' })).destroy();
  });
});

describe('what the documents promise', () => {
  it('SPEC.md §9.3: whoever can unwrap one envelope\u2019s data key can write new envelopes with its blob and context', async () => {
    const { kr, keyId } = keyring();
    const original = await encrypt(utf8('pay 10'), { provider: kr, keyId, encryptionContext: { tenant: 'acme' } });
    // Someone allowed to call the provider's decrypt on the blob (with its context) gets the data key...
    const info = inspect(original);
    const ctx = checkContext(info.encryptionContext);
    const edk = sealedEdk(original);
    const { plaintext: dataKey } = await kr.decrypt({ ciphertextBlob: edk.blob, encryptionContext: providerContext(ctx).map });
    // ...and writes a new envelope with the same blob and context, holding anything.
    const forged = await sealWithDataKey(nobleAesGcm, dataKey, crypto.getRandomValues(new Uint8Array(16)), ctx, [edk], utf8('pay 1000'));
    const r = await decrypt(forged, { provider: kr, encryptionContext: { tenant: 'acme' }, keyIds: [keyId] });
    expect(new TextDecoder().decode(r.plaintext)).toBe('pay 1000');
    // The spec says so plainly.
    const spec = readFileSync(new URL('../SPEC.md', import.meta.url), 'utf8');
    const s93 = spec.slice(spec.indexOf('### 9.3'), spec.indexOf('### 9.4'));
    expect(s93).toContain('can write any number of new envelopes with the same\n  blob and the same context');
    expect(s93).not.toContain('proves that the envelope was made');
  });

  it('SPEC.md §2–§5 give every core string limit in bytes (characters only where the text is ASCII)', () => {
    const spec = readFileSync(new URL('../SPEC.md', import.meta.url), 'utf8');
    const core = spec.slice(spec.indexOf('## 2. Overview'), spec.indexOf('## 6. '));
    for (const line of core.split('\n').filter((l) => /characters/.test(l))) {
      expect(line, line).toMatch(/ASCII|2\^29/);
    }
    expect(core).toContain('| key id or alias argument | 1..2048 UTF-8 bytes');
  });

  it('the code counts those limits in UTF-8 bytes, not in characters or UTF-16 units', async () => {
    const { kr, keyId } = keyring();
    const euro = '\u20ac'; // 3 bytes of UTF-8, 1 UTF-16 unit
    // Key ids: 2048 bytes is the limit (682 euro signs and 2 ASCII bytes = 2048; one more byte is over).
    const atLimit = euro.repeat(682) + 'ab';
    await expectCode(() => encrypt(utf8('x'), { provider: kr, keyId: atLimit }), 'ERR_KEY_NOT_FOUND');
    await expectCode(() => encrypt(utf8('x'), { provider: kr, keyId: atLimit + 'c' }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => encrypt(utf8('x'), { provider: kr, keyId: euro.repeat(700) }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => decrypt(new Uint8Array(200), { provider: kr, keyIds: [euro.repeat(700)] }), 'ERR_INVALID_PARAMETER');
    // Context keys: 256 bytes; values: 2048 bytes.
    const ok = { [euro.repeat(85) + 'a']: euro.repeat(682) + 'ab' };
    const env = await encrypt(utf8('x'), { provider: kr, keyId, encryptionContext: ok });
    expect((await decrypt(env, { provider: kr, encryptionContext: ok })).encryptionContext).toEqual(ok);
    await expectCode(() => encrypt(utf8('x'), { provider: kr, keyId, encryptionContext: { [euro.repeat(86)]: '' } }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => encrypt(utf8('x'), { provider: kr, keyId, encryptionContext: { k: euro.repeat(683) } }), 'ERR_INVALID_PARAMETER');
  });
});

/** The one encrypted data key of an envelope, as stored. */
function sealedEdk(envelope: Uint8Array): { providerId: string; keyId: string; blob: Uint8Array } {
  const { header } = parseHeader(envelope);
  return header.encryptedDataKeys[0]!;
}

describe('properties of the reserved keys and the provider context', () => {
  it('the provider context is the context plus the purpose entry, in canonical byte order, for any context', () => {
    fc.assert(
      fc.property(contextArb, (ctx) => {
        const checked = checkContext(ctx);
        const p = providerContext(checked);
        expect({ ...p.map }).toEqual({ ...checked.map, [PROVIDER_PURPOSE_KEY]: PROVIDER_PURPOSE_VALUE });
        expect(p.entries).toHaveLength(checked.entries.length + 1);
        for (let i = 1; i < p.entries.length; i++) expect(Buffer.compare(Buffer.from(p.entries[i - 1]![0]), Buffer.from(p.entries[i]![0]))).toBe(-1);
        // The entries (what is encoded) hold exactly the map's keys.
        expect(p.entries.map(([k]) => new TextDecoder().decode(k)).sort()).toEqual(Object.keys(p.map).sort());
      }),
      { numRuns: numRuns(200) },
    );
  });

  it('an envelope without a context, written and read, uses the one provider context of the empty context', async () => {
    const a = providerContext(checkContext({}));
    expect(providerContext(checkContext(undefined))).toBe(a);
    expect(Object.isFrozen(a.map)).toBe(true);
    expect({ ...a.map }).toEqual({ [PROVIDER_PURPOSE_KEY]: PROVIDER_PURPOSE_VALUE });
    expect(checkContext(a.map)).toBe(a);
    // An envelope without a context reads back the shared (frozen, empty) context, so the provider
    // gets the shared provider context on decryption too; one with a context gets one of its own.
    const { kr, keyId } = keyring();
    const seen: object[] = [];
    const spy = { providerId: 'local', generateDataKey: (r: GenerateDataKeyRequest) => (seen.push(r.encryptionContext!), kr.generateDataKey(r)), decrypt: (r: DecryptRequest) => (seen.push(r.encryptionContext!), kr.decrypt(r)) };
    const env = await encrypt(utf8('x'), { provider: spy, keyId });
    const back = await decrypt(env, { provider: spy });
    expect(back.encryptionContext).toEqual({});
    expect(Object.isFrozen(back.encryptionContext)).toBe(true);
    expect(seen).toEqual([a.map, a.map]);
    expect(seen[0]).toBe(a.map);
    expect(seen[1]).toBe(a.map);
    await decrypt(await encrypt(utf8('x'), { provider: spy, keyId, encryptionContext: { t: 'u' } }), { provider: spy });
    expect(seen[2]).not.toBe(a.map);
    expect({ ...seen[3] }).toEqual({ t: 'u', [PROVIDER_PURPOSE_KEY]: PROVIDER_PURPOSE_VALUE });
  });

  it('any context with an "ek:" key is refused by encrypt, and any other round-trips', async () => {
    const { kr, keyId } = keyring();
    await fc.assert(
      fc.asyncProperty(contextArb.filter((c) => Object.keys(c).length < 64), fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), async (ctx, suffix, value) => {
        await expectCode(() => encrypt(utf8('x'), { provider: kr, keyId, encryptionContext: { ...ctx, [`ek:${suffix}`]: value } }), 'ERR_INVALID_PARAMETER');
        const env = await encrypt(utf8('x'), { provider: kr, keyId, encryptionContext: ctx });
        expect({ ...(await decrypt(env, { provider: kr, encryptionContext: ctx })).encryptionContext }).toEqual({ ...ctx });
      }),
      { numRuns: numRuns(40) },
    );
  });
});
