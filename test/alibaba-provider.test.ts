/**
 * AlibabaKmsProvider against the loopback emulator: the KeyProvider contract
 * with both signature versions, aliases and ARNs, context binding, Encrypt and
 * ReEncrypt, every mapped KMS error, retries that succeed and retries that give
 * up, timeouts, aborts, credentials (options, environment, callback, STS), and
 * what never appears in errors.
 */
import util from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DecryptionFailedError,
  InvalidParameterError,
  KeyDisabledError,
  KeyNotFoundError,
  ProviderError,
} from '../src/core/errors.js';
import { base64Encode } from '../src/internal/base64.js';
import { AlibabaKmsError, AlibabaKmsProvider } from '../src/providers/alibaba/index.js';
import { emulator, expectNoSecrets, hex, providerFor, rejection } from './alibaba-helpers.js';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe.each(['v3', 'v1'] as const)('the KeyProvider contract, signature %s', (signatureVersion) => {
  it('generates a data key by alias and decrypts it; the answer names the key, never the alias', async () => {
    const { kms, keyId } = await emulator();
    const p = providerFor(kms, { signatureVersion });
    expect(p.providerId).toBe('alibaba-kms');
    const dk = await p.generateDataKey({ keyId: 'alias/app', encryptionContext: { tenant: 't1', table: 'users' } });
    expect(dk.keyId).toBe(keyId);
    expect(dk.plaintext).toHaveLength(32);
    expect(dk.requestId).toMatch(/^[0-9A-F-]{36}$/);
    expect(dk.keyVersionId).toMatch(/^[0-9a-f-]{36}$/);
    const back = await p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { table: 'users', tenant: 't1' } });
    expect(back.keyId).toBe(keyId);
    expect(hex(back.plaintext)).toBe(hex(dk.plaintext));
    expect(back.keyVersionId).toBe(dk.keyVersionId);
    expect(kms.requests.map((r) => [r.signatureVersion, r.action, r.status])).toEqual([
      [signatureVersion, 'GenerateDataKey', 200],
      [signatureVersion, 'Decrypt', 200],
    ]);
  });

  it('accepts key ids and ARNs, honours keySpec and numberOfBytes', async () => {
    const { kms, keyId } = await emulator();
    const p = providerFor(kms, { signatureVersion });
    expect((await p.generateDataKey({ keyId })).plaintext).toHaveLength(32);
    expect((await p.generateDataKey({ keyId, keySpec: 'AES_128' })).plaintext).toHaveLength(16);
    expect((await p.generateDataKey({ keyId, keySpec: 'AES_128', numberOfBytes: 1024 })).plaintext).toHaveLength(1024);
    expect((await p.generateDataKey({ keyId: `acs:kms:cn-hangzhou:1234567890:key/${keyId}` })).keyId).toBe(keyId);
    expect((await p.generateDataKey({ keyId: 'acs:kms:cn-hangzhou:1234567890:alias/app' })).keyId).toBe(keyId);
  });

  it('binds the encryption context: any other context is one DecryptionFailedError', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms, { signatureVersion });
    const ctx = { "weird key !*'()": 'välue & = + / ?', a: '' };
    const dk = await p.generateDataKey({ keyId: 'alias/app', encryptionContext: ctx });
    expect(hex((await p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: ctx })).plaintext)).toBe(hex(dk.plaintext));
    const others: (Record<string, string> | undefined)[] = [undefined, {}, { a: '' }, { ...ctx, a: 'x' }, { ...ctx, extra: '1' }];
    for (const other of others) {
      const e = await rejection(p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: other }));
      expect(e).toBeInstanceOf(DecryptionFailedError);
      expect(e.message).toBe('decryption failed');
      expect((e.cause as AlibabaKmsError).kmsCode).toBe('InvalidParameter');
      expect((e.cause as AlibabaKmsError).requestId).toMatch(/^[0-9A-F-]{36}$/);
    }
    const tampered = dk.ciphertextBlob.slice();
    tampered[tampered.length - 1]! ^= 1;
    expect(await rejection(p.decrypt({ ciphertextBlob: tampered, encryptionContext: ctx }))).toBeInstanceOf(DecryptionFailedError);
  });

  it('Encrypt wraps caller bytes, ReEncrypt moves them to another key and context', async () => {
    const { kms, keyId } = await emulator();
    const other = kms.keyring.createKey({ alias: 'alias/other' }).keyId;
    const p = providerFor(kms, { signatureVersion });
    const secret = Uint8Array.from({ length: 48 }, (_, i) => i);
    const enc = await p.encrypt({ keyId: 'alias/app', plaintext: secret, encryptionContext: { purpose: 'x' } });
    expect(enc.keyId).toBe(keyId);
    expect(hex((await p.decrypt({ ciphertextBlob: enc.ciphertextBlob, encryptionContext: { purpose: 'x' } })).plaintext)).toBe(hex(secret));
    const re = await p.reEncrypt({
      ciphertextBlob: enc.ciphertextBlob,
      destinationKeyId: 'alias/other',
      sourceEncryptionContext: { purpose: 'x' },
      destinationEncryptionContext: { purpose: 'y' },
    });
    expect(re.keyId).toBe(other);
    const back = await p.decrypt({ ciphertextBlob: re.ciphertextBlob, encryptionContext: { purpose: 'y' } });
    expect(back.keyId).toBe(other);
    expect(hex(back.plaintext)).toBe(hex(secret));
    // The wrong source context is a decryption failure, not a parameter error.
    const e = await rejection(p.reEncrypt({ ciphertextBlob: enc.ciphertextBlob, destinationKeyId: other }));
    expect(e).toBeInstanceOf(DecryptionFailedError);
    // The Plaintext never reaches the emulator's request log.
    expect(kms.requests.find((r) => r.action === 'Encrypt')!.url).not.toContain(encodeURIComponent(base64Encode(secret)));
  });

  it('a rotated key: new data keys use the new version, old blobs still decrypt', async () => {
    const { kms, keyId } = await emulator();
    const p = providerFor(kms, { signatureVersion });
    const before = await p.generateDataKey({ keyId });
    kms.keyring.rotateKey(keyId);
    const after = await p.generateDataKey({ keyId });
    expect(after.keyVersionId).not.toBe(before.keyVersionId);
    expect((await p.decrypt({ ciphertextBlob: before.ciphertextBlob })).keyVersionId).toBe(before.keyVersionId);
  });
});

