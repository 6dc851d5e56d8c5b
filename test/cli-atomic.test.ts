/**
 * What the command line leaves behind when a run fails or is stopped: no output
 * file and no temporary file after a signal (SIGINT, SIGTERM, and SIGKILL, which
 * only the guardian process can clean up after), a tampered segment deep in the
 * input, or a full disk (RLIMIT_FSIZE through `ulimit -f`, which makes writes
 * fail with EFBIG); on stdout, only authenticated segments. Run on the built
 * `dist/cli.js`.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, finish, pseudoRandom, sameBytes, start, tempDir, tempFiles, until } from './cli-helpers.js';

let dir: string;
let removeDir: () => Promise<void>;
let keyring: string;
const KR = () => ['--keyring', keyring, '--unprotected-keyring'];
/** 3 MiB of plaintext, and its framed envelope in 4 KiB segments. */
const plaintext = pseudoRandom(3 * 1024 * 1024, 99);
let envelope: Buffer;

beforeAll(async () => {
  ({ dir, remove: removeDir } = await tempDir('ek-cli-atomic-'));
  keyring = path.join(dir, 'k.keyring.json');
  expect((await cli(['keys', 'init', '--keyring', keyring, '--unprotected-keyring', '--alias', 'alias/app', '-q'])).code).toBe(0);
  await fs.writeFile(path.join(dir, 'plain.bin'), plaintext);
  const e = await cli(['encrypt', path.join(dir, 'plain.bin'), '-o', path.join(dir, 'plain.ek'), ...KR(), '--key-id', 'alias/app', '--segment-size', '4096']);
  expect(e.code, e.stderr).toBe(0);
  envelope = await fs.readFile(path.join(dir, 'plain.ek'));
});
afterAll(async () => {
  await removeDir();
});

/** A folder of its own for one test's output. */
async function outDir(name: string): Promise<string> {
  const d = path.join(dir, name);
  await fs.mkdir(d);
  return d;
}

/**
 * Start a decryption from stdin into `out`, feed it the first megabyte of the envelope, and wait
 * until plaintext is in its temporary file (the rest of the input is held back).
 */
async function decryptionUnderway(out: string) {
  const child = start(['decrypt', '-', '-o', out, ...KR()]);
  const done = finish(child);
  child.stdin!.on('error', () => {});
  child.stdin!.write(envelope.subarray(0, 1024 * 1024));
  let temp = '';
  await until(
    async () => {
      const t = await tempFiles(path.dirname(out));
      if (t.length !== 1) return false;
      temp = path.join(path.dirname(out), t[0]!);
      return statSync(temp, { throwIfNoEntry: false })?.size !== undefined && statSync(temp).size > 100_000;
    },
    10_000,
    'plaintext in the temporary file',
  );
  return { child, done, temp };
}

describe('signals during a long decryption', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s: exit %i, no output file, no temporary file', async (signal, status) => {
    const d = await outDir(`sig-${signal}`);
    const out = path.join(d, 'out.bin');
    const { child, done } = await decryptionUnderway(out);
    child.kill(signal);
    const r = await done;
    expect(r.code).toBe(status);
    expect(r.stderr).toBe(`envelope-kit: interrupted (${signal})\n`);
    expect(await fs.readdir(d)).toEqual([]);
  });

  it('SIGKILL: the guardian removes the temporary file once the process is gone', async () => {
    const d = await outDir('sig-kill');
    const out = path.join(d, 'out.bin');
    const { child, done, temp } = await decryptionUnderway(out);
    expect(statSync(temp).size).toBeGreaterThan(0); // partial plaintext was on disk
    child.kill('SIGKILL');
    const r = await done;
    expect(r.signal).toBe('SIGKILL');
    await until(async () => (await fs.readdir(d)).length === 0, 5000, 'the guardian to remove the temporary file');
    expect(await fs.readdir(d)).toEqual([]);
  });

  it('the next run removes the temporary files of dead processes beside its output', async () => {
    const d = await outDir('stale');
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const stale = path.join(d, `.out.bin.${dead}.0123456789ab.tmp`);
    await fs.writeFile(stale, 'partial plaintext of a killed run');
    const r = await cli(['decrypt', path.join(dir, 'plain.ek'), '-o', path.join(d, 'out.bin'), ...KR()]);
    expect(r.code, r.stderr).toBe(0);
    expect(await fs.readdir(d)).toEqual(['out.bin']);
  });
});

