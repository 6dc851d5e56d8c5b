/** The provider contract on the Alibaba Cloud KMS provider, against the loopback emulator, with both signature versions. */
import { emulator, providerFor } from '../alibaba-helpers.js';
import { providerContract } from './suite.js';

for (const signatureVersion of ['v3', 'v1'] as const) {
  providerContract(`Alibaba Cloud KMS (${signatureVersion}, emulator)`, async () => {
    const { kms, keyId } = await emulator();
    const other = kms.keyring.createKey().keyId;
    return {
      provider: providerFor(kms, { signatureVersion }),
      keyId,
      alias: 'alias/app',
      otherKeyId: other,
      disable: async (id) => kms.keyring.disableKey(id),
      rotate: async (id) => void kms.keyring.rotateKey(id),
      secrets: [new TextEncoder().encode(kms.credentials.accessKeySecret)],
      expect: { encrypt: true, reEncrypt: true },
    };
  });
}
