/**
 * The envelope-kit demo: a local keyring in a temporary folder, one record
 * encrypted, its text envelope and what `inspect` says, then decrypted again.
 * Run with `npm run demo`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalKeyring, decryptObject, encryptObject, encryptFields, decryptFields, inspect } from '../src/index.js';
import { loadKeyring, saveKeyring } from '../src/node.js';

const dir = await mkdtemp(path.join(tmpdir(), 'envelope-kit-demo-'));
try {
  const file = path.join(dir, 'demo.keyring.json');

  // 1. A keyring with one master key, saved (atomically, mode 0600) and loaded back.
  const created = new LocalKeyring();
  const key = created.createKey({ alias: 'alias/demo', description: 'demo key' });
  // A low scrypt cost (the lowest allowed) keeps the demo quick; leave the default in real use.
  await saveKeyring(file, created, { passphrase: 'demo passphrase', scrypt: { N: 2 ** 14, r: 8, p: 1 } });
  created.destroy();
  const keyring = await loadKeyring(file, { passphrase: 'demo passphrase' });
  console.log(`keyring file: ${file}`);
  console.log(`master key:   ${key.keyId} (alias/demo)\n`);

  // 2. Encrypt a record as one value, bound to its row by the record id (not stored in the envelope, not sent to the provider).
  const record = { id: 42, name: 'Ada Lovelace', email: 'ada@example.com', born: new Date('1815-12-10'), balance: 1234567890123n };
  const context = { table: 'users' };
  const envelope = await encryptObject(record, { provider: keyring, keyId: 'alias/demo', encryptionContext: context, recordId: record.id });
  console.log('text envelope:');
  console.log(envelope + '\n');
  console.log('inspect (header only, nothing secret):');
  console.log(inspect(envelope));

  const back = await decryptObject(envelope, { provider: keyring, encryptionContext: context, recordId: record.id });
  console.log('\ndecrypted:');
  console.log(back);

  // 3. The same record with only its PII fields encrypted, bound to the record id.
  const stored = await encryptFields(record, { provider: keyring, keyId: 'alias/demo', fields: ['name', 'email'], recordId: record.id });
  console.log('\nfield-level (name and email encrypted):');
  console.log({ ...stored, name: `${String(stored.name).slice(0, 40)}...`, email: `${String(stored.email).slice(0, 40)}...` });
  const fields = await decryptFields(stored, { provider: keyring, fields: ['name', 'email'], recordId: record.id });
  console.log('decrypted fields:', { name: (fields as typeof record).name, email: (fields as typeof record).email });
  keyring.destroy();
} finally {
  await rm(dir, { recursive: true, force: true });
}