describe('mapped KMS errors', () => {
  it('unknown key id → KeyNotFoundError (Forbidden.KeyNotFound), unknown alias → Forbidden.AliasNotFound', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms);
    const e1 = await rejection(p.generateDataKey({ keyId: 'nokey' }));
    expect(e1).toBeInstanceOf(KeyNotFoundError);
    expect(e1.cause).toBeInstanceOf(AlibabaKmsError);
    expect((e1.cause as AlibabaKmsError).kmsCode).toBe('Forbidden.KeyNotFound');
    expect((e1.cause as AlibabaKmsError).httpStatus).toBe(404);
    expect(e1.message).toContain('RequestId');
    const e2 = await rejection(p.generateDataKey({ keyId: 'alias/missing' }));
    expect(e2).toBeInstanceOf(KeyNotFoundError);
    expect((e2.cause as AlibabaKmsError).kmsCode).toBe('Forbidden.AliasNotFound');
  });

  it('disabled and pending-deletion keys → KeyDisabledError, for generate and for decrypt', async () => {
    const { kms, keyId } = await emulator();
    const p = providerFor(kms, { signatureVersion: 'v1' });
    const dk = await p.generateDataKey({ keyId });
    kms.keyring.disableKey(keyId);
    for (const call of [p.generateDataKey({ keyId }), p.decrypt({ ciphertextBlob: dk.ciphertextBlob })]) {
      const e = await rejection(call);
      expect(e).toBeInstanceOf(KeyDisabledError);
      expect((e.cause as AlibabaKmsError).kmsCode).toBe('Rejected.Disabled');
      expect((e.cause as AlibabaKmsError).httpStatus).toBe(409);
    }
    kms.keyring.scheduleKeyDeletion(keyId);
    const e = await rejection(p.decrypt({ ciphertextBlob: dk.ciphertextBlob }));
    expect(e).toBeInstanceOf(KeyDisabledError);
    expect((e.cause as AlibabaKmsError).kmsCode).toBe('Rejected.PendingDeletion');
    kms.keyring.cancelKeyDeletion(keyId);
    kms.keyring.enableKey(keyId);
    expect((await p.decrypt({ ciphertextBlob: dk.ciphertextBlob })).keyId).toBe(keyId);
  });

  it('InvalidParameter and MissingParameter → InvalidParameterError on generate', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms);
    for (const code of ['InvalidParameter', 'MissingParameter']) {
      kms.faults.error({ status: 400, code, message: `The specified parameter "KeyId" is not valid.` });
      const e = await rejection(p.generateDataKey({ keyId: 'alias/app' }));
      expect(e).toBeInstanceOf(InvalidParameterError);
      expect((e.cause as AlibabaKmsError).kmsCode).toBe(code);
      expect((e.cause as AlibabaKmsError).attempts).toBe(1);
    }
    // The emulator's own checks: a parameter the service refuses (NumberOfBytes sent by hand is not
    // possible through the provider, so a DryRun value it does not know).
    kms.faults.error({ status: 400, code: 'InvalidParameter', message: 'The specified parameter "DryRun" is not valid.', actions: ['Encrypt'] });
    const e = await rejection(p.encrypt({ keyId: 'alias/app', plaintext: new Uint8Array(2000) }));
    expect(e).toBeInstanceOf(InvalidParameterError);
  });

  it('unmapped codes (e.g. Forbidden.NoPermission) → AlibabaKmsError, not retried', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms);
    kms.faults.error({ status: 403, code: 'Forbidden.NoPermission', message: 'This operation is forbidden by permission system.' });
    const e = await rejection(p.generateDataKey({ keyId: 'alias/app' }));
    expect(e).toBeInstanceOf(AlibabaKmsError);
    expect(e).toBeInstanceOf(ProviderError);
    const k = e as AlibabaKmsError;
    expect([k.code, k.kmsCode, k.httpStatus, k.attempts, k.retryable, k.failure]).toEqual([
      'ERR_PROVIDER',
      'Forbidden.NoPermission',
      403,
      1,
      false,
      'kms',
    ]);
    expect(k.kmsMessage).toBe('This operation is forbidden by permission system.');
    expect(k.hostId).toBe('kms.cn-hangzhou.aliyuncs.com');
    expect(k.requestId).toBe(kms.requests.at(-1)!.requestId);
  });
});

