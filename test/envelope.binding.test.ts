/**
 * The record binding of whole values (SPEC.md §9.10): `recordId` and
 * `recordVersion` on encrypt / encryptText / encryptObject and their batches
 * enter the key schedule (§3.3) without being stored or sent to the provider,
 * and a reader must give the same ones. Any other binding (another id or
 * version, a type change, absent vs present) fails with ERR_DECRYPTION_FAILED
 * at the commitment check, before the body is opened; the same binding
 * round-trips; bad values are refused before any provider call; the two
 * AES-GCM backends give the same bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleAesGcm } from '../src/core/aead/noble.js';
import { nodeAesGcm } from '../src/core/aead/node.js';
import type { AesGcm } from '../src/core/aead/types.js';
import { checkContext } from '../src/core/context.js';
import { checkRecordBinding, recordBinding } from '../src/core/binding.js';
import { sealWithDataKey } from '../src/core/envelope.js';
import {
  type DecryptRequest,
  type GenerateDataKeyRequest,
  type KeyProvider,
  LocalKeyring,
  MAX_RECORD_ID_BYTES,
  decrypt,
  decryptObject,
  decryptObjects,
  decryptText,
  encrypt,
  encryptObject,
  encryptObjects,
  encryptText,
  inspect,
} from '../src/index.js';
import { expectCode, numRuns, utf8 } from './core-helpers.js';
import { sameValue } from './helpers.js';
import { specRecordBinding } from './spec-crypto.js';

const keyring = new LocalKeyring();
const { keyId } = keyring.createKey();

/** A provider that counts its calls and keeps every request. */
function counting(inner: KeyProvider = keyring) {
  const requests: { generate: GenerateDataKeyRequest[]; decrypt: DecryptRequest[] } = { generate: [], decrypt: [] };
  const provider: KeyProvider = {
    providerId: inner.providerId,
    generateDataKey: (r) => (requests.generate.push(r), inner.generateDataKey(r)),
    decrypt: (r) => (requests.decrypt.push(r), inner.decrypt(r)),
  };
  return { provider, requests, calls: () => requests.generate.length + requests.decrypt.length };
}

/** An AES-GCM backend that counts the bodies it opens. */
function openCounting(): AesGcm & { opened: number } {
  const b = {
    name: 'open-counting',
    opened: 0,
    seal: nobleAesGcm.seal,
    open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array) {
      b.opened++;
      return nobleAesGcm.open(key, nonce, aad, sealed, out);
    },
  };
  return b;
}

type Id = string | number | undefined;

/** Record ids and versions: absent, strings (numeric ones too, and non-ASCII), safe integers, -0. */
const idArb: fc.Arbitrary<Id> = fc.oneof(
  fc.constant(undefined),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }),
  fc.integer({ min: -1000, max: 1000 }).map(String),
  fc.integer({ min: -1000, max: 1000 }),
  fc.constantFrom(0, -0, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 'x'.repeat(MAX_RECORD_ID_BYTES), 'é'.repeat(MAX_RECORD_ID_BYTES / 2)),
);
const pairArb = fc.tuple(idArb, idArb);

/** The §9.10 text of a binding, as the independent reader writes it. */
const bindingText = ([id, version]: readonly [Id, Id]) => new TextDecoder().decode(specRecordBinding(id ?? null, version ?? null));

const options = (pair: readonly [Id, Id]) => ({
  ...(pair[0] === undefined ? {} : { recordId: pair[0] }),
  ...(pair[1] === undefined ? {} : { recordVersion: pair[1] }),
});

