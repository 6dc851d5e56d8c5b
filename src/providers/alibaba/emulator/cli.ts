#!/usr/bin/env node
/**
 * `envelope-kit-kms-emulator`: start the loopback Alibaba Cloud KMS emulator
 * from a keyring file or a fresh in-memory keyring, and print the endpoint and
 * the test credentials. Stops on Ctrl-C (SIGINT) or SIGTERM.
 *
 * ```
 * envelope-kit-kms-emulator [--keyring FILE (--passphrase-env NAME | --unprotected-keyring)] [--port N]
 *                           [--create-key ALIAS]... [--json]
 * ```
 * @module
 */
import { parseArgs } from 'node:util';
import { EnvelopeKitError } from '../../../core/errors.js';
import { LocalKeyring } from '../../local/keyring.js';
import { nodeAesGcm } from '../../../core/aead/node.js';
import { loadKeyring } from '../../local/file.node.js';
import { startKmsEmulator } from './server.js';

const USAGE = `usage: envelope-kit-kms-emulator [options]

Starts a local Alibaba Cloud KMS (API 2016-01-20) on 127.0.0.1 for offline tests.

options:
  --keyring FILE         serve the keys of this keyring file (default: a fresh in-memory keyring)
  --passphrase-env NAME  read the keyring file's passphrase from environment variable NAME
  --unprotected-keyring  the keyring file has no passphrase (its master keys are in clear);
                         --keyring needs this or --passphrase-env
  --port N               TCP port (default: 0, any free port)
  --create-key ALIAS     create a key with this alias at start (repeatable; default for a fresh
                         keyring: alias/dev)
  --json                 print one JSON line instead of text
  -h, --help             show this help
`;

/**
 * Run the command line.
 * @param argv - arguments after the program name.
 * @returns a function that stops the emulator.
 */
export async function main(argv: readonly string[]): Promise<() => Promise<void>> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      keyring: { type: 'string' },
      'passphrase-env': { type: 'string' },
      'unprotected-keyring': { type: 'boolean' },
      port: { type: 'string' },
      'create-key': { type: 'string', multiple: true },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return async () => {};
  }
  let port = 0;
  if (values.port !== undefined) {
    if (!/^\d{1,5}$/.test(values.port) || Number(values.port) > 65535) throw new Error('--port must be 0..65535');
    port = Number(values.port);
  }
  let keyring: LocalKeyring;
  if (values.keyring !== undefined) {
    const envName = values['passphrase-env'];
    const unprotected = values['unprotected-keyring'] === true;
    if ((envName === undefined) === !unprotected) throw new Error('--keyring needs exactly one of --passphrase-env NAME and --unprotected-keyring');
    if (envName !== undefined) {
      const passphrase = process.env[envName];
      // An unset or empty variable is an error, never a keyring read without a passphrase.
      if (passphrase === undefined || passphrase === '') throw new Error(`environment variable ${envName} is not set`);
      keyring = await loadKeyring(values.keyring, { passphrase });
    } else {
      keyring = await loadKeyring(values.keyring, { protection: 'none' });
    }
  } else {
    if (values['passphrase-env'] !== undefined || values['unprotected-keyring']) throw new Error('--passphrase-env and --unprotected-keyring need --keyring');
    keyring = new LocalKeyring({ aead: nodeAesGcm, keyIdFormat: 'uuid' });
  }
  const aliases = values['create-key'] ?? (values.keyring === undefined ? ['alias/dev'] : []);
  for (const alias of aliases) keyring.createKey({ alias, description: 'created by envelope-kit-kms-emulator' });

  const kms = await startKmsEmulator({ keyring, port });
  const keys = keyring.listKeys().map((k) => ({ keyId: k.keyId, state: k.state, aliases: k.aliases }));
  if (values.json) {
    process.stdout.write(
      JSON.stringify({ url: kms.url, endpoint: kms.endpoint, credentials: kms.credentials, keys }) + '\n',
    );
  } else {
    const lines = [
      `Alibaba Cloud KMS emulator listening on ${kms.url}`,
      '',
      'Test credentials (valid for this emulator only):',
      `  export ALIBABA_CLOUD_ACCESS_KEY_ID=${kms.credentials.accessKeyId}`,
      `  export ALIBABA_CLOUD_ACCESS_KEY_SECRET=${kms.credentials.accessKeySecret}`,
      '',
      `envelope-kit:   new AlibabaKmsProvider({ endpoint: '${kms.url}' })`,
      `official SDKs:  { endpoint: '${kms.endpoint}', protocol: 'HTTP' }`,
      '',
      'Keys:',
      ...(keys.length === 0
        ? ['  (none)']
        : keys.map((k) => `  ${k.keyId}  ${k.state}${k.aliases.length ? `  ${k.aliases.join(', ')}` : ''}`)),
      '',
      'Ctrl-C to stop.',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  }
  return () => kms.close();
}

const isEntry = (() => {
  try {
    const arg = process.argv[1];
    return arg !== undefined && /(?:^|[\\/])(?:cli\.[cm]?[jt]s|emulator-cli\.c?js|envelope-kit-kms-emulator)$/.test(arg);
  } catch {
    return false;
  }
})();

if (isEntry) {
  main(process.argv.slice(2)).then(
    (stop) => {
      const onSignal = () => {
        void stop().then(() => process.exit(0));
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    },
    (e: unknown) => {
      const msg = e instanceof EnvelopeKitError || e instanceof Error ? e.message : String(e);
      process.stderr.write(`envelope-kit-kms-emulator: ${msg}\n${e instanceof TypeError ? USAGE : ''}`);
      process.exit(1);
    },
  );
}
