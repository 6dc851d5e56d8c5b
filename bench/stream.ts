/**
 * `npm run bench:stream`: framed envelopes (SPEC.md §14) streamed through the Node file adapter
 * (`encryptFile`/`decryptFile` of `envelope-kit/node`), in parallel mode, through `node:stream`
 * and through Web Streams, side by side with a `node:crypto` AES-256-GCM loop over the same
 * segments in memory (the single-core limit), `openssl speed`, and the AWS Encryption SDK's
 * `encryptStream`/`decryptStream`; peak memory while streaming, in child processes; and
 * `decryptRange` at the end of the envelope against a whole `decryptFile`. One process, one run.
 *
 * Runs against the built package (`dist/`), which `npm run bench:stream` builds first. Files go
 * to a tmpfs (/dev/shm) so that the disk is not what is measured, and one run also goes to
 * `os.tmpdir()` when that is another file system.
 *
 * Flags: `--quick` (64 MiB instead of 1 GiB: for trying the harness, not figures to quote),
 * `--out <file>` (default bench/RESULTS-stream.md), `--section` (write only the section that
 * `bench/run.ts` puts into RESULTS.md, as section 8). The last line on stdout is a JSON summary
 * of the targets. Exits non-zero when a round trip is wrong.
 * @module
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdtempSync, promises as fsp, readFileSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { decryptRange, decryptStream, encryptStream } from 'envelope-kit';
import { createDecryptStream, createEncryptStream, decryptFile, encryptFile, openFileSource } from 'envelope-kit/node';
import { type BulkKeys, benchKeyring } from './bulk.js';
import { aws, awsKeyring, awsSuiteOptions } from './contenders.js';
import { fmt, gc, log, machine, median, now, ratio, roundRobin } from './lib.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const SECTION = args.includes('--section');
const OUT = args.includes('--out') ? resolve(args[args.indexOf('--out') + 1]!) : join(ROOT, 'bench', 'RESULTS-stream.md');

const MiB = 2 ** 20;
const KiB = 1024;
const CONFIG = QUICK
  ? { size: 64 * MiB, warmSize: 16 * MiB, awsSize: 64 * MiB, awsDefaultSize: 16 * MiB, webSize: 64 * MiB, fileReps: 3, webReps: 3, rangeReps: 50 }
  : { size: 1024 * MiB, warmSize: 64 * MiB, awsSize: 256 * MiB, awsDefaultSize: 64 * MiB, webSize: 256 * MiB, fileReps: 3, webReps: 5, rangeReps: 300 };
/** The AWS SDK's own frame length (@aws-crypto/serialize `FRAME_LENGTH`). */
const AWS_DEFAULT_FRAME = 4096;
const SEGMENTS = [64 * KiB, 256 * KiB];
const PARALLEL = [2, 4, 8];
const RANGE_BYTES = 100;

const TARGETS = { fileVsLoop: 0.8, parallelVsLoop: 1.6, vsAws: 10, rssGrowthMiB: 32, rangeSpeedup: 1000, rangeSegments: 2 };

const started = now();
const loadAverage = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const loadAtStart = loadAverage();
/** Load average when each part began (other work on the machine shows here and in the ranges). */
const loads: { part: string; load: string }[] = [];
const part = (name: string): void => {
  const l = loadAverage();
  loads.push({ part: name, load: l });
  log(`${name} (load ${l})`);
};

const sizeName = (b: number): string => (b >= 1024 * MiB ? `${b / (1024 * MiB)} GiB` : b >= MiB ? `${b / MiB} MiB` : b >= KiB ? `${b / KiB} KiB` : `${b} B`);
const mibOf = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;

// ---------------------------------------------------------------- rates

/** MB/s (10⁶ bytes of plaintext per second) of `bytes` timed in `ms`: the median, and the range over the samples. */
interface Rate {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly samples: number;
}

function rateOf(bytes: number, ms: readonly number[]): Rate {
  const mb = bytes / 1e6;
  return { median: mb / (median(ms) / 1000), min: mb / (Math.max(...ms) / 1000), max: mb / (Math.min(...ms) / 1000), samples: ms.length };
}

