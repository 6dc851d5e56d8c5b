/**
 * Node adapters for framed envelopes (SPEC.md §14): files in and out, written atomically; a
 * range source over a file; `node:stream` duplexes for `pipeline`. Node-only, reached through
 * `envelope-kit/node`.
 *
 * The file functions seal and open whole blocks of segments in buffers they reuse, reading the
 * next block and writing the previous one while the current one is sealed, so that a file
 * streams at close to the machine's AES-GCM speed with memory bounded by a few blocks.
 * @module
 */
import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { TAG_LENGTH } from '../core/aead/types.js';
import {
  type DecryptOptions,
  checkDecryptOptions,
  checkEncryptOptions,
  type EnvelopeInfo,
  decryptChecked,
  envelopeInfo,
  type InspectOptions,
  checkInspectOptions,
  readOption,
  readRecordBinding,
} from '../core/envelope.js';
import { InvalidParameterError, MalformedEnvelopeError } from '../core/errors.js';
import { FORMAT_LIMITS, LAYOUT_FIELD, LAYOUT_FRAMED, LAYOUT_SINGLE, isTruncation, maxHeaderBytes, parseHeader } from '../core/format.js';
import { type SegmentCipher, beginFramedDecryption, beginFramedEncryption, checkParallel, checkSegmentSize, framedLayout } from '../core/framed.js';
import { byteView, wipe } from '../internal/bytes.js';
import { inFlight, removeStaleTempFiles, resolveTarget, tempName } from '../providers/local/file.node.js';
import { FramedWriter } from './framing.js';
import { type DecryptStreamOptions, type EncryptStreamOptions, decryptStream, encryptStream } from './web.js';
import type { RangeSource } from './range.js';

/** Options of {@link writeStreamAtomic} and the output side of the file functions. */
export interface AtomicWriteOptions {
  /**
   * Replace an existing output file. Without it an existing file is never touched: the write
   * fails with InvalidParameterError (checked at the start, and again, atomically, when the
   * finished file is put in place).
   */
  readonly overwrite?: boolean;
  /** Mode of the new file (default 0o600: readable by its owner only). */
  readonly mode?: number;
  /** Abort the write: the temporary file is removed and nothing is left. */
  readonly signal?: AbortSignal;
  /** Told the temporary file's path once it exists (e.g. to have it removed if the process is killed). */
  readonly onTempFile?: (tempPath: string) => void;
}

/** Options of {@link encryptFile}. */
export interface EncryptFileOptions extends EncryptStreamOptions, AtomicWriteOptions {
  /** Called as input is consumed: bytes read so far and the input's size when it started. */
  readonly onProgress?: (bytesRead: number, totalBytes: number) => void;
}

/** Options of {@link decryptFile}. */
export interface DecryptFileOptions extends DecryptStreamOptions, AtomicWriteOptions {
  /** Called as input is consumed: bytes read so far and the input's size. */
  readonly onProgress?: (bytesRead: number, totalBytes: number) => void;
}

/** What {@link decryptFile} reports. */
export interface DecryptFileResult {
  readonly keyId: string;
  readonly encryptionContext: Readonly<Record<string, string>>;
  /** Plaintext bytes written. */
  readonly plaintextLength: number;
}

/** Plaintext bytes per block the file functions read and seal at once: about 1 MiB, a whole number of segments. */
const BLOCK_BYTES = 1 << 20;

/** @internal */
export function checkPathArg(p: unknown, name: string): string {
  if (typeof p !== 'string' || p.length === 0) throw new InvalidParameterError(`"${name}" must be a non-empty path`);
  return p;
}

function checkAtomicOptions(options: unknown): { overwrite: boolean; mode: number; signal?: AbortSignal; onTempFile?: (p: string) => void } {
  const overwrite = readOption<unknown>(options, 'overwrite') ?? false;
  if (typeof overwrite !== 'boolean') throw new InvalidParameterError('"overwrite" must be a boolean');
  const mode = readOption<unknown>(options, 'mode') ?? 0o600;
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new InvalidParameterError('"mode" must be a file mode from 0 to 0o777');
  const signal = readOption<unknown>(options, 'signal');
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidParameterError('"signal" must be an AbortSignal');
  const onTempFile = readOption<unknown>(options, 'onTempFile');
  if (onTempFile !== undefined && typeof onTempFile !== 'function') throw new InvalidParameterError('"onTempFile" must be a function');
  return { overwrite, mode, ...(signal ? { signal } : {}), ...(onTempFile ? { onTempFile: onTempFile as (p: string) => void } : {}) };
}

