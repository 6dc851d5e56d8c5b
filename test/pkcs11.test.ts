/**
 * The PKCS#11 provider against a real SoftHSM2 (Debian's `softhsm2`): the provider contract,
 * every error, 32 parallel calls, rotation, tamper, envelopes that open in another process, and
 * property tests of round trips. Tokens are made in a temporary folder (see pkcs11-helpers.ts).
 */
import { execFile } from 'node:child_process';
import { createDecipheriv, createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect, promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decrypt,
  encrypt,
  inspect as inspectEnvelope,
  rewrap,
  LocalKeyring,
  DecryptionFailedError,
  InvalidParameterError,
  KeyDisabledError,
  KeyNotFoundError,
  ProviderError,
  type KeyProvider,
} from '../src/index.js';
import {
  CK,
  CKR,
  KWP_CONTEXT_LABEL,
  Pkcs11Provider,
  Pkcs11ProviderError,
  encodeHeader,
  loadPkcs11Binding,
  readPkcs11Blob,
  type Pkcs11Binding,
  type Pkcs11ProviderOptions,
} from '../src/providers/pkcs11/index.js';
import { runs } from './helpers.js';
import { SOFTHSM2_MODULE, TEST_PIN, setUpSoftHsm, softhsmAvailable, type SoftHsm } from './pkcs11-helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);
const available = softhsmAvailable();

const TOKEN = 'ek-main';
const OTHER_TOKEN = 'ek-other';

let hsm: SoftHsm;
let gcm: Pkcs11Provider;
let kwp: Pkcs11Provider;
let binding: Pkcs11Binding;
const opened: Pkcs11Provider[] = [];