const showRate = (r: Rate): string => `**${fmt(r.median)}** (${fmt(r.min)}–${fmt(r.max)})`;
const showMs = (xs: readonly number[]): string => `${fmt(median(xs))} ms (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;

// ---------------------------------------------------------------- files

/** Where the files go: a tmpfs when there is one. */
function fileSystems(): { work: string; workLabel: string; other: string | undefined; otherLabel: string } {
  const TMPFS = 0x01021994;
  const kind = (p: string): string => {
    try {
      return statfsSync(p).type === TMPFS ? 'tmpfs' : 'not tmpfs';
    } catch {
      return 'unknown';
    }
  };
  const t = tmpdir();
  if (existsSync('/dev/shm')) {
    const other = statSync('/dev/shm').dev !== statSync(t).dev ? t : undefined;
    return { work: '/dev/shm', workLabel: `/dev/shm (${kind('/dev/shm')})`, other, otherLabel: `${t} (${kind(t)})` };
  }
  return { work: t, workLabel: `${t} (os.tmpdir(), ${kind(t)}; no /dev/shm here)`, other: undefined, otherLabel: '' };
}

/** Write `bytes` random bytes to `file` from `source` (a prefix of it). */
function writeFile(file: string, source: Uint8Array, bytes: number): void {
  writeFileSync(file, source.subarray(0, bytes), { mode: 0o600 });
}

const CMP = 16 * MiB;

/** The two files hold the same bytes (read in 16 MiB chunks and compared). */
async function sameFile(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([fsp.open(a, 'r'), fsp.open(b, 'r')]);
  try {
    const [sa, sb] = await Promise.all([fa.stat(), fb.stat()]);
    if (sa.size !== sb.size) return false;
    const ba = Buffer.allocUnsafe(CMP);
    const bb = Buffer.allocUnsafe(CMP);
    for (let pos = 0; pos < sa.size; pos += CMP) {
      const n = Math.min(CMP, sa.size - pos);
      const [ra, rb] = await Promise.all([fa.read(ba, 0, n, pos), fb.read(bb, 0, n, pos)]);
      if (ra.bytesRead !== n || rb.bytesRead !== n || Buffer.compare(ba.subarray(0, n), bb.subarray(0, n)) !== 0) return false;
    }
    return true;
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

function fail(what: string): never {
  throw new Error(`round trip wrong: ${what}`);
}

// ---------------------------------------------------------------- the node:crypto loop

/**
 * The single-core limit: a `node:crypto` AES-256-GCM cipher per segment, nonce = index and last
 * flag (the framed layout's, SPEC.md §14.3), `setAAD(header)`, `update`, `final`, `getAuthTag`;
 * the plaintext in memory, the output dropped. The decipher loop opens the same segments
 * (ciphertext kept from one untimed pass).
 */
class CryptoLoop {
  readonly nonce = Buffer.alloc(12);
  store: Buffer | undefined;

  constructor(
    readonly key: Buffer,
    readonly aad: Buffer,
    readonly segmentSize: number,
    readonly plaintext: Buffer,
  ) {}

  #nonce(i: number, n: number): Buffer {
    this.nonce.writeUInt32BE(i, 7);
    this.nonce[11] = i === n - 1 ? 1 : 0;
    return this.nonce;
  }

  /** Seal the first `bytes` of the plaintext (a whole number of segments); keep the output when `keep`. */
  seal(bytes: number, keep = false): void {
    const s = this.segmentSize;
    const n = Math.ceil(this.plaintext.length / s);
    const out = keep ? (this.store = Buffer.allocUnsafe(n * (s + 16))) : undefined;
    for (let i = 0; i * s < bytes; i++) {
      const c = createCipheriv('aes-256-gcm', this.key, this.#nonce(i, n));
      c.setAAD(this.aad);
      const ct = c.update(this.plaintext.subarray(i * s, (i + 1) * s));
      c.final();
      const tag = c.getAuthTag();
      if (out) {
        out.set(ct, i * (s + 16));
        out.set(tag, i * (s + 16) + ct.length);
      }
    }
  }

  /** Open the first `bytes` of plaintext from the kept ciphertext (every tag checked by `final()`). */
  open(bytes: number, check = false): void {
    const s = this.segmentSize;
    const n = Math.ceil(this.plaintext.length / s);
    const store = this.store!;
    for (let i = 0; i * s < bytes; i++) {
      const o = i * (s + 16);
      const d = createDecipheriv('aes-256-gcm', this.key, this.#nonce(i, n));
      d.setAAD(this.aad);
      d.setAuthTag(store.subarray(o + s, o + s + 16));
      const pt = d.update(store.subarray(o, o + s));
      d.final();
      if (check && (i === 0 || (i + 1) * s >= bytes) && Buffer.compare(pt, this.plaintext.subarray(i * s, (i + 1) * s)) !== 0) fail(`node:crypto loop, segment ${i}`);
    }
  }
}

async function readFull(fh: FileHandle, buf: Uint8Array): Promise<number> {
  let n = 0;
  while (n < buf.length) {
    const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  return n;
}

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let o = 0; o < bytes.length; ) o += (await fh.write(bytes, o, bytes.length - o)).bytesWritten;
}

/**
 * A reference for the file adapter: the loop above on files, with the same I/O pattern as
 * `encryptFile` (1 MiB of segments per block, two input and two output buffers, the next block
 * read while one is sealed, the sealed one written while the next is sealed); output is just the
 * segments (nonce = index), written to a plain new file (no temporary file, no fsync).
 */
class FileLoop {
  readonly nonce = Buffer.alloc(12);

  constructor(
    readonly key: Buffer,
    readonly aad: Buffer,
    readonly segmentSize: number,
  ) {}

  async #pipe(inPath: string, outPath: string, inBlock: number, outBlock: number, transform: (inb: Uint8Array, n: number, outb: Uint8Array) => number): Promise<void> {
    const src = await fsp.open(inPath, 'r');
    const dst = await fsp.open(outPath, 'wx', 0o600);
    try {
      const ins = [new Uint8Array(inBlock), new Uint8Array(inBlock)];
      const outs = [new Uint8Array(outBlock), new Uint8Array(outBlock)];
      let cur = 0;
      let n = await readFull(src, ins[0]!);
      let writing: Promise<void> = Promise.resolve();
      while (n > 0) {
        const reading = n === inBlock ? readFull(src, ins[cur ^ 1]!) : Promise.resolve(0);
        const o = transform(ins[cur]!, n, outs[cur]!);
        await writing;
        writing = writeAll(dst, outs[cur]!.subarray(0, o));
        n = await reading;
        cur ^= 1;
      }
      await writing;
    } finally {
      await src.close();
      await dst.close();
    }
  }

  encrypt(inPath: string, outPath: string): Promise<void> {
    const s = this.segmentSize;
    const per = Math.max(1, Math.floor(MiB / s));
    let index = 0;
    return this.#pipe(inPath, outPath, per * s, per * (s + 16), (inb, n, outb) => {
      let o = 0;
      for (let p = 0; p < n; p += s) {
        this.nonce.writeUInt32BE(index++, 7);
        const c = createCipheriv('aes-256-gcm', this.key, this.nonce);
        c.setAAD(this.aad);
        const ct = c.update(inb.subarray(p, Math.min(p + s, n)));
        c.final();
        outb.set(ct, o);
        outb.set(c.getAuthTag(), o + ct.length);
        o += ct.length + 16;
      }
      return o;
    });
  }

  decrypt(inPath: string, outPath: string): Promise<void> {
    const s = this.segmentSize;
    const per = Math.max(1, Math.floor(MiB / s));
    let index = 0;
    return this.#pipe(inPath, outPath, per * (s + 16), per * s, (inb, n, outb) => {
      let o = 0;
      for (let p = 0; p < n; p += s + 16) {
        const end = Math.min(p + s + 16, n);
        this.nonce.writeUInt32BE(index++, 7);
        const d = createDecipheriv('aes-256-gcm', this.key, this.nonce);
        d.setAAD(this.aad);
        d.setAuthTag(inb.subarray(end - 16, end));
        const pt = d.update(inb.subarray(p, end - 16));
        d.final();
        outb.set(pt, o);
        o += pt.length;
      }
      return o;
    });
  }
}

// ---------------------------------------------------------------- contenders

/** Wall time of each phase, and the process's CPU time (user + system, every thread) in the same span, in ms. */
type Phases = { encrypt: number; decrypt: number; encryptCpu: number; decryptCpu: number };

/** A clock of wall and CPU time: `lap()` returns both since the last lap. */
function clock(): { lap(): { wall: number; cpu: number } } {
  let t = now();
  let c = process.cpuUsage();
  return {
    lap() {
      const t1 = now();
      const d = process.cpuUsage(c);
      const out = { wall: t1 - t, cpu: (d.user + d.system) / 1000 };
      t = t1;
      c = process.cpuUsage();
      return out;
    },
  };
}

/** Time `encrypt`, then (after a GC, not timed) `decrypt`. */
async function phases(encrypt: () => unknown, decrypt: () => unknown): Promise<Phases> {
  const k = clock();
  await encrypt();
  const e = k.lap();
  gc();
  k.lap();
  await decrypt();
  const d = k.lap();
  return { encrypt: e.wall, decrypt: d.wall, encryptCpu: e.cpu, decryptCpu: d.cpu };
}

interface FileContender {
  readonly id: string;
  readonly label: string;
  readonly segmentSize: number;
  readonly parallel: number;
  /** Plaintext bytes of a timed run. */
  readonly bytes: number;
  /** Where it runs: `file` (file adapter, files on the tmpfs), `pipeline` (node:stream), `memory`. */
  readonly where: string;
  run(warm: boolean): Promise<Phases>;
}

interface Setup {
  readonly dir: string;
  readonly keys: BulkKeys;
  readonly plaintext: Buffer;
  /** Input files by plaintext size. */
  readonly inputs: Map<number, string>;
  readonly headerLength: number;
}

function contenders(s: Setup): { list: FileContender[]; loops: Map<number, CryptoLoop> } {
  const provider = benchKeyring(s.keys);
  const keyId = s.keys.ekKeyId;
  const input = (n: number) => s.inputs.get(n)!;
  const verified = new Set<string>();
  /** Check a decrypted file on its first two runs (the warm-up and the first timed one); its size on every run. */
  const check = async (id: string, n: number, out: string, warm: boolean) => {
    if (statSync(out).size !== n) fail(`${id}: ${statSync(out).size} bytes out, ${n} in`);
    const key = `${id}:${warm}`;
    if (!verified.has(key)) {
      if (!(await sameFile(input(n), out))) fail(`${id}: the decrypted file differs from the input`);
      verified.add(key);
    }
  };
  const list: FileContender[] = [];

  const ekFile = (segmentSize: number, parallel: number, bytes: number, keep: boolean): FileContender => {
    const id = `ek-file-${segmentSize / KiB}k-p${parallel}-${bytes / MiB}m`;
    return {
      id,
      label: `envelope-kit \`encryptFile\`/\`decryptFile\`${parallel > 1 ? `, \`parallel: ${parallel}\`` : ''}`,
      segmentSize,
      parallel,
      bytes,
      where: 'file',
      async run(warm) {
        const n = warm ? CONFIG.warmSize : bytes;
        const env = join(s.dir, `${id}.ek`);
        const out = join(s.dir, `${id}.out`);
        rmSync(env, { force: true });
        rmSync(out, { force: true });
        let length = -1;
        const t = await phases(
          () => encryptFile(input(n), env, { provider, keyId, segmentSize, parallel }),
          async () => (length = (await decryptFile(env, out, { provider, parallel })).plaintextLength),
        );
        if (length !== n) fail(`${id}: plaintextLength ${length}`);
        await check(id, n, out, warm);
        rmSync(out, { force: true });
        if (!keep || warm) rmSync(env, { force: true });
        return t;
      },
    };
  };

  const loops = new Map<number, CryptoLoop>();
  const loopKey = randomBytes(32);
  const aad = randomBytes(s.headerLength);
  const loop = (segmentSize: number): FileContender => {
    const l = new CryptoLoop(loopKey, aad, segmentSize, s.plaintext.subarray(0, CONFIG.size));
    loops.set(segmentSize, l);
    return {
      id: `loop-${segmentSize / KiB}k`,
      label: 'node:crypto AES-256-GCM loop, a cipher per segment, in memory (the single-core limit)',
      segmentSize,
      parallel: 1,
      bytes: CONFIG.size,
      where: 'memory',
      async run(warm) {
        const n = warm ? CONFIG.warmSize : CONFIG.size;
        if (l.store === undefined) {
          l.seal(CONFIG.size, true);
          l.open(CONFIG.size, true);
          gc();
        }
        return phases(
          () => l.seal(n),
          () => l.open(n),
        );
      },
    };
  };

  const fileLoop = (segmentSize: number): FileContender => {
    const id = `loop-file-${segmentSize / KiB}k`;
    const l = new FileLoop(loopKey, aad, segmentSize);
    return {
      id,
      label: 'reference: the node:crypto loop on files, blocks read ahead and written behind as the file adapter does (no header, no temporary file, no fsync)',
      segmentSize,
      parallel: 1,
      bytes: CONFIG.size,
      where: 'file',
      async run(warm) {
        const n = warm ? CONFIG.warmSize : CONFIG.size;
        const env = join(s.dir, `${id}.seg`);
        const out = join(s.dir, `${id}.out`);
        rmSync(env, { force: true });
        rmSync(out, { force: true });
        const t = await phases(
          () => l.encrypt(input(n), env),
          () => l.decrypt(env, out),
        );
        await check(id, n, out, warm);
        rmSync(out, { force: true });
        rmSync(env, { force: true });
        return t;
      },
    };
  };

  const awsRing = awsKeyring(new Uint8Array(Buffer.from(s.keys.awsMaterialHex, 'hex')));
  const awsStream = (bytes: number, frameLength: number): FileContender => {
    const id = `aws-f${frameLength}-${bytes / MiB}m`;
    return {
      id,
      label: `AWS SDK \`encryptStream\`/\`decryptStream\`, committing unsigned suite, \`frameLength: ${frameLength}\`${frameLength === AWS_DEFAULT_FRAME ? ' (its default)' : ''}, file → SDK → file through \`pipeline\` (1 MiB reads)`,
      segmentSize: frameLength,
      parallel: 1,
      bytes,
      where: 'pipeline',
      async run(warm) {
        const n = warm ? Math.min(CONFIG.warmSize, bytes) : bytes;
        const env = join(s.dir, `${id}.aws`);
        const out = join(s.dir, `${id}.out`);
        const t = await phases(
          () =>
            pipeline(
              createReadStream(input(n), { highWaterMark: MiB }),
              aws.encryptStream(awsRing, { ...awsSuiteOptions('committing-unsigned'), frameLength }),
              createWriteStream(env),
            ),
          () => pipeline(createReadStream(env, { highWaterMark: MiB }), aws.decryptStream(awsRing), createWriteStream(out)),
        );
        await check(id, n, out, warm);
        rmSync(out, { force: true });
        rmSync(env, { force: true });
        return t;
      },
    };
  };

  const ekPipeline = (bytes: number): FileContender => {
    const id = `ek-pipeline-${bytes / MiB}m`;
    return {
      id,
      label: 'envelope-kit `createEncryptStream`/`createDecryptStream`, file → duplex → file through `pipeline` (1 MiB reads)',
      segmentSize: 64 * KiB,
      parallel: 1,
      bytes,
      where: 'pipeline',
      async run(warm) {
        const n = warm ? CONFIG.warmSize : bytes;
        const env = join(s.dir, `${id}.ek`);
        const out = join(s.dir, `${id}.out`);
        const t = await phases(
          () => pipeline(createReadStream(input(n), { highWaterMark: MiB }), createEncryptStream({ provider, keyId }), createWriteStream(env)),
          () => pipeline(createReadStream(env, { highWaterMark: MiB }), createDecryptStream({ provider }), createWriteStream(out)),
        );
        await check(id, n, out, warm);
        rmSync(out, { force: true });
        rmSync(env, { force: true });
        return t;
      },
    };
  };

  for (const seg of SEGMENTS) list.push(ekFile(seg, 1, CONFIG.size, true), loop(seg), fileLoop(seg));
  for (const p of PARALLEL) list.push(ekFile(64 * KiB, p, CONFIG.size, false));
  if (CONFIG.awsSize !== CONFIG.size) list.push(ekFile(64 * KiB, 1, CONFIG.awsSize, false));
  list.push(ekPipeline(CONFIG.awsSize), awsStream(CONFIG.awsSize, 64 * KiB), awsStream(CONFIG.awsDefaultSize, AWS_DEFAULT_FRAME));
  return { list, loops };
}

