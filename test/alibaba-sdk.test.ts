/**
 * Compatibility proof: Alibaba's official SDK clients, unmodified, against the
 * emulator. `@alicloud/kms20160120@1.2.0` signs V1 and flattens
 * `EncryptionContext` into `EncryptionContext.<key>=<value>` query parameters
 * (leaving `!*()` unencoded in the URL, `'` as %27, while signing the RFC 3986 form); `@alicloud/openapi-client@0.4.15`
 * signs V3 with parameters in the query and `Action`/`Version` as
 * `x-acs-action`/`x-acs-version` headers. Blobs cross between the SDKs and
 * AlibabaKmsProvider in both directions.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { base64Decode, base64Encode } from '../src/internal/base64.js';
import { emulator, hex, providerFor } from './alibaba-helpers.js';

const require = createRequire(import.meta.url);

/* The SDKs are CommonJS without usable ESM types; typed loosely here on purpose. */
type Model = new (fields: Record<string, unknown>) => object;
interface KmsSdk {
  default: new (config: Record<string, unknown>) => {
    generateDataKey(req: object): Promise<{ keyId: string; keyVersionId: string; plaintext: string; ciphertextBlob: string; requestId: string }>;
    decrypt(req: object): Promise<{ keyId: string; keyVersionId: string; plaintext: string; requestId: string }>;
    encrypt(req: object): Promise<{ keyId: string; ciphertextBlob: string; requestId: string }>;
  };
  GenerateDataKeyRequest: Model;
  DecryptRequest: Model;
  EncryptRequest: Model;
}
interface OpenApiSdk {
  default: new (config: object) => { callApi(params: object, req: object, runtime: object): Promise<{ body: Record<string, string>; statusCode: number }> };
  Config: Model;
  Params: Model;
  OpenApiRequest: Model;
}
const Kms = require('@alicloud/kms20160120') as KmsSdk;
const OpenApi = require('@alicloud/openapi-client') as OpenApiSdk;
const OpenApiUtil = (require('@alicloud/openapi-util') as { default: { query(o: object): Record<string, string> } }).default;
const { RuntimeOptions } = require('@alicloud/tea-util') as { RuntimeOptions: Model };

const CONTEXT = { "order id": "42!*'()", tenant: 'ü' };

describe('@alicloud/kms20160120@1.2.0 (V1 signature)', () => {
  it('completes GenerateDataKey, Decrypt and Encrypt with an encryption context', async () => {
    const { kms, keyId } = await emulator();
    const client = new Kms.default({
      accessKeyId: kms.credentials.accessKeyId,
      accessKeySecret: kms.credentials.accessKeySecret,
      endpoint: kms.endpoint,
      protocol: 'HTTP',
      regionId: 'cn-hangzhou',
    });
    const gen = await client.generateDataKey(new Kms.GenerateDataKeyRequest({ keyId: 'alias/app', encryptionContext: CONTEXT }));
    expect(gen.keyId).toBe(keyId);
    expect(base64Decode(gen.plaintext)).toHaveLength(32);
    expect(gen.keyVersionId).toMatch(/^[0-9a-f-]{36}$/);
    const dec = await client.decrypt(new Kms.DecryptRequest({ ciphertextBlob: gen.ciphertextBlob, encryptionContext: CONTEXT }));
    expect(dec.plaintext).toBe(gen.plaintext);
    expect(dec.keyId).toBe(keyId);
    const enc = await client.encrypt(new Kms.EncryptRequest({ keyId, plaintext: base64Encode(new Uint8Array([7, 7, 7])) }));
    expect(enc.keyId).toBe(keyId);

    // What was on the wire: V1, flattened context, `!*()` left unencoded (Node's querystring
    // encodes `'` as %27), Format=json. The signature covers the RFC 3986 form (%21%2A%28%29).
    const [g, d] = kms.requests;
    expect(g!.signatureVersion).toBe('v1');
    expect(g!.url).toContain('EncryptionContext.order%20id=42!*%27()');
    expect(g!.url).toContain('EncryptionContext.tenant=%C3%BC');
    expect(g!.url).toMatch(/[?&]Format=json&/);
    expect(g!.url).toMatch(/[?&]SignatureMethod=HMAC-SHA1&/);
    expect(d!.action).toBe('Decrypt');
    expect(g!.headers['authorization']).toBeUndefined();

    // Blobs cross: the SDK's blob opens with AlibabaKmsProvider, and the reverse.
    for (const signatureVersion of ['v3', 'v1'] as const) {
      const p = providerFor(kms, { signatureVersion });
      const ours = await p.decrypt({ ciphertextBlob: base64Decode(gen.ciphertextBlob)!, encryptionContext: CONTEXT });
      expect(base64Encode(ours.plaintext)).toBe(gen.plaintext);
      const mine = await p.generateDataKey({ keyId: 'alias/app', encryptionContext: CONTEXT });
      const viaSdk = await client.decrypt(new Kms.DecryptRequest({ ciphertextBlob: base64Encode(mine.ciphertextBlob), encryptionContext: CONTEXT }));
      expect(hex(base64Decode(viaSdk.plaintext)!)).toBe(hex(mine.plaintext));
    }
  });

  it('gets the real error shape for a wrong secret and for an unknown key', async () => {
    const { kms } = await emulator();
    const client = new Kms.default({
      accessKeyId: kms.credentials.accessKeyId,
      accessKeySecret: 'not-the-secret',
      endpoint: kms.endpoint,
      protocol: 'HTTP',
      regionId: 'cn-hangzhou',
    });
    const e1 = (await client.generateDataKey(new Kms.GenerateDataKeyRequest({ keyId: 'alias/app' })).catch((e: unknown) => e)) as {
      code: string;
      data: Record<string, unknown>;
    };
    expect(e1.code).toBe('SignatureDoesNotMatchError');
    expect(Object.keys(e1.data).sort()).toEqual(['Code', 'HostId', 'Message', 'Recommend', 'RequestId']);
    const good = new Kms.default({ ...kms.credentials, endpoint: kms.endpoint, protocol: 'HTTP', regionId: 'cn-hangzhou' });
    const e2 = (await good.decrypt(new Kms.DecryptRequest({ ciphertextBlob: 'AAAA' })).catch((e: unknown) => e)) as { code: string };
    expect(e2.code).toBe('InvalidParameterError');
    const e3 = (await good.generateDataKey(new Kms.GenerateDataKeyRequest({ keyId: 'nokey' })).catch((e: unknown) => e)) as {
      code: string;
      message: string;
    };
    expect(e3.code).toBe('Forbidden.KeyNotFoundError');
    expect(e3.message).toContain('code: 404');
  });
});

