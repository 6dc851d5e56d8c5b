/**
 * Envelope encryption end to end with AWS KMS: `encrypt`/`decrypt` (and the
 * text forms) with AwsKmsProvider against the emulator; the envelope names
 * `aws-kms` and the key ARN; envelopes made from data keys of the official
 * client's blobs open through the provider; failures are the core's.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decrypt, decryptText, encrypt, encryptText, inspect } from '../src/core/envelope.js';
import { rewrap } from '../src/core/rewrap.js';
import { DecryptionFailedError, KeyDisabledError, KeyNotFoundError, NoMatchingProviderError } from '../src/core/errors.js';
import { LocalKeyring } from '../src/providers/local/keyring.js';
import { awsEmulator, awsProviderFor, hex, utf8 } from './aws-helpers.js';

const numRuns = Number(process.env['FC_NUM_RUNS'] ?? 20);

describe('envelopes through AWS KMS', () => {
  it('round-trips; the header names aws-kms and the key ARN; the data key is bound to the envelope purpose', async () => {
    const { kms, arn } = await awsEmulator();
    const provider = awsProviderFor(kms);
    const ctx = { table: 'users', row: '42' };
    const env = await encrypt(utf8('card 4111 1111 1111 1111'), { provider, keyId: 'alias/app', encryptionContext: ctx });
    const info = inspect(env);
    expect(info.encryptedDataKeys).toEqual([expect.objectContaining({ providerId: 'aws-kms', keyId: arn, blobLength: expect.any(Number) })]);
    expect(info.encryptionContext).toEqual(ctx);
    const out = await decrypt(env, { provider, encryptionContext: { table: 'users' } });
    expect(new TextDecoder().decode(out.plaintext)).toBe('card 4111 1111 1111 1111');
    expect(out.keyId).toBe(arn);
    // KMS was asked with the envelope's context plus the reserved purpose entry.
    expect(kms.requests.map((r) => r.members)).toEqual([
      ['EncryptionContext', 'KeyId', 'KeySpec'],
      ['CiphertextBlob', 'EncryptionContext'],
    ]);
    const text = await encryptText(utf8('x'), { provider, keyId: 'alias/app', keySpec: 'AES_128' });
    expect(new TextDecoder().decode((await decryptText(text, { provider })).plaintext)).toBe('x');
  });

  it('fails as the core promises: wrong context, tampered blob, disabled key, unknown key, no matching provider', async () => {
    const { kms } = await awsEmulator();
    const provider = awsProviderFor(kms);
    const env = await encrypt(utf8('hello'), { provider, keyId: 'alias/app', encryptionContext: { a: '1' } });
    await expect(decrypt(env, { provider, encryptionContext: { a: '2' } })).rejects.toBeInstanceOf(DecryptionFailedError);
    // Flip a byte inside the wrapped data key of the KMS blob (the emulator's blob starts 0x02 || len || keyring id).
    const localId = kms.keyring.resolveKeyId('alias/app');
    const prefix = [0x02, localId.length, ...utf8(localId)];
    const at = env.findIndex((_, i) => prefix.every((b, j) => env[i + j] === b));
    expect(at).toBeGreaterThan(0);
    const tampered = env.slice();
    tampered[at + prefix.length + 1 + 24 + 3]! ^= 0x40;
    const before = kms.requests.length;
    await expect(decrypt(tampered, { provider })).rejects.toBeInstanceOf(DecryptionFailedError);
    expect(kms.requests.slice(before).map((r) => r.errorType)).toEqual(['InvalidCiphertextException']);
    await expect(decrypt(env, { provider: new LocalKeyring() })).rejects.toBeInstanceOf(NoMatchingProviderError);
    kms.keyring.disableKey(localId);
    await expect(decrypt(env, { provider })).rejects.toBeInstanceOf(KeyDisabledError);
    await expect(encrypt(utf8('x'), { provider, keyId: 'alias/nothing' })).rejects.toBeInstanceOf(KeyNotFoundError);
  });

  it('an envelope of AWS KMS opens with AWS and the local keyring offered together', async () => {
    const { kms } = await awsEmulator();
    const provider = awsProviderFor(kms);
    const local = new LocalKeyring();
    const env = await encrypt(utf8('both'), { provider, keyId: 'alias/app' });
    const out = await decrypt(env, { providers: [local, provider] });
    expect(new TextDecoder().decode(out.plaintext)).toBe('both');
  });
});

describe('AWS KMS as one of several recipients, and rewrap', () => {
  it('AWS first (GenerateDataKey) with a local keyring wrapping the same data key, and the other way round (Encrypt)', async () => {
    const { kms, arn } = await awsEmulator();
    const aws = awsProviderFor(kms);
    const local = new LocalKeyring();
    const localKey = local.createKey().keyId;
    const a = await encrypt(utf8('two recipients'), { recipients: [{ provider: aws, keyId: 'alias/app' }, { provider: local, keyId: localKey }], encryptionContext: { t: '1' } });
    expect(inspect(a).encryptedDataKeys.map((k) => [k.providerId, k.keyId])).toEqual([['aws-kms', arn], ['local', localKey]]);
    expect(new TextDecoder().decode((await decrypt(a, { provider: local })).plaintext)).toBe('two recipients');
    expect(new TextDecoder().decode((await decrypt(a, { provider: aws })).plaintext)).toBe('two recipients');
    const b = await encrypt(utf8('kms second'), { recipients: [{ provider: local, keyId: localKey }, { provider: aws, keyId: 'alias/app' }] });
    expect(kms.requests.at(-1)!.operation).toBe('Encrypt');
    expect(new TextDecoder().decode((await decrypt(b, { provider: aws })).plaintext)).toBe('kms second');
  });

  it('rewrap moves an AWS data key to another KMS key with ReEncrypt: the data key never leaves KMS', async () => {
    const { kms } = await awsEmulator();
    const next = kms.createKey({ alias: 'alias/next' });
    const aws = awsProviderFor(kms);
    const env = await encrypt(utf8('rotate me'), { provider: aws, keyId: 'alias/app', encryptionContext: { t: '1' } });
    const before = kms.requests.length;
    const moved = await rewrap(env, { provider: aws, replace: [{ from: { providerId: 'aws-kms' }, to: { provider: aws, keyId: 'alias/next' } }] });
    expect(kms.requests.slice(before).map((r) => r.operation)).toEqual(['ReEncrypt']);
    expect(inspect(moved).encryptedDataKeys.map((k) => k.keyId)).toEqual([next.arn]);
    const out = await decrypt(moved, { provider: aws, encryptionContext: { t: '1' } });
    expect(new TextDecoder().decode(out.plaintext)).toBe('rotate me');
    expect(out.keyId).toBe(next.arn);
  });
});

it('round-trips arbitrary plaintexts and contexts (property)', async () => {
  const { kms } = await awsEmulator();
  const provider = awsProviderFor(kms);
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 2048 }),
      fc.dictionary(fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }), fc.string({ maxLength: 20, unit: 'grapheme' }), { maxKeys: 4 }),
      fc.constantFrom('AES_256', 'AES_128') as fc.Arbitrary<'AES_256' | 'AES_128'>,
      async (plaintext, ctx, keySpec) => {
        const context = Object.fromEntries(Object.entries(ctx));
        const env = await encrypt(plaintext, { provider, keyId: 'alias/app', encryptionContext: context, keySpec });
        const out = await decrypt(env, { provider, encryptionContext: context });
        expect(hex(out.plaintext)).toBe(hex(plaintext));
      },
    ),
    { numRuns },
  );
});