describe('the record binding of whole values (SPEC.md §9.10)', () => {
  it('the library writes the binding exactly as SPEC.md says: JSON.stringify([id ?? null, version ?? null]), -0 as 0 (property)', () => {
    fc.assert(
      fc.property(pairArb, ([id, version]) => {
        const lib = new TextDecoder().decode(recordBinding(checkRecordBinding(id, version)));
        expect(lib).toBe(bindingText([id, version]));
        expect(lib).toBe(JSON.stringify([id ?? null, version ?? null]));
      }),
      { numRuns: numRuns(1000) },
    );
    expect(bindingText([-0, undefined])).toBe('[0,null]');
    expect(bindingText([42, '42'])).toBe('[42,"42"]');
  });

  it('encrypt / decrypt: the same binding round-trips, any other fails at the commitment check (property)', async () => {
    await fc.assert(
      fc.asyncProperty(pairArb, pairArb, fc.uint8Array({ maxLength: 64 }), async (written, read, pt) => {
        const env = await encrypt(pt, { provider: keyring, keyId, ...options(written) });
        const back = await decrypt(env, { provider: keyring, ...options(written) });
        expect(Buffer.from(back.plaintext).equals(Buffer.from(pt))).toBe(true);
        const aead = openCounting();
        const attempt = decrypt(env, { provider: keyring, aead, ...options(read) });
        if (bindingText(read) === bindingText(written)) {
          expect(Buffer.from((await attempt).plaintext).equals(Buffer.from(pt))).toBe(true);
        } else {
          await expect(attempt).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED', message: 'decryption failed' });
          expect(aead.opened).toBe(0); // refused before the body is opened
        }
      }),
      { numRuns: numRuns(150) },
    );
  });

  it('encryptObject / decryptObject: the same binding round-trips, any other fails (property)', async () => {
    await fc.assert(
      fc.asyncProperty(pairArb, pairArb, async (written, read) => {
        const value = { row: bindingText(written), at: new Date(0), n: 1n };
        const text = await encryptObject(value, { provider: keyring, keyId, ...options(written) });
        expect(sameValue(await decryptObject(text, { provider: keyring, ...options(written) }), value)).toBe(true);
        const attempt = decryptObject(text, { provider: keyring, ...options(read) });
        if (bindingText(read) === bindingText(written)) expect(sameValue(await attempt, value)).toBe(true);
        else await expect(attempt).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
      }),
      { numRuns: numRuns(150) },
    );
  });

  it('every kind of change fails: another id, another version, a type change, absent vs present, in both directions', async () => {
    const cases: [readonly [Id, Id], readonly [Id, Id]][] = [
      [['u-42', undefined], ['u-43', undefined]],
      [['u-42', undefined], [undefined, undefined]],
      [[undefined, undefined], ['u-42', undefined]],
      [[42, undefined], ['42', undefined]],
      [['42', undefined], [42, undefined]],
      [[42, 7], [42, 6]],
      [[42, 7], [42, undefined]],
      [[42, undefined], [42, 7]],
      [[42, 7], [7, 42]],
      [[42, undefined], [undefined, 42]],
      [['a', 'b'], ['a,b', undefined]],
    ];
    for (const [written, read] of cases) {
      const env = await encryptText(utf8('row'), { provider: keyring, keyId, ...options(written) });
      await expectCode(() => decryptText(env, { provider: keyring, ...options(read) }), 'ERR_DECRYPTION_FAILED');
      expect((await decryptText(env, { provider: keyring, ...options(written) })).plaintext).toEqual(utf8('row'));
    }
    // -0 and 0 are the same record (SPEC.md §12.1).
    const env = await encrypt(utf8('row'), { provider: keyring, keyId, recordId: -0 });
    expect((await decrypt(env, { provider: keyring, recordId: 0 })).plaintext).toEqual(utf8('row'));
  });

  it('is neither stored in the envelope nor sent to the provider', async () => {
    const id = 'row-7f3a9c';
    const a = counting();
    const b = counting();
    const withId = await encrypt(utf8('same'), { provider: a.provider, keyId, encryptionContext: { table: 't' }, recordId: id, recordVersion: 99 });
    const without = await encrypt(utf8('same'), { provider: b.provider, keyId, encryptionContext: { table: 't' } });
    // The provider request is the same with and without the binding: a data-key cache keyed by it can serve every row.
    expect(a.requests.generate).toEqual(b.requests.generate);
    expect(withId.length).toBe(without.length);
    expect(Buffer.from(withId).includes(Buffer.from(id))).toBe(false);
    expect(inspect(withId).encryptionContext).toEqual({ table: 't' });
    expect(inspect(withId).headerLength).toBe(inspect(without).headerLength);
    const r = counting();
    await decrypt(withId, { provider: r.provider, recordId: id, recordVersion: 99 });
    expect(JSON.stringify(r.requests.decrypt[0]!.encryptionContext)).not.toContain(id);
  });

  it('rows that share one data key stay bound to their rows', async () => {
    // A provider that asks the keyring once and hands out that data key for every request: what a data-key cache does.
    let cached: Awaited<ReturnType<KeyProvider['generateDataKey']>> | undefined;
    let asked = 0;
    const shared: KeyProvider = {
      providerId: 'local',
      generateDataKey: async (r) => {
        cached ??= (asked++, await keyring.generateDataKey(r));
        return { keyId: cached.keyId, plaintext: cached.plaintext.slice(), ciphertextBlob: cached.ciphertextBlob.slice() };
      },
      decrypt: (r) => keyring.decrypt(r),
    };
    const rows = [1, 2, 3].map((id) => ({ id, secret: `secret of row ${id}` }));
    const stored: string[] = [];
    for (const row of rows) stored.push(await encryptObject(row.secret, { provider: shared, keyId, recordId: row.id }));
    expect(asked).toBe(1); // one data key under every row
    for (const [i, row] of rows.entries()) {
      expect(await decryptObject(stored[i]!, { provider: keyring, recordId: row.id })).toBe(row.secret);
      // Row 1's ciphertext copied into row 2 (same data key, same context) does not decrypt there.
      const other = rows[(i + 1) % rows.length]!;
      await expectCode(() => decryptObject(stored[i]!, { provider: keyring, recordId: other.id }), 'ERR_DECRYPTION_FAILED');
    }
  });

  it('the node and noble backends give the same bytes, and each opens the other\'s (property)', async () => {
    const ctx = checkContext({ tenant: 'acme' });
    const edk = { providerId: 'local', keyId: 'k', blob: Uint8Array.of(1, 2, 3) };
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(16, 32), fc.uint8Array({ minLength: 16, maxLength: 16 }), pairArb, fc.uint8Array({ maxLength: 100 }), async (n, mid, pair, pt) => {
        const dataKey = crypto.getRandomValues(new Uint8Array(n));
        const binding = recordBinding(checkRecordBinding(pair[0], pair[1]));
        const a = await sealWithDataKey(nobleAesGcm, dataKey, mid, ctx, [edk], pt, binding);
        const b = await sealWithDataKey(nodeAesGcm, dataKey, mid, ctx, [edk], pt, binding);
        expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
        const fixed: KeyProvider = { providerId: 'local', generateDataKey: () => Promise.reject(new Error('unused')), decrypt: async () => ({ keyId: 'k', plaintext: dataKey.slice() }) };
        for (const aead of [nobleAesGcm, nodeAesGcm]) {
          const r = await decrypt(a, { provider: fixed, aead, encryptionContext: { tenant: 'acme' }, ...options(pair) });
          expect(Buffer.from(r.plaintext).equals(Buffer.from(pt))).toBe(true);
        }
      }),
      { numRuns: numRuns(100) },
    );
  });
});

