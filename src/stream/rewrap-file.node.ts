/**
 * Re-wrapping an envelope file in place (SPEC.md §15): only its header is read and rewritten; the
 * body is copied as it is, byte for byte, into a temporary file beside the original, which is then
 * fsynced and renamed over it. Node-only, reached through `envelope-kit/node`.
 *
 * When the new header has the length of the old one (a key moved to another version or another
 * key of the same provider usually keeps the blob's length), the whole file is copied by the
 * kernel (`fs.copyFile`: a reflink or `copy_file_range` where the file system offers one) and the
 * header is then written over the copy's first bytes; otherwise the body is copied through two
 * large buffers, one read while the other is written.
 * @module
 */
import { promises as fs, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { InvalidParameterError, MalformedEnvelopeError } from '../core/errors.js';
import { keyVersionOf, readOption } from '../core/envelope.js';
import { FORMAT_LIMITS, LAYOUT_FIELD, LAYOUT_FRAMED, LAYOUT_SINGLE, parseHeader } from '../core/format.js';
import type { KeyProvider } from '../core/provider.js';
import { type EncryptedDataKeyInfo, type RewrapOptions, checkRewrapOptions, rewrapHeader } from '../core/rewrap.js';
import { resolveTarget } from '../providers/local/file.node.js';
import { AtomicFile, aborted, checkPathArg, readAt } from './node.js';

/** Options of {@link rewrapFile}: those of `rewrap`, and where and how the result is written. */
export interface RewrapFileOptions extends RewrapOptions {
  /**
   * Write the re-wrapped envelope here instead of replacing the file (written atomically too, with
   * the original's mode). Without `overwrite` an existing file is never replaced.
   */
  readonly output?: string;
  /** With `output`: replace an existing output file. */
  readonly overwrite?: boolean;
  /** Abort: the temporary file is removed and the original (and `output`) are left untouched. */
  readonly signal?: AbortSignal;
  /** Told the temporary file's path once it exists (e.g. to have it removed if the process is killed). */
  readonly onTempFile?: (tempPath: string) => void;
  /**
   * Work out the new header (the providers are asked, as for a real run) and report what would
   * change, but write nothing.
   */
  readonly dryRun?: boolean;
}

/** What {@link rewrapFile} did. */
export interface RewrapFileResult {
  /** Whether a rule changed the data-key list. When false and there is no `output`, nothing was written. */
  readonly changed: boolean;
  /** The header's length before and after, in bytes. */
  readonly headerBytes: { readonly before: number; readonly after: number };
  /** The body's length in bytes (copied unchanged). */
  readonly bodyBytes: number;
  /** The envelope's layout: `single pass`, `record field` or `framed`. */
  readonly layout: string;
  /** The encrypted data keys before and after, in order (no secret: provider, key id, version, blob length). */
  readonly keys: { readonly before: readonly EncryptedDataKeyInfo[]; readonly after: readonly EncryptedDataKeyInfo[] };
}

/** Bytes per buffer of the body copy (two are used, one read while the other is written). */
const COPY_BLOCK_BYTES = 8 << 20;

function checkFileOptions(options: unknown): { output?: string; overwrite: boolean; dryRun: boolean; signal?: AbortSignal; onTempFile?: (p: string) => void } {
  if (options === null || typeof options !== 'object') throw new InvalidParameterError('rewrapFile expects an options object');
  const output = readOption<unknown>(options, 'output');
  if (output !== undefined) checkPathArg(output, 'output');
  const overwrite = readOption<unknown>(options, 'overwrite') ?? false;
  if (typeof overwrite !== 'boolean') throw new InvalidParameterError('"overwrite" must be a boolean');
  if (overwrite && output === undefined) throw new InvalidParameterError('"overwrite" applies to "output" only (in place, the file is always replaced)');
  const dryRun = readOption<unknown>(options, 'dryRun') ?? false;
  if (typeof dryRun !== 'boolean') throw new InvalidParameterError('"dryRun" must be a boolean');
  const signal = readOption<unknown>(options, 'signal');
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidParameterError('"signal" must be an AbortSignal');
  const onTempFile = readOption<unknown>(options, 'onTempFile');
  if (onTempFile !== undefined && typeof onTempFile !== 'function') throw new InvalidParameterError('"onTempFile" must be a function');
  return {
    ...(output !== undefined ? { output: output as string } : {}),
    overwrite,
    dryRun,
    ...(signal ? { signal } : {}),
    ...(onTempFile ? { onTempFile: onTempFile as (p: string) => void } : {}),
  };
}

async function writeAllAt(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let o = 0;
  while (o < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, o, bytes.length - o, position + o);
    o += bytesWritten;
  }
}

