/**
 * The data-key cache (src/cache/data-key-cache.ts, SPEC.md §9.10): limits, partitions, single
 * flight, refresh ahead, stale serving, hygiene and counters, through the public API.
 */
import { inspect as nodeInspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  type DataKey,
  type DataKeyCacheOptions,
  type DecryptRequest,
  type DecryptedDataKey,
  type GenerateDataKeyRequest,
  type KeyProvider,
  DecryptionFailedError,
  KeyDisabledError,
  LocalKeyring,
  ProviderError,
  decrypt,
  decryptObject,
  decryptFields,
  decryptObjects,
  encrypt,
  encryptFields,
  encryptObject,
  encryptObjects,
  inspect,
  withDataKeyCache,
} from '../src/index.js';
import { runs } from './helpers.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A provider over a local keyring that records every call and every key it hands out, and fails on command. */
class SpyProvider implements KeyProvider {
  readonly providerId = 'local';
  readonly keyring = new LocalKeyring();
  readonly keyId = this.keyring.createKey({ alias: 'alias/app' }).keyId;
  readonly generated: { request: GenerateDataKeyRequest; answer: DataKey }[] = [];
  readonly decrypted: { request: DecryptRequest; answer: DecryptedDataKey }[] = [];
  generateCalls = 0;
  decryptCalls = 0;
  /** The next calls fail with these errors, in order. */
  readonly failures: unknown[] = [];
  /** Every call waits this long first (ms). */
  delay = 0;
  /** When set, every call waits for it first. */
  gate: Promise<void> | undefined;

  async generateDataKey(request: GenerateDataKeyRequest): Promise<DataKey> {
    this.generateCalls++;
    if (this.delay) await new Promise((r) => setTimeout(r, this.delay));
    if (this.failures.length) throw this.failures.shift();
    const answer = await this.keyring.generateDataKey(request);
    this.generated.push({ request, answer });
    return answer;
  }

  async decrypt(request: DecryptRequest): Promise<DecryptedDataKey> {
    this.decryptCalls++;
    if (this.delay) await new Promise((r) => setTimeout(r, this.delay));
    if (this.gate) await this.gate;
    if (this.failures.length) throw this.failures.shift();
    const answer = await this.keyring.decrypt(request);
    this.decrypted.push({ request, answer });
    return answer;
  }
}

/** A clock the test moves. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const retryable = (): ProviderError => new ProviderError('KMS is throttling', { retryable: true });
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

/** The hex of the blob in an envelope's first EDK (the data key it was sealed with). */
function blobOf(envelope: Uint8Array): string {
  const info = inspect(envelope);
  const edk = info.encryptedDataKeys[0]!;
  // inspect reports blob lengths only; the blob bytes end at the commitment (32 bytes before the body).
  const end = info.headerLength - 32;
  return hex(envelope.subarray(end - edk.blobLength, end));
}

