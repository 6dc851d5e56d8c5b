import { describe, expect, it } from 'vitest';
import { LocalKeyring, decrypt, decryptRange, decryptStream, encrypt, encryptStream, inspect } from '../src/index.js';

const provider = new LocalKeyring();
const { keyId } = provider.createKey();

async function collect(rs: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = rs.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function streamOf(bytes: Uint8Array, chunk = 1000): ReadableStream<Uint8Array> {
  let o = 0;
  return new ReadableStream({
    pull(c) {
      if (o >= bytes.length) return c.close();
      c.enqueue(bytes.slice(o, o + chunk));
      o += chunk;
    },
  });
}

describe('framed envelopes: a first look', () => {
  it('round-trips through encryptStream and decryptStream, decrypt and decryptRange', async () => {
    const pt = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 31) & 0xff);
    const env = await collect(streamOf(pt).pipeThrough(encryptStream({ provider, keyId, segmentSize: 4096, encryptionContext: { f: 'x' } })));
    expect(inspect(env)).toMatchObject({ layout: { id: 2, name: 'framed' }, segmentSize: 4096, segmentCount: 3, plaintextLength: 10_000 });
    const ds = decryptStream({ provider, encryptionContext: { f: 'x' } });
    expect(await collect(streamOf(env, 777).pipeThrough(ds))).toEqual(pt);
    expect(await ds.info).toMatchObject({ keyId, encryptionContext: { f: 'x' }, segmentSize: 4096 });
    expect((await decrypt(env, { provider })).plaintext).toEqual(pt);
    const r = await decryptRange(env, { provider, offset: 4000, length: 200 });
    expect(r.plaintext).toEqual(pt.subarray(4000, 4200));
    expect(r.segmentsRead).toBe(2);
  });

  it('refuses a single-pass envelope in decryptStream, and a stream cut at a segment boundary', async () => {
    const single = await encrypt(new Uint8Array(10), { provider, keyId });
    await expect(collect(streamOf(single).pipeThrough(decryptStream({ provider })))).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    const env = await collect(streamOf(new Uint8Array(9000)).pipeThrough(encryptStream({ provider, keyId, segmentSize: 4096 })));
    const cut = env.subarray(0, env.length - (9000 - 8192 + 16));
    await expect(collect(streamOf(cut).pipeThrough(decryptStream({ provider })))).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
  });
});
