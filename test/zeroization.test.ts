/**
 * Zeroization: the plaintext data key a provider hands out, and every key
 * derived from it, is all zeros once encrypt or decrypt returns, on success
 * and on every failure path. A recording provider keeps a reference to the
 * key it returned; a recording AES-GCM backend keeps the content keys.
 *
 * The same for plaintext copies in the records API: the value encoder and
 * decoder and the HMAC are wrapped (vi.mock) to keep every buffer they
 * return or are given, and the recording AES-GCM backend keeps every
 * plaintext it seals and every buffer it opens into.
 */
import { describe, expect, it, vi } from 'vitest';
import { nobleAesGcm } from '../src/core/aead/noble.js';
import { nobleHmacSha512 } from '../src/core/kdf.js';
import type { AesGcm } from '../src/core/aead/types.js';
import {
  type KeyProvider,
  LocalKeyring,
  decrypt,
  decryptObject,
  encrypt,
  encryptObject,
  encryptText,
  inspect,
} from '../src/index.js';
import * as nodeEntry from '../src/index.js';
import { RecordingProvider, allZero, expectCode, utf8 } from './core-helpers.js';

/**
 * Every buffer the value encoding and the decoder produced, and every blind-index
 * HMAC input (told apart by its label when it is given) @noble/hashes' HMAC was given.
 */
const seen = vi.hoisted(() => ({
  encoded: [] as Uint8Array[],
  decoded: [] as unknown[],
  blindInputs: [] as Uint8Array[],
  blindLabel: new TextEncoder().encode('envelope-kit/v1/blind-index'),
}));

vi.mock('../src/records/value-encoding.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../src/records/value-encoding.js')>();
  return {
    ...m,
    encodeValue: (...args: Parameters<typeof m.encodeValue>) => {
      const out = m.encodeValue(...args);
      seen.encoded.push(out);
      return out;
    },
    decodeValue: (...args: Parameters<typeof m.decodeValue>) => {
      const out = m.decodeValue(...args);
      seen.decoded.push(out);
      return out;
    },
  };
});

vi.mock('@noble/hashes/hmac.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('@noble/hashes/hmac.js')>();
  const hmac = Object.assign(
    (hash: Parameters<typeof m.hmac>[0], key: Uint8Array, message: Uint8Array) => {
      if (message.length > seen.blindLabel.length && seen.blindLabel.every((x, i) => message[i] === x)) seen.blindInputs.push(message);
      return m.hmac(hash, key, message);
    },
    { create: m.hmac.create },
  );
  return { ...m, hmac };
});

/** An AES-GCM backend that keeps a reference to every key it is given. */
function recordingAead(inner: AesGcm = nobleAesGcm): AesGcm & { keys: Uint8Array[] } {
  const keys: Uint8Array[] = [];
  return {
    name: 'recording',
    keys,
    seal(key, nonce, aad, pt, out) {
      keys.push(key);
      inner.seal(key, nonce, aad, pt, out);
    },
    open(key, nonce, aad, sealed, out) {
      keys.push(key);
      return inner.open(key, nonce, aad, sealed, out);
    },
  };
}

function setup(options: { ignoreContext?: boolean } = {}) {
  const keyring = new LocalKeyring();
  const { keyId } = keyring.createKey();
  const provider = new RecordingProvider(keyring, options);
  return { keyring, keyId, provider };
}

function expectWiped(provider: RecordingProvider, count: number): void {
  expect(provider.handedOut).toHaveLength(count);
  for (const [i, k] of provider.handedOut.entries()) {
    expect(allZero(provider.copies[i]!), 'the copy shows the key was real').toBe(false);
    expect(allZero(k), `data key #${i} was not wiped`).toBe(true);
  }
}

/** Offset of the commitment and of the first context value in an envelope. */
function offsets(env: Uint8Array): { commitment: number; body: number } {
  const { headerLength } = inspect(env);
  return { commitment: headerLength - 32, body: headerLength };
}

