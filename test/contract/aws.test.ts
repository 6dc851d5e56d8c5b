/** The provider contract on the AWS KMS provider, against the loopback emulator, with key ARNs as the resolved ids. */
import { awsEmulator, awsProviderFor } from '../aws-helpers.js';
import { providerContract } from './suite.js';

providerContract('AWS KMS (emulator)', async () => {
  const { kms, arn, keyId } = await awsEmulator({
    credentials: [{ accessKeyId: 'AKIACONTRACT00000001', secretAccessKey: 'contract-secret-access-key', sessionToken: 'contract-session-token' }],
  });
  const other = kms.createKey();
  const localOf = new Map([
    [arn, kms.keyring.resolveKeyId('alias/app')],
    [other.arn, other.localKeyId],
  ]);
  const local = (id: string) => localOf.get(id) ?? id;
  return {
    provider: awsProviderFor(kms),
    keyId: arn,
    otherKeyId: other.arn,
    alias: 'alias/app',
    missingKeyId: arn.replace(keyId, '00000000-0000-4000-8000-000000000000'),
    disable: async (id) => kms.keyring.disableKey(local(id)),
    rotate: async (id) => void kms.keyring.rotateKey(local(id)),
    expect: { encrypt: true, reEncrypt: true },
    secrets: [new TextEncoder().encode('contract-secret-access-key'), new TextEncoder().encode('contract-session-token')],
  };
});
