/**
 * The AWS KMS emulator itself: loopback only, the JSON 1.1 wire (content type,
 * target, body), SigV4 checks on hand-made requests, the request log with
 * secrets redacted, fault injection, options, and the command line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { saveKeyring } from '../src/providers/local/file.node.js';
import { LocalKeyring } from '../src/providers/local/keyring.js';
import { main } from '../src/providers/aws/emulator/cli.js';
import { type AwsKmsEmulator, startAwsKmsEmulator } from '../src/providers/aws/emulator/index.js';
import { AwsKmsProvider } from '../src/providers/aws/index.js';
import { signRequest } from '../src/providers/aws/sigv4.js';
import { awsEmulator, awsProviderFor, rejection } from './aws-helpers.js';

/** Send a request signed as the provider signs, with the given target, content type and body. */
async function send(
  kms: AwsKmsEmulator,
  target: string | undefined,
  body: string,
  opts: { contentType?: string; method?: string; path?: string; sign?: boolean } = {},
): Promise<{ status: number; json: Record<string, unknown>; requestId: string | null }> {
  const host = new URL(kms.url).host;
  const base: Record<string, string> = { host, 'content-type': opts.contentType ?? 'application/x-amz-json-1.1' };
  if (target !== undefined) base['x-amz-target'] = target;
  const bytes = new TextEncoder().encode(body);
  const headers =
    opts.sign === false
      ? base
      : signRequest({ method: opts.method ?? 'POST', path: opts.path ?? '/', headers: base, body: bytes, credentials: kms.credentials, region: kms.region, service: 'kms', now: Date.now() });
  delete headers['host'];
  const res = await fetch(kms.url + (opts.path ?? '/'), { method: opts.method ?? 'POST', headers, body: opts.method === 'GET' ? undefined : bytes });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, requestId: res.headers.get('x-amzn-requestid') };
}