describe('the data key is wiped', () => {
  it('after encrypt, and the content key handed to AES-GCM too', async () => {
    const { keyId, provider } = setup();
    const aead = recordingAead();
    const env = await encrypt(utf8('secret'), { provider, keyId, aead });
    expect(env.length).toBeGreaterThan(0);
    expectWiped(provider, 1);
    expect(aead.keys).toHaveLength(1);
    expect(allZero(aead.keys[0]!)).toBe(true);
  });

  it('after a successful decrypt, and the content key too', async () => {
    const { keyId, provider } = setup();
    const env = await encrypt(utf8('secret'), { provider, keyId });
    const aead = recordingAead();
    const { plaintext } = await decrypt(env, { provider, aead });
    expect(new TextDecoder().decode(plaintext)).toBe('secret');
    expectWiped(provider, 2);
    expect(aead.keys).toHaveLength(1);
    expect(allZero(aead.keys[0]!)).toBe(true);
  });

  it('on the Node entry (node:crypto backend) as well', async () => {
    const keyring = new nodeEntry.LocalKeyring();
    const { keyId } = keyring.createKey();
    const provider = new RecordingProvider(keyring);
    const env = await nodeEntry.encrypt(utf8('secret'), { provider, keyId });
    await nodeEntry.decrypt(env, { provider });
    expectWiped(provider, 2);
  });

  it('when the body was tampered with', async () => {
    const { keyId, provider } = setup();
    const env = await encrypt(utf8('secret'), { provider, keyId });
    const aead = recordingAead();
    const t = env.slice();
    t[offsets(env).body]! ^= 1;
    await expectCode(() => decrypt(t, { provider, aead }), 'ERR_DECRYPTION_FAILED');
    expectWiped(provider, 2);
    expect(allZero(aead.keys[0]!)).toBe(true);
  });

  it('when the commitment does not match', async () => {
    const { keyId, provider } = setup();
    const env = await encrypt(utf8('secret'), { provider, keyId });
    const aead = recordingAead();
    const t = env.slice();
    t[offsets(env).commitment]! ^= 0x80;
    await expectCode(() => decrypt(t, { provider, aead }), 'ERR_DECRYPTION_FAILED');
    expectWiped(provider, 2);
    expect(aead.keys).toHaveLength(0); // the body is never opened under an uncommitted key
  });

  it('every key the HMAC is given or derives, with a record binding: on success, and when the record id is wrong', async () => {
    const { keyId, provider } = setup();
    const writer = plaintextRecordingAead();
    const env = await encrypt(utf8('secret'), { provider, keyId, aead: writer, recordId: 'row-1', recordVersion: 3 });
    expectAllZero(writer.macSecrets, 'key given to or derived by the HMAC (encrypt)', 2);
    const reader = plaintextRecordingAead();
    await decrypt(env, { provider, aead: reader, recordId: 'row-1', recordVersion: 3 });
    expectAllZero(reader.macSecrets, 'key given to or derived by the HMAC (decrypt)', 2);
    const wrong = plaintextRecordingAead();
    await expectCode(() => decrypt(env, { provider, aead: wrong, recordId: 'row-2', recordVersion: 3 }), 'ERR_DECRYPTION_FAILED');
    expectAllZero(wrong.macSecrets, 'key given to or derived by the HMAC (wrong record id)', 2);
    expect(wrong.keys).toHaveLength(0); // the commitment check fails before the body is opened
    expectWiped(provider, 3);
  });

  it('when the context in the header was changed (provider that does not bind the context)', async () => {
    const { keyId, provider } = setup({ ignoreContext: true });
    const env = await encrypt(utf8('secret'), { provider, keyId, encryptionContext: { role: 'user' } });
    // the context value "user" sits right after its length byte; make it "usex"
    const i = env.indexOf(0x72, 21 + 1 + 1 + 4 + 1 + 3); // the "r" of "user"
    expect(String.fromCharCode(env[i]!)).toBe('r');
    const t = env.slice();
    t[i] = 0x78;
    expect(inspect(t).encryptionContext).toEqual({ role: 'usex' });
    await expectCode(() => decrypt(t, { provider }), 'ERR_DECRYPTION_FAILED');
    expectWiped(provider, 2);
  });

  it('when the caller requires a context the envelope lacks: no key is even unwrapped', async () => {
    const { keyId, provider } = setup();
    const env = await encrypt(utf8('secret'), { provider, keyId, encryptionContext: { role: 'user' } });
    await expectCode(() => decrypt(env, { provider, encryptionContext: { role: 'admin' } }), 'ERR_DECRYPTION_FAILED');
    expectWiped(provider, 1);
  });

  it('when the provider decrypts under the wrong context (the key never leaves the provider)', async () => {
    const { keyring, keyId, provider } = setup();
    const env = await encrypt(utf8('secret'), { provider, keyId, encryptionContext: { role: 'user' } });
    const i = env.indexOf(0x72, 21 + 1 + 1 + 4 + 1 + 3);
    const t = env.slice();
    t[i] = 0x78;
    await expectCode(() => decrypt(t, { provider: keyring }), 'ERR_DECRYPTION_FAILED');
    expectWiped(provider, 1);
  });

  it('when the provider returns a data key of the wrong length (encrypt and decrypt)', async () => {
    const { keyring, keyId } = setup();
    const handed: Uint8Array[] = [];
    const sloppy: KeyProvider = {
      providerId: 'local',
      async generateDataKey(req) {
        const dk = await keyring.generateDataKey({ ...req, numberOfBytes: 24 });
        handed.push(dk.plaintext);
        return dk;
      },
      async decrypt(req) {
        const dk = await keyring.decrypt(req);
        const longer = new Uint8Array(33).fill(7);
        longer.set(dk.plaintext);
        handed.push(longer);
        return { keyId: dk.keyId, plaintext: longer };
      },
    };
    await expectCode(() => encrypt(utf8('x'), { provider: sloppy, keyId }), 'ERR_PROVIDER');
    const env = await encrypt(utf8('x'), { provider: keyring, keyId });
    // A wrong-length answer is not a data key of this envelope: a decryption failure (SPEC.md §3.5 step 3).
    await expectCode(() => decrypt(env, { provider: sloppy }), 'ERR_DECRYPTION_FAILED');
    expect(handed).toHaveLength(2);
    for (const k of handed) expect(allZero(k)).toBe(true);
  });

  it('when the provider returns a bad blob or key id', async () => {
    const { keyring, keyId } = setup();
    const handed: Uint8Array[] = [];
    for (const spoil of [{ ciphertextBlob: new Uint8Array(0) }, { ciphertextBlob: 'blob' }, { keyId: '' }, { keyId: 7 }, { keyId: 'k'.repeat(3000) }]) {
      const bad: KeyProvider = {
        providerId: 'local',
        async generateDataKey(req) {
          const dk = await keyring.generateDataKey(req);
          handed.push(dk.plaintext);
          return { ...dk, ...spoil } as never;
        },
        decrypt: (req) => keyring.decrypt(req),
      };
      await expectCode(() => encrypt(utf8('x'), { provider: bad, keyId }), 'ERR_PROVIDER');
    }
    expect(handed).toHaveLength(5);
    for (const k of handed) expect(allZero(k)).toBe(true);
  });

  it('when the AES-GCM backend throws during encrypt', async () => {
    const { keyId, provider } = setup();
    const keys: Uint8Array[] = [];
    const broken: AesGcm = {
      name: 'broken',
      seal(key) {
        keys.push(key);
        throw new Error('backend exploded');
      },
      open: () => false,
    };
    await expect(encrypt(utf8('x'), { provider, keyId, aead: broken })).rejects.toThrow();
    expectWiped(provider, 1);
    expect(keys).toHaveLength(1);
    expect(allZero(keys[0]!)).toBe(true);
  });

  it('when the first of two data keys comes back wrong and the second works', async () => {
    const { keyring, keyId } = setup();
    const env = await encrypt(utf8('x'), { provider: keyring, keyId });
    const bogus: Uint8Array[] = [];
    const liar: KeyProvider = {
      providerId: 'local',
      generateDataKey: (r) => keyring.generateDataKey(r),
      async decrypt() {
        const k = new Uint8Array(5).fill(9);
        bogus.push(k);
        return { keyId, plaintext: k };
      },
    };
    const honest = new RecordingProvider(keyring);
    expect(new TextDecoder().decode((await decrypt(env, { providers: [liar, honest] })).plaintext)).toBe('x');
    expect(allZero(bogus[0]!)).toBe(true);
    expectWiped(honest, 1);
  });
});

