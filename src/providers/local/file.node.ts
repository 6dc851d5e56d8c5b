/**
 * Keyring files on disk: written atomically (temporary file in the same
 * folder, fsync, rename, fsync of the folder) with mode 0600, so the file on
 * disk is always either the old keyring or the new one, never half of either.
 * A save never silently drops keys the file holds, writes through a symbolic
 * link to its target, and removes temporary files that a killed process left
 * behind (SPEC.md §7).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { InvalidParameterError, KeyringFileError } from '../../core/errors.js';
import {
  MAX_KEYRING_TEXT_BYTES,
  type ParseKeyringOptions,
  type SerializeKeyringOptions,
  _checkParseOptions,
  _checkSerializeOptions,
  _keyringProtectionKind,
  _serializeKeyring,
  parseKeyring,
} from './file-format.js';
import { LocalKeyring, _deletedKeyIds, _setKeyringGeneration } from './keyring.js';
import { constantTimeEqual, isBytes, wipe } from '../../internal/bytes.js';
import { readOptions } from '../../internal/options.js';
import { nodeAesGcm } from '../../core/aead/node.js';

/** Largest keyring file read (a guard against reading an unrelated huge file): 16 MiB, as SPEC.md §7 bounds the format. */
export const MAX_KEYRING_FILE_BYTES = MAX_KEYRING_TEXT_BYTES;

function checkPath(p: unknown): string {
  if (typeof p !== 'string' || p.length === 0) throw new InvalidParameterError('"path" must be a non-empty string');
  return p;
}

/** Temporary files of this process still being written (absolute paths): never removed as stale. @internal */
export const inFlight = new Set<string>();
/** A temporary file older than this, of the older name without a process id, is stale. */
const LEGACY_STALE_MS = 10 * 60 * 1000;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `.NAME.<pid>.<12 hex>.tmp`: the temporary file of a save of NAME by process `pid`. @internal */
export function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as { code?: string }).code === 'EPERM';
  }
}

/**
 * Remove the temporary files that an interrupted save of `file` left in its
 * folder: names `.NAME.<pid>.<12 hex>.tmp` whose process is gone, or is this
 * one but not writing it; and `.NAME.<12 hex>.tmp` (the name before process
 * ids) older than ten minutes. Only regular files owned by this user.
 * Best effort: errors are ignored.
 * @returns the paths removed.
 */
export async function removeStaleTempFiles(file: string): Promise<string[]> {
  checkPath(file);
  const dir = path.dirname(file);
  const base = escapeRegExp(path.basename(file));
  const re = new RegExp(`^\\.${base}\\.(?:([0-9]{1,10})\\.)?[0-9a-f]{12}\\.tmp$`);
  const removed: string[] = [];
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return removed;
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  for (const name of names) {
    const m = re.exec(name);
    if (!m) continue;
    const p = path.join(dir, name);
    try {
      const st = await fs.lstat(p);
      if (!st.isFile() || (uid !== undefined && st.uid !== uid)) continue;
      if (m[1] !== undefined) {
        const pid = Number(m[1]);
        if (pid === process.pid ? inFlight.has(path.resolve(p)) : processAlive(pid)) continue;
      } else if (Date.now() - st.mtimeMs < LEGACY_STALE_MS) {
        continue;
      }
      await fs.rm(p, { force: true });
      removed.push(p);
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  return removed;
}

/**
 * Where a write to `file` must go: `file` itself, or, when it is a symbolic
 * link, the file it points to (so the link stays a link). A link whose target
 * does not exist is refused.
 */
export async function resolveTarget(file: string): Promise<string> {
  let st;
  try {
    st = await fs.lstat(file);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return file;
    throw e;
  }
  if (!st.isSymbolicLink()) return file;
  try {
    return await fs.realpath(file);
  } catch (e) {
    throw new Error(`${file} is a symbolic link to a missing file`, { cause: e });
  }
}

/**
 * Write `data` to `file` atomically with mode 0600. When `file` is a symbolic
 * link, its target is replaced (atomically, in the target's folder) and the
 * link is kept.
 * @throws the file system's error; the original file is untouched on failure.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  checkPath(file);
  if (typeof data !== 'string' && !isBytes(data)) throw new InvalidParameterError('"data" must be a string or a Uint8Array');
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new InvalidParameterError('"mode" must be a file mode from 0 to 0o777');
  const target = await resolveTarget(file);
  const dir = path.dirname(target);
  const tmp = tempName(target);
  const key = path.resolve(tmp);
  inFlight.add(key);
  try {
    const fh = await fs.open(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, mode);
    let done = false;
    try {
      await fh.writeFile(data);
      await fh.sync();
      await fh.close();
      await fs.rename(tmp, target);
      done = true;
    } finally {
      if (!done) {
        await fh.close().catch(() => undefined);
        await fs.rm(tmp, { force: true }).catch(() => undefined);
      }
    }
  } finally {
    inFlight.delete(key);
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

/** Options of {@link saveKeyring}. */
export interface SaveKeyringOptions extends SerializeKeyringOptions {
  /**
   * The passphrase of the file being replaced, when it differs from
   * `passphrase` (a passphrase change). Defaults to `passphrase`.
   */
  readonly previousPassphrase?: string | Uint8Array;
  /**
   * Replace the file even when it holds keys (or key versions) that the
   * keyring being saved does not, or when it cannot be read to find out:
   * **those keys are lost**. Without it such a save is refused.
   */
  readonly discardExistingKeys?: boolean;
}

/** Options of {@link loadKeyring}: those of `parseKeyring`. */
export type LoadKeyringOptions = ParseKeyringOptions;

async function readKeyringText(file: string): Promise<string | undefined> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return undefined;
    throw new KeyringFileError(`keyring file could not be read: ${file}`, { cause: e });
  }
  if (!st.isFile()) throw new KeyringFileError(`not a file: ${file}`);
  if (st.size > MAX_KEYRING_FILE_BYTES) throw new KeyringFileError('keyring file is too large');
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new KeyringFileError(`keyring file could not be read: ${file}`, { cause: e });
  }
}

