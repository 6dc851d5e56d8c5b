/**
 * Zeroization: the plaintext data key a provider hands out, and every key
 * derived from it, is all zeros once encrypt or decrypt returns, on success
 * and on every failure path. A recording provider keeps a reference to the
 * key it returned; a recording AES-GCM backend keeps the content keys.
 */
import { describe, expect, it } from 'vitest';
import { nobleAesGcm } from '../src/core/aead/noble.js';
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
