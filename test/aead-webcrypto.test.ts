/**
 * The browser and edge default backend: WebCrypto (`crypto.subtle`) from WEBCRYPTO_MIN_BYTES on,
 * @noble/ciphers below. Same bytes as @noble/ciphers and node:crypto at every size, each opens
 * the others' output, a tampered input is refused with `out` zeroed, and the WebCrypto path is
 * taken exactly where the threshold says, by `encrypt`/`decrypt` and by stream segments. Runs in
 * both projects; in `portable` the library's default is this backend.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openAead, sealAead } from '../src/core/aead/bulk.js';
import { nobleAesGcm } from '../src/core/aead/noble.js';
import type { AesGcm } from '../src/core/aead/types.js';
import { defaultAesGcm as webCryptoAesGcm } from '../src/core/aead/default.js';
import { WEBCRYPTO_MIN_BYTES, prefersWebCrypto } from '../src/core/aead/webcrypto.js';
import { LocalKeyring, decrypt, decryptRange, decryptStream, encrypt, encryptStream } from '../src/index.js';
import { nodeAesGcm } from '../src/node.js';
import { allZero, expectSameBytes, numRuns } from './core-helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

const T = WEBCRYPTO_MIN_BYTES;
const key = fc.uint8Array({ minLength: 32, maxLength: 32 });
const nonce = fc.uint8Array({ minLength: 12, maxLength: 12 });
/** Lengths on both sides of the threshold, and a few large ones. */
const length = fc.oneof(fc.integer({ min: 0, max: 3 * T }), fc.constantFrom(T - 1, T, T + 1, 65_536, 1 << 20));

function syncSeal(aead: AesGcm, k: Uint8Array, n: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
  const out = new Uint8Array(pt.length + 16);
  aead.seal(k, n, aad, pt, out);
  return out;
}

async function webSealed(k: Uint8Array, n: Uint8Array, aad: Uint8Array, pt: Uint8Array): Promise<Uint8Array> {
  const out = new Uint8Array(pt.length + 16);
  await sealAead(webCryptoAesGcm, k, n, aad, pt, out);
  return out;
}

function fill(len: number, seed: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('the WebCrypto backend', () => {
  it('is named, and is chosen only for itself, from the threshold on, where crypto.subtle exists', () => {
    expect(webCryptoAesGcm.name).toBe('webcrypto');
    expect(prefersWebCrypto(webCryptoAesGcm, T)).toBe(true);
    expect(prefersWebCrypto(webCryptoAesGcm, T - 1)).toBe(false);
    expect(prefersWebCrypto(nobleAesGcm, 1 << 20)).toBe(false);
    expect(prefersWebCrypto(nodeAesGcm, 1 << 20)).toBe(false);
    // A copy a caller passes as `aead` runs as given.
    expect(prefersWebCrypto({ ...webCryptoAesGcm }, 1 << 20)).toBe(false);
    vi.stubGlobal('crypto', undefined);
    expect(prefersWebCrypto(webCryptoAesGcm, 1 << 20)).toBe(false);
  });

  it('property: the same bytes as @noble/ciphers and node:crypto at every length, and each opens the others\u2019 output (in place too)', async () => {
    await fc.assert(
      fc.asyncProperty(key, nonce, fc.uint8Array({ maxLength: 300 }), length, fc.nat(255), async (k, n, aad, len, seed) => {
        const pt = fill(len, seed);
        const web = await webSealed(k, n, aad, pt);
        expectSameBytes(web, syncSeal(nobleAesGcm, k, n, aad, pt));
        expectSameBytes(web, syncSeal(nodeAesGcm, k, n, aad, pt));
        const out = new Uint8Array(len);
        expect(await openAead(webCryptoAesGcm, k, n, aad, syncSeal(nobleAesGcm, k, n, aad, pt), out)).toBe(true);
        expectSameBytes(out, pt);
        const copy = web.slice();
        expect(await openAead(webCryptoAesGcm, k, n, aad, copy, copy.subarray(0, len))).toBe(true);
        expectSameBytes(copy.subarray(0, len), pt);
        expect(nodeAesGcm.open(k, n, aad, web, new Uint8Array(len))).toBe(true);
      }),
      { numRuns: numRuns(60) },
    );
  });

  it('property: a flipped bit anywhere, another nonce or other associated data is refused, and out is zeroed', async () => {
    await fc.assert(
      fc.asyncProperty(key, nonce, fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 2 * T }), fc.nat(), fc.nat(7), async (k, n, aad, len, where, bit) => {
        const sealed = await webSealed(k, n, aad, fill(len, 1));
        const bad = sealed.slice();
        bad[where % bad.length]! ^= 1 << bit;
        const out = new Uint8Array(len).fill(0xa5);
        expect(await openAead(webCryptoAesGcm, k, n, aad, bad, out)).toBe(false);
        expect(allZero(out)).toBe(true);
        const n2 = n.slice();
        n2[0]! ^= 1;
        expect(await openAead(webCryptoAesGcm, k, n2, aad, sealed, out.fill(1))).toBe(false);
        expect(allZero(out)).toBe(true);
        expect(await openAead(webCryptoAesGcm, k, n, Uint8Array.of(...aad, 0), sealed, out.fill(1))).toBe(false);
        expect(allZero(out)).toBe(true);
      }),
      { numRuns: numRuns(60) },
    );
  });

  it('seals on WebCrypto from the threshold on and on noble below it; without crypto.subtle, noble at every size', async () => {
    const encryptSpy = vi.spyOn(globalThis.crypto.subtle, 'encrypt');
    const k = fill(32, 3);
    const n = fill(12, 4);
    await webSealed(k, n, new Uint8Array(0), fill(T - 1, 5));
    expect(encryptSpy).not.toHaveBeenCalled();
    await webSealed(k, n, new Uint8Array(0), fill(T, 5));
    expect(encryptSpy).toHaveBeenCalledTimes(1);
    const pt = fill(3 * T, 6);
    const expected = syncSeal(nobleAesGcm, k, n, Uint8Array.of(1), pt);
    vi.stubGlobal('crypto', undefined);
    expectSameBytes(await webSealed(k, n, Uint8Array.of(1), pt), expected);
    const out = new Uint8Array(pt.length);
    expect(await openAead(webCryptoAesGcm, k, n, Uint8Array.of(1), expected, out)).toBe(true);
    expectSameBytes(out, pt);
  });

  it('refuses a plaintext whose buffer is transferred while the key is imported, instead of sealing it short', async () => {
    const buf = new ArrayBuffer(4 * T);
    const pt = new Uint8Array(buf);
    const out = new Uint8Array(pt.length + 16);
    const sealing = sealAead(webCryptoAesGcm, fill(32, 1), fill(12, 2), new Uint8Array(0), pt, out);
    structuredClone(buf, { transfer: [buf] });
    await expect(sealing).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
  });
});

