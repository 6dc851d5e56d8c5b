/**
 * The loopback KMS emulator on its own, spoken to with hand-built requests:
 * what it accepts (V1 over GET and POST, V3 with query or form parameters,
 * both context styles), what it refuses and how (unsigned headers, body hash,
 * replays, stale clocks, unknown actions and versions), the real error and XML
 * shapes, scoped fault injection, and the command line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/providers/alibaba/emulator/cli.js';
import { type KmsEmulator, emulatorKeyVersionId, startKmsEmulator } from '../src/providers/alibaba/emulator/index.js';
import { base64Decode } from '../src/internal/base64.js';
import { LocalKeyring } from '../src/providers/local/keyring.js';
import { saveKeyring } from '../src/providers/local/file.node.js';
import { type Param, canonicalQuery, hashPayload, headersToSign, v1Signature, v3Authorization, v3CanonicalRequest, v3Signature } from '../src/providers/alibaba/index.js';
import { emulator, providerFor, utf8 } from './alibaba-helpers.js';

let nonceCounter = 0;
const nonce = () => `test-nonce-${process.pid}-${++nonceCounter}-${Math.random()}`;
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

interface V3Options {
  readonly query?: Param[];
  readonly form?: Param[];
  readonly extraHeaders?: Record<string, string>;
  readonly unsignedHeaders?: Record<string, string>;
  readonly payloadHash?: string;
  readonly version?: string;
  readonly nonce?: string;
}

/** A V3-signed request to the emulator, built by hand. */
function v3Request(kms: KmsEmulator, action: string, o: V3Options = {}): [string, RequestInit] {
  const body = o.form ? canonicalQuery(o.form) : '';
  const headers: Record<string, string> = {
    'x-acs-action': action,
    'x-acs-version': o.version ?? '2016-01-20',
    'x-acs-date': now(),
    'x-acs-signature-nonce': o.nonce ?? nonce(),
    'x-acs-content-sha256': o.payloadHash ?? hashPayload(utf8(body)),
    ...(o.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
    ...o.extraHeaders,
  };
  const signed = headersToSign(['host', ...Object.keys(headers)]);
  const canonical = v3CanonicalRequest({
    method: 'POST',
    canonicalUri: '/',
    query: o.query ?? [],
    headers: { ...headers, host: kms.endpoint },
    signedHeaders: signed,
    hashedPayload: headers['x-acs-content-sha256']!,
  });
  headers['authorization'] = v3Authorization(kms.credentials.accessKeyId, signed, v3Signature(canonical, kms.credentials.accessKeySecret));
  const q = canonicalQuery(o.query ?? []);
  return [`${kms.url}/${q ? `?${q}` : ''}`, { method: 'POST', headers: { ...headers, ...o.unsignedHeaders }, body: o.form ? body : undefined }];
}

/** A V1-signed request (all parameters in the query). */
function v1Request(kms: KmsEmulator, method: 'GET' | 'POST', action: string, params: Param[], format?: string): [string, RequestInit] {
  const all: Param[] = [
    ...params,
    ['Action', action],
    ['Version', '2016-01-20'],
    ['AccessKeyId', kms.credentials.accessKeyId],
    ['SignatureMethod', 'HMAC-SHA1'],
    ['SignatureVersion', '1.0'],
    ['SignatureNonce', nonce()],
    ['Timestamp', now()],
    ...(format ? ([['Format', format]] as Param[]) : []),
  ];
  all.push(['Signature', v1Signature(method, all, kms.credentials.accessKeySecret)]);
  return [`${kms.url}/?${canonicalQuery(all)}`, { method }];
}

async function send([url, init]: [string, RequestInit]): Promise<{ status: number; json: Record<string, string>; text: string; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let json: Record<string, string> = {};
  try {
    json = JSON.parse(text);
  } catch {
    /* XML */
  }
  return { status: res.status, json, text, headers: res.headers };
}

describe('what the emulator accepts', () => {
  it('listens on 127.0.0.1 only and answers in the documented shape', async () => {
    const { kms, keyId } = await emulator();
    expect(kms.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await send(v3Request(kms, 'GenerateDataKey', { query: [['KeyId', 'alias/app']] }));
    expect(r.status).toBe(200);
    expect(Object.keys(r.json).sort()).toEqual(['CiphertextBlob', 'KeyId', 'KeyVersionId', 'Plaintext', 'RequestId']);
    expect(r.json['KeyId']).toBe(keyId);
    expect(r.json['KeyVersionId']).toBe(emulatorKeyVersionId(keyId, 1));
    expect(r.headers.get('x-acs-request-id')).toBe(r.json['RequestId']);
    expect(base64Decode(r.json['Plaintext']!)).toHaveLength(32);
  });

  it('takes V3 parameters from a form body covered by x-acs-content-sha256', async () => {
    const { kms } = await emulator();
    const r = await send(v3Request(kms, 'GenerateDataKeyWithoutPlaintext', { form: [['KeyId', 'alias/app'], ['KeySpec', 'AES_128']] }));
    expect(r.status).toBe(200);
    expect(Object.keys(r.json).sort()).toEqual(['CiphertextBlob', 'KeyId', 'KeyVersionId', 'RequestId']);
    const p = providerFor(kms);
    expect((await p.decrypt({ ciphertextBlob: base64Decode(r.json['CiphertextBlob']!)! })).plaintext).toHaveLength(16);
    // A body that is not what was hashed is refused.
    const tampered = v3Request(kms, 'GenerateDataKey', { form: [['KeyId', 'alias/app']] });
    tampered[1] = { ...tampered[1], body: 'KeyId=alias%2Fother' };
    expect((await send(tampered)).json['Code']).toBe('SignatureDoesNotMatch');
  });

  it('takes V1 over GET and POST; answers XML when no Format is given, as the RPC API does', async () => {
    const { kms } = await emulator();
    const get = await send(v1Request(kms, 'GET', 'GenerateDataKey', [['KeyId', 'alias/app']], 'JSON'));
    expect(get.status).toBe(200);
    const xml = await send(v1Request(kms, 'POST', 'GenerateDataKey', [['KeyId', 'alias/app']]));
    expect(xml.status).toBe(200);
    expect(xml.headers.get('content-type')).toBe('text/xml;charset=utf-8');
    expect(xml.text).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?><GenerateDataKeyResponse><KeyId>[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}<\/KeyId><KeyVersionId>/);
    const err = await send(v1Request(kms, 'POST', 'GenerateDataKey', [['KeyId', 'nokey']]));
    expect(err.status).toBe(404);
    expect(err.text).toMatch(/<Error><RequestId>[0-9A-F-]+<\/RequestId><HostId>kms\.cn-hangzhou\.aliyuncs\.com<\/HostId><Code>Forbidden\.KeyNotFound<\/Code><Message>The specified Key is not found\.<\/Message><Recommend>https:\/\/api\.aliyun\.com\/troubleshoot\?[^<]+<\/Recommend><\/Error>$/);
  });

  it('reads EncryptionContext as JSON or flattened, never both', async () => {
    const { kms } = await emulator();
    const flat = await send(v3Request(kms, 'GenerateDataKey', { query: [['KeyId', 'alias/app'], ['EncryptionContext.a', '1'], ['EncryptionContext.b.c', '2']] }));
    expect(flat.status).toBe(200);
    const p = providerFor(kms);
    const blob = base64Decode(flat.json['CiphertextBlob']!)!;
    expect((await p.decrypt({ ciphertextBlob: blob, encryptionContext: { 'b.c': '2', a: '1' } })).plaintext).toHaveLength(32);
    const both = await send(v3Request(kms, 'GenerateDataKey', { query: [['KeyId', 'alias/app'], ['EncryptionContext', '{"a":"1"}'], ['EncryptionContext.a', '1']] }));
    expect([both.status, both.json['Code'], both.json['Message']]).toEqual([400, 'InvalidParameter', 'The specified parameter "EncryptionContext" is not valid.']);
    for (const bad of ['[1]', '{"a":1}', 'not json', '{"":"x"}']) {
      expect((await send(v3Request(kms, 'GenerateDataKey', { query: [['KeyId', 'alias/app'], ['EncryptionContext', bad]] }))).json['Code'], bad).toBe('InvalidParameter');
    }
  });
});

describe('what the emulator refuses', () => {
  it('parameter errors: missing, out of range, unknown spec', async () => {
    const { kms } = await emulator();
    const code = async (query: Param[], action = 'GenerateDataKey') => (await send(v3Request(kms, action, { query }))).json;
    expect(await code([])).toMatchObject({ Code: 'MissingParameter', Message: 'The parameter "KeyId" is needed but not provided.' });
    expect((await code([['KeyId', 'alias/app'], ['NumberOfBytes', '0']])).Code).toBe('InvalidParameter');
    expect((await code([['KeyId', 'alias/app'], ['NumberOfBytes', '1025']])).Code).toBe('InvalidParameter');
    expect((await code([['KeyId', 'alias/app'], ['NumberOfBytes', '01']])).Code).toBe('InvalidParameter');
    expect((await code([['KeyId', 'alias/app'], ['KeySpec', 'AES_512']])).Code).toBe('InvalidParameter');
    expect((await code([['CiphertextBlob', 'not base64!']], 'Decrypt')).Code).toBe('InvalidParameter');
    expect((await code([['CiphertextBlob', 'AAAA']], 'Decrypt')).Code).toBe('InvalidParameter');
    expect((await code([['KeyId', 'alias/app']], 'Encrypt')).Code).toBe('MissingParameter');
  });

  it('unsigned x-acs headers, malformed Authorization, no signature at all → IncompleteSignature', async () => {
    const { kms } = await emulator();
    const unsigned = await send(v3Request(kms, 'GenerateDataKey', { query: [['KeyId', 'alias/app']], unsignedHeaders: { 'x-acs-extra': '1' } }));
    expect([unsigned.status, unsigned.json['Code']]).toEqual([400, 'IncompleteSignature']);
    const [url, init] = v3Request(kms, 'GenerateDataKey', { query: [['KeyId', 'alias/app']] });
    const headers = { ...(init.headers as Record<string, string>) };
    headers['authorization'] = headers['authorization']!.replace('SignedHeaders=host;', 'SignedHeaders=');
    expect((await send([url, { ...init, headers }])).json['Code']).toBe('IncompleteSignature');
    expect((await send([`${kms.url}/?Action=GenerateDataKey&KeyId=x`, { method: 'POST' }])).json['Code']).toBe('IncompleteSignature');
    expect((await send([`${kms.url}/`, { method: 'POST', headers: { authorization: 'Bearer x' } }])).json['Code']).toBe('IncompleteSignature');
  });

  it('a changed parameter or header → SignatureDoesNotMatch (V1 echoes its string to sign, as the gateway does)', async () => {
    const { kms } = await emulator();
    const [url, init] = v3Request(kms, 'GenerateDataKey', { query: [['KeyId', 'alias/app']] });
    expect((await send([url.replace('alias%2Fapp', 'alias%2Fapq'), init])).json['Code']).toBe('SignatureDoesNotMatch');
    const [u1, i1] = v1Request(kms, 'POST', 'GenerateDataKey', [['KeyId', 'alias/app']], 'JSON');
    const r = await send([u1.replace('KeyId=alias%2Fapp', 'KeyId=alias%2Fapq'), i1]);
    expect(r.json['Code']).toBe('SignatureDoesNotMatch');
    expect(r.json['Message']).toContain('server string to sign is:POST&%2F&');
    // Same request over the other method: the method is signed.
    expect((await send([u1, { method: 'GET' }])).json['Code']).toBe('SignatureDoesNotMatch');
  });

  it('a replayed request → SignatureNonceUsed; a stale one → InvalidTimeStamp.Expired', async () => {
    const { kms } = await emulator();
    const req = v3Request(kms, 'GenerateDataKey', { query: [['KeyId', 'alias/app']] });
    expect((await send(req)).status).toBe(200);
    expect((await send(req)).json).toMatchObject({ Code: 'SignatureNonceUsed' });
    const v1 = v1Request(kms, 'POST', 'GenerateDataKey', [['KeyId', 'alias/app']], 'JSON');
    expect((await send(v1)).status).toBe(200);
    expect((await send(v1)).json['Code']).toBe('SignatureNonceUsed');

    let clock = Date.now();
    const skewed = await startKmsEmulator({ now: () => clock, maxClockSkewMs: 60_000 });
    try {
      skewed.keyring.createKey({ alias: 'alias/app' });
      const fresh = v3Request(skewed, 'GenerateDataKey', { query: [['KeyId', 'alias/app']] });
      clock += 61_000;
      expect((await send(fresh)).json['Code']).toBe('InvalidTimeStamp.Expired');
      const bad = v3Request(skewed, 'GenerateDataKey', { query: [['KeyId', 'alias/app']], extraHeaders: { 'x-acs-date': '2016-02-23T12:46:24.000Z' } });
      expect((await send(bad)).json['Code']).toBe('IllegalTimestamp');
    } finally {
      await skewed.close();
    }
  });

  it('unknown actions, versions and methods; a path other than /', async () => {
    const { kms } = await emulator();
    expect((await send(v3Request(kms, 'CreateKey'))).json).toMatchObject({ Code: 'InvalidAction.NotFound' });
    expect((await send(v3Request(kms, 'GenerateDataKey', { version: '2020-01-01', query: [['KeyId', 'alias/app']] }))).json['Code']).toBe('InvalidVersion');
    expect((await send([`${kms.url}/`, { method: 'PUT' }])).status).toBe(403);
    expect((await send([`${kms.url}/x?a=b`, { method: 'POST' }])).status).toBe(404);
    expect((await send([`${kms.url}/?a=%E0%A4%A`, { method: 'POST' }])).json['Code']).toBe('InvalidParameter');
  });

  it('every error carries RequestId, HostId, Code, Message and Recommend', async () => {
    const { kms } = await emulator();
    const r = await send(v3Request(kms, 'GenerateDataKey', { query: [['KeyId', 'nokey']] }));
    expect(r.status).toBe(404);
    expect(Object.keys(r.json)).toEqual(['RequestId', 'HostId', 'Code', 'Message', 'Recommend']);
    expect(r.json['HostId']).toBe('kms.cn-hangzhou.aliyuncs.com');
    expect(kms.requests.at(-1)).toMatchObject({ status: 404, code: 'Forbidden.KeyNotFound', action: 'GenerateDataKey', signatureVersion: 'v3' });
  });
});

describe('fault injection', () => {
  it('scopes faults to actions and counts', async () => {
    const { kms } = await emulator();
    kms.faults.throttle({ actions: ['Decrypt'], times: 2 });
    kms.faults.error({ status: 409, code: 'Rejected.Disabled', actions: ['Encrypt'] });
    expect(kms.faults.pending).toBe(2);
    expect((await send(v3Request(kms, 'GenerateDataKey', { query: [['KeyId', 'alias/app']] }))).status).toBe(200);
    expect((await send(v3Request(kms, 'Decrypt', { query: [['CiphertextBlob', 'AAAA']] }))).json['Code']).toBe('Throttling');
    expect((await send(v3Request(kms, 'Decrypt', { query: [['CiphertextBlob', 'AAAA']] }))).json['Code']).toBe('Throttling');
    expect((await send(v3Request(kms, 'Decrypt', { query: [['CiphertextBlob', 'AAAA']] }))).json['Code']).toBe('InvalidParameter');
    expect(kms.faults.pending).toBe(1);
    kms.faults.clear();
    expect(kms.faults.pending).toBe(0);
    expect(() => kms.faults.error({ status: 200, code: 'x' })).toThrow(RangeError);
    expect(() => kms.faults.latency(-1)).toThrow(RangeError);
    expect(() => kms.faults.throttle({ times: 0 })).toThrow(RangeError);
  });

  it('checks its own options', async () => {
    for (const o of [{ port: -1 }, { port: 70000 }, { keyring: {} }, { credentials: [] }, { maxClockSkewMs: 1.5 }]) {
      await expect(startKmsEmulator(o as never), JSON.stringify(o)).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    }
  });
});

describe('the envelope-kit-kms-emulator command', () => {
  let out = '';
  afterEach(() => {
    vi.restoreAllMocks();
    out = '';
  });
  const capture = () =>
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });

  it('starts on a fresh keyring with alias/dev and prints the endpoint and test credentials', async () => {
    capture();
    const stop = await main([]);
    try {
      expect(out).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
      expect(out).toMatch(/export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI[0-9a-f]{20}/);
      expect(out).toContain('alias/dev');
    } finally {
      await stop();
    }
  });

  it('serves a keyring file, and prints JSON on request', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ek-emu-'));
    try {
      const kr = new LocalKeyring();
      const { keyId } = kr.createKey({ alias: 'alias/from-file' });
      const file = join(dir, 'k.json');
      await saveKeyring(file, kr, { protection: 'none' });
      // A keyring file needs --passphrase-env or an explicit --unprotected-keyring.
      await expect(main(['--keyring', file, '--json'])).rejects.toThrow('--unprotected-keyring');
      await expect(main(['--keyring', file, '--passphrase-env', 'EK_TEST_UNSET_VARIABLE'])).rejects.toThrow('is not set');
      await expect(main(['--unprotected-keyring'])).rejects.toThrow('need --keyring');
      capture();
      const stop = await main(['--keyring', file, '--unprotected-keyring', '--json']);
      try {
        const info = JSON.parse(out) as { url: string; credentials: { accessKeyId: string; accessKeySecret: string }; keys: { keyId: string }[] };
        expect(info.keys.map((k) => k.keyId)).toEqual([keyId]);
        vi.restoreAllMocks();
        const p = providerFor({ url: info.url, credentials: info.credentials } as KmsEmulator);
        expect((await p.generateDataKey({ keyId: 'alias/from-file' })).keyId).toBe(keyId);
      } finally {
        await stop();
      }
      await expect(main(['--port', 'x'])).rejects.toThrow('--port');
      await expect(main(['--bogus'])).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