describe('retries', () => {
  it('retries throttling, 5xx, InternalFailure and dropped connections, then succeeds', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms, { maxAttempts: 5 });
    kms.faults.throttle({ code: 'Rejected.Throttling' });
    kms.faults.throttle();
    kms.faults.serverError();
    kms.faults.dropConnection();
    const dk = await p.generateDataKey({ keyId: 'alias/app' });
    expect(dk.plaintext).toHaveLength(32);
    expect(kms.requests.map((r) => [r.status, r.code])).toEqual([
      [400, 'Rejected.Throttling'],
      [400, 'Throttling'],
      [503, 'ServiceUnavailableTemporary'],
      [0, undefined],
      [200, undefined],
    ]);
    // Every attempt was signed anew: distinct nonces (a replay would have been refused).
    const nonces = new Set(kms.requests.map((r) => r.headers['x-acs-signature-nonce']));
    expect(nonces.size).toBe(5);
  });

  it('retries a timed-out attempt', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms, { timeoutMs: 100 });
    kms.faults.latency(400);
    const dk = await p.generateDataKey({ keyId: 'alias/app' });
    expect(dk.plaintext).toHaveLength(32);
    // The slow attempt is logged when the emulator finishes it: after the client gave up.
    await vi.waitFor(() => expect(kms.requests.map((r) => r.status).sort()).toEqual([0, 200]));
  });

  it('gives up after maxAttempts with a typed error carrying the last RequestId and code', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms, { maxAttempts: 3 });
    kms.faults.serverError({ status: 500, times: Infinity });
    const e = (await rejection(p.generateDataKey({ keyId: 'alias/app' }))) as AlibabaKmsError;
    expect(e).toBeInstanceOf(AlibabaKmsError);
    expect([e.kmsCode, e.httpStatus, e.attempts, e.retryable, e.failure]).toEqual(['InternalFailure', 500, 3, true, 'kms']);
    expect(e.requestId).toBe(kms.requests.at(-1)!.requestId);
    expect(e.message).toContain('InternalFailure');
    expect(e.message).toContain(e.requestId);
    expect(kms.requests).toHaveLength(3);
  });

  it('gives up on timeouts and on network errors', async () => {
    const { kms } = await emulator();
    const slow = providerFor(kms, { timeoutMs: 50, maxAttempts: 2 });
    kms.faults.latency(300, { times: 2 });
    const t = (await rejection(slow.generateDataKey({ keyId: 'alias/app' }))) as AlibabaKmsError;
    expect([t.failure, t.attempts, t.retryable]).toEqual(['timeout', 2, true]);

    const closed = providerFor(kms, { maxAttempts: 2 });
    kms.faults.dropConnection({ times: 2 });
    const n = (await rejection(closed.generateDataKey({ keyId: 'alias/app' }))) as AlibabaKmsError;
    expect([n.failure, n.attempts, n.retryable]).toEqual(['network', 2, true]);
  });

  it('uses capped exponential backoff with jitter between attempts', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms, { maxAttempts: 4, retryBaseDelayMs: 40, retryMaxDelayMs: 60 });
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.999);
    try {
      kms.faults.throttle({ times: 3 });
      const t0 = performance.now();
      await p.generateDataKey({ keyId: 'alias/app' });
      const elapsed = performance.now() - t0;
      // delays ≈ 0.999 × min(60, 40·2^k) for k = 0, 1, 2 → 39 + 59 + 59 ms
      expect(elapsed).toBeGreaterThanOrEqual(150);
    } finally {
      random.mockRestore();
    }
  });

  it('does not retry signature or clock errors', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms, { credentials: { ...kms.credentials, accessKeySecret: 'wrong-secret-value' } });
    const e = (await rejection(p.generateDataKey({ keyId: 'alias/app' }))) as AlibabaKmsError;
    expect([e.kmsCode, e.attempts]).toEqual(['SignatureDoesNotMatch', 1]);
    expectNoSecrets(e, ['wrong-secret-value', kms.credentials.accessKeySecret]);
  });
});

