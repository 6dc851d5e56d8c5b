/**
 * envelope-kit/testing: each invariant catches the mistake it is there for
 * (within the default number of runs, with a shrunk counterexample), and the
 * generators make values the schema accepts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LocalKeyring, createBlindIndexKey, encryptFields, openBlindIndex } from '../src/index.js';
import {
  RecordEncryptionCheckError,
  allowedCollisions,
  bindingProperty,
  checkRecordEncryption,
  findPlaintext,
  noPlaintextProperty,
  recordArbitrary,
  roundTripProperty,
  sensitiveSelectors,
  type InvariantName,
} from '../src/testing/index.js';
import { runs } from './helpers.js';

const provider = new LocalKeyring();
provider.createKey({ alias: 'alias/users' });
const base = { provider, keyId: 'alias/users', encryptionContext: { table: 'users' } };

const User = z.object({
  id: z.int().min(1),
  name: z.string(),
  email: z.email().meta({ sensitive: true }),
  ssn: z.string().min(9).max(11).meta({ sensitive: true }),
});

/** Run the check, expect it to fail on `invariant`, and return the counterexample fast-check shrank to. */
async function failure(check: Promise<void>, invariant: InvariantName): Promise<{ message: string; counterexample: string }> {
  const err = await check.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RecordEncryptionCheckError);
  const e = err as RecordEncryptionCheckError;
  expect(e.invariant).toBe(invariant);
  expect(e.message).toContain(`invariant "${invariant}" failed`);
  const counterexample = /Counterexample: (.*)/.exec(e.message)?.[1];
  expect(counterexample, e.message).toBeDefined();
  return { message: e.message, counterexample: counterexample! };
}

describe('checkRecordEncryption: a correct configuration passes', () => {
  it('users table with self-contained fields, and with compact storage', async () => {
    const config = { ...base, schema: User, fields: ['email', 'ssn'], recordId: (u: { id: number }) => u.id };
    await checkRecordEncryption(config, { numRuns: runs(50) });
    await checkRecordEncryption({ ...config, headerField: '_ek' }, { numRuns: runs(50) });
  });
});

