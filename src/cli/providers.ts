/**
 * The key providers of a command line: a keyring file (`--keyring FILE`,
 * opened with a passphrase from `--passphrase-env NAME` or the terminal prompt,
 * or, only with `--unprotected-keyring`, a file whose keys are in clear) and
 * Alibaba Cloud KMS (`--alibaba-endpoint URL` or `--alibaba-region ID`, with the
 * AccessKey from the standard environment variables, read at each request).
 * @module
 */
import { promises as fs } from 'node:fs';
import { InvalidParameterError } from '../core/errors.js';
import type { KeyProvider } from '../core/provider.js';
import { nodeAesGcm } from '../core/aead/node.js';
import { AlibabaKmsProvider } from '../providers/alibaba/provider.js';
import { CREDENTIAL_ENV, credentialsFromEnv } from '../providers/alibaba/credentials.js';
import { _keyringProtectionKind, MAX_KEYRING_TEXT_BYTES } from '../providers/local/file-format.js';
import { loadKeyring } from '../providers/local/file.node.js';
import type { LocalKeyring } from '../providers/local/keyring.js';
import { passphraseFromEnv, promptHidden, promptNewPassphrase } from './passphrase.js';
import type { OptionTable } from './args.js';

/** The options that choose a keyring file and how it is opened. */
export const KEYRING_OPTIONS = /* @__PURE__ */ Object.freeze({
  keyring: { type: 'string' },
  'passphrase-env': { type: 'string' },
  'unprotected-keyring': { type: 'boolean' },
} as const satisfies OptionTable);

/** The options that choose Alibaba Cloud KMS. */
export const ALIBABA_OPTIONS = /* @__PURE__ */ Object.freeze({
  'alibaba-endpoint': { type: 'string' },
  'alibaba-region': { type: 'string' },
} as const satisfies OptionTable);

/** The values of {@link KEYRING_OPTIONS}. */
export interface KeyringArgs {
  readonly keyring?: string | undefined;
  readonly 'passphrase-env'?: string | undefined;
  readonly 'unprotected-keyring'?: boolean | undefined;
}

/** The values of {@link ALIBABA_OPTIONS}. */
export interface AlibabaArgs {
  readonly 'alibaba-endpoint'?: string | undefined;
  readonly 'alibaba-region'?: string | undefined;
}

/** How a keyring file is opened (and saved again): the options of `loadKeyring` / `saveKeyring`. */
export type KeyringAccess = { readonly passphrase: string | Uint8Array } | { readonly protection: 'none' };

/** Whether a terminal prompt may be used: stdin is a terminal and is not the command's input. */
export function canPrompt(stdinIsInput: boolean): boolean {
  return !stdinIsInput && process.stdin.isTTY === true && typeof process.stdin.setRawMode === 'function';
}

