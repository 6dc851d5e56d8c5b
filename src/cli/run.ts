/**
 * The `envelope-kit` command line: the commands, the top-level help (with the
 * exit statuses), and the one place where an error becomes one line on stderr
 * and an exit status (exit-codes.ts).
 * @module
 */
import { InvalidParameterError } from '../core/errors.js';
import { cryptCommand, DECRYPT_USAGE, ENCRYPT_USAGE } from './crypt.js';
import { errorLine, exitCodeFor } from './exit-codes.js';
import { inspectCommand, INSPECT_USAGE } from './inspect.js';
import { KEYS_USAGE, keysCommand } from './keys.js';
import { REWRAP_USAGE, rewrapCommand } from './rewrap.js';
import { type Session, startSession } from './session.js';

/** What a command writes to, and the run it belongs to. */
export interface CommandIo {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly session: Session;
}

/** The exit statuses, as `--help` lists them. */
export const EXIT_STATUS_HELP = `exit status:
  0    success
  1    any other failure
  2    bad command line or option value (ERR_INVALID_PARAMETER)
  3    decryption failed, or the input is not an envelope this release reads
       (ERR_DECRYPTION_FAILED, ERR_MALFORMED_ENVELOPE, ERR_UNSUPPORTED_VERSION)
  4    key not found or disabled, or no provider given matches the envelope
       (ERR_KEY_NOT_FOUND, ERR_KEY_DISABLED, ERR_NO_MATCHING_PROVIDER)
  5    the key provider failed: a KMS error, the network, a timeout (ERR_PROVIDER)
  6    reading the input or writing the output failed, or the output exists
       without --force (ENOENT, EEXIST, ENOSPC, EFBIG, EPIPE, ...)
  7    the keyring file cannot be read (wrong passphrase, corrupt, tampered) or
       would lose keys another writer added (ERR_KEYRING_FILE)
  129, 130, 143
       stopped by SIGHUP, SIGINT (Ctrl-C) or SIGTERM; the output file is removed
`;

/** The top-level usage text. */
export const USAGE = `usage: envelope-kit <command> [options]

Envelope encryption of files and streams with a keyring file or Alibaba Cloud KMS.

commands:
  encrypt FILE|-    encrypt a file or stdin into a framed envelope
  decrypt FILE|-    decrypt an envelope (framed or single pass)
  inspect FILE|-    print an envelope's header (no key needed, nothing secret)
  rewrap FILE...|-  change the master keys that can open envelopes, in place (body untouched)
  keys ...          manage the master keys of a keyring file
  help [COMMAND]    show this help, or a command's

envelope-kit COMMAND --help shows each command's options.

Errors are printed as one line on stderr: "envelope-kit: <message> (<CODE>)".

${EXIT_STATUS_HELP}`;

const COMMAND_USAGE: Readonly<Record<string, string>> = Object.freeze({
  encrypt: ENCRYPT_USAGE,
  decrypt: DECRYPT_USAGE,
  inspect: INSPECT_USAGE,
  keys: KEYS_USAGE,
  rewrap: REWRAP_USAGE,
});

/**
 * Run one command line.
 * @param argv - the arguments after the program's name.
 * @param io - where output goes and the run's session.
 * @returns the exit status.
 * @throws whatever the command throws (see {@link main} for how it is reported).
 */
export async function runCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      io.stderr.write(USAGE);
      return 2;
    case '-h':
    case '--help':
      io.stdout.write(USAGE);
      return 0;
    case 'help': {
      const topic = rest[0];
      io.stdout.write(topic !== undefined && Object.prototype.hasOwnProperty.call(COMMAND_USAGE, topic) ? COMMAND_USAGE[topic]! : USAGE);
      return 0;
    }
    case 'encrypt':
    case 'decrypt':
      return cryptCommand(command, rest, io);
    case 'inspect':
      return inspectCommand(rest, io);
    case 'keys':
      return keysCommand(rest, io);
    case 'rewrap':
      return rewrapCommand(rest, io);
    default:
      throw new InvalidParameterError(`unknown command${/^[a-z-]{1,20}$/.test(command) ? ` ${command}` : ''} (see envelope-kit --help)`);
  }
}

/**
 * The program: run the command line, print an error as one line, and return the exit status.
 * Stop signals are handled for the whole run (session.ts).
 * @param argv - the arguments after the program's name.
 * @returns the exit status.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const session = startSession(process.stderr);
  try {
    return await runCommand(argv, { stdout: process.stdout, stderr: process.stderr, session });
  } catch (e) {
    process.stderr.write(errorLine(e));
    return exitCodeFor(e);
  } finally {
    session.end();
  }
}
