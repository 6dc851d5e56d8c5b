/**
 * `envelope-kit keys`: manage the master keys of a keyring file with
 * {@link LocalKeyring}. Each change loads the file, changes the keyring and
 * saves it atomically with the same protection (`saveKeyring`, which refuses
 * to drop keys that another writer added meanwhile). A new file is made only
 * by `keys init`, and only with a passphrase or an explicit
 * `--unprotected-keyring`.
 * @module
 */
import { promises as fs } from 'node:fs';
import { InvalidParameterError } from '../core/errors.js';
import { nodeAesGcm } from '../core/aead/node.js';
import { saveKeyring } from '../providers/local/file.node.js';
import { type KeyInfo, LocalKeyring } from '../providers/local/keyring.js';
import { parseCommand } from './args.js';
import { escapeControl, FileError } from './exit-codes.js';
import { fileError } from './io.js';
import { KEYRING_OPTIONS, type KeyringAccess, newKeyringAccess, openKeyringFile, wipeAccess } from './providers.js';
import type { CommandIo } from './run.js';

const COMMON = { ...KEYRING_OPTIONS, quiet: { type: 'boolean', short: 'q' }, help: { type: 'boolean', short: 'h' } } as const;

/** The usage text of `envelope-kit keys`. */
export const KEYS_USAGE = `usage: envelope-kit keys <command> --keyring FILE [--passphrase-env NAME | --unprotected-keyring] [options]

Manage the master keys of a keyring file. The passphrase comes from the environment
variable given with --passphrase-env, or is asked for on the terminal (echo off);
never from an argument.

commands:
  init [--alias A]               create a new keyring file (refuses an existing file); with
                                 --alias, also a first key with that alias
  create [--alias A] [--description TEXT] [--json]
                                 add a master key; prints its key id
  list [--json]                  list the keys: id, state, current version, aliases
  rotate KEY                     add a version with fresh material (older versions still decrypt)
  alias ALIAS KEY [--force]      point ALIAS (alias/...) at KEY; --force moves an existing alias
  unalias ALIAS                  remove an alias (the key stays)
  disable KEY                    refuse every use of KEY until it is enabled
  enable KEY                     allow KEY again

KEY is a key id or an alias.

options:
  --keyring FILE                 the keyring file (required)
  --passphrase-env NAME          read the passphrase from environment variable NAME
  --unprotected-keyring          the file keeps its master keys in clear (no passphrase)
  -q, --quiet                    print nothing but the results
  -h, --help                     show this help
`;