describe('AWS KMS emulator wire', () => {
  it('listens on 127.0.0.1 only and answers in the service shape', async () => {
    const { kms, arn } = await awsEmulator();
    expect(kms.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await send(kms, 'TrentService.GenerateDataKey', JSON.stringify({ KeyId: 'alias/app', NumberOfBytes: 32 }));
    expect(r.status).toBe(200);
    expect(Object.keys(r.json).sort()).toEqual(['CiphertextBlob', 'KeyId', 'KeyMaterialId', 'Plaintext']);
    expect(r.json['KeyId']).toBe(arn);
    expect(r.requestId).toBe(kms.requests.at(-1)!.requestId);
  });

  it('refuses what the service refuses: no target, unknown operation, wrong content type, bad JSON, other paths', async () => {
    const { kms } = await awsEmulator();
    const cases: [Parameters<typeof send>, string][] = [
      [[kms, 'TrentService.Nope', '{}'], 'UnknownOperationException'],
      [[kms, 'Other.GenerateDataKey', '{}'], 'UnknownOperationException'],
      [[kms, 'TrentService.GenerateDataKey', '{}', { contentType: 'application/json' }], 'SerializationException'],
      [[kms, 'TrentService.GenerateDataKey', '{"KeyId":'], 'SerializationException'],
      [[kms, 'TrentService.GenerateDataKey', '[]'], 'SerializationException'],
      [[kms, 'TrentService.GenerateDataKey', '{"KeyId":5,"KeySpec":"AES_256"}'], 'SerializationException'],
      [[kms, 'TrentService.GenerateDataKey', '{"KeySpec":"AES_256"}'], 'ValidationException'],
      [[kms, 'TrentService.Decrypt', '{"CiphertextBlob":"%%%"}'], 'SerializationException'],
      [[kms, 'TrentService.Decrypt', '{"CiphertextBlob":"AAAA","EncryptionAlgorithm":"RSAES_OAEP_SHA_1"}'], 'ValidationException'],
      [[kms, 'TrentService.Decrypt', '{"CiphertextBlob":"AAAA","EncryptionContext":{"a":1}}'], 'SerializationException'],
      [[kms, 'TrentService.GenerateDataKey', '{}', { path: '/other' }], 'UnknownOperationException'],
      [[kms, 'TrentService.GenerateDataKey', '{}', { sign: false }], 'MissingAuthenticationTokenException'],
    ];
    for (const [args, type] of cases) {
      const r = await send(...args);
      expect(r.status, type).toBe(400);
      expect(r.json['__type'], JSON.stringify(args.slice(1))).toBe(type);
      expect(typeof r.json['message']).toBe('string');
    }
  });

  it('an injected fault answers after authentication; a bad signature is refused before it', async () => {
    const { kms } = await awsEmulator();
    kms.faults.error({ status: 400, type: 'AccessDeniedException', message: 'denied', actions: ['Decrypt'] });
    const bad = new AwsKmsProvider({ region: kms.region, endpoint: kms.url, credentials: { ...kms.credentials, secretAccessKey: 'wrong' }, maxAttempts: 1 });
    await rejection(bad.decrypt({ ciphertextBlob: new Uint8Array(40) }));
    expect(kms.faults.pending).toBe(1);
    expect(kms.requests.at(-1)!.errorType).toBe('InvalidSignatureException');
    const p = awsProviderFor(kms);
    await p.generateDataKey({ keyId: 'alias/app' });
    expect(kms.faults.pending).toBe(1);
    await rejection(p.decrypt({ ciphertextBlob: new Uint8Array(40) }));
    expect(kms.faults.pending).toBe(0);
    expect(kms.requests.at(-1)!.errorType).toBe('AccessDeniedException');
  });

  it('the request log names operations and members, never a secret or a plaintext', async () => {
    const { kms } = await awsEmulator({ credentials: [{ accessKeyId: 'AKIALOGGED0000000001', secretAccessKey: 'log-secret', sessionToken: 'log-token' }] });
    const p = awsProviderFor(kms, { credentials: { accessKeyId: 'AKIALOGGED0000000001', secretAccessKey: 'log-secret', sessionToken: 'log-token' } });
    const plaintext = new TextEncoder().encode('a plaintext that must not be logged');
    const w = await p.encrypt({ keyId: 'alias/app', plaintext });
    const d = await p.decrypt({ ciphertextBlob: w.ciphertextBlob });
    const log = JSON.stringify(kms.requests);
    for (const s of ['log-secret', 'log-token', Buffer.from(plaintext).toString('base64'), Buffer.from(d.plaintext).toString('base64')]) expect(log).not.toContain(s);
    expect(kms.requests.map((r) => [r.operation, r.members, r.status])).toEqual([
      ['Encrypt', ['KeyId', 'Plaintext'], 200],
      ['Decrypt', ['CiphertextBlob'], 200],
    ]);
    expect(kms.requests[0]!.headers['x-amz-security-token']).toBe('<redacted>');
    expect(kms.requests[0]!.headers['authorization']).toMatch(/Credential=AKIALOGGED0000000001\/\d{8}\/us-east-1\/kms\/aws4_request, SignedHeaders=[a-z;-]+, Signature=<redacted>$/);
  });

  it('a region and account of its own; ARNs of another region or account are not found', async () => {
    const kms = await startAwsKmsEmulator({ region: 'eu-central-1', accountId: '444455556666' });
    try {
      const { arn } = kms.createKey({ alias: 'alias/eu' });
      expect(arn).toMatch(/^arn:aws:kms:eu-central-1:444455556666:key\/[0-9a-f-]{36}$/);
      const p = awsProviderFor(kms);
      expect((await p.generateDataKey({ keyId: arn })).keyId).toBe(arn);
      await expect(p.generateDataKey({ keyId: arn.replace('eu-central-1', 'eu-west-1') })).rejects.toMatchObject({ code: 'ERR_KEY_NOT_FOUND' });
      await expect(p.generateDataKey({ keyId: arn.replace('444455556666', '111122223333') })).rejects.toMatchObject({ code: 'ERR_KEY_NOT_FOUND' });
      // Signed for another region: refused.
      const other = awsProviderFor(kms, { region: 'us-east-1' });
      await expect(other.generateDataKey({ keyId: arn })).rejects.toMatchObject({ errorType: 'InvalidSignatureException' });
    } finally {
      await kms.close();
    }
  });

  it('checks its options', async () => {
    for (const bad of [{ port: -1 }, { region: 'nowhere' }, { accountId: '12' }, { keyring: {} as LocalKeyring }, { credentials: [] }, { maxBodyBytes: 1 }]) {
      await expect(startAwsKmsEmulator(bad)).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    }
  });
});

describe('envelope-kit-aws-emulator', () => {
  let out = '';
  const capture = () => {
    out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
  };
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('starts on a fresh keyring with alias/dev and prints the endpoint and test credentials', async () => {
    capture();
    const stop = await main([]);
    try {
      expect(out).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+ \(region us-east-1\)/);
      expect(out).toMatch(/export AWS_ACCESS_KEY_ID=AKIA[A-Z2-7]{16}/);
      expect(out).toMatch(/arn:aws:kms:us-east-1:111122223333:key\/[0-9a-f-]{36}\s+Enabled\s+alias\/dev/);
    } finally {
      await stop();
    }
  });

  it('serves a keyring file in a region, prints JSON, and refuses bad arguments', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ek-aws-emu-'));
    try {
      const kr = new LocalKeyring();
      const { keyId } = kr.createKey({ alias: 'alias/from-file' });
      const file = join(dir, 'k.json');
      await saveKeyring(file, kr, { protection: 'none' });
      await expect(main(['--keyring', file, '--json'])).rejects.toThrow('--unprotected-keyring');
      await expect(main(['--keyring', file, '--passphrase-env', 'EK_TEST_UNSET_VARIABLE'])).rejects.toThrow('is not set');
      capture();
      const stop = await main(['--keyring', file, '--unprotected-keyring', '--region', 'ap-south-1', '--json']);
      try {
        const info = JSON.parse(out) as { url: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string }; keys: { arn: string }[] };
        expect(info.region).toBe('ap-south-1');
        expect(info.keys.map((k) => k.arn)).toEqual([`arn:aws:kms:ap-south-1:111122223333:key/${keyId}`]);
        vi.restoreAllMocks();
        const p = new AwsKmsProvider({ region: info.region, endpoint: info.url, credentials: info.credentials });
        expect((await p.generateDataKey({ keyId: 'alias/from-file' })).keyId).toBe(info.keys[0]!.arn);
      } finally {
        await stop();
      }
      await expect(main(['--port', 'x'])).rejects.toThrow('--port');
      await expect(main(['--region', 'x'])).rejects.toThrow('region');
      await expect(main(['--bogus'])).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
