/**
 * The Alibaba Cloud KMS provider and emulator at the service's own limits: 6 KiB `Encrypt`,
 * blobs over 4096 bytes, contexts up to 8192 characters of JSON, `KeySpec` sent as asked,
 * `GenerateDataKeyWithoutPlaintext`, any `Throttling*` code retried, `Recommend` kept, redirects
 * refused (`redirect: 'manual'`), parameters in a form body (nothing secret in a URL), and the
 * emulator's service-shaped answers (`HostId`, `Recommend`, `DryRunOperation`, CORS, KMS-shaped
 * errors for what Node's parser refuses, redacted recordings).
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  AlibabaKmsError,
  AlibabaKmsProvider,
  MAX_CIPHERTEXT_BLOB_BYTES,
  type Param,
  canonicalQuery,
  canonicalQueryRawNames,
  hashPayload,
  headersToSign,
  scrubUrls,
  v3Authorization,
  v3CanonicalRequest,
  v3Signature,
} from '../src/providers/alibaba/index.js';
import { isRetryableCode } from '../src/providers/alibaba/errors.js';
import { EnvelopeKitError } from '../src/core/errors.js';
import { emulator, expectNoSecrets, providerFor, rejection } from './alibaba-helpers.js';

const creds = { accessKeyId: 'LTAIspy', accessKeySecret: 'spy-secret' };

/** A provider whose fetch records each request and answers `answer`. */
function spyProvider(answer: () => Response = () => new Response(JSON.stringify({ KeyId: 'k', CiphertextBlob: 'AAAA', RequestId: 'r' }))) {
  const seen: { url: string; init: RequestInit }[] = [];
  const provider = new AlibabaKmsProvider({
    region: 'cn-hangzhou',
    credentials: creds,
    retryBaseDelayMs: 0,
    retryMaxDelayMs: 0,
    fetch: async (url: string | URL | Request, init?: RequestInit) => {
      seen.push({ url: String(url), init: init! });
      return answer();
    },
  });
  return { provider, seen, body: (i = 0) => new URLSearchParams(String(seen[i]!.init.body)) };
}

const bytes = (n: number) => new Uint8Array(n).map((_, i) => (i * 31 + 7) & 0xff);

describe('sizes follow the service', () => {
  it('Encrypt takes 6144 bytes; the blob (over 4096 bytes) decrypts back to them', async () => {
    const { kms, keyId } = await emulator();
    for (const signatureVersion of ['v3', 'v1'] as const) {
      const p = providerFor(kms, { signatureVersion });
      for (const n of [3000, 6144]) {
        const w = await p.encrypt({ keyId: 'alias/app', plaintext: bytes(n), encryptionContext: { a: 'b' } });
        expect(w.keyId).toBe(keyId);
        if (n === 6144) expect(w.ciphertextBlob.length).toBeGreaterThan(4096);
        expect(w.keyVersion).toBe(w.keyVersionId);
        const out = await p.decrypt({ ciphertextBlob: w.ciphertextBlob, encryptionContext: { a: 'b' } });
        expect(out.plaintext).toEqual(bytes(n));
        expect((await rejection(p.decrypt({ ciphertextBlob: w.ciphertextBlob }))).constructor.name).toBe('DecryptionFailedError');
        const moved = await p.reEncrypt({ ciphertextBlob: w.ciphertextBlob, sourceEncryptionContext: { a: 'b' }, destinationKeyId: keyId });
        expect((await p.decrypt({ ciphertextBlob: moved.ciphertextBlob })).plaintext).toEqual(bytes(n));
      }
    }
  });

  it('refuses 6145 bytes, and blobs over the limit, before any request', async () => {
    const { provider, seen } = spyProvider();
    for (const f of [
      () => provider.encrypt({ keyId: 'k', plaintext: bytes(6145) }),
      () => provider.decrypt({ ciphertextBlob: bytes(MAX_CIPHERTEXT_BLOB_BYTES + 1) }),
      () => provider.reEncrypt({ ciphertextBlob: bytes(MAX_CIPHERTEXT_BLOB_BYTES + 1), destinationKeyId: 'k' }),
    ]) {
      expect((await rejection(f())) as EnvelopeKitError).toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    }
    expect(seen).toHaveLength(0);
    // A 5000-byte blob (an official client's Encrypt of 4 KiB) is sent.
    await rejection(provider.decrypt({ ciphertextBlob: bytes(5000) }));
    expect(seen).toHaveLength(1);
  });

  it('an answer blob over 4096 bytes is accepted from Encrypt', async () => {
    const big = Buffer.from(bytes(6200)).toString('base64');
    const { provider } = spyProvider(() => new Response(JSON.stringify({ KeyId: 'k', KeyVersionId: 'v1', CiphertextBlob: big, RequestId: 'r' })));
    const w = await provider.encrypt({ keyId: 'k', plaintext: bytes(6144) });
    expect(w.ciphertextBlob).toHaveLength(6200);
    expect(w.keyVersion).toBe('v1');
  });
});