describe('withDataKeyCache: encrypt side', () => {
  it('serves one data key for maxMessages envelopes, then asks for another', async () => {
    const spy = new SpyProvider();
    const cache = withDataKeyCache(spy, { maxAge: 60_000, maxMessages: 100 });
    const envelopes: Uint8Array[] = [];
    for (let i = 0; i < 250; i++) envelopes.push(await encrypt(utf8(`row ${i}`), { provider: cache, keyId: spy.keyId }));
    expect(spy.generateCalls).toBe(3);
    const perKey = new Map<string, number>();
    for (const e of envelopes) perKey.set(blobOf(e), (perKey.get(blobOf(e)) ?? 0) + 1);
    expect([...perKey.values()]).toEqual([100, 100, 50]);
    // Every envelope has its own message id, so its own content key.
    expect(new Set(envelopes.map((e) => inspect(e).messageId)).size).toBe(250);
    // Readable without the cache.
    for (let i = 0; i < 250; i += 37) expect((await decrypt(envelopes[i]!, { provider: spy.keyring })).plaintext).toEqual(utf8(`row ${i}`));
    expect(cache.stats.encrypt).toMatchObject({ hits: 247, misses: 3, kmsCalls: 3, retirements: 2, entries: 1 });
  });

  it('keeps each context, key id and key length in its own partition', async () => {
    const spy = new SpyProvider();
    const other = spy.keyring.createKey().keyId;
    const cache = withDataKeyCache(spy, { maxAge: 60_000 });
    const cases: { keyId: string; encryptionContext?: Record<string, string>; keySpec?: 'AES_128' }[] = [
      { keyId: spy.keyId, encryptionContext: { tenant: 'a' } },
      { keyId: spy.keyId, encryptionContext: { tenant: 'b' } },
      { keyId: spy.keyId, encryptionContext: { tenant: 'a', table: 'users' } },
      { keyId: spy.keyId },
      { keyId: 'alias/app', encryptionContext: { tenant: 'a' } },
      { keyId: other, encryptionContext: { tenant: 'a' } },
      { keyId: spy.keyId, encryptionContext: { tenant: 'a' }, keySpec: 'AES_128' },
    ];
    const blobs = new Map<number, Set<string>>();
    for (let round = 0; round < 3; round++) {
      for (const [i, c] of cases.entries()) {
        const env = await encrypt(utf8('x'), { provider: cache, ...c });
        (blobs.get(i) ?? blobs.set(i, new Set()).get(i)!).add(blobOf(env));
      }
    }
    expect(spy.generateCalls).toBe(cases.length);
    const all = [...blobs.values()].map((s) => [...s]);
    expect(all.every((s) => s.length === 1)).toBe(true);
    expect(new Set(all.flat()).size).toBe(cases.length);
  });

  it('retires a key at maxAge, and at maxBytes when told the plaintext length', async () => {
    const spy = new SpyProvider();
    const t = clock();
    const cache = withDataKeyCache(spy, { maxAge: 1000, maxBytes: 10, refreshAhead: 0, now: t.now });
    await encrypt(utf8('12345'), { provider: cache, keyId: spy.keyId });
    await encrypt(utf8('12345'), { provider: cache, keyId: spy.keyId });
    expect(spy.generateCalls).toBe(1);
    await encrypt(utf8('1'), { provider: cache, keyId: spy.keyId });
    expect(spy.generateCalls).toBe(2);
    t.advance(999);
    await encrypt(utf8('1'), { provider: cache, keyId: spy.keyId });
    expect(spy.generateCalls).toBe(2);
    t.advance(1);
    await encrypt(utf8('1'), { provider: cache, keyId: spy.keyId });
    expect(spy.generateCalls).toBe(3);
    // Larger than maxBytes: straight to the provider, never cached.
    await encrypt(utf8('x'.repeat(11)), { provider: cache, keyId: spy.keyId });
    expect(spy.generateCalls).toBe(4);
    expect(cache.stats.encrypt.bypasses).toBe(1);
  });

  it('with maxBytes, a request that does not say its plaintext length goes to the provider', async () => {
    const spy = new SpyProvider();
    const cache = withDataKeyCache(spy, { maxAge: 60_000, maxBytes: 1000 });
    await cache.generateDataKey({ keyId: spy.keyId });
    await cache.generateDataKey({ keyId: spy.keyId });
    expect(spy.generateCalls).toBe(2);
    expect(cache.stats.encrypt.bypasses).toBe(2);
  });

  it('answers copies marked reused, and envelopes draw their message ids from the CSPRNG', async () => {
    const spy = new SpyProvider();
    const cache = withDataKeyCache(spy, { maxAge: 60_000 });
    const a = await cache.generateDataKey({ keyId: spy.keyId });
    const b = await cache.generateDataKey({ keyId: spy.keyId });
    expect(a.reused).toBe(true);
    expect(a.plaintext).toEqual(b.plaintext);
    expect(a.plaintext).not.toBe(b.plaintext);
    a.plaintext.fill(0);
    a.ciphertextBlob.fill(0);
    const c = await cache.generateDataKey({ keyId: spy.keyId });
    expect(c.plaintext).toEqual(b.plaintext);
    expect(c.ciphertextBlob).toEqual(b.ciphertextBlob);
    const spyRandom = vi.spyOn(globalThis.crypto, 'getRandomValues');
    try {
      await encrypt(utf8('x'), { provider: cache, keyId: spy.keyId });
      expect(spyRandom.mock.calls.filter(([arr]) => (arr as Uint8Array).length === 16).length).toBe(1);
      spyRandom.mockClear();
      // Without the cache the 16-byte id comes from the pool (no 16-byte CSPRNG call of its own).
      await encrypt(utf8('x'), { provider: spy.keyring, keyId: spy.keyId });
      expect(spyRandom.mock.calls.filter(([arr]) => (arr as Uint8Array).length === 16).length).toBe(0);
    } finally {
      spyRandom.mockRestore();
    }
  });

  it('validates requests like a provider, before asking anything', async () => {
    const spy = new SpyProvider();
    const cache = withDataKeyCache(spy, { maxAge: 60_000 });
    for (const bad of [null, {}, { keyId: '' }, { keyId: 'k', keySpec: 'AES_512' }, { keyId: 'k', numberOfBytes: 0 }, { keyId: 'k', plaintextLength: -1 }, { keyId: 'k', encryptionContext: { a: 1 } }]) {
      await expect(cache.generateDataKey(bad as never)).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    }
    await expect(cache.decrypt({ ciphertextBlob: new Uint8Array(0) })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    expect(spy.generateCalls + spy.decryptCalls).toBe(0);
  });

  it('refuses a provider answer of the wrong shape and caches nothing of it', async () => {
    const spy = new SpyProvider();
    let bad = true;
    const provider: KeyProvider = {
      providerId: 'local',
      generateDataKey: async (r) => (bad ? { keyId: spy.keyId, plaintext: new Uint8Array(5), ciphertextBlob: new Uint8Array(3) } : spy.generateDataKey(r)),
      decrypt: (r) => spy.decrypt(r),
    };
    const cache = withDataKeyCache(provider, { maxAge: 60_000 });
    await expect(cache.generateDataKey({ keyId: spy.keyId })).rejects.toMatchObject({ code: 'ERR_PROVIDER' });
    bad = false;
    await cache.generateDataKey({ keyId: spy.keyId });
    expect(cache.stats.encrypt).toMatchObject({ kmsCalls: 2, kmsFailures: 1, entries: 1 });
  });
});

describe('withDataKeyCache: decrypt side', () => {
  it('reading many envelopes that share a data key asks the provider once per key', async () => {
    const spy = new SpyProvider();
    const writer = withDataKeyCache(spy, { maxAge: 60_000, maxMessages: 1000 });
    const stored: string[] = [];
    for (let i = 0; i < 2500; i++) {
      stored.push(await encryptObject({ id: i, email: `u${i}@example.com` }, { provider: writer, keyId: spy.keyId, encryptionContext: { table: 'users' } }));
    }
    const reader = withDataKeyCache(spy, { maxAge: 60_000 });
    for (const [i, s] of stored.entries()) {
      expect(await decryptObject(s, { provider: reader, encryptionContext: { table: 'users' } })).toEqual({ id: i, email: `u${i}@example.com` });
    }
    expect(spy.generateCalls).toBe(3);
    expect(spy.decryptCalls).toBe(3);
    expect(reader.stats.decrypt).toMatchObject({ hits: 2497, misses: 3, kmsCalls: 3, entries: 3 });
  });

  it('keys entries by blob and context: another context asks the provider (which refuses it)', async () => {
    const spy = new SpyProvider();
    const cache = withDataKeyCache(spy, { maxAge: 60_000 });
    const { ciphertextBlob, plaintext } = await spy.keyring.generateDataKey({ keyId: spy.keyId, encryptionContext: { a: '1' } });
    expect((await cache.decrypt({ ciphertextBlob, encryptionContext: { a: '1' } })).plaintext).toEqual(plaintext);
    await expect(cache.decrypt({ ciphertextBlob, encryptionContext: { a: '2' } })).rejects.toBeInstanceOf(DecryptionFailedError);
    await expect(cache.decrypt({ ciphertextBlob })).rejects.toBeInstanceOf(DecryptionFailedError);
    const other = ciphertextBlob.slice();
    other[other.length - 1]! ^= 1;
    await expect(cache.decrypt({ ciphertextBlob: other, encryptionContext: { a: '1' } })).rejects.toBeInstanceOf(DecryptionFailedError);
    expect(spy.decryptCalls).toBe(4);
    expect(cache.stats.decrypt).toMatchObject({ entries: 1, kmsFailures: 3 });
  });
});

describe('withDataKeyCache: single flight', () => {
  it('64 concurrent callers on a cold cache make one provider call per side', async () => {
    const spy = new SpyProvider();
    spy.delay = 5;
    const cache = withDataKeyCache(spy, { maxAge: 60_000 });
    const envelopes = await Promise.all(Array.from({ length: 64 }, (_, i) => encrypt(utf8(`r${i}`), { provider: cache, keyId: spy.keyId })));
    expect(spy.generateCalls).toBe(1);
    const reader = withDataKeyCache(spy, { maxAge: 60_000 });
    const plain = await Promise.all(envelopes.map((e) => decrypt(e, { provider: reader })));
    expect(plain.map((p) => new TextDecoder().decode(p.plaintext))).toEqual(Array.from({ length: 64 }, (_, i) => `r${i}`));
    expect(spy.decryptCalls).toBe(1);
    expect(cache.stats.encrypt).toMatchObject({ misses: 64, kmsCalls: 1 });
  });

  it('waiters beyond maxMessages get keys of their own, never an overused one', async () => {
    const spy = new SpyProvider();
    spy.delay = 2;
    const cache = withDataKeyCache(spy, { maxAge: 60_000, maxMessages: 10 });
    const envelopes = await Promise.all(Array.from({ length: 64 }, () => encrypt(utf8('x'), { provider: cache, keyId: spy.keyId })));
    const perKey = new Map<string, number>();
    for (const e of envelopes) perKey.set(blobOf(e), (perKey.get(blobOf(e)) ?? 0) + 1);
    expect(Math.max(...perKey.values())).toBeLessThanOrEqual(10);
    expect(spy.generateCalls).toBe(perKey.size);
    expect(perKey.size).toBe(7);
  });

  it('a failure reaches every waiter and is not cached', async () => {
    const spy = new SpyProvider();
    spy.delay = 5;
    const cache = withDataKeyCache(spy, { maxAge: 60_000 });
    const failure = new KeyDisabledError('the key is disabled');
    spy.failures.push(failure);
    const results = await Promise.allSettled(Array.from({ length: 16 }, () => cache.generateDataKey({ keyId: spy.keyId })));
    expect(results.every((r) => r.status === 'rejected' && r.reason === failure)).toBe(true);
    expect(spy.generateCalls).toBe(1);
    await cache.generateDataKey({ keyId: spy.keyId });
    expect(spy.generateCalls).toBe(2);
  });
});

describe('withDataKeyCache: refresh ahead and stale serving', () => {
  it('a hit close to maxAge starts one background refresh; later hits use the new key', async () => {
    const spy = new SpyProvider();
    const t = clock();
    const cache = withDataKeyCache(spy, { maxAge: 1000, refreshAhead: 200, now: t.now });
    const first = await cache.generateDataKey({ keyId: spy.keyId });
    t.advance(850);
    const second = await cache.generateDataKey({ keyId: spy.keyId });
    const third = await cache.generateDataKey({ keyId: spy.keyId });
    expect(second.ciphertextBlob).toEqual(first.ciphertextBlob);
    expect(third.ciphertextBlob).toEqual(first.ciphertextBlob);
    await settle();
    expect(spy.generateCalls).toBe(2);
    const fourth = await cache.generateDataKey({ keyId: spy.keyId });
    expect(fourth.ciphertextBlob).not.toEqual(first.ciphertextBlob);
    t.advance(300);
    await cache.generateDataKey({ keyId: spy.keyId });
    expect(spy.generateCalls).toBe(2);
    expect(cache.stats.encrypt).toMatchObject({ refreshes: 1, misses: 1 });
  });

  it('refreshes ahead by default in the last fifth of maxAge', async () => {
    const spy = new SpyProvider();
    const t = clock();
    const cache = withDataKeyCache(spy, { maxAge: 1000, now: t.now });
    await cache.generateDataKey({ keyId: spy.keyId });
    t.advance(790);
    await cache.generateDataKey({ keyId: spy.keyId });
    await settle();
    expect(spy.generateCalls).toBe(1);
    t.advance(20);
    await cache.generateDataKey({ keyId: spy.keyId });
    await settle();
    expect(spy.generateCalls).toBe(2);
    expect(cache.stats.encrypt.refreshes).toBe(1);
  });

  it('wipes keys nobody asks for any more, at later misses', async () => {
    const spy = new SpyProvider();
    const t = clock();
    const cache = withDataKeyCache(spy, { maxAge: 1000, refreshAhead: 0, now: t.now });
    await cache.generateDataKey({ keyId: spy.keyId, encryptionContext: { n: 'old' } });
    t.advance(1000);
    await cache.generateDataKey({ keyId: spy.keyId, encryptionContext: { n: 'new' } });
    expect(spy.generated[0]!.answer.plaintext.every((x) => x === 0)).toBe(true);
    expect(cache.stats.encrypt).toMatchObject({ entries: 1, retirements: 1 });
  });

  it('decrypt side: an expired entry serves within staleIfError while the provider fails retryably, and says so', async () => {
    const spy = new SpyProvider();
    const t = clock();
    const events: unknown[] = [];
    const cache = withDataKeyCache(spy, { maxAge: 1000, refreshAhead: 0, staleIfError: 5000, now: t.now, onStaleServe: (e) => events.push(e) });
    const envelope = await encrypt(utf8('kept readable'), { provider: spy.keyring, keyId: spy.keyId });
    await decrypt(envelope, { provider: cache });
    t.advance(2000);
    spy.failures.push(retryable());
    expect(new TextDecoder().decode((await decrypt(envelope, { provider: cache })).plaintext)).toBe('kept readable');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ side: 'decrypt', providerId: 'local', keyId: spy.keyId, ageMs: 2000 });
    expect(cache.stats.decrypt.staleServes).toBe(1);
    // The provider is back: the entry is refreshed.
    await decrypt(envelope, { provider: cache });
    expect(spy.decryptCalls).toBe(3);
    // An outage longer than the window: the error comes through.
    t.advance(1000 + 5000);
    spy.failures.push(retryable());
    await expect(decrypt(envelope, { provider: cache })).rejects.toMatchObject({ code: 'ERR_PROVIDER' });
  });

  it('during an outage, stale entries serve at once while one background call at a time retries', async () => {
    const spy = new SpyProvider();
    const t = clock();
    const cache = withDataKeyCache(spy, { maxAge: 1000, refreshAhead: 0, staleIfError: 60_000, now: t.now });
    const envelope = await encrypt(utf8('x'), { provider: spy.keyring, keyId: spy.keyId });
    await decrypt(envelope, { provider: cache });
    t.advance(2000);
    spy.failures.push(...Array.from({ length: 10 }, retryable));
    await decrypt(envelope, { provider: cache }); // waits for the failing provider once, then serves stale
    expect(spy.decryptCalls).toBe(2);
    // The provider now hangs: stale answers must not wait for it.
    let release!: () => void;
    spy.gate = new Promise((r) => (release = r));
    const answers = await Promise.all(Array.from({ length: 20 }, () => decrypt(envelope, { provider: cache })));
    expect(answers.every((a) => a.plaintext[0] === 0x78)).toBe(true);
    expect(spy.decryptCalls).toBe(3); // one background retry for the 20 callers, still pending
    expect(cache.stats.decrypt.staleServes).toBe(21);
    spy.gate = undefined;
    release();
    await settle();
    // The provider is back: the next call's background retry replaces the entry, and later calls are fresh hits.
    spy.failures.length = 0;
    await decrypt(envelope, { provider: cache });
    await settle();
    const hits = cache.stats.decrypt.hits;
    await decrypt(envelope, { provider: cache });
    expect(cache.stats.decrypt.hits).toBe(hits + 1);
  });

  it('a non-retryable failure is never answered with a stale entry, and drops it', async () => {
    const spy = new SpyProvider();
    const t = clock();
    const cache = withDataKeyCache(spy, { maxAge: 1000, refreshAhead: 0, staleIfError: 5000, now: t.now });
    const envelope = await encrypt(utf8('x'), { provider: spy.keyring, keyId: spy.keyId });
    await decrypt(envelope, { provider: cache });
    t.advance(1500);
    spy.failures.push(new KeyDisabledError('disabled'));
    await expect(decrypt(envelope, { provider: cache })).rejects.toMatchObject({ code: 'ERR_KEY_DISABLED' });
    expect(cache.stats.decrypt.entries).toBe(0);
    await decrypt(envelope, { provider: cache });
    t.advance(1500);
    // A failure that does not say it is retryable is not an outage: no stale answer.
    spy.failures.push(new ProviderError('unknown failure'));
    await expect(decrypt(envelope, { provider: cache })).rejects.toMatchObject({ code: 'ERR_PROVIDER' });
    expect(cache.stats.decrypt.staleServes).toBe(0);
  });

  it('encrypt side serves stale only when the caller opted in, within the limits', async () => {
    for (const optIn of [false, true]) {
      const spy = new SpyProvider();
      const t = clock();
      const events: unknown[] = [];
      const options: DataKeyCacheOptions = { maxAge: 1000, refreshAhead: 0, staleIfError: 5000, maxMessages: 3, now: t.now, onStaleServe: (e) => events.push(e) };
      const cache = withDataKeyCache(spy, optIn ? { ...options, staleIfErrorOnEncrypt: true } : options);
      await cache.generateDataKey({ keyId: spy.keyId });
      t.advance(1500);
      spy.failures.push(retryable(), retryable(), retryable());
      if (!optIn) {
        await expect(cache.generateDataKey({ keyId: spy.keyId })).rejects.toMatchObject({ code: 'ERR_PROVIDER' });
        expect(events).toHaveLength(0);
        continue;
      }
      await cache.generateDataKey({ keyId: spy.keyId });
      await cache.generateDataKey({ keyId: spy.keyId });
      // maxMessages (3) still holds while stale: the fourth use needs a new key, and the provider is down.
      await expect(cache.generateDataKey({ keyId: spy.keyId })).rejects.toMatchObject({ code: 'ERR_PROVIDER' });
      expect(events).toHaveLength(2);
      expect(events[0]).toMatchObject({ side: 'encrypt', ageMs: 1500 });
    }
  });

  it('a key disabled while cached: served until a refresh sees it, then refused', async () => {
    const spy = new SpyProvider();
    const t = clock();
    const refreshErrors: unknown[] = [];
    const cache = withDataKeyCache(spy, { maxAge: 1000, refreshAhead: 200, now: t.now, onRefreshError: (e) => refreshErrors.push(e) });
    await cache.generateDataKey({ keyId: spy.keyId });
    spy.keyring.disableKey(spy.keyId);
    await cache.generateDataKey({ keyId: spy.keyId });
    t.advance(900);
    await cache.generateDataKey({ keyId: spy.keyId });
    await settle();
    expect(refreshErrors).toEqual([expect.objectContaining({ side: 'encrypt', evicted: true, error: expect.objectContaining({ code: 'ERR_KEY_DISABLED' }) })]);
    await expect(cache.generateDataKey({ keyId: spy.keyId })).rejects.toMatchObject({ code: 'ERR_KEY_DISABLED' });
  });

  it('isRetryable decides which failures may be bridged', async () => {
    const spy = new SpyProvider();
    const t = clock();
    const cache = withDataKeyCache(spy, { maxAge: 1000, refreshAhead: 0, staleIfError: 5000, now: t.now, isRetryable: (e) => (e as Error).message === 'link down' });
    const envelope = await encrypt(utf8('x'), { provider: spy.keyring, keyId: spy.keyId });
    await decrypt(envelope, { provider: cache });
    t.advance(1500);
    spy.failures.push(new ProviderError('KMS is throttling', { retryable: true }));
    await expect(decrypt(envelope, { provider: cache })).rejects.toMatchObject({ code: 'ERR_PROVIDER' });
    spy.failures.push(new Error('link down'));
    expect((await decrypt(envelope, { provider: cache })).plaintext).toEqual(utf8('x'));
    expect(cache.stats.decrypt.staleServes).toBe(1);
  });

  it('a hook that throws is counted, not thrown', async () => {
    const spy = new SpyProvider();
    const t = clock();
    const cache = withDataKeyCache(spy, {
      maxAge: 1000,
      refreshAhead: 0,
      staleIfError: 5000,
      now: t.now,
      onStaleServe: () => {
        throw new Error('logger broke');
      },
    });
    const envelope = await encrypt(utf8('x'), { provider: spy.keyring, keyId: spy.keyId });
    await decrypt(envelope, { provider: cache });
    t.advance(1500);
    spy.failures.push(retryable());
    await decrypt(envelope, { provider: cache });
    expect(cache.stats.hookErrors).toBe(1);
  });
});