describe('@alicloud/openapi-client@0.4.15 (V3 signature)', () => {
  function client(kms: { credentials: { accessKeyId: string; accessKeySecret: string }; endpoint: string }, secret?: string) {
    return new OpenApi.default(
      new OpenApi.Config({
        accessKeyId: kms.credentials.accessKeyId,
        accessKeySecret: secret ?? kms.credentials.accessKeySecret,
        endpoint: kms.endpoint,
        protocol: 'HTTP',
        regionId: 'cn-hangzhou',
      }),
    );
  }
  /** As the generated kms-20160120 clients on openapi-client call an RPC operation. */
  function rpc(action: string) {
    return new OpenApi.Params({
      action,
      version: '2016-01-20',
      protocol: 'HTTP',
      pathname: '/',
      method: 'POST',
      authType: 'AK',
      style: 'RPC',
      reqBodyType: 'formData',
      bodyType: 'json',
    });
  }

  it('completes GenerateDataKey and Decrypt, EncryptionContext as a JSON string', async () => {
    const { kms, keyId } = await emulator();
    const c = client(kms);
    const query = (o: object) => new OpenApi.OpenApiRequest({ query: OpenApiUtil.query(o) });
    const gen = await c.callApi(
      rpc('GenerateDataKey'),
      query({ KeyId: 'alias/app', EncryptionContext: JSON.stringify(CONTEXT) }),
      new RuntimeOptions({}),
    );
    expect(gen.statusCode).toBe(200);
    expect(gen.body['KeyId']).toBe(keyId);
    const dec = await c.callApi(
      rpc('Decrypt'),
      query({ CiphertextBlob: gen.body['CiphertextBlob'], EncryptionContext: JSON.stringify(CONTEXT) }),
      new RuntimeOptions({}),
    );
    expect(dec.body['Plaintext']).toBe(gen.body['Plaintext']);

    // What was on the wire: V3, parameters in the query, Action/Version as signed x-acs-* headers.
    const g = kms.requests[0]!;
    expect(g.signatureVersion).toBe('v3');
    expect(g.url).toMatch(/^\/\?KeyId=alias%2Fapp&EncryptionContext=/);
    expect(g.url).not.toContain('Action=');
    expect(g.headers['x-acs-action']).toBe('GenerateDataKey');
    expect(g.headers['x-acs-version']).toBe('2016-01-20');
    expect(g.headers['authorization']).toMatch(/^ACS3-HMAC-SHA256 Credential=LTAI[0-9a-f]+,SignedHeaders=host;x-acs-action;/);

    const p = providerFor(kms);
    const ours = await p.decrypt({ ciphertextBlob: base64Decode(gen.body['CiphertextBlob']!)!, encryptionContext: CONTEXT });
    expect(base64Encode(ours.plaintext)).toBe(gen.body['Plaintext']);
  });

  it('is refused with a wrong secret, and sees the error members', async () => {
    const { kms } = await emulator();
    const e = (await client(kms, 'nope')
      .callApi(rpc('GenerateDataKey'), new OpenApi.OpenApiRequest({ query: { KeyId: 'alias/app' } }), new RuntimeOptions({}))
      .catch((x: unknown) => x)) as { code: string; data: Record<string, unknown> };
    expect(e.code).toBe('SignatureDoesNotMatch');
    expect(e.data['statusCode']).toBe(400);
    expect(typeof e.data['RequestId']).toBe('string');
    expect(typeof e.data['HostId']).toBe('string');
  });
});