describe('objects: plaintext copies are wiped', () => {
  /** A backend that keeps the plaintext it is given to seal and the buffer it opens into. */
  function plaintextRecorder(failSeal = false) {
    const sealed: Uint8Array[] = [];
    const copies: Uint8Array[] = [];
    const opened: Uint8Array[] = [];
    const aead: AesGcm = {
      name: 'recording',
      seal(key, nonce, aad, pt, out) {
        sealed.push(pt);
        copies.push(pt.slice());
        if (failSeal) throw new Error('backend exploded');
        nobleAesGcm.seal(key, nonce, aad, pt, out);
      },
      open(key, nonce, aad, ct, out) {
        opened.push(out);
        return nobleAesGcm.open(key, nonce, aad, ct, out);
      },
    };
    return { aead, sealed, copies, opened };
  }
  const value = { secret: Uint8Array.of(1, 2, 3), nested: [Uint8Array.of(4, 5)], s: 'text' };

  it('encryptObject: the encoding, after success and after a failing backend', async () => {
    const { keyring, keyId } = setup();
    for (const failSeal of [false, true]) {
      const r = plaintextRecorder(failSeal);
      const p = encryptObject(value, { provider: keyring, keyId, aead: r.aead });
      if (failSeal) await expect(p).rejects.toThrow();
      else await p;
      expect(r.sealed).toHaveLength(1);
      expect(allZero(r.copies[0]!), 'the copy shows it was real').toBe(false);
      expect(allZero(r.sealed[0]!), 'the encoding was not wiped').toBe(true);
    }
    expect([...value.secret]).toEqual([1, 2, 3]); // the caller's buffer is left alone
  });

  it('decryptObject: the decrypted encoding on success, on a malformed value and on a schema mismatch', async () => {
    const { keyring, keyId } = setup();
    const good = await encryptObject(value, { provider: keyring, keyId });
    const notAValue = await encryptText(utf8('not an encoded value'), { provider: keyring, keyId });
    const mismatch = { safeParse: () => ({ success: false as const, error: { issues: [{ path: ['secret'], code: 'custom' }] } }) };
    for (const [text, schema, code] of [
      [good, undefined, undefined],
      [notAValue, undefined, 'ERR_MALFORMED_VALUE'],
      [good, mismatch, 'ERR_SCHEMA_MISMATCH'],
    ] as const) {
      const r = plaintextRecorder();
      const p = decryptObject(text, { provider: keyring, aead: r.aead, schema });
      if (code) await expect(p).rejects.toMatchObject({ code });
      else expect(await p).toEqual(value);
      expect(r.opened).toHaveLength(1);
      expect(allZero(r.opened[0]!), 'the decrypted encoding was not wiped').toBe(true);
    }
  });

  it('decryptObject: the byte arrays of a decoded value that is not returned (schema mismatch, schema that throws)', async () => {
    const { keyring, keyId } = setup();
    const text = await encryptObject(value, { provider: keyring, keyId });
    for (const outcome of ['mismatch', 'throws'] as const) {
      const seen: (typeof value)[] = [];
      const schema = {
        safeParse(v: unknown) {
          seen.push(v as typeof value);
          if (outcome === 'throws') throw new Error('validator crashed');
          return { success: false as const, error: { issues: [{ path: ['secret'], code: 'custom' }] } };
        },
      };
      await expect(decryptObject(text, { provider: keyring, schema })).rejects.toMatchObject({ code: 'ERR_SCHEMA_MISMATCH' });
      expect(seen).toHaveLength(1);
      expect(seen[0]!.s).toBe('text');
      expect(allZero(seen[0]!.secret), `${outcome}: decoded bytes were not wiped`).toBe(true);
      expect(allZero(seen[0]!.nested[0]!), `${outcome}: nested decoded bytes were not wiped`).toBe(true);
    }
  });
});