describe('withDataKeyCache: the records API', () => {
  it('encryptFields: rows bound to their ids share one data key; decryptFields asks once', async () => {
    const spy = new SpyProvider();
    const provider = withDataKeyCache(spy, { maxAge: 60_000 });
    const rows = Array.from({ length: 200 }, (_, i) => ({ id: `u-${i}`, email: `u${i}@example.com`, ssn: `000-00-${String(i).padStart(4, '0')}` }));
    const stored = [];
    for (const r of rows) stored.push(await encryptFields(r, { provider, keyId: spy.keyId, fields: ['email', 'ssn'], recordId: r.id, encryptionContext: { table: 'users' } }));
    expect(spy.generateCalls).toBe(1);
    for (const [i, s] of stored.entries()) {
      expect(await decryptFields(s, { provider, fields: ['email', 'ssn'], recordId: rows[i]!.id, encryptionContext: { table: 'users' } })).toEqual(rows[i]);
    }
    expect(spy.decryptCalls).toBe(1);
    // A field moved to another row fails, although both rows share the data key.
    const moved = { ...stored[1]!, email: stored[0]!.email };
    await expect(decryptFields(moved, { provider, fields: ['email', 'ssn'], recordId: rows[1]!.id })).rejects.toBeInstanceOf(DecryptionFailedError);
  });

  it('batches: concurrent items share flights and keys', async () => {
    const spy = new SpyProvider();
    spy.delay = 2;
    const provider = withDataKeyCache(spy, { maxAge: 60_000, maxMessages: 50 });
    const values = Array.from({ length: 200 }, (_, i) => ({ i }));
    const written = await encryptObjects(values, { provider, keyId: spy.keyId, concurrency: 16 });
    expect(written.every((w) => w.ok)).toBe(true);
    expect(spy.generateCalls).toBe(4);
    const read = await decryptObjects(
      written.map((w) => (w.ok ? w.value : '')),
      { provider, concurrency: 16 },
    );
    expect(read.map((r) => (r.ok ? r.value : undefined))).toEqual(values);
    expect(spy.decryptCalls).toBe(4);
  });
});

