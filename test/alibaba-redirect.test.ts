/**
 * The Alibaba provider never follows a redirect (it asks fetch for `redirect: 'manual'`, which
 * every runtime accepts, workerd included): a 3xx fails the call, and the place it points to is
 * never asked.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AlibabaKmsError, AlibabaKmsProvider } from '../src/providers/alibaba/index.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

describe('redirects', () => {
  for (const status of [301, 302, 307, 308]) {
    it(`a ${status} fails the call and is not followed`, async () => {
      let followed = 0;
      const elsewhere = await listen((_req, res) => {
        followed++;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"KeyId":"k","Plaintext":"AAAA","CiphertextBlob":"AAAA","RequestId":"r"}');
      });
      const kms = await listen((_req, res) => res.writeHead(status, { location: `${elsewhere}/` }).end());
      const provider = new AlibabaKmsProvider({ endpoint: kms, credentials: { accessKeyId: 'id', accessKeySecret: 'secret' }, maxAttempts: 1, timeoutMs: 2000 });
      const err = await provider.generateDataKey({ keyId: 'alias/app', keySpec: 'AES_256' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AlibabaKmsError);
      expect(err).toMatchObject({ code: 'ERR_PROVIDER', httpStatus: status });
      expect(followed).toBe(0);
    });
  }
});
