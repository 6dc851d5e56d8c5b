/**
 * `npm run bench:rewrap`: what re-wrapping costs (SPEC.md §15). A re-wrap changes only the
 * header's data-key list, so its cost should be one copy of the body and nothing that grows with
 * it besides:
 *
 * 1. `rewrap` on in-memory single-pass envelopes of 1 KiB, 1 MiB and 64 MiB, against a plain
 *    `Uint8Array.set` copy of the same size (allocation included);
 * 2. `rewrapHeader` on framed envelope files of 1 MiB and 1 GiB on /dev/shm, read through
 *    `openFileSource`: the time and the bytes read must not depend on the payload's size;
 * 3. `rewrapFile` in place on the 1 GiB file, against `cp` of the same file (and the body is
 *    hashed before and after: it must be unchanged).
 *
 * Each with the local keyring, on two paths: `replace` of a key by itself (the keyring's
 * `reEncrypt`: the header keeps its length, so `rewrapFile` copies through the kernel) and `add`
 * of another key (the data key is unwrapped and wrapped again; the header grows, so the body is
 * copied through buffers). Runs against the built package (`dist/`), which the npm script builds
 * first. Writes bench/RESULTS-rewrap.md (or `--out FILE`); `--quick` uses 64 MiB instead of 1 GiB
 * and fewer runs (for trying the harness, not figures to quote). Exits non-zero when a body
 * changed or a re-wrapped envelope does not decrypt.
 * @module
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, promises as fsp, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalKeyring, decrypt, encrypt, inspect, rewrap, rewrapHeader } from 'envelope-kit';
import { decryptFile, encryptFile, openFileSource, rewrapFile } from 'envelope-kit/node';
import { fmt, gc, log, machine, median, now, ratio } from './lib.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const OUT = args.includes('--out') ? resolve(args[args.indexOf('--out') + 1]!) : join(ROOT, 'bench', 'RESULTS-rewrap.md');

const KiB = 1024;
const MiB = 1024 * KiB;
const BIG = QUICK ? 64 * MiB : 1024 * MiB;
const BIG_NAME = QUICK ? '64 MiB' : '1 GiB';
const MEMORY_SIZES: readonly [string, number, number][] = QUICK
  ? [['1 KiB', KiB, 21], ['1 MiB', MiB, 11], ['64 MiB', 64 * MiB, 3]]
  : [['1 KiB', KiB, 201], ['1 MiB', MiB, 51], ['64 MiB', 64 * MiB, 9]];
const HEADER_RUNS = QUICK ? 21 : 101;
const FILE_RUNS = QUICK ? 2 : 3;

let failed = false;
function check(ok: boolean, what: string): void {
  if (!ok) {
    failed = true;
    log(`FAILED: ${what}`);
  }
}

const loads: string[] = [];
function noteLoad(part: string): void {
  loads.push(`${part} ${loadavg()[0]!.toFixed(2)}`);
}
function uptime(): string {
  const r = spawnSync('uptime', [], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : `load average ${loadavg().map((x) => x.toFixed(2)).join(', ')}`;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
async function fileHash(file: string, start: number): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { start, highWaterMark: 4 * MiB })) h.update(c as Buffer);
  return h.digest('hex');
}

/** Median ms of `runs` calls of `fn` (after one warm-up call), a GC before each. */
async function timeIt(runs: number, fn: (i: number) => Promise<unknown> | unknown): Promise<number> {
  await fn(-1);
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    gc();
    const t = now();
    await fn(i);
    xs.push(now() - t);
  }
  return median(xs);
}

const keyring = new LocalKeyring();
const keyA = keyring.createKey({ alias: 'alias/a' }).keyId;
const keyB = keyring.createKey({ alias: 'alias/b' }).keyId;
/** The two paths: the keyring's reEncrypt (same key, newest version) and an add (unwrap, wrap for B). */
const PATHS = {
  reEncrypt: { provider: keyring, replace: [{ from: { keyId: keyA }, to: { provider: keyring, keyId: keyA } }] },
  add: { provider: keyring, add: [{ provider: keyring, keyId: keyB }] },
} as const;
type PathName = keyof typeof PATHS;

const started = new Date();
const startUptime = uptime();
log(`start: ${startUptime}`);

