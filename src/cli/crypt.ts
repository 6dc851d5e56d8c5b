/**
 * `envelope-kit encrypt` and `envelope-kit decrypt`. A regular file to a file
 * goes through the library's `encryptFile` / `decryptFile`; anything else
 * (stdin, a FIFO, a text envelope, stdout, a device) through `encryptStream`
 * or decrypt-source.ts, into the library's `writeStreamAtomic` for a file. A
 * file output is atomic (a temporary file in the target's folder, fsynced,
 * renamed), and its temporary file is handed to the guardian and the stop
 * signals (io.ts `tempFileHooks`), so no failure leaves it behind.
 *
 * Decryption releases a segment only once its tag has been checked, so stdout
 * receives authenticated plaintext only; but a failure in the middle of a
 * stream leaves the segments before it written there, and the exit status is
 * then non-zero. A file output never appears unless the whole input decrypted.
 * @module
 */
import { existsSync } from 'node:fs';
import type { DecryptOptions } from '../core/envelope.js';
import { EnvelopeKitError, InvalidParameterError } from '../core/errors.js';
import { SEGMENT_LIMITS } from '../core/format.js';
import { type AtomicWriteOptions, decryptFile, encryptFile, writeStreamAtomic } from '../stream/node.js';
import { type EncryptStreamOptions, encryptStream } from '../stream/web.js';
import { parseCommand, parseContext, parseList, parseSize } from './args.js';
import { decryptingStream } from './decrypt-source.js';
import { FileError } from './exit-codes.js';
import { fileError, openInput, type OutputPlan, planOutput, tempFileHooks, writeToDevice, writeToStdout } from './io.js';
import { createProgress } from './progress.js';
import { ALIBABA_OPTIONS, KEYRING_OPTIONS, openProviders, type ProviderSet } from './providers.js';
import type { CommandIo } from './run.js';

const PROVIDER_HELP = `providers:
  --keyring FILE             a keyring file (see envelope-kit keys)
  --passphrase-env NAME      read its passphrase from environment variable NAME; without it,
                             the passphrase is asked for on the terminal (echo off) when stdin
                             is a terminal and not the input. Never taken as an argument.
  --unprotected-keyring      the keyring file keeps its master keys in clear (no passphrase)
  --alibaba-endpoint URL     Alibaba Cloud KMS at this endpoint (a VPC endpoint, a KMS
                             instance's gateway; http:// only to a loopback address)
  --alibaba-region ID        Alibaba Cloud KMS of this region (https://kms.ID.aliyuncs.com/)
                             AccessKey from ALIBABA_CLOUD_ACCESS_KEY_ID,
                             ALIBABA_CLOUD_ACCESS_KEY_SECRET (and ALIBABA_CLOUD_SECURITY_TOKEN)`;

const OUTPUT_HELP = `  -o, --output FILE|-        where to write (default: stdout); a file is written atomically:
                             a temporary file in the same folder, fsynced, then renamed
  -f, --force                replace an existing output file
  -q, --quiet                no progress bar
  -h, --help                 show this help`;

/** The usage text of `envelope-kit encrypt`. */
export const ENCRYPT_USAGE = `usage: envelope-kit encrypt FILE|- [-o FILE|-] --key-id KEY (--keyring FILE | --alibaba-endpoint URL | --alibaba-region ID) [options]

Encrypt FILE (or stdin, "-") into a framed envelope: a header, then segments each
authenticated on its own, so that decryption can stream.

options:
  --key-id KEY               master key id or alias (required)
  --context KEY=VALUE        encryption context entry (repeatable); stored in the envelope in
                             clear and authenticated: never put secrets in it
  --segment-size SIZE        plaintext bytes per segment, 4096 to 16 MiB (default 64 KiB;
                             units k, KiB, m, MiB)
  --record-id ID             bind the envelope to this record id (a string; not stored:
                             decrypt needs it again)
  --record-version V         bind it to this record version (a string; as --record-id)
${OUTPUT_HELP}

${PROVIDER_HELP}

A progress bar (bytes, rate, time left) is drawn on stderr when it is a terminal and the
input is larger than 4 MiB. Binary output is not written to a terminal unless "-o -" is given.
Exit statuses: see envelope-kit --help.
`;