interface FileRow {
  readonly c: FileContender;
  readonly enc: Rate;
  readonly dec: Rate;
  readonly encMs: number[];
  readonly decMs: number[];
  /** Median CPU seconds (user + system, all threads of the process) per GB of plaintext. */
  readonly encCpu: number;
  readonly decCpu: number;
}

/** Median CPU seconds per 10⁹ bytes. */
const cpuPerGB = (bytes: number, cpuMs: readonly number[]): number => median(cpuMs) / 1000 / (bytes / 1e9);

// ---------------------------------------------------------------- os.tmpdir() run

interface OtherFsRun {
  readonly where: string;
  readonly enc: number;
  readonly dec: number;
}

async function otherFsRun(s: Setup, where: string): Promise<OtherFsRun> {
  const dir = mkdtempSync(join(where, 'envelope-kit-stream-'));
  try {
    const provider = benchKeyring(s.keys);
    const input = join(dir, 'in');
    await fsp.copyFile(s.inputs.get(CONFIG.size)!, input);
    const env = join(dir, 'in.ek');
    const out = join(dir, 'out');
    gc();
    const t0 = now();
    await encryptFile(input, env, { provider, keyId: s.keys.ekKeyId });
    const t1 = now();
    gc();
    const t2 = now();
    await decryptFile(env, out, { provider });
    const t3 = now();
    if (!(await sameFile(input, out))) fail(`${where}: the decrypted file differs from the input`);
    const mb = CONFIG.size / 1e6;
    return { where, enc: mb / ((t1 - t0) / 1000), dec: mb / ((t3 - t2) / 1000) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- openssl speed

interface OpensslRow {
  readonly blockSize: number;
  /** MB/s, or undefined when that variant did not run. */
  readonly encrypt: number | undefined;
  readonly decrypt: number | undefined;
  readonly aead: number | undefined;
}

function opensslSpeed(): { version: string | undefined; rows: OpensslRow[]; error?: string } {
  const version = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) return { version: undefined, rows: [], error: version.error ? String(version.error.message) : version.stderr };
  const one = (block: number, extra: string[]): number | undefined => {
    const res = spawnSync('openssl', ['speed', ...extra, '-evp', 'aes-256-gcm', '-bytes', String(block), '-seconds', '2'], { encoding: 'utf8' });
    if (res.status !== 0) return undefined;
    // "AES-256-GCM    4537241.60k": thousands of bytes per second.
    const m = /^aes-256-gcm\s+([\d.]+)k\s*$/im.exec(res.stdout);
    return m ? Number(m[1]) / 1000 : undefined;
  };
  return {
    version: version.stdout.trim(),
    rows: SEGMENTS.map((b) => ({ blockSize: b, encrypt: one(b, []), decrypt: one(b, ['-decrypt']), aead: one(b, ['-aead']) })),
  };
}

// ---------------------------------------------------------------- decryptRange

interface RangeRow {
  readonly segmentSize: number;
  readonly ms: number[];
  readonly segmentsRead: number;
  readonly plaintextLength: number;
}

async function benchRange(s: Setup, envelope: string, segmentSize: number): Promise<RangeRow> {
  const provider = benchKeyring(s.keys);
  const source = await openFileSource(envelope);
  try {
    const offset = CONFIG.size - RANGE_BYTES;
    const want = s.plaintext.subarray(offset, offset + RANGE_BYTES);
    const once = () => decryptRange(source, { provider, offset, length: RANGE_BYTES });
    const first = await once();
    if (Buffer.compare(Buffer.from(first.plaintext), want) !== 0) fail(`decryptRange at ${offset}: wrong bytes`);
    if (first.plaintextLength !== CONFIG.size) fail(`decryptRange: plaintextLength ${first.plaintextLength}`);
    for (let i = 0; i < 20; i++) await once();
    gc();
    const ms: number[] = [];
    for (let i = 0; i < CONFIG.rangeReps; i++) {
      const t0 = now();
      await once();
      ms.push(now() - t0);
    }
    return { segmentSize, ms, segmentsRead: first.segmentsRead, plaintextLength: first.plaintextLength };
  } finally {
    await source.close();
  }
}

// ---------------------------------------------------------------- Web Streams

interface WebRow {
  readonly label: string;
  readonly parallel: number;
  readonly enc: Rate;
  readonly dec: Rate;
  readonly encCpu: number;
  readonly decCpu: number;
}

/** A ReadableStream of `bytes` in 1 MiB chunks (views, no copy). */
function chunks(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let pos = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (pos >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(pos, pos + MiB));
      pos += MiB;
    },
  });
}