describe('checkRecordEncryption: each invariant catches its mistake', () => {
  it('no plaintext left behind: a sensitive field missing from "fields"', async () => {
    const { message, counterexample } = await failure(
      checkRecordEncryption({ ...base, schema: User, fields: ['ssn'], recordId: (u) => u.id }),
      'no plaintext left behind',
    );
    expect(message).toMatch(/sensitive field email is readable in the stored record at email/);
    expect(counterexample.length).toBeLessThan(120);
  });

  it('no plaintext left behind: the `sensitive` list counts as much as the schema mark', async () => {
    const Plain = z.object({ id: z.int().min(1), phone: z.e164(), city: z.string() });
    const { message } = await failure(
      checkRecordEncryption({ ...base, schema: Plain, fields: ['city'], sensitive: ['phone'], recordId: (u) => u.id }),
      'no plaintext left behind',
    );
    expect(message).toMatch(/sensitive field phone is readable/);
  });

  it('binding: without recordId a field moved to another record decrypts', async () => {
    const { message, counterexample } = await failure(checkRecordEncryption({ ...base, schema: User, fields: ['email', 'ssn'] }), 'binding');
    expect(message).toMatch(/of another record put in this one: decrypted/);
    expect(counterexample.length).toBeLessThan(250);
  });

  it('binding: a constant recordId is no better than none', async () => {
    const { message } = await failure(checkRecordEncryption({ ...base, schema: User, fields: ['email', 'ssn'], recordId: 'users' }), 'binding');
    expect(message).toMatch(/of another record put in this one: decrypted/);
  });

  it('blind index: a normaliser that collapses distinct values (digits only, on emails)', async () => {
    const stored = await createBlindIndexKey({ provider, keyId: 'alias/users', name: 'users.email' });
    const index = await openBlindIndex(stored, { provider, name: 'users.email', normalize: (s) => s.replace(/[^0-9]/g, '') });
    const { message, counterexample } = await failure(
      checkRecordEncryption({
        ...base,
        schema: User,
        fields: ['email', 'ssn'],
        recordId: (u) => u.id,
        blindIndexes: { email: { index, into: 'email_idx', normalize: (s) => s.trim().toLowerCase(), storedKey: stored } },
      }, { numRuns: 300 }),
      'blind index',
    );
    expect(message).toMatch(/different values .* have the same 64-bit index/);
    // Two records are the least that can collide; shrinking a list of records with unique ids sometimes
    // stops at three (one more than needed), so the counterexample is small, not always minimal.
    const records = (counterexample.match(/"email":/g) ?? []).length;
    expect(records).toBeGreaterThanOrEqual(2);
    expect(records).toBeLessThanOrEqual(3);
  });

  it('blind index: an index opened without the intended normaliser', async () => {
    const stored = await createBlindIndexKey({ provider, keyId: 'alias/users', name: 'users.email' });
    const index = await openBlindIndex(stored, { provider, name: 'users.email' });
    const { message } = await failure(
      checkRecordEncryption({
        ...base,
        schema: User,
        fields: ['email', 'ssn'],
        recordId: (u) => u.id,
        blindIndexes: { email: { index, into: 'email_idx', normalize: (s) => s.trim().toLowerCase() } },
      }),
      'blind index',
    );
    expect(message).toMatch(/equal after normalisation but have different indexes/);
  });

  it('schema: a union of objects whose first option strips a key the record has', async () => {
    const Lossy = z.union([
      z.object({ id: z.int().min(1), email: z.email() }),
      z.object({ id: z.int().min(1), email: z.email(), phone: z.e164() }),
    ]);
    const { message, counterexample } = await failure(
      checkRecordEncryption({ ...base, schema: Lossy, fields: ['email', 'phone?'], recordId: (u) => u.id }),
      'schema',
    );
    expect(message).toMatch(/the schema's output differs from the decrypted record at \$ \(keys id, email vs id, email, phone\)/);
    expect(counterexample.length).toBeLessThan(120);
  });

  it('round trip: an optional field listed without "?"', async () => {
    const WithNickname = z.object({ id: z.int().min(1), nickname: z.string().optional() });
    const { message, counterexample } = await failure(
      checkRecordEncryption({ ...base, schema: WithNickname, fields: ['nickname'], recordId: (u) => u.id }),
      'round trip',
    );
    expect(message).toMatch(/FieldNotFoundError|matches nothing|nickname/);
    expect(counterexample).toBe('[{"id":1}]');
  });

  it('round trip: a blind index written into a column the schema has', async () => {
    const stored = await createBlindIndexKey({ provider, keyId: 'alias/users', name: 'users.email' });
    const index = await openBlindIndex(stored, { provider, name: 'users.email' });
    const { message } = await failure(
      checkRecordEncryption({ ...base, schema: User, fields: ['email', 'ssn'], recordId: (u) => u.id, blindIndexes: { email: { index, into: 'name' } } }),
      'round trip',
    );
    expect(message).toMatch(/InvalidParameterError/);
  });

  it('the error keeps fast-check’s report: the seed replays the failure', async () => {
    const config = { ...base, schema: User, fields: ['ssn'], recordId: (u: { id: number }) => u.id };
    const first = await failure(checkRecordEncryption(config, { seed: 42 }), 'no plaintext left behind');
    expect(first.message).toMatch(/seed: 42/);
    const again = await failure(checkRecordEncryption(config, { seed: 42 }), 'no plaintext left behind');
    expect(again.counterexample).toBe(first.counterexample);
  });
});

describe('the properties alone', () => {
  it('run under fc.assert and fail there too', async () => {
    const good = { ...base, schema: User, fields: ['email', 'ssn'], recordId: (u: { id: number }) => u.id };
    await fc.assert(roundTripProperty(good), { numRuns: runs(30) });
    await fc.assert(bindingProperty(good), { numRuns: runs(30) });
    const err = await fc.assert(noPlaintextProperty({ ...good, fields: ['email'] })).then(() => undefined, (e: unknown) => e);
    expect(String(err)).toMatch(/Counterexample/);
    expect(String((err as Error).cause)).toMatch(/sensitive field ssn is readable/);
  });

  it('noPlaintextProperty needs a sensitive field', () => {
    expect(() => noPlaintextProperty({ ...base, schema: z.object({ a: z.string() }), fields: ['a'] })).toThrow(TypeError);
  });

  it('findPlaintext reports blind indexes apart, and finds values in keys, bytes and the context', async () => {
    const stored = await createBlindIndexKey({ provider, keyId: 'alias/users', name: 'users.email' });
    const index = await openBlindIndex(stored, { provider, name: 'users.email' });
    const schema = z.object({ email: z.email(), blob: z.instanceof(Uint8Array), notes: z.record(z.string(), z.string()) });
    const record = { email: 'grace@example.com', blob: new Uint8Array([1, 2, 3, 4, 5]), notes: { 'grace@example.com': 'x' } };
    const config = {
      provider,
      keyId: 'alias/users',
      schema,
      fields: ['email'],
      sensitive: ['email', 'blob', 'notes'],
      encryptionContext: { owner: 'grace@example.com' },
      blindIndexes: { email: { index, into: 'email_idx' } },
    };
    const sealed = await encryptFields(record, { provider, keyId: 'alias/users', fields: ['email'], encryptionContext: config.encryptionContext, blindIndexes: { email: { index, into: 'email_idx' } } });
    const report = findPlaintext(config, record, sealed);
    expect(report.blindIndexes).toEqual(['email_idx']);
    expect(report.leaks).toContainEqual({ field: 'email', storedAt: 'email' }); // in the header's context, in clear
    expect(report.leaks).toContainEqual({ field: 'notes', storedAt: 'notes[key "grace@example.com"]' });
    expect(report.leaks).toContainEqual({ field: 'blob', storedAt: 'blob' });
    // Sealed without the context, with every sensitive field listed: nothing left.
    const clean = await encryptFields(record, { provider, keyId: 'alias/users', fields: ['email', 'blob', 'notes'], blindIndexes: { email: { index, into: 'email_idx' } } });
    expect(findPlaintext(config, record, clean).leaks).toEqual([]);
  });
});

describe('recordArbitrary', () => {
  const Wide = z.object({
    id: z.int().min(1).max(10),
    score: z.number().gt(0).lte(1),
    ratio: z.number(),
    big: z.bigint().gte(-5n).lt(5n),
    ok: z.boolean(),
    born: z.date(),
    nan: z.nan(),
    email: z.email(),
    uid: z.uuid(),
    site: z.url(),
    at: z.iso.datetime(),
    day: z.iso.date(),
    phone: z.e164(),
    code: z.string().regex(/^[A-Z]{3}-[0-9]{2}$/),
    short: z.string().min(2).max(3),
    role: z.enum(['admin', 'user']),
    kind: z.literal(['a', 1]),
    nick: z.string().optional(),
    middle: z.string().nullable(),
    avatar: z.instanceof(Uint8Array),
    tags: z.array(z.string()).min(1).max(2),
    pair: z.tuple([z.string(), z.int()]),
    prefs: z.map(z.string(), z.boolean()),
    seen: z.set(z.int()),
    extra: z.record(z.string(), z.int()),
    address: z.object({ street: z.string(), city: z.string() }),
    either: z.union([z.string(), z.int()]),
    trimmed: z.string().transform((s) => s.trim()),
    fallback: z.string().default('x'),
  });

  it('makes values the schema accepts', () => {
    fc.assert(
      fc.property(recordArbitrary(Wide), (v) => {
        const res = Wide.safeParse(v);
        if (!res.success) throw new Error(JSON.stringify(res.error.issues));
      }),
      { numRuns: runs(300) },
    );
  });

  it('includes -0 among numbers and absent optional keys', () => {
    const values = fc.sample(recordArbitrary(z.object({ n: z.number(), o: z.string().optional() })), { numRuns: 2000, seed: 1 });
    expect(values.some((v) => Object.is(v.n, -0))).toBe(true);
    expect(values.some((v) => !('o' in v))).toBe(true);
  });

  it('refuses what it cannot honour, naming the place', () => {
    expect(() => recordArbitrary(z.object({ a: z.string().refine((s) => s !== 'x') }))).toThrow(/\$\.a: string check "custom"/);
    expect(() => recordArbitrary(z.object({ b: z.custom<Uint8Array>((v) => v instanceof Uint8Array) }))).toThrow(/z\.instanceof\(Uint8Array\)/);
    expect(() => recordArbitrary({} as z.ZodType)).toThrow(TypeError);
  });

  it('sensitiveSelectors follows optional, nullable, arrays and objects', () => {
    const S = z.object({
      email: z.email().meta({ sensitive: true }).optional(),
      cards: z.array(z.object({ number: z.string().meta({ sensitive: true }), exp: z.string() })),
      notes: z.record(z.string(), z.string().meta({ sensitive: true })),
      name: z.string(),
    });
    expect(sensitiveSelectors(S)).toEqual(['email', 'cards[].number', 'notes']);
  });
});

describe('allowedCollisions (the birthday bound)', () => {
  it('is 0 at 64 bits and grows at 16 bits with the sample', () => {
    expect(allowedCollisions(12, 64)).toBe(0);
    expect(allowedCollisions(12, 16)).toBeGreaterThan(0);
    expect(allowedCollisions(2, 16)).toBeLessThanOrEqual(1);
    expect(allowedCollisions(200, 16)).toBeGreaterThan(allowedCollisions(12, 16));
  });
});