describe('aborts', () => {
  it('an already aborted signal stops the call before any request', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms);
    const ctrl = new AbortController();
    ctrl.abort(new Error('stop'));
    const e = (await rejection(p.generateDataKey({ keyId: 'alias/app', signal: ctrl.signal }))) as AlibabaKmsError;
    expect(e).toBeInstanceOf(AlibabaKmsError);
    expect(e.failure).toBe('aborted');
    expect((e.cause as Error).message).toBe('stop');
    expect(kms.requests).toHaveLength(0);
  });

  it('aborting during a slow attempt or during backoff stops at once', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms, { timeoutMs: 5000 });
    kms.faults.latency(2000);
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(), 50);
    const t0 = performance.now();
    const e = (await rejection(p.decrypt({ ciphertextBlob: new Uint8Array(40), signal: ctrl.signal }))) as AlibabaKmsError;
    expect(e.failure).toBe('aborted');
    expect(performance.now() - t0).toBeLessThan(1500);

    const slowRetry = providerFor(kms, { retryBaseDelayMs: 5000, retryMaxDelayMs: 5000 });
    kms.faults.clear();
    kms.faults.throttle({ times: Infinity });
    const ctrl2 = new AbortController();
    setTimeout(() => ctrl2.abort(), 100);
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.99);
    try {
      const t1 = performance.now();
      const e2 = (await rejection(slowRetry.generateDataKey({ keyId: 'alias/app', signal: ctrl2.signal }))) as AlibabaKmsError;
      expect(e2.failure).toBe('aborted');
      expect(e2.kmsCode).toBe('Throttling');
      expect(performance.now() - t1).toBeLessThan(1500);
    } finally {
      random.mockRestore();
    }
  });

  it('honours a provider-wide signal', async () => {
    const { kms } = await emulator();
    const ctrl = new AbortController();
    const p = providerFor(kms, { signal: ctrl.signal });
    expect((await p.generateDataKey({ keyId: 'alias/app' })).plaintext).toHaveLength(32);
    ctrl.abort();
    expect(((await rejection(p.generateDataKey({ keyId: 'alias/app' }))) as AlibabaKmsError).failure).toBe('aborted');
  });
});