function checkProgress(options: unknown): ((done: number, total: number) => void) | undefined {
  const f = readOption<unknown>(options, 'onProgress');
  if (f !== undefined && typeof f !== 'function') throw new InvalidParameterError('"onProgress" must be a function');
  return f as ((done: number, total: number) => void) | undefined;
}

function exists(e: unknown): boolean {
  return (e as { code?: string }).code === 'EEXIST';
}

/**
 * An output file being written: a temporary file in the target's folder (`.NAME.<pid>.<hex>.tmp`,
 * mode 0600 or the given one), made the target only by {@link AtomicFile.commit} (fsync, then a
 * rename, or a hard link when overwriting is not allowed, then an fsync of the folder).
 * {@link AtomicFile.abort} removes it.
 * @internal
 */
export class AtomicFile {
  private constructor(
    readonly target: string,
    readonly temp: string,
    readonly fh: FileHandle,
    readonly overwrite: boolean,
  ) {}

  static async create(file: string, o: { overwrite: boolean; mode: number; onTempFile?: (p: string) => void }): Promise<AtomicFile> {
    const target = await resolveTarget(file);
    if (!o.overwrite) {
      let found = false;
      try {
        await fs.lstat(target);
        found = true;
      } catch (e) {
        if ((e as { code?: string }).code !== 'ENOENT') throw e;
      }
      if (found) throw new InvalidParameterError(`${file} exists: refusing to overwrite it (pass "overwrite: true" to replace it)`);
    }
    await removeStaleTempFiles(target);
    const temp = tempName(target);
    inFlight.add(path.resolve(temp));
    let fh: FileHandle;
    try {
      fh = await fs.open(temp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, o.mode);
    } catch (e) {
      inFlight.delete(path.resolve(temp));
      throw e;
    }
    o.onTempFile?.(temp);
    return new AtomicFile(target, temp, fh, o.overwrite);
  }

  async commit(): Promise<void> {
    try {
      await this.fh.sync();
      await this.fh.close();
      if (this.overwrite) {
        await fs.rename(this.temp, this.target);
      } else {
        // link() fails if the target appeared meanwhile: an existing file is never replaced.
        try {
          await fs.link(this.temp, this.target);
        } catch (e) {
          if (exists(e)) throw new InvalidParameterError(`${this.target} appeared while it was written: refusing to overwrite it`);
          throw e;
        }
        await fs.rm(this.temp, { force: true });
      }
    } catch (e) {
      await this.abort();
      throw e;
    }
    inFlight.delete(path.resolve(this.temp));
    try {
      const d = await fs.open(path.dirname(this.target), 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch {
      // Some platforms cannot fsync a directory; the rename itself is still atomic.
    }
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await fs.rm(this.temp, { force: true }).catch(() => undefined);
    inFlight.delete(path.resolve(this.temp));
  }
}

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let o = 0;
  while (o < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, o, bytes.length - o);
    o += bytesWritten;
  }
}

/** Read until `buf` is full or the file ends; returns the bytes read. */
async function readFull(fh: FileHandle, buf: Uint8Array): Promise<number> {
  let n = 0;
  while (n < buf.length) {
    const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  return n;
}

/** @internal */
export function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InvalidParameterError('the operation was aborted', { cause: signal.reason });
}

/**
 * Write a stream of bytes to `file` atomically: into a temporary file in the same folder, fsynced,
 * then renamed (or linked, when overwriting is not allowed). On any failure (the source errors,
 * the disk is full, the signal aborts) the temporary file is removed and `file` is untouched.
 * @param file - the output path; a symbolic link is written through to its target.
 * @param source - a ReadableStream or any (async) iterable of Uint8Array chunks.
 * @param options - `overwrite` (default false: an existing file is an error), `mode` (default 0o600), `signal`, `onTempFile`.
 * @throws InvalidParameterError for an existing file without `overwrite`, or bad arguments; the source's or the file system's error.
 */
