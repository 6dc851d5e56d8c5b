/**
 * Property tests of the round-trip: arbitrary plaintexts (0 B to 1 MiB) and
 * arbitrary encryption contexts (unicode keys, awkward keys, any key order),
 * through the portable entry and the Node entry.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONTEXT_LIMITS, LocalKeyring, decrypt, decryptText, encrypt, encryptText, inspect } from '../src/index.js';
import * as nodeEntry from '../src/index.js';
import { contextArb, expectCode, expectSameBytes, numRuns, utf8 } from './core-helpers.js';

const byteLength = (s: string) => utf8(s).length;

/** The same entries, inserted in another order. */
function reordered(ctx: Record<string, string>, seed: number): Record<string, string> {
  const entries = Object.entries(ctx);
  let s = seed >>> 0;
  for (let i = entries.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  return Object.fromEntries(entries);
}

const keyring = new LocalKeyring();
const { keyId } = keyring.createKey({ alias: 'alias/prop' });
const nodeKeyring = nodeEntry.LocalKeyring.fromState(keyring.exportState());

describe('round-trip properties', () => {
  it('any plaintext up to 4 KiB and any context round-trip; a reordered equal context is accepted', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), contextArb, fc.nat(), async (plaintext, ctx, seed) => {
        const copy = plaintext.slice();
        const envelope = await encrypt(plaintext, { provider: keyring, keyId: 'alias/prop', encryptionContext: ctx });
        expect(plaintext).toEqual(copy);
        const result = await decrypt(envelope, { provider: keyring, encryptionContext: reordered(ctx, seed) });
        expect(result.plaintext).toEqual(plaintext);
        expect(result.keyId).toBe(keyId);
        expect({ ...result.encryptionContext }).toEqual({ ...ctx });
        expect(Object.keys(result.encryptionContext).sort()).toEqual(Object.keys(ctx).sort());
        expect(inspect(envelope).plaintextLength).toBe(plaintext.length);
      }),
      { numRuns: numRuns(60) },
    );
  });

  it('the text form round-trips the same way', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 1024 }), contextArb, async (plaintext, ctx) => {
        const text = await encryptText(plaintext, { provider: keyring, keyId, encryptionContext: ctx });
        expect(text).toMatch(/^ek1\.[A-Za-z0-9_-]+$/);
        const result = await decryptText(text, { provider: keyring, encryptionContext: ctx });
        expect(result.plaintext).toEqual(plaintext);
      }),
      { numRuns: numRuns(30) },
    );
  });

  it('large plaintexts up to 1 MiB round-trip across both AES-GCM backends', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1 << 16, max: 1 << 20 }), fc.nat(), contextArb, async (size, seed, ctx) => {
        const plaintext = new Uint8Array(size);
        crypto.getRandomValues(plaintext.subarray(0, 65536));
        plaintext.fill(seed & 0xff, 65536);
        const envelope = await nodeEntry.encrypt(plaintext, { provider: nodeKeyring, keyId, encryptionContext: ctx });
        expect(envelope.length).toBeGreaterThan(size);
        expectSameBytes((await decrypt(envelope, { provider: keyring })).plaintext, plaintext);
        expectSameBytes((await nodeEntry.decrypt(envelope, { provider: nodeKeyring, encryptionContext: reordered(ctx, seed) })).plaintext, plaintext);
      }),
      { numRuns: numRuns(3, 30) },
    );
  });

  it('exactly 1 MiB and 1 MiB + 1 (the node backend\u2019s chunk boundary) round-trip', async () => {
    for (const size of [1 << 20, (1 << 20) + 1]) {
      const plaintext = new Uint8Array(size);
      for (let i = 0; i < size; i++) plaintext[i] = i * 7;
      const envelope = await nodeEntry.encrypt(plaintext, { provider: nodeKeyring, keyId });
      expectSameBytes((await nodeEntry.decrypt(envelope, { provider: nodeKeyring })).plaintext, plaintext);
      expectSameBytes((await decrypt(envelope, { provider: keyring })).plaintext, plaintext);
    }
  });

  it('a different context value or an extra required key always fails', async () => {
    await fc.assert(
      fc.asyncProperty(contextArb.filter((c) => Object.keys(c).length > 0), fc.nat(), async (ctx, pick) => {
        const envelope = await encrypt(utf8('x'), { provider: keyring, keyId, encryptionContext: ctx });
        const keys = Object.keys(ctx);
        const k = keys[pick % keys.length]!;
        const changed = { ...ctx, [k]: ctx[k] === 'x' ? 'y' : 'x' };
        await expectCode(() => decrypt(envelope, { provider: keyring, encryptionContext: changed }), 'ERR_DECRYPTION_FAILED');
        const missing = { ...ctx, [`${k}\u0001`]: '' };
        if (byteLength(`${k}\u0001`) <= CONTEXT_LIMITS.maxKeyBytes && !(`${k}\u0001` in ctx)) {
          await expectCode(() => decrypt(envelope, { provider: keyring, encryptionContext: missing }), 'ERR_DECRYPTION_FAILED');
        }
      }),
      { numRuns: numRuns(30) },
    );
  });
});

describe('context limits', () => {
  it('accepts up to the limits and refuses beyond them', async () => {
    const max = Object.fromEntries(Array.from({ length: CONTEXT_LIMITS.maxEntries }, (_, i) => [`k${i}`, `v${i}`]));
    const envelope = await encrypt(utf8('x'), { provider: keyring, keyId, encryptionContext: max });
    expect(Object.keys((await decrypt(envelope, { provider: keyring })).encryptionContext)).toHaveLength(64);

    const tooMany = { ...max, extra: '' };
    const longKey = { ['k'.repeat(CONTEXT_LIMITS.maxKeyBytes + 1)]: '' };
    const longKeyUnicode = { ['\u00e9'.repeat(CONTEXT_LIMITS.maxKeyBytes / 2) + 'x']: '' };
    const longValue = { k: 'v'.repeat(CONTEXT_LIMITS.maxValueBytes + 1) };
    const emptyKey = { '': 'v' };
    const loneSurrogate = { k: '\ud800' };
    const loneSurrogateKey = { '\udc00': 'v' };
    for (const ctx of [tooMany, longKey, longKeyUnicode, longValue, emptyKey, loneSurrogate, loneSurrogateKey]) {
      await expectCode(() => encrypt(utf8('x'), { provider: keyring, keyId, encryptionContext: ctx }), 'ERR_INVALID_PARAMETER');
      await expectCode(() => decrypt(envelope, { provider: keyring, encryptionContext: ctx }), 'ERR_INVALID_PARAMETER');
    }
  });

  it('a null-prototype map is a valid context; class instances, arrays and symbol keys are not', async () => {
    const nullProto = Object.assign(Object.create(null), { a: 'b' }) as Record<string, string>;
    const envelope = await encrypt(utf8('x'), { provider: keyring, keyId, encryptionContext: nullProto });
    expect((await decrypt(envelope, { provider: keyring, encryptionContext: { a: 'b' } })).encryptionContext).toEqual({ a: 'b' });
    for (const bad of [new Map([['a', 'b']]), ['a'], { [Symbol('s')]: 'x' }, new (class C {})(), { a: 1 }, { a: null }]) {
      await expectCode(() => encrypt(utf8('x'), { provider: keyring, keyId, encryptionContext: bad as never }), 'ERR_INVALID_PARAMETER');
    }
  });
});