/**
 * Key versions of `old` that `next` lacks (or holds with other material),
 * except keys `next` deleted with `deleteKeyMaterial`.
 */
function lostVersions(old: LocalKeyring, next: LocalKeyring): string[] {
  const a = old.exportState();
  const b = next.exportState();
  const deleted = _deletedKeyIds(next);
  try {
    const have = new Map<string, Uint8Array>();
    for (const k of b.keys) for (const v of k.versions) have.set(`${k.keyId} version ${v.version}`, v.material);
    const lost: string[] = [];
    for (const k of a.keys) {
      if (deleted.has(k.keyId) && !b.keys.some((x) => x.keyId === k.keyId)) continue;
      for (const v of k.versions) {
        const name = `${k.keyId} version ${v.version}`;
        const m = have.get(name);
        if (!m || !constantTimeEqual(m, v.material)) lost.push(name);
      }
    }
    return lost;
  } finally {
    for (const s of [a, b]) for (const k of s.keys) for (const v of k.versions) wipe(v.material);
  }
}

/**
 * Save a keyring to a file, atomically, mode 0600.
 *
 * When the file exists it is read first (with `previousPassphrase`, else
 * `passphrase`; an unprotected file needs neither), and the save is refused
 * if the file holds any key version the keyring lacks, except keys the
 * keyring deleted with `deleteKeyMaterial`, or if it cannot be read; unless
 * `discardExistingKeys: true`. The file written has the next generation:
 * one more than both the keyring's and the replaced file's; the keyring's
 * `generation` is updated.
 *
 * @param file - destination path; replaced atomically if it exists (through a symbolic link, its target).
 * @param keyring - the keyring to save.
 * @param options - `passphrase` to seal the key material (scrypt + AES-256-GCM), or
 *   `protection: 'none'` to store it in clear; `scrypt` cost; `previousPassphrase`; `discardExistingKeys`.
 * @throws InvalidParameterError for bad options (a missing passphrase without `protection: 'none'`);
 *   KeyringFileError when the file would lose keys, cannot be read, or cannot be written.
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
export async function saveKeyring(file: string, keyring: LocalKeyring, options: SaveKeyringOptions = {}): Promise<void> {
  checkPath(file);
  const { passphrase, protection, scrypt, aead, previousPassphrase, discardExistingKeys } = readOptions(
    options,
    ['passphrase', 'protection', 'scrypt', 'aead', 'previousPassphrase', 'discardExistingKeys'],
    'saveKeyring options',
  );
  if (discardExistingKeys !== undefined && typeof discardExistingKeys !== 'boolean') throw new InvalidParameterError('"discardExistingKeys" must be a boolean');
  let isKeyring = false;
  try {
    isKeyring = keyring instanceof LocalKeyring;
  } catch {
    // a proxy whose prototype cannot be read
  }
  if (!isKeyring) throw new InvalidParameterError('"keyring" must be a LocalKeyring');
  const serializeOptions = { passphrase, protection, scrypt, aead: aead ?? nodeAesGcm } as SerializeKeyringOptions;
  // Options are checked before the file is touched.
  _checkSerializeOptions(serializeOptions);
  if (previousPassphrase !== undefined) _checkSerializeOptions({ passphrase: previousPassphrase as string | Uint8Array });
  let target: string;
  let existing: string | undefined;
  try {
    target = await resolveTarget(file);
    await removeStaleTempFiles(target); // next to the file written: a link's target
    existing = await readKeyringText(target);
  } catch (e) {
    if (!discardExistingKeys) {
      throw new KeyringFileError(`keyring file ${file} exists but could not be read; refusing to replace it (discardExistingKeys: true replaces it)`, { cause: e });
    }
    target = file;
  }
  let generation = keyring.generation;
  if (existing !== undefined) {
    const oldPass = previousPassphrase ?? passphrase;
    const kind = _keyringProtectionKind(existing);
    let old: LocalKeyring | undefined;
    try {
      if (kind === 'none') old = await parseKeyring(existing, { protection: 'none', aead: aead ?? nodeAesGcm } as ParseKeyringOptions);
      else if (oldPass !== undefined) old = await parseKeyring(existing, { passphrase: oldPass, aead: aead ?? nodeAesGcm } as ParseKeyringOptions);
      else throw new KeyringFileError('the existing keyring file is protected and no passphrase was given for it (previousPassphrase)');
    } catch (e) {
      if (!discardExistingKeys) {
        throw new KeyringFileError(
          `keyring file ${file} exists but could not be read (wrong passphrase, corrupt, or not a keyring file); refusing to replace it (previousPassphrase opens it; discardExistingKeys: true replaces it)`,
          { cause: e },
        );
      }
    }
    if (old) {
      try {
        const lost = lostVersions(old, keyring);
        if (lost.length > 0 && !discardExistingKeys) {
          const list = lost.slice(0, 5).join(', ') + (lost.length > 5 ? `, and ${lost.length - 5} more` : '');
          throw new KeyringFileError(
            `keyring file ${file} holds keys this keyring does not (${list}); refusing to replace it (discardExistingKeys: true replaces it and loses them)`,
          );
        }
        generation = Math.max(generation, old.generation);
      } finally {
        old.destroy();
      }
    }
  }
  const { text, generation: written } = await _serializeKeyring(keyring, serializeOptions, generation + 1);
  try {
    await writeFileAtomic(target, text);
  } catch (e) {
    throw new KeyringFileError(`keyring file could not be written: ${file} (the previous file, if any, is unchanged)`, { cause: e });
  }
  _setKeyringGeneration(keyring, written);
}

/**
 * Load a keyring file. Stale temporary files of an interrupted save of it are removed first.
 * @param options - `passphrase`, or `protection: 'none'` for an unprotected file; `minGeneration`.
 * @throws KeyringFileError when the file is missing, too large, corrupt, tampered, older than
 *   `minGeneration`, or the passphrase is wrong; InvalidParameterError for bad options.
 */
export async function loadKeyring(file: string, options: LoadKeyringOptions = {}): Promise<LocalKeyring> {
  checkPath(file);
  const { passphrase, protection, minGeneration, aead } = readOptions(options, ['passphrase', 'protection', 'minGeneration', 'aead'], 'loadKeyring options');
  const parseOptions = { passphrase, protection, minGeneration, aead: aead ?? nodeAesGcm } as ParseKeyringOptions;
  _checkParseOptions(parseOptions); // before the file is touched
  await removeStaleTempFiles(await resolveTarget(file).catch(() => file));
  const text = await readKeyringText(file);
  if (text === undefined) throw new KeyringFileError(`keyring file could not be read: ${file} (no such file)`);
  return parseKeyring(text, parseOptions);
}