/** What a keyring file says of its protection, read without the passphrase; undefined when unknown. */
async function protectionOf(file: string): Promise<'none' | 'scrypt' | undefined> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile() || st.size > MAX_KEYRING_TEXT_BYTES) return undefined;
    return _keyringProtectionKind(await fs.readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * How to open the keyring file `file` that exists: the passphrase (from the environment or the
 * prompt), or `protection: 'none'` when `--unprotected-keyring` is given.
 * @throws InvalidParameterError when both a passphrase source and `--unprotected-keyring` are
 *   given, when the file is unprotected and `--unprotected-keyring` is not, or when a passphrase
 *   is needed and there is neither `--passphrase-env` nor a terminal to ask on.
 */
export async function keyringAccess(file: string, args: KeyringArgs, stdinIsInput: boolean): Promise<KeyringAccess> {
  const envName = args['passphrase-env'];
  const unprotected = args['unprotected-keyring'] === true;
  if (envName !== undefined && unprotected) throw new InvalidParameterError('--passphrase-env and --unprotected-keyring exclude each other');
  if (unprotected) return { protection: 'none' };
  const kind = await protectionOf(file);
  if (kind === 'none') {
    throw new InvalidParameterError(`keyring file ${file} is not protected by a passphrase (its master keys are in clear): pass --unprotected-keyring to use it`);
  }
  if (envName !== undefined) return { passphrase: passphraseFromEnv(envName) };
  if (!canPrompt(stdinIsInput)) {
    throw new InvalidParameterError(
      `keyring file ${file} needs its passphrase: give --passphrase-env NAME${stdinIsInput ? ' (stdin is the input, so it cannot be asked for)' : ' (no terminal to ask on)'}`,
    );
  }
  return { passphrase: await promptHidden(`Passphrase for ${file}: `) };
}

/**
 * How to protect a keyring file about to be created: a passphrase (from the environment, or asked
 * twice on the terminal), or `protection: 'none'` with `--unprotected-keyring`.
 * @throws InvalidParameterError as {@link keyringAccess}.
 */
export async function newKeyringAccess(file: string, args: KeyringArgs): Promise<KeyringAccess> {
  const envName = args['passphrase-env'];
  const unprotected = args['unprotected-keyring'] === true;
  if (envName !== undefined && unprotected) throw new InvalidParameterError('--passphrase-env and --unprotected-keyring exclude each other');
  if (unprotected) return { protection: 'none' };
  if (envName !== undefined) return { passphrase: passphraseFromEnv(envName) };
  if (!canPrompt(false)) {
    throw new InvalidParameterError('a new keyring file needs a passphrase: give --passphrase-env NAME (no terminal to ask on), or --unprotected-keyring');
  }
  return { passphrase: await promptNewPassphrase(file) };
}

/** Wipe a passphrase typed at the prompt (one from the environment is a string, which cannot be wiped). */
export function wipeAccess(access: KeyringAccess | undefined): void {
  if (access && 'passphrase' in access && access.passphrase instanceof Uint8Array) access.passphrase.fill(0);
}

/** An open keyring file. */
export interface OpenKeyring {
  readonly file: string;
  readonly keyring: LocalKeyring;
  readonly access: KeyringAccess;
}

/**
 * Open the keyring file named by `--keyring`.
 * @throws InvalidParameterError (see {@link keyringAccess}); KeyringFileError when it cannot be read.
 */
export async function openKeyringFile(args: KeyringArgs, stdinIsInput: boolean): Promise<OpenKeyring> {
  const file = args.keyring;
  if (file === undefined || file === '') throw new InvalidParameterError('--keyring FILE is required');
  const access = await keyringAccess(file, args, stdinIsInput);
  try {
    const keyring = await loadKeyring(file, { ...access, aead: nodeAesGcm });
    return { file, keyring, access };
  } catch (e) {
    wipeAccess(access);
    throw e;
  }
}

/** The Alibaba Cloud KMS provider the options ask for, or undefined when they name none. */
export function alibabaProvider(args: AlibabaArgs, signal: AbortSignal): AlibabaKmsProvider | undefined {
  const endpoint = args['alibaba-endpoint'];
  const region = args['alibaba-region'];
  if (endpoint === undefined && region === undefined) return undefined;
  if (endpoint !== undefined && region !== undefined) throw new InvalidParameterError('--alibaba-endpoint and --alibaba-region exclude each other');
  // Checked now, so a missing credential is reported before any input is read; the provider
  // reads the variables again at each request (rotating STS tokens keep working).
  if (credentialsFromEnv() === undefined) {
    throw new InvalidParameterError(`Alibaba Cloud KMS needs credentials: set ${CREDENTIAL_ENV.accessKeyId} and ${CREDENTIAL_ENV.accessKeySecret} (and ${CREDENTIAL_ENV.securityToken} for STS)`);
  }
  return new AlibabaKmsProvider(endpoint !== undefined ? { endpoint, signal } : { region: region!, signal });
}

/** The providers a command line names, and what must be done when it ends. */
export interface ProviderSet {
  readonly providers: KeyProvider[];
  /** Wipe the keyring's keys and a passphrase typed at the prompt. */
  dispose(): void;
}

/**
 * Every provider the options name, the keyring file first.
 * @param stdinIsInput - whether stdin is the input (then no passphrase prompt is possible).
 * @throws InvalidParameterError when none is named, or for bad options; KeyringFileError.
 */
export async function openProviders(args: KeyringArgs & AlibabaArgs, stdinIsInput: boolean, signal: AbortSignal): Promise<ProviderSet> {
  if (args.keyring === undefined && (args['passphrase-env'] !== undefined || args['unprotected-keyring'])) {
    throw new InvalidParameterError('--passphrase-env and --unprotected-keyring need --keyring FILE');
  }
  // Alibaba first: its checks are cheap and a keyring passphrase should not be asked for in vain.
  const alibaba = alibabaProvider(args, signal);
  const providers: KeyProvider[] = [];
  let opened: OpenKeyring | undefined;
  if (args.keyring !== undefined) {
    opened = await openKeyringFile(args, stdinIsInput);
    providers.push(opened.keyring);
  }
  if (alibaba) providers.push(alibaba);
  if (providers.length === 0) throw new InvalidParameterError('no key provider: give --keyring FILE, or --alibaba-endpoint URL / --alibaba-region ID');
  return {
    providers,
    dispose: () => {
      if (opened) {
        opened.keyring.destroy();
        wipeAccess(opened.access);
      }
    },
  };
}