describe('signing checks the emulator enforces', () => {
  it('a clock outside the allowed skew → InvalidTimeStamp.Expired', async () => {
    const { kms } = await emulator({ now: () => Date.now() + 20 * 60 * 1000 });
    for (const signatureVersion of ['v3', 'v1'] as const) {
      const e = (await rejection(providerFor(kms, { signatureVersion }).generateDataKey({ keyId: 'alias/app' }))) as AlibabaKmsError;
      expect([e.kmsCode, e.httpStatus]).toEqual(['InvalidTimeStamp.Expired', 400]);
    }
  });

  it('an unknown AccessKey → InvalidAccessKeyId.NotFound', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms, { credentials: { accessKeyId: 'LTAInobody', accessKeySecret: 'x' } });
    expect(((await rejection(p.generateDataKey({ keyId: 'alias/app' }))) as AlibabaKmsError).kmsCode).toBe('InvalidAccessKeyId.NotFound');
  });

  it('STS credentials: the token is sent and checked, with both signatures', async () => {
    const sts = { accessKeyId: 'STS.test', accessKeySecret: 'sts-secret', securityToken: 'sts-token-value' };
    const { kms } = await emulator({ credentials: [sts] });
    for (const signatureVersion of ['v3', 'v1'] as const) {
      expect((await providerFor(kms, { signatureVersion }).generateDataKey({ keyId: 'alias/app' })).plaintext).toHaveLength(32);
      const wrong = providerFor(kms, { signatureVersion, credentials: { ...sts, securityToken: 'other' } });
      const e = (await rejection(wrong.generateDataKey({ keyId: 'alias/app' }))) as AlibabaKmsError;
      expect(e.kmsCode).toBe('InvalidSecurityToken.Mismatch');
      expectNoSecrets(e, ['sts-secret', 'sts-token-value', 'other']);
    }
    expect(kms.requests[0]!.headers['x-acs-security-token']).toBe('<redacted>');
  });
});

describe('credentials', () => {
  it('reads the standard environment variables at each request', async () => {
    const { kms } = await emulator();
    const p = new AlibabaKmsProvider({ endpoint: kms.url });
    vi.stubEnv('ALIBABA_CLOUD_ACCESS_KEY_ID', '');
    vi.stubEnv('ALIBABA_CLOUD_ACCESS_KEY_SECRET', '');
    const missing = await rejection(p.generateDataKey({ keyId: 'alias/app' }));
    expect(missing).toBeInstanceOf(InvalidParameterError);
    expect(missing.message).toContain('ALIBABA_CLOUD_ACCESS_KEY_ID');
    vi.stubEnv('ALIBABA_CLOUD_ACCESS_KEY_ID', kms.credentials.accessKeyId);
    vi.stubEnv('ALIBABA_CLOUD_ACCESS_KEY_SECRET', kms.credentials.accessKeySecret);
    expect((await p.generateDataKey({ keyId: 'alias/app' })).plaintext).toHaveLength(32);
  });

  it('asks a callback before every attempt (rotation)', async () => {
    const { kms } = await emulator({
      credentials: [
        { accessKeyId: 'LTAIold', accessKeySecret: 'old-secret' },
        { accessKeyId: 'LTAInew', accessKeySecret: 'new-secret' },
      ],
    });
    const issued = [
      { accessKeyId: 'LTAIold', accessKeySecret: 'old-secret' },
      { accessKeyId: 'LTAInew', accessKeySecret: 'new-secret' },
    ];
    let calls = 0;
    const p = providerFor(kms, { credentials: async () => issued[Math.min(calls++, 1)]! });
    kms.faults.throttle();
    await p.generateDataKey({ keyId: 'alias/app' });
    expect(calls).toBe(2);
    expect(kms.requests.map((r) => r.headers['authorization']!.split(',')[0])).toEqual([
      'ACS3-HMAC-SHA256 Credential=LTAIold',
      'ACS3-HMAC-SHA256 Credential=LTAInew',
    ]);
    const broken = providerFor(kms, { credentials: () => ({ accessKeyId: '', accessKeySecret: 'x' }) });
    expect(await rejection(broken.generateDataKey({ keyId: 'alias/app' }))).toBeInstanceOf(InvalidParameterError);
    const failing = providerFor(kms, {
      credentials: () => {
        throw new Error('sts down');
      },
    });
    expect(await rejection(failing.generateDataKey({ keyId: 'alias/app' }))).toBeInstanceOf(ProviderError);
  });

  it('never shows credentials in inspect, JSON or errors', async () => {
    const { kms } = await emulator();
    const p = providerFor(kms);
    const shown = `${util.inspect(p)} ${JSON.stringify(p)} ${String(p)}`;
    expect(shown).not.toContain(kms.credentials.accessKeySecret);
    expect(JSON.parse(JSON.stringify(p))).toEqual({ providerId: 'alibaba-kms', endpoint: `${kms.url}/`, signatureVersion: 'v3' });
    const e = await rejection(p.generateDataKey({ keyId: 'nokey' }));
    expectNoSecrets(e, [kms.credentials.accessKeySecret]);
  });
});

