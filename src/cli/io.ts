/**
 * Input and output of `encrypt` and `decrypt`: the input file or stdin as a
 * Web stream; the checks made on an output file before anything is read or
 * asked for; the hooks that hand the temporary file of an atomic write (the
 * library's `encryptFile`, `decryptFile`, `writeStreamAtomic`: a temporary
 * file in the target's folder, fsynced, renamed) to the guardian and to the
 * stop signals; and stdout with back-pressure (which cannot be atomic: what was
 * written stays written).
 * @module
 */
import { constants, fstatSync, promises as fs, type Stats, unlinkSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { TEXT_PREFIX } from '../core/format.js';
import { isTextPrefix } from './decrypt-source.js';
import { FileError } from './exit-codes.js';
import type { Session } from './session.js';

/** Bytes read from an input file at a time. */
const READ_CHUNK = 256 * 1024;

function systemCode(e: unknown): string {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' && /^E[A-Z0-9]+$/.test(c) ? c : 'EIO';
}

/** `no such file or directory` out of Node's `ENOENT: no such file or directory, open 'x'`. */
function reason(e: unknown): string {
  const m = e instanceof Error ? /^E[A-Z0-9]+: ([^,]+)/.exec(e.message) : null;
  return m ? m[1]! : 'input/output error';
}

/** A FileError for a failed operation on `file`. */
export function fileError(what: string, file: string, e: unknown): FileError {
  if (e instanceof FileError) return e;
  return new FileError(`cannot ${what} ${file}: ${reason(e)}`, systemCode(e), { cause: e });
}

/** The input of a command: a file, or stdin (`-`). */
export interface Input {
  /** The file's path, or `stdin`. */
  readonly name: string;
  readonly isStdin: boolean;
  /** A regular file named on the command line (not stdin, a FIFO or a device): it can be read at offsets. */
  readonly regular: boolean;
  /** Its size in bytes when known (a regular file, also as stdin), else undefined. */
  readonly size: number | undefined;
  /** Device and inode of a regular file (to recognise the output being the input). */
  readonly stats: Stats | undefined;
  /**
   * The bytes, once. `onBytes` is told the running total.
   * @throws FileError (through the stream) when a read fails.
   */
  stream(onBytes?: (total: number) => void): ReadableStream<Uint8Array>;
  /** Whether the file begins like a text envelope (`ek1.`); false for stdin (nothing is consumed). */
  startsWithText(): Promise<boolean>;
  /** Close the file (nothing for stdin). */
  close(): Promise<void>;
}

/**
 * Open the input: `-` is stdin, anything else a file path.
 * @throws FileError when the file cannot be opened or is a folder.
 */
export async function openInput(spec: string): Promise<Input> {
  if (spec === '-') {
    let stats: Stats | undefined;
    try {
      const st = fstatSync(0);
      stats = st.isFile() ? st : undefined;
    } catch {
      stats = undefined;
    }
    return {
      name: 'stdin',
      isStdin: true,
      regular: false,
      size: stats?.size,
      stats,
      stream: (onBytes) => {
        const web = Readable.toWeb(process.stdin) as ReadableStream<Uint8Array>;
        let total = 0;
        return web.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, c) {
              total += chunk.length;
              onBytes?.(total);
              c.enqueue(chunk);
            },
          }),
        );
      },
      startsWithText: async () => false,
      close: async () => {},
    };
  }
  let fh: FileHandle;
  try {
    fh = await fs.open(spec, 'r');
  } catch (e) {
    throw fileError('read', spec, e);
  }
  let stats: Stats;
  try {
    stats = await fh.stat();
    if (stats.isDirectory()) throw Object.assign(new Error('EISDIR: is a directory'), { code: 'EISDIR' });
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw fileError('read', spec, e);
  }
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await fh.close().catch(() => undefined);
  };
  return {
    name: spec,
    isStdin: false,
    regular: stats.isFile(),
    size: stats.isFile() ? stats.size : undefined,
    stats: stats.isFile() ? stats : undefined,
    stream: (onBytes) => {
      let total = 0;
      return new ReadableStream<Uint8Array>(
        {
          async pull(c) {
            const buf = new Uint8Array(READ_CHUNK);
            let n: number;
            try {
              ({ bytesRead: n } = await fh.read(buf, 0, buf.length, null));
            } catch (e) {
              await close();
              throw fileError('read', spec, e);
            }
            if (n === 0) {
              await close();
              c.close();
              return;
            }
            total += n;
            onBytes?.(total);
            c.enqueue(n === buf.length ? buf : buf.subarray(0, n));
          },
          cancel: close,
        },
        { highWaterMark: 0 },
      );
    },
    startsWithText: async () => {
      if (!stats.isFile()) return false;
      const head = new Uint8Array(TEXT_PREFIX.length);
      try {
        const { bytesRead } = await fh.read(head, 0, head.length, 0);
        return bytesRead === head.length && isTextPrefix(head);
      } catch (e) {
        throw fileError('read', spec, e);
      }
    },
    close,
  };
}

