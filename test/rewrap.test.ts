/**
 * Several master keys per envelope (SPEC.md §3.6) and re-wrapping without touching the body
 * (SPEC.md §15): examples, every error code, each envelope kind, and the Alibaba emulator as one of
 * three recipients.
 */
import { describe, expect, it } from 'vitest';
import {
  type KeyProvider,
  LocalKeyring,
  createBlindIndexKey,
  decrypt,
  decryptFields,
  decryptObject,
  decryptText,
  encrypt,
  encryptFields,
  encryptObject,
  encryptText,
  inspect,
  openBlindIndex,
  rewrap,
  rewrapFields,
  rewrapHeader,
  rewrapObjects,
  rewrapRecords,
  withDataKeyCache,
} from '../src/index.js';
import { decryptStream, encryptStream } from '../src/stream/index.js';
import { envelopeFromText, parseHeader } from '../src/core/format.js';
import { collect, streamOf } from './stream-helpers.js';
import { emulator, providerFor } from './alibaba-helpers.js';

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** A keyring seen under another provider id, counting the calls it gets. */
function asProvider(kr: LocalKeyring, providerId: string) {
  const calls = { generateDataKey: 0, decrypt: 0, encrypt: 0, reEncrypt: 0 };
  const p: KeyProvider & { calls: typeof calls } = {
    providerId,
    calls,
    generateDataKey: (r) => (calls.generateDataKey++, kr.generateDataKey(r)),
    decrypt: (r) => (calls.decrypt++, kr.decrypt(r)),
    encrypt: (r) => (calls.encrypt++, kr.encrypt(r)),
    reEncrypt: (r) => (calls.reEncrypt++, kr.reEncrypt(r)),
    describeBlob: (b) => kr.describeBlob(b),
  };
  return p;
}

function setup() {
  const primary = new LocalKeyring();
  const k1 = primary.createKey().keyId;
  const k2 = primary.createKey().keyId;
  const backupRing = new LocalKeyring();
  const b1 = backupRing.createKey().keyId;
  const backup = asProvider(backupRing, 'backup');
  return { primary, k1, k2, backupRing, b1, backup };
}

/** The body of a binary envelope: everything after its header. */
function bodyOf(env: Uint8Array): Uint8Array {
  const { bodyOffset } = parseHeader(env, 255, [0, 1, 2], 'envelope');
  return env.subarray(bodyOffset);
}

