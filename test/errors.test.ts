/**
 * Errors: one test per code the core throws; the class hierarchy, names and
 * fixed decryption message; hostile arguments to every public function give
 * the library's own errors only; no message or inspect output carries key
 * material or plaintext.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import util from 'node:util';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DECRYPTION_FAILED_MESSAGE,
  DecryptionFailedError,
  EnvelopeKitError,
  type ErrorCode,
  FieldNotFoundError,
  InvalidParameterError,
  KeyDisabledError,
  KeyNotFoundError,
  type KeyProvider,
  KeyringFileError,
  LocalKeyring,
  MalformedEnvelopeError,
  NoMatchingProviderError,
  ProviderError,
  UnsupportedVersionError,
  checkAlias,
  checkDecryptRequest,
  checkGenerateDataKeyRequest,
  checkKeyId,
  checkKeySpec,
  decrypt,
  decryptText,
  encrypt,
  encryptText,
  envelopeFromText,
  envelopeToText,
  inspect,
  isProviderId,
  parseKeyring,
  serializeKeyring,
} from '../src/index.js';
import * as nodeEntry from '../src/index.js';
import { loadKeyring, saveKeyring, writeFileAtomic } from '../src/node.js';
import { RecordingProvider, expectCode, expectNoSecret, expectOnlyOwnErrors, numRuns, onlyKeyIdsChanged, utf8 } from './core-helpers.js';

const FAST_SCRYPT = { N: 2 ** 14, r: 8, p: 1 };

function keyringWithKey() {
  const keyring = new LocalKeyring();
  const { keyId } = keyring.createKey({ alias: 'alias/err' });
  return { keyring, keyId };
}

describe('one test per error code', () => {
  it('ERR_INVALID_PARAMETER: a bad argument', async () => {
    const { keyring } = keyringWithKey();
    const e = await expectCode(() => encrypt(utf8('x'), { provider: keyring, keyId: '' }), 'ERR_INVALID_PARAMETER');
    expect(e).toBeInstanceOf(InvalidParameterError);
    expect(e.message).toContain('keyId');
  });

  it('ERR_MALFORMED_ENVELOPE: bytes that are not an envelope', async () => {
    const { keyring } = keyringWithKey();
    const e = await expectCode(() => decrypt(utf8('hello world, not an envelope'), { provider: keyring }), 'ERR_MALFORMED_ENVELOPE');
    expect(e).toBeInstanceOf(MalformedEnvelopeError);
  });

  it('ERR_UNSUPPORTED_VERSION: a version 2 envelope', async () => {
    const { keyring, keyId } = keyringWithKey();
    const env = await encrypt(utf8('x'), { provider: keyring, keyId });
    env[2] = 2;
    const e = await expectCode(() => decrypt(env, { provider: keyring }), 'ERR_UNSUPPORTED_VERSION');
    expect(e).toBeInstanceOf(UnsupportedVersionError);
    expect(e.message).toBe('unsupported version 0x02');
  });

  it('ERR_NO_MATCHING_PROVIDER: no provider for the envelope\u2019s data keys', async () => {
    const { keyring, keyId } = keyringWithKey();
    const env = await encrypt(utf8('x'), { provider: keyring, keyId });
    const other = { providerId: 'other', generateDataKey: keyring.generateDataKey.bind(keyring), decrypt: keyring.decrypt.bind(keyring) };
    expect(await expectCode(() => decrypt(env, { provider: other }), 'ERR_NO_MATCHING_PROVIDER')).toBeInstanceOf(NoMatchingProviderError);
  });

  it('ERR_KEY_NOT_FOUND: an unknown key on encrypt and on decrypt', async () => {
    const { keyring, keyId } = keyringWithKey();
    expect(await expectCode(() => encrypt(utf8('x'), { provider: keyring, keyId: 'zzzzzz' }), 'ERR_KEY_NOT_FOUND')).toBeInstanceOf(KeyNotFoundError);
    const env = await encrypt(utf8('x'), { provider: keyring, keyId });
    await expectCode(() => decrypt(env, { provider: new LocalKeyring() }), 'ERR_KEY_NOT_FOUND');
  });

  it('ERR_KEY_DISABLED: a disabled key', async () => {
    const { keyring, keyId } = keyringWithKey();
    keyring.disableKey(keyId);
    expect(await expectCode(() => encrypt(utf8('x'), { provider: keyring, keyId }), 'ERR_KEY_DISABLED')).toBeInstanceOf(KeyDisabledError);
  });

  it('ERR_DECRYPTION_FAILED: a tampered envelope', async () => {
    const { keyring, keyId } = keyringWithKey();
    const env = await encrypt(utf8('x'), { provider: keyring, keyId });
    env[env.length - 1]! ^= 1;
    const e = await expectCode(() => decrypt(env, { provider: keyring }), 'ERR_DECRYPTION_FAILED');
    expect(e).toBeInstanceOf(DecryptionFailedError);
  });

  it('ERR_PROVIDER: a provider that returns garbage or throws a foreign error', async () => {
    const { keyring, keyId } = keyringWithKey();
    const env = await encrypt(utf8('x'), { provider: keyring, keyId });
    const throwingProxy = new Proxy({}, { get: () => { throw new Error('boom'); } });
    const answers: unknown[] = [
      null,
      undefined,
      42,
      'key',
      {},
      { keyId, plaintext: 'not bytes', ciphertextBlob: new Uint8Array(8) },
      { keyId, plaintext: [...new Uint8Array(32)], ciphertextBlob: new Uint8Array(8) },
      { keyId: '', plaintext: new Uint8Array(32), ciphertextBlob: new Uint8Array(8) },
      throwingProxy,
    ];
    for (const answer of answers) {
      const bad: KeyProvider = {
        providerId: 'local',
        generateDataKey: async () => answer as never,
        decrypt: async () => answer as never,
      };
      const e1 = await expectCode(() => encrypt(utf8('x'), { provider: bad, keyId }), 'ERR_PROVIDER');
      expect(e1).toBeInstanceOf(ProviderError);
      await expectCode(() => decrypt(env, { provider: bad }), 'ERR_PROVIDER');
    }
    const thrower: KeyProvider = {
      providerId: 'local',
      generateDataKey: async () => {
        throw new TypeError('network down');
      },
      decrypt: () => {
        throw new RangeError('sync throw');
      },
    };
    const e = await expectCode(() => encrypt(utf8('x'), { provider: thrower, keyId }), 'ERR_PROVIDER');
    expect((e.cause as Error).message).toBe('network down');
    await expectCode(() => decrypt(env, { provider: thrower }), 'ERR_PROVIDER');
    const rejectsWithString: KeyProvider = { providerId: 'local', generateDataKey: () => Promise.reject('nope'), decrypt: () => Promise.reject('nope') };
    await expectCode(() => encrypt(utf8('x'), { provider: rejectsWithString, keyId }), 'ERR_PROVIDER');
    await expectCode(() => decrypt(env, { provider: rejectsWithString }), 'ERR_PROVIDER');
  });

  it('ERR_KEYRING_FILE: text that is not a keyring file', async () => {
    for (const text of ['', 'not json', '{}', '[]', 'null', '{"format":"envelope-kit/keyring","version":2}']) {
      expect(await expectCode(() => parseKeyring(text, { protection: 'none' }), 'ERR_KEYRING_FILE')).toBeInstanceOf(KeyringFileError);
    }
    await expectCode(() => loadKeyring('/nonexistent/dir/keyring.json', { protection: 'none' }), 'ERR_KEYRING_FILE');
  });

  it('ERR_MALFORMED_VALUE: bytes that are not the canonical encoding of a value', async () => {
    const { MalformedValueError, decodeValue } = await import('../src/index.js');
    for (const b of [Uint8Array.of(), Uint8Array.of(2, 1), Uint8Array.of(1, 0x08, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0)]) {
      expect(await expectCode(() => decodeValue(b), 'ERR_MALFORMED_VALUE')).toBeInstanceOf(MalformedValueError);
    }
  });
});

describe('error classes', () => {
  const samples: [EnvelopeKitError, string, ErrorCode][] = [
    [new InvalidParameterError('m'), 'InvalidParameterError', 'ERR_INVALID_PARAMETER'],
    [new MalformedEnvelopeError('m'), 'MalformedEnvelopeError', 'ERR_MALFORMED_ENVELOPE'],
    [new UnsupportedVersionError('suite', 9), 'UnsupportedVersionError', 'ERR_UNSUPPORTED_VERSION'],
    [new NoMatchingProviderError('m'), 'NoMatchingProviderError', 'ERR_NO_MATCHING_PROVIDER'],
    [new KeyNotFoundError('m'), 'KeyNotFoundError', 'ERR_KEY_NOT_FOUND'],
    [new KeyDisabledError('m'), 'KeyDisabledError', 'ERR_KEY_DISABLED'],
    [new DecryptionFailedError(), 'DecryptionFailedError', 'ERR_DECRYPTION_FAILED'],
    [new ProviderError('m'), 'ProviderError', 'ERR_PROVIDER'],
    [new KeyringFileError('m'), 'KeyringFileError', 'ERR_KEYRING_FILE'],
    [new FieldNotFoundError('emial'), 'FieldNotFoundError', 'ERR_FIELD_NOT_FOUND'],
  ];
  it.each(samples)('%s is an EnvelopeKitError and an Error, named after its class, with its code', (e, name, code) => {
    expect(e).toBeInstanceOf(EnvelopeKitError);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe(name);
    expect(e.constructor.name).toBe(name);
    expect(e.code).toBe(code);
    expect(String(e)).toMatch(new RegExp(`^${name}: `));
  });

  it('keep the cause', () => {
    const cause = new Error('inner');
    expect(new ProviderError('outer', { cause }).cause).toBe(cause);
    expect(new DecryptionFailedError({ cause }).message).toBe(DECRYPTION_FAILED_MESSAGE);
  });

  it('DecryptionFailedError always says exactly "decryption failed", whatever the cause', async () => {
    const { keyring, keyId } = keyringWithKey();
    const env = await encrypt(utf8('x'), { provider: keyring, keyId, encryptionContext: { a: 'b' } });
    const failures: unknown[] = [];
    const catchIt = async (f: () => Promise<unknown>) => failures.push(await f().catch((e: unknown) => e));
    for (let i = 5; i < env.length; i++) {
      const t = env.slice();
      t[i]! ^= 0x10;
      // SPEC.md §9.13: a key id beside the blob is not authenticated; changed, it decrypts to the same plaintext
      if (onlyKeyIdsChanged(env, t)) {
        const r = await decrypt(t, { provider: keyring }).catch((e: unknown) => e);
        if (!(r instanceof EnvelopeKitError)) {
          expect(r).toMatchObject({ plaintext: utf8('x'), keyId });
          continue;
        }
      }
      await catchIt(() => decrypt(t, { provider: keyring }));
    }
    await catchIt(() => decrypt(env, { provider: keyring, encryptionContext: { a: 'c' } }));
    await catchIt(() => keyring.decrypt({ ciphertextBlob: new Uint8Array(40) }));
    await catchIt(() => keyring.decrypt({ ciphertextBlob: Uint8Array.from([2, 1, 0x61]) }));
    const df = failures.filter((e): e is DecryptionFailedError => e instanceof DecryptionFailedError);
    expect(df.length).toBeGreaterThan(env.length / 2);
    for (const e of df) {
      expect(e.message).toBe('decryption failed');
      expect(e.code).toBe('ERR_DECRYPTION_FAILED');
    }
    // no other kind of failure carries information that DecryptionFailedError hides
    for (const e of failures) expect(e).toBeInstanceOf(EnvelopeKitError);
  });
});

// ---------------------------------------------------------------------------
// Hostile arguments
// ---------------------------------------------------------------------------

const allTrapsThrow: ProxyHandler<object> = {
  get: () => {
    throw new Error('get trap');
  },
  has: () => {
    throw new Error('has trap');
  },
  ownKeys: () => {
    throw new Error('ownKeys trap');
  },
  getPrototypeOf: () => {
    throw new Error('getPrototypeOf trap');
  },
  getOwnPropertyDescriptor: () => {
    throw new Error('getOwnPropertyDescriptor trap');
  },
};
const revocable = Proxy.revocable({}, {});
revocable.revoke();

function hostileValues(): [string, unknown][] {
  const getters = Object.defineProperties(
    {},
    Object.fromEntries(
      ['provider', 'providers', 'keyId', 'keySpec', 'numberOfBytes', 'encryptionContext', 'aead', 'ciphertextBlob', 'alias', 'description', 'passphrase', 'scrypt', 'maxEncryptedDataKeys', 'keys', 'aliases', 'fields', 'recordId', 'schema', 'maxDepth', 'concurrency', 'blindIndexes', 'allowPlaintextFields', 'onPlaintextField', 'name', 'bits', 'normalize', 'headerField'].map((k) => [
        k,
        {
          enumerable: true,
          get() {
            throw new Error(`getter ${k}`);
          },
        },
      ]),
    ),
  );
  return [
    ['undefined', undefined],
    ['null', null],
    ['0', 0],
    ['-0', -0],
    ['-1', -1],
    ['1.5', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Infinity],
    ['2**53', 2 ** 53],
    ['MAX_VALUE', Number.MAX_VALUE],
    ['bigint', 10n],
    ['empty string', ''],
    ['long string', 'x'.repeat(100_000)],
    ['lone surrogate', '\ud800'],
    ['symbol', Symbol('s')],
    ['true', true],
    ['[]', []],
    ['[1,2]', [1, 2]],
    ['{}', {}],
    ['null-proto', Object.create(null)],
    ['function', () => 1],
    ['Map', new Map([['a', 'b']])],
    ['invalid Date', new Date(Number.NaN)],
    ['ArrayBuffer', new ArrayBuffer(8)],
    ['DataView', new DataView(new ArrayBuffer(8))],
    ['Uint16Array', new Uint16Array(4)],
    ['Int8Array', new Int8Array(4)],
    ['fake huge length', { length: 2 ** 53, 0: 1 }],
    ['negative length', { length: -1 }],
    ['all traps throw', new Proxy({}, allTrapsThrow)],
    ['revoked proxy', revocable.proxy],
    ['proxy of Uint8Array', new Proxy(new Uint8Array(8), {})],
    ['throwing proxy of Uint8Array', new Proxy(new Uint8Array(8), allTrapsThrow)],
    ['throwing getters', getters],
    ['frozen', Object.freeze({ a: 'b' })],
    ['Error', new Error('x')],
  ];
}

interface Target {
  readonly name: string;
  /** Call the public function with `v` in one argument position (the others valid). */
  readonly call: (v: unknown) => unknown;
  /** Skip values the target legitimately accepts as a real input (e.g. strings as file paths). */
  readonly skip?: (v: unknown) => boolean;
}

