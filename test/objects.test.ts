import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  DecryptionFailedError,
  LocalKeyring,
  SchemaMismatchError,
  UnsupportedValueError,
  decryptObject,
  decryptObjects,
  encryptObject,
  encryptObjects,
  inspect,
} from '../src/index.js';
import { runs, sameValue, supportedValue } from './helpers.js';

const keyring = new LocalKeyring();
keyring.createKey({ alias: 'alias/app' });
const opts = { provider: keyring, keyId: 'alias/app' };

describe('encryptObject / decryptObject', () => {
  it('round-trips a record into a text envelope that fits a JSON document', async () => {
    const user = { id: 7, name: 'Ada', tags: new Set(['admin']), born: new Date('1815-12-10T00:00:00Z'), note: undefined };
    const text = await encryptObject(user, { ...opts, encryptionContext: { table: 'users' } });
    expect(text).toMatch(/^ek1\.[A-Za-z0-9_-]+$/);
    expect(JSON.parse(JSON.stringify({ text })).text).toBe(text);
    expect(inspect(text).encryptionContext).toEqual({ table: 'users' });
    const back = await decryptObject(text, { provider: keyring, encryptionContext: { table: 'users' } });
    expect(sameValue(back, user)).toBe(true);
  });

  it('round-trips arbitrary supported values (property)', async () => {
    await fc.assert(
      fc.asyncProperty(supportedValue, async (v) => {
        const back = await decryptObject(await encryptObject(v, opts), { provider: keyring });
        expect(sameValue(back, v)).toBe(true);
      }),
      { numRuns: runs(100) },
    );
  });

  it('detects any change to any character of the text envelope (property)', async () => {
    const text = await encryptObject({ card: '4111 1111 1111 1111' }, opts);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    await fc.assert(
      fc.asyncProperty(fc.nat(text.length - 1), fc.constantFrom(...alphabet), async (pos, ch) => {
        fc.pre(text[pos] !== ch);
        const bad = text.slice(0, pos) + ch + text.slice(pos + 1);
        await expect(decryptObject(bad, { provider: keyring })).rejects.toMatchObject({
          code: expect.stringMatching(/^ERR_(MALFORMED_ENVELOPE|UNSUPPORTED_VERSION|DECRYPTION_FAILED|NO_MATCHING_PROVIDER|KEY_NOT_FOUND)$/),
        });
      }),
      { numRuns: runs(300) },
    );
  });

  it('rejects unsupported values with a typed error naming the path, before any provider call', async () => {
    let calls = 0;
    const counting = { ...opts, provider: { providerId: 'local', generateDataKey: async () => { calls++; throw new Error('unreachable'); }, decrypt: keyring.decrypt.bind(keyring) } };
    await expect(encryptObject({ address: { lines: ['a', 'b', Symbol('x')] } }, counting)).rejects.toMatchObject({
      code: 'ERR_UNSUPPORTED_VALUE',
      path: '$.address.lines[2]',
    });
    await expect(encryptObject(new Map([[1, () => 1]]), counting)).rejects.toBeInstanceOf(UnsupportedValueError);
    expect(calls).toBe(0);
  });

  it('returns the schema type and validates it; a mismatch is its own error and shows no values', async () => {
    const schema = z.object({ email: z.string().email(), age: z.number().int().min(0) });
    const good = await decryptObject(await encryptObject({ email: 'a@b.co', age: 3 }, opts), { provider: keyring, schema });
    const age: number = good.age;
    expect(age).toBe(3);
    const secretEmail = 'not-an-email-but-secret-value';
    const bad = await encryptObject({ email: secretEmail, age: -5 }, opts);
    const err = await decryptObject(bad, { provider: keyring, schema }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaMismatchError);
    expect((err as SchemaMismatchError).code).toBe('ERR_SCHEMA_MISMATCH');
    expect((err as SchemaMismatchError).issues.map((i) => i.path).sort()).toEqual(['$.age', '$.email']);
    expect((err as Error).message).not.toContain(secretEmail);
    expect((err as Error).message).not.toContain('-5');
    expect(err).not.toBeInstanceOf(DecryptionFailedError);
  });

  it('fails decryption (not the schema) for the wrong context', async () => {
    const text = await encryptObject({ a: 1 }, { ...opts, encryptionContext: { tenant: 'a' } });
    await expect(decryptObject(text, { provider: keyring, encryptionContext: { tenant: 'b' }, schema: z.object({ a: z.number() }) })).rejects.toBeInstanceOf(
      DecryptionFailedError,
    );
  });

  it('rejects a binary envelope of non-value bytes with a typed error', async () => {
    const { encryptText } = await import('../src/index.js');
    const text = await encryptText(new TextEncoder().encode('plain bytes'), opts);
    await expect(decryptObject(text, { provider: keyring })).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
  });
});

describe('encryptObjects / decryptObjects', () => {
  it('keeps order, bounds concurrency and reports per-item failures without losing the rest', async () => {
    let inFlight = 0;
    let peak = 0;
    const slow = {
      providerId: 'local',
      async generateDataKey(r: Parameters<LocalKeyring['generateDataKey']>[0]) {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((res) => setTimeout(res, 2));
        inFlight--;
        return keyring.generateDataKey(r);
      },
      decrypt: keyring.decrypt.bind(keyring),
    };
    const values = Array.from({ length: 40 }, (_, i) => (i === 13 ? { bad: () => 0 } : { i }));
    const enc = await encryptObjects(values, { provider: slow, keyId: 'alias/app', concurrency: 4 });
    expect(peak).toBeLessThanOrEqual(4);
    expect(enc[13]).toMatchObject({ ok: false, error: expect.any(UnsupportedValueError) });
    expect(enc.filter((r) => r.ok)).toHaveLength(39);
    const texts = enc.map((r) => (r.ok ? r.value : 'ek1.AAAA'));
    const dec = await decryptObjects(texts, { provider: keyring, concurrency: 3 });
    dec.forEach((r, i) => {
      if (i === 13) expect(r.ok).toBe(false);
      else expect(r).toEqual({ ok: true, value: { i } });
    });
  });

  it('rejects bad concurrency', async () => {
    await expect(encryptObjects([1], { ...opts, concurrency: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
  });
});