export async function writeStreamAtomic(
  file: string,
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: AtomicWriteOptions = {},
): Promise<void> {
  checkPathArg(file, 'file');
  const o = checkAtomicOptions(options);
  if (source === null || typeof source !== 'object') throw new InvalidParameterError('"source" must be a ReadableStream or an iterable of Uint8Array');
  aborted(o.signal);
  const out = await AtomicFile.create(file, o);
  try {
    for await (const chunk of source as AsyncIterable<Uint8Array>) {
      aborted(o.signal);
      const view = byteView(chunk);
      if (!view) throw new InvalidParameterError('stream chunks must be Uint8Array');
      await writeAll(out.fh, view);
    }
    aborted(o.signal);
  } catch (e) {
    await out.abort();
    throw e;
  }
  await out.commit();
}

/**
 * Encrypt the file `input` into a framed envelope at `output` (SPEC.md §14), atomically. Reads
 * and seals about 1 MiB of segments at a time into buffers it reuses; with `parallel` above 1
 * the segments go through WebCrypto instead.
 * @param input - the plaintext file.
 * @param output - where the envelope goes: never an existing file unless `overwrite` is true.
 * @param options - those of {@link encryptStream}, of {@link writeStreamAtomic}, and `onProgress`.
 * @throws InvalidParameterError for bad options or an existing output; the provider's and the file system's errors. On any failure no output file is left.
 * @example
 * ```ts
 * import { LocalKeyring } from 'envelope-kit';
 * import { encryptFile, decryptFile } from 'envelope-kit/node';
 * declare const provider: LocalKeyring; declare const keyId: string;
 * await encryptFile('backup.tar', 'backup.tar.ek', { provider, keyId, encryptionContext: { purpose: 'backup' } });
 * await decryptFile('backup.tar.ek', 'restored.tar', { provider, encryptionContext: { purpose: 'backup' } });
 * ```
 */
export async function encryptFile(input: string, output: string, options: EncryptFileOptions): Promise<void> {
  checkPathArg(input, 'input');
  checkPathArg(output, 'output');
  const { provider, keyId, also, keySpec, context, aead } = checkEncryptOptions(options, 'encryptFile');
  const binding = readRecordBinding(options);
  const segmentSize = checkSegmentSize(readOption(options, 'segmentSize'));
  const parallel = checkParallel(readOption(options, 'parallel'), readOption(options, 'aead') !== undefined);
  const atomic = checkAtomicOptions(options);
  const onProgress = checkProgress(options);
  aborted(atomic.signal);
  const src = await fs.open(input, 'r');
  let out: AtomicFile | undefined;
  let cipher: SegmentCipher | undefined;
  try {
    const total = (await src.stat()).size;
    out = await AtomicFile.create(output, atomic);
    const begun = await beginFramedEncryption(provider, keyId, keySpec, context, aead, binding, segmentSize, parallel, undefined, also);
    cipher = begun.cipher;
    await writeAll(out.fh, begun.header);
    if (parallel > 1) await encryptBlocksParallel(src, out.fh, cipher, segmentSize, total, atomic.signal, onProgress);
    else await encryptBlocks(src, out.fh, cipher, segmentSize, total, atomic.signal, onProgress);
    await out.commit();
    out = undefined;
  } finally {
    cipher?.dispose();
    await out?.abort();
    await src.close().catch(() => undefined);
  }
}

/**
 * The single-thread loop: blocks of whole segments, read ahead and written behind, each sealed
 * into one of two output buffers that are reused for the whole file.
 */
