/**
 * The data-key cache in front of the Alibaba Cloud KMS provider, against the loopback emulator:
 * requests counted on the emulator, and its faults (throttling, 5xx, an outage, a disabled key)
 * during refreshes and after expiry.
 */
import { describe, expect, it, vi } from 'vitest';
import { decrypt, decryptObject, encrypt, encryptObject, inspect, withDataKeyCache } from '../src/index.js';
import { emulator, providerFor, utf8 } from './alibaba-helpers.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/** The hex of the blob in an envelope's first EDK (which data key sealed it). */
function blobOf(envelope: Uint8Array): string {
  const info = inspect(envelope);
  const end = info.headerLength - 32;
  return Buffer.from(envelope.subarray(end - info.encryptedDataKeys[0]!.blobLength, end)).toString('hex');
}


describe('withDataKeyCache over Alibaba Cloud KMS (emulator)', () => {
  it('records at KMS scale: ceil(n / maxMessages) GenerateDataKey and Decrypt requests, with 2 ms of latency', async () => {
    const { kms } = await emulator({ maxRecordedRequests: 10_000 });
    kms.faults.latency(2, { times: Infinity });
    const provider = withDataKeyCache(providerFor(kms), { maxAge: 60_000, maxMessages: 250 });
    const stored: string[] = [];
    for (let i = 0; i < 1000; i++) {
      stored.push(await encryptObject({ id: i, email: `u${i}@example.com` }, { provider, keyId: 'alias/app', encryptionContext: { table: 'users' } }));
    }
    const reader = withDataKeyCache(providerFor(kms), { maxAge: 60_000 });
    for (const [i, s] of stored.entries()) {
      expect(await decryptObject(s, { provider: reader, encryptionContext: { table: 'users' } })).toEqual({ id: i, email: `u${i}@example.com` });
    }
    const count = (action: string): number => kms.requests.filter((r) => r.action === action && r.status === 200).length;
    expect(count('GenerateDataKey')).toBe(4);
    expect(count('Decrypt')).toBe(4);
  });

  it('64 concurrent callers on a cold cache make exactly one GenerateDataKey', async () => {
    const { kms } = await emulator();
    kms.faults.latency(2, { times: Infinity });
    const provider = withDataKeyCache(providerFor(kms), { maxAge: 60_000 });
    await Promise.all(Array.from({ length: 64 }, (_, i) => encrypt(utf8(`r${i}`), { provider, keyId: 'alias/app' })));
    expect(kms.requests.filter((r) => r.action === 'GenerateDataKey').length).toBe(1);
  });

  it('100 interleaved tenants with capacity 1000: 100 KMS calls per direction', async () => {
    const { kms } = await emulator({ maxRecordedRequests: 10_000 });
    const provider = withDataKeyCache(providerFor(kms), { maxAge: 60_000, capacity: 1000 });
    const stored: Uint8Array[] = [];
    for (let i = 0; i < 1000; i++) stored.push(await encrypt(utf8(`r${i}`), { provider, keyId: 'alias/app', encryptionContext: { tenant: `t${i % 100}` } }));
    for (const [i, e] of stored.entries()) await decrypt(e, { provider, encryptionContext: { tenant: `t${i % 100}` } });
    expect(kms.requests.filter((r) => r.action === 'GenerateDataKey').length).toBe(100);
    expect(kms.requests.filter((r) => r.action === 'Decrypt').length).toBe(100);
    expect(provider.stats.encrypt.kmsCalls).toBe(100);
    expect(provider.stats.decrypt.kmsCalls).toBe(100);
  });

  it('throttling and 5xx during a refresh: the current key keeps serving until maxAge', async () => {
    const { kms } = await emulator();
    const t = clock();
    const refreshErrors: unknown[] = [];
    const provider = withDataKeyCache(providerFor(kms, { maxAttempts: 2 }), { maxAge: 1000, refreshAhead: 300, now: t.now, onRefreshError: (e) => refreshErrors.push(e) });
    const first = await encrypt(utf8('a'), { provider, keyId: 'alias/app' });
    t.advance(800);
    kms.faults.throttle({ times: 2, actions: ['GenerateDataKey'] });
    const second = await encrypt(utf8('b'), { provider, keyId: 'alias/app' });
    // The refresh runs in the background: wait for its outcome (polled, so a loaded machine only makes it slower).
    await vi.waitFor(() => expect(refreshErrors).toHaveLength(1), { timeout: 5000 });
    expect(refreshErrors).toEqual([expect.objectContaining({ side: 'encrypt', evicted: false, error: expect.objectContaining({ code: 'ERR_PROVIDER', retryable: true }) })]);
    // Same data key: one refresh only, which failed; the entry serves until maxAge.
    const third = await encrypt(utf8('c'), { provider, keyId: 'alias/app' });
    expect(blobOf(second)).toBe(blobOf(first));
    expect(blobOf(third)).toBe(blobOf(first));
    expect(provider.stats.encrypt).toMatchObject({ refreshes: 1, refreshFailures: 1, kmsCalls: 2 });
    // Decrypt side, a 503 during the refresh.
    const reader = withDataKeyCache(providerFor(kms, { maxAttempts: 1 }), { maxAge: 1000, refreshAhead: 300, now: t.now });
    await decrypt(first, { provider: reader });
    t.advance(800);
    kms.faults.serverError({ status: 503, code: 'ServiceUnavailableTemporary', actions: ['Decrypt'] });
    expect(new TextDecoder().decode((await decrypt(first, { provider: reader })).plaintext)).toBe('a');
    await vi.waitFor(() => expect(reader.stats.decrypt).toMatchObject({ refreshFailures: 1, entries: 1 }), { timeout: 5000 });
    expect(new TextDecoder().decode((await decrypt(first, { provider: reader })).plaintext)).toBe('a');
  });

  it('an outage within staleIfError is bridged and reported; a longer one fails', async () => {
    const { kms } = await emulator();
    const t = clock();
    const stale: unknown[] = [];
    const reader = withDataKeyCache(providerFor(kms, { maxAttempts: 1 }), { maxAge: 1000, refreshAhead: 0, staleIfError: 10_000, now: t.now, onStaleServe: (e) => stale.push(e) });
    const env = await encrypt(utf8('during the outage'), { provider: providerFor(kms), keyId: 'alias/app' });
    await decrypt(env, { provider: reader });
    kms.faults.serverError({ status: 503, code: 'ServiceUnavailableTemporary', times: Infinity });
    t.advance(5000);
    expect(new TextDecoder().decode((await decrypt(env, { provider: reader })).plaintext)).toBe('during the outage');
    t.advance(4000);
    await decrypt(env, { provider: reader });
    expect(stale).toHaveLength(2);
    expect(reader.stats.decrypt.staleServes).toBe(2);
    t.advance(2000);
    await expect(decrypt(env, { provider: reader })).rejects.toMatchObject({ code: 'ERR_PROVIDER', retryable: true });
    expect(reader.stats.decrypt.entries).toBe(0);
  });

  it('a key disabled in KMS while cached: served until the refresh sees it, then refused, and never bridged', async () => {
    const { kms, keyId } = await emulator();
    const t = clock();
    const provider = withDataKeyCache(providerFor(kms), { maxAge: 1000, refreshAhead: 300, staleIfError: 10_000, staleIfErrorOnEncrypt: true, now: t.now });
    const env = await encrypt(utf8('x'), { provider, keyId: 'alias/app' });
    await decrypt(env, { provider });
    kms.keyring.disableKey(keyId);
    // Within maxAge and before the refresh window: still served (the documented bound).
    await encrypt(utf8('y'), { provider, keyId: 'alias/app' });
    await decrypt(env, { provider });
    t.advance(800);
    await encrypt(utf8('z'), { provider, keyId: 'alias/app' });
    await decrypt(env, { provider });
    // Both background refreshes see the disabled key and evict their entries.
    await vi.waitFor(() => expect(provider.size).toBe(0), { timeout: 5000 });
    await expect(encrypt(utf8('w'), { provider, keyId: 'alias/app' })).rejects.toMatchObject({ code: 'ERR_KEY_DISABLED' });
    await expect(decrypt(env, { provider })).rejects.toMatchObject({ code: 'ERR_KEY_DISABLED' });
    expect(provider.stats.encrypt.staleServes + provider.stats.decrypt.staleServes).toBe(0);
  });
});
