/**
 * The exit status of `envelope-kit` for each kind of failure, and the one line
 * printed for an error. The status comes from the error's stable `code`: the
 * library's codes (src/core/errors.ts), a file system's `E...` code for I/O,
 * or an interruption by a signal. The line never holds a stack trace, and only
 * the message the error itself carries (the library's messages never hold a
 * secret; the command line never puts one in its own).
 * @module
 */
import type { ErrorCode } from '../core/errors.js';

/** Every exit status `envelope-kit` uses. */
export const EXIT = /* @__PURE__ */ Object.freeze({
  /** Done. */
  ok: 0,
  /** Any failure outside the categories below. */
  other: 1,
  /** A bad command line or option value (`ERR_INVALID_PARAMETER`). */
  usage: 2,
  /** Decryption failed, or the input is not a well-formed envelope this release reads. */
  decryption: 3,
  /** The key is not found or disabled, or no provider given can open the envelope. */
  key: 4,
  /** A key provider failed (a KMS error, the network, a timeout). */
  provider: 5,
  /** Reading the input or writing the output failed, or the output exists (without `--force`). */
  io: 6,
  /** The keyring file cannot be read (wrong passphrase, corrupt, tampered) or would lose keys. */
  keyring: 7,
  /** Interrupted by SIGHUP (128 + 1). */
  sighup: 129,
  /** Interrupted by SIGINT, Ctrl-C (128 + 2). */
  sigint: 130,
  /** Interrupted by SIGTERM (128 + 15). */
  sigterm: 143,
});

/** The library's error codes, and the exit status each one gives. */
const BY_CODE: Readonly<Record<ErrorCode, number>> = /* @__PURE__ */ Object.freeze({
  ERR_INVALID_PARAMETER: EXIT.usage,
  ERR_MALFORMED_ENVELOPE: EXIT.decryption,
  ERR_UNSUPPORTED_VERSION: EXIT.decryption,
  ERR_DECRYPTION_FAILED: EXIT.decryption,
  ERR_NO_MATCHING_PROVIDER: EXIT.key,
  ERR_KEY_NOT_FOUND: EXIT.key,
  ERR_KEY_DISABLED: EXIT.key,
  ERR_PROVIDER: EXIT.provider,
  ERR_KEYRING_FILE: EXIT.keyring,
  // Not thrown by the operations of the command line (they are the record APIs').
  ERR_UNSUPPORTED_VALUE: EXIT.other,
  ERR_MALFORMED_VALUE: EXIT.other,
  ERR_SCHEMA_MISMATCH: EXIT.other,
  ERR_UNENCRYPTED_FIELD: EXIT.other,
  ERR_FIELD_NOT_FOUND: EXIT.other,
});

/** The signals the command line stops on, and the exit status of each. */
export const SIGNAL_EXIT = /* @__PURE__ */ Object.freeze({ SIGHUP: EXIT.sighup, SIGINT: EXIT.sigint, SIGTERM: EXIT.sigterm });
/** A signal the command line stops on. */
export type StopSignal = keyof typeof SIGNAL_EXIT;

/**
 * The run was stopped by a signal: the output is removed and the exit status is 128 + the signal's number.
 */
export class InterruptedError extends Error {
  override readonly name: string = 'InterruptedError';
  /** The signal, or `SIGINT` for a Ctrl-C typed at a passphrase prompt. */
  readonly signal: StopSignal;
  /** The signal's name, printed as the code. */
  readonly code: string;
  constructor(signal: StopSignal) {
    super('interrupted');
    this.signal = signal;
    this.code = signal;
  }
}

/**
 * A file could not be read or written, or an output exists. `code` is the
 * file system's (`ENOENT`, `EEXIST`, `ENOSPC`, `EFBIG`, `EPIPE`...).
 */
export class FileError extends Error {
  override readonly name: string = 'FileError';
  /** The system error code. */
  readonly code: string;
  /**
   * @param message - what failed, naming the file (never its content).
   * @param code - the system error code.
   * @param options - `cause`: the underlying error.
   */
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

function codeOf(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  try {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** A system error code such as `ENOENT` (never one of the library's `ERR_...` codes). */
function isSystemCode(code: string | undefined): code is string {
  return code !== undefined && /^E[A-Z0-9]{2,}$/.test(code);
}

/**
 * The exit status for an error.
 * @param error - anything thrown.
 * @returns 2, 3, 4, 5 or 7 for the library's codes (see {@link EXIT}), 6 for a system error
 *   (`E...` code), 129/130/143 for an {@link InterruptedError}, 1 for anything else.
 */
export function exitCodeFor(error: unknown): number {
  if (error instanceof InterruptedError) return SIGNAL_EXIT[error.signal];
  const code = codeOf(error);
  if (code !== undefined && Object.prototype.hasOwnProperty.call(BY_CODE, code)) return BY_CODE[code as ErrorCode];
  if (isSystemCode(code)) return EXIT.io;
  return EXIT.other;
}

/** Longest message printed: a guard against an error that carries a whole file in its message. */
const MAX_MESSAGE_LENGTH = 1000;

/**
 * The one line printed on stderr for an error: `envelope-kit: <message> (<CODE>)`, with control
 * characters of the message escaped and no stack trace.
 * @param error - anything thrown.
 * @returns the line, ending with a newline.
 */
export function errorLine(error: unknown): string {
  let message: string;
  try {
    message = error instanceof Error ? String(error.message) : String(error);
  } catch {
    message = 'unknown error';
  }
  // Node's system errors start with their code ("ENOENT: no such file..."): it is printed once, at the end.
  const code = codeOf(error) ?? (error instanceof Error ? error.name : 'ERROR');
  if (message.startsWith(`${code}: `)) message = message.slice(code.length + 2);
  if (message.length > MAX_MESSAGE_LENGTH) message = message.slice(0, MAX_MESSAGE_LENGTH) + '...';
  message = escapeControl(message) || 'failed';
  return `envelope-kit: ${message} (${escapeControl(code)})\n`;
}

/**
 * A string safe to print on a terminal: C0 and C1 control characters (escape sequences) and
 * lone surrogates written as `\xNN` / `\uNNNN`.
 */
export function escapeControl(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}
