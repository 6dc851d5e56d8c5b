/**
 * A second process for the PKCS#11 suite (run with tsx): `encrypt <module> <token> <text>` prints
 * an envelope (base64) made under key `main`; `decrypt <module> <token> <base64>` prints its
 * plaintext; `lazy <module> <token>` tells whether the binding was loaded before and after the
 * first call. The PIN comes from `EK_PKCS11_TEST_PIN` (`pinEnv`), `SOFTHSM2_CONF` from the parent.
 */
import { createRequire } from 'node:module';
import { decrypt, encrypt } from '../src/index.js';
import { Pkcs11Provider } from '../src/providers/pkcs11/index.js';

const [mode, module, tokenLabel, data = ''] = process.argv.slice(2);
const bindingLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/pkcs11js/'));
const before = bindingLoaded();
const provider = new Pkcs11Provider({ module: module!, tokenLabel: tokenLabel!, pinEnv: 'EK_PKCS11_TEST_PIN' });
try {
  if (mode === 'encrypt') {
    const env = await encrypt(new TextEncoder().encode(data), { provider, keyId: 'main', encryptionContext: { origin: 'child' } });
    process.stdout.write(Buffer.from(env).toString('base64'));
  } else if (mode === 'decrypt') {
    const out = await decrypt(Buffer.from(data, 'base64'), { provider, encryptionContext: { origin: 'child' } });
    process.stdout.write(new TextDecoder().decode(out.plaintext));
  } else if (mode === 'lazy') {
    await provider.listKeyVersions('main');
    process.stdout.write(`before: ${before}, after: ${bindingLoaded()}`);
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} finally {
  await provider.close();
}
