/**
 * Envelope encryption end to end with Alibaba Cloud KMS: `encrypt`/`decrypt`
 * from src/envelope.ts with AlibabaKmsProvider against the emulator, with both
 * signature versions; the envelope names the provider and the resolved key.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decrypt, decryptText, encrypt, encryptText, inspect } from '../src/core/envelope.js';
import { DecryptionFailedError, KeyDisabledError, NoMatchingProviderError } from '../src/core/errors.js';
import { LocalKeyring } from '../src/providers/local/keyring.js';
import { emulator, hex, providerFor, utf8 } from './alibaba-helpers.js';

const numRuns = Number(process.env['FC_NUM_RUNS'] ?? 20);

describe.each(['v3', 'v1'] as const)('envelopes through Alibaba Cloud KMS (%s)', (signatureVersion) => {
  it('round-trips, and the header names alibaba-kms and the resolved key id', async () => {
    const { kms, keyId } = await emulator();
    const provider = providerFor(kms, { signatureVersion });
    const ctx = { table: 'users', row: '42' };
    const env = await encrypt(utf8('card 4111 1111 1111 1111'), { provider, keyId: 'alias/app', encryptionContext: ctx });
    const info = inspect(env);
    expect(info.encryptedDataKeys).toEqual([{ providerId: 'alibaba-kms', keyId, blobLength: expect.any(Number) }]);
    expect(info.encryptionContext).toEqual(ctx);
    const out = await decrypt(env, { provider, encryptionContext: { table: 'users' } });
    expect(new TextDecoder().decode(out.plaintext)).toBe('card 4111 1111 1111 1111');
    expect(out.keyId).toBe(keyId);
    const text = await encryptText(utf8('x'), { provider, keyId: 'alias/app', keySpec: 'AES_128' });
    expect(new TextDecoder().decode((await decryptText(text, { provider })).plaintext)).toBe('x');
  });

  it('fails as the core promises: wrong context, tampering, disabled key, no matching provider', async () => {
    const { kms, keyId } = await emulator();
    const provider = providerFor(kms, { signatureVersion });
    const env = await encrypt(utf8('hello'), { provider, keyId, encryptionContext: { a: '1' } });
    await expect(decrypt(env, { provider, encryptionContext: { a: '2' } })).rejects.toBeInstanceOf(DecryptionFailedError);
    // Flip a byte of the wrapped key inside the KMS blob (the emulator's blob starts 0x02 || len || keyId,
    // SPEC.md §6): KMS refuses it, and the envelope says only "decryption failed".
    const prefix = [0x02, keyId.length, ...utf8(keyId)];
    const at = env.findIndex((_, i) => prefix.every((b, j) => env[i + j] === b));
    expect(at).toBeGreaterThan(0);
    const tampered = env.slice();
    tampered[at + prefix.length + 1 + 24 + 3]! ^= 0x40;
    const kmsCallsBefore = kms.requests.length;
    await expect(decrypt(tampered, { provider })).rejects.toBeInstanceOf(DecryptionFailedError);
    expect(kms.requests.slice(kmsCallsBefore).map((r) => r.code)).toEqual(['InvalidParameter']);
    await expect(decrypt(env, { provider: new LocalKeyring() })).rejects.toBeInstanceOf(NoMatchingProviderError);
    kms.keyring.disableKey(keyId);
    await expect(decrypt(env, { provider })).rejects.toBeInstanceOf(KeyDisabledError);
  });
});

it('round-trips arbitrary plaintexts and contexts (property)', async () => {
  const { kms } = await emulator();
  const provider = providerFor(kms);
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 2048 }),
      fc.dictionary(fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }), fc.string({ maxLength: 20, unit: 'grapheme' }), { maxKeys: 4 }),
      async (plaintext, ctx) => {
        const context = Object.fromEntries(Object.entries(ctx));
        const env = await encrypt(plaintext, { provider, keyId: 'alias/app', encryptionContext: context });
        const out = await decrypt(env, { provider, encryptionContext: context });
        expect(hex(out.plaintext)).toBe(hex(plaintext));
      },
    ),
    { numRuns },
  );
});