describe('withDataKeyCache: hygiene', () => {
  it('evicted, retired, cleared and disposed keys are zeroed', async () => {
    const spy = new SpyProvider();
    const cache = withDataKeyCache(spy, { maxAge: 60_000, capacity: 2, maxMessages: 2 });
    const nonZero = (b: Uint8Array): boolean => b.some((x) => x !== 0);
    await cache.generateDataKey({ keyId: spy.keyId, encryptionContext: { n: '1' } });
    await cache.generateDataKey({ keyId: spy.keyId, encryptionContext: { n: '2' } });
    expect(spy.generated.every((g) => nonZero(g.answer.plaintext))).toBe(true);
    // Capacity 2: a third partition evicts the least recently used (n=1).
    await cache.generateDataKey({ keyId: spy.keyId, encryptionContext: { n: '3' } });
    expect(nonZero(spy.generated[0]!.answer.plaintext)).toBe(false);
    expect(cache.stats.encrypt.evictions).toBe(1);
    // maxMessages 2: the second use of n=3 retires its key.
    await cache.generateDataKey({ keyId: spy.keyId, encryptionContext: { n: '3' } });
    expect(nonZero(spy.generated[2]!.answer.plaintext)).toBe(false);
    expect(cache.size).toBeLessThanOrEqual(2);
    // Decrypt side, then clear and dispose.
    const envelope = await encrypt(utf8('x'), { provider: spy.keyring, keyId: spy.keyId });
    await decrypt(envelope, { provider: cache });
    const unwrapped = spy.decrypted[0]!.answer.plaintext;
    expect(nonZero(unwrapped)).toBe(true);
    cache.clear();
    expect(nonZero(unwrapped)).toBe(false);
    expect(spy.generated.every((g) => !nonZero(g.answer.plaintext))).toBe(true);
    await cache.generateDataKey({ keyId: spy.keyId });
    cache.dispose();
    expect(spy.generated.every((g) => !nonZero(g.answer.plaintext))).toBe(true);
    expect(cache.size).toBe(0);
    await expect(cache.generateDataKey({ keyId: spy.keyId })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(decrypt(envelope, { provider: cache })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    cache.dispose();
  });

  it('a flight that ends after dispose keeps nothing', async () => {
    const spy = new SpyProvider();
    spy.delay = 5;
    const cache = withDataKeyCache(spy, { maxAge: 60_000 });
    const pending = cache.generateDataKey({ keyId: spy.keyId });
    cache.dispose();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    expect(spy.generated[0]!.answer.plaintext.every((x) => x === 0)).toBe(true);
    expect(cache.size).toBe(0);
  });

  it('never shows a key in inspect, JSON or an error', async () => {
    const spy = new SpyProvider();
    const cache = withDataKeyCache(spy, { maxAge: 60_000 });
    const { plaintext } = await cache.generateDataKey({ keyId: spy.keyId });
    const envelope = await encrypt(utf8('x'), { provider: spy.keyring, keyId: spy.keyId });
    await decrypt(envelope, { provider: cache });
    const shown = [nodeInspect(cache, { depth: 10, showHidden: true }), JSON.stringify(cache), String(cache)];
    const secrets = [hex(plaintext), Buffer.from(plaintext).toString('base64'), [...plaintext].join(','), hex(spy.decrypted[0]!.answer.plaintext)];
    for (const s of shown) for (const secret of secrets) expect(s).not.toContain(secret);
    expect(nodeInspect(cache)).toMatch(/^DataKeyCache \{ providerId: 'local', entries: 2/);
  });

  it('keeps the provider id, so envelopes read with or without the cache', async () => {
    const spy = new SpyProvider();
    const cache = withDataKeyCache(spy, { maxAge: 60_000 });
    expect(cache.providerId).toBe('local');
    const viaCache = await encrypt(utf8('a'), { provider: cache, keyId: spy.keyId });
    const direct = await encrypt(utf8('b'), { provider: spy.keyring, keyId: spy.keyId });
    expect((await decrypt(viaCache, { provider: spy.keyring })).plaintext).toEqual(utf8('a'));
    expect((await decrypt(direct, { provider: cache })).plaintext).toEqual(utf8('b'));
  });
});

describe('withDataKeyCache: options', () => {
  const spy = new SpyProvider();
  it.each([
    ['no options', undefined],
    ['no maxAge', {}],
    ['maxAge 0', { maxAge: 0 }],
    ['maxAge NaN', { maxAge: NaN }],
    ['maxAge over 24 h', { maxAge: 24 * 3600_000 + 1 }],
    ['maxMessages 0', { maxAge: 1, maxMessages: 0 }],
    ['maxMessages over 2^32', { maxAge: 1, maxMessages: 2 ** 32 + 1 }],
    ['maxMessages fraction', { maxAge: 1, maxMessages: 1.5 }],
    ['maxBytes 0', { maxAge: 1, maxBytes: 0 }],
    ['capacity 0', { maxAge: 1, capacity: 0 }],
    ['capacity too large', { maxAge: 1, capacity: 1_000_001 }],
    ['refreshAhead ≥ maxAge', { maxAge: 100, refreshAhead: 100 }],
    ['staleIfError negative', { maxAge: 100, staleIfError: -1 }],
    ['staleIfErrorOnEncrypt without a window', { maxAge: 100, staleIfErrorOnEncrypt: true }],
    ['staleIfErrorOnEncrypt not boolean', { maxAge: 100, staleIfError: 10, staleIfErrorOnEncrypt: 'yes' }],
    ['onStaleServe not a function', { maxAge: 100, onStaleServe: 1 }],
    ['a throwing getter', Object.defineProperty({}, 'maxAge', { get: () => { throw new Error('x'); }, enumerable: true })],
  ])('%s is refused', (_, options) => {
    expect(() => withDataKeyCache(spy, options as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PARAMETER' }));
  });

  it('refuses something that is not a provider', () => {
    for (const p of [null, {}, { providerId: 'Bad Id', generateDataKey() {}, decrypt() {} }, { providerId: 'x', generateDataKey() {} }]) {
      expect(() => withDataKeyCache(p as never, { maxAge: 1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PARAMETER' }));
    }
  });
});

describe('withDataKeyCache: properties', () => {
  type Op = { kind: 'enc'; ctx: number; len: number } | { kind: 'dec'; index: number } | { kind: 'tick'; ms: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('enc' as const), ctx: fc.integer({ min: 0, max: 3 }), len: fc.integer({ min: 0, max: 40 }) }),
    fc.record({ kind: fc.constant('dec' as const), index: fc.nat() }),
    fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 400 }) }),
  );

  it('any interleaving decrypts as without the cache; limits and partitions always hold', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 5 }),
        fc.option(fc.integer({ min: 1, max: 80 }), { nil: undefined }),
        fc.integer({ min: 1, max: 4 }),
        async (ops, maxMessages, maxBytes, capacity) => {
          const spy = new SpyProvider();
          const t = clock();
          const cache = withDataKeyCache(spy, { maxAge: 1000, maxMessages, ...(maxBytes ? { maxBytes } : {}), capacity, now: t.now });
          const written: { envelope: Uint8Array; plaintext: Uint8Array; ctx: number }[] = [];
          const perKey = new Map<string, { count: number; bytes: number; ctx: number }>();
          for (const o of ops) {
            if (o.kind === 'tick') t.advance(o.ms);
            else if (o.kind === 'enc') {
              const plaintext = crypto.getRandomValues(new Uint8Array(o.len));
              const envelope = await encrypt(plaintext, { provider: cache, keyId: spy.keyId, encryptionContext: { tenant: `t${o.ctx}` } });
              written.push({ envelope, plaintext, ctx: o.ctx });
              const k = blobOf(envelope);
              const u = perKey.get(k) ?? { count: 0, bytes: 0, ctx: o.ctx };
              u.count++;
              u.bytes += o.len;
              perKey.set(k, u);
              // No key crosses a partition; limits hold for every key that sealed more than one envelope
              // (a plaintext longer than maxBytes gets a fresh key of its own).
              expect(u.ctx).toBe(o.ctx);
              expect(u.count).toBeLessThanOrEqual(maxMessages);
              if (maxBytes && u.count > 1) expect(u.bytes).toBeLessThanOrEqual(maxBytes);
            } else if (written.length) {
              const w = written[o.index % written.length]!;
              const viaCache = await decrypt(w.envelope, { provider: cache, encryptionContext: { tenant: `t${w.ctx}` } });
              expect(viaCache.plaintext).toEqual(w.plaintext);
              await expect(decrypt(w.envelope, { provider: cache, encryptionContext: { tenant: `t${w.ctx + 1}` } })).rejects.toBeInstanceOf(DecryptionFailedError);
            }
            expect(cache.size).toBeLessThanOrEqual(capacity);
          }
          for (const w of written) expect((await decrypt(w.envelope, { provider: spy.keyring })).plaintext).toEqual(w.plaintext);
          cache.dispose();
        },
      ),
      { numRuns: runs(60) },
    );
  });
});