/** The usage text of `envelope-kit decrypt`. */
export const DECRYPT_USAGE = `usage: envelope-kit decrypt FILE|- [-o FILE|-] (--keyring FILE | --alibaba-endpoint URL | --alibaba-region ID)... [options]

Decrypt an envelope from FILE (or stdin, "-"). Several providers may be given: each of
the envelope's data keys is offered to the one it names.

options:
  --context KEY=VALUE        an entry the envelope's context must hold (repeatable); anything
                             else fails as a decryption failure
  --key-ids ID[,ID...]       accept only envelopes whose data key was unwrapped by one of
                             these master keys (key ids, not aliases; repeatable)
  --record-id ID             the record id the envelope was bound to
  --record-version V         the record version it was bound to
${OUTPUT_HELP}

${PROVIDER_HELP}

To a file, the output appears only when the whole envelope has decrypted and
authenticated: on a failure (a tampered segment, a wrong key, a truncated input, a
full disk, Ctrl-C) no output file and no temporary file remain. To stdout, only
authenticated segments are written, but a failure in the middle of the stream leaves
the segments before it written; the exit status is then non-zero.
Exit statuses: see envelope-kit --help.
`;

const CRYPT_OPTIONS = {
  ...KEYRING_OPTIONS,
  ...ALIBABA_OPTIONS,
  output: { type: 'string', short: 'o' },
  context: { type: 'string', multiple: true },
  'record-id': { type: 'string' },
  'record-version': { type: 'string' },
  force: { type: 'boolean', short: 'f' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

const ENCRYPT_OPTIONS = { ...CRYPT_OPTIONS, 'key-id': { type: 'string' }, 'segment-size': { type: 'string' } } as const;
const DECRYPT_OPTIONS = { ...CRYPT_OPTIONS, 'key-ids': { type: 'string', multiple: true } } as const;

/** The record binding options, checked (the library's checks would name its own option names). */
function binding(value: string | undefined, option: string): string | undefined {
  if (value === undefined) return undefined;
  if (value.length === 0) throw new InvalidParameterError(`${option} must not be empty`);
  return value;
}

/**
 * Run `envelope-kit encrypt ...` or `envelope-kit decrypt ...`.
 * @param command - which one.
 * @param args - the arguments after the command's name.
 * @returns the exit status (0).
 * @throws the library's errors (decryption failed, key not found, provider failure...),
 *   InvalidParameterError for a bad command line, FileError for I/O.
 */
export async function cryptCommand(command: 'encrypt' | 'decrypt', args: readonly string[], io: CommandIo): Promise<number> {
  const encrypting = command === 'encrypt';
  const { values, positionals } = parseCommand(args, encrypting ? ENCRYPT_OPTIONS : DECRYPT_OPTIONS, 1);
  if (values.help) {
    io.stdout.write(encrypting ? ENCRYPT_USAGE : DECRYPT_USAGE);
    return 0;
  }
  const inputSpec = positionals[0];
  if (inputSpec === undefined || inputSpec === '') throw new InvalidParameterError(`${command} needs an input: a file, or - for stdin`);
  const v = values as Record<string, string | boolean | string[] | undefined>;
  const context = parseContext(v.context as string[] | undefined);
  const recordId = binding(v['record-id'] as string | undefined, '--record-id');
  const recordVersion = binding(v['record-version'] as string | undefined, '--record-version');
  let keyId: string | undefined;
  let segmentSize: number | undefined;
  let keyIds: string[] | undefined;
  if (encrypting) {
    keyId = v['key-id'] as string | undefined;
    if (keyId === undefined || keyId === '') throw new InvalidParameterError('encrypt needs --key-id KEY (a key id or alias)');
    const seg = v['segment-size'] as string | undefined;
    if (seg !== undefined) segmentSize = parseSize(seg, '--segment-size', SEGMENT_LIMITS.min, SEGMENT_LIMITS.max);
    if (v.keyring !== undefined && (v['alibaba-endpoint'] !== undefined || v['alibaba-region'] !== undefined)) {
      throw new InvalidParameterError('encrypt takes one provider: --keyring or --alibaba-endpoint/--alibaba-region, not both');
    }
  } else {
    keyIds = parseList(v['key-ids'] as string[] | undefined);
  }

  const outputSpec = v.output as string | undefined;
  const toStdout = outputSpec === undefined || outputSpec === '-';
  if (encrypting && outputSpec === undefined && io.stdout.isTTY) {
    throw new InvalidParameterError('refusing to write an envelope (binary) to a terminal: give -o FILE, or -o - to insist');
  }
  if (toStdout && v.force) throw new InvalidParameterError('--force applies to an output file only');
  // Checked before anything is read or asked for: an output that exists, a missing input.
  const plan: OutputPlan | undefined = toStdout ? undefined : await planOutput(outputSpec, v.force === true);
  const input = await openInput(inputSpec);
  const progress = createProgress(input.size, v.quiet === true, io.stderr);
  const hooks = tempFileHooks(io.session);
  const unregister = io.session.onStop(() => progress.clear());
  let set: ProviderSet | undefined;
  try {
    set = await openProviders(v, input.isStdin, io.session.signal);
    const atomic = { overwrite: v.force === true, signal: io.session.signal, onTempFile: hooks.onTempFile };
    const onProgress = (done: number) => progress.update(done);
    if (encrypting) {
      const options: EncryptStreamOptions = {
        provider: set.providers[0]!,
        keyId: keyId!,
        ...(context ? { encryptionContext: context } : {}),
        ...(segmentSize !== undefined ? { segmentSize } : {}),
        ...(recordId !== undefined ? { recordId } : {}),
        ...(recordVersion !== undefined ? { recordVersion } : {}),
      };
      // An envelope is not secret: the usual mode of a new file (0666 less the umask).
      if (plan && !plan.device && input.regular) {
        await input.close();
        await encryptFile(input.name, plan.file, { ...options, ...atomic, mode: 0o666, onProgress });
      } else {
        const envelope = input.stream(onProgress).pipeThrough(encryptStream(options));
        await writeOut(envelope, plan, { ...atomic, mode: 0o666 }, io);
      }
    } else {
      const options: DecryptOptions = {
        providers: set.providers,
        ...(context ? { encryptionContext: context } : {}),
        ...(keyIds ? { keyIds } : {}),
        ...(recordId !== undefined ? { recordId } : {}),
        ...(recordVersion !== undefined ? { recordVersion } : {}),
      };
      // Plaintext: readable by its owner only (mode 0600).
      if (plan && !plan.device && input.regular && !(await input.startsWithText())) {
        await input.close();
        await decryptFile(input.name, plan.file, { ...options, ...atomic, mode: 0o600, onProgress });
      } else {
        const plaintext = await decryptingStream(input.stream(onProgress), options);
        await writeOut(plaintext, plan, { ...atomic, mode: 0o600 }, io);
      }
    }
  } catch (e) {
    // The library refuses (InvalidParameterError) an output that appeared while it was written.
    if (e instanceof InvalidParameterError && plan && !plan.exists && !plan.device && !v.force && existsSync(plan.file)) {
      throw new FileError(`output file ${plan.file} appeared while it was written; it was left untouched (--force replaces it)`, 'EEXIST', { cause: e });
    }
    throw describeFailure(e, input.name, outputSpec ?? 'stdout');
  } finally {
    hooks.done();
    progress.clear();
    unregister();
    await input.close();
    set?.dispose();
  }
  return 0;
}

/** Write to the output: a file atomically, a device in place, or stdout. */
async function writeOut(source: ReadableStream<Uint8Array>, plan: OutputPlan | undefined, atomic: AtomicWriteOptions, io: CommandIo): Promise<void> {
  if (!plan) await writeToStdout(source, io.stdout);
  else if (plan.device) await writeToDevice(plan.file, source);
  else await writeStreamAtomic(plan.file, source, atomic);
}

/** A system error of the library's file functions, as a FileError naming the file it concerns. */
function describeFailure(e: unknown, input: string, output: string): unknown {
  if (e instanceof EnvelopeKitError || e instanceof FileError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code)) return e;
  const syscall = (e as { syscall?: unknown }).syscall;
  const reading = syscall === 'read' || (syscall === 'open' && (e as { path?: unknown }).path === input);
  return fileError(reading ? 'read' : 'write', reading ? input : output, e);
}