describe('encryption contexts follow the service', () => {
  it('a 3000-character value is sent; a context over 8192 characters of JSON is InvalidParameterError before any request', async () => {
    const { provider, seen, body } = spyProvider();
    await provider.encrypt({ keyId: 'k', plaintext: bytes(1), encryptionContext: { big: 'x'.repeat(3000) } });
    expect(JSON.parse(body(0).get('EncryptionContext')!)).toEqual({ big: 'x'.repeat(3000) });
    const tooBig = { a: 'x'.repeat(4100), b: 'y'.repeat(4100) };
    for (const f of [
      () => provider.decrypt({ ciphertextBlob: bytes(10), encryptionContext: tooBig }),
      () => provider.generateDataKey({ keyId: 'k', encryptionContext: tooBig }),
      () => provider.reEncrypt({ ciphertextBlob: bytes(10), destinationKeyId: 'k', destinationEncryptionContext: tooBig }),
    ]) {
      const e = await rejection(f());
      expect((e as EnvelopeKitError).code).toBe('ERR_INVALID_PARAMETER');
    }
    expect(seen).toHaveLength(1);
    for (const bad of [{ a: 1 }, { '': 'x' }, 'a=b', [], { a: '\ud800' }]) {
      expect(((await rejection(provider.encrypt({ keyId: 'k', plaintext: bytes(1), encryptionContext: bad as never }))) as EnvelopeKitError).code).toBe('ERR_INVALID_PARAMETER');
    }
  });
});

describe('GenerateDataKey parameters', () => {
  it('sends KeySpec when asked (AES_256 by default), NumberOfBytes when given, never both', async () => {
    const answer = () => new Response(JSON.stringify({ KeyId: 'k', Plaintext: Buffer.alloc(16).toString('base64'), CiphertextBlob: 'AAAA', RequestId: 'r' }));
    const { provider, body } = spyProvider(answer);
    await provider.generateDataKey({ keyId: 'k', keySpec: 'AES_128' });
    expect(body(0).get('KeySpec')).toBe('AES_128');
    expect(body(0).has('NumberOfBytes')).toBe(false);
    await provider.generateDataKey({ keyId: 'k', keySpec: 'AES_256', numberOfBytes: 16 });
    expect(body(1).get('NumberOfBytes')).toBe('16');
    expect(body(1).has('KeySpec')).toBe(false);
    await rejection(provider.generateDataKey({ keyId: 'k' }));
    expect(body(2).get('KeySpec')).toBe('AES_256');
  });

  it('generateDataKeyWithoutPlaintext: a blob only, which decrypts', async () => {
    const { kms, keyId } = await emulator();
    const p = providerFor(kms);
    const w = await p.generateDataKeyWithoutPlaintext({ keyId: 'alias/app', keySpec: 'AES_128', encryptionContext: { t: '1' } });
    expect(w.keyId).toBe(keyId);
    expect('plaintext' in w).toBe(false);
    expect(w.keyVersion).toMatch(/^[0-9a-f-]{36}$/);
    expect((await p.decrypt({ ciphertextBlob: w.ciphertextBlob, encryptionContext: { t: '1' } })).plaintext).toHaveLength(16);
    expect(kms.requests.at(-2)!.action).toBe('GenerateDataKeyWithoutPlaintext');
  });

  it('describeBlob is undefined for service blobs and never throws', async () => {
    const { provider } = spyProvider();
    for (const j of [bytes(40), new Uint8Array(0), 'x', null]) expect(provider.describeBlob(j as Uint8Array)).toBeUndefined();
  });
});

