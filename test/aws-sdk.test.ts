/**
 * The official `@aws-sdk/client-kms` against the emulator, unchanged (its own
 * SigV4 signer, serializer and error parser): every operation, every KeyId
 * form, the service's error shapes as the client reads them (`name`,
 * `message`, `$metadata.httpStatusCode`, `$metadata.requestId`), the limits,
 * authentication failures, and blobs crossing both ways between the official
 * client and AwsKmsProvider.
 */
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  type KMSClient,
  ReEncryptCommand,
} from '@aws-sdk/client-kms';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { awsEmulator, awsProviderFor, hex, rejection, sdkClientFor } from './aws-helpers.js';

const numRuns = Number(process.env['FC_NUM_RUNS'] ?? 20);

interface SdkError extends Error {
  $metadata: { httpStatusCode?: number; requestId?: string };
}

/** A context of 8192 bytes of UTF-8 in all, plus `extra` (values within the keyring's 2048-byte limit). */
function bigContext(extra: number): Record<string, string> {
  const ctx: Record<string, string> = { k1: 'x'.repeat(2046), k2: 'x'.repeat(2046), k3: 'x'.repeat(2046), k4: 'x'.repeat(2046) };
  if (extra > 0) ctx['k'] = 'y'.repeat(extra - 1); // 1 byte of key + extra - 1 bytes of value
  return ctx;
}

async function sdkError(p: Promise<unknown>): Promise<SdkError> {
  return (await rejection(p)) as SdkError;
}

function expectShape(e: SdkError, name: string, kmsRequests: readonly { requestId: string; errorType: string | undefined }[]) {
  expect(e.name).toBe(name);
  expect(e.$metadata.httpStatusCode).toBe(400);
  expect(e.$metadata.requestId).toBe(kmsRequests.at(-1)!.requestId);
  expect(kmsRequests.at(-1)!.errorType).toBe(name);
}