describe('several recipients on encrypt', () => {
  it('wraps one data key under each recipient, in order; any one of them decrypts alone', async () => {
    const { primary, k1, backup, b1 } = setup();
    const env = await encrypt(utf8('hello'), { recipients: [{ provider: primary, keyId: k1 }, { provider: backup, keyId: b1 }], encryptionContext: { t: 'x' } });
    expect(inspect(env).encryptedDataKeys.map((e) => [e.providerId, e.keyId])).toEqual([
      ['local', k1],
      ['backup', b1],
    ]);
    expect(text((await decrypt(env, { provider: primary })).plaintext)).toBe('hello');
    const viaBackup = await decrypt(env, { provider: backup });
    expect(text(viaBackup.plaintext)).toBe('hello');
    expect(viaBackup.keyId).toBe(b1);
    expect(backup.calls.encrypt).toBe(1);
    expect(backup.calls.generateDataKey).toBe(0);
  });

  it('every encrypting call takes recipients: text, objects, fields, streams', async () => {
    const { primary, k1, backup, b1 } = setup();
    const recipients = [{ provider: primary, keyId: k1 }, { provider: backup, keyId: b1 }];
    const t = await encryptText(utf8('a'), { recipients });
    expect(text((await decryptText(t, { provider: backup })).plaintext)).toBe('a');
    const o = await encryptObject({ n: 1 }, { recipients });
    expect(await decryptObject(o, { provider: backup })).toEqual({ n: 1 });
    const r = await encryptFields({ id: 1, email: 'e@x' }, { recipients, fields: ['email'] });
    expect(await decryptFields(r, { provider: backup, fields: ['email'] })).toEqual({ id: 1, email: 'e@x' });
    const s = await collect(streamOf(utf8('streamed')).pipeThrough(encryptStream({ recipients })));
    expect(inspect(s).encryptedDataKeys).toHaveLength(2);
    expect(text(await collect(streamOf(s).pipeThrough(decryptStream({ provider: backup }))))).toBe('streamed');
  });

  it('refuses bad recipient lists before any provider call', async () => {
    const { primary, k1, backup, b1 } = setup();
    const noEncrypt: KeyProvider = { providerId: 'plain', generateDataKey: (r) => primary.generateDataKey(r), decrypt: (r) => primary.decrypt(r) };
    const cases: unknown[] = [
      { recipients: [] },
      { recipients: 'x' },
      { recipients: [{ provider: primary }] },
      { recipients: [{ provider: primary, keyId: k1 }, { provider: noEncrypt, keyId: k1 }] },
      { recipients: [{ provider: primary, keyId: k1 }, { provider: primary, keyId: k1 }] },
      { recipients: Array.from({ length: 9 }, (_, i) => ({ provider: backup, keyId: `${b1}${i}` })) },
      { provider: primary, keyId: k1, recipients: [{ provider: backup, keyId: b1 }] },
      { recipients: [null] },
    ];
    for (const options of cases) {
      await expect(encrypt(utf8('x'), options as never), JSON.stringify(options, (_k, v) => (v instanceof LocalKeyring ? 'keyring' : v))).rejects.toMatchObject({
        code: 'ERR_INVALID_PARAMETER',
      });
    }
    expect(backup.calls.encrypt + backup.calls.generateDataKey).toBe(0);
    // A provider without encrypt can be the first recipient.
    await expect(encrypt(utf8('x'), { recipients: [{ provider: noEncrypt, keyId: k1 }, { provider: backup, keyId: b1 }] })).resolves.toBeInstanceOf(Uint8Array);
  });

  it('fails the whole encryption when any recipient fails: never fewer recipients than asked', async () => {
    const { primary, k1, backup } = setup();
    await expect(encrypt(utf8('x'), { recipients: [{ provider: primary, keyId: k1 }, { provider: backup, keyId: 'missing' }] })).rejects.toMatchObject({ code: 'ERR_KEY_NOT_FOUND' });
    const broken: KeyProvider = { ...asProvider(primary, 'broken'), encrypt: async () => ({ keyId: k1, ciphertextBlob: new Uint8Array(0) }) };
    await expect(encrypt(utf8('x'), { recipients: [{ provider: primary, keyId: k1 }, { provider: broken, keyId: k1 }] })).rejects.toMatchObject({ code: 'ERR_PROVIDER' });
    const thrower: KeyProvider = { ...asProvider(primary, 'thrower'), encrypt: async () => Promise.reject(new TypeError('boom')) };
    await expect(encrypt(utf8('x'), { recipients: [{ provider: primary, keyId: k1 }, { provider: thrower, keyId: k1 }] })).rejects.toMatchObject({ code: 'ERR_PROVIDER' });
  });

  it('gives the second recipient a copy of the data key, wiped afterwards', async () => {
    const { primary, k1, backupRing, b1 } = setup();
    let seen: Uint8Array | undefined;
    const spy: KeyProvider = {
      ...asProvider(backupRing, 'spy'),
      encrypt: async (r) => {
        seen = r.plaintext;
        return backupRing.encrypt({ ...r, plaintext: r.plaintext.slice() });
      },
    };
    await encrypt(utf8('x'), { recipients: [{ provider: primary, keyId: k1 }, { provider: spy, keyId: b1 }] });
    expect(seen).toHaveLength(32);
    expect(seen!.every((b) => b === 0)).toBe(true);
  });

  it('a cached provider can be a recipient; its encrypt passes through', async () => {
    const { primary, k1, backup, b1 } = setup();
    const cached = withDataKeyCache(primary, { maxAge: 60_000 });
    const env = await encrypt(utf8('x'), { recipients: [{ provider: cached, keyId: k1 }, { provider: withDataKeyCache(backup, { maxAge: 60_000 }), keyId: b1 }] });
    expect(text((await decrypt(env, { provider: backup })).plaintext)).toBe('x');
  });
});