describe('batches take the binding as functions of the item and its index', () => {
  const rows = [
    { id: 'u-1', version: 1, value: { email: 'a@example.com' } },
    { id: 'u-2', version: 5, value: { email: 'b@example.com' } },
    { id: 'u-3', version: 2, value: [1, 2, 3] },
  ];

  it('encryptObjects / decryptObjects round-trip with per-row ids and versions; another row\'s id fails that row only', async () => {
    const values = rows.map((r) => r.value);
    const seen: [unknown, number][] = [];
    const enc = await encryptObjects(values, {
      provider: keyring,
      keyId,
      recordId: (v, i) => (seen.push([v, i]), rows[i]!.id),
      recordVersion: (_, i) => rows[i]!.version,
    });
    expect(seen).toEqual(values.map((v, i) => [v, i]));
    const texts = enc.map((r) => (r.ok ? r.value : expect.fail('encryption failed')));
    const back = await decryptObjects(texts, { provider: keyring, recordId: (_, i) => rows[i]!.id, recordVersion: (_, i) => rows[i]!.version });
    expect(back.map((r) => r.ok && r.value)).toEqual(values);
    // Rows 0 and 1 swapped: both fail, row 2 still opens.
    const swapped = [texts[1]!, texts[0]!, texts[2]!];
    const mixed = await decryptObjects(swapped, { provider: keyring, recordId: (_, i) => rows[i]!.id, recordVersion: (_, i) => rows[i]!.version });
    expect(mixed.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ERR_DECRYPTION_FAILED', 'ERR_DECRYPTION_FAILED', 'ok']);
    // Without the versions: every row fails.
    const noVersion = await decryptObjects(texts, { provider: keyring, recordId: (_, i) => rows[i]!.id });
    expect(noVersion.every((r) => !r.ok && r.error.code === 'ERR_DECRYPTION_FAILED')).toBe(true);
  });

  it('a bad id from the function, or a function that throws, fails its item only, before the provider is asked for it', async () => {
    const c = counting();
    const ids: unknown[] = ['ok-1', '', 1.5, '\ud800', 'ok-2'];
    const res = await encryptObjects(['a', 'b', 'c', 'd', 'e'], { provider: c.provider, keyId, recordId: (_, i) => ids[i] as string });
    expect(res.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'ERR_INVALID_PARAMETER', 'ERR_INVALID_PARAMETER', 'ERR_INVALID_PARAMETER', 'ok']);
    expect(c.requests.generate).toHaveLength(2);
    const thrown = await decryptObjects([(res[0] as { value: string }).value], {
      provider: c.provider,
      recordId: () => {
        throw new Error('lookup failed');
      },
    });
    expect(thrown[0]).toMatchObject({ ok: false, error: { code: 'ERR_INVALID_PARAMETER', message: 'the "recordId" function threw' } });
    expect(c.requests.decrypt).toHaveLength(0);
  });

  it('a recordId or recordVersion that is not a function fails the whole call, before any item', async () => {
    const c = counting();
    for (const bad of ['u-1', 42, null, {}]) {
      await expectCode(() => encryptObjects(['a'], { provider: c.provider, keyId, recordId: bad as never }), 'ERR_INVALID_PARAMETER');
      await expectCode(() => encryptObjects(['a'], { provider: c.provider, keyId, recordVersion: bad as never }), 'ERR_INVALID_PARAMETER');
      await expectCode(() => decryptObjects(['ek1.AAAA'], { provider: c.provider, recordId: bad as never }), 'ERR_INVALID_PARAMETER');
      await expectCode(() => decryptObjects(['ek1.AAAA'], { provider: c.provider, recordVersion: bad as never }), 'ERR_INVALID_PARAMETER');
    }
    expect(c.calls()).toBe(0);
  });
});

