/**
 * AwsKmsProvider against the loopback emulator: every operation, every KeyId
 * form, the wire as sent, every mapped error, retries, abort, timeouts,
 * credentials (options, environment, callback), options checking, malformed
 * answers, and no secret in `inspect`, JSON, messages or causes.
 */
import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  DecryptionFailedError,
  InvalidParameterError,
  KeyDisabledError,
  KeyNotFoundError,
  ProviderError,
} from '../src/core/errors.js';
import { AWS_KMS_PROVIDER_ID, AwsKmsError, AwsKmsProvider } from '../src/providers/aws/index.js';
import { awsEmulator, awsProviderFor, expectNoSecrets, hex, rejection, utf8 } from './aws-helpers.js';

const numRuns = Number(process.env['FC_NUM_RUNS'] ?? 20);

/** A fetch that records each request's headers and JSON body, then sends it on. */
function recordingFetch(): { fetch: typeof fetch; sent: { headers: Record<string, string>; body: Record<string, unknown> }[] } {
  const sent: { headers: Record<string, string>; body: Record<string, unknown> }[] = [];
  const f: typeof fetch = async (url, init) => {
    const body = JSON.parse(new TextDecoder().decode(init!.body as Uint8Array)) as Record<string, unknown>;
    sent.push({ headers: { ...(init!.headers as Record<string, string>) }, body });
    return fetch(url, init);
  };
  return { fetch: f, sent };
}