describe('errors', () => {
  it('any code containing Throttling is retried (Throttling.Concurrent)', async () => {
    expect(isRetryableCode('Throttling.Concurrent')).toBe(true);
    expect(isRetryableCode('Forbidden.NoPermission')).toBe(false);
    const { kms } = await emulator();
    kms.faults.error({ status: 400, code: 'Throttling.Concurrent', message: 'Request was denied due to concurrent flow control.', times: 2 });
    const dk = await providerFor(kms).generateDataKey({ keyId: 'alias/app' });
    expect(dk.plaintext).toHaveLength(32);
    expect(kms.requests.filter((r) => r.code === 'Throttling.Concurrent')).toHaveLength(2);
  });

  it('keeps Recommend and the service-shaped HostId on the error', async () => {
    const { kms } = await emulator();
    const e = await rejection(providerFor(kms).generateDataKey({ keyId: 'nope' }));
    const cause = e.cause as AlibabaKmsError;
    expect(cause).toBeInstanceOf(AlibabaKmsError);
    expect(cause.recommend).toMatch(/^https:\/\/api\.aliyun\.com\/troubleshoot\?q=Forbidden\.KeyNotFound/);
    expect(cause.hostId).toBe('kms.cn-hangzhou.aliyuncs.com');
  });

  it('a redirect is refused (redirect: manual), not retried, never followed', async () => {
    for (const answer of [
      () => new Response(null, { status: 302, headers: { location: 'https://elsewhere.example/' } }),
      () => Object.defineProperty(new Response(null, { status: 200 }), 'type', { value: 'opaqueredirect' }),
    ]) {
      const { provider, seen } = spyProvider(answer);
      const e = (await rejection(provider.generateDataKey({ keyId: 'k' }))) as AlibabaKmsError;
      expect(e).toBeInstanceOf(AlibabaKmsError);
      expect(e.failure).toBe('redirect');
      expect(e.retryable).toBe(false);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.init.redirect).toBe('manual');
    }
  });
});

describe('nothing secret in a URL', () => {
  it('every parameter, the STS token and the plaintext included, is in the POST body; causes are scrubbed of URLs', async () => {
    const sts = { accessKeyId: 'STS.x', accessKeySecret: 'sts-secret', securityToken: 'sts-token-value' };
    for (const signatureVersion of ['v1', 'v3'] as const) {
      const seen: string[] = [];
      const p = new AlibabaKmsProvider({
        region: 'cn-hangzhou',
        credentials: sts,
        signatureVersion,
        maxAttempts: 1,
        fetch: async (url: string | URL | Request, init?: RequestInit) => {
          seen.push(String(url));
          throw new TypeError(`fetch failed for ${String(url)} with body ${String(init?.body)}`);
        },
      });
      const e = await rejection(p.encrypt({ keyId: 'k', plaintext: new TextEncoder().encode('plaintext-secret') }));
      expect(seen[0]).toBe('https://kms.cn-hangzhou.aliyuncs.com/');
      expect((e as AlibabaKmsError).failure).toBe('network');
      expect(String((e.cause as Error).message)).toContain('<url>');
      expectNoSecrets(e, ['sts-secret', 'sts-token-value', 'cGxhaW50ZXh0LXNlY3JldA', 'aliyuncs.com']);
    }
    expect(scrubUrls('see http://a.example/?SecurityToken=x and more')).toBe('see <url> and more');
  });

  it('a large context and blob pass (no URL length limit)', async () => {
    const { kms } = await emulator({ maxBodyBytes: 256 * 1024 });
    const p = providerFor(kms);
    const ctx = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`key-${i}`, 'v'.repeat(100)]));
    const w = await p.encrypt({ keyId: 'alias/app', plaintext: bytes(6144), encryptionContext: ctx });
    expect((await p.decrypt({ ciphertextBlob: w.ciphertextBlob, encryptionContext: ctx })).plaintext).toEqual(bytes(6144));
    expect(kms.requests.at(-1)!.url).toBe('/');
  });
});