describe('hostile recordId and recordVersion are refused with ERR_INVALID_PARAMETER before the provider is called', () => {
  const BAD: [string, unknown][] = [
    ['the empty string', ''],
    ['1025 ASCII bytes', 'x'.repeat(MAX_RECORD_ID_BYTES + 1)],
    ['1026 bytes in 513 characters', 'é'.repeat(MAX_RECORD_ID_BYTES / 2 + 1)],
    ['1025 bytes in 257 characters (4-byte UTF-8)', '😀'.repeat(256) + 'x'],
    ['a lone high surrogate', '\ud800'],
    ['a lone low surrogate inside text', 'a\udc00b'],
    ['a fraction', 1.5],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['2^53', 2 ** 53],
    ['-(2^53)', -(2 ** 53)],
    ['null', null],
    ['a boolean', true],
    ['a bigint', 42n],
    ['an object', { toString: () => 'u-42' }],
    ['an array', ['u-42']],
    ['a boxed string', new String('u-42')],
    ['a function', () => 'u-42'],
    ['a symbol', Symbol('u-42')],
  ];
  const GOOD: unknown[] = ['x', 'x'.repeat(MAX_RECORD_ID_BYTES), 'é'.repeat(MAX_RECORD_ID_BYTES / 2), '😀'.repeat(256), 0, -0, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER];

  const calls = async (name: 'recordId' | 'recordVersion', value: unknown) => {
    const c = counting();
    const env = await encrypt(utf8('x'), { provider: keyring, keyId });
    const text = await encryptText(utf8('x'), { provider: keyring, keyId });
    const obj = await encryptObject('x', { provider: keyring, keyId });
    const o = { [name]: value } as Record<string, never>;
    return {
      c,
      runs: [
        () => encrypt(utf8('x'), { provider: c.provider, keyId, ...o }),
        () => encryptText(utf8('x'), { provider: c.provider, keyId, ...o }),
        () => encryptObject({ a: 1 }, { provider: c.provider, keyId, ...o }),
        () => decrypt(env, { provider: c.provider, ...o }),
        () => decryptText(text, { provider: c.provider, ...o }),
        () => decryptObject(obj, { provider: c.provider, ...o }),
      ],
    };
  };

  for (const name of ['recordId', 'recordVersion'] as const) {
    it.each(BAD)(`${name}: %s`, async (_what, value) => {
      const { c, runs } = await calls(name, value);
      for (const run of runs) {
        const e = await expectCode(run, 'ERR_INVALID_PARAMETER');
        expect(e.message).toContain(name);
      }
      expect(c.calls()).toBe(0);
    });

    it(`${name}: the limits themselves are accepted`, async () => {
      for (const value of GOOD) {
        const env = await encrypt(utf8('x'), { provider: keyring, keyId, [name]: value });
        expect((await decrypt(env, { provider: keyring, [name]: value })).plaintext).toEqual(utf8('x'));
      }
    });
  }

  it('a getter that throws, or a proxy, becomes ERR_INVALID_PARAMETER, never a foreign error', async () => {
    const c = counting();
    const throwing = Object.defineProperty({ provider: c.provider, keyId }, 'recordId', {
      enumerable: true,
      get() {
        throw new Error('getter exploded');
      },
    });
    await expectCode(() => encrypt(utf8('x'), throwing as never), 'ERR_INVALID_PARAMETER');
    await expectCode(() => encryptObject('x', throwing as never), 'ERR_INVALID_PARAMETER');
    const env = await encrypt(utf8('x'), { provider: keyring, keyId });
    const proxy = new Proxy(
      { provider: c.provider },
      {
        get(t, k) {
          if (k === 'recordVersion') throw new Error('trap');
          return Reflect.get(t, k);
        },
      },
    );
    await expectCode(() => decrypt(env, proxy as never), 'ERR_INVALID_PARAMETER');
    expect(c.calls()).toBe(0);
  });
});
