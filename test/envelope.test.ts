/**
 * Example tests of the envelope API: they read as documentation of encrypt,
 * decrypt, the text form, inspect, required contexts, several providers and
 * the limit on encrypted data keys.
 */
import { describe, expect, it } from 'vitest';
import { nobleAesGcm } from '../src/core/aead/noble.js';
import { providerContext } from '../src/core/context.js';
import { sealWithDataKey } from '../src/core/envelope.js';
import {
  DECRYPTION_FAILED_MESSAGE,
  DecryptionFailedError,
  FORMAT_LIMITS,
  type KeyProvider,
  LocalKeyring,
  MalformedEnvelopeError,
  NoMatchingProviderError,
  TEXT_PREFIX,
  decrypt,
  decryptText,
  encrypt,
  encryptText,
  envelopeFromText,
  envelopeToText,
  inspect,
} from '../src/index.js';
import * as nodeEntry from '../src/index.js';
import {
  MemoryProvider,
  RecordingProvider,
  b64,
  b64url,
  checkContext,
  expectCode,
  expectNoSecret,
  fromUtf8,
  hex,
  utf8,
} from './core-helpers.js';

function newKeyring(alias = 'alias/users'): { keyring: LocalKeyring; keyId: string } {
  const keyring = new LocalKeyring();
  const { keyId } = keyring.createKey({ alias });
  return { keyring, keyId };
}

/** An envelope whose data key is wrapped by each of `providers` (built below the public API). */
async function multiProviderEnvelope(plaintext: Uint8Array, context: Record<string, string>, providers: MemoryProvider[]): Promise<Uint8Array> {
  const ctx = checkContext(context);
  const dataKey = crypto.getRandomValues(new Uint8Array(32));
  // The blob is bound to the provider context (SPEC.md §3.2.1), the envelope's holds no reserved entry.
  const edks = providers.map((p) => ({ providerId: p.providerId, keyId: p.keyId, blob: p.wrap(dataKey, providerContext(ctx)) }));
  return await sealWithDataKey(nobleAesGcm, dataKey, crypto.getRandomValues(new Uint8Array(16)), ctx, edks, plaintext);
}

describe('backend', () => {
  it('the default AES-GCM backend is the one this runtime gets: node:crypto on Node, @noble/ciphers with WebCrypto for large payloads elsewhere', async ({ task }) => {
    const { defaultAesGcm } = await import('#aead-default');
    expect(defaultAesGcm.name).toBe(task.file.projectName === 'portable' ? 'webcrypto' : 'node');
  });
});