describe('three recipients: local, the Alibaba emulator, a second local keyring', () => {
  it('decrypts with any one alone; with the KMS unreachable, the local recipient answers without waiting for its retries', async () => {
    const { kms, keyId: aliKey } = await emulator();
    const alibaba = providerFor(kms);
    const { primary, k1, backup, b1 } = setup();
    const env = await encrypt(utf8('three ways'), {
      recipients: [{ provider: alibaba, keyId: aliKey }, { provider: primary, keyId: k1 }, { provider: backup, keyId: b1 }],
    });
    expect(inspect(env).encryptedDataKeys.map((e) => e.providerId)).toEqual(['alibaba-kms', 'local', 'backup']);
    for (const provider of [alibaba, primary, backup] as KeyProvider[]) expect(text((await decrypt(env, { provider })).plaintext)).toBe('three ways');
    // The KMS goes down; a reader that lists the local keyring first never calls it.
    const slow = providerFor(kms, { retryBaseDelayMs: 400, retryMaxDelayMs: 400, maxAttempts: 3 });
    kms.faults.dropConnection({ times: Infinity });
    const before = kms.requests.length;
    const t0 = performance.now();
    expect(text((await decrypt(env, { providers: [primary, slow] })).plaintext)).toBe('three ways');
    const elapsed = performance.now() - t0;
    expect(kms.requests.length).toBe(before);
    expect(elapsed).toBeLessThan(300);
    // Listed after it, the KMS's failure does not hide the local success either.
    expect(text((await decrypt(env, { providers: [alibaba, backup] })).plaintext)).toBe('three ways');
  });
});