describe('envelopes on the default backend', () => {
  it('encrypt and decrypt take the WebCrypto path exactly where the default backend is this one and the payload reaches the threshold; the bytes open on every backend', async ({ task }) => {
    const portable = task.file.projectName === 'portable';
    const provider = new LocalKeyring();
    const { keyId } = provider.createKey();
    const encryptSpy = vi.spyOn(globalThis.crypto.subtle, 'encrypt');
    const decryptSpy = vi.spyOn(globalThis.crypto.subtle, 'decrypt');
    for (const len of [0, 100, T - 1, T, 5 * T, 1 << 20]) {
      encryptSpy.mockClear();
      decryptSpy.mockClear();
      const pt = fill(len, len & 0xff);
      const env = await encrypt(pt, { provider, keyId, encryptionContext: { n: String(len) } });
      const r = await decrypt(env, { provider, encryptionContext: { n: String(len) } });
      expectSameBytes(r.plaintext, pt);
      const web = portable && len >= T;
      expect(encryptSpy.mock.calls.length > 0).toBe(web);
      expect(decryptSpy.mock.calls.length > 0).toBe(web);
      for (const aead of [nobleAesGcm, nodeAesGcm]) expectSameBytes((await decrypt(env, { provider, aead })).plaintext, pt);
      expectSameBytes((await decrypt(await encrypt(pt, { provider, keyId, aead: nobleAesGcm }), { provider })).plaintext, pt);
    }
  });

  it('stream segments (encryptStream, decryptStream, decryptRange) go to WebCrypto on the default backend (portable), and streams open across backends', async ({ task }) => {
    const portable = task.file.projectName === 'portable';
    const provider = new LocalKeyring();
    const { keyId } = provider.createKey();
    const pt = fill(100_000, 9);
    const encryptSpy = vi.spyOn(globalThis.crypto.subtle, 'encrypt');
    const sealed = new Uint8Array(await new Response(new Blob([pt]).stream().pipeThrough(encryptStream({ provider, keyId, segmentSize: 4096 }))).arrayBuffer());
    expect(encryptSpy.mock.calls.length > 0).toBe(portable);
    expectSameBytes((await decrypt(sealed, { provider, aead: nobleAesGcm })).plaintext, pt);
    const viaNoble = new Uint8Array(await new Response(new Blob([pt]).stream().pipeThrough(encryptStream({ provider, keyId, aead: nobleAesGcm }))).arrayBuffer());
    const opened = new Uint8Array(await new Response(new Blob([viaNoble]).stream().pipeThrough(decryptStream({ provider }))).arrayBuffer());
    expectSameBytes(opened, pt);
    const bad = viaNoble.slice();
    bad[bad.length - 20]! ^= 1;
    await expect(new Response(new Blob([bad]).stream().pipeThrough(decryptStream({ provider }))).arrayBuffer()).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
    // decryptRange opens its segments the same way.
    const decryptSpy = vi.spyOn(globalThis.crypto.subtle, 'decrypt');
    const range = await decryptRange(viaNoble, { provider, offset: 70_000, length: 20_000 });
    expect(decryptSpy.mock.calls.length > 0).toBe(portable);
    expectSameBytes(range.plaintext, pt.subarray(70_000, 90_000));
    await expect(decryptRange(bad, { provider, offset: 95_000, length: 5_000 })).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
  });
});