// ---- 1. rewrap in memory ----------------------------------------------------------------------
noteLoad('in memory');
const memoryRows: string[] = [];
for (const [name, size, runs] of MEMORY_SIZES) {
  const plaintext = new Uint8Array(size);
  randomFillSync(plaintext.subarray(0, Math.min(size, 64 * KiB)));
  const envelope = await encrypt(plaintext, { provider: keyring, keyId: keyA });
  const headerLength = inspect(envelope).headerLength;
  const bodyHash = sha256(envelope.subarray(headerLength));
  let sink: Uint8Array = new Uint8Array(0);
  const copyMs = await timeIt(runs, () => {
    const out = new Uint8Array(envelope.length);
    out.set(envelope);
    sink = out;
  });
  for (const p of Object.keys(PATHS) as PathName[]) {
    let last: Uint8Array = envelope;
    const ms = await timeIt(runs, async () => {
      last = await rewrap(envelope, PATHS[p]);
    });
    const h = inspect(last).headerLength;
    check(sha256(last.subarray(h)) === bodyHash, `rewrap ${p} ${name}: body changed`);
    check((await decrypt(last, { provider: keyring, keyIds: [p === 'add' ? keyB : keyA] })).plaintext.length === size, `rewrap ${p} ${name}: does not decrypt`);
    memoryRows.push(`| ${name} | ${p} | ${fmt(ms)} ms | ${fmt(copyMs)} ms | ${ratio(ms / copyMs)} | ${fmt(ms - copyMs)} ms | ${runs} |`);
    log(`rewrap ${name} ${p}: ${fmt(ms)} ms (copy ${fmt(copyMs)} ms)`);
  }
  void sink;
}

