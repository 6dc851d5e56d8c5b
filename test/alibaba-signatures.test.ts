/**
 * Alibaba Cloud's published signature examples, run through our signers: the
 * V1 RPC example of "Request signatures" (GET and POST) and the worked example
 * of "Request syntax and signature method V3"; the encoding rules both share;
 * and the byte-level reading of the secret `Plaintext` member.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { base64Decode, base64DecodeAscii, base64Encode } from '../src/internal/base64.js';
import { canonicalQuery, parseIsoSeconds, percentEncode } from '../src/providers/alibaba/encoding.js';
import { resolveEndpoint } from '../src/providers/alibaba/endpoint.js';
import { sanitizeKmsMessage } from '../src/providers/alibaba/errors.js';
import { takeSecretMember } from '../src/providers/alibaba/response.js';
import { v1Signature, v1StringToSign } from '../src/providers/alibaba/signature-v1.js';
import {
  hashPayload,
  headersToSign,
  parseV3Authorization,
  v3Authorization,
  v3CanonicalRequest,
  v3Signature,
  v3StringToSign,
} from '../src/providers/alibaba/signature-v3.js';
import { utf8 } from './alibaba-helpers.js';

const numRuns = Number(process.env['FC_NUM_RUNS'] ?? 100);

describe('V1 (HMAC-SHA1) against the published DescribeRegions example', () => {
  // Parameters in the order of the documented unsigned URL; the signer must sort them.
  const params: [string, string][] = [
    ['Timestamp', '2016-02-23T12:46:24Z'],
    ['Format', 'XML'],
    ['AccessKeyId', 'testid'],
    ['Action', 'DescribeRegions'],
    ['SignatureMethod', 'HMAC-SHA1'],
    ['SignatureNonce', '3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf'],
    ['Version', '2014-05-26'],
    ['SignatureVersion', '1.0'],
  ];

  it('builds the documented string to sign', () => {
    expect(v1StringToSign('GET', params)).toBe(
      'GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1' +
        '%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0' +
        '%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26',
    );
  });

  it('gives OLeaidS1JvxuMvnyHOwuJ+uX5qY= for GET and MxbnVAM4w6sft9xjVpe/GCKueuk= for POST', () => {
    expect(v1Signature('GET', params, 'testsecret')).toBe('OLeaidS1JvxuMvnyHOwuJ+uX5qY=');
    expect(v1Signature('POST', params, 'testsecret')).toBe('MxbnVAM4w6sft9xjVpe/GCKueuk=');
  });

  it('ignores a Signature parameter and changes with any parameter', () => {
    const withSig: [string, string][] = [...params, ['Signature', 'whatever']];
    expect(v1Signature('GET', withSig, 'testsecret')).toBe('OLeaidS1JvxuMvnyHOwuJ+uX5qY=');
    expect(v1Signature('GET', [...params.slice(1), ['Timestamp', '2016-02-23T12:46:25Z']], 'testsecret')).not.toBe(
      'OLeaidS1JvxuMvnyHOwuJ+uX5qY=',
    );
    expect(v1Signature('GET', params, 'testsecreT')).not.toBe('OLeaidS1JvxuMvnyHOwuJ+uX5qY=');
  });
});

describe('V3 (ACS3-HMAC-SHA256) against the published RunInstances example', () => {
  const input = {
    method: 'POST',
    canonicalUri: '/',
    query: [
      ['RegionId', 'cn-shanghai'],
      ['ImageId', 'win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd'],
    ] as [string, string][],
    headers: {
      host: 'ecs.cn-shanghai.aliyuncs.com',
      'x-acs-action': 'RunInstances',
      'x-acs-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'x-acs-date': '2023-10-26T10:22:32Z',
      'x-acs-signature-nonce': '3156853299f313e23d1673dc12e1703d',
      'x-acs-version': '2014-05-26',
    },
    signedHeaders: headersToSign([
      'x-acs-version',
      'host',
      'x-acs-action',
      'x-acs-date',
      'x-acs-signature-nonce',
      'x-acs-content-sha256',
      'user-agent',
    ]),
    hashedPayload: hashPayload(new Uint8Array(0)),
  };

  it('hashes the empty payload and picks the signed headers as documented', () => {
    expect(input.hashedPayload).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(input.signedHeaders.join(';')).toBe('host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version');
  });

  it('builds the documented canonical request, hash and signature', () => {
    const canonical = v3CanonicalRequest(input);
    expect(canonical).toBe(
      [
        'POST',
        '/',
        'ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai',
        'host:ecs.cn-shanghai.aliyuncs.com',
        'x-acs-action:RunInstances',
        'x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'x-acs-date:2023-10-26T10:22:32Z',
        'x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d',
        'x-acs-version:2014-05-26',
        '',
        'host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version',
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      ].join('\n'),
    );
    expect(v3StringToSign(canonical)).toBe('ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259');
    const signature = v3Signature(canonical, 'YourAccessKeySecret');
    expect(signature).toBe('06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0');
    const authorization = v3Authorization('YourAccessKeyId', input.signedHeaders, signature);
    expect(authorization).toBe(
      'ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0',
    );
    expect(parseV3Authorization(authorization)).toEqual({
      accessKeyId: 'YourAccessKeyId',
      signedHeaders: input.signedHeaders,
      signature,
    });
  });

  it('trims header values and notices any change', () => {
    const spaced = { ...input, headers: { ...input.headers, 'x-acs-action': '  RunInstances ' } };
    expect(v3Signature(v3CanonicalRequest(spaced), 'YourAccessKeySecret')).toBe(
      '06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0',
    );
    const other = { ...input, query: [...input.query, ['X', '']] as [string, string][] };
    expect(v3Signature(v3CanonicalRequest(other), 'YourAccessKeySecret')).not.toBe(
      '06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0',
    );
    expect(() => v3CanonicalRequest({ ...input, signedHeaders: [...input.signedHeaders, 'x-acs-missing'] })).toThrow(RangeError);
  });

  it('rejects malformed Authorization headers', () => {
    for (const bad of [
      '',
      'ACS3-HMAC-SHA256',
      'ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=zz',
      'HMAC-SHA1 Credential=a,SignedHeaders=host,Signature=' + '0'.repeat(64),
      'ACS3-HMAC-SHA256 Credential=a,SignedHeaders=Host,Signature=' + '0'.repeat(64),
    ]) {
      expect(parseV3Authorization(bad)).toBeUndefined();
    }
  });
});

describe('encoding shared by both signatures', () => {
  it('percent-encodes as RFC 3986 with the documented special cases', () => {
    expect(percentEncode('AZaz09-_.~')).toBe('AZaz09-_.~');
    expect(percentEncode("a b*c+d/e=f&g:h!'()")).toBe('a%20b%2Ac%2Bd%2Fe%3Df%26g%3Ah%21%27%28%29');
    expect(percentEncode('é中')).toBe('%C3%A9%E4%B8%AD');
    expect(() => percentEncode('\ud800')).toThrow();
  });

  it('sorts parameters by name before encoding', () => {
    expect(canonicalQuery([['b', '2'], ['a', 'x y'], ['B', '1']])).toBe('B=1&a=x%20y&b=2');
  });

  it('percentEncode round-trips through decodeURIComponent for any well-formed string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        expect(decodeURIComponent(percentEncode(s))).toBe(s);
        expect(percentEncode(s)).toMatch(/^[A-Za-z0-9\-_.~%]*$/);
      }),
      { numRuns },
    );
  });

  it('parses timestamps strictly', () => {
    expect(parseIsoSeconds('2016-02-23T12:46:24Z')).toBe(Date.UTC(2016, 1, 23, 12, 46, 24));
    for (const bad of ['2016-02-23T12:46:24.000Z', '2016-02-23 12:46:24Z', '2016-02-30T12:46:24Z', '2016-02-23T12:46:24+08:00', '']) {
      expect(parseIsoSeconds(bad)).toBeUndefined();
    }
  });
});

describe('endpoints', () => {
  it('derives the regional endpoint and checks custom ones', () => {
    expect(resolveEndpoint('cn-hangzhou', undefined).href).toBe('https://kms.cn-hangzhou.aliyuncs.com/');
    expect(resolveEndpoint(undefined, 'kms-vpc.cn-shanghai.aliyuncs.com').href).toBe('https://kms-vpc.cn-shanghai.aliyuncs.com/');
    expect(resolveEndpoint('cn-hangzhou', 'http://127.0.0.1:8080').href).toBe('http://127.0.0.1:8080/');
    expect(resolveEndpoint(undefined, 'http://localhost:1/').href).toBe('http://localhost:1/');
    for (const [region, endpoint] of [
      [undefined, undefined],
      ['CN-HANGZHOU', undefined],
      ['cn-hangzhou.evil.com/', undefined],
      [undefined, 'http://kms.cn-hangzhou.aliyuncs.com'],
      [undefined, 'http://10.0.0.1:80'],
      [undefined, 'https://user:pw@kms.cn-hangzhou.aliyuncs.com'],
      [undefined, 'https://kms.cn-hangzhou.aliyuncs.com/path'],
      [undefined, 'https://kms.cn-hangzhou.aliyuncs.com/?a=b'],
      [undefined, 'ftp://127.0.0.1'],
      [undefined, ''],
      [undefined, 42],
    ] as const) {
      expect(() => resolveEndpoint(region, endpoint), `${String(region)} ${String(endpoint)}`).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_PARAMETER' }),
      );
    }
  });
});

describe('reading the Plaintext member from bytes', () => {
  it('decodes it, blanks it in the body, and leaves valid JSON', () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
    const body = utf8(JSON.stringify({ KeyId: 'k', Plaintext: base64Encode(key), RequestId: 'r' }));
    const taken = takeSecretMember(body, 'Plaintext');
    expect(taken && taken.value).toEqual(key);
    const parsed = JSON.parse(new TextDecoder().decode(body));
    expect(parsed.Plaintext).toBe(taken!.placeholder);
    expect(new TextDecoder().decode(body)).not.toContain(base64Encode(key));
  });

  it('accepts whitespace and \\/ escapes, refuses everything else', () => {
    const ok = takeSecretMember(utf8('{ "Plaintext" :\n "ab\\/+" }'.replace('ab\\/+', 'YWJj\\/w==')), 'Plaintext');
    expect(ok && Array.from(ok.value)).toEqual(Array.from(base64Decode('YWJj/w==')!));
    expect(takeSecretMember(utf8('{"KeyId":"k"}'), 'Plaintext')).toBeUndefined();
    for (const bad of [
      '{"Plaintext":"YQ==","Plaintext":"YQ=="}',
      '{"Plaintext":"YQ="}',
      '{"Plaintext":"Y Q=="}',
      '{"Plaintext":"YQ\\u003d\\u003d"}',
      '{"Plaintext":12}',
      '{"Plaintext""YQ=="}',
      '{"Plaintext":"YQ==',
      '{"Plaintext":"YR=="}',
    ]) {
      expect(takeSecretMember(utf8(bad), 'Plaintext'), bad).toBeNull();
    }
  });

  it('base64DecodeAscii agrees with base64Decode on any input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }).map(base64Encode), fc.string({ maxLength: 24 })), (s) => {
        const bytes = utf8(s);
        const viaBytes = base64DecodeAscii(bytes);
        const viaString = /^[\x00-\x7f]*$/.test(s) ? base64Decode(s) : undefined;
        expect(viaBytes).toEqual(viaString);
      }),
      { numRuns },
    );
  });

  it('keeps KMS messages short and strips an echoed string to sign', () => {
    expect(sanitizeKmsMessage('Specified signature is not matched with our calculation. server string to sign is:POST&%2F&Plaintext%3DAAAA')).toBe(
      'Specified signature is not matched with our calculation. server [string to sign removed]',
    );
    expect(sanitizeKmsMessage('x'.repeat(1000))!.length).toBeLessThanOrEqual(301);
    expect(sanitizeKmsMessage(42)).toBeUndefined();
  });
});
