import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { checkSelectors } from '../src/records/selectors.js';
import {
  DecryptionFailedError,
  EnvelopeKitError,
  FieldNotFoundError,
  InvalidParameterError,
  LocalKeyring,
  SELECTOR_LIMITS,
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
import { checkRecordEncryption } from '../src/testing/index.js';
import { runs, sameValue, supportedValue } from './helpers.js';
import { onlyKeyIdsChanged } from './core-helpers.js';

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
const FIELDS = ['ssn', 'email', 'address.street', 'cards[].number', 'balance'] as const;

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
    type Sealed = typeof a.ssn;
    const paths: [string, (r: typeof a) => Sealed, (r: typeof a, v: Sealed) => void][] = [
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

  it('an edited key id in the header of a field decrypts to the same record; an edited blob or provider id is rejected (SPEC.md §9.13)', async () => {
    const { envelopeFromText, envelopeToText } = await import('../src/index.js');
    const enc = await encryptFields(user(), { ...base, fields: ['ssn', 'email'], recordId: 3 });
    const keyId = keyring.resolveKeyId('alias/users');
    const bytes = envelopeFromText(enc.ssn);
    const needle = new TextEncoder().encode(keyId);
    const at = bytes.findIndex((_, i) => needle.every((b, k) => bytes[i + k] === b));
    expect(at).toBeGreaterThan(0);
    const edited = bytes.slice();
    edited[at] = edited[at] === 0x61 ? 0x62 : 0x61; // the key id beside the blob; the blob (which carries its own key id) is untouched
    expect(onlyKeyIdsChanged(bytes, edited)).toBe(true);
    const options = { provider: keyring, fields: ['ssn', 'email'] as const, recordId: 3 };
    expect(await decryptFields({ ...enc, ssn: envelopeToText(edited) }, options)).toEqual(await decryptFields(enc, options));
    // the key id inside the blob, and the provider id: refused, even though the email field's header is intact
    const inBlob = bytes.findIndex((_, i) => i > at && needle.every((b, k) => bytes[i + k] === b));
    expect(inBlob).toBeGreaterThan(at);
    for (const i of [inBlob, at - 3]) {
      const t = bytes.slice();
      t[i]! ^= 0x01;
      expect(onlyKeyIdsChanged(bytes, t)).toBe(false);
      await expect(decryptFields({ ...enc, ssn: envelopeToText(t) }, options)).rejects.toBeInstanceOf(EnvelopeKitError);
    }
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
        const changed = s.slice(0, pos) + ch + s.slice(pos + 1);
        const bad = { ...enc, [field]: changed };
        const err = await decryptFields(bad, { provider: keyring, fields: ['ssn', 'email'], recordId: 5 }).catch((e: unknown) => e);
        // SPEC.md §9.13: a change confined to a key id beside a blob may decrypt, and then to the same record
        if (onlyKeyIdsChanged(s, changed) && !(err instanceof Error)) {
          expect(err).toEqual(await decryptFields(enc, { provider: keyring, fields: ['ssn', 'email'], recordId: 5 }));
          return;
        }
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
    const dec = await decryptFields(legacy, {
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
    const part = await decryptFields(enc, { provider: keyring, fields: ['email'], recordId: 9 });
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
    await expect(encryptFields(user(), { ...o, fields: ['a..b'] as never })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields(user(), { ...o, fields: ['address', 'address.street'] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields(user(), { ...o, fields: ['name[]'] as never })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields(user(), { ...o, fields: ['ssn'], recordId: 1.5 })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields(null as unknown as object, { ...o, fields: ['ssn'] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields({ f: () => 1 } as Record<string, unknown>, { ...o, fields: ['f'] })).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_VALUE' });
    expect(p.calls.generate).toBe(0);
    // a selector that matches nothing is an error, unless marked optional; absent optional fields are skipped
    const sparse: { id: number; ssn?: string } = { id: 1 };
    await expect(encryptFields(sparse, { ...o, fields: ['ssn'] })).rejects.toMatchObject({ code: 'ERR_FIELD_NOT_FOUND', selector: 'ssn' });
    expect(await encryptFields(sparse, { ...o, fields: ['ssn?'] })).toEqual({ id: 1 });
    // nothing sealed: no header either (its type is optional then)
    expect(await encryptFields(sparse, { ...o, fields: ['ssn?'], headerField: '_ek' })).toEqual({ id: 1 });
    expect(p.calls.generate).toBe(0);
  });

  it('batches records with per-record ids', async () => {
    const rows = [user(), { ...user(), id: 42 }, { ...user(), id: 43, ssn: Symbol('bad') as unknown as string }];
    const enc = await encryptRecords(rows, { ...base, fields: ['ssn'], recordId: (r) => r.id, concurrency: 2 });
    expect(enc.map((r) => r.ok)).toEqual([true, true, false]);
    const ok = enc.flatMap((r) => (r.ok ? [r.value] : []));
    const dec = await decryptRecords([ok[1]!, ok[0]!], { provider: keyring, fields: ['ssn'], recordId: (r) => r.id });
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
  const opts = { ...base, fields: FIELDS, headerField: '_ek' as const };

  it('stores the header once and each field as its sealed value; round-trips', async () => {
    const row = user();
    const p = counting(keyring);
    const enc = (await encryptFields(row, { ...opts, provider: p, recordId: row.id }));
    expect(enc._ek).toMatch(/^ekh1\.[A-Za-z0-9_-]+$/);
    for (const v of [enc.ssn, enc.email, enc.address.street, enc.cards[0]!.number, enc.cards[1]!.number, enc.balance]) {
      expect(v).toMatch(/^ekf1\.[A-Za-z0-9_-]+$/);
    }
    const selfContained = await encryptFields(row, { ...base, fields: FIELDS, recordId: row.id });
    expect(JSON.stringify(enc, (_, v) => (typeof v === 'bigint' ? String(v) : v)).length).toBeLessThan(
      JSON.stringify(selfContained, (_, v) => (typeof v === 'bigint' ? String(v) : v)).length * 0.6,
    );
    const dec = await decryptFields(enc, { provider: p, fields: FIELDS, recordId: row.id, headerField: '_ek' });
    expect(p.calls).toEqual({ generate: 1, decrypt: 1 });
    const { _ek, ...rest } = dec;
    expect(_ek).toBe(enc._ek);
    expect(rest).toEqual(row);
  });

  it('rejects a compact field moved to another path or record, and the wrong record id', async () => {
    const a = (await encryptFields(user(), { ...opts, recordId: 1 }));
    const b = (await encryptFields(user(), { ...opts, recordId: 1 }));
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
        const changed = s.slice(0, pos) + ch + s.slice(pos + 1);
        const bad = { ...enc, [field]: changed };
        const options = { provider: keyring, fields: ['ssn', 'email'], recordId: 5, headerField: '_ek' };
        const err = await decryptFields(bad, options).catch((e: unknown) => e);
        // SPEC.md §9.13: a change confined to a key id beside a blob (in the record header) may decrypt, and then to the same record
        if (onlyKeyIdsChanged(s, changed) && !(err instanceof Error)) {
          expect(err).toEqual({ ...(await decryptFields(enc, options)), _ek: changed });
          return;
        }
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
    await expect(decryptFields(mixed as Record<string, unknown>, { provider: keyring, fields: FIELDS, recordId: 1, headerField: '_ek' })).rejects.toMatchObject({
      code: 'ERR_MALFORMED_ENVELOPE',
    });
  });
});

describe('selectors must match (FieldNotFoundError)', () => {
  const loose = (r: object) => r as Record<string, unknown>;

  it('refuses a misspelt field before the provider is called, naming the selector, on both calls', async () => {
    const p = counting(keyring);
    const err = await encryptFields(loose(user()), { ...base, provider: p, fields: ['ssn', 'emial'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FieldNotFoundError);
    expect(err).toMatchObject({ code: 'ERR_FIELD_NOT_FOUND', selector: 'emial' });
    expect((err as Error).message).toContain('"emial"');
    expect((err as Error).message).not.toContain('078-05-1120');
    expect(p.calls.generate).toBe(0);
    const enc = await encryptFields(user(), { ...base, fields: ['ssn'], recordId: 1 });
    await expect(decryptFields(loose(enc), { provider: p, fields: ['ssn', 'emial'], recordId: 1 })).rejects.toMatchObject({
      code: 'ERR_FIELD_NOT_FOUND',
      selector: 'emial',
    });
    expect(p.calls.decrypt).toBe(0);
    await expect(encryptFields(loose(user()), { ...base, fields: ['address.stret'] })).rejects.toMatchObject({ code: 'ERR_FIELD_NOT_FOUND' });
    await expect(encryptFields(loose(user()), { ...base, fields: ['cards[].numbr'] })).rejects.toMatchObject({ code: 'ERR_FIELD_NOT_FOUND' });
  });

  it('counts a present property whatever its value, an empty array as matched, and skips an absent one only when marked "?"', async () => {
    const rec = { a: null, b: undefined, list: [] as { n?: string }[], some: [{ n: 'x' }, {}], deep: null as { s: string } | null };
    const enc = await encryptFields(rec, { ...base, fields: ['a', 'b', 'list[].n', 'some[].n'] });
    expect(enc.a).toMatch(/^ek1\./);
    expect(enc.b).toMatch(/^ek1\./);
    expect(enc.some[0]!.n).toMatch(/^ek1\./);
    expect(enc.some[1]).toEqual({});
    // null or undefined on the way: nothing is there, so the selector must be optional
    await expect(encryptFields(rec, { ...base, fields: ['deep.s'] })).rejects.toMatchObject({ code: 'ERR_FIELD_NOT_FOUND', selector: 'deep.s' });
    const opt = await encryptFields(rec, { ...base, fields: ['deep.s?', 'a'] });
    expect(opt.deep).toBeNull();
    const dec = await decryptFields(opt, { provider: keyring, fields: ['deep.s?', 'a'] });
    expect(dec).toEqual(rec);
    // an array whose elements all lack the field
    await expect(encryptFields({ items: [{}, {}] } as { items: { n?: string }[] }, { ...base, fields: ['items[].n'] })).rejects.toMatchObject({
      code: 'ERR_FIELD_NOT_FOUND',
    });
    // "?" is the optional marker, not part of a name
    await expect(encryptFields({ 'a?': 1 } as Record<string, unknown>, { ...base, fields: ['a?'] })).resolves.toEqual({ 'a?': 1 });
    await expect(encryptFields(loose(rec), { ...base, fields: ['a?b'] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
  });

  it('bounds the number and the length of selectors', async () => {
    const many = Array.from({ length: SELECTOR_LIMITS.maxSelectors + 1 }, (_, i) => `f${i}`);
    const rec = Object.fromEntries(many.map((f) => [f, 1]));
    await expect(encryptFields(rec, { ...base, fields: many })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(decryptFields(rec, { provider: keyring, fields: many })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    const enc = await encryptFields(rec, { ...base, fields: many.slice(0, SELECTOR_LIMITS.maxSelectors) });
    expect(enc.f0).toMatch(/^ek1\./);
    const long = 'x'.repeat(SELECTOR_LIMITS.maxSelectorLength + 1);
    await expect(encryptFields({ [long]: 1 }, { ...base, fields: [long] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
  });

  it('finds exactly the overlapping selector sets the pairwise rule finds (property)', () => {
    // The pairwise rule: a covers b when a's steps are a prefix of b's, all but a's last equal, a's last by name with no more [].
    const covers = (a: { name: string; arrays: number }[], b: { name: string; arrays: number }[]): boolean =>
      a.length <= b.length &&
      a.every((s, k) => s.name === b[k]!.name && (k < a.length - 1 ? s.arrays === b[k]!.arrays : s.arrays <= b[k]!.arrays));
    const seg = fc.record({ name: fc.constantFrom('a', 'b'), arrays: fc.integer({ min: 0, max: 2 }) });
    fc.assert(
      fc.property(fc.array(fc.array(seg, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 }), (paths) => {
        const texts = paths.map((p) => p.map((s) => s.name + '[]'.repeat(s.arrays)).join('.'));
        const naive = paths.some((a, i) => paths.some((b, j) => i !== j && covers(a, b)));
        let threw = false;
        try {
          checkSelectors(texts);
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidParameterError);
          threw = true;
        }
        expect(threw).toBe(naive);
      }),
      { numRuns: runs(500) },
    );
  });
});

describe('blind index targets and property names', () => {
  const idxPromise = (async () => openBlindIndex(await createBlindIndexKey({ ...base, name: 'users.email' }), { provider: keyring, name: 'users.email' }))();

  it('refuses an "into" that is a selected field, the header field, another index\u2019s target, or a property the record has', async () => {
    const index = await idxPromise;
    const p = counting(keyring);
    const o = { ...base, provider: p };
    const rec = user() as Record<string, unknown> & ReturnType<typeof user>;
    const cases = [
      { fields: ['ssn', 'email'], blindIndexes: { ssn: { index, into: 'email' } } },
      { fields: ['ssn', 'address.street'], blindIndexes: { 'address.street': { index, into: 'street' } } },
      { fields: ['ssn'], blindIndexes: { ssn: { index, into: '_ek' } }, headerField: '_ek' },
      { fields: ['ssn', 'email'], blindIndexes: { ssn: { index, into: 'idx' }, email: { index, into: 'idx' } } },
      { fields: ['ssn'], blindIndexes: { ssn: { index, into: 'name' } } },
      { fields: ['address.street'], blindIndexes: { 'address.street': { index, into: 'city' } } },
      { fields: ['cards[].number'], blindIndexes: { 'cards[].number': { index, into: 'exp' } } },
      { fields: ['cards[]'], blindIndexes: { 'cards[]': { index, into: 'card_idx' } } },
    ];
    for (const c of cases) {
      const err = await encryptFields(rec, { ...o, ...c } as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(c.blindIndexes, (k, v) => (k === 'index' ? undefined : v))).toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    }
    expect(p.calls.generate).toBe(0);
    // beside the field, in every element of an array
    const ok = await encryptFields(user(), { ...o, fields: ['cards[].number'], blindIndexes: { 'cards[].number': { index, into: 'number_idx' } } });
    expect(ok.cards.map((c) => c.number_idx)).toEqual([index.compute('4111111111111111'), index.compute('5500000000000004')]);
  });

  it('refuses __proto__, constructor and prototype as header field, index target or selector step', async () => {
    const index = await idxPromise;
    const p = counting(keyring);
    const o = { ...base, provider: p };
    for (const name of ['__proto__', 'constructor', 'prototype']) {
      await expect(encryptFields(user(), { ...o, fields: ['ssn'], headerField: name })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
      await expect(decryptFields(user(), { provider: p, fields: ['ssn'], headerField: name })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
      await expect(encryptFields(user(), { ...o, fields: ['ssn'], blindIndexes: { ssn: { index, into: name } } })).rejects.toMatchObject({
        code: 'ERR_INVALID_PARAMETER',
      });
      for (const sel of [name, `${name}.secret`, `address.${name}`, `cards[].${name}`, `${name}[].x`]) {
        await expect(encryptFields(user(), { ...o, fields: [sel] as never })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
        await expect(decryptFields(user(), { provider: p, fields: [sel] as never })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
      }
    }
    expect(p.calls).toEqual({ generate: 0, decrypt: 0 });
  });
});

describe('records with an own __proto__ property (as JSON.parse makes them)', () => {
  it('keeps the key a key at every level, never the prototype; round-trips', async () => {
    const text = '{"__proto__":{"isAdmin":true},"ssn":"1","profile":{"__proto__":{"isAdmin":true},"email":"e"},"items":[{"__proto__":{"x":1},"n":"2"}]}';
    const row = JSON.parse(text) as Record<string, unknown>;
    const fields = ['ssn', 'profile.email', 'items[].n'];
    const enc = await encryptFields(row, { ...base, fields, recordId: 1 });
    for (const o of [enc, enc.profile, (enc.items as unknown[])[0]] as Record<string, unknown>[]) {
      expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
      expect(o.isAdmin).toBeUndefined();
      expect(Object.keys(o)).toContain('__proto__');
    }
    expect(Object.getOwnPropertyDescriptor(enc, '__proto__')?.value).toEqual({ isAdmin: true });
    expect((enc.profile as Record<string, unknown>).email).toMatch(/^ek1\./);
    const dec = await decryptFields(enc, { provider: keyring, fields, recordId: 1 });
    expect(sameValue(dec, row)).toBe(true);
    expect(JSON.stringify(dec)).toBe(text);
  });

  it('round-trips any JSON record whose keys include __proto__, constructor and prototype (property)', async () => {
    const key = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString'), fc.stringMatching(/^[a-z]{1,4}$/));
    const node = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 1 }), tie('object')),
      object: fc.uniqueArray(fc.tuple(key, tie('value')), { selector: ([k]) => k, maxLength: 4 }),
    }));
    const toJson = (entries: unknown): string =>
      Array.isArray(entries) && entries.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string')
        ? `{${(entries as [string, unknown][]).map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`).join(',')}}`
        : JSON.stringify(entries);
    await fc.assert(
      fc.asyncProperty(node.object, fc.infiniteStream(fc.boolean()), async (entries, picks) => {
        const text = toJson(entries);
        const row = JSON.parse(text) as Record<string, unknown>;
        const fields = Object.keys(row).filter((k) => !['__proto__', 'constructor', 'prototype'].includes(k) && picks.next().value);
        fc.pre(fields.length > 0);
        const enc = await encryptFields(row, { ...base, fields, recordId: 'r' });
        expect(Object.getPrototypeOf(enc)).toBe(Object.prototype);
        expect(Object.keys(enc)).toEqual(Object.keys(row));
        const dec = await decryptFields(enc, { provider: keyring, fields, recordId: 'r' });
        expect(JSON.stringify(dec)).toBe(JSON.stringify(row));
        expect(sameValue(dec, row)).toBe(true);
      }),
      { numRuns: runs(60) },
    );
  });
});

describe('thenables and values read once', () => {
  it('refuses a Promise or a record with a then method, accessor or prototype method, before any work', async () => {
    const p = counting(keyring);
    class Lazy {
      ssn = 'x';
      then(): void {}
    }
    const thenGetter = Object.defineProperty({ ssn: 'x' }, 'then', { get: () => () => {}, enumerable: true });
    const records: object[] = [Promise.resolve({ ssn: 'x' }), { ssn: 'x', then: () => {} }, new Lazy(), thenGetter];
    for (const r of records) {
      await expect(encryptFields(r as Record<string, unknown>, { ...base, provider: p, fields: ['ssn?'] })).rejects.toMatchObject({
        code: 'ERR_INVALID_PARAMETER',
        message: expect.stringContaining('thenable'),
      });
      await expect(decryptFields(r as Record<string, unknown>, { provider: p, fields: ['ssn?'] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    }
    const batch = await encryptRecords(records as Record<string, unknown>[], { ...base, provider: p, fields: ['ssn?'] });
    expect(batch.map((r) => !r.ok && r.error.code)).toEqual(records.map(() => 'ERR_INVALID_PARAMETER'));
    const dbatch = await decryptRecords(records as Record<string, unknown>[], { provider: p, fields: ['ssn?'] });
    expect(dbatch.map((r) => !r.ok && r.error.code)).toEqual(records.map(() => 'ERR_INVALID_PARAMETER'));
    expect(p.calls).toEqual({ generate: 0, decrypt: 0 });
    // a data property named "then" is data
    const plain = await encryptFields({ then: 'soon', ssn: 'x' }, { ...base, fields: ['then', 'ssn'] });
    expect(typeof plain.then).toBe('string');
  });

  it('never returns a thenable, even when a schema\u2019s output is one', async () => {
    const enc = await encryptFields({ ssn: 'x' }, { ...base, fields: ['ssn'] });
    const schema = { safeParse: (data: unknown) => ({ success: true as const, data: { data, then: (resolve: (v: unknown) => void) => resolve('adopted') } }) };
    await expect(decryptFields(enc, { provider: keyring, fields: ['ssn'], schema })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
  });

  it('refuses a proxy whose prototype turns thenable between reads', async () => {
    let reads = 0;
    const target = { ssn: 'x' };
    const sneaky = new Proxy(target, {
      getPrototypeOf: () => (reads++ === 0 ? Object.prototype : { then: () => {} }),
    });
    await expect(encryptFields(sneaky, { ...base, fields: ['ssn'] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
  });

  it('reads each property once: a getter that changes gives one value to the ciphertext and the blind index', async () => {
    const index = await openBlindIndex(await createBlindIndexKey({ ...base, name: 'users.ssn' }), { provider: keyring, name: 'users.ssn' });
    let n = 0;
    const row = Object.defineProperty({ id: 1 } as { id: number; ssn?: string }, 'ssn', { get: () => `ssn-${n++}`, enumerable: true });
    const enc = await encryptFields(row, { ...base, fields: ['ssn'], recordId: 1, blindIndexes: { ssn: { index, into: 'ssn_idx' } } });
    expect(n).toBe(1);
    const dec = await decryptFields(enc, { provider: keyring, fields: ['ssn'], recordId: 1 });
    expect(enc.ssn_idx).toBe(index.compute(dec.ssn));
  });

  it('turns hostile proxies and getters anywhere in the input into InvalidParameterError', async () => {
    const trap = <T extends object>(target: T): T =>
      new Proxy(target, {
        ownKeys: () => {
          throw new Error('ownKeys trap');
        },
        getOwnPropertyDescriptor: () => {
          throw new Error('descriptor trap');
        },
        getPrototypeOf: () => {
          throw new Error('prototype trap');
        },
        get: () => {
          throw new Error('get trap');
        },
      });
    const index = await openBlindIndex(await createBlindIndexKey({ ...base, name: 'users.email' }), { provider: keyring, name: 'users.email' });
    const throwingElement = Object.defineProperty(['ssn'], 0, {
      get: () => {
        throw new Error('element getter');
      },
    });
    const calls: (() => Promise<unknown>)[] = [
      () => encryptFields(trap({ ssn: 'x' }), { ...base, fields: ['ssn'] }),
      () => encryptFields({ ssn: 'x', nested: trap({ a: 1 }) } as Record<string, unknown>, { ...base, fields: ['nested.a'] }),
      () => encryptFields({ list: [trap({ a: 1 })] } as Record<string, unknown>, { ...base, fields: ['list[].a'] }),
      () => encryptFields({ ssn: 'x' }, { ...base, fields: trap(['ssn']) as ['ssn'] }),
      () => encryptFields({ ssn: 'x' }, { ...base, fields: throwingElement as ['ssn'] }),
      () => encryptFields({ ssn: 'x' }, { ...base, fields: ['ssn'], blindIndexes: trap({ ssn: { index, into: 'i' } }) }),
      () => encryptFields({ ssn: 'x' }, { ...base, fields: ['ssn'], blindIndexes: { ssn: trap({ index, into: 'i' }) } }),
      () => encryptFields({ ssn: 'x' }, { ...base, fields: ['ssn'], blindIndexes: { ssn: { index: trap(index), into: 'i' } } }),
      () => decryptFields(trap({ ssn: 'x' }), { provider: keyring, fields: ['ssn'] }),
      () => decryptFields({ ssn: 'x' }, { provider: keyring, fields: trap(['ssn']) as ['ssn'] }),
    ];
    for (const [i, call] of calls.entries()) {
      const err = await call().catch((e: unknown) => e);
      expect(err, `call ${i}`).toBeInstanceOf(InvalidParameterError);
    }
  });

  it('checks a batch\u2019s options once: every record gets the same selectors', async () => {
    let reads = 0;
    const fields = ['ssn'];
    Object.defineProperty(fields, 0, { get: () => (reads++ === 0 ? 'ssn' : 'email'), enumerable: true });
    const rows = [user(), user(), user()];
    const enc = await encryptRecords(rows, { ...base, fields: fields as ['ssn'], recordId: (_, i) => i });
    for (const r of enc) {
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.value.ssn).toMatch(/^ek1\./);
        expect(r.value.email).toBe('Ada@Example.com');
      }
    }
  });

  it('gives batch failures as EnvelopeKitError, wrapping what a callback throws', async () => {
    const index = await openBlindIndex(await createBlindIndexKey({ ...base, name: 'users.email' }), {
      provider: keyring,
      name: 'users.email',
      normalize: () => {
        throw new TypeError('normaliser bug');
      },
    });
    const enc = await encryptRecords([user()], { ...base, fields: ['email'], blindIndexes: { email: { index, into: 'email_idx' } } });
    const failed = enc[0]!;
    expect(failed.ok).toBe(false);
    if (!failed.ok) {
      expect(failed.error).toBeInstanceOf(EnvelopeKitError);
      expect(failed.error.cause).toBeInstanceOf(TypeError);
    }
    const ids = await encryptRecords([user()], {
      ...base,
      fields: ['ssn'],
      recordId: () => {
        throw new RangeError('no id');
      },
    });
    expect(ids[0]).toMatchObject({ ok: false, error: { code: 'ERR_INVALID_PARAMETER' } });
    const stored = await encryptFields({ ssn: 'plain' } as { ssn: string; email?: string }, { ...base, fields: ['email?'] });
    const dec = await decryptRecords([stored], {
      provider: keyring,
      fields: ['ssn'],
      allowPlaintextFields: true,
      onPlaintextField: () => {
        throw new Error('callback bug');
      },
    });
    expect(dec[0]).toMatchObject({ ok: false, error: { code: 'ERR_INVALID_PARAMETER' } });
    expect((dec[0] as { error: Error }).error).toBeInstanceOf(EnvelopeKitError);
  });
});

describe('envelope-kit/testing on a users table', () => {
  const User = z.object({
    id: z.int().min(1),
    name: z.string(),
    ssn: z.string().meta({ sensitive: true }),
    email: z.email().meta({ sensitive: true }),
    phone: z.e164().optional(),
    address: z.object({ street: z.string().meta({ sensitive: true }), city: z.string() }),
    cards: z.array(z.object({ number: z.string().regex(/^[0-9]{16}$/).meta({ sensitive: true }), exp: z.string() })).max(3),
    balance: z.bigint(),
    born: z.date(),
    avatar: z.instanceof(Uint8Array).nullable(),
  });
  const fields = ['ssn', 'email', 'phone?', 'address.street', 'cards[].number', 'balance', 'avatar'] as const;

  it('every invariant holds, self-contained and compact, with an email blind index', async () => {
    const storedKey = await createBlindIndexKey({ ...base, name: 'users.email' });
    const normalize = (s: string) => s.trim().toLowerCase();
    const index = await openBlindIndex(storedKey, { provider: keyring, name: 'users.email', normalize });
    const config = {
      ...base,
      schema: User,
      fields,
      sensitive: ['phone'],
      recordId: (u: { id: number }) => u.id,
      encryptionContext: { table: 'users' },
      blindIndexes: { email: { index, into: 'email_idx', normalize, storedKey } },
    };
    await checkRecordEncryption(config, { numRuns: runs(40) });
    await checkRecordEncryption({ ...config, headerField: '_ek' }, { numRuns: runs(40) });
  }, 60_000);
});