async function encryptBlocks(
  src: FileHandle,
  dst: FileHandle,
  cipher: SegmentCipher,
  segmentSize: number,
  total: number,
  signal: AbortSignal | undefined,
  onProgress: ((done: number, total: number) => void) | undefined,
): Promise<void> {
  const perBlock = Math.max(1, Math.floor(BLOCK_BYTES / segmentSize));
  const blockBytes = perBlock * segmentSize;
  const inBufs = [new Uint8Array(blockBytes), new Uint8Array(blockBytes)];
  const outBufs = [new Uint8Array(perBlock * (segmentSize + TAG_LENGTH)), new Uint8Array(perBlock * (segmentSize + TAG_LENGTH))];
  let writing: Promise<void> = Promise.resolve();
  let index = 0;
  let done = 0;
  try {
    let cur = 0;
    let curLen = await readFull(src, inBufs[0]!);
    for (;;) {
      aborted(signal);
      const pt = inBufs[cur]!;
      const outBuf = outBufs[cur]!;
      // A short block is the file's end; a full one is followed by a read of the next block while it is sealed.
      const full = curLen === blockBytes;
      const reading = full ? readFull(src, inBufs[cur ^ 1]!) : Promise.resolve(0);
      reading.catch(() => {});
      const segs = full ? perBlock : Math.max(1, Math.ceil(curLen / segmentSize));
      let o = 0;
      const sealOne = (s: number, last: boolean) => {
        const start = s * segmentSize;
        const end = Math.min(start + segmentSize, curLen);
        const n = end - start;
        cipher.seal(index++, last, pt.subarray(start, end), outBuf.subarray(o, o + n + TAG_LENGTH));
        o += n + TAG_LENGTH;
      };
      for (let s = 0; s < segs - 1; s++) sealOne(s, false);
      // Whether the block's last segment is the envelope's last is known once the next read tells.
      const nextLen = await reading;
      const final = nextLen === 0;
      sealOne(segs - 1, final);
      done += curLen;
      // Writes go one after the other (the previous one used the other buffer).
      await writing;
      writing = writeAll(dst, outBuf.subarray(0, o));
      writing.catch(() => {});
      onProgress?.(done, total);
      if (final) break;
      cur ^= 1;
      curLen = nextLen;
    }
    await writing;
  } finally {
    wipe(inBufs[0]!, inBufs[1]!);
  }
}

/** The parallel loop: the file read in blocks and fed to a {@link FramedWriter} on WebCrypto. */
async function encryptBlocksParallel(
  src: FileHandle,
  dst: FileHandle,
  cipher: SegmentCipher,
  segmentSize: number,
  total: number,
  signal: AbortSignal | undefined,
  onProgress: ((done: number, total: number) => void) | undefined,
): Promise<void> {
  const writer = new FramedWriter(cipher, segmentSize);
  const buf = new Uint8Array(Math.max(segmentSize, BLOCK_BYTES));
  let pending: Uint8Array[] = [];
  const emit = (b: Uint8Array) => pending.push(b);
  const flush = async () => {
    const parts = pending;
    pending = [];
    for (const p of parts) await writeAll(dst, p);
  };
  try {
    for (;;) {
      aborted(signal);
      const n = await readFull(src, buf);
      if (n === 0) break;
      await writer.write(buf.subarray(0, n), emit);
      await flush();
      onProgress?.(writer.bytesIn, total);
    }
    await writer.end(emit);
    await flush();
  } finally {
    writer.dispose();
    wipe(buf);
  }
}

/**
 * Decrypt the envelope file `input` into `output`, atomically: the output file appears only when
 * every segment verified; on any failure (a bad tag in any segment, a truncated file, an abort, a
 * full disk) no output file and no partial plaintext are left. Framed envelopes stream with bounded
 * memory; a single-pass envelope (from `encrypt`) is read whole and opened with `decrypt`.
 * @param input - the envelope file.
 * @param output - where the plaintext goes: never an existing file unless `overwrite` is true.
 * @param options - those of {@link decryptStream}, of {@link writeStreamAtomic}, and `onProgress`.
 * @returns the key id, the context and the plaintext's length.
 * @throws as `decrypt`, plus InvalidParameterError for an existing output; the file system's errors.
 */