describe('AwsKmsProvider operations', () => {
  it('generateDataKey and decrypt round-trip; keyId is the key ARN; keyVersion is KMS KeyMaterialId', async () => {
    const { kms, arn } = await awsEmulator();
    const p = awsProviderFor(kms);
    expect(p.providerId).toBe(AWS_KMS_PROVIDER_ID);
    const ctx = { table: 'users', 'ek:purpose': 'envelope-kit/v1/data-key' };
    const dk = await p.generateDataKey({ keyId: 'alias/app', encryptionContext: ctx });
    expect(dk.keyId).toBe(arn);
    expect(dk.plaintext.length).toBe(32);
    expect(dk.keyVersion).toMatch(/^[0-9a-f]{64}$/);
    expect(dk.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const back = await p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { ...ctx } });
    expect(back.keyId).toBe(arn);
    expect(hex(back.plaintext)).toBe(hex(dk.plaintext));
    expect(back.keyVersion).toBe(dk.keyVersion);
    expect(p.describeBlob(dk.ciphertextBlob)).toBeUndefined();
  });

  it('sends KeySpec or NumberOfBytes exactly as asked, the context as a JSON map, the JSON 1.1 headers', async () => {
    const { kms } = await awsEmulator();
    const rec = recordingFetch();
    const p = awsProviderFor(kms, { fetch: rec.fetch });
    expect((await p.generateDataKey({ keyId: 'alias/app' })).plaintext.length).toBe(32);
    expect((await p.generateDataKey({ keyId: 'alias/app', keySpec: 'AES_128' })).plaintext.length).toBe(16);
    expect((await p.generateDataKey({ keyId: 'alias/app', numberOfBytes: 64, keySpec: 'AES_128' })).plaintext.length).toBe(64);
    expect((await p.generateDataKey({ keyId: 'alias/app', numberOfBytes: 32, encryptionContext: { b: '2', a: '1' } })).plaintext.length).toBe(32);
    expect(rec.sent.map((s) => s.body)).toEqual([
      { KeyId: 'alias/app', KeySpec: 'AES_256' },
      { KeyId: 'alias/app', KeySpec: 'AES_128' },
      { KeyId: 'alias/app', NumberOfBytes: 64 },
      { KeyId: 'alias/app', NumberOfBytes: 32, EncryptionContext: { a: '1', b: '2' } },
    ]);
    const h = rec.sent[0]!.headers;
    expect(h['content-type']).toBe('application/x-amz-json-1.1');
    expect(h['x-amz-target']).toBe('TrentService.GenerateDataKey');
    expect(h['authorization']).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIA[A-Z2-7]{16}\/\d{8}\/us-east-1\/kms\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=[0-9a-f]{64}$/);
    expect(h['host']).toBeUndefined();
  });

  it('accepts every KeyId form: id, key ARN, alias, alias ARN, multi-Region key id and ARN', async () => {
    const { kms, keyId, arn } = await awsEmulator();
    const mrk = kms.createKey({ alias: 'alias/global', multiRegion: true });
    expect(mrk.keyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    const p = awsProviderFor(kms);
    const forms: [string, string][] = [
      [keyId, arn],
      [arn, arn],
      ['alias/app', arn],
      [`arn:aws:kms:us-east-1:111122223333:alias/app`, arn],
      [mrk.keyId, mrk.arn],
      [mrk.arn, mrk.arn],
      ['alias/global', mrk.arn],
    ];
    for (const [ref, want] of forms) {
      const dk = await p.generateDataKey({ keyId: ref });
      expect(dk.keyId, ref).toBe(want);
      expect((await p.decrypt({ ciphertextBlob: dk.ciphertextBlob, keyId: ref })).keyId).toBe(want);
    }
  });

  it('generateDataKeyWithoutPlaintext gives a blob that decrypt opens', async () => {
    const { kms, arn } = await awsEmulator();
    const p = awsProviderFor(kms);
    const w = await p.generateDataKeyWithoutPlaintext({ keyId: 'alias/app', numberOfBytes: 24, encryptionContext: { k: 'v' } });
    expect(w.keyId).toBe(arn);
    expect('plaintext' in w).toBe(false);
    expect((await p.decrypt({ ciphertextBlob: w.ciphertextBlob, encryptionContext: { k: 'v' } })).plaintext.length).toBe(24);
  });

  it('encrypt wraps 1..4096 bytes; reEncrypt moves a blob to another key and context', async () => {
    const { kms, arn } = await awsEmulator();
    const other = kms.createKey({ alias: 'alias/other' });
    const p = awsProviderFor(kms);
    for (const n of [1, 32, 1024, 1025, 4096]) {
      const pt = new Uint8Array(n).map((_, i) => i * 7);
      const w = await p.encrypt({ keyId: 'alias/app', plaintext: pt, encryptionContext: { n: String(n) } });
      expect(w.keyId).toBe(arn);
      const back = await p.decrypt({ ciphertextBlob: w.ciphertextBlob, encryptionContext: { n: String(n) } });
      expect(hex(back.plaintext)).toBe(hex(pt));
      await expect(p.decrypt({ ciphertextBlob: w.ciphertextBlob })).rejects.toBeInstanceOf(DecryptionFailedError);
    }
    const dk = await p.generateDataKey({ keyId: 'alias/app', encryptionContext: { a: '1' } });
    const moved = await p.reEncrypt({
      ciphertextBlob: dk.ciphertextBlob,
      sourceEncryptionContext: { a: '1' },
      destinationKeyId: 'alias/other',
      destinationEncryptionContext: { b: '2' },
    });
    expect(moved.keyId).toBe(other.arn);
    const back = await p.decrypt({ ciphertextBlob: moved.ciphertextBlob, encryptionContext: { b: '2' } });
    expect(back.keyId).toBe(other.arn);
    expect(hex(back.plaintext)).toBe(hex(dk.plaintext));
    await expect(p.reEncrypt({ ciphertextBlob: dk.ciphertextBlob, sourceEncryptionContext: { a: 'x' }, destinationKeyId: 'alias/other' })).rejects.toBeInstanceOf(
      DecryptionFailedError,
    );
    await expect(
      p.reEncrypt({ ciphertextBlob: dk.ciphertextBlob, sourceEncryptionContext: { a: '1' }, sourceKeyId: 'alias/other', destinationKeyId: 'alias/other' }),
    ).rejects.toBeInstanceOf(DecryptionFailedError);
  });

  it('reads each request field once: a getter cannot answer the check one value and the request another', async () => {
    const { kms } = await awsEmulator();
    const p = awsProviderFor(kms);
    const reads: string[] = [];
    let n = 0;
    const request = {
      get keyId() {
        reads.push('keyId');
        return 'alias/app';
      },
      get numberOfBytes() {
        reads.push('numberOfBytes');
        return n++ === 0 ? 48 : undefined;
      },
    };
    expect((await p.generateDataKey(request as never)).plaintext.length).toBe(48);
    expect(reads.sort()).toEqual(['keyId', 'numberOfBytes']);
  });

  it('rejects bad requests before any request is sent', async () => {
    const { kms } = await awsEmulator();
    const p = awsProviderFor(kms);
    const bad: Promise<unknown>[] = [
      p.generateDataKey({ keyId: '' }),
      p.generateDataKey({ keyId: 'alias/app', numberOfBytes: 0 }),
      p.generateDataKey({ keyId: 'alias/app', numberOfBytes: 1025 }),
      p.generateDataKey({ keyId: 'alias/app', keySpec: 'AES_512' as 'AES_256' }),
      p.generateDataKey({ keyId: 'alias/app', encryptionContext: { a: 1 } as unknown as Record<string, string> }),
      p.decrypt({ ciphertextBlob: new Uint8Array(0) }),
      p.decrypt({ ciphertextBlob: new Uint8Array(8), keyId: 5 as unknown as string }),
      p.encrypt({ keyId: 'alias/app', plaintext: new Uint8Array(4097) }),
      p.encrypt({ keyId: 'alias/app', plaintext: 'text' as unknown as Uint8Array }),
      p.reEncrypt({ ciphertextBlob: new Uint8Array(8), destinationKeyId: '' }),
      p.generateDataKey({ keyId: 'alias/app', signal: {} as AbortSignal }),
      p.generateDataKey(null as never),
      p.generateDataKey(new Proxy({}, { get: () => { throw new Error('trap'); } }) as never),
    ];
    for (const b of bad) expect(await rejection(b)).toBeInstanceOf(InvalidParameterError);
    expect(kms.requests).toHaveLength(0);
  });
});