/** What a header's data-key list says, the versions read by the providers that can (`describeBlob`). */
function keysOf(header: Uint8Array, providers: readonly KeyProvider[]): readonly EncryptedDataKeyInfo[] {
  const { header: h } = parseHeader(header, FORMAT_LIMITS.maxEncryptedDataKeys, [LAYOUT_SINGLE, LAYOUT_FIELD, LAYOUT_FRAMED], 'header');
  return Object.freeze(
    h.encryptedDataKeys.map((e) => {
      const keyVersion = keyVersionOf(e, providers);
      return Object.freeze({ providerId: e.providerId, keyId: e.keyId, blobLength: e.blob.length, ...(keyVersion !== undefined ? { keyVersion } : {}) });
    }),
  );
}

/** Whether two stats name the same file, unchanged (same inode, size and modification time). */
function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/**
 * Copy `src[from..size]` to `dst` from `at`: blocks of {@link COPY_BLOCK_BYTES}, the next one read
 * while the previous one is written.
 */
async function copyRange(src: FileHandle, dst: FileHandle, from: number, size: number, at: number, signal: AbortSignal | undefined): Promise<void> {
  const total = size - from;
  if (total === 0) return;
  const bufs = [new Uint8Array(Math.min(COPY_BLOCK_BYTES, total)), new Uint8Array(Math.min(COPY_BLOCK_BYTES, total))];
  let done = 0;
  let pendingWrite: Promise<void> = Promise.resolve();
  let i = 0;
  try {
    while (done < total) {
      aborted(signal);
      const n = Math.min(bufs[i]!.length, total - done);
      const buf = bufs[i]!.subarray(0, n);
      // The read of this block runs while the previous block is still being written.
      await Promise.all([readAt(src, buf, from + done), pendingWrite]);
      pendingWrite = writeAllAt(dst, buf, at + done);
      done += n;
      i ^= 1;
    }
    await pendingWrite;
  } catch (e) {
    await pendingWrite.catch(() => undefined);
    throw e;
  }
}

/**
 * Re-wrap an envelope file (SPEC.md §15): replace, remove or add encrypted data keys, reading only
 * the header and copying the body unchanged. In place (the default) the file is replaced
 * atomically: the new header and the old body go into a temporary file in the same folder, with
 * the original's mode (and owner, where allowed), which is fsynced and renamed over the original.
 * On any failure (a provider error, a full disk, the signal) the original is untouched and no
 * temporary file is left. When no rule changes anything, nothing is written in place.
 *
 * @param file - a binary envelope file (any layout). A symbolic link is followed: its target is replaced.
 * @param options - those of `rewrap` (providers, `replace`/`remove`/`add`, `recordId`/`recordVersion`),
 *   and `output` (write there instead, atomically; an existing file only with `overwrite: true`; the
 *   output is written even when no rule changed anything), `signal`, `onTempFile`, `dryRun` (report
 *   only: nothing is written).
 * @returns whether the data-key list changed, the header's lengths before and after, the body's length.
 * @throws as `rewrap`; InvalidParameterError for an existing output without `overwrite`, for a file that
 *   is not a regular file, or an aborted signal; MalformedEnvelopeError when the file changed while it
 *   was copied; the file system's errors.
 * @example
 * ```ts
 * import { LocalKeyring } from 'envelope-kit';
 * import { rewrapFile } from 'envelope-kit/node';
 * declare const keyring: LocalKeyring;
 * // After keyring.rotateKey('alias/backup'): move the file's data key to the newest version.
 * const r = await rewrapFile('backup.tar.ek', {
 *   provider: keyring,
 *   replace: [{ from: { keyId: keyring.resolveKeyId('alias/backup') }, to: { provider: keyring, keyId: 'alias/backup' } }],
 * });
 * if (!r.changed) throw new Error('no data key of alias/backup was on an older version');
 * ```
 */
