/**
 * The provider contract on the PKCS#11 provider over a real SoftHSM2 token (made in a temporary
 * folder by pkcs11-helpers.ts). Each case gets a fresh provider and two fresh master keys.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { Pkcs11Provider } from '../../src/providers/pkcs11/index.js';
import { SOFTHSM2_MODULE, TEST_PIN, setUpSoftHsm, softhsmAvailable, type SoftHsm } from '../pkcs11-helpers.js';
import { providerContract } from './suite.js';

const TOKEN = 'ek-contract';
let hsm: SoftHsm | undefined;
let n = 0;

describe.skipIf(!softhsmAvailable())('PKCS#11 on SoftHSM2', () => {
  beforeAll(() => {
    hsm = setUpSoftHsm(TOKEN);
  });
  afterAll(() => hsm?.remove());

  for (const wrap of ['gcm', 'kwp'] as const) {
    providerContract(`PKCS#11 (${wrap === 'gcm' ? 'CKM_AES_GCM' : 'RFC 5649 key wrap'}) on SoftHSM2`, async () => {
      const provider = await Pkcs11Provider.open({ module: SOFTHSM2_MODULE, tokenLabel: TOKEN, pin: TEST_PIN, wrap });
      const keyId = `contract-${wrap}-${++n}`;
      const otherKeyId = `contract-${wrap}-${++n}`;
      await provider.createKey(keyId);
      await provider.createKey(otherKeyId);
      return {
        provider,
        keyId,
        otherKeyId,
        missingKeyId: 'no-such-key',
        disable: (id) => provider.disableKey(id),
        rotate: async (id) => void (await provider.rotateKey(id)),
        expect: { encrypt: true, reEncrypt: true },
        secrets: [new TextEncoder().encode(TEST_PIN)],
        teardown: () => provider.close(),
      };
    });
  }
});