describe('AwsKmsProvider errors', () => {
  it('NotFoundException → KeyNotFoundError, with an AwsKmsError cause naming the request', async () => {
    const { kms } = await awsEmulator();
    const p = awsProviderFor(kms);
    for (const ref of ['alias/missing', '1234abcd-12ab-34cd-56ef-1234567890ab', 'arn:aws:kms:eu-west-1:111122223333:key/x', 'mrk-00000000000000000000000000000000']) {
      const e = await rejection(p.generateDataKey({ keyId: ref }));
      expect(e, ref).toBeInstanceOf(KeyNotFoundError);
      const cause = e.cause as AwsKmsError;
      expect(cause).toBeInstanceOf(AwsKmsError);
      expect(cause.errorType).toBe('NotFoundException');
      expect(cause.httpStatus).toBe(400);
      expect(cause.requestId).toBe(kms.requests.at(-1)!.requestId);
      expect(cause.retryable).toBe(false);
    }
  });

  it('DisabledException and KMSInvalidStateException → KeyDisabledError, on every operation', async () => {
    const { kms, keyId } = await awsEmulator();
    const p = awsProviderFor(kms);
    const dk = await p.generateDataKey({ keyId });
    // Keys made by createKey have a keyring id of their own besides their AWS key id.
    const localId = kms.keyring.resolveKeyId('alias/app');
    kms.keyring.disableKey(localId);
    for (const call of [
      () => p.generateDataKey({ keyId }),
      () => p.decrypt({ ciphertextBlob: dk.ciphertextBlob }),
      () => p.encrypt({ keyId, plaintext: new Uint8Array(4) }),
      () => p.reEncrypt({ ciphertextBlob: dk.ciphertextBlob, destinationKeyId: keyId }),
    ]) {
      const e = await rejection(call());
      expect(e).toBeInstanceOf(KeyDisabledError);
      expect((e.cause as AwsKmsError).errorType).toBe('DisabledException');
    }
    kms.keyring.enableKey(localId);
    kms.keyring.scheduleKeyDeletion(localId);
    const e = await rejection(p.decrypt({ ciphertextBlob: dk.ciphertextBlob }));
    expect(e).toBeInstanceOf(KeyDisabledError);
    expect((e.cause as AwsKmsError).errorType).toBe('KMSInvalidStateException');
  });

  it('InvalidCiphertextException and IncorrectKeyException → DecryptionFailedError with the one fixed message', async () => {
    const { kms } = await awsEmulator();
    kms.createKey({ alias: 'alias/other' });
    const p = awsProviderFor(kms);
    const dk = await p.generateDataKey({ keyId: 'alias/app', encryptionContext: { a: '1' } });
    const tampered = dk.ciphertextBlob.slice();
    tampered[tampered.length - 1]! ^= 1;
    const cases: [Promise<unknown>, string][] = [
      [p.decrypt({ ciphertextBlob: tampered, encryptionContext: { a: '1' } }), 'InvalidCiphertextException'],
      [p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { a: '2' } }), 'InvalidCiphertextException'],
      [p.decrypt({ ciphertextBlob: dk.ciphertextBlob }), 'InvalidCiphertextException'],
      [p.decrypt({ ciphertextBlob: utf8('not a KMS blob at all') }), 'InvalidCiphertextException'],
      [p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { a: '1' }, keyId: 'alias/other' }), 'IncorrectKeyException'],
    ];
    for (const [c, type] of cases) {
      const e = await rejection(c);
      expect(e).toBeInstanceOf(DecryptionFailedError);
      expect(e.message).toBe('decryption failed');
      expect((e.cause as AwsKmsError).errorType).toBe(type);
    }
  });

  it('ValidationException → InvalidParameterError; AccessDeniedException and other types → AwsKmsError (a ProviderError), not retried', async () => {
    const { kms } = await awsEmulator();
    const p = awsProviderFor(kms);
    kms.faults.error({ status: 400, type: 'ValidationException', message: '1 validation error detected' });
    const v = await rejection(p.generateDataKey({ keyId: 'alias/app' }));
    expect(v).toBeInstanceOf(InvalidParameterError);
    expect((v.cause as AwsKmsError).awsMessage).toBe('1 validation error detected');
    for (const type of ['AccessDeniedException', 'InvalidKeyUsageException', 'InvalidGrantTokenException']) {
      kms.faults.error({ status: 400, type, message: 'User: arn:aws:iam::111122223333:user/app is not authorized to perform: kms:Decrypt' });
      const before = kms.requests.length;
      const e = (await rejection(p.generateDataKey({ keyId: 'alias/app' }))) as AwsKmsError;
      expect(e).toBeInstanceOf(AwsKmsError);
      expect(e).toBeInstanceOf(ProviderError);
      expect(e.code).toBe('ERR_PROVIDER');
      expect(e.errorType).toBe(type);
      expect(e.retryable).toBe(false);
      expect(e.attempts).toBe(1);
      expect(kms.requests.length - before).toBe(1);
      expect(e.message).toContain(type);
    }
    // A namespaced __type is read without its namespace.
    kms.faults.error({ status: 400, type: 'com.amazonaws.kms#NotFoundException' });
    expect(await rejection(p.generateDataKey({ keyId: 'alias/app' }))).toBeInstanceOf(KeyNotFoundError);
  });

  it('retries ThrottlingException, KMSInternalException, DependencyTimeoutException, 5xx and dropped connections, then succeeds', async () => {
    const { kms } = await awsEmulator();
    const p = awsProviderFor(kms, { maxAttempts: 4 });
    const inject = [
      () => kms.faults.throttle(),
      () => kms.faults.serverError(),
      () => kms.faults.serverError({ status: 503 }),
      () => kms.faults.error({ status: 503, type: 'DependencyTimeoutException' }),
      () => kms.faults.error({ status: 502, type: 'BadGateway' }),
      () => kms.faults.error({ status: 429, type: 'TooManyRequests' }),
      () => kms.faults.dropConnection(),
    ];
    for (const f of inject) {
      f();
      const before = kms.requests.length;
      const dk = await p.generateDataKey({ keyId: 'alias/app' });
      expect(dk.plaintext.length).toBe(32);
      expect(kms.requests.length - before).toBe(2);
    }
    // Each attempt is signed anew (its own X-Amz-Date at least, and its own signature).
    kms.faults.throttle({ times: 2 });
    await p.generateDataKey({ keyId: 'alias/app' });
    const sigs = kms.requests.slice(-3).map((r) => r.headers['authorization']);
    expect(sigs.every((s) => s?.includes('Signature=<redacted>'))).toBe(true);
  });

  it('gives up after maxAttempts with retryable: true and the last request id', async () => {
    const { kms } = await awsEmulator();
    const p = awsProviderFor(kms, { maxAttempts: 3 });
    kms.faults.throttle({ times: Infinity });
    const e = (await rejection(p.decrypt({ ciphertextBlob: new Uint8Array(64).fill(2) }))) as AwsKmsError;
    expect(e).toBeInstanceOf(AwsKmsError);
    expect(e.retryable).toBe(true);
    expect(e.attempts).toBe(3);
    expect(e.errorType).toBe('ThrottlingException');
    expect(e.requestId).toBe(kms.requests.at(-1)!.requestId);
    kms.faults.clear();
    kms.faults.dropConnection({ times: Infinity });
    const n = (await rejection(p.generateDataKey({ keyId: 'alias/app' }))) as AwsKmsError;
    expect(n.failure).toBe('network');
    expect(n.retryable).toBe(true);
  });

  it('backoff is capped, exponential and jittered', async () => {
    const { kms } = await awsEmulator();
    const delays: number[] = [];
    const orig = globalThis.setTimeout;
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      if (ms !== undefined && ms < 2000) delays.push(ms);
      return orig(fn, ms === undefined || ms >= 2000 ? ms : 0);
    }) as typeof setTimeout);
    try {
      const p = awsProviderFor(kms, { maxAttempts: 6, retryBaseDelayMs: 100, retryMaxDelayMs: 300, timeoutMs: 5000 });
      kms.faults.throttle({ times: 5 });
      await p.generateDataKey({ keyId: 'alias/app' });
    } finally {
      spy.mockRestore();
    }
    expect(delays).toHaveLength(5);
    const caps = [100, 200, 300, 300, 300];
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(caps[i]!);
    });
  });

  it('a per-attempt timeout is retried, then reported as a retryable timeout', async () => {
    const { kms } = await awsEmulator();
    // Generous margins: the machine may be loaded, and only the slowed attempts may time out.
    const p = awsProviderFor(kms, { timeoutMs: 1000, maxAttempts: 2 });
    kms.faults.latency(4000, { times: 1 });
    expect((await p.generateDataKey({ keyId: 'alias/app' })).plaintext.length).toBe(32);
    kms.faults.latency(4000, { times: 2 });
    const e = (await rejection(p.generateDataKey({ keyId: 'alias/app' }))) as AwsKmsError;
    expect(e.failure).toBe('timeout');
    expect(e.retryable).toBe(true);
    expect(e.attempts).toBe(2);
  });

  it('AbortSignal: of the call, of the provider, already aborted, during backoff', async () => {
    const { kms } = await awsEmulator();
    const p = awsProviderFor(kms, { timeoutMs: 5000 });
    const pre = AbortSignal.abort(new Error('stop'));
    const e1 = (await rejection(p.generateDataKey({ keyId: 'alias/app', signal: pre }))) as AwsKmsError;
    expect(e1.failure).toBe('aborted');
    expect(e1.retryable).toBe(false);
    expect(kms.requests).toHaveLength(0);

    kms.faults.latency(2000);
    const ctrl = new AbortController();
    const pending = p.generateDataKey({ keyId: 'alias/app', signal: ctrl.signal });
    setTimeout(() => ctrl.abort(new Error('user')), 30);
    const t0 = Date.now();
    const e2 = (await rejection(pending)) as AwsKmsError;
    expect(e2.failure).toBe('aborted');
    expect((e2.cause as Error).message).toBe('user');
    expect(Date.now() - t0).toBeLessThan(1500);
    kms.faults.clear();

    const shutdown = new AbortController();
    const q = awsProviderFor(kms, { signal: shutdown.signal, retryBaseDelayMs: 5000, retryMaxDelayMs: 5000, maxAttempts: 3 });
    kms.faults.throttle({ times: Infinity });
    const during = q.generateDataKey({ keyId: 'alias/app' });
    setTimeout(() => shutdown.abort(), 100);
    const e3 = (await rejection(during)) as AwsKmsError;
    expect(e3.failure).toBe('aborted');
    expect(e3.errorType).toBe('ThrottlingException');
  });

  it('a malformed 2xx answer is an AwsKmsError, never a crash, and the plaintext is not kept', async () => {
    const answers = [
      '{}',
      'not json',
      '[]',
      '{"KeyId":"arn:aws:kms:us-east-1:1:key/a","CiphertextBlob":"AAAA","Plaintext":"!!!"}',
      '{"KeyId":"arn:aws:kms:us-east-1:1:key/a","CiphertextBlob":"AAAA","Plaintext":"AAAA"}', // 3 bytes, not 32
      '{"KeyId":"","CiphertextBlob":"AAAA","Plaintext":"' + 'A'.repeat(43) + '="}',
      '{"KeyId":"k","CiphertextBlob":"AAAA","Plaintext":"' + 'A'.repeat(43) + '=","Plaintext":"' + 'A'.repeat(43) + '="}',
    ];
    for (const a of answers) {
      const p = new AwsKmsProvider({
        region: 'us-east-1',
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-key-value' },
        fetch: async () => new Response(a, { status: 200 }),
      });
      const e = (await rejection(p.generateDataKey({ keyId: 'alias/app' }))) as AwsKmsError;
      expect(e, a).toBeInstanceOf(AwsKmsError);
      expect(e.failure).toBe('malformed-response');
    }
    const big = new AwsKmsProvider({
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-key-value' },
      fetch: async () => new Response('x'.repeat(300 * 1024), { status: 200 }),
    });
    expect(((await rejection(big.generateDataKey({ keyId: 'k' }))) as AwsKmsError).failure).toBe('malformed-response');
  });

  it('an error answer with no body or a proxy page: retryable by status, ProviderError', async () => {
    for (const [status, retryable] of [[502, true], [403, false]] as const) {
      let n = 0;
      const p = new AwsKmsProvider({
        region: 'us-east-1',
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-key-value' },
        retryBaseDelayMs: 0,
        fetch: async () => {
          n++;
          return new Response('<html>bad gateway</html>', { status });
        },
      });
      const e = (await rejection(p.generateDataKey({ keyId: 'k' }))) as AwsKmsError;
      expect(e).toBeInstanceOf(AwsKmsError);
      expect(e.errorType).toBeUndefined();
      expect(e.httpStatus).toBe(status);
      expect(e.retryable).toBe(retryable);
      expect(n).toBe(retryable ? 3 : 1);
    }
  });
});