export async function decryptFile(input: string, output: string, options: DecryptFileOptions): Promise<DecryptFileResult> {
  checkPathArg(input, 'input');
  checkPathArg(output, 'output');
  const checked = checkDecryptOptions(options);
  const binding = readRecordBinding(options);
  const parallel = checkParallel(readOption(options, 'parallel'), readOption(options, 'aead') !== undefined);
  const atomic = checkAtomicOptions(options);
  const onProgress = checkProgress(options);
  aborted(atomic.signal);
  const src = await fs.open(input, 'r');
  let out: AtomicFile | undefined;
  let cipher: SegmentCipher | undefined;
  try {
    const size = (await src.stat()).size;
    const { header, bodyOffset } = await readHeader(src, size, checked.maxEdks);
    if (header.layout === LAYOUT_SINGLE) {
      if (size > 2 ** 32 + bodyOffset + TAG_LENGTH) throw new MalformedEnvelopeError('a single-pass envelope holds at most 2^32 - 1 bytes');
      const whole = new Uint8Array(size);
      await readAt(src, whole, 0);
      const r = await decryptChecked(whole, checked, undefined, binding);
      try {
        out = await AtomicFile.create(output, atomic);
        await writeAll(out.fh, r.plaintext);
        await out.commit();
        out = undefined;
      } finally {
        wipe(r.plaintext);
      }
      onProgress?.(size, size);
      return { keyId: r.keyId, encryptionContext: r.encryptionContext, plaintextLength: r.plaintext.length };
    }
    const segmentSize = header.segmentSize!;
    const layout = framedLayout(size - bodyOffset, segmentSize);
    out = await AtomicFile.create(output, atomic);
    const begun = await beginFramedDecryption(header, checked, binding, parallel);
    cipher = begun.cipher;
    await decryptBlocks(src, out.fh, cipher, segmentSize, bodyOffset, size, layout.segments, parallel, atomic.signal, onProgress);
    await out.commit();
    out = undefined;
    return { keyId: begun.keyId, encryptionContext: header.context.map, plaintextLength: layout.plaintextLength };
  } finally {
    cipher?.dispose();
    await out?.abort();
    await src.close().catch(() => undefined);
  }
}

/** Fill `buf` from `position`; a file that ends first is a MalformedEnvelopeError. @internal */
export async function readAt(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let n = 0;
  while (n < buf.length) {
    const { bytesRead } = await fh.read(buf, n, buf.length - n, position + n);
    if (bytesRead === 0) throw new MalformedEnvelopeError('the file ended before its announced length (it changed while being read?)');
    n += bytesRead;
  }
}

/** The header of an envelope file: a prefix read, doubled until it parses. */
async function readHeader(
  fh: FileHandle,
  size: number,
  maxEdks: number,
  layouts: readonly number[] = [LAYOUT_SINGLE, LAYOUT_FRAMED],
): Promise<ReturnType<typeof parseHeader>> {
  const limit = Math.min(size, maxHeaderBytes(maxEdks));
  let want = Math.min(size, 4096);
  for (;;) {
    const prefix = new Uint8Array(want);
    await readAt(fh, prefix, 0);
    try {
      return parseHeader(prefix, maxEdks, layouts, 'prefix');
    } catch (e) {
      if (!isTruncation(e) || want >= limit) throw e;
      want = Math.min(limit, want * 2);
    }
  }
}

async function decryptBlocks(
  src: FileHandle,
  dst: FileHandle,
  cipher: SegmentCipher,
  segmentSize: number,
  bodyOffset: number,
  size: number,
  segments: number,
  parallel: number,
  signal: AbortSignal | undefined,
  onProgress: ((done: number, total: number) => void) | undefined,
): Promise<void> {
  const sealedSize = segmentSize + TAG_LENGTH;
  const perBlock = Math.max(1, Math.floor(BLOCK_BYTES / segmentSize));
  const blockBytes = perBlock * sealedSize;
  const inBufs = [new Uint8Array(blockBytes), new Uint8Array(blockBytes)];
  const outBufs = [new Uint8Array(perBlock * segmentSize), new Uint8Array(perBlock * segmentSize)];
  let writing: Promise<void> = Promise.resolve();
  let index = 0;
  let pos = bodyOffset;
  let done = 0;
  const readBlock = async (buf: Uint8Array): Promise<number> => {
    const n = Math.min(blockBytes, size - pos);
    const at = pos;
    pos += n;
    if (n > 0) await readAt(src, buf.subarray(0, n), at);
    return n;
  };
  try {
    let cur = 0;
    let curLen = await readBlock(inBufs[0]!);
    while (curLen > 0) {
      aborted(signal);
      const reading = readBlock(inBufs[cur ^ 1]!);
      reading.catch(() => {});
      const sealed = inBufs[cur]!;
      const outBuf = outBufs[cur]!;
      let o = 0;
      if (parallel > 1) {
        const jobs: (Promise<Uint8Array> | Uint8Array)[] = [];
        for (let s = 0; s * sealedSize < curLen; s++) {
          const start = s * sealedSize;
          const end = Math.min(start + sealedSize, curLen);
          const i = index++;
          const job = cipher.openAsync(i, i === segments - 1, sealed.subarray(start, end));
          // Awaited below, in order; those still in flight after a failure never are: not an unhandled rejection.
          if (job instanceof Promise) job.catch(() => {});
          jobs.push(job);
          if (jobs.length >= parallel) {
            const pt = await jobs.shift()!;
            outBuf.set(pt, o);
            o += pt.length;
            wipe(pt);
          }
        }
        for (const j of jobs) {
          const pt = await j;
          outBuf.set(pt, o);
          o += pt.length;
          wipe(pt);
        }
      } else {
        for (let s = 0; s * sealedSize < curLen; s++) {
          const start = s * sealedSize;
          const end = Math.min(start + sealedSize, curLen);
          const i = index++;
          const n = end - start - TAG_LENGTH;
          cipher.open(i, i === segments - 1, sealed.subarray(start, end), outBuf.subarray(o, o + n));
          o += n;
        }
      }
      done += curLen;
      await writing;
      writing = writeAll(dst, outBuf.subarray(0, o));
      writing.catch(() => {});
      onProgress?.(bodyOffset + done, size);
      cur ^= 1;
      curLen = await reading;
    }
    await writing;
  } finally {
    wipe(outBufs[0]!, outBufs[1]!);
  }
}

