/**
 * Keyring files on disk: written atomically (temporary file in the same
 * folder, fsync, rename, fsync of the folder) with mode 0600, so the file on
 * disk is always either the old keyring or the new one, never half of either.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { InvalidParameterError, KeyringFileError } from '../../core/errors.js';
import { type ParseKeyringOptions, type SerializeKeyringOptions, parseKeyring, serializeKeyring } from './file-format.js';
import type { LocalKeyring } from './keyring.js';
import { isBytes } from '../../internal/bytes.js';
import { readOptions } from '../../internal/options.js';
import { nodeAesGcm } from '../../core/aead/node.js';

/** Largest keyring file read (a guard against reading an unrelated huge file). */
export const MAX_KEYRING_FILE_BYTES = 64 * 1024 * 1024;

function checkPath(p: unknown): string {
  if (typeof p !== 'string' || p.length === 0) throw new InvalidParameterError('"path" must be a non-empty string');
  return p;
}

/**
 * Write `data` to `file` atomically with mode 0600.
 * @throws the file system's error; the original file is untouched on failure.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  checkPath(file);
  if (typeof data !== 'string' && !isBytes(data)) throw new InvalidParameterError('"data" must be a string or a Uint8Array');
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new InvalidParameterError('"mode" must be a file mode from 0 to 0o777');
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, mode);
  let done = false;
  try {
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    await fs.rename(tmp, file);
    done = true;
  } finally {
    if (!done) {
      await fh.close().catch(() => undefined);
      await fs.rm(tmp, { force: true }).catch(() => undefined);
    }
  }
  try {
    const d = await fs.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Some platforms cannot fsync a directory; the rename itself is still atomic.
  }
}

/**
 * Save a keyring to a file, atomically, mode 0600.
 * @param file - destination path; replaced atomically if it exists.
 * @param keyring - the keyring to save.
 * @param options - `passphrase` to seal the key material (scrypt + AES-256-GCM); `scrypt` cost.
 * @example
 * ```ts
 * import { LocalKeyring } from 'envelope-kit';
 * import { saveKeyring, loadKeyring } from 'envelope-kit/node';
 * const kr = new LocalKeyring();
 * kr.createKey({ alias: 'alias/app' });
 * await saveKeyring('/tmp/app.keyring.json', kr, { passphrase: 'correct horse battery staple' });
 * const again = await loadKeyring('/tmp/app.keyring.json', { passphrase: 'correct horse battery staple' });
 * ```
 */
export async function saveKeyring(file: string, keyring: LocalKeyring, options: SerializeKeyringOptions = {}): Promise<void> {
  checkPath(file);
  const { passphrase, scrypt, aead } = readOptions(options, ['passphrase', 'scrypt', 'aead'], 'saveKeyring options');
  const text = await serializeKeyring(keyring, { passphrase, scrypt, aead: aead ?? nodeAesGcm } as SerializeKeyringOptions);
  try {
    await writeFileAtomic(file, text);
  } catch (e) {
    throw new KeyringFileError(`keyring file could not be written: ${file} (the previous file, if any, is unchanged)`, { cause: e });
  }
}

/**
 * Load a keyring file.
 * @throws KeyringFileError when the file is missing, too large, corrupt, tampered, or the passphrase is wrong.
 */
export async function loadKeyring(file: string, options: ParseKeyringOptions = {}): Promise<LocalKeyring> {
  checkPath(file);
  const { passphrase, aead } = readOptions(options, ['passphrase', 'aead'], 'loadKeyring options');
  let text: string;
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) throw new KeyringFileError(`not a file: ${file}`);
    if (st.size > MAX_KEYRING_FILE_BYTES) throw new KeyringFileError('keyring file is too large');
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof KeyringFileError) throw e;
    throw new KeyringFileError(`keyring file could not be read: ${file}`, { cause: e });
  }
  return parseKeyring(text, { passphrase, aead: aead ?? nodeAesGcm } as ParseKeyringOptions);
}