/** What was checked of an output file before anything is read or asked. */
export interface OutputPlan {
  /** The path given. */
  readonly file: string;
  /** Whether it exists now (a regular file is then replaced only with `--force`). */
  readonly exists: boolean;
  /**
   * True for a device, a FIFO or a socket (`/dev/null`, `/dev/stdout`): written to in place, as
   * stdout is, not replaced.
   */
  readonly device: boolean;
}

/**
 * Check an output file before anything is done: its folder exists, it is not a folder, and
 * without `force` it does not exist.
 * @throws FileError `EEXIST` when it exists and `force` is false; `ENOENT` when its folder is missing.
 */
export async function planOutput(file: string, force: boolean): Promise<OutputPlan> {
  let stats: Stats | undefined;
  try {
    stats = await fs.stat(file);
  } catch (e) {
    const code = systemCode(e);
    // A dangling symbolic link counts as existing: it is not silently replaced.
    if (code === 'ENOENT') stats = await fs.lstat(file).catch(() => undefined);
    else throw fileError('write', file, e);
  }
  if (stats?.isDirectory()) throw new FileError(`cannot write ${file}: it is a folder`, 'EISDIR');
  if (stats && !stats.isFile() && !stats.isSymbolicLink()) return { file, exists: true, device: true };
  if (stats && !force) throw new FileError(`output file ${file} exists (--force replaces it)`, 'EEXIST');
  try {
    const dir = await fs.stat(path.dirname(file));
    if (!dir.isDirectory()) throw Object.assign(new Error('ENOTDIR: not a directory'), { code: 'ENOTDIR' });
  } catch (e) {
    throw fileError('write', file, e);
  }
  return { file, exists: stats !== undefined, device: false };
}

/** The hooks that hand an atomic write's temporary file to the guardian and to the stop signals. */
export interface TempFileHooks {
  /** Pass as `onTempFile` to the library's atomic writers. */
  readonly onTempFile: (tempPath: string) => void;
  /** Call when the write is over, whatever its outcome (the file is renamed or removed). */
  done(): void;
}

/**
 * Hooks for an atomic write: the temporary file, once it exists, is handed to the guardian (which
 * removes it if the process dies, SIGKILL included) and to the stop-signal handlers (which remove
 * it before the process exits).
 */
export function tempFileHooks(session: Session): TempFileHooks {
  const temps: string[] = [];
  const unregister: (() => void)[] = [];
  return {
    onTempFile(tempPath) {
      temps.push(tempPath);
      void session.guardian().watch(tempPath);
      unregister.push(
        session.onStop(() => {
          try {
            unlinkSync(tempPath);
          } catch {
            // already renamed into place, or removed
          }
        }),
      );
    },
    done() {
      for (const u of unregister) u();
      for (const t of temps) session.guardian().release(t);
      temps.length = 0;
      unregister.length = 0;
    },
  };
}

/**
 * Write a stream to stdout, waiting for each chunk to be taken (back-pressure).
 * @throws the source's error, or FileError when stdout fails (`EPIPE`, `ENOSPC`...).
 */
export async function writeToStdout(source: ReadableStream<Uint8Array>, out: NodeJS.WriteStream = process.stdout): Promise<void> {
  let failure: unknown;
  const onError = (e: unknown) => {
    failure ??= e;
  };
  out.on('error', onError);
  const reader = source.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (failure !== undefined) throw fileError('write', 'stdout', failure);
      await new Promise<void>((resolve, reject) => {
        out.write(value, (err) => (err ? reject(fileError('write', 'stdout', err)) : resolve()));
      });
    }
    if (failure !== undefined) throw fileError('write', 'stdout', failure);
  } catch (e) {
    await reader.cancel(e).catch(() => undefined);
    throw e;
  } finally {
    out.off('error', onError);
    // A later failure (the reader of a pipe went away) must not end the process with a stack trace.
    out.on('error', () => {});
  }
}

/**
 * Write a stream to a device or FIFO in place (`/dev/null`, `/dev/full`, a named pipe): like
 * stdout, not atomic.
 * @throws the source's error, or FileError when a write fails.
 */
export async function writeToDevice(file: string, source: ReadableStream<Uint8Array>): Promise<void> {
  const reader = source.getReader();
  let fh: FileHandle | undefined;
  try {
    try {
      fh = await fs.open(file, constants.O_WRONLY);
    } catch (e) {
      throw fileError('write', file, e);
    }
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      try {
        for (let off = 0; off < value.length; ) off += (await fh.write(value, off, value.length - off)).bytesWritten;
      } catch (e) {
        throw fileError('write', file, e);
      }
    }
  } catch (e) {
    await reader.cancel(e).catch(() => undefined);
    throw e;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