// ---- files on /dev/shm --------------------------------------------------------------------------
const shm = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const dir = mkdtempSync(join(shm, 'ek-bench-rewrap-'));
const headerRows: string[] = [];
const fileRows: string[] = [];
let cpMs = 0;
try {
  const files: Record<string, string> = {};
  for (const [name, size] of [['1 MiB', MiB], [BIG_NAME, BIG]] as const) {
    const plain = join(dir, 'plain');
    const buf = new Uint8Array(Math.min(size, 64 * MiB));
    const fh = await fsp.open(plain, 'w');
    for (let o = 0; o < size; o += buf.length) {
      randomFillSync(buf);
      await fh.write(buf, 0, Math.min(buf.length, size - o));
    }
    await fh.close();
    const file = join(dir, `${name.replace(' ', '')}.ek`);
    await encryptFile(plain, file, { provider: keyring, keyId: keyA, segmentSize: 64 * KiB });
    rmSync(plain);
    files[name] = file;
  }

  // ---- 2. rewrapHeader through a file source ----------------------------------------------------
  noteLoad('rewrapHeader');
  for (const p of Object.keys(PATHS) as PathName[]) {
    for (const [name, file] of Object.entries(files)) {
      const source = await openFileSource(file);
      let bytesRead = 0;
      const counting = {
        size: source.size,
        read: async (o: number, l: number): Promise<Uint8Array> => {
          bytesRead += l;
          return source.read(o, l);
        },
      };
      let changed = false;
      const ms = await timeIt(HEADER_RUNS, async () => {
        bytesRead = 0;
        changed = (await rewrapHeader(counting, PATHS[p])).changed;
      });
      await source.close();
      check(changed, `rewrapHeader ${p} ${name}: nothing changed`);
      headerRows.push(`| ${name} (${fmt(statSync(file).size / MiB)} MiB file) | ${p} | ${fmt(ms * 1000)} µs | ${bytesRead.toLocaleString('en-US')} | ${HEADER_RUNS} |`);
      log(`rewrapHeader ${name} ${p}: ${fmt(ms * 1000)} µs, ${bytesRead} bytes read`);
    }
  }

  // ---- 3. rewrapFile in place against cp --------------------------------------------------------
  const big = files[BIG_NAME]!;
  const size = statSync(big).size;
  const head = await openFileSource(big);
  const bodyStart = inspect(await head.read(0, 4096)).headerLength;
  await head.close();
  const bodyHash = await fileHash(big, bodyStart);
  noteLoad('cp');
  const copy = join(dir, 'copy.ek');
  cpMs = await timeIt(FILE_RUNS, () => {
    rmSync(copy, { force: true });
    const t = spawnSync('cp', [big, copy]);
    if (t.status !== 0) throw new Error('cp failed');
  });
  rmSync(copy, { force: true });
  log(`cp ${BIG_NAME}: ${fmt(cpMs)} ms`);
  for (const p of Object.keys(PATHS) as PathName[]) {
    noteLoad(`rewrapFile ${p}`);
    let last: Awaited<ReturnType<typeof rewrapFile>> | undefined;
    const ms = await timeIt(FILE_RUNS, async () => {
      // The add path needs a key not yet in the envelope each time: one more recipient per run.
      const options = p === 'add' ? { provider: keyring, add: [{ provider: keyring, keyId: keyring.createKey().keyId }] } : PATHS[p];
      last = await rewrapFile(big, options);
    });
    check(last!.changed, `rewrapFile ${p}: nothing changed`);
    const after = await fileHash(big, last!.headerBytes.after);
    check(after === bodyHash, `rewrapFile ${p}: body changed`);
    const mbs = size / 1e6 / (ms / 1000);
    fileRows.push(
      `| ${p} | ${last!.headerBytes.before} -> ${last!.headerBytes.after} | ${p === 'reEncrypt' ? 'kernel (`fs.copyFile`), then the header written over it' : 'two 8 MiB buffers'} | ${fmt(ms)} ms | ${fmt(mbs)} MB/s | ${fmt(size / 1e6 / (cpMs / 1000))} MB/s | ${ratio(mbs / (size / 1e6 / (cpMs / 1000)))} | ${after === bodyHash ? 'same' : '**changed**'} |`,
    );
    log(`rewrapFile ${BIG_NAME} ${p}: ${fmt(ms)} ms, ${fmt(mbs)} MB/s`);
  }
  // The last state of the file still decrypts.
  const out = join(dir, 'out.bin');
  await decryptFile(big, out, { provider: keyring, keyIds: [keyA] });
  check(statSync(out).size === BIG, 'the re-wrapped file does not decrypt to its size');
  rmSync(out);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const endUptime = uptime();
const m = machine();
const seconds = ((Date.now() - started.getTime()) / 1000).toFixed(0);
const md = `# envelope-kit re-wrap benchmark results

Written by \`npm run bench:rewrap\` (bench/rewrap.ts)${QUICK ? ' with `--quick` (small sizes, few runs: not figures to quote)' : ''}. One process, one run; medians of the runs given.

## Machine

- CPU: ${m.cpu}, ${m.cores} cores; memory ${m.memoryGiB.toFixed(1)} GiB
- Node ${m.node}, ${m.platform}
- Date: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC; the run took ${seconds} s
- \`uptime\` at the start: ${startUptime}
- \`uptime\` at the end: ${endUptime}
- 1-minute load when each part began: ${loads.join(', ')} (other work on the machine shows in the figures)
- Files on ${shm}${shm === '/dev/shm' ? ' (tmpfs), so that the disk is not what is measured' : ''}; local keyring (\`LocalKeyring\`, in memory)

## 1. \`rewrap\` in memory (single-pass envelopes)

\`copy\` is \`new Uint8Array(n)\` and \`.set()\` of the whole envelope. \`rewrap\` copies the input once
(it must not read a buffer the caller may change while a provider is awaited) and writes the
output once, so about two copies are expected on top of the header work; \`rewrap - copy\` is
what is not the copy of the output.

| payload | path | rewrap | copy | rewrap / copy | rewrap - copy | runs |
| --- | --- | --- | --- | --- | --- | --- |
${memoryRows.join('\n')}

## 2. \`rewrapHeader\` through \`openFileSource\` (framed envelopes, 64 KiB segments)

Only the header is read: the bytes read and the time do not depend on the payload's size.

| payload | path | time | bytes read | runs |
| --- | --- | --- | --- | --- |
${headerRows.join('\n')}

## 3. \`rewrapFile\` in place, ${BIG_NAME} framed envelope, against \`cp\`

\`cp\` of the same file takes ${fmt(cpMs)} ms. Each \`rewrapFile\` writes a temporary file, fsyncs it and
renames it over the original. The body is hashed (SHA-256) before and after the runs of each path.

| path | header bytes (last run) | body copy | time | rewrapFile | cp | vs cp | body |
| --- | --- | --- | --- | --- | --- | --- | --- |
${fileRows.join('\n')}

Result: ${failed ? '**a check FAILED** (see the log)' : 'every body unchanged, every re-wrapped envelope decrypted'}.
`;
writeFileSync(OUT, md);
log(`wrote ${OUT}`);
log(`end: ${endUptime}`);
if (failed) process.exit(1);