function options(extra: Partial<Pkcs11ProviderOptions> = {}): Pkcs11ProviderOptions {
  return { module: SOFTHSM2_MODULE, tokenLabel: TOKEN, pin: TEST_PIN, ...extra };
}
async function openProvider(extra: Partial<Pkcs11ProviderOptions> = {}): Promise<Pkcs11Provider> {
  const p = await Pkcs11Provider.open(options(extra));
  opened.push(p);
  return p;
}
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}
const bytesEq = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe.skipIf(!available)('Pkcs11Provider on SoftHSM2', () => {
  beforeAll(async () => {
    hsm = setUpSoftHsm(TOKEN, OTHER_TOKEN);
    binding = await loadPkcs11Binding();
    gcm = await openProvider();
    kwp = await openProvider({ wrap: 'kwp' });
    await gcm.createKey('main');
    await gcm.createKey('second');
  });
  afterAll(async () => {
    for (const p of opened) await p.close();
    hsm?.remove();
  });

  describe('the provider contract', () => {
    it.each([
      [{}, 32],
      [{ keySpec: 'AES_128' as const }, 16],
      [{ numberOfBytes: 1 }, 1],
      [{ numberOfBytes: 1024, keySpec: 'AES_128' as const }, 1024],
    ])('generateDataKey %o gives %i bytes, wrapped under the named key, and decrypt gives them back', async (req, n) => {
      for (const p of [gcm, kwp]) {
        const ctx = { tenant: 'acme', 'ek:purpose': 'envelope-kit/v1/data-key' };
        const dk = await p.generateDataKey({ keyId: 'main', encryptionContext: ctx, ...req });
        expect(dk.plaintext).toBeInstanceOf(Uint8Array);
        expect(dk.plaintext.length).toBe(n);
        expect(dk.keyId).toBe('main');
        expect(dk.keyVersion).toBe('1');
        expect(dk.ciphertextBlob.length).toBeLessThanOrEqual(4096);
        // the context is a map: order does not matter
        const back = await p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { 'ek:purpose': 'envelope-kit/v1/data-key', tenant: 'acme' } });
        expect(back).toEqual({ keyId: 'main', keyVersion: '1', plaintext: dk.plaintext });
      }
    });

    it('every data key is fresh, and the blobs differ', async () => {
      const a = await gcm.generateDataKey({ keyId: 'main' });
      const b = await gcm.generateDataKey({ keyId: 'main' });
      expect(bytesEq(a.plaintext, b.plaintext)).toBe(false);
      expect(bytesEq(a.ciphertextBlob, b.ciphertextBlob)).toBe(false);
    });

    it('a provider of either scheme opens the blobs of the other', async () => {
      const a = await gcm.generateDataKey({ keyId: 'main', encryptionContext: { a: '1' } });
      const b = await kwp.generateDataKey({ keyId: 'main', encryptionContext: { a: '1' } });
      expect(readPkcs11Blob(a.ciphertextBlob)?.scheme).toBe(0x01);
      expect(readPkcs11Blob(b.ciphertextBlob)?.scheme).toBe(0x02);
      expect((await kwp.decrypt({ ciphertextBlob: a.ciphertextBlob, encryptionContext: { a: '1' } })).plaintext).toEqual(a.plaintext);
      expect((await gcm.decrypt({ ciphertextBlob: b.ciphertextBlob, encryptionContext: { a: '1' } })).plaintext).toEqual(b.plaintext);
    });

    it('decrypt refuses another context, a missing context and an extra entry with the one fixed message', async () => {
      for (const p of [gcm, kwp]) {
        const dk = await p.generateDataKey({ keyId: 'main', encryptionContext: { a: '1', b: '2' } });
        const others: (Record<string, string> | undefined)[] = [{ a: '1', b: '3' }, undefined, { a: '1' }, { a: '1', b: '2', c: '3' }, { a: '1', B: '2' }];
        for (const ctx of others) {
          const e = await failure(p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: ctx }));
          expect(e).toBeInstanceOf(DecryptionFailedError);
          expect((e as Error).message).toBe('decryption failed');
        }
      }
    });

    it('encrypt wraps given bytes; decrypt gives them back; the caller may wipe theirs at once', async () => {
      for (const p of [gcm, kwp]) {
        const key = new Uint8Array(48).map((_, i) => i + 1);
        const copy = key.slice();
        const pending = p.encrypt({ keyId: 'main', plaintext: key, encryptionContext: { r: 'x' } });
        key.fill(0);
        const w = await pending;
        expect(w.keyId).toBe('main');
        expect(w.keyVersion).toBe('1');
        expect((await p.decrypt({ ciphertextBlob: w.ciphertextBlob, encryptionContext: { r: 'x' } })).plaintext).toEqual(copy);
        expect(p.describeBlob(w.ciphertextBlob)).toEqual({ keyId: 'main', keyVersion: '1' });
      }
    });

    it('reEncrypt moves a blob to another key and context; the old context no longer opens the new blob', async () => {
      const dk = await gcm.generateDataKey({ keyId: 'main', encryptionContext: { from: 'a' } });
      const moved = await gcm.reEncrypt({
        ciphertextBlob: dk.ciphertextBlob,
        sourceEncryptionContext: { from: 'a' },
        destinationKeyId: 'second',
        destinationEncryptionContext: { to: 'b' },
      });
      expect(moved.keyId).toBe('second');
      expect(gcm.describeBlob(moved.ciphertextBlob)).toEqual({ keyId: 'second', keyVersion: '1' });
      expect((await gcm.decrypt({ ciphertextBlob: moved.ciphertextBlob, encryptionContext: { to: 'b' } })).plaintext).toEqual(dk.plaintext);
      expect(await failure(gcm.decrypt({ ciphertextBlob: moved.ciphertextBlob, encryptionContext: { from: 'a' } }))).toBeInstanceOf(DecryptionFailedError);
      // the source context is checked as decrypt checks it
      expect(
        await failure(gcm.reEncrypt({ ciphertextBlob: dk.ciphertextBlob, sourceEncryptionContext: { from: 'z' }, destinationKeyId: 'second' })),
      ).toBeInstanceOf(DecryptionFailedError);
    });

    it('describeBlob reads name and version, and answers undefined (never throws) for anything else', () => {
      const header = encodeHeader(0x01, 'main', 7, 32);
      const blob = new Uint8Array(header.length + 12 + 48);
      blob.set(header);
      expect(gcm.describeBlob(blob)).toEqual({ keyId: 'main', keyVersion: '7' });
      const hostile: unknown[] = [
        new Uint8Array(0),
        new Uint8Array(200),
        blob.subarray(0, blob.length - 1),
        'main',
        null,
        undefined,
        42,
        new Proxy(new Uint8Array(80), { get: () => { throw new Error('boom'); } }),
        Object.defineProperty(new Uint8Array(80), 'length', { value: 1 }),
      ];
      for (const h of hostile) expect(gcm.describeBlob(h as Uint8Array)).toBeUndefined();
    });

    it('bad parameters are InvalidParameterError before any work', async () => {
      const bad: unknown[] = [
        undefined,
        null,
        'main',
        {},
        { keyId: '' },
        { keyId: 'main', numberOfBytes: 0 },
        { keyId: 'main', numberOfBytes: 1025 },
        { keyId: 'main', numberOfBytes: 1.5 },
        { keyId: 'main', keySpec: 'AES_512' },
        { keyId: 'main', encryptionContext: { a: 1 } },
        { keyId: 'main', encryptionContext: [] },
        new Proxy({}, { get: () => { throw new Error('trap'); } }),
      ];
      for (const r of bad) expect(await failure(gcm.generateDataKey(r as never))).toBeInstanceOf(InvalidParameterError);
      for (const r of [undefined, {}, { ciphertextBlob: new Uint8Array(0) }, { ciphertextBlob: new Uint8Array(4097) }, { ciphertextBlob: 'x' }]) {
        expect(await failure(gcm.decrypt(r as never))).toBeInstanceOf(InvalidParameterError);
      }
      for (const r of [{ keyId: 'main', plaintext: new Uint8Array(0) }, { keyId: 'main', plaintext: new Uint8Array(1025) }, { keyId: 'main' }]) {
        expect(await failure(gcm.encrypt(r as never))).toBeInstanceOf(InvalidParameterError);
      }
      expect(await failure(gcm.reEncrypt({ ciphertextBlob: new Uint8Array(10), destinationKeyId: '' }))).toBeInstanceOf(InvalidParameterError);
    });

    it('bad options are InvalidParameterError at construction', () => {
      const bad: unknown[] = [
        undefined,
        {},
        { module: '' },
        { module: 42 },
        { module: SOFTHSM2_MODULE, sessions: 0 },
        { module: SOFTHSM2_MODULE, sessions: 65 },
        { module: SOFTHSM2_MODULE, wrap: 'cbc' },
        { module: SOFTHSM2_MODULE, kwpMechanism: 0x2109 },
        { module: SOFTHSM2_MODULE, dataKeySource: 'dice' },
        { module: SOFTHSM2_MODULE, pinEnv: 'not a name' },
        { module: SOFTHSM2_MODULE, pin: '' },
        { module: SOFTHSM2_MODULE, providerId: 'Bad Id' },
        { module: SOFTHSM2_MODULE, binding: {} },
        { module: SOFTHSM2_MODULE, tokenLabel: 'x'.repeat(33) },
        new Proxy({}, { get: () => { throw new Error('trap'); } }),
        'module.so',
      ];
      for (const o of bad) expect(() => new Pkcs11Provider(o as never)).toThrow(InvalidParameterError);
    });

    it('a module that makes the GCM IV itself: the IV it wrote into the mechanism parameters is the one stored', async () => {
      // As such a module does, this binding writes its own IV into the parameter's buffer before the token encrypts.
      const chosen = Buffer.from('0102030405060708090a0b0c', 'hex');
      const choosing = bindingWith({
        C_EncryptInit: (real) => (...args) => {
          const mech = args[1] as { parameter?: { iv?: Buffer } };
          mech.parameter?.iv?.set(chosen);
          return real(...args);
        },
      });
      const p = await openProvider({ binding: choosing });
      const dk = await p.generateDataKey({ keyId: 'main', encryptionContext: { iv: 'module' } });
      const h = readPkcs11Blob(dk.ciphertextBlob)!;
      expect(Buffer.from(h.iv!).equals(chosen)).toBe(true);
      expect((await gcm.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { iv: 'module' } })).plaintext).toEqual(dk.plaintext);
    });

    it('data keys from the token (C_GenerateRandom) round-trip too', async () => {
      const p = await openProvider({ dataKeySource: 'token' });
      const a = await p.generateDataKey({ keyId: 'main', numberOfBytes: 40 });
      const b = await p.generateDataKey({ keyId: 'main', numberOfBytes: 40 });
      expect(bytesEq(a.plaintext, b.plaintext)).toBe(false);
      expect((await gcm.decrypt({ ciphertextBlob: a.ciphertextBlob })).plaintext).toEqual(a.plaintext);
    });
  });

  describe('errors, each with its stable code', () => {
    it('a missing module file: Pkcs11ProviderError module-not-found (ERR_PROVIDER)', async () => {
      const e = await failure(Pkcs11Provider.open(options({ module: path.join(hsm.dir, 'no-such-module.so') })));
      expect(e).toBeInstanceOf(Pkcs11ProviderError);
      expect(e).toBeInstanceOf(ProviderError);
      expect(e).toMatchObject({ code: 'ERR_PROVIDER', failure: 'module-not-found', name: 'Pkcs11ProviderError' });
    });

    it('a file that is not a PKCS#11 module: module-load-failed', async () => {
      const file = path.join(hsm.dir, 'not-a-module.so');
      writeFileSync(file, 'not an ELF file');
      expect(await failure(Pkcs11Provider.open(options({ module: file })))).toMatchObject({ code: 'ERR_PROVIDER', failure: 'module-load-failed' });
    });

    it('a missing binding: binding-missing, naming the package to install', async () => {
      const e = await failure(loadPkcs11Binding('pkcs11js-not-installed-anywhere'));
      expect(e).toMatchObject({ code: 'ERR_PROVIDER', failure: 'binding-missing' });
      expect((e as Error).message).toContain('npm install pkcs11js');
      expect(await failure(loadPkcs11Binding('node:path'))).toMatchObject({ failure: 'binding-missing' });
    });

    it('a wrong PIN: pin-incorrect (CKR_PIN_INCORRECT), the PIN in no message, and never tried twice', async () => {
      let logins = 0;
      const counting = bindingWith({ C_Login: (real) => (...args) => (logins++, real(...args)) });
      const p = new Pkcs11Provider({ module: SOFTHSM2_MODULE, tokenLabel: OTHER_TOKEN, pin: 'wrong-pin-9911', binding: counting });
      opened.push(p);
      const e = await failure(p.generateDataKey({ keyId: 'main' }));
      expect(e).toMatchObject({ code: 'ERR_PROVIDER', failure: 'pin-incorrect', ckr: 'CKR_PIN_INCORRECT' });
      const again = await failure(p.generateDataKey({ keyId: 'main' }));
      expect(again).toBe(e);
      expect(logins).toBe(1);
      for (const s of [String(e), (e as Error).stack ?? '', inspect(e, { depth: 5 }), inspect(p), JSON.stringify(p)]) {
        expect(s).not.toContain('wrong-pin-9911');
      }
    });

    it('a locked PIN: pin-locked, from C_Login (CKR_PIN_LOCKED) or from the token flag CKF_USER_PIN_LOCKED', async () => {
      // SoftHSM2 never locks a PIN, so these two bindings make it say so.
      const Pkcs11Error = (binding as unknown as { Pkcs11Error: new (m: string) => Error }).Pkcs11Error;
      const fromLogin = bindingWith({
        C_Login: () => () => {
          throw new Pkcs11Error(`CKR_PIN_LOCKED:${CKR.PIN_LOCKED}`);
        },
      });
      const a = new Pkcs11Provider({ module: SOFTHSM2_MODULE, tokenLabel: OTHER_TOKEN, pin: TEST_PIN, binding: fromLogin });
      expect(await failure(a.generateDataKey({ keyId: 'main' }))).toMatchObject({ code: 'ERR_PROVIDER', failure: 'pin-locked', ckr: 'CKR_PIN_LOCKED' });
      const fromFlag = bindingWith({
        C_GetTokenInfo: (real) => (...args) => {
          const info = real(...args) as { flags: number };
          return { ...info, flags: info.flags | CK.CKF_USER_PIN_LOCKED };
        },
      });
      const b = new Pkcs11Provider({ module: SOFTHSM2_MODULE, tokenLabel: OTHER_TOKEN, pin: TEST_PIN, binding: fromFlag });
      expect(await failure(b.generateDataKey({ keyId: 'main' }))).toMatchObject({ code: 'ERR_PROVIDER', failure: 'pin-locked' });
    });

    it('no PIN: pin-missing; a PIN from the environment variable named by pinEnv works', async () => {
      const envName = 'EK_TEST_PKCS11_PIN';
      delete process.env[envName];
      expect(await failure(Pkcs11Provider.open(options({ pin: undefined, pinEnv: envName })))).toMatchObject({ failure: 'pin-missing' });
      expect(await failure(Pkcs11Provider.open(options({ pin: undefined })))).toMatchObject({ failure: 'pin-missing' });
      process.env[envName] = TEST_PIN;
      try {
        const p = await openProvider({ pin: undefined, pinEnv: envName });
        const dk = await p.generateDataKey({ keyId: 'main' });
        expect((await gcm.decrypt({ ciphertextBlob: dk.ciphertextBlob })).plaintext).toEqual(dk.plaintext);
        expect(inspect(p)).not.toContain(TEST_PIN);
      } finally {
        delete process.env[envName];
      }
    });

    it('no such token: token-not-found', async () => {
      expect(await failure(Pkcs11Provider.open(options({ tokenLabel: 'ek-nowhere' })))).toMatchObject({ failure: 'token-not-found' });
      expect(await failure(Pkcs11Provider.open(options({ tokenSerial: '0000000000000000' })))).toMatchObject({ failure: 'token-not-found' });
      // two initialised tokens and neither named: ambiguous
      expect(await failure(Pkcs11Provider.open(options({ tokenLabel: undefined })))).toMatchObject({ failure: 'token-not-found' });
    });

    it('a missing key: KeyNotFoundError (names that cannot be labels too)', async () => {
      for (const keyId of ['absent', 'alias/main', 'x'.repeat(65), 'main/v1', 'ключ']) {
        expect(await failure(gcm.generateDataKey({ keyId }))).toBeInstanceOf(KeyNotFoundError);
        expect(await failure(gcm.encrypt({ keyId, plaintext: new Uint8Array(16) }))).toBeInstanceOf(KeyNotFoundError);
      }
      expect(await failure(gcm.rotateKey('absent'))).toBeInstanceOf(KeyNotFoundError);
      // a blob naming a key the token does not hold
      const dk = await gcm.generateDataKey({ keyId: 'main' });
      const other = dk.ciphertextBlob.slice();
      other[3] = 'x'.charCodeAt(0); // "main" -> "xain"
      expect(await failure(gcm.decrypt({ ciphertextBlob: other }))).toMatchObject({ code: 'ERR_KEY_NOT_FOUND' });
    });

    it('a disabled key: KeyDisabledError for every use, until enabled again', async () => {
      const p = await openProvider();
      await p.createKey('to-disable');
      const g = await p.generateDataKey({ keyId: 'to-disable' });
      const k = await kwp.generateDataKey({ keyId: 'to-disable' });
      await p.disableKey('to-disable');
      expect(await failure(p.generateDataKey({ keyId: 'to-disable' }))).toMatchObject({ code: 'ERR_KEY_DISABLED' });
      expect(await failure(kwp.generateDataKey({ keyId: 'to-disable' }))).toMatchObject({ code: 'ERR_KEY_DISABLED' });
      expect(await failure(p.decrypt({ ciphertextBlob: g.ciphertextBlob }))).toBeInstanceOf(KeyDisabledError);
      expect(await failure(p.decrypt({ ciphertextBlob: k.ciphertextBlob }))).toBeInstanceOf(KeyDisabledError);
      expect(await failure(p.encrypt({ keyId: 'to-disable', plaintext: new Uint8Array(8) }))).toBeInstanceOf(KeyDisabledError);
      await p.enableKey('to-disable');
      expect((await p.decrypt({ ciphertextBlob: g.ciphertextBlob })).plaintext).toEqual(g.plaintext);
      expect((await p.decrypt({ ciphertextBlob: k.ciphertextBlob })).plaintext).toEqual(k.plaintext);
      expect(await failure(p.disableKey('absent'))).toBeInstanceOf(KeyNotFoundError);
    });

    it('an extractable or non-sensitive key, and two keys with one label, are refused', async () => {
      const lib = new binding.PKCS11();
      lib.load(SOFTHSM2_MODULE); // the library is initialised already (by the providers)
      const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trimEnd() === TOKEN)!;
      const s = lib.C_OpenSession(slot, CK.CKF_SERIAL_SESSION | CK.CKF_RW_SESSION);
      const make = (label: string, extractable: boolean, sensitive: boolean) =>
        lib.C_GenerateKey(s, { mechanism: CK.CKM_AES_KEY_GEN }, [
          { type: CK.CKA_CLASS, value: CK.CKO_SECRET_KEY },
          { type: CK.CKA_KEY_TYPE, value: CK.CKK_AES },
          { type: CK.CKA_VALUE_LEN, value: 32 },
          { type: CK.CKA_TOKEN, value: true },
          { type: CK.CKA_PRIVATE, value: true },
          { type: CK.CKA_SENSITIVE, value: sensitive },
          { type: CK.CKA_EXTRACTABLE, value: extractable },
          { type: CK.CKA_ENCRYPT, value: true },
          { type: CK.CKA_DECRYPT, value: true },
          { type: CK.CKA_LABEL, value: label },
        ]);
      try {
        make('leaky/v1', true, true);
        make('plain/v1', false, false);
        make('twice/v1', false, true);
        make('twice/v1', false, true);
      } finally {
        lib.C_CloseSession(s);
      }
      expect(await failure(gcm.generateDataKey({ keyId: 'leaky' }))).toMatchObject({ code: 'ERR_PROVIDER', failure: 'key-extractable' });
      expect(await failure(gcm.generateDataKey({ keyId: 'plain' }))).toMatchObject({ failure: 'key-extractable' });
      expect(await failure(gcm.generateDataKey({ keyId: 'twice' }))).toMatchObject({ failure: 'key-ambiguous' });
      expect(await failure(gcm.createKey('twice'))).toBeInstanceOf(InvalidParameterError);
    });

    it('createKey refuses a bad name and a name that exists', async () => {
      for (const name of ['', 'a/b', 'x'.repeat(65), 'sp ace']) expect(await failure(gcm.createKey(name))).toBeInstanceOf(InvalidParameterError);
      expect(await failure(gcm.createKey('main'))).toBeInstanceOf(InvalidParameterError);
    });

    it('after close: Pkcs11ProviderError closed, and close is idempotent', async () => {
      const p = await Pkcs11Provider.open(options());
      const dk = await p.generateDataKey({ keyId: 'main' });
      await p.close();
      await p.close();
      expect(await failure(p.generateDataKey({ keyId: 'main' }))).toMatchObject({ code: 'ERR_PROVIDER', failure: 'closed' });
      expect(await failure(p.decrypt({ ciphertextBlob: dk.ciphertextBlob }))).toMatchObject({ failure: 'closed' });
      // the other providers of the process still work: the module stays initialised for them
      expect((await gcm.decrypt({ ciphertextBlob: dk.ciphertextBlob })).plaintext).toEqual(dk.plaintext);
      // a provider never opened closes at once
      await new Pkcs11Provider(options()).close();
    });

    it('every buffer that held a data key is zeroed once the call returns (both schemes)', async () => {
      const seen: { what: string; buf: Uint8Array }[] = [];
      const keep = (what: string, buf: unknown) => {
        if (buf instanceof Uint8Array) seen.push({ what, buf });
      };
      const spying = bindingWith({
        C_EncryptAsync: (real) => async (...args) => (keep('C_Encrypt input', args[1]), real(...args)),
        C_DecryptAsync: (real) => async (...args) => (keep('C_Decrypt output', args[2]), real(...args)),
        C_CreateObject: (real) => (...args) => {
          for (const a of args[1] as { type: number; value?: unknown }[]) if (a.type === CK.CKA_VALUE) keep('C_CreateObject value', a.value);
          return real(...args);
        },
        C_GetAttributeValue: (real) => (...args) => {
          const out = real(...args) as { type: number; value: Uint8Array }[];
          for (const a of out) if (a.type === CK.CKA_VALUE) keep('CKA_VALUE read back', a.value);
          return out;
        },
      });
      for (const wrap of ['gcm', 'kwp'] as const) {
        const p = await openProvider({ wrap, binding: spying });
        seen.length = 0;
        const dk = await p.generateDataKey({ keyId: 'main', numberOfBytes: 24 });
        const back = await p.decrypt({ ciphertextBlob: dk.ciphertextBlob });
        const w = await p.encrypt({ keyId: 'main', plaintext: dk.plaintext });
        await p.reEncrypt({ ciphertextBlob: w.ciphertextBlob, destinationKeyId: 'second' });
        expect(back.plaintext).toEqual(dk.plaintext);
        expect(seen.length, wrap).toBe(5); // one per wrap (3) and per unwrap (2)
        for (const { what, buf } of seen) expect(buf.every((b) => b === 0), `${wrap}: ${what}`).toBe(true);
        expect(dk.plaintext.some((b) => b !== 0)).toBe(true); // what the caller owns is left alone
      }
    });

    it('secrets stay out of inspect, JSON and messages', async () => {
      const p = await openProvider({ pin: 'secret-pin-4242' });
      const dk = await p.generateDataKey({ keyId: 'main' });
      const hex = Buffer.from(dk.plaintext).toString('hex');
      for (const s of [inspect(p, { depth: 10, showHidden: true }), JSON.stringify(p), String(p)]) {
        expect(s).not.toContain('secret-pin-4242');
        expect(s).not.toContain(hex);
      }
      const e = await failure(p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { no: 'no' } }));
      expect(inspect(e, { depth: 10 })).not.toContain(hex);
    });
  });

  describe('concurrency', () => {
    it.each([1, 4])('32 parallel generateDataKey, encrypt and decrypt calls over %i session(s)', async (sessions) => {
      for (const p of [await openProvider({ sessions }), await openProvider({ sessions, wrap: 'kwp' })]) {
        const keys = await Promise.all(Array.from({ length: 32 }, (_, i) => p.generateDataKey({ keyId: i % 2 ? 'main' : 'second', encryptionContext: { i: String(i) } })));
        const wrapped = await Promise.all(keys.map((k, i) => p.encrypt({ keyId: 'second', plaintext: k.plaintext, encryptionContext: { j: String(i) } })));
        const back = await Promise.all(keys.map((k, i) => p.decrypt({ ciphertextBlob: k.ciphertextBlob, encryptionContext: { i: String(i) } })));
        const back2 = await Promise.all(wrapped.map((w, i) => p.decrypt({ ciphertextBlob: w.ciphertextBlob, encryptionContext: { j: String(i) } })));
        for (let i = 0; i < 32; i++) {
          expect(back[i]!.plaintext).toEqual(keys[i]!.plaintext);
          expect(back2[i]!.plaintext).toEqual(keys[i]!.plaintext);
        }
        // failures in the middle of a burst leave the pool usable
        const mixed = await Promise.allSettled(Array.from({ length: 32 }, (_, i) => p.decrypt({ ciphertextBlob: keys[i]!.ciphertextBlob, encryptionContext: i % 3 ? { i: String(i) } : { i: 'x' } })));
        mixed.forEach((r, i) => expect(r.status).toBe(i % 3 ? 'fulfilled' : 'rejected'));
        expect((await p.decrypt({ ciphertextBlob: keys[0]!.ciphertextBlob, encryptionContext: { i: '0' } })).plaintext).toEqual(keys[0]!.plaintext);
      }
    });

    it('a session the token lost is closed and replaced; other failures of the token are ProviderError, retryable when they may pass', async () => {
      const Pkcs11Error = (binding as unknown as { Pkcs11Error: new (m: string) => Error }).Pkcs11Error;
      const fail: number[] = [];
      let opens = 0;
      let closes = 0;
      const flaky = bindingWith({
        C_OpenSession: (real) => (...args) => (opens++, real(...args)),
        C_CloseSession: (real) => (...args) => (closes++, real(...args)),
        C_DecryptAsync: (real) => async (...args) => {
          const code = fail.shift();
          const out = await real(...args);
          if (code === undefined) return out;
          throw new Pkcs11Error(`CKR_X:${code}`);
        },
      });
      // Alone on its token: closing its one session logs the token out, so the next one must log in again.
      const p = await openProvider({ binding: flaky, sessions: 1, tokenLabel: OTHER_TOKEN });
      await p.createKey('solo');
      const dk = await p.generateDataKey({ keyId: 'solo' });
      fail.push(CKR.SESSION_HANDLE_INVALID);
      expect(await failure(p.decrypt({ ciphertextBlob: dk.ciphertextBlob }))).toMatchObject({ code: 'ERR_PROVIDER', failure: 'pkcs11', retryable: false });
      expect(closes).toBe(1);
      expect((await p.decrypt({ ciphertextBlob: dk.ciphertextBlob })).plaintext).toEqual(dk.plaintext);
      expect(opens).toBe(2);
      fail.push(CKR.DEVICE_MEMORY);
      expect(await failure(p.decrypt({ ciphertextBlob: dk.ciphertextBlob }))).toMatchObject({ code: 'ERR_PROVIDER', retryable: true });
      expect(closes).toBe(2); // any failed PKCS#11 call: the session may hold an operation, so it goes
      fail.push(CKR.GENERAL_ERROR); // what SoftHSM2 answers for a wrong tag
      expect(await failure(p.decrypt({ ciphertextBlob: dk.ciphertextBlob }))).toBeInstanceOf(DecryptionFailedError);
      expect(closes).toBe(2); // a decryption failure keeps its session
      expect((await p.decrypt({ ciphertextBlob: dk.ciphertextBlob })).plaintext).toEqual(dk.plaintext);
      expect(opens).toBe(3);
    });

    it('close waits for calls in flight', async () => {
      const p = await Pkcs11Provider.open(options({ sessions: 2 }));
      const calls = Array.from({ length: 16 }, () => p.generateDataKey({ keyId: 'main' }).then(() => 'ok', (e: Pkcs11ProviderError) => e.failure));
      await p.close();
      const results = await Promise.all(calls);
      expect(results.every((r) => r === 'ok' || r === 'closed')).toBe(true);
      expect(results).toContain('ok');
    });
  });

  describe('rotation', () => {
    it('rotateKey makes the next version; new blobs use it; blobs of every version still decrypt with theirs', async () => {
      const p = await openProvider();
      expect(await p.createKey('rotating')).toEqual({ keyId: 'rotating', keyVersion: '1', label: 'rotating/v1' });
      const v1 = await p.generateDataKey({ keyId: 'rotating', encryptionContext: { a: 'b' } });
      expect(await p.rotateKey('rotating')).toEqual({ keyId: 'rotating', keyVersion: '2', label: 'rotating/v2' });
      const v2 = await p.generateDataKey({ keyId: 'rotating', encryptionContext: { a: 'b' } });
      expect(v1.keyVersion).toBe('1');
      expect(v2.keyVersion).toBe('2');
      expect(p.describeBlob(v2.ciphertextBlob)).toEqual({ keyId: 'rotating', keyVersion: '2' });
      expect(await p.decrypt({ ciphertextBlob: v1.ciphertextBlob, encryptionContext: { a: 'b' } })).toEqual({ keyId: 'rotating', keyVersion: '1', plaintext: v1.plaintext });
      expect(await p.decrypt({ ciphertextBlob: v2.ciphertextBlob, encryptionContext: { a: 'b' } })).toEqual({ keyId: 'rotating', keyVersion: '2', plaintext: v2.plaintext });
      expect(await p.listKeyVersions('rotating')).toEqual([1, 2]);
      // reEncrypt to the blob's own key id moves it to the newest version
      const moved = await p.reEncrypt({ ciphertextBlob: v1.ciphertextBlob, sourceEncryptionContext: { a: 'b' }, destinationKeyId: 'rotating', destinationEncryptionContext: { a: 'b' } });
      expect(moved.keyVersion).toBe('2');
      expect((await p.decrypt({ ciphertextBlob: moved.ciphertextBlob, encryptionContext: { a: 'b' } })).plaintext).toEqual(v1.plaintext);
      // a version named by a blob but not on the token: the blob is not one of that key's
      const forged = v2.ciphertextBlob.slice();
      const h = readPkcs11Blob(forged)!;
      new DataView(forged.buffer).setUint32(h.header.length - 6, 9);
      expect(await failure(p.decrypt({ ciphertextBlob: forged, encryptionContext: { a: 'b' } }))).toBeInstanceOf(DecryptionFailedError);
    });

    it('a version made by another provider (another process) is picked up by the next call', async () => {
      const a = await openProvider();
      const b = await openProvider();
      await a.createKey('shared');
      expect((await a.generateDataKey({ keyId: 'shared' })).keyVersion).toBe('1');
      await b.rotateKey('shared');
      await b.rotateKey('shared');
      expect((await a.generateDataKey({ keyId: 'shared' })).keyVersion).toBe('3');
    });

    it('parallel rotations of one provider make distinct versions', async () => {
      const p = await openProvider();
      await p.createKey('busy');
      const made = await Promise.all([p.rotateKey('busy'), p.rotateKey('busy'), p.rotateKey('busy')]);
      expect(made.map((m) => m.keyVersion).sort()).toEqual(['2', '3', '4']);
      expect((await p.generateDataKey({ keyId: 'busy' })).keyVersion).toBe('4');
    });
  });

  describe('tamper', () => {
    it.each(['gcm', 'kwp'] as const)('every bit flip of a %s blob is refused (DecryptionFailedError; a flip in the name may name an absent key)', async (scheme) => {
      const p = scheme === 'gcm' ? gcm : kwp;
      const dk = await p.generateDataKey({ keyId: 'main', numberOfBytes: 16, encryptionContext: { t: 'u' } });
      const h = readPkcs11Blob(dk.ciphertextBlob)!;
      const nameStart = 3;
      const nameEnd = 3 + h.name.length;
      for (let bit = 0; bit < dk.ciphertextBlob.length * 8; bit++) {
        const t = dk.ciphertextBlob.slice();
        t[bit >> 3]! ^= 1 << (bit & 7);
        const e = await failure(p.decrypt({ ciphertextBlob: t, encryptionContext: { t: 'u' } }));
        const at = bit >> 3;
        if (at >= nameStart && at < nameEnd) expect([DecryptionFailedError, KeyNotFoundError].some((c) => e instanceof c), `bit ${bit}`).toBe(true);
        else expect(e, `bit ${bit}`).toBeInstanceOf(DecryptionFailedError);
      }
    });

    it('truncated, extended and foreign blobs are DecryptionFailedError', async () => {
      const dk = await gcm.generateDataKey({ keyId: 'main' });
      const b = dk.ciphertextBlob;
      for (const t of [b.subarray(0, b.length - 1), b.subarray(0, 10), new Uint8Array([...b, 0]), new Uint8Array(64), new Uint8Array(64).fill(1)]) {
        expect(await failure(gcm.decrypt({ ciphertextBlob: t }))).toBeInstanceOf(DecryptionFailedError);
      }
      // the scheme byte swapped: a GCM body read as RFC 5649 (lengths do not add up) and back
      const swapped = b.slice();
      swapped[1] = 0x02;
      expect(await failure(gcm.decrypt({ ciphertextBlob: swapped }))).toBeInstanceOf(DecryptionFailedError);
    });

    it('a blob of one key, relabelled as another key, does not open', async () => {
      const dk = await gcm.generateDataKey({ keyId: 'main' });
      expect(readPkcs11Blob(dk.ciphertextBlob)!.name).toBe('main');
      await gcm.createKey('nain'); // a name of the same length, so only the name changes
      const t = dk.ciphertextBlob.slice();
      t.set(new TextEncoder().encode('nain'), 3);
      expect(await failure(gcm.decrypt({ ciphertextBlob: t }))).toBeInstanceOf(DecryptionFailedError);
    });

    it('the RFC 5649 context digest is domain-separated and covers the header', () => {
      expect(KWP_CONTEXT_LABEL).toBe('envelope-kit/pkcs11/v1/kwp');
    });
  });

  describe('the blob format, checked outside the token', () => {
    it('the header bytes are as documented', () => {
      expect(Buffer.from(encodeHeader(0x01, 'main', 0x01020304, 0x0020)).toString('hex')).toBe('0101046d61696e010203040020');
      expect(Buffer.from(encodeHeader(0x02, 'k', 1, 1024)).toString('hex')).toBe('0102016b000000010400');
    });

    it('a blob opens with node:crypto and the documented derivations alone (a key imported with a known value)', async () => {
      // An AES key imported with a known value (sensitive, non-extractable), so that the test knows it.
      const known = Buffer.alloc(32).map((_, i) => 0xa0 + i);
      const lib = new binding.PKCS11();
      lib.load(SOFTHSM2_MODULE);
      const slot = lib.C_GetSlotList(true).find((x) => lib.C_GetTokenInfo(x).label.trimEnd() === TOKEN)!;
      const s = lib.C_OpenSession(slot, CK.CKF_SERIAL_SESSION | CK.CKF_RW_SESSION);
      try {
        lib.C_CreateObject(s, [
          { type: CK.CKA_CLASS, value: CK.CKO_SECRET_KEY },
          { type: CK.CKA_KEY_TYPE, value: CK.CKK_AES },
          { type: CK.CKA_TOKEN, value: true },
          { type: CK.CKA_PRIVATE, value: true },
          { type: CK.CKA_SENSITIVE, value: true },
          { type: CK.CKA_EXTRACTABLE, value: false },
          { type: CK.CKA_ENCRYPT, value: true },
          { type: CK.CKA_DECRYPT, value: true },
          { type: CK.CKA_WRAP, value: true },
          { type: CK.CKA_UNWRAP, value: true },
          { type: CK.CKA_LABEL, value: 'known/v3' },
          { type: CK.CKA_VALUE, value: known },
        ]);
      } finally {
        lib.C_CloseSession(s);
      }
      const ctx = { b: '2', a: '1' };
      // canonical context: count, then (len key, key, len value, value) sorted by key bytes (SPEC.md §3.2)
      const ctxBytes = Buffer.from([2, 1, 0x61, 1, 0x31, 1, 0x62, 1, 0x32]);

      const g = await gcm.generateDataKey({ keyId: 'known', numberOfBytes: 20, encryptionContext: ctx });
      const gb = Buffer.from(g.ciphertextBlob);
      const header = gb.subarray(0, 9 + 5);
      expect(header.toString('hex')).toBe('0101056b6e6f776e000000030014');
      const iv = gb.subarray(header.length, header.length + 12);
      const ct = gb.subarray(header.length + 12, gb.length - 16);
      const tag = gb.subarray(gb.length - 16);
      const d = createDecipheriv('aes-256-gcm', known, iv);
      d.setAAD(Buffer.concat([header, ctxBytes]));
      d.setAuthTag(tag);
      expect(new Uint8Array(Buffer.concat([d.update(ct), d.final()]))).toEqual(g.plaintext);

      const k = await kwp.generateDataKey({ keyId: 'known', numberOfBytes: 20, encryptionContext: ctx });
      const kb = Buffer.from(k.ciphertextBlob);
      const kh = kb.subarray(0, 14);
      expect(kh.toString('hex')).toBe('0102056b6e6f776e000000030014');
      const u = createDecipheriv('id-aes256-wrap-pad', known, Buffer.from('a65959a6', 'hex'));
      const inner = Buffer.concat([u.update(kb.subarray(14)), u.final()]);
      const digest = createHash('sha256').update(KWP_CONTEXT_LABEL).update(kh).update(ctxBytes).digest();
      expect(inner.length).toBe(56); // ceil8(32 + 20)
      expect(inner.subarray(0, 32).equals(digest)).toBe(true);
      expect(new Uint8Array(inner.subarray(32, 52))).toEqual(k.plaintext);
      expect(inner.subarray(52).equals(Buffer.alloc(4))).toBe(true);
    });
  });

  describe('envelopes', () => {
    it('encrypt/decrypt from envelope-kit round-trip, and wrong context or tamper is DecryptionFailedError', async () => {
      for (const p of [gcm, kwp]) {
        const msg = new TextEncoder().encode('a message for the HSM');
        const env = await encrypt(msg, { provider: p, keyId: 'main', encryptionContext: { order: '42' } });
        const out = await decrypt(env, { provider: p, encryptionContext: { order: '42' } });
        expect(out.plaintext).toEqual(msg);
        const t = env.slice();
        t[t.length - 1]! ^= 1;
        expect(await failure(decrypt(t, { provider: p }))).toBeInstanceOf(DecryptionFailedError);
      }
    });

    it('as one of several recipients, and rotated with rewrap (moved inside the token by reEncrypt)', async () => {
      const p = await openProvider();
      await p.createKey('env-rot');
      const local = new LocalKeyring();
      const localKey = local.createKey().keyId;
      const msg = new TextEncoder().encode('two recipients');
      const env = await encrypt(msg, { recipients: [{ provider: p, keyId: 'env-rot' }, { provider: local, keyId: localKey }], encryptionContext: { t: '1' } });
      expect((await decrypt(env, { provider: local, encryptionContext: { t: '1' } })).plaintext).toEqual(msg);
      const env2 = await encrypt(msg, { recipients: [{ provider: local, keyId: localKey }, { provider: kwp, keyId: 'env-rot' }], encryptionContext: { t: '1' } });
      expect((await decrypt(env2, { provider: p, encryptionContext: { t: '1' } })).plaintext).toEqual(msg);

      expect(inspectEnvelope(env, { providers: [p] }).encryptedDataKeys.find((k) => k.providerId === 'pkcs11')).toMatchObject({ keyId: 'env-rot', keyVersion: '1' });
      await p.rotateKey('env-rot');
      let moved = 0;
      const spy: KeyProvider = {
        providerId: p.providerId,
        generateDataKey: (r) => p.generateDataKey(r),
        decrypt: (r) => p.decrypt(r),
        encrypt: (r) => p.encrypt(r),
        reEncrypt: (r) => (moved++, p.reEncrypt(r)),
        describeBlob: (b) => p.describeBlob(b),
      };
      const rotated = await rewrap(env, {
        provider: spy,
        replace: [{ from: (k) => k.providerId === 'pkcs11' && k.keyVersion === '1', to: { provider: spy, keyId: 'env-rot' } }],
      });
      expect(moved).toBe(1);
      expect(inspectEnvelope(rotated, { providers: [p] }).encryptedDataKeys.find((k) => k.providerId === 'pkcs11')).toMatchObject({ keyId: 'env-rot', keyVersion: '2' });
      expect((await decrypt(rotated, { provider: p, encryptionContext: { t: '1' } })).plaintext).toEqual(msg);
    });

    it('an envelope made in another process decrypts here, and one made here decrypts in another process', async () => {
      const tsx = path.join(root, 'node_modules/tsx/dist/cli.mjs');
      const child = path.join(root, 'test/pkcs11-child.ts');
      const env = { ...process.env, SOFTHSM2_CONF: hsm.conf, EK_PKCS11_TEST_PIN: TEST_PIN };
      const args = (mode: string, data = '') => [tsx, '--conditions=envelope-kit-source', child, mode, SOFTHSM2_MODULE, TOKEN, data];
      const made = await run(process.execPath, args('encrypt', 'made elsewhere'), { env, cwd: root, timeout: 60_000 });
      const envelope = Buffer.from(made.stdout.trim(), 'base64');
      const out = await decrypt(envelope, { provider: gcm, encryptionContext: { origin: 'child' } });
      expect(new TextDecoder().decode(out.plaintext)).toBe('made elsewhere');

      const here = await encrypt(new TextEncoder().encode('made here'), { provider: kwp, keyId: 'main', encryptionContext: { origin: 'child' } });
      const opened = await run(process.execPath, args('decrypt', Buffer.from(here).toString('base64')), { env, cwd: root, timeout: 60_000 });
      expect(opened.stdout.trim()).toBe('made here');
    });

    it('importing envelope-kit/pkcs11 loads no binding; the first call does', async () => {
      const tsx = path.join(root, 'node_modules/tsx/dist/cli.mjs');
      const child = path.join(root, 'test/pkcs11-child.ts');
      const env = { ...process.env, SOFTHSM2_CONF: hsm.conf, EK_PKCS11_TEST_PIN: TEST_PIN };
      const { stdout } = await run(process.execPath, [tsx, '--conditions=envelope-kit-source', child, 'lazy', SOFTHSM2_MODULE, TOKEN, ''], { env, cwd: root, timeout: 60_000 });
      expect(stdout.trim()).toBe('before: false, after: true');
    });
  });

  describe('properties', () => {
    const context = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 5 });
    it('any data key length and context round-trip through both schemes, and any other context is refused', async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 1024 }), context, context, fc.boolean(), async (n, ctx, other, useKwp) => {
          const p = useKwp ? kwp : gcm;
          const dk = await p.generateDataKey({ keyId: 'main', numberOfBytes: n, encryptionContext: ctx });
          expect(dk.plaintext.length).toBe(n);
          expect((await p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: ctx })).plaintext).toEqual(dk.plaintext);
          const same = JSON.stringify(Object.entries(ctx).sort()) === JSON.stringify(Object.entries(other).sort());
          if (!same) expect(await failure(p.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: other }))).toBeInstanceOf(DecryptionFailedError);
        }),
        { numRuns: runs(40) },
      );
    });

    it('encrypt of any bytes round-trips, and any single flipped bit of its blob is refused', async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 1024 }), fc.boolean(), fc.nat(), async (bytes, useKwp, flip) => {
          const p = useKwp ? kwp : gcm;
          const w = await p.encrypt({ keyId: 'main', plaintext: bytes });
          expect((await p.decrypt({ ciphertextBlob: w.ciphertextBlob })).plaintext).toEqual(bytes);
          const t = w.ciphertextBlob.slice();
          const bit = flip % (t.length * 8);
          t[bit >> 3]! ^= 1 << (bit & 7);
          const e = await failure(p.decrypt({ ciphertextBlob: t }));
          expect(e instanceof DecryptionFailedError || e instanceof KeyNotFoundError).toBe(true);
        }),
        { numRuns: runs(40) },
      );
    });
  });
});

type Method = (...args: unknown[]) => unknown;

/** The real binding, with some methods of its PKCS11 objects replaced (`(real) => replacement`). */
function bindingWith(overrides: Record<string, (real: Method) => Method>): Pkcs11Binding {
  const Real = binding.PKCS11;
  class Patched extends (Real as unknown as new () => Record<string, Method>) {
    constructor() {
      super();
      for (const [name, make] of Object.entries(overrides)) {
        const real = (this[name] as Method).bind(this);
        this[name] = make(real);
      }
    }
  }
  return { PKCS11: Patched as unknown as Pkcs11Binding['PKCS11'], CK_PARAMS_GCM: binding.CK_PARAMS_GCM };
}
