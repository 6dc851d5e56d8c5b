/**
 * The provider contract run against the local keyring.
 */
import { LocalKeyring } from '../../src/index.js';
import { providerContract } from './suite.js';

providerContract('local keyring', async () => {
  const provider = new LocalKeyring();
  const { keyId } = provider.createKey({ alias: 'alias/contract' });
  const { keyId: otherKeyId } = provider.createKey();
  const { keyId: disabledKeyId } = provider.createKey();
  provider.disableKey(disabledKeyId);
  return {
    provider,
    keyId,
    alias: 'alias/contract',
    otherKeyId,
    disabledKeyId,
    missingKeyId: 'k-notakeyatall',
    rotate: async () => {
      provider.rotateKey(keyId);
    },
    teardown: async () => provider.destroy(),
  };
});