describe('@aws-sdk/client-kms against the emulator', () => {
  it('CreateKey, CreateAlias, DescribeKey, DisableKey, EnableKey', async () => {
    const { kms } = await awsEmulator();
    const c = sdkClientFor(kms);
    const made = await c.send(new CreateKeyCommand({ Description: 'orders' }));
    const md = made.KeyMetadata!;
    expect(md.KeyId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(md.Arn).toBe(`arn:aws:kms:us-east-1:111122223333:key/${md.KeyId}`);
    expect(md).toMatchObject({ Enabled: true, KeyState: 'Enabled', KeyUsage: 'ENCRYPT_DECRYPT', Description: 'orders', MultiRegion: false, AWSAccountId: '111122223333' });
    expect(md.CreationDate).toBeInstanceOf(Date);
    const mrk = (await c.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!;
    expect(mrk.KeyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    expect(mrk.MultiRegion).toBe(true);
    await c.send(new CreateAliasCommand({ AliasName: 'alias/orders', TargetKeyId: md.KeyId }));
    expect((await c.send(new DescribeKeyCommand({ KeyId: 'alias/orders' }))).KeyMetadata!.Arn).toBe(md.Arn);
    expectShape(await sdkError(c.send(new CreateAliasCommand({ AliasName: 'alias/orders', TargetKeyId: md.KeyId }))), 'AlreadyExistsException', kms.requests);
    expectShape(await sdkError(c.send(new CreateAliasCommand({ AliasName: 'alias/aws/x', TargetKeyId: md.KeyId }))), 'ValidationException', kms.requests);
    await c.send(new DisableKeyCommand({ KeyId: md.Arn }));
    expect((await c.send(new DescribeKeyCommand({ KeyId: md.KeyId }))).KeyMetadata!.KeyState).toBe('Disabled');
    expectShape(await sdkError(c.send(new GenerateDataKeyCommand({ KeyId: md.KeyId, KeySpec: 'AES_256' }))), 'DisabledException', kms.requests);
    await c.send(new EnableKeyCommand({ KeyId: md.KeyId }));
    expect((await c.send(new GenerateDataKeyCommand({ KeyId: 'alias/orders', NumberOfBytes: 7 }))).Plaintext!.length).toBe(7);
  });

  it('GenerateDataKey, GenerateDataKeyWithoutPlaintext, Decrypt, Encrypt, ReEncrypt with every KeyId form', async () => {
    const { kms, keyId, arn } = await awsEmulator();
    const other = kms.createKey({ alias: 'alias/other', multiRegion: true });
    const c = sdkClientFor(kms);
    const ctx = { tenant: 't-1', 'ek:purpose': 'envelope-kit/v1/data-key' };
    for (const ref of [keyId, arn, 'alias/app', 'arn:aws:kms:us-east-1:111122223333:alias/app']) {
      const g = await c.send(new GenerateDataKeyCommand({ KeyId: ref, KeySpec: 'AES_128', EncryptionContext: ctx }));
      expect(g.KeyId).toBe(arn);
      expect(g.Plaintext!.length).toBe(16);
      const d = await c.send(new DecryptCommand({ CiphertextBlob: g.CiphertextBlob, EncryptionContext: ctx, KeyId: ref }));
      expect(d.KeyId).toBe(arn);
      expect(d.EncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT');
      expect(hex(d.Plaintext!)).toBe(hex(g.Plaintext!));
      const w = await c.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: ref, NumberOfBytes: 48 }));
      expect(w.KeyId).toBe(arn);
      expect((w as { Plaintext?: unknown }).Plaintext).toBeUndefined();
      expect((await c.send(new DecryptCommand({ CiphertextBlob: w.CiphertextBlob }))).Plaintext!.length).toBe(48);
      const e = await c.send(new EncryptCommand({ KeyId: ref, Plaintext: new Uint8Array([1, 2, 3]), EncryptionContext: ctx }));
      expect(e.KeyId).toBe(arn);
      const r = await c.send(
        new ReEncryptCommand({
          CiphertextBlob: e.CiphertextBlob,
          SourceEncryptionContext: ctx,
          SourceKeyId: ref,
          DestinationKeyId: other.arn,
          DestinationEncryptionContext: { moved: 'yes' },
        }),
      );
      expect(r.KeyId).toBe(other.arn);
      expect(r.SourceKeyId).toBe(arn);
      expect(r.SourceEncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT');
      const d2 = await c.send(new DecryptCommand({ CiphertextBlob: r.CiphertextBlob, EncryptionContext: { moved: 'yes' } }));
      expect([...d2.Plaintext!]).toEqual([1, 2, 3]);
      expect(d2.KeyId).toBe(other.arn);
    }
  });

  it('error shapes as the service returns them: NotFound, Disabled, KMSInvalidState, InvalidCiphertext, IncorrectKey', async () => {
    const { kms, keyId } = await awsEmulator();
    kms.createKey({ alias: 'alias/other' });
    const c = sdkClientFor(kms);
    expectShape(await sdkError(c.send(new GenerateDataKeyCommand({ KeyId: 'alias/nope', KeySpec: 'AES_256' }))), 'NotFoundException', kms.requests);
    expectShape(await sdkError(c.send(new GenerateDataKeyCommand({ KeyId: '00000000-0000-0000-0000-000000000000', KeySpec: 'AES_256' }))), 'NotFoundException', kms.requests);
    const g = await c.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: { a: '1' } }));
    expectShape(await sdkError(c.send(new DecryptCommand({ CiphertextBlob: g.CiphertextBlob, EncryptionContext: { a: '2' } }))), 'InvalidCiphertextException', kms.requests);
    const bad = g.CiphertextBlob!.slice();
    bad[bad.length - 3]! ^= 0x40;
    expectShape(await sdkError(c.send(new DecryptCommand({ CiphertextBlob: bad, EncryptionContext: { a: '1' } }))), 'InvalidCiphertextException', kms.requests);
    expectShape(await sdkError(c.send(new DecryptCommand({ CiphertextBlob: g.CiphertextBlob, EncryptionContext: { a: '1' }, KeyId: 'alias/other' }))), 'IncorrectKeyException', kms.requests);
    const local = kms.keyring.resolveKeyId('alias/app');
    kms.keyring.disableKey(local);
    const dis = await sdkError(c.send(new DecryptCommand({ CiphertextBlob: g.CiphertextBlob, EncryptionContext: { a: '1' } })));
    expectShape(dis, 'DisabledException', kms.requests);
    expect(dis.message).toBe(`${kms.arnOf(local)} is disabled.`);
    kms.keyring.enableKey(local);
    kms.keyring.scheduleKeyDeletion(local);
    expectShape(await sdkError(c.send(new EncryptCommand({ KeyId: keyId, Plaintext: new Uint8Array(1) }))), 'KMSInvalidStateException', kms.requests);
  });

  it('limits: Encrypt plaintext ≤ 4096 bytes, NumberOfBytes 1..1024, KeySpec xor NumberOfBytes, context ≤ 8192 bytes', async () => {
    const { kms } = await awsEmulator();
    const c = sdkClientFor(kms);
    expect((await c.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: new Uint8Array(4096) }))).CiphertextBlob!.length).toBeGreaterThan(4096);
    const cases = [
      new EncryptCommand({ KeyId: 'alias/app', Plaintext: new Uint8Array(4097) }),
      new GenerateDataKeyCommand({ KeyId: 'alias/app', NumberOfBytes: 0 }),
      new GenerateDataKeyCommand({ KeyId: 'alias/app', NumberOfBytes: 1025 }),
      new GenerateDataKeyCommand({ KeyId: 'alias/app', NumberOfBytes: 32, KeySpec: 'AES_256' }),
      new GenerateDataKeyCommand({ KeyId: 'alias/app' }),
      new GenerateDataKeyCommand({ KeyId: 'alias/app', KeySpec: 'AES_256', EncryptionContext: bigContext(1) }),
      new DecryptCommand({ CiphertextBlob: new Uint8Array(6145) }),
    ];
    for (const cmd of cases) expectShape(await sdkError(c.send(cmd as never)), 'ValidationException', kms.requests);
    expect((await c.send(new GenerateDataKeyCommand({ KeyId: 'alias/app', NumberOfBytes: 1024 }))).Plaintext!.length).toBe(1024);
    expect((await c.send(new GenerateDataKeyCommand({ KeyId: 'alias/app', NumberOfBytes: 1 }))).Plaintext!.length).toBe(1);
    const ok = await c.send(new GenerateDataKeyCommand({ KeyId: 'alias/app', KeySpec: 'AES_256', EncryptionContext: bigContext(0) }));
    expect(ok.Plaintext!.length).toBe(32);
  });

  it('authentication: wrong secret, unknown access key, wrong session token, skewed clock, altered body', async () => {
    const { kms } = await awsEmulator({ credentials: [{ accessKeyId: 'AKIAOFFICIALCLIENT01', secretAccessKey: 'official-secret', sessionToken: 'official-token' }] });
    const good = { accessKeyId: 'AKIAOFFICIALCLIENT01', secretAccessKey: 'official-secret', sessionToken: 'official-token' };
    const gdk = new GenerateDataKeyCommand({ KeyId: 'alias/app', KeySpec: 'AES_256' });
    expect((await sdkClientFor(kms, good).send(gdk)).Plaintext!.length).toBe(32);
    const cases: [KMSClient, string][] = [
      [sdkClientFor(kms, { ...good, secretAccessKey: 'not-the-secret' }), 'InvalidSignatureException'],
      [sdkClientFor(kms, { ...good, accessKeyId: 'AKIANOBODY0000000000' }), 'UnrecognizedClientException'],
      [sdkClientFor(kms, { ...good, sessionToken: 'stale-token' }), 'UnrecognizedClientException'],
      [sdkClientFor(kms, { accessKeyId: good.accessKeyId, secretAccessKey: good.secretAccessKey }), 'UnrecognizedClientException'],
    ];
    for (const [client, name] of cases) expectShape(await sdkError(client.send(gdk)), name, kms.requests);
    const skewed = sdkClientFor(kms, good);
    skewed.config.systemClockOffset = -10 * 60_000;
    const e = await sdkError(skewed.send(gdk));
    expectShape(e, 'InvalidSignatureException', kms.requests);
    expect(e.message).toMatch(/^Signature expired: \d{8}T\d{6}Z is now earlier than/);
    const altered = sdkClientFor(kms, good);
    altered.middlewareStack.addRelativeTo(
      ((next: (a: unknown) => Promise<unknown>) => async (args: { request: { body: string | Uint8Array } }) => {
        const body = args.request.body;
        const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
        args.request.body = text.replace('AES_256', 'AES_128');
        return next(args);
      }) as never,
      { relation: 'after', toMiddleware: 'awsAuthMiddleware', name: 'alterBodyAfterSigning' },
    );
    expectShape(await sdkError(altered.send(gdk)), 'InvalidSignatureException', kms.requests);
    // A missing Authorization header: the service's MissingAuthenticationTokenException (raw request).
    const res = await fetch(kms.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.GenerateDataKey' },
      body: '{}',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    expect(await res.json()).toEqual({ __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
    // The request log holds no secret.
    const log = JSON.stringify(kms.requests);
    for (const s of ['official-secret', 'official-token', 'stale-token']) expect(log).not.toContain(s);
  });

  it('retries the emulator\u2019s injected throttling and 5xx as the SDK does', async () => {
    const { kms } = await awsEmulator();
    const c = sdkClientFor(kms, kms.credentials, 3);
    kms.faults.throttle();
    kms.faults.serverError();
    const g = await c.send(new GenerateDataKeyCommand({ KeyId: 'alias/app', KeySpec: 'AES_256' }));
    expect(g.Plaintext!.length).toBe(32);
    expect(kms.requests.map((r) => r.status)).toEqual([400, 500, 200]);
    expect(kms.requests.map((r) => r.errorType)).toEqual(['ThrottlingException', 'KMSInternalException', undefined]);
  }, 20_000);
});

describe('blobs cross both ways between @aws-sdk/client-kms and AwsKmsProvider', () => {
  it('GenerateDataKeyWithoutPlaintext both ways, through an alias ARN and a multi-Region key', async () => {
    const { kms } = await awsEmulator();
    const mrk = kms.createKey({ alias: 'alias/mrk', multiRegion: true });
    const c = sdkClientFor(kms);
    const p = awsProviderFor(kms);
    const w = await p.generateDataKeyWithoutPlaintext({ keyId: 'arn:aws:kms:us-east-1:111122223333:alias/mrk', keySpec: 'AES_128' });
    expect(w.keyId).toBe(mrk.arn);
    const d = await c.send(new DecryptCommand({ CiphertextBlob: w.ciphertextBlob, KeyId: mrk.keyId }));
    expect(d.KeyId).toBe(mrk.arn);
    expect(d.Plaintext!.length).toBe(16);
    const o = await c.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: mrk.arn, NumberOfBytes: 5, EncryptionContext: { k: 'v' } }));
    const back = await p.decrypt({ ciphertextBlob: o.CiphertextBlob!, encryptionContext: { k: 'v' }, keyId: 'alias/mrk' });
    expect(back.keyId).toBe(mrk.arn);
    expect(back.plaintext.length).toBe(5);
  });

  it('official GenerateDataKey / Encrypt / ReEncrypt → provider decrypt, and provider → official Decrypt (property)', async () => {
    const { kms, arn } = await awsEmulator();
    kms.createKey({ alias: 'alias/b' });
    const c = sdkClientFor(kms);
    const p = awsProviderFor(kms);
    const ctxArb = fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 24 }), { maxKeys: 4 });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1024 }), ctxArb, fc.uint8Array({ minLength: 1, maxLength: 4096 }), async (n, ctx, data) => {
        const g = await c.send(new GenerateDataKeyCommand({ KeyId: 'alias/app', NumberOfBytes: n, EncryptionContext: ctx }));
        const d = await p.decrypt({ ciphertextBlob: g.CiphertextBlob!, encryptionContext: ctx });
        expect(d.keyId).toBe(arn);
        expect(hex(d.plaintext)).toBe(hex(g.Plaintext!));

        const dk = await p.generateDataKey({ keyId: 'alias/app', numberOfBytes: n, encryptionContext: ctx });
        const od = await c.send(new DecryptCommand({ CiphertextBlob: dk.ciphertextBlob, EncryptionContext: ctx }));
        expect(hex(od.Plaintext!)).toBe(hex(dk.plaintext));

        const oe = await c.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: data, EncryptionContext: ctx }));
        const moved = await p.reEncrypt({ ciphertextBlob: oe.CiphertextBlob!, sourceEncryptionContext: ctx, destinationKeyId: 'alias/b' });
        const back = await c.send(new DecryptCommand({ CiphertextBlob: moved.ciphertextBlob }));
        expect(hex(back.Plaintext!)).toBe(hex(data));

        const pe = await p.encrypt({ keyId: 'alias/app', plaintext: data, encryptionContext: ctx });
        const ore = await c.send(new ReEncryptCommand({ CiphertextBlob: pe.ciphertextBlob, SourceEncryptionContext: ctx, DestinationKeyId: 'alias/b' }));
        expect(hex((await p.decrypt({ ciphertextBlob: ore.CiphertextBlob! })).plaintext)).toBe(hex(data));
      }),
      { numRuns },
    );
  });
});