describe('AwsKmsProvider signing and credentials', () => {
  it('wrong secret, unknown key id, wrong session token, skewed clock, altered body: the service errors as AwsKmsError', async () => {
    const { kms } = await awsEmulator({ credentials: [{ accessKeyId: 'AKIAEMULATORTEMP0001', secretAccessKey: 'temp-secret-0001', sessionToken: 'session-token-value-0001' }] });
    const good = { accessKeyId: 'AKIAEMULATORTEMP0001', secretAccessKey: 'temp-secret-0001', sessionToken: 'session-token-value-0001' };
    expect((await awsProviderFor(kms, { credentials: good }).generateDataKey({ keyId: 'alias/app' })).plaintext.length).toBe(32);
    const cases: [Partial<ConstructorParameters<typeof AwsKmsProvider>[0]>, string][] = [
      [{ credentials: { ...good, secretAccessKey: 'wrong-secret' } }, 'InvalidSignatureException'],
      [{ credentials: { ...good, accessKeyId: 'AKIAUNKNOWN000000000' } }, 'UnrecognizedClientException'],
      [{ credentials: { ...good, sessionToken: 'another-session-token' } }, 'UnrecognizedClientException'],
      [{ credentials: { accessKeyId: good.accessKeyId, secretAccessKey: good.secretAccessKey } }, 'UnrecognizedClientException'],
      [{ credentials: good, now: () => Date.now() - 6 * 60_000, maxAttempts: 1 }, 'InvalidSignatureException'],
      [{ credentials: good, now: () => Date.now() + 6 * 60_000, maxAttempts: 1 }, 'InvalidSignatureException'],
      [{ credentials: good, region: 'eu-west-1' }, 'InvalidSignatureException'],
      [
        {
          credentials: good,
          fetch: (url, init) => {
            const body = new TextDecoder().decode(init!.body as Uint8Array).replace('alias/app', 'alias/apq');
            return fetch(url, { ...init, body });
          },
        },
        'InvalidSignatureException',
      ],
    ];
    for (const [opts, type] of cases) {
      const e = (await rejection(awsProviderFor(kms, opts).generateDataKey({ keyId: 'alias/app' }))) as AwsKmsError;
      expect(e, type).toBeInstanceOf(AwsKmsError);
      expect(e.errorType).toBe(type);
      expect(e.httpStatus).toBe(400);
      expect(e.retryable).toBe(false);
      expectNoSecrets(e, ['temp-secret-0001', 'session-token-value-0001', 'wrong-secret', 'another-session-token']);
      expect(inspect(e, { depth: 5 })).not.toContain('session-token-value-0001');
    }
  });

  it('a clock more than 5 minutes off is corrected from the answer\u2019s Date, once, and kept', async () => {
    for (const skew of [-20 * 60_000, 3 * 3600_000]) {
      const { kms } = await awsEmulator();
      const p = awsProviderFor(kms, { now: () => Date.now() + skew });
      expect((await p.generateDataKey({ keyId: 'alias/app' })).plaintext.length).toBe(32);
      expect(kms.requests.map((r) => r.errorType)).toEqual(['InvalidSignatureException', undefined]);
      await p.generateDataKey({ keyId: 'alias/app' });
      expect(kms.requests).toHaveLength(3);
    }
    // A wrong secret is not a clock problem: one attempt, no correction.
    const { kms } = await awsEmulator();
    const bad = awsProviderFor(kms, { credentials: { ...kms.credentials, secretAccessKey: 'nope' } });
    await rejection(bad.generateDataKey({ keyId: 'alias/app' }));
    expect(kms.requests).toHaveLength(1);
  });

  it('an echoed canonical request (which holds the session token) is cut from the message', async () => {
    const { kms } = await awsEmulator({ credentials: [{ accessKeyId: 'AKIAEMULATORTEMP0002', secretAccessKey: 's2', sessionToken: 'tok-abcdef-123456' }] });
    const p = awsProviderFor(kms, { credentials: { accessKeyId: 'AKIAEMULATORTEMP0002', secretAccessKey: 'bad', sessionToken: 'tok-abcdef-123456' } });
    const e = (await rejection(p.generateDataKey({ keyId: 'alias/app' }))) as AwsKmsError;
    expect(e.errorType).toBe('InvalidSignatureException');
    expect(e.awsMessage).toMatch(/^The request signature we calculated does not match.*\[signing details removed\]$/s);
    expectNoSecrets(e, ['tok-abcdef-123456']);
  });

  it('reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN at each request', async () => {
    const { kms } = await awsEmulator({ credentials: [{ accessKeyId: 'AKIAENVIRONMENT00001', secretAccessKey: 'env-secret', sessionToken: 'env-token' }] });
    const p = awsProviderFor(kms, { credentials: undefined });
    vi.stubEnv('AWS_ACCESS_KEY_ID', '');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', '');
    try {
      expect(await rejection(p.generateDataKey({ keyId: 'alias/app' }))).toBeInstanceOf(InvalidParameterError);
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAENVIRONMENT00001');
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'env-secret');
      vi.stubEnv('AWS_SESSION_TOKEN', 'env-token');
      expect((await p.generateDataKey({ keyId: 'alias/app' })).plaintext.length).toBe(32);
      vi.stubEnv('AWS_SESSION_TOKEN', '');
      expect(((await rejection(p.generateDataKey({ keyId: 'alias/app' }))) as AwsKmsError).errorType).toBe('UnrecognizedClientException');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('works where there is no process.env (a browser), with explicit credentials', async () => {
    const { kms } = await awsEmulator();
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'process')!;
    const p = awsProviderFor(kms);
    const q = awsProviderFor(kms, { credentials: undefined });
    let failed: unknown;
    Object.defineProperty(globalThis, 'process', { value: undefined, configurable: true, writable: true });
    let ok: Promise<unknown>;
    try {
      ok = p.generateDataKey({ keyId: 'alias/app' });
      failed = await rejection(q.generateDataKey({ keyId: 'alias/app' }));
    } finally {
      Object.defineProperty(globalThis, 'process', saved);
    }
    expect(await ok).toBeTruthy();
    expect(failed).toBeInstanceOf(InvalidParameterError);
  });

  it('a credentials callback is asked before every attempt (refreshed credentials); its failure is a ProviderError', async () => {
    const { kms } = await awsEmulator({
      credentials: [
        { accessKeyId: 'AKIAROTATING00000001', secretAccessKey: 'one' },
        { accessKeyId: 'AKIAROTATING00000002', secretAccessKey: 'two', sessionToken: 'token-two' },
      ],
    });
    const given = [
      { accessKeyId: 'AKIAROTATING00000001', secretAccessKey: 'one' },
      { accessKeyId: 'AKIAROTATING00000002', secretAccessKey: 'two', sessionToken: 'token-two' },
    ];
    let calls = 0;
    const p = awsProviderFor(kms, { credentials: async () => given[calls++ % 2]! });
    kms.faults.throttle();
    await p.generateDataKey({ keyId: 'alias/app' });
    expect(calls).toBe(2);
    expect(kms.requests.map((r) => r.accessKeyId)).toEqual(['AKIAROTATING00000001', 'AKIAROTATING00000002']);
    const failing = awsProviderFor(kms, {
      credentials: () => {
        throw new Error('metadata service unreachable');
      },
    });
    const e = await rejection(failing.generateDataKey({ keyId: 'alias/app' }));
    expect(e).toBeInstanceOf(ProviderError);
    expect((e.cause as Error).message).toBe('metadata service unreachable');
    const malformed = awsProviderFor(kms, { credentials: async () => ({ accessKeyId: 'A' }) as never });
    expect(await rejection(malformed.generateDataKey({ keyId: 'alias/app' }))).toBeInstanceOf(InvalidParameterError);
  });

  it('no secret in util.inspect, JSON, or the options errors', async () => {
    const { kms } = await awsEmulator({ credentials: [{ accessKeyId: 'AKIAINSPECT000000001', secretAccessKey: 'inspect-secret-1', sessionToken: 'inspect-token-1' }] });
    const p = awsProviderFor(kms, { credentials: { accessKeyId: 'AKIAINSPECT000000001', secretAccessKey: 'inspect-secret-1', sessionToken: 'inspect-token-1' } });
    const dk = await p.generateDataKey({ keyId: 'alias/app' });
    for (const text of [inspect(p, { depth: 10, showHidden: true }), JSON.stringify(p), String(p)]) {
      expect(text).not.toContain('inspect-secret-1');
      expect(text).not.toContain('inspect-token-1');
    }
    expect(inspect(p)).toBe(`AwsKmsProvider { region: 'us-east-1', endpoint: '${kms.url}/' }`);
    expect(JSON.parse(JSON.stringify(p))).toEqual({ providerId: 'aws-kms', region: 'us-east-1', endpoint: `${kms.url}/`, fips: false });
    // Errors of every kind carry neither the credentials nor the data key.
    const secrets = ['inspect-secret-1', 'inspect-token-1', Buffer.from(dk.plaintext).toString('base64'), hex(dk.plaintext)];
    kms.faults.throttle({ times: Infinity });
    expectNoSecrets(await rejection(p.decrypt({ ciphertextBlob: dk.ciphertextBlob })), secrets);
    kms.faults.clear();
    expectNoSecrets(await rejection(p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { x: 'y' } })), secrets);
    const e = await rejection(Promise.resolve().then(() => new AwsKmsProvider({ region: 'us-east-1', credentials: { accessKeyId: 'AKIA', secretAccessKey: '\n' } })));
    expect(e).toBeInstanceOf(InvalidParameterError);
    expect(e.message).not.toContain('\n"');
    // The request log keeps no secret either.
    const log = JSON.stringify(kms.requests);
    for (const s of secrets) expect(log).not.toContain(s);
    expect(log).toContain('<redacted>');
  });
});