describe('emulator answers as the service does', () => {
  it('DryRun=true checks the request and answers DryRunOperation, without the work', async () => {
    const { kms } = await emulator();
    const send = async (form: Param[]) => {
      const body = canonicalQuery(form);
      const headers: Record<string, string> = {
        'content-type': 'application/x-www-form-urlencoded',
        'x-acs-action': 'GenerateDataKey',
        'x-acs-version': '2016-01-20',
        'x-acs-date': new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
        'x-acs-signature-nonce': `n-${Math.random()}`,
        'x-acs-content-sha256': hashPayload(new TextEncoder().encode(body)),
      };
      const signed = headersToSign(['host', ...Object.keys(headers)]);
      const canonical = v3CanonicalRequest({ method: 'POST', canonicalUri: '/', query: [], headers: { ...headers, host: kms.endpoint }, signedHeaders: signed, hashedPayload: headers['x-acs-content-sha256']! });
      headers['authorization'] = v3Authorization(kms.credentials.accessKeyId, signed, v3Signature(canonical, kms.credentials.accessKeySecret));
      const res = await fetch(`${kms.url}/`, { method: 'POST', headers, body });
      return { status: res.status, json: (await res.json()) as Record<string, string> };
    };
    const dry = await send([['KeyId', 'alias/app'], ['DryRun', 'true']]);
    expect(dry.status).toBe(400);
    expect(dry.json.Code).toBe('DryRunOperation');
    expect(dry.json.Plaintext).toBeUndefined();
    // The checks still run first: an unknown key is reported as such.
    expect((await send([['KeyId', 'alias/none'], ['DryRun', 'true']])).json.Code).toBe('Forbidden.AliasNotFound');
    expect((await send([['KeyId', 'alias/app'], ['DryRun', 'false']])).json.Plaintext).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  it('CORS: preflight and headers only for allowedOrigins', async () => {
    const { kms } = await emulator({ allowedOrigins: ['http://localhost:5173'] });
    const ok = await fetch(kms.url, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,x-acs-action' },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(ok.headers.get('access-control-allow-headers')).toContain('x-acs-action');
    const other = await fetch(kms.url, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect((await other.json()).Code).toBe('UnsupportedHTTPMethod');
    const p = providerFor(kms, {
      fetch: (u: string | URL | Request, i?: RequestInit) => fetch(u, { ...i, headers: { ...(i?.headers as Record<string, string>), origin: 'http://localhost:5173' } }),
    });
    await p.generateDataKey({ keyId: 'alias/app' });
  });

  it('records V1 SecurityToken values redacted', async () => {
    const { kms } = await emulator();
    await fetch(`${kms.url}/?Action=Decrypt&Signature=x&SecurityToken=sts-token-value&Plaintext=abc`);
    const r = kms.requests.at(-1)!;
    expect(r.url).not.toContain('sts-token-value');
    expect(r.url).toContain('SecurityToken=<redacted>');
    expect(r.url).toContain('Plaintext=<redacted>');
  });

  it('what Node’s parser refuses gets a KMS-shaped error body', async () => {
    const { kms } = await emulator();
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const s = connect(kms.port, '127.0.0.1', () => s.write(text));
        let out = '';
        s.on('data', (d) => (out += d));
        s.on('end', () => resolve(out));
        s.on('error', reject);
      });
    const bad = await raw('GARBAGE / HTTP/1.1\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400/);
    expect(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4))).toMatchObject({ Code: 'InvalidParameter', HostId: 'kms.cn-hangzhou.aliyuncs.com' });
    const big = await raw(`POST / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431/);
    expect(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4)).Code).toBe('InvalidParameter');
    const expect417 = await fetch(kms.url, { method: 'POST', headers: { expect: 'something-else' } }).catch(() => undefined);
    if (expect417) {
      expect(expect417.status).toBe(417);
      expect((await expect417.json()).Code).toBe('InvalidParameter');
    }
  });
});

describe('V3 parameter names as Alibaba’s signer writes them', () => {
  it('a query parameter whose name needs encoding passes signed either way (raw names: @alicloud/openapi-util)', async () => {
    const { kms } = await emulator();
    for (const queryNames of ['raw', 'encoded'] as const) {
      const query: Param[] = [['KeyId', 'alias/app'], ['EncryptionContext.a b', 'c d']];
      const headers: Record<string, string> = {
        'x-acs-action': 'GenerateDataKey',
        'x-acs-version': '2016-01-20',
        'x-acs-date': new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
        'x-acs-signature-nonce': `n-${Math.random()}`,
        'x-acs-content-sha256': hashPayload(new Uint8Array(0)),
      };
      const signed = headersToSign(['host', ...Object.keys(headers)]);
      const canonical = v3CanonicalRequest({ method: 'POST', canonicalUri: '/', query, headers: { ...headers, host: kms.endpoint }, signedHeaders: signed, hashedPayload: headers['x-acs-content-sha256']!, queryNames });
      headers['authorization'] = v3Authorization(kms.credentials.accessKeyId, signed, v3Signature(canonical, kms.credentials.accessKeySecret));
      const res = await fetch(`${kms.url}/?${canonicalQuery(query)}`, { method: 'POST', headers });
      const json = (await res.json()) as Record<string, string>;
      expect(res.status, JSON.stringify(json)).toBe(200);
      expect(canonicalQueryRawNames(query)).toBe('EncryptionContext.a b=c%20d&KeyId=alias%2Fapp');
    }
  });
});