/** A sink that counts bytes (and, when given the expected bytes, compares them). */
function countingSink(expect?: Uint8Array): { sink: WritableStream<Uint8Array>; count: () => number } {
  let n = 0;
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      if (expect && Buffer.compare(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), expect.subarray(n, n + chunk.length)) !== 0) fail(`Web Streams: wrong bytes at ${n}`);
      n += chunk.length;
    },
  });
  return { sink, count: () => n };
}

async function benchWeb(s: Setup): Promise<WebRow[]> {
  const provider = benchKeyring(s.keys);
  const keyId = s.keys.ekKeyId;
  const pt = s.plaintext.subarray(0, CONFIG.webSize);
  const collect = async (src: ReadableStream<Uint8Array>): Promise<Uint8Array> => {
    const parts: Uint8Array[] = [];
    let n = 0;
    await src.pipeTo(
      new WritableStream({
        write(c) {
          parts.push(new Uint8Array(c));
          n += c.length;
        },
      }),
    );
    const all = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return all;
  };
  const cs = [1].map((parallel) => {
    let envelope: Uint8Array | undefined;
    return {
      parallel,
      label: `\`encryptStream\`/\`decryptStream\`${parallel > 1 ? `, \`parallel: ${parallel}\`` : ''}`,
      async prepare() {
        envelope = await collect(chunks(pt).pipeThrough(encryptStream({ provider, keyId, parallel })));
        const { sink, count } = countingSink(pt);
        await chunks(envelope).pipeThrough(decryptStream({ provider, parallel })).pipeTo(sink);
        if (count() !== pt.length) fail(`Web Streams: ${count()} bytes out`);
      },
      async run(warm: boolean): Promise<Phases> {
        const n = warm ? Math.min(32 * MiB, pt.length) : pt.length;
        const enc = countingSink();
        const dec = countingSink();
        const t = await phases(
          () => chunks(pt.subarray(0, n)).pipeThrough(encryptStream({ provider, keyId, parallel })).pipeTo(enc.sink),
          // The warm-up decrypts the whole envelope too (a prefix is not a valid envelope).
          () => chunks(envelope!).pipeThrough(decryptStream({ provider, parallel })).pipeTo(dec.sink),
        );
        if (dec.count() !== pt.length || enc.count() < n) fail(`Web Streams: ${enc.count()} bytes sealed, ${dec.count()} opened`);
        return t;
      },
    };
  });
  for (const c of cs) await c.prepare();
  const samples = await roundRobin(cs, CONFIG.webReps, (c, warm) => c.run(warm));
  return cs.map((c) => {
    const x = samples.get(c)!;
    return {
      label: c.label,
      parallel: c.parallel,
      enc: rateOf(pt.length, x.encrypt!),
      dec: rateOf(pt.length, x.decrypt!),
      encCpu: cpuPerGB(pt.length, x.encryptCpu!),
      decCpu: cpuPerGB(pt.length, x.decryptCpu!),
    };
  });
}

// ---------------------------------------------------------------- peak RSS

interface RssRow {
  readonly op: 'encrypt' | 'decrypt';
  readonly size: number;
  readonly parallel: number;
  readonly baseRss: number;
  readonly peak: number;
  readonly peakHwm: number;
  readonly peakSampled: number;
  readonly peakSource: string;
  readonly ms: number;
}

function benchRss(s: Setup, keysFile: string): RssRow[] {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const rows: RssRow[] = [];
  const child = (op: 'encrypt' | 'decrypt', input: string, output: string, size: number, parallel: number): RssRow => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', join('bench', 'stream-rss-child.ts'), op, input, output, keysFile, String(64 * KiB), String(parallel)], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (res.status !== 0) throw new Error(`rss child ${op} ${size} failed (${res.error ? res.error.message : res.signal ? `signal ${res.signal}` : `exit ${res.status}`}): ${res.stderr ?? ''}`);
    const r = JSON.parse(res.stdout.trim().split('\n').pop()!) as { baseRss: number; peakHwm: number; peakSampled: number; peakSource: string; ms: number };
    return { op, size, parallel, ...r, peak: Math.max(r.peakHwm, r.peakSampled) };
  };
  for (const [parallel, sizes] of [
    [1, [CONFIG.warmSize, CONFIG.size]],
    [4, [CONFIG.size]],
  ] as const) {
    for (const size of sizes) {
      const input = s.inputs.get(size)!;
      const env1 = join(s.dir, `rss-${size}.ek`);
      const out = join(s.dir, `rss-${size}.out`);
      rows.push(child('encrypt', input, env1, size, parallel));
      rows.push(child('decrypt', env1, out, size, parallel));
      if (statSync(out).size !== size) fail(`rss child: ${statSync(out).size} bytes out`);
      rmSync(env1, { force: true });
      rmSync(out, { force: true });
    }
  }
  return rows;
}

// ---------------------------------------------------------------- report

interface TargetRow {
  readonly id: string;
  readonly what: string;
  readonly figure: string;
  readonly ratio: number | undefined;
  readonly op: '≥' | '≤' | '<';
  readonly needed: number;
  readonly unit: string;
  readonly met: boolean;
}

interface StreamResult {
  readonly m: ReturnType<typeof machine>;
  readonly fs: ReturnType<typeof fileSystems>;
  readonly headerLength: number;
  readonly files: FileRow[];
  readonly other: OtherFsRun | undefined;
  readonly openssl: ReturnType<typeof opensslSpeed>;
  readonly range: RangeRow[];
  readonly web: WebRow[];
  readonly rss: RssRow[];
  readonly seconds: number;
}

function fileRow(r: StreamResult, id: string): FileRow {
  const row = r.files.find((x) => x.c.id === id);
  if (!row) throw new Error(`no row ${id}`);
  return row;
}

const ids = {
  file: (seg: number, p = 1, bytes = CONFIG.size) => `ek-file-${seg / KiB}k-p${p}-${bytes / MiB}m`,
  loop: (seg: number) => `loop-${seg / KiB}k`,
  fileLoop: (seg: number) => `loop-file-${seg / KiB}k`,
  aws: (frame: number, bytes: number) => `aws-f${frame}-${bytes / MiB}m`,
};

function targetRows(r: StreamResult): TargetRow[] {
  const rows: TargetRow[] = [];
  const ge = (id: string, what: string, a: number, b: number, unit: string, needed: number) =>
    rows.push({ id, what, figure: `${fmt(a)} vs ${fmt(b)} ${unit}`, ratio: a / b, op: '≥', needed, unit: '×', met: a / b >= needed });
  const size = sizeName(CONFIG.size);
  for (const seg of SEGMENTS) {
    const f = fileRow(r, ids.file(seg));
    const l = fileRow(r, ids.loop(seg));
    ge(`streamFileEncrypt${seg / KiB}k`, `stream ${size}: \`encryptFile\`, ${sizeName(seg)} segments, vs node:crypto loop`, f.enc.median, l.enc.median, 'MB/s', TARGETS.fileVsLoop);
    ge(`streamFileDecrypt${seg / KiB}k`, `stream ${size}: \`decryptFile\`, ${sizeName(seg)} segments, vs node:crypto loop`, f.dec.median, l.dec.median, 'MB/s', TARGETS.fileVsLoop);
  }
  const p4 = fileRow(r, ids.file(64 * KiB, 4));
  const l64 = fileRow(r, ids.loop(64 * KiB));
  ge('streamParallel4Encrypt', `stream ${size}: \`encryptFile\` \`parallel: 4\` (64 KiB) vs single-core node:crypto loop`, p4.enc.median, l64.enc.median, 'MB/s', TARGETS.parallelVsLoop);
  ge('streamParallel4Decrypt', `stream ${size}: \`decryptFile\` \`parallel: 4\` (64 KiB) vs single-core node:crypto loop`, p4.dec.median, l64.dec.median, 'MB/s', TARGETS.parallelVsLoop);
  const ekA = fileRow(r, ids.file(64 * KiB, 1, CONFIG.awsSize));
  const awsA = fileRow(r, ids.aws(64 * KiB, CONFIG.awsSize));
  const awsD = fileRow(r, ids.aws(AWS_DEFAULT_FRAME, CONFIG.awsDefaultSize));
  const a = sizeName(CONFIG.awsSize);
  ge('streamVsAwsEncrypt', `stream ${a}: \`encryptFile\` vs AWS SDK \`encryptStream\`, frames of 64 KiB like the segments`, ekA.enc.median, awsA.enc.median, 'MB/s', TARGETS.vsAws);
  ge('streamVsAwsDecrypt', `stream ${a}: \`decryptFile\` vs AWS SDK \`decryptStream\`, frames of 64 KiB like the segments`, ekA.dec.median, awsA.dec.median, 'MB/s', TARGETS.vsAws);
  ge('streamVsAwsDefaultEncrypt', `stream ${a} (AWS: ${sizeName(CONFIG.awsDefaultSize)}): \`encryptFile\` vs AWS SDK \`encryptStream\` with its default 4 KiB frames`, ekA.enc.median, awsD.enc.median, 'MB/s', TARGETS.vsAws);
  ge('streamVsAwsDefaultDecrypt', `stream ${a} (AWS: ${sizeName(CONFIG.awsDefaultSize)}): \`decryptFile\` vs AWS SDK \`decryptStream\` with its default 4 KiB frames`, ekA.dec.median, awsD.dec.median, 'MB/s', TARGETS.vsAws);
  const single = r.rss.filter((x) => x.parallel === 1);
  const growth = Math.max(...single.map((x) => x.peak - x.baseRss));
  rows.push({
    id: 'streamRssGrowth',
    what: `stream: peak RSS growth during \`encryptFile\`/\`decryptFile\` of ${sizeName(CONFIG.warmSize)} and ${size} (the largest of the four)`,
    figure: single.map((x) => `${x.op} ${sizeName(x.size)} ${mibOf(x.peak - x.baseRss)}`).join(', '),
    ratio: undefined,
    op: '≤',
    needed: TARGETS.rssGrowthMiB,
    unit: ' MiB',
    met: growth <= TARGETS.rssGrowthMiB * MiB,
  });
  const rg = r.range.find((x) => x.segmentSize === 64 * KiB)!;
  const whole = median(fileRow(r, ids.file(64 * KiB)).decMs);
  ge('streamRangeVsWhole', `\`decryptRange\` of ${RANGE_BYTES} B at the end of the ${size} envelope (64 KiB segments) vs \`decryptFile\` of it`, whole, median(rg.ms), 'ms', TARGETS.rangeSpeedup);
  rows.push({
    id: 'streamRangeSegments',
    what: `\`decryptRange\` of ${RANGE_BYTES} B at the end: segments read`,
    figure: `${rg.segmentsRead}`,
    ratio: undefined,
    op: '≤',
    needed: TARGETS.rangeSegments,
    unit: '',
    met: rg.segmentsRead <= TARGETS.rangeSegments,
  });
  return rows;
}