describe('encrypt and decrypt', () => {
  it('round-trips bytes and reports the resolved key id and the full context', async () => {
    const { keyring, keyId } = newKeyring();
    const envelope = await encrypt(utf8('card 4111 1111'), {
      provider: keyring,
      keyId: 'alias/users',
      encryptionContext: { table: 'users', row: '42' },
    });
    const result = await decrypt(envelope, { provider: keyring });
    expect(fromUtf8(result.plaintext)).toBe('card 4111 1111');
    expect(result.keyId).toBe(keyId);
    expect(result.encryptionContext).toEqual({ row: '42', table: 'users' });
  });

  it('writes magic "EK", version 1, suite 1, layout 0', async () => {
    const { keyring, keyId } = newKeyring();
    const envelope = await encrypt(utf8('x'), { provider: keyring, keyId });
    expect([...envelope.subarray(0, 5)]).toEqual([0x45, 0x4b, 0x01, 0x01, 0x00]);
  });

  it('makes a different envelope every time, and each one decrypts', async () => {
    const { keyring, keyId } = newKeyring();
    const a = await encrypt(utf8('same'), { provider: keyring, keyId });
    const b = await encrypt(utf8('same'), { provider: keyring, keyId });
    expect(hex(a)).not.toBe(hex(b));
    expect(inspect(a).messageId).not.toBe(inspect(b).messageId);
    expect(fromUtf8((await decrypt(a, { provider: keyring })).plaintext)).toBe('same');
    expect(fromUtf8((await decrypt(b, { provider: keyring })).plaintext)).toBe('same');
  });

  it('encrypts the empty plaintext', async () => {
    const { keyring, keyId } = newKeyring();
    const envelope = await encrypt(new Uint8Array(0), { provider: keyring, keyId });
    expect((await decrypt(envelope, { provider: keyring })).plaintext).toEqual(new Uint8Array(0));
  });

  it('does not touch the caller\u2019s plaintext and returns a fresh array', async () => {
    const { keyring, keyId } = newKeyring();
    const plaintext = utf8('keep me');
    const envelope = await encrypt(plaintext, { provider: keyring, keyId });
    expect(fromUtf8(plaintext)).toBe('keep me');
    const out = (await decrypt(envelope, { provider: keyring })).plaintext;
    expect(out).not.toBe(plaintext);
    expect(out.buffer).not.toBe(envelope.buffer);
  });

  it('accepts a Buffer as plaintext and as envelope', async () => {
    const { keyring, keyId } = newKeyring();
    const envelope = await encrypt(Buffer.from('buffer in'), { provider: keyring, keyId });
    const { plaintext } = await decrypt(Buffer.from(envelope), { provider: keyring });
    expect(fromUtf8(plaintext)).toBe('buffer in');
  });

  it('reads the envelope once: changing the caller\u2019s buffer while the provider is awaited has no effect', async () => {
    const { keyring, keyId } = newKeyring();
    const original = await encrypt(utf8('stable'), { provider: keyring, keyId, encryptionContext: { a: 'b' } });
    for (const make of [(b: Uint8Array) => b.slice(), (b: Uint8Array) => Buffer.from(b)]) {
      const callerBuffer = make(original);
      const meddler: KeyProvider = {
        providerId: 'local',
        generateDataKey: (r) => keyring.generateDataKey(r),
        async decrypt(r) {
          const answer = await keyring.decrypt(r);
          callerBuffer.fill(0); // the caller reuses its buffer meanwhile
          return answer;
        },
      };
      const { plaintext, encryptionContext } = await decrypt(callerBuffer, { provider: meddler });
      expect(fromUtf8(plaintext)).toBe('stable');
      expect(encryptionContext).toEqual({ a: 'b' });
    }
  });

  it('keeps the overhead for a 200-byte plaintext well under the AWS committing suite (223 bytes)', async () => {
    const { keyring, keyId } = newKeyring();
    const envelope = await encrypt(new Uint8Array(200), { provider: keyring, keyId });
    const overhead = envelope.length - 200;
    expect(overhead).toBeLessThan(223);
    expect(overhead).toBeLessThan(170);
  });

  it('the Node entry (node:crypto) and the portable entry read each other\u2019s envelopes', async () => {
    const keyring = new nodeEntry.LocalKeyring();
    const { keyId } = keyring.createKey();
    const fromNode = await nodeEntry.encrypt(utf8('from node'), { provider: keyring, keyId, encryptionContext: { a: 'b' } });
    expect(fromUtf8((await decrypt(fromNode, { provider: keyring })).plaintext)).toBe('from node');
    const fromCore = await encrypt(utf8('from core'), { provider: keyring, keyId });
    expect(fromUtf8((await nodeEntry.decrypt(fromCore, { provider: keyring })).plaintext)).toBe('from core');
  });

  it('keySpec AES_128 asks the provider for a 16-byte data key and still round-trips', async () => {
    const { keyring, keyId } = newKeyring();
    const provider = new RecordingProvider(keyring);
    const envelope = await encrypt(utf8('short key'), { provider, keyId, keySpec: 'AES_128' });
    expect(provider.copies[0]!.length).toBe(16);
    const { plaintext } = await decrypt(envelope, { provider });
    expect(fromUtf8(plaintext)).toBe('short key');
    expect(provider.copies[1]!.length).toBe(16);
    const e256 = await encrypt(utf8('short key'), { provider, keyId });
    expect(provider.copies[2]!.length).toBe(32);
    expect(e256.length - envelope.length).toBe(16); // the blob carries a 16-byte longer data key
  });
});

