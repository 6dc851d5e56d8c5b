import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  DecryptionFailedError,
  LocalKeyring,
  UnencryptedFieldError,
  createBlindIndexKey,
  decryptFields,
  decryptRecords,
  encryptFields,
  encryptRecords,
  inspect,
  openBlindIndex,
  type KeyProvider,
} from '../src/index.js';
import { runs, sameValue, supportedValue } from './helpers.js';

const keyring = new LocalKeyring();
keyring.createKey({ alias: 'alias/users' });
const base = { provider: keyring, keyId: 'alias/users' };

function counting(p: KeyProvider): KeyProvider & { calls: { generate: number; decrypt: number } } {
  const calls = { generate: 0, decrypt: 0 };
  return {
    providerId: p.providerId,
    calls,
    generateDataKey: (r) => (calls.generate++, p.generateDataKey(r)),
    decrypt: (r) => (calls.decrypt++, p.decrypt(r)),
  };
}

const user = () => ({
  id: 41,
  name: 'Ada Lovelace',
  ssn: '078-05-1120',
  email: 'Ada@Example.com',
  address: { street: '12 St James Sq', city: 'London' },
  cards: [{ number: '4111111111111111', exp: '12/30' }, { number: '5500000000000004', exp: '01/29' }],
  balance: 10n,
});
const FIELDS = ['ssn', 'email', 'address.street', 'cards[].number', 'balance'];