const verdict = (ok: boolean): string => (ok ? '**met**' : '**missed**');

function report(r: StreamResult): string {
  const L: string[] = [];
  const p = (s = '') => L.push(s);
  // Standalone: "# title", "## n. part". Inside RESULTS.md: "## 8. Streaming", "### 8.n part".
  const h2 = SECTION ? '###' : '##';
  const num = (n: number) => (SECTION ? `8.${n}` : `${n}.`);
  const ref = (n: number) => (SECTION ? `8.${n}` : `part ${n}`);
  const cpu = (row: { encCpu: number; decCpu: number }) => `${row.encCpu.toFixed(2)} / ${row.decCpu.toFixed(2)}`;
  const size = sizeName(CONFIG.size);
  const l64 = fileRow(r, ids.loop(64 * KiB));
  const loopOf = (seg: number) => fileRow(r, ids.loop(seg));

  if (SECTION) {
    p('## 8. Streaming (framed envelopes)');
    p();
    p(`Written by \`bench/stream.ts\`, run by \`npm run bench\` in a process of its own${QUICK ? ' in **quick mode** (64 MiB instead of 1 GiB: not figures to quote)' : ''}; \`npm run bench:stream\` runs it alone (into \`bench/RESULTS-stream.md\`).`);
  } else {
    p('# envelope-kit streaming benchmark results');
    p();
    p(`Written by \`npm run bench:stream\` (bench/stream.ts)${QUICK ? ' in **quick mode** (64 MiB instead of 1 GiB: not figures to quote)' : ''}. \`npm run bench\` runs the same program and puts this part into \`bench/RESULTS.md\` as section 8.`);
  }
  p('Every figure below comes from the same run of one process (peak memory from its child processes); the ratios compare contenders measured side by side, interleaved.');
  p();
  p(`${h2} Machine`);
  p();
  if (!SECTION) {
    p(`- CPU: ${r.m.cpu}, ${r.m.cores} cores; memory ${r.m.memoryGiB.toFixed(1)} GiB`);
    p(`- Node ${r.m.node} (OpenSSL ${r.m.openssl}), ${r.m.platform}`);
  }
  p(`- \`openssl\` command: ${r.openssl.version ?? 'missing'}`);
  p(`- Date: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; this part took ${r.seconds.toFixed(0)} s`);
  p(`- Load average (1, 5, 15 min): ${loadAtStart} at the start, ${loadAverage()} at the end; when each part began: ${loads.map((x) => `${x.part} ${x.load.split(' ')[0]}`).join(', ')} (other work on the machine shows in the ranges)`);
  p(`- Files: ${r.fs.workLabel}, so that the disk is not what is measured${r.other ? `; one run on ${r.fs.otherLabel} in ${ref(1)}` : ''}`);
  p(`- Peer: @aws-crypto/client-node ${awsVersion()}, raw AES keyring (no network)`);
  p();
  if (SECTION) {
    p('Its targets are the rows of the Targets table above that begin with "stream" or `decryptRange`.');
  } else {
    p(`${h2} Targets`);
    p();
    p('| target | figure | ratio | needed | |');
    p('| --- | --- | --- | --- | --- |');
    for (const t of targetRows(r)) p(`| ${t.what} | ${t.figure} | ${t.ratio === undefined ? '' : ratio(t.ratio)} | ${t.op} ${t.needed}${t.unit} | ${verdict(t.met)} |`);
  }
  p();

  p(`${h2} ${num(1)} Files through the Node adapter, vs a node:crypto loop`);
  p();
  p(`A ${size} file of random bytes encrypted with \`encryptFile\` into a framed envelope, then decrypted with \`decryptFile\` (both atomic: a temporary file, fsync, rename), key from a \`LocalKeyring\`, no encryption context. MB/s = 10⁶ bytes of plaintext per second: the median of ${CONFIG.fileReps} interleaved repetitions after a warm-up on ${sizeName(CONFIG.warmSize)}, and in brackets the range. Each decrypted file is compared with the input, byte for byte, on its warm-up and first timed run (and its length on every run).`);
  p(`The loop is the single-core limit: over the same ${size}, in memory, in segments of the same size, one \`createCipheriv('aes-256-gcm', key, nonce)\` per segment with a 12-byte nonce, \`setAAD\` of a ${r.headerLength}-byte header (the length of the envelopes' own header), \`update\`, \`final\`, \`getAuthTag\`, the output dropped; and the decipher loop (\`createDecipheriv\`, \`setAAD\`, \`setAuthTag\`, \`update\`, \`final\`) over the ciphertext of one untimed pass.`);
  p();
  p('| contender | segment | input | encrypt MB/s | decrypt MB/s | vs loop, enc / dec | vs loop on files, enc / dec | CPU s/GB, enc / dec |');
  p('| --- | --- | --- | --- | --- | --- | --- | --- |');
  const vs = (row: FileRow, base: FileRow) => (row === base ? '' : `${ratio(row.enc.median / base.enc.median)} / ${ratio(row.dec.median / base.dec.median)}`);
  for (const seg of SEGMENTS) {
    for (const id of [ids.file(seg), ids.loop(seg), ids.fileLoop(seg)]) {
      const row = fileRow(r, id);
      p(`| ${row.c.label} | ${sizeName(seg)} | ${row.c.where === 'memory' ? 'memory' : `file, ${sizeName(row.c.bytes)}`} | ${showRate(row.enc)} | ${showRate(row.dec)} | ${vs(row, loopOf(seg))} | ${row.c.where === 'memory' ? '' : vs(row, fileRow(r, ids.fileLoop(seg)))} | ${cpu(row)} |`);
    }
  }
  if (r.other) {
    p(`| \`encryptFile\`/\`decryptFile\` on ${r.fs.otherLabel}, one run | 64 KiB | file, ${size} | ${fmt(r.other.enc)} | ${fmt(r.other.dec)} | ${ratio(r.other.enc / l64.enc.median)} / ${ratio(r.other.dec / l64.dec.median)} | | |`);
  }
  p();
  p('"CPU s/GB" is the CPU time the whole process used during the phase (user + system, every thread: the main thread, libuv\'s pool doing the file I/O and WebCrypto, V8\'s helpers), in seconds per 10⁹ bytes of plaintext, median over the repetitions. It tells work from waiting: load from other processes lengthens the wall time first, though on a shared VM it inflates this too (contended caches and locks).');
  p('The file adapter reads about 1 MiB of segments at a time into one of two buffers it reuses, seals them into one of two output buffers, and reads the next block and writes the previous one while it seals (src/stream/node.ts); each segment is one `createCipheriv` of the `node:crypto` backend, like the loop. What the loop does not do: read the input from a file, write the output to one (on the tmpfs: a copy into the page cache, and the kernel allocating the new file\'s pages), and copy each segment\'s output and tag into the block buffer.');
  if (r.other) p(`The run on ${r.fs.otherLabel} writes to a real disk and ends each file with an fsync: the disk is then what is measured.`);
  p();
  {
    const f = fileRow(r, ids.file(64 * KiB));
    const fl = fileRow(r, ids.fileLoop(64 * KiB));
    const cores = r.m.cores;
    // The most a phase could do if its CPU work were spread perfectly over every core: cores / (CPU s per GB).
    const ceiling = (cpuPerGB: number) => (cores / cpuPerGB) * 1000;
    p(
      `What limits it on this machine, at 64 KiB: the files more than the cipher. The loop run on the same files (the reference rows) reaches ${ratio(fl.enc.median / l64.enc.median)} / ${ratio(fl.dec.median / l64.dec.median)} of its rate in memory and needs ${fl.encCpu.toFixed(2)} / ${fl.decCpu.toFixed(2)} CPU s/GB instead of ${l64.encCpu.toFixed(2)} / ${l64.decCpu.toFixed(2)}: ` +
        `the kernel's side of the tmpfs (allocating the new file's pages, copying every byte in and out) runs on libuv's pool, and each hand-off to the pool and back wakes a thread. ` +
        `envelope-kit's file functions run at ${ratio(f.enc.median / fl.enc.median)} / ${ratio(f.dec.median / fl.dec.median)} of that reference. Spread perfectly over the ${cores} cores, their ${f.encCpu.toFixed(2)} / ${f.decCpu.toFixed(2)} CPU s/GB would allow at most ${fmt(ceiling(f.encCpu))} / ${fmt(ceiling(f.decCpu))} MB/s, ` +
        `${ratio(ceiling(f.encCpu) / l64.enc.median)} / ${ratio(ceiling(f.decCpu) / l64.dec.median)} of the loop; ${TARGETS.fileVsLoop}× of the loop would need at most ${((cores / (TARGETS.fileVsLoop * l64.enc.median)) * 1000).toFixed(2)} CPU s/GB for everything, files included.`,
    );
  }
  p();

  p(`${h2} ${num(2)} \`openssl speed\``);
  p();
  if (r.openssl.rows.length === 0) {
    p(`The \`openssl\` command is missing here (${r.openssl.error ?? 'not found'}): no figures.`);
  } else {
    p('`openssl speed -evp aes-256-gcm -bytes <segment size> -seconds 2` (encrypt), the same with `-decrypt`, and with `-aead` (a fresh IV, 13 bytes of AAD and a tag per block: closer to a cipher per segment), spawned one after the other while nothing else of this run works. `openssl speed` keeps one cipher context and updates it in place; it is the AES-GCM code of the machine without any per-call cost.');
    p();
    p('| block | openssl encrypt MB/s | openssl decrypt MB/s | openssl `-aead` MB/s | `encryptFile` vs openssl | `decryptFile` vs openssl (`-decrypt`) | node:crypto loop vs openssl, enc / dec |');
    p('| --- | --- | --- | --- | --- | --- | --- |');
    for (const o of r.openssl.rows) {
      const f = fileRow(r, ids.file(o.blockSize));
      const l = loopOf(o.blockSize);
      const x = (v: number | undefined) => (v === undefined ? 'failed' : fmt(v));
      const rt = (a: number, b: number | undefined) => (b === undefined ? '' : ratio(a / b));
      p(`| ${sizeName(o.blockSize)} | ${x(o.encrypt)} | ${x(o.decrypt)} | ${x(o.aead)} | ${rt(f.enc.median, o.encrypt)} | ${rt(f.dec.median, o.decrypt)} | ${rt(l.enc.median, o.encrypt)} / ${rt(l.dec.median, o.decrypt)} |`);
    }
    p();
    p("The gap between openssl and the node:crypto loop is Node's cost around the cipher, not AES: every `update()` allocates and returns a new Buffer, and every segment builds a cipher object (key schedule included) and frees it; the gap is smaller at 256 KiB, where there are a quarter as many.");
  }
  p();

  p(`${h2} ${num(3)} Parallel mode`);
  p();
  p(`\`encryptFile\`/\`decryptFile\` of the same ${size} file with \`parallel: n\`: each segment goes to WebCrypto (\`crypto.subtle\`), whose AES-GCM runs on Node's thread pool (libuv, ${process.env.UV_THREADPOOL_SIZE ?? 4} threads) while the main thread reads, copies and writes. Compared with the single-core node:crypto loop of the same segment size (${ref(1)}), in the same round robin. This machine has ${r.m.cores} cores.`);
  p();
  p('| contender | segment | encrypt MB/s | decrypt MB/s | encrypt vs loop | decrypt vs loop | vs `parallel: 1`, enc / dec | CPU s/GB, enc / dec |');
  p('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const row of r.files) {
    if (!row.c.id.startsWith('ek-file-') || row.c.bytes !== CONFIG.size) continue;
    if (row.c.parallel === 1 && row.c.segmentSize !== 64 * KiB) continue;
    const l = loopOf(row.c.segmentSize);
    const one = fileRow(r, ids.file(row.c.segmentSize));
    p(`| ${row.c.label} | ${sizeName(row.c.segmentSize)} | ${showRate(row.enc)} | ${showRate(row.dec)} | ${ratio(row.enc.median / l.enc.median)} | ${ratio(row.dec.median / l.dec.median)} | ${row === one ? '' : `${ratio(row.enc.median / one.enc.median)} / ${ratio(row.dec.median / one.dec.median)}`} | ${cpu(row)} |`);
  }
  p();
  {
    const p1 = fileRow(r, ids.file(64 * KiB));
    const p4 = fileRow(r, ids.file(64 * KiB, 4));
    const cores = r.m.cores;
    p(
      `What limits it: parallel mode costs more CPU per byte than it spreads. With \`parallel: 4\` the run used ${p4.encCpu.toFixed(2)} / ${p4.decCpu.toFixed(2)} CPU s/GB against ${p1.encCpu.toFixed(2)} / ${p1.decCpu.toFixed(2)} with \`parallel: 1\`: ` +
        'every segment is one WebCrypto call (argument conversion, a copy of the segment in JavaScript besides the one the cipher makes, one hand-off to the thread pool and one back, a fresh output buffer), and when encrypting one file write of its own. ' +
        `Spread perfectly over the ${cores} cores that would allow at most ${fmt((cores / p4.encCpu) * 1000)} / ${fmt((cores / p4.decCpu) * 1000)} MB/s, ${ratio(((cores / p4.encCpu) * 1000) / l64.enc.median)} / ${ratio(((cores / p4.decCpu) * 1000) / l64.dec.median)} of the single-core loop in memory.`,
    );
  }
  p();

  p(`${h2} ${num(4)} AWS Encryption SDK, streaming`);
  p();
  const awsA = fileRow(r, ids.aws(64 * KiB, CONFIG.awsSize));
  const awsD = fileRow(r, ids.aws(AWS_DEFAULT_FRAME, CONFIG.awsDefaultSize));
  const ekA = fileRow(r, ids.file(64 * KiB, 1, CONFIG.awsSize));
  const pipeA = fileRow(r, `ek-pipeline-${CONFIG.awsSize / MiB}m`);
  p(
    `${CONFIG.awsSize === CONFIG.size ? `The same ${size} file` : `A ${sizeName(CONFIG.awsSize)} file (the SDK streams at tens of MB/s, so ${size} would take tens of seconds each way; rates are compared, and envelope-kit runs on the same ${sizeName(CONFIG.awsSize)} file in the same round robin)`}, ` +
      `through \`pipeline(createReadStream(file), aws.encryptStream(keyring, { suiteId, frameLength }), createWriteStream(out))\` and back with \`aws.decryptStream(keyring)\`, in the same round robin as ${ref(1)}. The SDK's committing unsigned suite (\`ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY\`), reads of 1 MiB, the frame length set to 64 KiB like the segments; and once more with the SDK's default frame length, 4096, on a ${sizeName(CONFIG.awsDefaultSize)} file.`,
  );
  p();
  p('| contender | input | encrypt MB/s | decrypt MB/s | envelope-kit `encryptFile`/`decryptFile` is, enc / dec | CPU s/GB, enc / dec |');
  p('| --- | --- | --- | --- | --- | --- |');
  for (const row of [ekA, pipeA, awsA, awsD]) {
    p(`| ${row.c.label} | ${sizeName(row.c.bytes)} | ${showRate(row.enc)} | ${showRate(row.dec)} | ${row === ekA ? '' : `${ratio(ekA.enc.median / row.enc.median)} / ${ratio(ekA.dec.median / row.dec.median)}`} | ${cpu(row)} |`);
  }
  p();
  p('The `pipeline` row is envelope-kit on the same plumbing as the SDK (`node:stream`, over the Web Streams transform), for a like-for-like view of the stream machinery.');
  p();

  p(`${h2} ${num(5)} Peak memory while streaming`);
  p();
  const src = [...new Set(r.rss.map((x) => x.peakSource))].join(', ');
  p(`Each call runs once in a child process of its own (\`bench/stream-rss-child.ts\`), 64 KiB segments, after a warm-up round trip of 1 MiB. "before" is the RSS after a GC, just before the call; "peak" is the larger of the kernel's high-water mark (${src}, reset just before the call through \`/proc/self/clear_refs\`) and \`process.memoryUsage.rss()\` sampled every 10 ms. The files are on the tmpfs, whose pages are page cache, not the process's RSS. Growth = peak − before.`);
  p();
  p('| call | file | parallel | before | peak | growth | time |');
  p('| --- | --- | --- | --- | --- | --- | --- |');
  for (const x of r.rss) p(`| \`${x.op}File\` | ${sizeName(x.size)} | ${x.parallel} | ${mibOf(x.baseRss)} | ${mibOf(x.peak)} | **${mibOf(x.peak - x.baseRss)}** | ${fmt(x.ms)} ms |`);
  p();
  p("What a call holds: two input and two output blocks of about 1 MiB each, and, per segment, the Buffers that node:crypto's `update()` and `getAuthTag()` return, freed at V8's next collection (which external-memory pressure starts). In parallel mode, also a copy of each segment in flight, WebCrypto's own copy and its output.");
  p();

  p(`${h2} ${num(6)} \`decryptRange\``);
  p();
  const whole = median(fileRow(r, ids.file(64 * KiB)).decMs);
  p(`\`decryptRange(source, { provider, offset: ${fmt(CONFIG.size - RANGE_BYTES)}, length: ${RANGE_BYTES} })\`: the last ${RANGE_BYTES} bytes of the ${size} envelope of ${ref(1)}, \`source\` from \`openFileSource\` (opened once), checked against the input's bytes. Each call reads the header, asks the provider to unwrap the data key, derives the keys, checks the commitment and reads and opens the segments of the range. Median of ${CONFIG.rangeReps} calls after 20 warm-up calls; "whole file" is the median \`decryptFile\` time of the same envelope in ${ref(1)}.`);
  p();
  p('| segments | decryptRange time | segments read | whole file (`decryptFile`) | faster by |');
  p('| --- | --- | --- | --- | --- |');
  for (const g of r.range) {
    const w = median(fileRow(r, ids.file(g.segmentSize)).decMs);
    p(`| ${sizeName(g.segmentSize)} | ${showMs(g.ms)} | ${g.segmentsRead} | ${fmt(w)} ms | **${fmt(w / median(g.ms))}×** |`);
  }
  p();
  p(`(The ${size} plaintext is a whole number of segments, so the last ${RANGE_BYTES} bytes lie in the last segment, which is read and opened alone: its "last" flag, from the file's length, is checked too. Whole-file time at 64 KiB: ${fmt(whole)} ms.)`);
  p();

  p(`${h2} ${num(7)} Web Streams`);
  p();
  p(`\`encryptStream\` of ${sizeName(CONFIG.webSize)} in memory, from a \`ReadableStream\` of 1 MiB chunks (views of one buffer) through the transform to a \`WritableStream\` that counts bytes; \`decryptStream\` of its envelope, fed in 1 MiB chunks, likewise. 64 KiB segments. One untimed round trip is compared with the input byte for byte; timed runs check the counts. Median of ${CONFIG.webReps} interleaved repetitions after a warm-up (32 MiB encrypt, a whole decrypt).`);
  p();
  p('| contender | encrypt MB/s | decrypt MB/s | encrypt vs loop | decrypt vs loop | CPU s/GB, enc / dec |');
  p('| --- | --- | --- | --- | --- | --- |');
  for (const w of r.web) p(`| ${w.label} | ${showRate(w.enc)} | ${showRate(w.dec)} | ${ratio(w.enc.median / l64.enc.median)} | ${ratio(w.dec.median / l64.dec.median)} | ${cpu(w)} |`);
  p();
  p(`"vs loop" divides by the 64 KiB node:crypto loop of ${ref(1)}.`);
  p();
  if (!SECTION) {
    p('## Reproduce');
    p();
    p('```sh');
    p('npm install');
    p('npm run bench:stream                # builds dist/ with tsup, then runs bench/stream.ts: about 5 minutes on 2 cores; at its peak 5.5 GiB of tmpfs and 3.5 GiB of process memory');
    p('npm run bench:stream -- --quick     # 64 MiB instead of 1 GiB, to try the harness');
    p('```');
    p();
  }
  return L.join('\n');
}

function awsVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', '@aws-crypto', 'client-node', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const m = machine();
  const fsInfo = fileSystems();
  log(`stream: ${m.cpu}, ${m.cores} cores, Node ${m.node}${QUICK ? ' (quick mode)' : ''}; files on ${fsInfo.workLabel}; load ${loadAtStart}`);
  const dir = mkdtempSync(join(fsInfo.work, 'envelope-kit-stream-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const onSignal = () => {
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    part('setup');
    const keys: BulkKeys = {
      ekKeyId: 'bench1',
      ekMaterialHex: randomBytes(32).toString('hex'),
      awsMaterialHex: randomBytes(32).toString('hex'),
      rawKeyHex: randomBytes(32).toString('hex'),
    };
    const keysFile = join(dir, 'keys.json');
    writeFileSync(keysFile, JSON.stringify(keys), { mode: 0o600 });
    const plaintext = Buffer.allocUnsafe(CONFIG.size);
    for (let i = 0; i < plaintext.length; i += 16 * MiB) randomFillSync(plaintext, i, Math.min(16 * MiB, plaintext.length - i));
    const inputs = new Map<number, string>();
    for (const n of new Set([CONFIG.size, CONFIG.warmSize, CONFIG.awsSize, CONFIG.awsDefaultSize])) {
      const f = join(dir, `in-${n}`);
      writeFile(f, plaintext, n);
      inputs.set(n, f);
    }
    // The header length of the envelopes measured: the envelope of a small file, less its segments.
    const probe = join(dir, 'probe.ek');
    await encryptFile(inputs.get(CONFIG.warmSize)!, probe, { provider: benchKeyring(keys), keyId: keys.ekKeyId });
    const segs = CONFIG.warmSize / (64 * KiB);
    const headerLength = statSync(probe).size - CONFIG.warmSize - 16 * segs;
    rmSync(probe);
    const setup: Setup = { dir, keys, plaintext, inputs, headerLength };

    part('files: round robin');
    const { list, loops } = contenders(setup);
    const samples = await roundRobin(list, CONFIG.fileReps, (c, warm) => c.run(warm), (rep) => log(`files: repetition ${rep + 1}/${CONFIG.fileReps} (load ${loadAverage()})`));
    const files: FileRow[] = list.map((c) => {
      const s = samples.get(c)!;
      return {
        c,
        enc: rateOf(c.bytes, s.encrypt!),
        dec: rateOf(c.bytes, s.decrypt!),
        encMs: s.encrypt!,
        decMs: s.decrypt!,
        encCpu: cpuPerGB(c.bytes, s.encryptCpu!),
        decCpu: cpuPerGB(c.bytes, s.decryptCpu!),
      };
    });
    for (const l of loops.values()) l.store = undefined;
    gc();

    let other: OtherFsRun | undefined;
    if (fsInfo.other) {
      part(`files: one run on ${fsInfo.other}`);
      other = await otherFsRun(setup, fsInfo.other);
    }

    part('openssl speed');
    const openssl = opensslSpeed();

    part('decryptRange');
    const range: RangeRow[] = [];
    for (const seg of SEGMENTS) range.push(await benchRange(setup, join(dir, `${ids.file(seg)}.ek`), seg));
    for (const seg of SEGMENTS) rmSync(join(dir, `${ids.file(seg)}.ek`), { force: true });

    part('Web Streams');
    const web = await benchWeb(setup);

    part('peak memory');
    const rss = benchRss(setup, keysFile);

    const r: StreamResult = { m, fs: fsInfo, headerLength, files, other, openssl, range, web, rss, seconds: (now() - started) / 1000 };
    writeFileSync(OUT, report(r));
    log(`stream: wrote ${OUT} in ${r.seconds.toFixed(0)} s`);
    process.stdout.write(`${JSON.stringify(summary(r))}\n`);
  } finally {
    cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The run in one JSON object: the target rows (for bench/run.ts's table) and, as run.ts prints them, ratio / needed / met. */
function summary(r: StreamResult): unknown {
  const rows = targetRows(r);
  return {
    quick: QUICK,
    rows,
    targets: Object.fromEntries(rows.map((t) => [t.id, { ratio: t.ratio === undefined ? null : Number(t.ratio.toFixed(3)), needed: `${{ '≥': '>=', '≤': '<=', '<': '<' }[t.op]}${t.needed}`, met: t.met }])),
  };
}

try {
  await main();
} catch (e) {
  // One line, not the transpiled source line that Node prints with an uncaught error.
  log(`stream: FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
}