const tmp = await mkdtemp(path.join(tmpdir(), 'ek-errors-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

const base = keyringWithKey();
const validEnvelope = await encrypt(utf8('x'), { provider: base.keyring, keyId: base.keyId });
const validText = envelopeToText(validEnvelope);
const validBlob = (await base.keyring.generateDataKey({ keyId: base.keyId })).ciphertextBlob;
const keyringText = await serializeKeyring(base.keyring, { protection: 'none' });
const keyringFile = path.join(tmp, 'k.json');
await saveKeyring(keyringFile, base.keyring, { protection: 'none' });
const isString = (v: unknown) => typeof v === 'string';

function targets(api: { encrypt: typeof encrypt; decrypt: typeof decrypt; encryptText: typeof encryptText; decryptText: typeof decryptText; LocalKeyring: typeof LocalKeyring }): Target[] {
  const { keyring, keyId } = base;
  const fresh = () => {
    const k = new api.LocalKeyring();
    k.createKey({ alias: 'alias/a' });
    return k;
  };
  const pt = utf8('x');
  return [
    { name: 'encrypt(plaintext)', call: (v) => api.encrypt(v as never, { provider: keyring, keyId }) },
    { name: 'encrypt(options)', call: (v) => api.encrypt(pt, v as never) },
    { name: 'encrypt({provider})', call: (v) => api.encrypt(pt, { provider: v as never, keyId }) },
    { name: 'encrypt({keyId})', call: (v) => api.encrypt(pt, { provider: keyring, keyId: v as never }) },
    { name: 'encrypt({encryptionContext})', call: (v) => api.encrypt(pt, { provider: keyring, keyId, encryptionContext: v as never }) },
    { name: 'encrypt({keySpec})', call: (v) => api.encrypt(pt, { provider: keyring, keyId, keySpec: v as never }) },
    { name: 'encrypt({aead})', call: (v) => api.encrypt(pt, { provider: keyring, keyId, aead: v as never }) },
    { name: 'encryptText(plaintext)', call: (v) => api.encryptText(v as never, { provider: keyring, keyId }) },
    { name: 'encryptText(options)', call: (v) => api.encryptText(pt, v as never) },
    { name: 'decrypt(envelope)', call: (v) => api.decrypt(v as never, { provider: keyring }) },
    { name: 'decrypt(options)', call: (v) => api.decrypt(validEnvelope, v as never) },
    { name: 'decrypt({provider})', call: (v) => api.decrypt(validEnvelope, { provider: v as never }) },
    { name: 'decrypt({providers})', call: (v) => api.decrypt(validEnvelope, { providers: v as never }) },
    { name: 'decrypt({providers: [v]})', call: (v) => api.decrypt(validEnvelope, { providers: [v as never] }) },
    { name: 'decrypt({encryptionContext})', call: (v) => api.decrypt(validEnvelope, { provider: keyring, encryptionContext: v as never }) },
    { name: 'decrypt({maxEncryptedDataKeys})', call: (v) => api.decrypt(validEnvelope, { provider: keyring, maxEncryptedDataKeys: v as never }) },
    { name: 'decrypt({aead})', call: (v) => api.decrypt(validEnvelope, { provider: keyring, aead: v as never }) },
    { name: 'decryptText(text)', call: (v) => api.decryptText(v as never, { provider: keyring }) },
    { name: 'decryptText(options)', call: (v) => api.decryptText(validText, v as never) },
    { name: 'inspect(envelope)', call: (v) => inspect(v as never) },
    { name: 'inspect(options)', call: (v) => inspect(validEnvelope, v as never) },
    { name: 'inspect({maxEncryptedDataKeys})', call: (v) => inspect(validEnvelope, { maxEncryptedDataKeys: v as never }) },
    { name: 'envelopeToText', call: (v) => envelopeToText(v as never) },
    { name: 'envelopeFromText', call: (v) => envelopeFromText(v as never) },
    { name: 'checkAlias', call: (v) => checkAlias(v) },
    { name: 'checkKeyId', call: (v) => checkKeyId(v) },
    { name: 'checkKeySpec', call: (v) => checkKeySpec(v) },
    { name: 'checkGenerateDataKeyRequest', call: (v) => checkGenerateDataKeyRequest(v) },
    { name: 'checkDecryptRequest', call: (v) => checkDecryptRequest(v) },
    { name: 'checkDecryptRequest({ciphertextBlob})', call: (v) => checkDecryptRequest({ ciphertextBlob: v }) },
    {
      name: 'isProviderId',
      call: (v) => {
        if (typeof isProviderId(v) !== 'boolean') throw new Error('not a boolean');
      },
    },
    { name: 'new LocalKeyring(options)', call: (v) => new api.LocalKeyring(v as never).createKey() },
    { name: 'new LocalKeyring({aead})', call: async (v) => {
      const k = new api.LocalKeyring({ aead: v as never });
      await k.generateDataKey({ keyId: k.createKey().keyId });
    } },
    { name: 'LocalKeyring.fromState(state)', call: (v) => api.LocalKeyring.fromState(v as never) },
    { name: 'LocalKeyring.fromState({keys})', call: (v) => api.LocalKeyring.fromState({ keys: v as never, aliases: {} }) },
    { name: 'LocalKeyring.fromState({aliases})', call: (v) => api.LocalKeyring.fromState({ keys: [], aliases: v as never }) },
    { name: 'LocalKeyring.fromState({keys: [v]})', call: (v) => api.LocalKeyring.fromState({ keys: [v as never], aliases: {} }) },
    { name: 'LocalKeyring.fromState(state, options)', call: (v) => api.LocalKeyring.fromState(keyring.exportState(), v as never) },
    { name: 'createKey(options)', call: (v) => fresh().createKey(v as never) },
    { name: 'createKey({alias})', call: (v) => fresh().createKey({ alias: v as never }) },
    { name: 'createKey({description})', call: (v) => fresh().createKey({ description: v as never }) },
    ...(['resolveKeyId', 'describeKey', 'rotateKey', 'enableKey', 'disableKey', 'scheduleKeyDeletion', 'cancelKeyDeletion', 'deleteKeyMaterial', 'deleteAlias'] as const).map(
      (m): Target => ({ name: `keyring.${m}`, call: (v) => fresh()[m](v as never) }),
    ),
    { name: 'createAlias(alias)', call: (v) => fresh().createAlias(v as never, 'alias/a') },
    { name: 'createAlias(_, key)', call: (v) => fresh().createAlias('alias/b', v as never) },
    { name: 'updateAlias(alias)', call: (v) => fresh().updateAlias(v as never, 'alias/a') },
    { name: 'updateAlias(_, key)', call: (v) => fresh().updateAlias('alias/a', v as never) },
    { name: 'generateDataKey(request)', call: (v) => keyring.generateDataKey(v as never) },
    { name: 'generateDataKey({keyId})', call: (v) => keyring.generateDataKey({ keyId: v as never }) },
    { name: 'generateDataKey({keySpec})', call: (v) => keyring.generateDataKey({ keyId, keySpec: v as never }) },
    { name: 'generateDataKey({numberOfBytes})', call: (v) => keyring.generateDataKey({ keyId, numberOfBytes: v as never }) },
    { name: 'generateDataKey({encryptionContext})', call: (v) => keyring.generateDataKey({ keyId, encryptionContext: v as never }) },
    { name: 'keyring.decrypt(request)', call: (v) => keyring.decrypt(v as never) },
    { name: 'keyring.decrypt({ciphertextBlob})', call: (v) => keyring.decrypt({ ciphertextBlob: v as never }) },
    { name: 'keyring.decrypt({encryptionContext})', call: (v) => keyring.decrypt({ ciphertextBlob: validBlob, encryptionContext: v as never }) },
    { name: 'serializeKeyring(keyring)', call: (v) => serializeKeyring(v as never) },
    { name: 'serializeKeyring(_, options)', call: (v) => serializeKeyring(keyring, v as never) },
    { name: 'serializeKeyring({passphrase})', call: (v) => serializeKeyring(keyring, { passphrase: v as never, scrypt: FAST_SCRYPT }) },
    // nullish falls back to the (slow) default cost: covered by the file tests
    { name: 'serializeKeyring({scrypt})', call: (v) => serializeKeyring(keyring, { passphrase: 'p', scrypt: v as never }), skip: (v) => v == null },
    { name: 'serializeKeyring({aead})', call: (v) => serializeKeyring(keyring, { passphrase: 'p', scrypt: FAST_SCRYPT, aead: v as never }) },
    { name: 'parseKeyring(text)', call: (v) => parseKeyring(v as never) },
    { name: 'parseKeyring(_, options)', call: (v) => parseKeyring(keyringText, v as never) },
    { name: 'parseKeyring({aead})', call: (v) => parseKeyring(keyringText, { protection: 'none', aead: v as never }) },
    { name: 'parseKeyring({protection})', call: (v) => parseKeyring(keyringText, { protection: v as never }) },
    { name: 'parseKeyring({minGeneration})', call: (v) => parseKeyring(keyringText, { protection: 'none', minGeneration: v as never }) },
    { name: 'serializeKeyring({protection})', call: (v) => serializeKeyring(keyring, { protection: v as never }) },
    { name: 'saveKeyring(path)', call: (v) => saveKeyring(v as never, keyring), skip: isString },
    { name: 'saveKeyring(_, keyring)', call: (v) => saveKeyring(path.join(tmp, 's.json'), v as never) },
    { name: 'saveKeyring(_, _, options)', call: (v) => saveKeyring(path.join(tmp, 's.json'), keyring, v as never) },
    { name: 'saveKeyring({previousPassphrase})', call: (v) => saveKeyring(path.join(tmp, 's.json'), keyring, { protection: 'none', previousPassphrase: v as never }) },
    { name: 'saveKeyring({discardExistingKeys})', call: (v) => saveKeyring(path.join(tmp, 's.json'), keyring, { protection: 'none', discardExistingKeys: v as never }) },
    { name: 'loadKeyring(path)', call: (v) => loadKeyring(v as never) },
    { name: 'loadKeyring(_, options)', call: (v) => loadKeyring(keyringFile, v as never) },
    { name: 'writeFileAtomic(path)', call: (v) => writeFileAtomic(v as never, 'data'), skip: isString },
    { name: 'writeFileAtomic(_, data)', call: (v) => writeFileAtomic(path.join(tmp, 'w.txt'), v as never) },
  ];
}

const coreApi = { encrypt, decrypt, encryptText, decryptText, LocalKeyring };
const nodeApi = {
  encrypt: nodeEntry.encrypt,
  decrypt: nodeEntry.decrypt,
  encryptText: nodeEntry.encryptText,
  decryptText: nodeEntry.decryptText,
  LocalKeyring: nodeEntry.LocalKeyring,
};

async function foreignErrors(list: Target[], values: [string, unknown][]): Promise<string[]> {
  const escaped: string[] = [];
  for (const t of list) {
    for (const [label, v] of values) {
      if (t.skip?.(v)) continue;
      try {
        await expectOnlyOwnErrors(() => t.call(v));
      } catch (e) {
        escaped.push(`${t.name} <- ${label}: ${(e as Error).message}`);
      }
    }
  }
  return escaped;
}

describe('hostile arguments give only EnvelopeKitError', () => {
  it('every public function of the portable entry and envelope-kit/node', async () => {
    expect(await foreignErrors(targets(coreApi), hostileValues())).toEqual([]);
  });

  const nodeTargets = () => targets(nodeApi).filter((t) => /^(encrypt|decrypt|encryptText|decryptText)\(|LocalKeyring/.test(t.name));
  const readingThrows = new Set(['all traps throw', 'revoked proxy', 'throwing proxy of Uint8Array', 'throwing getters']);

  it('the Node entry\u2019s wrappers', async () => {
    expect(nodeTargets().length).toBeGreaterThan(20);
    expect(await foreignErrors(nodeTargets(), hostileValues().filter(([label]) => !readingThrows.has(label)))).toEqual([]);
  });

  it('the Node entry\u2019s wrappers with options whose reading throws', async () => {
    expect(await foreignErrors(nodeTargets(), hostileValues().filter(([label]) => readingThrows.has(label)))).toEqual([]);
  });

  it('property: fc.anything() in every argument position', async () => {
    const list = targets(coreApi);
    await fc.assert(
      fc.asyncProperty(fc.nat(list.length - 1), fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withObjectString: true, withBoxedValues: true, withSparseArray: true }), async (i, v) => {
        expect(await foreignErrors([list[i]!], [['anything', v]])).toEqual([]);
      }),
      { numRuns: numRuns(400) },
    );
  });

  it('calls that must fail do fail, with InvalidParameterError or MalformedEnvelopeError', async () => {
    const { keyring, keyId } = base;
    await expectCode(() => encrypt(null as never, { provider: keyring, keyId }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => encrypt('text' as never, { provider: keyring, keyId }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => encrypt(new Proxy(new Uint8Array(4), {}) as never, { provider: keyring, keyId }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => encrypt(utf8('x'), null as never), 'ERR_INVALID_PARAMETER');
    await expectCode(() => encrypt(utf8('x'), new Proxy({}, allTrapsThrow) as never), 'ERR_INVALID_PARAMETER');
    await expectCode(() => encrypt(utf8('x'), { provider: keyring, keyId, encryptionContext: new Proxy({}, allTrapsThrow) as never }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => encrypt(utf8('x'), { provider: keyring, keyId, encryptionContext: revocable.proxy as never }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => decrypt(null as never, { provider: keyring }), 'ERR_MALFORMED_ENVELOPE');
    await expectCode(() => decrypt(new Proxy(validEnvelope, {}) as never, { provider: keyring }), 'ERR_MALFORMED_ENVELOPE');
    await expectCode(() => decrypt(validEnvelope, {} as never), 'ERR_INVALID_PARAMETER');
    await expectCode(() => decrypt(validEnvelope, { providers: revocable.proxy as never }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => decryptText(42 as never, { provider: keyring }), 'ERR_MALFORMED_ENVELOPE');
    await expectCode(() => inspect(new Proxy({}, allTrapsThrow) as never), 'ERR_MALFORMED_ENVELOPE');
    await expectCode(() => envelopeToText('abc' as never), 'ERR_INVALID_PARAMETER');
    await expectCode(() => keyring.decrypt({ ciphertextBlob: new Proxy(validBlob, {}) as never }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => new LocalKeyring({ aead: 'fast' as never }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => LocalKeyring.fromState(null as never), 'ERR_INVALID_PARAMETER');
    await expectCode(() => keyring.createKey(new Proxy({}, allTrapsThrow) as never), 'ERR_INVALID_PARAMETER');
    await expectCode(() => serializeKeyring(keyring, { passphrase: 'p', scrypt: { N: 2 ** 40, r: 8, p: 1 } }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => serializeKeyring(keyring, { passphrase: '', scrypt: FAST_SCRYPT }), 'ERR_INVALID_PARAMETER');
  });

  it('a provider whose getters throw is rejected as a parameter, not called', async () => {
    const provider = new Proxy({}, allTrapsThrow) as KeyProvider;
    await expectCode(() => encrypt(utf8('x'), { provider, keyId: base.keyId }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => decrypt(validEnvelope, { provider }), 'ERR_INVALID_PARAMETER');
    for (const providerId of ['', 'Local', 'a b', 'x'.repeat(65), 5, null]) {
      const p = { providerId, generateDataKey: base.keyring.generateDataKey.bind(base.keyring), decrypt: base.keyring.decrypt.bind(base.keyring) };
      await expectCode(() => encrypt(utf8('x'), { provider: p as never, keyId: base.keyId }), 'ERR_INVALID_PARAMETER');
    }
  });
});

// ---------------------------------------------------------------------------
// No key material or plaintext in messages and inspect output
// ---------------------------------------------------------------------------

describe('no key material or plaintext in errors or inspect output', () => {
  it('across every failure path of encrypt, decrypt, the keyring and keyring files', async () => {
    const keyring = new LocalKeyring();
    const { keyId } = keyring.createKey({ alias: 'alias/leak', description: 'leak test' });
    keyring.rotateKey(keyId);
    const provider = new RecordingProvider(keyring);
    const marker = 'PLAINTEXT-MARKER-7f3a';
    const env = await encrypt(utf8(marker), { provider, keyId, encryptionContext: { a: 'b' } });
    const masters = keyring.exportState().keys.flatMap((k) => k.versions.map((v) => v.material));
    const dataKey = provider.copies[0]!;
    const fileText = await serializeKeyring(keyring, { protection: 'none' });
    const sealedText = await serializeKeyring(keyring, { passphrase: 'pw', scrypt: FAST_SCRYPT });

    const errors: unknown[] = [];
    const collect = async (f: () => unknown) => {
      try {
        await f();
      } catch (e) {
        errors.push(e);
      }
    };
    for (let i = 0; i < env.length; i += 3) {
      const t = env.slice();
      t[i]! ^= 0x41;
      await collect(() => decrypt(t, { provider }));
    }
    await collect(() => decrypt(env, { provider, encryptionContext: { a: 'c' } }));
    await collect(() => decrypt(env.subarray(0, env.length - 1), { provider }));
    // keyring files: JSON errors, schema errors, checksum and seal failures, at many positions
    for (let i = 0; i < fileText.length; i += 7) {
      await collect(() => parseKeyring(fileText.slice(0, i) + 'x' + fileText.slice(i + 1), { protection: 'none' }));
      await collect(() => parseKeyring(fileText.slice(0, i) + '"' + fileText.slice(i + 1), { protection: 'none' }));
      await collect(() => parseKeyring(fileText.slice(0, i), { protection: 'none' }));
    }
    await collect(() => parseKeyring(sealedText, { passphrase: 'wrong' }));
    await collect(() => parseKeyring(sealedText));
    await collect(() => parseKeyring(sealedText.replace(/"material": "./, '"material": "!')));
    await collect(() => encrypt(utf8(marker), { provider: keyring, keyId: 'alias/none' }));
    keyring.disableKey(keyId);
    await collect(() => decrypt(env, { provider: keyring }));

    expect(errors.length).toBeGreaterThan(100);
    for (const e of errors) {
      expect(e).toBeInstanceOf(EnvelopeKitError);
      const shown = [String(e), (e as Error).message, util.inspect(e, { depth: 10, showHidden: true }), JSON.stringify(e)].join('\n');
      for (const m of masters) expectNoSecret(shown, m, `${(e as Error).name}: ${(e as Error).message}`);
      expectNoSecret(shown, dataKey, (e as Error).message);
      expect(shown).not.toContain(marker);
      expect(shown).not.toContain(Buffer.from(marker).toString('hex'));
    }
    // and the keyring itself never shows its material
    for (const m of masters) {
      expectNoSecret(util.inspect(keyring, { depth: 10, showHidden: true }), m);
      expectNoSecret(JSON.stringify(keyring), m);
    }
  });
});

// ---------------------------------------------------------------------------
// Hostile arguments to the records API
// ---------------------------------------------------------------------------

describe('hostile arguments to the records API give only EnvelopeKitError', () => {
  const records = async () => {
    const api = await import('../src/index.js');
    const { keyring, keyId } = base;
    const obj = await api.encryptObject({ a: 1 }, { provider: keyring, keyId });
    const rec = await api.encryptFields({ id: 1, ssn: 'x' }, { provider: keyring, keyId, fields: ['ssn'], recordId: 1 });
    const idxKey = await api.createBlindIndexKey({ provider: keyring, keyId, name: 'n' });
    const list: Target[] = [
      { name: 'encryptObject(options)', call: (v) => api.encryptObject({ a: 1 }, v as never) },
      { name: 'encryptObject({maxDepth})', call: (v) => api.encryptObject([[1]], { provider: keyring, keyId, maxDepth: v as never }) },
      { name: 'decryptObject(text)', call: (v) => api.decryptObject(v as never, { provider: keyring }) },
      { name: 'decryptObject(options)', call: (v) => api.decryptObject(obj, v as never) },
      { name: 'decryptObject({schema})', call: (v) => api.decryptObject(obj, { provider: keyring, schema: v as never }) },
      { name: 'encryptObjects(values)', call: (v) => api.encryptObjects(v as never, { provider: keyring, keyId }) },
      { name: 'encryptObjects({concurrency})', call: (v) => api.encryptObjects([1], { provider: keyring, keyId, concurrency: v as never }) },
      { name: 'decryptObjects(texts)', call: (v) => api.decryptObjects(v as never, { provider: keyring }) },
      { name: 'encryptFields(record)', call: (v) => api.encryptFields(v as never, { provider: keyring, keyId, fields: ['ssn'] }) },
      { name: 'encryptFields(options)', call: (v) => api.encryptFields({ ssn: 'x' }, v as never) },
      { name: 'encryptFields({fields})', call: (v) => api.encryptFields({ ssn: 'x' }, { provider: keyring, keyId, fields: v as never }) },
      { name: 'encryptFields({fields: [v]})', call: (v) => api.encryptFields({ ssn: 'x' }, { provider: keyring, keyId, fields: [v as never] }) },
      { name: 'encryptFields({recordId})', call: (v) => api.encryptFields({ ssn: 'x' }, { provider: keyring, keyId, fields: ['ssn'], recordId: v as never }) },
      { name: 'encryptFields({blindIndexes})', call: (v) => api.encryptFields({ ssn: 'x' }, { provider: keyring, keyId, fields: ['ssn'], blindIndexes: v as never }) },
      { name: 'encryptFields({headerField})', call: (v) => api.encryptFields({ ssn: 'x' }, { provider: keyring, keyId, fields: ['ssn'], headerField: v as never }) },
      { name: 'decryptFields({headerField})', call: (v) => api.decryptFields(rec, { provider: keyring, fields: ['ssn'], recordId: 1, headerField: v as never }) },
      { name: 'decryptFields(compact, {_ek: v})', call: (v) => api.decryptFields({ ssn: 'ekf1.AAAAAAAAAAAAAAAAAAAAAA', _ek: v }, { provider: keyring, fields: ['ssn'], headerField: '_ek' }) },
      { name: 'decryptFields(record)', call: (v) => api.decryptFields(v as never, { provider: keyring, fields: ['ssn'], recordId: 1 }) },
      { name: 'decryptFields(options)', call: (v) => api.decryptFields(rec, v as never) },
      { name: 'decryptFields({fields})', call: (v) => api.decryptFields(rec, { provider: keyring, fields: v as never, recordId: 1 }) },
      { name: 'decryptFields({recordId})', call: (v) => api.decryptFields(rec, { provider: keyring, fields: ['ssn'], recordId: v as never }) },
      { name: 'decryptFields({ssn: v})', call: (v) => api.decryptFields({ ...rec, ssn: v }, { provider: keyring, fields: ['ssn'], recordId: 1 }) },
      { name: 'decryptFields({allowPlaintextFields})', call: (v) => api.decryptFields(rec, { provider: keyring, fields: ['ssn'], recordId: 1, allowPlaintextFields: v as never }) },
      { name: 'encryptRecords(records)', call: (v) => api.encryptRecords(v as never, { provider: keyring, keyId, fields: ['ssn'] }) },
      { name: 'encryptRecords({recordId})', call: (v) => api.encryptRecords([{ ssn: 'x' }], { provider: keyring, keyId, fields: ['ssn'], recordId: v as never }) },
      { name: 'createBlindIndexKey(options)', call: (v) => api.createBlindIndexKey(v as never) },
      { name: 'createBlindIndexKey({name})', call: (v) => api.createBlindIndexKey({ provider: keyring, keyId, name: v as never }) },
      { name: 'openBlindIndex(stored)', call: (v) => api.openBlindIndex(v as never, { provider: keyring, name: 'n' }) },
      { name: 'openBlindIndex(options)', call: (v) => api.openBlindIndex(idxKey, v as never) },
      { name: 'openBlindIndex({bits})', call: (v) => api.openBlindIndex(idxKey, { provider: keyring, name: 'n', bits: v as never }) },
      { name: 'openBlindIndex({normalize})', call: (v) => api.openBlindIndex(idxKey, { provider: keyring, name: 'n', normalize: v as never }) },
      { name: 'encodeValue', call: (v) => api.encodeValue(v) },
      { name: 'decodeValue', call: (v) => api.decodeValue(v as never) },
    ];
    return list;
  };

  it('every records function and option', async () => {
    expect(await foreignErrors(await records(), hostileValues())).toEqual([]);
  });

  it('property: fc.anything() in every records argument position', async () => {
    const list = await records();
    await fc.assert(
      fc.asyncProperty(fc.nat(list.length - 1), fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withObjectString: true, withBoxedValues: true, withSparseArray: true }), async (i, v) => {
        expect(await foreignErrors([list[i]!], [['anything', v]])).toEqual([]);
      }),
      { numRuns: numRuns(300) },
    );
  });
});