/** An AES-GCM backend that keeps every key, every plaintext it seals and every buffer it opens into. */
function plaintextRecordingAead(
  options: { failSealAt?: number } = {},
): AesGcm & { keys: Uint8Array[]; plaintexts: Uint8Array[]; macSecrets: Uint8Array[] } {
  const keys: Uint8Array[] = [];
  const plaintexts: Uint8Array[] = [];
  const macSecrets: Uint8Array[] = [];
  let seals = 0;
  return {
    name: 'recording-plaintext',
    keys,
    plaintexts,
    macSecrets,
    // The HMAC seam of the key schedule (SPEC.md §3.3, §12.2): every key it is given (the data key,
    // a field root) and every output (content key, field root, field keys and their commitments).
    hmacSha512(key, message) {
      const out = nobleHmacSha512(key, message);
      macSecrets.push(key, out);
      return out;
    },
    seal(key, nonce, aad, pt, out) {
      keys.push(key);
      plaintexts.push(pt);
      if (seals++ === options.failSealAt) throw new Error('backend exploded');
      nobleAesGcm.seal(key, nonce, aad, pt, out);
    },
    open(key, nonce, aad, sealed, out) {
      keys.push(key);
      plaintexts.push(out);
      return nobleAesGcm.open(key, nonce, aad, sealed, out);
    },
  };
}

