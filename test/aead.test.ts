/**
 * The AES-GCM seam: the @noble/ciphers backend and the node:crypto backend
 * produce byte-identical output and open each other's output; a bad tag makes
 * open return false and leaves zeros in `out`.
 */
import { createCipheriv } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleAesGcm } from '../src/core/aead/noble.js';
import type { AesGcm } from '../src/core/aead/types.js';
import { nodeAesGcm } from '../src/node.js';
import { allZero, expectSameBytes, hex, numRuns } from './core-helpers.js';

const backends: readonly AesGcm[] = [nobleAesGcm, nodeAesGcm];

function seal(aead: AesGcm, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
  const out = new Uint8Array(pt.length + 16);
  aead.seal(key, nonce, aad, pt, out);
  return out;
}

function open(aead: AesGcm, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  const out = new Uint8Array(sealed.length - 16).fill(0xa5);
  if (aead.open(key, nonce, aad, sealed, out)) return out;
  expect(allZero(out)).toBe(true);
  return undefined;
}

const key = fc.oneof(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 32, maxLength: 32 }));
const nonce = fc.uint8Array({ minLength: 12, maxLength: 12 });

describe('AES-GCM backends', () => {
  it('have names', () => {
    expect(nobleAesGcm.name).toBe('noble');
    expect(nodeAesGcm.name).toBe('node');
  });

  it('property: same bytes from both backends, and each opens the other\u2019s output', () => {
    fc.assert(
      fc.property(key, nonce, fc.uint8Array({ maxLength: 256 }), fc.uint8Array({ maxLength: 2048 }), (k, n, aad, pt) => {
        const a = seal(nobleAesGcm, k, n, aad, pt);
        const b = seal(nodeAesGcm, k, n, aad, pt);
        expect(hex(a)).toBe(hex(b));
        expect(open(nodeAesGcm, k, n, aad, a)).toEqual(pt);
        expect(open(nobleAesGcm, k, n, aad, b)).toEqual(pt);
      }),
      { numRuns: numRuns(200) },
    );
  });

  it('property: larger plaintexts (up to 3 MiB, across the node backend\u2019s 1 MiB chunks) agree too', () => {
    fc.assert(
      fc.property(fc.integer({ min: (1 << 20) - 20, max: 3 * (1 << 20) + 20 }), key, nonce, (size, k, n) => {
        const pt = new Uint8Array(size);
        crypto.getRandomValues(pt.subarray(0, 65536));
        const a = seal(nobleAesGcm, k, n, new Uint8Array(0), pt);
        const b = seal(nodeAesGcm, k, n, new Uint8Array(0), pt);
        expectSameBytes(a, b);
        expectSameBytes(open(nodeAesGcm, k, n, new Uint8Array(0), a)!, pt);
      }),
      { numRuns: numRuns(2, 50) },
    );
  });

  it('match node:crypto used directly (a known-answer check that does not trust either backend)', () => {
    const k = new Uint8Array(32).fill(7);
    const n = new Uint8Array(12).fill(9);
    const aad = new TextEncoder().encode('header');
    const pt = new TextEncoder().encode('known answer');
    const c = createCipheriv('aes-256-gcm', k, n);
    c.setAAD(aad);
    const expected = Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
    for (const aead of backends) expect(hex(seal(aead, k, n, aad, pt))).toBe(expected.toString('hex'));
  });

  it('NIST GCM test case 14 (AES-256, zero key, zero nonce, one zero block)', () => {
    const k = new Uint8Array(32);
    const n = new Uint8Array(12);
    const pt = new Uint8Array(16);
    for (const aead of backends) {
      expect(hex(seal(aead, k, n, new Uint8Array(0), pt))).toBe('cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919');
    }
  });

  it('property: any change to tag, ciphertext, aad, nonce or key makes open return false and zero its output', () => {
    fc.assert(
      fc.property(key, nonce, fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 1, maxLength: 256 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (k, n, aad, pt, where, x) => {
        for (const sealer of backends) {
          const sealed = seal(sealer, k, n, aad, pt);
          const tampered = sealed.slice();
          tampered[where % sealed.length]! ^= x;
          const tag = sealed.slice();
          tag[sealed.length - 1 - (where % 16)]! ^= x;
          const otherAad = Uint8Array.from([...aad, 0]);
          const otherNonce = n.slice();
          otherNonce[where % 12]! ^= x;
          const otherKey = k.slice();
          otherKey[where % k.length]! ^= x;
          for (const opener of backends) {
            expect(open(opener, k, n, aad, tampered)).toBeUndefined();
            expect(open(opener, k, n, aad, tag)).toBeUndefined();
            expect(open(opener, k, n, otherAad, sealed)).toBeUndefined();
            expect(open(opener, k, otherNonce, aad, sealed)).toBeUndefined();
            expect(open(opener, otherKey, n, aad, sealed)).toBeUndefined();
          }
        }
      }),
      { numRuns: numRuns(60) },
    );
  });

  it('a wrong tag on a 1 MiB + 5 body leaves no plaintext behind in out (node backend writes before it verifies)', () => {
    const k = new Uint8Array(32).fill(1);
    const n = new Uint8Array(12);
    const pt = new Uint8Array((1 << 20) + 5).fill(0x42);
    for (const aead of backends) {
      const sealed = seal(aead, k, n, new Uint8Array(0), pt);
      sealed[sealed.length - 1]! ^= 1;
      const out = new Uint8Array(pt.length).fill(0xa5);
      expect(aead.open(k, n, new Uint8Array(0), sealed, out)).toBe(false);
      expect(allZero(out)).toBe(true);
    }
  });

  it('do not modify their inputs', () => {
    const k = new Uint8Array(32).fill(3);
    const n = new Uint8Array(12).fill(4);
    const aad = new Uint8Array([1, 2, 3]);
    const pt = new Uint8Array([5, 6, 7, 8]);
    for (const aead of backends) {
      const sealed = seal(aead, k, n, aad, pt);
      const copy = sealed.slice();
      open(aead, k, n, aad, sealed);
      expect([...k, ...n, ...aad, ...pt]).toEqual([...new Uint8Array(32).fill(3), ...new Uint8Array(12).fill(4), 1, 2, 3, 5, 6, 7, 8]);
      expect(sealed).toEqual(copy);
    }
  });
});
