/** The provider contract on the local keyring (SPEC.md §6). */
import { LocalKeyring } from '../../src/index.js';
import { providerContract } from './suite.js';

providerContract('local keyring', async () => {
  const kr = new LocalKeyring();
  const keyId = kr.createKey({ alias: 'alias/app' }).keyId;
  return {
    provider: kr,
    keyId,
    alias: 'alias/app',
    otherKeyId: kr.createKey().keyId,
    missingKeyId: 'no-such-key',
    disable: async (id) => kr.disableKey(id),
    rotate: async (id) => void kr.rotateKey(id),
    expect: { encrypt: true, reEncrypt: true },
  };
});