/** Every byte array inside a decoded value. */
function bytesIn(value: unknown): Uint8Array[] {
  const out: Uint8Array[] = [];
  const walk = (v: unknown): void => {
    if (v instanceof Uint8Array) out.push(v);
    else if (v instanceof Map) for (const [k, e] of v) (walk(k), walk(e));
    else if (v instanceof Set || Array.isArray(v)) for (const e of v) walk(e);
    else if (v !== null && typeof v === 'object') for (const e of Object.values(v)) walk(e);
  };
  walk(value);
  return out;
}

function resetSeen(): void {
  seen.encoded.length = 0;
  seen.decoded.length = 0;
  seen.blindInputs.length = 0;
}

function expectAllZero(buffers: readonly Uint8Array[], what: string, atLeast = 1): void {
  expect(buffers.length, `${what}: recorded`).toBeGreaterThanOrEqual(atLeast);
  for (const [i, b] of buffers.entries()) expect(allZero(b), `${what} #${i} was not wiped`).toBe(true);
}

describe('plaintext copies in the records API are wiped', () => {
  const secret = () => new Uint8Array(32).fill(0xa5);
  const record = () => ({ id: 1, email: 'ada@example.com', photo: secret(), ssn: '078-05-1120' });
  const fields = ['email', 'photo', 'ssn'] as const;

  async function blindIndex(keyring: LocalKeyring, keyId: string) {
    const stored = await nodeEntry.createBlindIndexKey({ provider: keyring, keyId, name: 'users.email' });
    return nodeEntry.openBlindIndex(stored, { provider: keyring, name: 'users.email' });
  }

  it('encryptFields on success: every field encoding, every sealed plaintext and every blind-index HMAC input', async () => {
    const { keyring, keyId, provider } = setup();
    const index = await blindIndex(keyring, keyId);
    const aead = plaintextRecordingAead();
    resetSeen();
    const enc = await nodeEntry.encryptFields(record(), { provider, keyId, aead, fields, blindIndexes: { email: { index, into: 'email_idx' } } });
    expect(enc.email_idx).toMatch(/^[A-Za-z0-9_-]+$/);
    expectAllZero(seen.encoded, 'field encoding', 3);
    expectAllZero(aead.plaintexts, 'sealed plaintext', 3);
    expectAllZero(aead.keys, 'field key', 3);
    expectAllZero(aead.macSecrets, 'key given to or derived by the HMAC', 8);
    expectAllZero(seen.blindInputs, 'blind-index HMAC input');
    expectWiped(provider, 1);
  });

  it('encryptFields when a later field cannot be encoded: the earlier fields\u2019 encodings', async () => {
    const { keyId, provider } = setup();
    resetSeen();
    const bad = { ...record(), later: () => 1 } as Record<string, unknown>;
    await expectCode(() => nodeEntry.encryptFields(bad, { provider, keyId, fields: ['email', 'photo', 'later'] }), 'ERR_UNSUPPORTED_VALUE');
    expectAllZero(seen.encoded, 'field encoding', 2);
    expect(provider.handedOut).toHaveLength(0);
  });

  it('encryptFields when the blind index fails, the provider fails, or AES-GCM fails on the second field', async () => {
    const { keyring, keyId, provider } = setup();
    const index = await blindIndex(keyring, keyId);
    const throwing = await nodeEntry.openBlindIndex(await nodeEntry.createBlindIndexKey({ provider: keyring, keyId, name: 'users.ssn' }), {
      provider: keyring,
      name: 'users.ssn',
      normalize: () => {
        throw new Error('normaliser bug');
      },
    });
    resetSeen();
    await expectCode(
      () => nodeEntry.encryptFields(record(), { provider, keyId, fields, blindIndexes: { email: { index, into: 'email_idx' }, ssn: { index: throwing, into: 'ssn_idx' } } }),
      'ERR_INVALID_PARAMETER',
    );
    expectAllZero(seen.encoded, 'field encoding', 3);
    expectAllZero(seen.blindInputs, 'blind-index HMAC input');

    const failing: KeyProvider = { providerId: 'local', generateDataKey: () => Promise.reject(new Error('down')), decrypt: (r) => keyring.decrypt(r) };
    resetSeen();
    await expectCode(() => nodeEntry.encryptFields(record(), { provider: failing, keyId, fields }), 'ERR_PROVIDER');
    expectAllZero(seen.encoded, 'field encoding', 3);

    const aead = plaintextRecordingAead({ failSealAt: 1 });
    resetSeen();
    await expect(nodeEntry.encryptFields(record(), { provider, keyId, aead, fields, blindIndexes: { email: { index, into: 'email_idx' } } })).rejects.toThrow();
    expectAllZero(seen.encoded, 'field encoding', 3);
    expectAllZero(aead.plaintexts, 'sealed plaintext', 2);
    expectAllZero(aead.keys, 'field key', 2);
    expectAllZero(seen.blindInputs, 'blind-index HMAC input');
  });

  it('decryptFields on success: every opened plaintext; the decoded values are the caller\u2019s and stay intact', async () => {
    const { keyId, provider } = setup();
    const enc = await nodeEntry.encryptFields(record(), { provider, keyId, fields, recordId: 1 });
    const aead = plaintextRecordingAead();
    resetSeen();
    const dec = await nodeEntry.decryptFields(enc, { provider, aead, fields, recordId: 1 });
    expect(dec.photo).toEqual(secret());
    expectAllZero(aead.plaintexts, 'opened plaintext', 3);
    expectAllZero(aead.keys, 'field key', 3);
    expectAllZero(aead.macSecrets, 'key given to or derived by the HMAC', 8);
  });

  it('decryptFields when a later field fails: the earlier fields\u2019 plaintexts and decoded bytes', async () => {
    const { keyId, provider } = setup();
    const enc = await nodeEntry.encryptFields(record(), { provider, keyId, fields, recordId: 1 });
    const other = await nodeEntry.encryptFields(record(), { provider, keyId, fields, recordId: 2 });
    const aead = plaintextRecordingAead();
    resetSeen();
    // photo (second) decrypts, ssn (third) is another record's: decryption fails after two fields were opened
    await expectCode(() => nodeEntry.decryptFields({ ...enc, ssn: other.ssn }, { provider, aead, fields, recordId: 1 }), 'ERR_DECRYPTION_FAILED');
    expect(seen.decoded.length).toBeGreaterThanOrEqual(2);
    expectAllZero(seen.decoded.flatMap(bytesIn), 'decoded bytes');
    // The third field fails its field commitment (SPEC.md §12.3) before its body is opened.
    expectAllZero(aead.plaintexts, 'opened plaintext', 2);
  });

  it('decryptFields when the schema refuses the record: the decoded bytes', async () => {
    const { keyId, provider } = setup();
    const enc = await nodeEntry.encryptFields(record(), { provider, keyId, fields, recordId: 1 });
    let given: unknown;
    const schema = {
      safeParse(data: unknown) {
        given = data;
        return { success: false as const, error: { issues: [{ path: ['photo'], code: 'custom' }] } };
      },
    };
    resetSeen();
    await expectCode(() => nodeEntry.decryptFields(enc, { provider, fields, recordId: 1, schema }), 'ERR_SCHEMA_MISMATCH');
    const photo = (given as { photo: Uint8Array }).photo;
    expect(photo).toBeInstanceOf(Uint8Array);
    expect(allZero(photo), 'the decoded photo was not wiped').toBe(true);
    expectAllZero(seen.decoded.flatMap(bytesIn), 'decoded bytes');
  });
});