describe('AwsKmsProvider options', () => {
  it('endpoints: region, China regions, FIPS, VPC or custom endpoint, loopback http only', () => {
    const c = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' };
    expect(new AwsKmsProvider({ region: 'eu-west-1', credentials: c }).endpoint).toBe('https://kms.eu-west-1.amazonaws.com/');
    expect(new AwsKmsProvider({ region: 'us-gov-west-1', credentials: c }).endpoint).toBe('https://kms.us-gov-west-1.amazonaws.com/');
    expect(new AwsKmsProvider({ region: 'cn-north-1', credentials: c }).endpoint).toBe('https://kms.cn-north-1.amazonaws.com.cn/');
    expect(new AwsKmsProvider({ region: 'us-east-2', fips: true, credentials: c }).endpoint).toBe('https://kms-fips.us-east-2.amazonaws.com/');
    const vpce = 'https://vpce-0123456789abcdef0-abcdefgh.kms.us-east-1.vpce.amazonaws.com';
    expect(new AwsKmsProvider({ region: 'us-east-1', endpoint: vpce, credentials: c }).endpoint).toBe(vpce + '/');
    expect(new AwsKmsProvider({ region: 'us-east-1', endpoint: 'kms.internal.example', credentials: c }).endpoint).toBe('https://kms.internal.example/');
    expect(new AwsKmsProvider({ region: 'us-east-1', endpoint: 'http://127.0.0.1:4566', credentials: c }).endpoint).toBe('http://127.0.0.1:4566/');
    for (const bad of [
      { region: 'US-EAST-1' },
      { region: undefined as unknown as string },
      { region: 'us-east-1', endpoint: 'http://kms.example.com' },
      { region: 'us-east-1', endpoint: 'https://user:pw@kms.example.com' },
      { region: 'us-east-1', endpoint: 'https://kms.example.com/path' },
      { region: 'us-east-1', fips: 'yes' as unknown as boolean },
      { region: 'us-east-1', maxAttempts: 0 },
      { region: 'us-east-1', maxAttempts: 11 },
      { region: 'us-east-1', timeoutMs: 0 },
      { region: 'us-east-1', retryBaseDelayMs: -1 },
      { region: 'us-east-1', signal: {} as AbortSignal },
      { region: 'us-east-1', now: 5 as unknown as () => number },
      { region: 'us-east-1', credentials: { accessKeyId: 'A/B', secretAccessKey: 'x' } },
      { region: 'us-east-1', credentials: { accessKeyId: 'A', secretAccessKey: '' } },
      { region: 'us-east-1', credentials: { accessKeyId: 'A', secretAccessKey: 'x', sessionToken: 5 as unknown as string } },
    ]) {
      expect(() => new AwsKmsProvider({ credentials: c, ...bad }), JSON.stringify(bad)).toThrow(InvalidParameterError);
    }
    expect(() => new AwsKmsProvider(null as never)).toThrow(InvalidParameterError);
  });
});