describe('encryptFields / decryptFields', () => {
  it('keeps the record shape, encrypts only the listed fields, and round-trips types', async () => {
    const row = user();
    const p = counting(keyring);
    const enc = await encryptFields(row, { ...base, provider: p, fields: FIELDS, recordId: row.id });
    expect(p.calls.generate).toBe(1);
    expect(Object.keys(enc)).toEqual(Object.keys(row));
    expect(enc.name).toBe(row.name);
    expect(enc.address.city).toBe('London');
    for (const v of [enc.ssn, enc.email, enc.address.street, enc.cards[0]!.number, enc.cards[1]!.number, enc.balance]) {
      expect(v).toMatch(/^ek1\./);
      expect(inspect(v as unknown as string).layout).toEqual({ id: 1, name: 'record field' });
    }
    expect(row.ssn).toBe('078-05-1120'); // input untouched
    const dec = await decryptFields(enc, { provider: p, fields: FIELDS, recordId: row.id });
    expect(p.calls.decrypt).toBe(1);
    expect(dec).toEqual(row);
    expect((dec as ReturnType<typeof user>).balance).toBe(10n);
  });

  it('makes one provider call per record for 10 encrypted fields', async () => {
    const rec = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`f${i}`, `value ${i}`]));
    const p = counting(keyring);
    const enc = await encryptFields(rec, { ...base, provider: p, fields: Object.keys(rec) });
    await decryptFields(enc, { provider: p, fields: Object.keys(rec) });
    expect(p.calls).toEqual({ generate: 1, decrypt: 1 });
  });

  it('round-trips arbitrary records with arbitrary field selections (property)', async () => {
    const recordArb = fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), supportedValue, { minKeys: 1, maxKeys: 6 });
    await fc.assert(
      fc.asyncProperty(recordArb, fc.infiniteStream(fc.boolean()), fc.option(fc.oneof(fc.string({ minLength: 1 }), fc.integer()), { nil: undefined }), fc.option(fc.nat(), { nil: undefined }), async (rec, picks, recordId, recordVersion) => {
        const keys = Object.keys(rec);
        const fields = keys.filter(() => picks.next().value);
        fc.pre(fields.length > 0);
        const enc = await encryptFields(rec, { ...base, fields, recordId, recordVersion });
        const dec = await decryptFields(enc, { provider: keyring, fields, recordId, recordVersion });
        expect(sameValue(dec, rec)).toBe(true);
      }),
      { numRuns: runs(60) },
    );
  });

  it('rejects a field moved to another path, another array element or another record (property)', async () => {
    const a = await encryptFields(user(), { ...base, fields: FIELDS, recordId: 1 });
    const b = await encryptFields(user(), { ...base, fields: FIELDS, recordId: 2 });
    const paths: [string, (r: typeof a) => string, (r: typeof a, v: string) => void][] = [
      ['ssn', (r) => r.ssn, (r, v) => (r.ssn = v)],
      ['email', (r) => r.email, (r, v) => (r.email = v)],
      ['address.street', (r) => r.address.street, (r, v) => (r.address.street = v)],
      ['cards[0]', (r) => r.cards[0]!.number, (r, v) => (r.cards[0]!.number = v)],
      ['cards[1]', (r) => r.cards[1]!.number, (r, v) => (r.cards[1]!.number = v)],
    ];
    const clone = (r: typeof a) => ({ ...r, address: { ...r.address }, cards: r.cards.map((c) => ({ ...c })) });
    await fc.assert(
      fc.asyncProperty(fc.nat(paths.length - 1), fc.nat(paths.length - 1), fc.boolean(), async (i, j, fromOtherRecord) => {
        fc.pre(i !== j || fromOtherRecord);
        const target = clone(a);
        const source = fromOtherRecord ? b : a;
        paths[j]![2](target, paths[i]![1](source));
        await expect(decryptFields(target, { provider: keyring, fields: FIELDS, recordId: 1 })).rejects.toBeInstanceOf(DecryptionFailedError);
      }),
      { numRuns: runs(50) },
    );
  });

  it('authenticates the whole header of each field: an edited key id in the header is rejected', async () => {
    const { envelopeFromText, envelopeToText } = await import('../src/index.js');
    const enc = await encryptFields(user(), { ...base, fields: ['ssn'], recordId: 3 });
    const keyId = keyring.resolveKeyId('alias/users');
    const bytes = envelopeFromText(enc.ssn);
    const needle = new TextEncoder().encode(keyId);
    const at = bytes.findIndex((_, i) => needle.every((b, k) => bytes[i + k] === b));
    expect(at).toBeGreaterThan(0);
    bytes[at] = bytes[at] === 0x61 ? 0x62 : 0x61; // the blob (which carries its own key id) is untouched
    await expect(decryptFields({ ...enc, ssn: envelopeToText(bytes) }, { provider: keyring, fields: ['ssn'], recordId: 3 })).rejects.toBeInstanceOf(
      DecryptionFailedError,
    );
  });

  it('keeps the two layouts apart: decrypt refuses a field envelope, decryptFields a whole-message envelope', async () => {
    const { decrypt, decryptObject, encryptObject, envelopeFromText } = await import('../src/index.js');
    const enc = await encryptFields(user(), { ...base, fields: ['ssn'], recordId: 3 });
    await expect(decrypt(envelopeFromText(enc.ssn), { provider: keyring })).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    await expect(decryptObject(enc.ssn, { provider: keyring })).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    const whole = await encryptObject('078-05-1120', base);
    await expect(decryptFields({ ...enc, ssn: whole }, { provider: keyring, fields: ['ssn'], recordId: 3 })).rejects.toMatchObject({
      code: 'ERR_MALFORMED_ENVELOPE',
    });
  });

  it('rejects the wrong record id, and a missing one', async () => {
    const enc = await encryptFields(user(), { ...base, fields: ['ssn'], recordId: 'u-41' });
    await expect(decryptFields(enc, { provider: keyring, fields: ['ssn'], recordId: 'u-42' })).rejects.toBeInstanceOf(DecryptionFailedError);
    await expect(decryptFields(enc, { provider: keyring, fields: ['ssn'] })).rejects.toBeInstanceOf(DecryptionFailedError);
    // the number 41 and the string "41" are different ids
    const num = await encryptFields(user(), { ...base, fields: ['ssn'], recordId: 41 });
    await expect(decryptFields(num, { provider: keyring, fields: ['ssn'], recordId: '41' })).rejects.toBeInstanceOf(DecryptionFailedError);
  });

  it('detects a change to any character of any encrypted field (property)', async () => {
    const enc = await encryptFields(user(), { ...base, fields: ['ssn', 'email'], recordId: 5 });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('ssn', 'email'), fc.nat(1000), fc.constantFrom(...alphabet), async (field, at, ch) => {
        const s = enc[field as 'ssn' | 'email'];
        const pos = at % s.length;
        fc.pre(s[pos] !== ch);
        const bad = { ...enc, [field]: s.slice(0, pos) + ch + s.slice(pos + 1) };
        const err = await decryptFields(bad, { provider: keyring, fields: ['ssn', 'email'], recordId: 5 }).catch((e: unknown) => e);
        expect(err).toMatchObject({
          code: expect.stringMatching(/^ERR_(MALFORMED_ENVELOPE|UNSUPPORTED_VERSION|DECRYPTION_FAILED|NO_MATCHING_PROVIDER|KEY_NOT_FOUND|UNENCRYPTED_FIELD)$/),
        });
      }),
      { numRuns: runs(300) },
    );
  });

  it('fails closed on plaintext where ciphertext belongs, unless migrating, and reports every such field', async () => {
    const enc = await encryptFields(user(), { ...base, fields: ['ssn'], recordId: 1 });
    const legacy = { ...enc, email: 'legacy@example.com', cards: [{ number: 1234 }] };
    const err = await decryptFields(legacy, { provider: keyring, fields: ['ssn', 'email', 'cards[].number'], recordId: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnencryptedFieldError);
    expect(err).toMatchObject({ code: 'ERR_UNENCRYPTED_FIELD', path: '$.email' });
    expect((err as Error).message).not.toContain('legacy@example.com');
    await expect(
      decryptFields(legacy, { provider: keyring, fields: ['email'], recordId: 1, allowPlaintextFields: true }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    const seen: string[] = [];
    const dec = await decryptFields<Record<string, unknown>>(legacy, {
      provider: keyring,
      fields: ['ssn', 'email', 'cards[].number'],
      recordId: 1,
      allowPlaintextFields: true,
      onPlaintextField: (p) => seen.push(p),
    });
    expect(seen).toEqual(['$.email', '$.cards[0].number']);
    expect(dec.ssn).toBe('078-05-1120');
    expect(dec.email).toBe('legacy@example.com');
  });

  it('decrypts only the fields asked for and leaves the others untouched', async () => {
    const enc = await encryptFields(user(), { ...base, fields: FIELDS, recordId: 9 });
    const part = await decryptFields<ReturnType<typeof user>>(enc, { provider: keyring, fields: ['email'], recordId: 9 });
    expect(part.email).toBe('Ada@Example.com');
    expect(part.ssn).toBe(enc.ssn);
    expect(part.cards).toBe(enc.cards); // untouched subtree is the same object
  });

  it('validates the decrypted record with a schema', async () => {
    const schema = z.object({ id: z.number(), ssn: z.string().regex(/^\d{3}-\d{2}-\d{4}$/) }).passthrough();
    const enc = await encryptFields({ id: 1, ssn: 'nope' }, { ...base, fields: ['ssn'] });
    await expect(decryptFields(enc, { provider: keyring, fields: ['ssn'], schema })).rejects.toMatchObject({ code: 'ERR_SCHEMA_MISMATCH' });
  });

  it('checks selectors and record shape before calling the provider', async () => {
    const p = counting(keyring);
    const o = { ...base, provider: p };
    await expect(encryptFields(user(), { ...o, fields: [] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields(user(), { ...o, fields: ['a..b'] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields(user(), { ...o, fields: ['address', 'address.street'] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields(user(), { ...o, fields: ['name[]'] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields(user(), { ...o, fields: ['ssn'], recordId: 1.5 })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields(null as unknown as object, { ...o, fields: ['ssn'] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields({ f: () => 1 }, { ...o, fields: ['f'] })).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_VALUE' });
    expect(p.calls.generate).toBe(0);
    // absent fields are skipped: nothing to encrypt, no provider call
    expect(await encryptFields({ id: 1 }, { ...o, fields: ['ssn'] })).toEqual({ id: 1 });
    expect(p.calls.generate).toBe(0);
  });

  it('batches records with per-record ids', async () => {
    const rows = [user(), { ...user(), id: 42 }, { ...user(), id: 43, ssn: Symbol('bad') as unknown as string }];
    const enc = await encryptRecords(rows, { ...base, fields: ['ssn'], recordId: (r) => r.id, concurrency: 2 });
    expect(enc.map((r) => r.ok)).toEqual([true, true, false]);
    const ok = enc.flatMap((r) => (r.ok ? [r.value] : []));
    const dec = await decryptRecords<ReturnType<typeof user>>([ok[1]!, ok[0]!], { provider: keyring, fields: ['ssn'], recordId: (r) => (r as { id: number }).id });
    expect(dec.map((r) => r.ok && r.value.ssn)).toEqual(['078-05-1120', '078-05-1120']);
  });
});

describe('blind indexes', () => {
  it('gives equal indexes for equal normalised values, stable across records, without exposing the key', async () => {
    const stored = await createBlindIndexKey({ ...base, name: 'users.email' });
    const idx = await openBlindIndex(stored, { provider: keyring, name: 'users.email', normalize: (s) => s.trim().toLowerCase() });
    const r1: Record<string, unknown> = await encryptFields({ email: 'Ada@Example.com' }, { ...base, fields: ['email'], recordId: 1, blindIndexes: { email: { index: idx, into: 'email_idx' } } });
    const r2: Record<string, unknown> = await encryptFields({ email: ' ada@example.com' }, { ...base, fields: ['email'], recordId: 2, blindIndexes: { email: { index: idx, into: 'email_idx' } } });
    const r3: Record<string, unknown> = await encryptFields({ email: 'bob@example.com' }, { ...base, fields: ['email'], recordId: 3, blindIndexes: { email: { index: idx, into: 'email_idx' } } });
    expect(r1.email_idx).toBe(r2.email_idx);
    expect(r1.email_idx).not.toBe(r3.email_idx);
    expect(r1.email_idx).toBe(idx.compute('ADA@example.com'));
    expect(r1.email_idx).toMatch(/^[A-Za-z0-9_-]{11}$/); // 64 bits
    expect(String((await import('node:util')).inspect(idx))).not.toMatch(/[0-9a-f]{32}/);
  });

  it('is keyed by its own key and name: another key or name gives other indexes', async () => {
    const k1 = await openBlindIndex(await createBlindIndexKey({ ...base, name: 'users.email' }), { provider: keyring, name: 'users.email' });
    const k2 = await openBlindIndex(await createBlindIndexKey({ ...base, name: 'users.email' }), { provider: keyring, name: 'users.email' });
    const storedOther = await createBlindIndexKey({ ...base, name: 'users.phone' });
    expect(k1.compute('x')).not.toBe(k2.compute('x'));
    // the stored key is bound to its name
    await expect(openBlindIndex(storedOther, { provider: keyring, name: 'users.email' })).rejects.toBeInstanceOf(DecryptionFailedError);
    const short = await openBlindIndex(storedOther, { provider: keyring, name: 'users.phone', bits: 16 });
    expect(short.compute('x')).toHaveLength(3);
    short.destroy();
    expect(() => short.compute('x')).toThrow(/destroyed/);
    await expect(openBlindIndex(storedOther, { provider: keyring, name: 'users.phone', bits: 12 })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
  });
});

describe('compact fields (headerField)', () => {
  const opts = { ...base, fields: FIELDS, headerField: '_ek' };

  it('stores the header once and each field as its sealed value; round-trips', async () => {
    const row = user();
    const p = counting(keyring);
    const enc = (await encryptFields(row, { ...opts, provider: p, recordId: row.id })) as ReturnType<typeof user> & { _ek: string };
    expect(enc._ek).toMatch(/^ekh1\.[A-Za-z0-9_-]+$/);
    for (const v of [enc.ssn, enc.email, enc.address.street, enc.cards[0]!.number, enc.cards[1]!.number, enc.balance]) {
      expect(v).toMatch(/^ekf1\.[A-Za-z0-9_-]+$/);
    }
    const selfContained = await encryptFields(row, { ...base, fields: FIELDS, recordId: row.id });
    expect(JSON.stringify(enc, (_, v) => (typeof v === 'bigint' ? String(v) : v)).length).toBeLessThan(
      JSON.stringify(selfContained, (_, v) => (typeof v === 'bigint' ? String(v) : v)).length * 0.6,
    );
    const dec = await decryptFields<Record<string, unknown>>(enc, { provider: p, fields: FIELDS, recordId: row.id, headerField: '_ek' });
    expect(p.calls).toEqual({ generate: 1, decrypt: 1 });
    const { _ek, ...rest } = dec;
    expect(_ek).toBe(enc._ek);
    expect(rest).toEqual(row);
  });

  it('rejects a compact field moved to another path or record, and the wrong record id', async () => {
    const a = (await encryptFields(user(), { ...opts, recordId: 1 })) as ReturnType<typeof user> & { _ek: string };
    const b = (await encryptFields(user(), { ...opts, recordId: 1 })) as ReturnType<typeof user> & { _ek: string };
    const read = (r: object, recordId = 1) => decryptFields(r, { provider: keyring, fields: FIELDS, recordId, headerField: '_ek' });
    await expect(read({ ...a, ssn: a.email })).rejects.toBeInstanceOf(DecryptionFailedError);
    await expect(read({ ...a, cards: [a.cards[1], a.cards[0]] })).rejects.toBeInstanceOf(DecryptionFailedError);
    await expect(read({ ...a, ssn: b.ssn })).rejects.toBeInstanceOf(DecryptionFailedError); // same path, same id, another record's header
    await expect(read({ ...a, _ek: b._ek })).rejects.toBeInstanceOf(DecryptionFailedError);
    await expect(read(a, 2)).rejects.toBeInstanceOf(DecryptionFailedError);
  });

  it('detects a change to any character of the header or of a compact field (property)', async () => {
    const enc = (await encryptFields(user(), { ...opts, fields: ['ssn', 'email'], recordId: 5 })) as unknown as Record<string, string>;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('_ek', 'ssn', 'email'), fc.nat(1000), fc.constantFrom(...alphabet), async (field, at, ch) => {
        const s = enc[field]!;
        const pos = at % s.length;
        fc.pre(s[pos] !== ch);
        const bad = { ...enc, [field]: s.slice(0, pos) + ch + s.slice(pos + 1) };
        const err = await decryptFields(bad, { provider: keyring, fields: ['ssn', 'email'], recordId: 5, headerField: '_ek' }).catch((e: unknown) => e);
        expect(err).toMatchObject({
          code: expect.stringMatching(/^ERR_(MALFORMED_ENVELOPE|UNSUPPORTED_VERSION|DECRYPTION_FAILED|NO_MATCHING_PROVIDER|KEY_NOT_FOUND|UNENCRYPTED_FIELD)$/),
        });
      }),
      { numRuns: runs(300) },
    );
  });

  it('needs the header: missing header, missing option, or a header where a field should be', async () => {
    const enc = (await encryptFields(user(), { ...opts, recordId: 1 })) as Record<string, unknown>;
    const { _ek, ...noHeader } = enc;
    await expect(decryptFields(noHeader, { provider: keyring, fields: ['ssn'], recordId: 1, headerField: '_ek' })).rejects.toMatchObject({
      code: 'ERR_MALFORMED_ENVELOPE',
    });
    await expect(decryptFields(enc, { provider: keyring, fields: ['ssn'], recordId: 1 })).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    await expect(decryptFields({ ...enc, ssn: _ek }, { provider: keyring, fields: ['ssn'], recordId: 1, headerField: '_ek' })).rejects.toMatchObject({
      code: 'ERR_MALFORMED_ENVELOPE',
    });
    await expect(encryptFields(user(), { ...opts, headerField: 'ssn' })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields(user(), { ...opts, headerField: '' })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
  });

  it('refuses a record that mixes compact and self-contained fields', async () => {
    const enc = (await encryptFields(user(), { ...opts, recordId: 1 })) as Record<string, unknown>;
    const one = await encryptFields({ email: 'new@example.com' }, { ...base, fields: ['email'], recordId: 1 });
    const mixed = { ...enc, email: one.email };
    await expect(decryptFields(mixed, { provider: keyring, fields: FIELDS, recordId: 1, headerField: '_ek' })).rejects.toMatchObject({
      code: 'ERR_MALFORMED_ENVELOPE',
    });
  });
});