export async function rewrapFile(file: string, options: RewrapFileOptions): Promise<RewrapFileResult> {
  checkPathArg(file, 'file');
  const o = checkFileOptions(options);
  // Checked before the file is opened (rewrapHeader checks them again, on the same values).
  const rules = checkRewrapOptions(options, 'rewrapFile');
  const providers = [...rules.decrypt.providers, ...rules.replace.map((r) => r.to.provider), ...rules.add.map((r) => r.provider)];
  aborted(o.signal);
  const inPlace = o.output === undefined;
  // In place, a symbolic link is followed: its target is what is read and replaced.
  const source = inPlace ? await resolveTarget(file) : file;
  const src = await fs.open(source, 'r');
  let out: AtomicFile | undefined;
  try {
    const st = await src.stat();
    if (!st.isFile()) throw new InvalidParameterError(`${file} is not a regular file`);
    const size = st.size;
    const rewrapped = await rewrapHeader(
      {
        size,
        read: async (offset: number, length: number) => {
          const buf = new Uint8Array(length);
          await readAt(src, buf, offset);
          return buf;
        },
      },
      options,
    );
    const { header, bodyOffset, changed, layout } = rewrapped;
    const oldHeader = new Uint8Array(bodyOffset);
    await readAt(src, oldHeader, 0);
    const before = keysOf(oldHeader, providers);
    const result: RewrapFileResult = Object.freeze({
      changed,
      headerBytes: Object.freeze({ before: bodyOffset, after: header.length }),
      bodyBytes: size - bodyOffset,
      layout,
      keys: Object.freeze({ before, after: changed ? keysOf(header, providers) : before }),
    });
    if ((!changed && inPlace) || o.dryRun) return result;
    aborted(o.signal);
    const mode = st.mode & 0o7777;
    out = await AtomicFile.create(inPlace ? source : o.output!, {
      overwrite: inPlace || o.overwrite,
      mode: mode & 0o777,
      ...(o.onTempFile ? { onTempFile: o.onTempFile } : {}),
    });
    if (header.length === bodyOffset && size > 0) {
      // Same header length: the kernel copies the whole file (into the temporary file's inode,
      // which `copyFile` opens by its path), then the new header goes over the old one.
      const now = await fs.stat(source);
      if (!sameFile(now, st)) throw new MalformedEnvelopeError(`${file} changed while it was re-wrapped`);
      await fs.copyFile(source, out.temp);
      const after = await fs.stat(source);
      if (!sameFile(after, st)) throw new MalformedEnvelopeError(`${file} changed while it was re-wrapped`);
      aborted(o.signal);
      await writeAllAt(out.fh, header, 0);
    } else {
      await writeAllAt(out.fh, header, 0);
      await copyRange(src, out.fh, bodyOffset, size, header.length, o.signal);
    }
    const written = await out.fh.stat();
    if (written.size !== header.length + size - bodyOffset || !sameFile(await src.stat(), st)) {
      throw new MalformedEnvelopeError(`${file} changed while it was re-wrapped`);
    }
    // The original's owner where allowed, then its mode exactly (the umask applied when the
    // temporary file was created, and a change of owner clears set-id bits).
    if (written.uid !== st.uid || written.gid !== st.gid) await out.fh.chown(st.uid, st.gid).catch(() => undefined);
    await out.fh.chmod(mode);
    aborted(o.signal);
    await out.commit();
    out = undefined;
    return result;
  } finally {
    await out?.abort();
    await src.close().catch(() => undefined);
  }
}