describe('rewrap', () => {
  it('replaces a key in place through reEncrypt: the data key never reaches the caller; the body is the same bytes', async () => {
    const { backupRing, b1, backup } = setup();
    const b2 = backupRing.createKey().keyId;
    const env = await encrypt(new Uint8Array(100_000).fill(7), { provider: backup, keyId: b1 });
    backup.calls.decrypt = 0;
    const moved = await rewrap(env, { provider: backup, replace: [{ from: { keyId: b1 }, to: { provider: backup, keyId: b2 } }] });
    expect(backup.calls.reEncrypt).toBe(1);
    expect(backup.calls.decrypt).toBe(0);
    expect(Buffer.from(bodyOf(moved)).equals(Buffer.from(bodyOf(env)))).toBe(true);
    expect(inspect(moved).encryptedDataKeys.map((e) => e.keyId)).toEqual([b2]);
    expect((await decrypt(moved, { provider: backup, keyIds: [b2] })).plaintext.every((b) => b === 7)).toBe(true);
    // The old key no longer opens it.
    backupRing.disableKey(b2);
    await expect(decrypt(moved, { provider: backup })).rejects.toMatchObject({ code: 'ERR_KEY_DISABLED' });
  });

  it('adds a recipient (unwrapping once, checking the commitment) and removes one; removed recipients can no longer decrypt', async () => {
    const { primary, k1, backup, b1 } = setup();
    const env = await encrypt(utf8('rotate me'), { provider: primary, keyId: k1, recordId: 'row-1' });
    // The commitment depends on the record binding: without it, no data key is handed to anyone.
    await expect(rewrap(env, { provider: primary, add: [{ provider: backup, keyId: b1 }] })).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
    expect(backup.calls.encrypt).toBe(0);
    const both = await rewrap(env, { provider: primary, recordId: 'row-1', add: [{ provider: backup, keyId: b1 }] });
    expect(text((await decrypt(both, { provider: backup, recordId: 'row-1' })).plaintext)).toBe('rotate me');
    const onlyBackup = await rewrap(both, { provider: primary, remove: [{ providerId: 'local' }] });
    await expect(decrypt(onlyBackup, { provider: primary, recordId: 'row-1' })).rejects.toMatchObject({ code: 'ERR_NO_MATCHING_PROVIDER' });
    expect(text((await decrypt(onlyBackup, { provider: backup, recordId: 'row-1' })).plaintext)).toBe('rotate me');
    expect(Buffer.from(bodyOf(onlyBackup)).equals(Buffer.from(bodyOf(env)))).toBe(true);
  });

  it('replaces across providers by unwrapping and wrapping again', async () => {
    const { primary, k1, backup, b1 } = setup();
    const env = await encrypt(utf8('move'), { provider: primary, keyId: k1 });
    const moved = await rewrap(env, { provider: primary, replace: [{ from: { providerId: 'local' }, to: { provider: backup, keyId: b1 } }] });
    expect(inspect(moved).encryptedDataKeys.map((e) => e.providerId)).toEqual(['backup']);
    expect(text((await decrypt(moved, { provider: backup })).plaintext)).toBe('move');
  });

  it('is idempotent: an added recipient already listed, a rule that selects nothing, change nothing', async () => {
    const { primary, k1, k2 } = setup();
    const env = await encrypt(utf8('x'), { recipients: [{ provider: primary, keyId: k1 }, { provider: primary, keyId: k2 }] });
    const same = await rewrap(env, { provider: primary, add: [{ provider: primary, keyId: k2 }], remove: [{ keyId: 'not-there' }] });
    expect(Buffer.from(same).equals(Buffer.from(env))).toBe(true);
    expect(same).not.toBe(env);
    const t = await encryptText(utf8('x'), { provider: primary, keyId: k1 });
    expect(await rewrap(t, { provider: primary, remove: [{ keyId: 'nope' }] })).toBe(t);
  });

  it('works on text envelopes, framed envelopes, blind-index keys, self-contained and compact records', async () => {
    const { primary, k1, backup, b1 } = setup();
    const add = [{ provider: backup, keyId: b1 }];
    const t = await encryptText(utf8('text'), { provider: primary, keyId: k1 });
    const t2 = await rewrap(t, { provider: primary, add });
    expect(t2.startsWith('ek1.')).toBe(true);
    expect(text((await decryptText(t2, { provider: backup })).plaintext)).toBe('text');

    const framed = await collect(streamOf(new Uint8Array(200_000).fill(3)).pipeThrough(encryptStream({ provider: primary, keyId: k1, segmentSize: 4096, recordId: 9 })));
    const framed2 = await rewrap(framed, { provider: primary, recordId: 9, add });
    expect(Buffer.from(bodyOf(framed2)).equals(Buffer.from(bodyOf(framed)))).toBe(true);
    const out = await collect(streamOf(framed2).pipeThrough(decryptStream({ provider: backup, recordId: 9 })));
    expect(out.length).toBe(200_000);

    const indexKey = await createBlindIndexKey({ provider: primary, keyId: k1, name: 'users.email' });
    const indexKey2 = await rewrap(indexKey, { provider: primary, replace: [{ from: { keyId: k1 }, to: { provider: backup, keyId: b1 } }] });
    const a = await openBlindIndex(indexKey, { provider: primary, name: 'users.email' });
    const b = await openBlindIndex(indexKey2, { provider: backup, name: 'users.email' });
    expect(a.compute('x@y')).toBe(b.compute('x@y'));

    const rec = await encryptFields({ id: 1, email: 'e@x', phone: '1' }, { provider: primary, keyId: k1, fields: ['email', 'phone'], recordId: 1 });
    const rec2 = await rewrapFields(rec, { provider: primary, fields: ['email', 'phone'], replace: [{ from: { keyId: k1 }, to: { provider: backup, keyId: b1 } }] });
    expect(await decryptFields(rec2, { provider: backup, fields: ['email', 'phone'], recordId: 1 })).toEqual({ id: 1, email: 'e@x', phone: '1' });
    // The fields still share one header.
    const headers = ['email', 'phone'].map((f) => parseHeader(envelopeFromText(rec2[f as 'email']), 8, [1]).header.bytes);
    expect(Buffer.from(headers[0]!).equals(Buffer.from(headers[1]!))).toBe(true);

    const compact = await encryptFields({ id: 2, email: 'c@x' }, { provider: primary, keyId: k1, fields: ['email'], headerField: '_ek' });
    const compact2 = await rewrapFields(compact, { provider: primary, headerField: '_ek', add });
    expect(compact2.email).toBe(compact.email);
    expect(compact2._ek).not.toBe(compact._ek);
    expect(await decryptFields(compact2, { provider: backup, fields: ['email'], headerField: '_ek' })).toMatchObject({ id: 2, email: 'c@x' });
  });

  it('rewrapHeader reads only the header of a large source', async () => {
    const { primary, k1, backup, b1 } = setup();
    const framed = await collect(streamOf(new Uint8Array(1 << 20)).pipeThrough(encryptStream({ provider: primary, keyId: k1 })));
    const reads: [number, number][] = [];
    const source = { size: framed.length, read: async (o: number, n: number) => (reads.push([o, n]), framed.slice(o, o + n)) };
    const { header, bodyOffset, changed, layout } = await rewrapHeader(source, { provider: primary, add: [{ provider: backup, keyId: b1 }] });
    expect(changed).toBe(true);
    expect(layout).toBe('framed');
    expect(reads.reduce((s, [, n]) => s + n, 0)).toBeLessThanOrEqual(4096);
    const whole = new Uint8Array(header.length + framed.length - bodyOffset);
    whole.set(header);
    whole.set(framed.subarray(bodyOffset), header.length);
    expect((await decrypt(whole, { provider: backup })).plaintext.length).toBe(1 << 20);
    // A Blob source too.
    const viaBlob = await rewrapHeader(new Blob([framed.slice().buffer as ArrayBuffer]), { provider: primary, remove: [{ keyId: 'none' }] });
    expect(viaBlob.changed).toBe(false);
  });

  it('refuses bad rules and results with ERR_INVALID_PARAMETER, before any provider call', async () => {
    const { primary, k1, backup, b1 } = setup();
    const env = await encrypt(utf8('x'), { provider: primary, keyId: k1 });
    const bad: unknown[] = [
      { provider: primary },
      { provider: primary, remove: [{}] },
      { provider: primary, remove: 'x' },
      { provider: primary, replace: [{ from: { keyId: k1 } }] },
      { provider: primary, replace: [{ from: 42, to: { provider: backup, keyId: b1 } }] },
      { provider: primary, add: [{ provider: { providerId: 'x', generateDataKey() {}, decrypt() {} }, keyId: 'k' }] },
      { add: [{ provider: backup, keyId: b1 }] },
      { provider: primary, remove: [{ keyVersion: '' }] },
    ];
    for (const o of bad) await expect(rewrap(env, o as never)).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    // Results no reader would open: no data key left, or more than the readers' limit.
    await expect(rewrap(env, { provider: primary, remove: [{ providerId: 'local' }] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    const ring = new LocalKeyring();
    const keys = Array.from({ length: 8 }, () => ring.createKey().keyId);
    await expect(rewrap(env, { providers: [primary], add: keys.map((keyId) => ({ provider: ring, keyId })) })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(rewrap(env, { providers: [primary], maxEncryptedDataKeys: 9, add: keys.map((keyId) => ({ provider: ring, keyId })) })).resolves.toBeInstanceOf(Uint8Array);
    // A selector function that throws or answers something else.
    await expect(rewrap(env, { provider: primary, remove: [() => { throw new Error('x'); }] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(rewrap(env, { provider: primary, remove: [(() => 'yes') as never] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    expect(backup.calls.encrypt).toBe(0);
  });

  it('refuses what is not an envelope with the format errors, and a wrong context or allow-list like decrypt', async () => {
    const { primary, k1, backup, b1 } = setup();
    const add = [{ provider: backup, keyId: b1 }];
    await expect(rewrap(new Uint8Array([1, 2, 3]), { provider: primary, add })).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    await expect(rewrap('ek2.AAAA', { provider: primary, add })).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_VERSION' });
    await expect(rewrap('hello', { provider: primary, add })).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    await expect(rewrap(42 as never, { provider: primary, add })).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    const env = await encrypt(utf8('x'), { provider: primary, keyId: k1, encryptionContext: { t: 'a' } });
    await expect(rewrap(env, { provider: primary, add, encryptionContext: { t: 'b' } })).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
    await expect(rewrap(env, { provider: primary, add, keyIds: ['other'] })).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
    await expect(rewrap(env, { provider: backup, add })).rejects.toMatchObject({ code: 'ERR_NO_MATCHING_PROVIDER' });
    expect(backup.calls.encrypt).toBe(0);
  });

  it('an edited data-key list can make decryption fail, never succeed with another data key', async () => {
    const { primary, k1 } = setup();
    const env = await encrypt(utf8('genuine'), { provider: primary, keyId: k1 });
    const { header, bodyOffset } = parseHeader(env, 8, [0]);
    // A valid blob of the same master key and provider context, holding another data key.
    const other = await primary.encrypt({
      keyId: k1,
      plaintext: new Uint8Array(32).fill(9),
      encryptionContext: { 'ek:purpose': 'envelope-kit/v1/data-key' },
    });
    const { encodeHeader } = await import('../src/core/format.js');
    const forged = encodeHeader({
      messageId: header.messageId,
      context: header.context,
      commitment: header.commitment,
      encryptedDataKeys: [{ providerId: 'local', keyId: k1, blob: other.ciphertextBlob }, ...header.encryptedDataKeys],
    });
    const env2 = new Uint8Array([...forged, ...env.subarray(bodyOffset)]);
    await expect(decrypt(env2, { provider: primary })).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
    // A re-wrapper refuses to spread it: the commitment check comes before any wrap.
    await expect(rewrap(env2, { provider: primary, add: [{ provider: primary, keyId: primary.createKey().keyId }] })).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
    // Put after the genuine one, it is never reached: the genuine data key decrypts.
    const after = encodeHeader({
      messageId: header.messageId,
      context: header.context,
      commitment: header.commitment,
      encryptedDataKeys: [...header.encryptedDataKeys, { providerId: 'local', keyId: k1, blob: other.ciphertextBlob }],
    });
    expect(text((await decrypt(new Uint8Array([...after, ...env.subarray(bodyOffset)]), { provider: primary })).plaintext)).toBe('genuine');
  });
});

describe('rotating master keys for stored data', () => {
  it('inspect shows each data key\'s key version; rewrapRecords moves records to the newest version, in order, with per-item results', async () => {
    const { primary, k1 } = setup();
    const records = await Promise.all(
      Array.from({ length: 12 }, (_, i) => encryptFields({ id: i, ssn: `ssn-${i}` }, { provider: primary, keyId: k1, fields: ['ssn'], recordId: i })),
    );
    const versionOf = (r: { ssn: string }) => inspect(r.ssn, { providers: [primary] }).encryptedDataKeys[0]!.keyVersion;
    expect(records.map(versionOf)).toEqual(Array(12).fill('1'));
    const current = String(primary.rotateKey(k1));
    const broken = { id: 99, ssn: 'not an envelope' };
    const results = await rewrapRecords([...records.slice(0, 6), broken, ...records.slice(6)], {
      provider: primary,
      fields: ['ssn'],
      concurrency: 3,
      replace: [{ from: (k) => k.keyId === k1 && k.keyVersion !== current, to: { provider: primary, keyId: k1 } }],
    });
    expect(results).toHaveLength(13);
    // A value that is not an encrypted field fails its own item (re-wrapping never encrypts plaintext).
    expect(results[6]).toMatchObject({ ok: false, error: { code: 'ERR_MALFORMED_ENVELOPE' } });
    const moved = results.filter((r) => r.ok).map((r) => (r as { value: { id: number; ssn: string } }).value);
    expect(moved.map((r) => r.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(moved.map(versionOf)).toEqual(Array(12).fill(current));
    for (const r of moved) expect((await decryptFields(r, { provider: primary, fields: ['ssn'], recordId: r.id })).ssn).toBe(`ssn-${r.id}`);
    // A second run finds nothing to do.
    const again = await rewrapRecords(moved, { provider: primary, fields: ['ssn'], replace: [{ from: (k) => k.keyVersion !== current, to: { provider: primary, keyId: k1 } }] });
    expect(again.map((r) => r.ok && r.value)).toEqual(moved);
  });

  it('rewrapObjects re-wraps text envelopes in batches, with per-envelope record ids', async () => {
    const { primary, k1, backup, b1 } = setup();
    const rows = await Promise.all(Array.from({ length: 10 }, (_, i) => encryptObject({ i }, { provider: primary, keyId: k1, recordId: `r${i}` })));
    const results = await rewrapObjects([...rows, 'garbage'], { provider: primary, recordId: (_e, i) => `r${i}`, concurrency: 4, add: [{ provider: backup, keyId: b1 }] });
    expect(results[10]).toMatchObject({ ok: false, error: { code: 'ERR_MALFORMED_ENVELOPE' } });
    for (let i = 0; i < 10; i++) {
      const r = results[i]!;
      expect(r.ok).toBe(true);
      expect(await decryptObject((r as { value: string }).value, { provider: backup, recordId: `r${i}` })).toEqual({ i });
    }
    await expect(rewrapObjects(rows, { provider: primary, add: [{ provider: backup, keyId: b1 }], recordId: 'x' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
  });
});

describe('several recipients behind a data-key cache', () => {
  it('wraps a reused data key once per other recipient, not once per envelope', async () => {
    const { primary, k1, backup, b1 } = setup();
    const cached = withDataKeyCache(primary, { maxAge: 60_000, maxMessages: 100 });
    const recipients = [{ provider: cached, keyId: k1 }, { provider: backup, keyId: b1 }];
    const envs = [];
    for (let i = 0; i < 50; i++) envs.push(await encrypt(utf8(`row ${i}`), { recipients, recordId: i }));
    expect(backup.calls.encrypt).toBe(1);
    for (let i = 0; i < 50; i++) expect(text((await decrypt(envs[i]!, { provider: backup, recordId: i })).plaintext)).toBe(`row ${i}`);
    // A new data key (another context) is wrapped again.
    await encrypt(utf8('x'), { recipients, encryptionContext: { t: 'other' } });
    expect(backup.calls.encrypt).toBe(2);
    // Without a cache, every envelope's own data key is wrapped.
    await encrypt(utf8('x'), { recipients: [{ provider: primary, keyId: k1 }, { provider: backup, keyId: b1 }] });
    await encrypt(utf8('x'), { recipients: [{ provider: primary, keyId: k1 }, { provider: backup, keyId: b1 }] });
    expect(backup.calls.encrypt).toBe(4);
  });
});

describe('inspectFile with providers', () => {
  it('reports each data key\'s key version read from the blob, and nothing without a provider that can read it', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { inspectFile } = await import('../src/stream/node.js');
    const { primary, k1, backup, b1 } = setup();
    primary.rotateKey(k1);
    const env = await encrypt(utf8('file'), { recipients: [{ provider: primary, keyId: k1 }, { provider: backup, keyId: b1 }] });
    const dir = await mkdtemp(path.join(tmpdir(), 'ek-inspect-'));
    try {
      const file = path.join(dir, 'x.ek');
      await writeFile(file, env);
      expect((await inspectFile(file, { providers: [primary] })).encryptedDataKeys.map((e) => e.keyVersion)).toEqual(['2', undefined]);
      expect((await inspectFile(file, { providers: [primary, backup] })).encryptedDataKeys.map((e) => e.keyVersion)).toEqual(['2', '1']);
      expect((await inspectFile(file)).encryptedDataKeys.every((e) => e.keyVersion === undefined)).toBe(true);
      await expect(inspectFile(file, { providers: 'x' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