describe('hostile input and hostile answers', () => {
  it('checks options and requests before any request', async () => {
    const { kms } = await emulator();
    const bad: unknown[] = [
      null,
      {},
      { region: 'cn-hangzhou', signatureVersion: 'v2' },
      { region: 'cn-hangzhou', maxAttempts: 0 },
      { region: 'cn-hangzhou', maxAttempts: 11 },
      { region: 'cn-hangzhou', timeoutMs: 1.5 },
      { region: 'cn-hangzhou', credentials: { accessKeyId: 'a' } },
      { region: 'cn-hangzhou', credentials: { accessKeyId: 'a', accessKeySecret: 'b\n' } },
      { region: 'cn-hangzhou', signal: {} },
      { endpoint: 'http://192.168.1.1' },
    ];
    for (const o of bad) expect(() => new AlibabaKmsProvider(o as never), JSON.stringify(o)).toThrow(InvalidParameterError);
    const p = providerFor(kms);
    const badRequests: unknown[] = [
      null,
      { keyId: '' },
      { keyId: 'alias/app', numberOfBytes: 0 },
      { keyId: 'alias/app', numberOfBytes: 1025 },
      { keyId: 'alias/app', keySpec: 'AES_512' },
      { keyId: 'alias/app', encryptionContext: { a: 1 } },
      { keyId: 'alias/app', signal: 'no' },
      new Proxy({}, { get: () => { throw new Error('trap'); } }),
    ];
    for (const r of badRequests) expect(await rejection(p.generateDataKey(r as never))).toBeInstanceOf(InvalidParameterError);
    expect(await rejection(p.decrypt({ ciphertextBlob: new Uint8Array(0) }))).toBeInstanceOf(InvalidParameterError);
    expect(await rejection(p.encrypt({ keyId: 'alias/app', plaintext: new Uint8Array(6145) }))).toBeInstanceOf(InvalidParameterError);
    expect(await rejection(p.reEncrypt({ ciphertextBlob: new Uint8Array(4), destinationKeyId: '' }))).toBeInstanceOf(InvalidParameterError);
    expect(kms.requests).toHaveLength(0);
  });

  const answer = (status: number, body: string | Uint8Array) => async () => new Response(body as BodyInit, { status });

  it('a malformed 2xx answer is an AlibabaKmsError, never a raw TypeError or ZodError', async () => {
    const key32 = base64Encode(new Uint8Array(32).fill(9));
    const cases: (string | Uint8Array)[] = [
      'not json',
      '{}',
      '[]',
      `{"KeyId":"k","Plaintext":"${key32}","RequestId":"r"}`,
      `{"KeyId":"k","Plaintext":"${key32}","CiphertextBlob":"!!","RequestId":"r"}`,
      `{"KeyId":"k","Plaintext":"${base64Encode(new Uint8Array(16))}","CiphertextBlob":"AAAA","RequestId":"r"}`,
      `{"KeyId":"","Plaintext":"${key32}","CiphertextBlob":"AAAA","RequestId":"r"}`,
      `{"KeyId":"k","Plaintext":"${key32}","CiphertextBlob":"AAAA","RequestId":"r","Nested":{"Plaintext":"AAAA"}}`,
      `{"KeyId":"k","Nested":{"Plaintext":"${key32}"},"CiphertextBlob":"AAAA","RequestId":"r"}`,
      new Uint8Array([0xff, 0xfe, 0x7b]),
      'x'.repeat(300 * 1024),
    ];
    for (const body of cases) {
      const p = new AlibabaKmsProvider({ region: 'cn-hangzhou', credentials: { accessKeyId: 'a', accessKeySecret: 'b' }, fetch: answer(200, body) });
      const e = await rejection(p.generateDataKey({ keyId: 'k' }));
      expect(e, String(body).slice(0, 80)).toBeInstanceOf(AlibabaKmsError);
      expect((e as AlibabaKmsError).failure).toBe('malformed-response');
      expectNoSecrets(e, [key32]);
    }
    const ok = new AlibabaKmsProvider({
      region: 'cn-hangzhou',
      credentials: { accessKeyId: 'a', accessKeySecret: 'b' },
      fetch: answer(200, `{ "KeyId" : "k", "Plaintext" : "${key32.replace('/', '\\/')}", "CiphertextBlob":"AAAA", "RequestId":"r", "Extra": 1 }`),
    });
    expect(Array.from((await ok.generateDataKey({ keyId: 'k' })).plaintext)).toEqual(Array(32).fill(9));
  });

  it('an error answer without a readable body: 5xx is retried, 4xx is not', async () => {
    let calls = 0;
    const fetch502 = async () => {
      calls++;
      return new Response('<html>bad gateway</html>', { status: 502 });
    };
    const p = new AlibabaKmsProvider({ region: 'cn-hangzhou', credentials: { accessKeyId: 'a', accessKeySecret: 'b' }, fetch: fetch502, retryBaseDelayMs: 0 });
    const e = (await rejection(p.decrypt({ ciphertextBlob: new Uint8Array(8) }))) as AlibabaKmsError;
    expect([e.httpStatus, e.kmsCode, e.attempts, calls]).toEqual([502, undefined, 3, 3]);
    const p404 = new AlibabaKmsProvider({ region: 'cn-hangzhou', credentials: { accessKeyId: 'a', accessKeySecret: 'b' }, fetch: answer(404, '') });
    expect(((await rejection(p404.decrypt({ ciphertextBlob: new Uint8Array(8) }))) as AlibabaKmsError).attempts).toBe(1);
  });

  it('sends requests to the regional endpoint, signed, over POST, parameters in a form body', async () => {
    const seen: { url: string; init: RequestInit }[] = [];
    const spy = async (url: string | URL | Request, init?: RequestInit) => {
      seen.push({ url: String(url), init: init! });
      return new Response(JSON.stringify({ KeyId: 'k', CiphertextBlob: 'AAAA', RequestId: 'r' }), { status: 200 });
    };
    const p = new AlibabaKmsProvider({ region: 'ap-southeast-1', credentials: { accessKeyId: 'LTAIx', accessKeySecret: 's' }, fetch: spy });
    await p.encrypt({ keyId: 'alias/a', plaintext: new Uint8Array([1]), encryptionContext: { b: '2', a: '1' } });
    const { url, init } = seen[0]!;
    expect(url).toBe('https://kms.ap-southeast-1.aliyuncs.com/');
    expect(init.method).toBe('POST');
    expect(init.redirect).toBe('manual');
    expect(init.body).toBe(`EncryptionContext=${encodeURIComponent('{"a":"1","b":"2"}')}&KeyId=alias%2Fa&Plaintext=AQ%3D%3D`);
    const h = init.headers as Record<string, string>;
    expect(h['content-type']).toBe('application/x-www-form-urlencoded');
    expect(h['x-acs-action']).toBe('Encrypt');
    expect(h['x-acs-version']).toBe('2016-01-20');
    expect(h['authorization']).toMatch(/^ACS3-HMAC-SHA256 Credential=LTAIx,SignedHeaders=content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=[0-9a-f]{64}$/);
  });
});