describe('AwsKmsProvider round trips (properties)', () => {
  it('generateDataKey → decrypt for any size and context', async () => {
    const { kms } = await awsEmulator();
    const p = awsProviderFor(kms);
    const ctx = fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !k.startsWith('ek:')), fc.string({ maxLength: 40 }), { maxKeys: 6 });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1024 }), ctx, async (n, encryptionContext) => {
        const dk = await p.generateDataKey({ keyId: 'alias/app', numberOfBytes: n, encryptionContext });
        const back = await p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { ...encryptionContext } });
        expect(hex(back.plaintext)).toBe(hex(dk.plaintext));
      }),
      { numRuns },
    );
  });

  it('encrypt → reEncrypt → decrypt for any plaintext of 1..4096 bytes', async () => {
    const { kms } = await awsEmulator();
    kms.createKey({ alias: 'alias/b' });
    const p = awsProviderFor(kms);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 4096 }), fc.string({ maxLength: 10 }), async (pt, v) => {
        const w = await p.encrypt({ keyId: 'alias/app', plaintext: pt, encryptionContext: { v } });
        const m = await p.reEncrypt({ ciphertextBlob: w.ciphertextBlob, sourceEncryptionContext: { v }, destinationKeyId: 'alias/b' });
        expect(hex((await p.decrypt({ ciphertextBlob: m.ciphertextBlob })).plaintext)).toBe(hex(pt));
      }),
      { numRuns },
    );
  });
});
