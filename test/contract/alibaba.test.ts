/**
 * The provider contract run against the Alibaba Cloud KMS provider and its loopback emulator.
 */
import { startKmsEmulator } from '../../src/providers/alibaba/emulator/index.js';
import { AlibabaKmsProvider } from '../../src/providers/alibaba/index.js';
import { providerContract } from './suite.js';

for (const signatureVersion of ['v3', 'v1'] as const) {
  providerContract(`alibaba-kms (${signatureVersion}, emulator)`, async () => {
    const kms = await startKmsEmulator();
    const { keyId } = kms.keyring.createKey({ alias: 'alias/contract' });
    const { keyId: otherKeyId } = kms.keyring.createKey();
    const { keyId: disabledKeyId } = kms.keyring.createKey();
    kms.keyring.disableKey(disabledKeyId);
    const provider = new AlibabaKmsProvider({
      endpoint: kms.url,
      credentials: kms.credentials,
      signatureVersion,
      retryBaseDelayMs: 1,
      retryMaxDelayMs: 5,
    });
    return {
      provider,
      keyId,
      alias: 'alias/contract',
      otherKeyId,
      disabledKeyId,
      missingKeyId: 'k-notakeyatall',
      rotate: async () => {
        kms.keyring.rotateKey(keyId);
      },
      teardown: () => kms.close(),
    };
  });
}