describe('a tampered segment deep in the input', () => {
  const tampered = () => {
    const t = Buffer.from(envelope);
    t[t.length - 10_000]! ^= 0x01; // in one of the last segments, megabytes after the header
    return t;
  };

  it('file to file: exit 3, and no output file nor temporary file', async () => {
    const d = await outDir('tamper-file');
    await fs.writeFile(path.join(d, 'in.ek'), tampered());
    const r = await cli(['decrypt', path.join(d, 'in.ek'), '-o', path.join(d, 'out.bin'), ...KR()]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('envelope-kit: decryption failed (ERR_DECRYPTION_FAILED)\n');
    expect(await fs.readdir(d)).toEqual(['in.ek']);
  });

  it('stdin to file: the same', async () => {
    const d = await outDir('tamper-stdin');
    const r = await cli(['decrypt', '-', '-o', path.join(d, 'out.bin'), ...KR()], { input: tampered() });
    expect(r.code).toBe(3);
    expect(await fs.readdir(d)).toEqual([]);
  });

  it('to stdout: only whole authenticated segments were written, and the exit status is 3', async () => {
    const r = await cli(['decrypt', '-', ...KR()], { input: tampered() });
    expect(r.code).toBe(3);
    expect(r.stdout.length).toBeGreaterThan(0);
    expect(r.stdout.length).toBeLessThan(plaintext.length);
    expect(r.stdout.length % 4096).toBe(0);
    expect(sameBytes(r.stdout, plaintext.subarray(0, r.stdout.length))).toBe(true);
  });

  it('the control: the untouched envelope decrypts whole', async () => {
    const r = await cli(['decrypt', '-', ...KR()], { input: envelope });
    expect(r.code, r.stderr).toBe(0);
    expect(sameBytes(r.stdout, plaintext)).toBe(true);
  });
});

describe('a full disk (file size limit: writes fail with EFBIG)', () => {
  // bash's `ulimit -f` counts 1024-byte blocks: 1 MiB, a third of the output.
  const limit = 'ulimit -f 1024;';

  it('encrypt file to file: exit 6, no output, no temporary file', async () => {
    const d = await outDir('full-encrypt');
    const r = await cli(['encrypt', path.join(dir, 'plain.bin'), '-o', path.join(d, 'out.ek'), ...KR(), '--key-id', 'alias/app'], { shellPrefix: limit });
    expect(r.code).toBe(6);
    expect(r.stderr).toBe(`envelope-kit: cannot write ${path.join(d, 'out.ek')}: file too large (EFBIG)\n`);
    expect(await fs.readdir(d)).toEqual([]);
  });

  it('decrypt file to file and stdin to file: exit 6, no output, no temporary file', async () => {
    const d = await outDir('full-decrypt');
    const a = await cli(['decrypt', path.join(dir, 'plain.ek'), '-o', path.join(d, 'a.bin'), ...KR()], { shellPrefix: limit });
    expect(a.code).toBe(6);
    expect(a.stderr).toContain('(EFBIG)');
    const b = await cli(['decrypt', '-', '-o', path.join(d, 'b.bin'), ...KR()], { shellPrefix: limit, input: envelope });
    expect(b.code).toBe(6);
    expect(b.stderr).toBe(`envelope-kit: cannot write ${path.join(d, 'b.bin')}: file too large (EFBIG)\n`);
    expect(await fs.readdir(d)).toEqual([]);
    expect(await tempFiles(dir)).toEqual([]);
  });

  it('the control: under a limit large enough, the same runs succeed', async () => {
    const d = await outDir('full-control');
    const r = await cli(['decrypt', path.join(dir, 'plain.ek'), '-o', path.join(d, 'a.bin'), ...KR()], { shellPrefix: 'ulimit -f 8192;' });
    expect(r.code, r.stderr).toBe(0);
    expect(sameBytes(await fs.readFile(path.join(d, 'a.bin')), plaintext)).toBe(true);
  });
});