/**
 * `inspect` for an envelope file: reads its header only (a few KiB, however large the file) and
 * takes the lengths from the file's size. Nothing secret is read or reported.
 * @param file - a binary envelope file (single-pass, record field or framed).
 * @throws MalformedEnvelopeError, UnsupportedVersionError; the file system's errors.
 */
export async function inspectFile(file: string, options: InspectOptions = {}): Promise<EnvelopeInfo> {
  checkPathArg(file, 'file');
  const { providers } = checkInspectOptions(options);
  const fh = await fs.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const { header, bodyOffset } = await readHeader(fh, size, FORMAT_LIMITS.maxEncryptedDataKeys, [LAYOUT_SINGLE, LAYOUT_FIELD, LAYOUT_FRAMED]);
    if (header.layout !== LAYOUT_FRAMED && size - bodyOffset < TAG_LENGTH) throw new MalformedEnvelopeError('truncated: body');
    return envelopeInfo(header, bodyOffset, size, providers);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * A {@link RangeSource} over a file, for `decryptRange`: its size when opened, reads at offsets.
 * Close it when done.
 * @example
 * ```ts
 * import { decryptRange, LocalKeyring } from 'envelope-kit';
 * import { openFileSource } from 'envelope-kit/node';
 * declare const provider: LocalKeyring;
 * const source = await openFileSource('video.ek');
 * try {
 *   const { plaintext } = await decryptRange(source, { provider, offset: 5_000_000, length: 65536 });
 * } finally {
 *   await source.close();
 * }
 * ```
 */
export async function openFileSource(file: string): Promise<RangeSource & { close(): Promise<void> }> {
  checkPathArg(file, 'file');
  const fh = await fs.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    return {
      size,
      async read(offset: number, length: number): Promise<Uint8Array> {
        const buf = new Uint8Array(length);
        await readAt(fh, buf, offset);
        return buf;
      },
      close: () => fh.close(),
    };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

/**
 * {@link encryptStream} as a `node:stream` Duplex, for `pipeline(input, createEncryptStream(o), output)`.
 * @throws InvalidParameterError for bad options (synchronously).
 */
export function createEncryptStream(options: EncryptStreamOptions): Duplex {
  return Duplex.fromWeb(encryptStream(options) as unknown as import('node:stream/web').TransformStream);
}

/**
 * {@link decryptStream} as a `node:stream` Duplex. As with the Web stream, plaintext flows out
 * segment by segment, each only after it verified, and the duplex errors on any fault.
 * @throws InvalidParameterError for bad options (synchronously).
 */
export function createDecryptStream(options: DecryptOptions & { parallel?: number }): Duplex {
  return Duplex.fromWeb(decryptStream(options) as unknown as import('node:stream/web').TransformStream);
}