describe('text form', () => {
  it('encryptText gives "ek1." + unpadded base64url, safe in JSON, and decryptText reads it', async () => {
    const { keyring, keyId } = newKeyring();
    const text = await encryptText(utf8('in a text column'), { provider: keyring, keyId, encryptionContext: { col: 'notes' } });
    expect(text.startsWith(TEXT_PREFIX)).toBe(true);
    expect(text).toMatch(/^ek1\.[A-Za-z0-9_-]+$/);
    expect(JSON.parse(JSON.stringify({ text }))).toEqual({ text });
    const { plaintext, encryptionContext } = await decryptText(text, { provider: keyring, encryptionContext: { col: 'notes' } });
    expect(fromUtf8(plaintext)).toBe('in a text column');
    expect(encryptionContext).toEqual({ col: 'notes' });
  });

  it('is the same envelope as the binary form', async () => {
    const { keyring, keyId } = newKeyring();
    const binary = await encrypt(utf8('both forms'), { provider: keyring, keyId });
    const text = envelopeToText(binary);
    expect(text).toBe(TEXT_PREFIX + b64url(binary));
    expect(envelopeFromText(text)).toEqual(binary);
    expect(fromUtf8((await decryptText(text, { provider: keyring })).plaintext)).toBe('both forms');
    const fromText = await encryptText(utf8('both forms'), { provider: keyring, keyId });
    expect(fromUtf8((await decrypt(envelopeFromText(fromText), { provider: keyring })).plaintext)).toBe('both forms');
  });

  it('accepts only the canonical text: no padding, whitespace, standard base64 or other prefix', async () => {
    const { keyring, keyId } = newKeyring();
    const text = await encryptText(utf8('canonical'), { provider: keyring, keyId });
    for (const bad of [` ${text}`, `${text}\n`, `${text}=`, text.replace('ek1.', 'EK1.'), text.replace('ek1.', 'ek1:'), 'ek1.', 'ek1.A']) {
      await expectCode(() => decryptText(bad, { provider: keyring }), 'ERR_MALFORMED_ENVELOPE');
    }
    await expectCode(() => decryptText(text.replace('ek1.', 'ek2.'), { provider: keyring }), 'ERR_UNSUPPORTED_VERSION');
  });
});

describe('inspect', () => {
  it('shows what the header says, from the binary or the text form', async () => {
    const { keyring, keyId } = newKeyring();
    const envelope = await encrypt(utf8('twelve bytes'), { provider: keyring, keyId, encryptionContext: { tenant: 'acme' } });
    const info = inspect(envelope);
    expect(info).toMatchObject({
      formatVersion: 1,
      suite: { id: 1 },
      layout: { id: 0, name: 'single pass' },
      encryptionContext: { tenant: 'acme' },
      plaintextLength: 12,
      totalLength: envelope.length,
    });
    expect(info.messageId).toMatch(/^[0-9a-f]{32}$/);
    expect(info.messageId).toBe(hex(envelope.subarray(5, 21)));
    expect(info.encryptedDataKeys).toHaveLength(1);
    expect(info.encryptedDataKeys[0]).toEqual({ providerId: 'local', keyId, blobLength: expect.any(Number) });
    expect(info.headerLength + 12 + 16).toBe(envelope.length);
    expect(inspect(envelopeToText(envelope))).toEqual(info);
  });

  it('shows no secret and no blob bytes', async () => {
    const { keyring, keyId } = newKeyring();
    const provider = new RecordingProvider(keyring);
    const envelope = await encrypt(utf8('plaintext-marker'), { provider, keyId });
    const info = inspect(envelope);
    const shown = JSON.stringify(info);
    expectNoSecret(shown, provider.copies[0]!, 'inspect');
    for (const m of keyring.exportState().keys[0]!.versions) expectNoSecret(shown, m.material, 'inspect');
    // the blob sits just before the 32-byte commitment; none of it is shown
    const blobEnd = info.headerLength - 32;
    const blob = envelope.subarray(blobEnd - info.encryptedDataKeys[0]!.blobLength, blobEnd);
    expectNoSecret(shown, blob, 'inspect');
    expect(shown).not.toContain(b64(blob));
    expect(shown).not.toContain('plaintext-marker');
    expect(Object.keys(info.encryptedDataKeys[0]!).sort()).toEqual(['blobLength', 'keyId', 'providerId']);
  });

  it('reads the header without any provider, and rejects non-envelopes', () => {
    expect(() => inspect(new Uint8Array([1, 2, 3]))).toThrow(MalformedEnvelopeError);
    expect(() => inspect('not an envelope')).toThrow(MalformedEnvelopeError);
  });
});