function printKeys(io: CommandIo, keys: readonly KeyInfo[], json: boolean): void {
  if (json) {
    io.stdout.write(JSON.stringify(keys.map((k) => ({ ...k }))) + '\n');
    return;
  }
  if (keys.length === 0) {
    io.stdout.write('(no keys)\n');
    return;
  }
  const rows = [
    ['KEY ID', 'STATE', 'VERSION', 'CREATED', 'ALIASES', 'DESCRIPTION'],
    ...keys.map((k) => [k.keyId, k.state, String(k.currentVersion), k.createdAt, k.aliases.join(','), escapeControl(k.description)]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) io.stdout.write(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd() + '\n');
}

/** Save the keyring (atomically, by the library); a stop signal meanwhile waits for the save to end, so no temporary file is left. */
async function save(io: CommandIo, file: string, keyring: LocalKeyring, access: KeyringAccess): Promise<void> {
  await io.session.deferStops(() => saveKeyring(file, keyring, { ...access, aead: nodeAesGcm } as Parameters<typeof saveKeyring>[2]));
}

/**
 * Run `envelope-kit keys ...`.
 * @param args - the arguments after `keys`.
 * @returns the exit status (0).
 * @throws InvalidParameterError for a bad command line; KeyNotFoundError for an unknown key;
 *   KeyringFileError; FileError.
 */
export async function keysCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined) throw new InvalidParameterError('keys needs a command: init, create, list, rotate, alias, unalias, disable or enable (see envelope-kit keys --help)');
  if (sub === '-h' || sub === '--help' || sub === 'help') return help(io);
  switch (sub) {
    case 'init': {
      const { values } = parseCommand(rest, { ...COMMON, alias: { type: 'string' } }, 0);
      if (values.help) return help(io);
      const file = requireKeyring(values.keyring);
      try {
        await fs.lstat(file);
        throw new FileError(`keyring file ${file} exists (keys init makes a new one only)`, 'EEXIST');
      } catch (e) {
        if (e instanceof FileError) throw e;
        if ((e as { code?: unknown }).code !== 'ENOENT') throw fileError('create', file, e);
      }
      const access = await newKeyringAccess(file, values);
      const keyring = new LocalKeyring({ aead: nodeAesGcm });
      try {
        const created = values.alias !== undefined ? keyring.createKey({ alias: values.alias }) : undefined;
        await save(io, file, keyring, access);
        if (created) io.stdout.write(created.keyId + '\n');
        if (!values.quiet) io.stderr.write(`created keyring file ${file}${'protection' in access ? ' (unprotected: its master keys are in clear)' : ''}\n`);
      } finally {
        keyring.destroy();
        wipeAccess(access);
      }
      return 0;
    }
    case 'list': {
      const { values } = parseCommand(rest, { ...COMMON, json: { type: 'boolean' } }, 0);
      if (values.help) return help(io);
      const opened = await openKeyringFile({ ...values, keyring: requireKeyring(values.keyring) }, false);
      try {
        printKeys(io, opened.keyring.listKeys(), values.json === true);
      } finally {
        opened.keyring.destroy();
        wipeAccess(opened.access);
      }
      return 0;
    }
    case 'create':
    case 'rotate':
    case 'alias':
    case 'unalias':
    case 'disable':
    case 'enable': {
      const arity = { create: 0, rotate: 1, alias: 2, unalias: 1, disable: 1, enable: 1 }[sub];
      const { values, positionals } = parseCommand(
        rest,
        { ...COMMON, alias: { type: 'string' }, description: { type: 'string' }, json: { type: 'boolean' }, force: { type: 'boolean', short: 'f' } },
        arity,
      );
      if (values.help) return help(io);
      if (positionals.length !== arity) {
        const shape = { create: '', rotate: ' KEY', alias: ' ALIAS KEY', unalias: ' ALIAS', disable: ' KEY', enable: ' KEY' }[sub];
        throw new InvalidParameterError(`usage: envelope-kit keys ${sub}${shape} --keyring FILE`);
      }
      if (sub !== 'create' && (values.alias !== undefined || values.description !== undefined || values.json)) {
        throw new InvalidParameterError('--alias, --description and --json belong to keys create');
      }
      if (sub !== 'alias' && values.force) throw new InvalidParameterError('--force belongs to keys alias');
      const opened = await openKeyringFile({ ...values, keyring: requireKeyring(values.keyring) }, false);
      const { keyring, file, access } = opened;
      try {
        let result: string | undefined;
        switch (sub) {
          case 'create': {
            const k = keyring.createKey({
              ...(values.alias !== undefined ? { alias: values.alias } : {}),
              ...(values.description !== undefined ? { description: values.description } : {}),
            });
            result = values.json ? JSON.stringify({ ...k }) : k.keyId;
            break;
          }
          case 'rotate': {
            const keyId = keyring.resolveKeyId(positionals[0]!);
            result = `${keyId} version ${keyring.rotateKey(keyId)}`;
            break;
          }
          case 'alias': {
            const [alias, key] = positionals as [string, string];
            const exists = keyring.listAliases().some((a) => a.alias === alias);
            if (exists && !values.force) throw new InvalidParameterError(`alias ${alias} exists (--force points it at ${escapeControl(key)})`);
            if (exists) keyring.updateAlias(alias, key);
            else keyring.createAlias(alias, key);
            break;
          }
          case 'unalias':
            keyring.deleteAlias(positionals[0]!);
            break;
          case 'disable':
            keyring.disableKey(positionals[0]!);
            break;
          case 'enable':
            keyring.enableKey(positionals[0]!);
            break;
        }
        await save(io, file, keyring, access);
        if (result !== undefined) io.stdout.write(result + '\n');
      } finally {
        keyring.destroy();
        wipeAccess(access);
      }
      return 0;
    }
    default:
      throw new InvalidParameterError(`unknown keys command${/^[a-z-]{1,20}$/.test(sub) ? ` ${sub}` : ''} (see envelope-kit keys --help)`);
  }
}

function help(io: CommandIo): number {
  io.stdout.write(KEYS_USAGE);
  return 0;
}

function requireKeyring(file: string | undefined): string {
  if (file === undefined || file === '') throw new InvalidParameterError('--keyring FILE is required');
  return file;
}
