/**
 * The SigV4 signer against AWS's published test suite (test/vectors/sigv4/, see SOURCE.md there):
 * canonical request, string to sign and Authorization header of every scenario.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  amzDate,
  authorizationHeader,
  canonicalRequest,
  credentialScope,
  hashHex,
  parseAmzDate,
  parseAuthorization,
  signRequest,
  signature,
  stringToSign,
} from '../src/providers/aws/sigv4.js';

const DIR = join(import.meta.dirname, 'vectors', 'sigv4');
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';

function scenarios(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (!statSync(p).isDirectory()) continue;
    if (readdirSync(p).includes(`${name}.req`)) out.push(p);
    out.push(...scenarios(p));
  }
  return out.sort();
}

interface ParsedReq {
  method: string;
  path: string;
  query: [string, string][];
  headers: Record<string, string[]>;
  body: string;
}

function parseReq(text: string): ParsedReq {
  const lines = text.split('\n');
  const [method, target] = lines[0]!.split(' ', 2) as [string, string];
  const rest = lines[0]!.slice(method.length + 1, lines[0]!.lastIndexOf(' HTTP/'));
  void target;
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  const query: [string, string][] = [];
  if (q >= 0) {
    for (const part of rest.slice(q + 1).split('&')) {
      if (part === '') continue;
      const e = part.indexOf('=');
      query.push(e < 0 ? [decodeURIComponent(part), ''] : [decodeURIComponent(part.slice(0, e)), decodeURIComponent(part.slice(e + 1))]);
    }
  }
  const headers: Record<string, string[]> = {};
  let i = 1;
  let last = '';
  for (; i < lines.length && lines[i] !== ''; i++) {
    const line = lines[i]!;
    if (/^\s/.test(line)) {
      headers[last]!.push(line);
      continue;
    }
    const c = line.indexOf(':');
    last = line.slice(0, c).toLowerCase();
    (headers[last] ??= []).push(line.slice(c + 1));
  }
  return { method, path, query, headers, body: lines.slice(i + 1).join('\n') };
}

const all = scenarios(DIR);

describe('SigV4 against the aws-sig-v4-test-suite', () => {
  it('has the scenarios', () => {
    expect(all.length).toBeGreaterThanOrEqual(30);
  });

  for (const dir of all) {
    const name = dir.slice(dir.lastIndexOf('/') + 1);
    it(name, () => {
      const read = (ext: string) => readFileSync(join(dir, `${name}.${ext}`), 'utf8');
      const req = parseReq(read('req'));
      const signed = Object.keys(req.headers);
      const creq = canonicalRequest({
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        signedHeaders: signed,
        payloadHash: hashHex(req.body),
      });
      expect(creq).toBe(read('creq'));
      const date = req.headers['x-amz-date']![0]!;
      const scope = credentialScope(date.slice(0, 8), 'us-east-1', 'service');
      const sts = stringToSign(date, scope, creq);
      expect(sts).toBe(read('sts'));
      const sig = signature(SECRET, date.slice(0, 8), 'us-east-1', 'service', sts);
      expect(authorizationHeader('AKIDEXAMPLE', scope, signed, sig)).toBe(read('authz'));
      const parsed = parseAuthorization(read('authz'));
      expect(parsed).toMatchObject({ accessKeyId: 'AKIDEXAMPLE', date: '20150830', region: 'us-east-1', service: 'service', signature: sig });
    });
  }

  it('a changed secret, date, region or body gives another signature', () => {
    const base = { method: 'POST', path: '/', headers: { host: 'kms.us-east-1.amazonaws.com', 'x-amz-target': 'TrentService.Decrypt' } };
    const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET };
    const now = Date.UTC(2026, 0, 2, 3, 4, 5);
    const a = signRequest({ ...base, body: new Uint8Array([1]), credentials: creds, region: 'us-east-1', service: 'kms', now });
    const variants = [
      signRequest({ ...base, body: new Uint8Array([2]), credentials: creds, region: 'us-east-1', service: 'kms', now }),
      signRequest({ ...base, body: new Uint8Array([1]), credentials: { ...creds, secretAccessKey: SECRET + 'x' }, region: 'us-east-1', service: 'kms', now }),
      signRequest({ ...base, body: new Uint8Array([1]), credentials: creds, region: 'eu-west-1', service: 'kms', now }),
      signRequest({ ...base, body: new Uint8Array([1]), credentials: creds, region: 'us-east-1', service: 'kms', now: now + 1000 }),
    ];
    for (const v of variants) expect(v['authorization']).not.toBe(a['authorization']);
    expect(a['x-amz-date']).toBe('20260102T030405Z');
    expect(a['authorization']).not.toContain(SECRET);
  });

  it('signs the session token', () => {
    const h = signRequest({
      method: 'POST',
      path: '/',
      headers: { host: 'h' },
      body: new Uint8Array(0),
      credentials: { accessKeyId: 'A', secretAccessKey: 'S', sessionToken: 'T' },
      region: 'r',
      service: 'kms',
      now: 0,
    });
    expect(h['x-amz-security-token']).toBe('T');
    expect(parseAuthorization(h['authorization']!)?.signedHeaders).toEqual(['host', 'x-amz-date', 'x-amz-security-token']);
  });

  it('X-Amz-Date round trip (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Date.UTC(9999, 11, 31) }), (s) => {
        const ms = Math.floor(s / 1000) * 1000;
        expect(parseAmzDate(amzDate(ms))).toBe(ms);
      }),
    );
    for (const bad of ['20150830T123600', '20151330T123600Z', '2015-08-30T12:36:00Z', '20150230T000000Z']) expect(parseAmzDate(bad)).toBeUndefined();
  });
});