describe('required encryption context on decrypt', () => {
  const context = { table: 'users', row: '42', purpose: 'billing' };

  it('passes when the given entries are contained in the envelope\u2019s context (extra entries are fine)', async () => {
    const { keyring, keyId } = newKeyring();
    const envelope = await encrypt(utf8('ok'), { provider: keyring, keyId, encryptionContext: context });
    for (const required of <Record<string, string>[]>[{}, { table: 'users' }, { row: '42', table: 'users' }, { purpose: 'billing', row: '42', table: 'users' }]) {
      const result = await decrypt(envelope, { provider: keyring, encryptionContext: required });
      expect(fromUtf8(result.plaintext)).toBe('ok');
      expect(result.encryptionContext).toEqual(context);
    }
  });

  it('fails with the one fixed message for a missing key or a different value', async () => {
    const { keyring, keyId } = newKeyring();
    const envelope = await encrypt(utf8('no'), { provider: keyring, keyId, encryptionContext: context });
    for (const required of <Record<string, string>[]>[{ tenant: 'acme' }, { table: 'orders' }, { table: 'users', row: '43' }, { table: 'Users' }, { ...context, extra: '' }]) {
      const e = await expectCode(() => decrypt(envelope, { provider: keyring, encryptionContext: required }), 'ERR_DECRYPTION_FAILED');
      expect(e).toBeInstanceOf(DecryptionFailedError);
      expect(e.message).toBe(DECRYPTION_FAILED_MESSAGE);
    }
  });

  it('checks the requirement before asking any provider', async () => {
    const p = new MemoryProvider('mem');
    const envelope = await encrypt(utf8('x'), { provider: p, keyId: 'mem-key', encryptionContext: { a: '1' } });
    await expectCode(() => decrypt(envelope, { provider: p, encryptionContext: { a: '2' } }), 'ERR_DECRYPTION_FAILED');
    expect(p.decryptCalls).toBe(0);
  });

  it('an envelope without context meets only the empty requirement', async () => {
    const { keyring, keyId } = newKeyring();
    const envelope = await encrypt(utf8('bare'), { provider: keyring, keyId });
    expect((await decrypt(envelope, { provider: keyring, encryptionContext: {} })).encryptionContext).toEqual({});
    await expectCode(() => decrypt(envelope, { provider: keyring, encryptionContext: { a: '' } }), 'ERR_DECRYPTION_FAILED');
  });
});

describe('several providers', () => {
  it('decrypt offers each encrypted data key to the providers with a matching providerId', async () => {
    const { keyring, keyId } = newKeyring();
    const other = new MemoryProvider('other-kms');
    const envelope = await encrypt(utf8('local'), { provider: keyring, keyId });
    const { plaintext } = await decrypt(envelope, { providers: [other, keyring] });
    expect(fromUtf8(plaintext)).toBe('local');
    expect(other.decryptCalls).toBe(0);
  });

  it('throws NoMatchingProviderError when no provider id matches', async () => {
    const { keyring, keyId } = newKeyring();
    const envelope = await encrypt(utf8('local'), { provider: keyring, keyId });
    const e = await expectCode(() => decrypt(envelope, { providers: [new MemoryProvider('a'), new MemoryProvider('b')] }), 'ERR_NO_MATCHING_PROVIDER');
    expect(e).toBeInstanceOf(NoMatchingProviderError);
    expect(e.message).toContain('local');
  });

  it('a matching provider that does not hold the key gives KeyNotFoundError, and a later one can still succeed', async () => {
    const { keyring, keyId } = newKeyring();
    const stranger = new LocalKeyring();
    stranger.createKey();
    const envelope = await encrypt(utf8('found later'), { provider: keyring, keyId });
    await expectCode(() => decrypt(envelope, { provider: stranger }), 'ERR_KEY_NOT_FOUND');
    expect(fromUtf8((await decrypt(envelope, { providers: [stranger, keyring] })).plaintext)).toBe('found later');
    expect(fromUtf8((await decrypt(envelope, { provider: stranger, providers: [keyring] })).plaintext)).toBe('found later');
  });

  it('an envelope with data keys for two providers opens with either one', async () => {
    const a = new MemoryProvider('kms-a');
    const b = new MemoryProvider('kms-b');
    const envelope = await multiProviderEnvelope(utf8('two doors'), { app: 'x' }, [a, b]);
    expect(inspect(envelope).encryptedDataKeys.map((e) => e.providerId)).toEqual(['kms-a', 'kms-b']);
    expect(fromUtf8((await decrypt(envelope, { provider: a })).plaintext)).toBe('two doors');
    expect(fromUtf8((await decrypt(envelope, { provider: b })).plaintext)).toBe('two doors');
    await expectCode(() => decrypt(envelope, { provider: new MemoryProvider('kms-c') }), 'ERR_NO_MATCHING_PROVIDER');
    // a provider with the right id but a blob it cannot open: the next data key is tried
    const impostor = new MemoryProvider('kms-a');
    expect(fromUtf8((await decrypt(envelope, { providers: [impostor, b] })).plaintext)).toBe('two doors');
    await expectCode(() => decrypt(envelope, { provider: impostor }), 'ERR_DECRYPTION_FAILED');
  });
});

describe('maxEncryptedDataKeys', () => {
  const providers = (n: number) => Array.from({ length: n }, (_, i) => new MemoryProvider(`kms-${i}`));

  it('refuses envelopes with more encrypted data keys than the limit (default 8)', async () => {
    expect(FORMAT_LIMITS.defaultMaxEncryptedDataKeys).toBe(8);
    const eight = providers(8);
    const nine = providers(9);
    const env8 = await multiProviderEnvelope(utf8('8'), {}, eight);
    const env9 = await multiProviderEnvelope(utf8('9'), {}, nine);
    expect(fromUtf8((await decrypt(env8, { provider: eight[7]! })).plaintext)).toBe('8');
    await expectCode(() => decrypt(env9, { provider: nine[8]! }), 'ERR_MALFORMED_ENVELOPE');
    expect(nine[8]!.decryptCalls).toBe(0);
    expect(fromUtf8((await decrypt(env9, { provider: nine[8]!, maxEncryptedDataKeys: 9 })).plaintext)).toBe('9');
    await expectCode(() => decrypt(env8, { provider: eight[0]!, maxEncryptedDataKeys: 2 }), 'ERR_MALFORMED_ENVELOPE');
    expect(fromUtf8((await decrypt(env8, { provider: eight[0]!, maxEncryptedDataKeys: 255 })).plaintext)).toBe('8');
  });

  it('inspect allows up to 255 unless told otherwise', async () => {
    const env9 = await multiProviderEnvelope(utf8('9'), {}, providers(9));
    expect(inspect(env9).encryptedDataKeys).toHaveLength(9);
    expect(() => inspect(env9, { maxEncryptedDataKeys: 8 })).toThrow(MalformedEnvelopeError);
  });

  it('must be an integer from 1 to 255', async () => {
    const [p] = providers(1);
    const env = await multiProviderEnvelope(utf8('1'), {}, [p!]);
    for (const bad of [0, 256, 1.5, -1, Number.NaN, Infinity, '8']) {
      await expectCode(() => decrypt(env, { provider: p!, maxEncryptedDataKeys: bad as number }), 'ERR_INVALID_PARAMETER');
      await expectCode(() => inspect(env, { maxEncryptedDataKeys: bad as number }), 'ERR_INVALID_PARAMETER');
    }
  });
});
