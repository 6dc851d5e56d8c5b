/**
 * The Node adapters of framed envelopes (`envelope-kit/node`, SPEC.md §14): `encryptFile` and
 * `decryptFile` (atomic output: on any failure, a bad segment deep in the file, an abort, a full
 * disk, neither the output nor a temporary file is left), `openFileSource` with `decryptRange`,
 * the `node:stream` duplexes in `pipeline`, and a 1 GiB envelope read at its end through a
 * source that holds only its header and its last two segments.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidParameterError, LocalKeyring, decrypt, decryptRange, decryptStream, encrypt, encryptStream, inspect } from '../src/index.js';
import { createDecryptStream, createEncryptStream, decryptFile, encryptFile, openFileSource } from '../src/node.js';
import { expectSameBytes } from './core-helpers.js';
import { specRecordBinding } from './spec-crypto.js';
import { CountingProvider, DF, IP, MF, TAG, collect, patterned, referenceBody, rejectsWith, streamOf } from './stream-helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const keyring = new LocalKeyring();
const { keyId } = keyring.createKey();
const provider = new CountingProvider(keyring);

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(tmpdir(), 'ek-stream-node-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A fresh folder of its own for one test. */
const folder = (name: string) => fs.mkdtemp(path.join(dir, `${name}-`));
const listing = async (d: string) => (await fs.readdir(d)).sort();
const read = async (f: string) => new Uint8Array(await fs.readFile(f));

describe('encryptFile and decryptFile', () => {
  const cases: [string, number, Record<string, unknown>][] = [
    ['0 B', 0, {}],
    ['1 B', 1, {}],
    ['a multiple of the segment size', 4 * 65536, {}],
    ['exactly one read block (1 MiB)', 1 << 20, {}],
    ['one read block and a byte', (1 << 20) + 1, {}],
    ['3 MiB and some, odd segments', 3 * (1 << 20) + 12345, { segmentSize: 5001 }],
    ['3 MiB and some, 4 segments at a time', 3 * (1 << 20) + 12345, { parallel: 4, segmentSize: 4096 }],
    ['a segment multiple, 4 at a time', 8 * 4096, { parallel: 4, segmentSize: 4096 }],
  ];
  for (const [what, size, options] of cases) {
    it(`round-trip: ${what}`, async () => {
      const d = await folder('rt');
      const input = path.join(d, 'plain.bin');
      const pt = patterned(size, size);
      await fs.writeFile(input, pt);
      const progress: [number, number][] = [];
      provider.reset();
      await encryptFile(input, path.join(d, 'plain.bin.ek'), { provider, keyId, encryptionContext: { file: 'plain.bin' }, ...options, onProgress: (a, b) => progress.push([a, b]) });
      expect(provider.generateCalls).toBe(1);
      expect(progress.at(-1)).toEqual([size, size]);
      const env = await read(path.join(d, 'plain.bin.ek'));
      const S = (options.segmentSize as number | undefined) ?? 65536;
      const info = inspect(env);
      expect(info).toMatchObject({ plaintextLength: size, segmentSize: S, segmentCount: Math.max(1, Math.ceil(size / S)), encryptionContext: { file: 'plain.bin' } });
      // the file writer makes the body an independent writer makes
      expectSameBytes(env.subarray(info.headerLength), referenceBody(provider.lastDataKey!, env.subarray(0, info.headerLength), specRecordBinding(null, null), pt, S));
      expectSameBytes((await decrypt(env, { provider })).plaintext, pt);
      const out = path.join(d, 'restored.bin');
      const r = await decryptFile(path.join(d, 'plain.bin.ek'), out, { provider, encryptionContext: { file: 'plain.bin' }, ...(options.parallel ? { parallel: options.parallel as number } : {}) });
      expect(r).toEqual({ keyId, encryptionContext: { file: 'plain.bin' }, plaintextLength: size });
      expectSameBytes(await read(out), pt);
      for (const f of ['plain.bin.ek', 'restored.bin']) expect((await fs.stat(path.join(d, f))).mode & 0o777).toBe(0o600);
      expect(await listing(d)).toEqual(['plain.bin', 'plain.bin.ek', 'restored.bin']);
    });
  }

  it('the mode option sets the new file\u2019s mode (less the umask)', async () => {
    const d = await folder('mode');
    await fs.writeFile(path.join(d, 'p'), 'x');
    await encryptFile(path.join(d, 'p'), path.join(d, 'p.ek'), { provider, keyId, mode: 0o640 });
    await decryptFile(path.join(d, 'p.ek'), path.join(d, 'q'), { provider, mode: 0o604 });
    const umask = process.umask();
    expect((await fs.stat(path.join(d, 'p.ek'))).mode & 0o777).toBe(0o640 & ~umask);
    expect((await fs.stat(path.join(d, 'q'))).mode & 0o777).toBe(0o604 & ~umask);
    for (const mode of [-1, 0o1000, 1.5, '600']) {
      await rejectsWith(encryptFile(path.join(d, 'p'), path.join(d, 'bad.ek'), { provider, keyId, mode: mode as number }), IP);
    }
    expect(await listing(d)).toEqual(['p', 'p.ek', 'q']);
  });

  it('refuses to overwrite an existing output unless overwrite is true; the existing bytes stay as they were', async () => {
    const d = await folder('overwrite');
    const input = path.join(d, 'in');
    await fs.writeFile(input, patterned(100_000));
    await encryptFile(input, path.join(d, 'in.ek'), { provider, keyId });
    const existing = Uint8Array.from([1, 2, 3, 4, 5]);
    for (const target of ['out.ek', 'out.bin']) await fs.writeFile(path.join(d, target), existing);
    provider.reset();
    await rejectsWith(encryptFile(input, path.join(d, 'out.ek'), { provider, keyId }), IP);
    await rejectsWith(decryptFile(path.join(d, 'in.ek'), path.join(d, 'out.bin'), { provider }), IP);
    await rejectsWith(encryptFile(input, path.join(d, 'out.ek'), { provider, keyId, overwrite: false }), IP);
    // refused before the provider was asked
    expect(provider.generateCalls + provider.decryptCalls).toBe(0);
    for (const target of ['out.ek', 'out.bin']) expect(await read(path.join(d, target))).toEqual(existing);
    expect(await listing(d)).toEqual(['in', 'in.ek', 'out.bin', 'out.ek']);
    await encryptFile(input, path.join(d, 'out.ek'), { provider, keyId, overwrite: true });
    await decryptFile(path.join(d, 'out.ek'), path.join(d, 'out.bin'), { provider, overwrite: true });
    expectSameBytes(await read(path.join(d, 'out.bin')), patterned(100_000));
    expect(await listing(d)).toEqual(['in', 'in.ek', 'out.bin', 'out.ek']);
  });

  it('a tampered segment deep in the file (segment 100 of 200) leaves no output and no temporary file', async () => {
    const d = await folder('tamper');
    const S = 65536;
    const size = 200 * S - 100;
    const input = path.join(d, 'in');
    await fs.writeFile(input, patterned(size, 1));
    await encryptFile(input, path.join(d, 'in.ek'), { provider, keyId });
    const env = await read(path.join(d, 'in.ek'));
    const h = inspect(env).headerLength;
    expect(inspect(env).segmentCount).toBe(200);
    const variants: [string, Uint8Array][] = [
      ['a bit flipped in segment 100', env.slice()],
      ['segment 100 dropped', new Uint8Array(Buffer.concat([env.subarray(0, h + 100 * (S + TAG)), env.subarray(h + 101 * (S + TAG))]))],
      ['cut after segment 150', env.slice(0, h + 151 * (S + TAG))],
    ];
    variants[0]![1][h + 100 * (S + TAG) + 1234]! ^= 0x10;
    for (const [what, bytes] of variants) {
      await fs.writeFile(path.join(d, 'bad.ek'), bytes);
      for (const parallel of [1, 4]) {
        let temp: string | undefined;
        let written = 0;
        await rejectsWith(
          decryptFile(path.join(d, 'bad.ek'), path.join(d, 'out.bin'), { provider, parallel, onTempFile: (p) => (temp = p), onProgress: (n) => (written = n) }),
          DF,
        );
        // it had written plaintext of the segments before the fault to its temporary file
        expect(written, what).toBeGreaterThan(50 * S);
        expect(temp, what).toBeDefined();
        expect(path.dirname(temp!)).toBe(d);
        await expect(fs.stat(temp!)).rejects.toMatchObject({ code: 'ENOENT' });
        expect(await listing(d), what).toEqual(['bad.ek', 'in', 'in.ek']);
      }
    }
  });

  it('with parallel > 1, segments still in flight after the first failure never become unhandled rejections (a dropped segment fails every later one)', async () => {
    const d = await folder('inflight');
    const S = 4096;
    await fs.writeFile(path.join(d, 'in'), patterned(40 * S, 9));
    await encryptFile(path.join(d, 'in'), path.join(d, 'in.ek'), { provider, keyId, segmentSize: S });
    const env = await read(path.join(d, 'in.ek'));
    const h = inspect(env).headerLength;
    await fs.writeFile(path.join(d, 'bad.ek'), Buffer.concat([env.subarray(0, h + 5 * (S + TAG)), env.subarray(h + 6 * (S + TAG))]));
    const unhandled: unknown[] = [];
    const listener = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      for (const parallel of [2, 8, 64]) {
        await rejectsWith(decryptFile(path.join(d, 'bad.ek'), path.join(d, 'out'), { provider, parallel }), DF);
      }
      // rejections nobody handles are reported once the microtasks ran and a macrotask turn passed
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off('unhandledRejection', listener);
    }
    expect(unhandled).toEqual([]);
    expect(await listing(d)).toEqual(['bad.ek', 'in', 'in.ek']);
  });

  it('a file that is no envelope, or a truncated header, is refused before any output is made', async () => {
    const d = await folder('malformed');
    await fs.writeFile(path.join(d, 'in'), 'hello');
    await encryptFile(path.join(d, 'in'), path.join(d, 'in.ek'), { provider, keyId });
    const env = await read(path.join(d, 'in.ek'));
    for (const bytes of [new Uint8Array(0), Uint8Array.of(0x45, 0x4b), env.subarray(0, 40), env.subarray(0, inspect(env).headerLength), new TextEncoder().encode('not an envelope')]) {
      await fs.writeFile(path.join(d, 'bad.ek'), bytes);
      provider.reset();
      await rejectsWith(decryptFile(path.join(d, 'bad.ek'), path.join(d, 'out'), { provider }), MF);
      expect(provider.decryptCalls).toBe(0);
      expect(await listing(d)).toEqual(['bad.ek', 'in', 'in.ek']);
    }
    await expect(decryptFile(path.join(d, 'missing.ek'), path.join(d, 'out'), { provider })).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('an AbortSignal mid-way leaves nothing; an aborted one before the start touches nothing', async () => {
    const d = await folder('abort');
    const input = path.join(d, 'in');
    await fs.writeFile(input, patterned(8 << 20, 2));
    await encryptFile(input, path.join(d, 'in.ek'), { provider, keyId });
    for (const parallel of [1, 4]) {
      const reason = new Error('user cancelled');
      const c1 = new AbortController();
      let calls = 0;
      const e1 = await rejectsWith(
        encryptFile(input, path.join(d, 'out.ek'), { provider, keyId, parallel, signal: c1.signal, onProgress: () => ++calls === 2 && c1.abort(reason) }),
        IP,
      );
      expect(e1.cause).toBe(reason);
      const c2 = new AbortController();
      calls = 0;
      const e2 = await rejectsWith(
        decryptFile(path.join(d, 'in.ek'), path.join(d, 'out.bin'), { provider, parallel, signal: c2.signal, onProgress: () => ++calls === 2 && c2.abort(reason) }),
        IP,
      );
      expect(e2.cause).toBe(reason);
      expect(await listing(d)).toEqual(['in', 'in.ek']);
    }
    const done = AbortSignal.abort(new Error('too late'));
    provider.reset();
    await rejectsWith(encryptFile(input, path.join(d, 'out.ek'), { provider, keyId, signal: done }), IP);
    await rejectsWith(decryptFile(path.join(d, 'in.ek'), path.join(d, 'out.bin'), { provider, signal: done }), IP);
    expect(provider.generateCalls + provider.decryptCalls).toBe(0);
    expect(await listing(d)).toEqual(['in', 'in.ek']);
  });

  describe('a full disk (RLIMIT_FSIZE in a child process: writes past the limit fail with EFBIG)', () => {
    /**
     * The child: a keyring from the state file, one encryptFile or decryptFile, then what it threw and
     * what the folder holds. Node ignores SIGXFSZ itself (the write then fails with EFBIG); the shell's
     * `trap '' XFSZ` makes sure of it whatever Node does.
     */
    const CHILD = `
      import { readFileSync, readdirSync } from 'node:fs';
      import path from 'node:path';
      const { LocalKeyring } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/index.ts')).href)});
      const { encryptFile, decryptFile } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/node.ts')).href)});
      const [op, work, stateFile] = process.argv.slice(2);
      const state = JSON.parse(readFileSync(stateFile, 'utf8'));
      for (const k of state.keys) for (const v of k.versions) v.material = Uint8Array.from(Buffer.from(v.material, 'hex'));
      const provider = LocalKeyring.fromState(state);
      let result;
      try {
        if (op === 'encrypt') await encryptFile(path.join(work, 'in.bin'), path.join(work, 'out.ek'), { provider, keyId: state.keys[0].keyId });
        else await decryptFile(path.join(work, 'in.ek'), path.join(work, 'out.bin'), { provider });
        result = { ok: true };
      } catch (e) {
        result = { ok: false, code: e.code, name: e.name };
      }
      process.stdout.write(JSON.stringify({ ...result, files: readdirSync(work).sort() }));
    `;

    async function runChild(op: 'encrypt' | 'decrypt', work: string, limitKiB: number | 'unlimited'): Promise<{ ok: boolean; code?: string; files: string[]; exit: number | null; signal: string | null }> {
      const aux = await folder('child');
      const script = path.join(aux, 'child.mts');
      await fs.writeFile(script, CHILD);
      const state = keyring.exportState();
      const json = JSON.stringify({ ...state, keys: state.keys.map((k) => ({ ...k, versions: k.versions.map((v) => ({ ...v, material: Buffer.from(v.material).toString('hex') })) })) });
      const stateFile = path.join(aux, 'state.json');
      await fs.writeFile(stateFile, json, { mode: 0o600 });
      const child = spawn(
        'bash',
        ['-c', `trap '' XFSZ; ulimit -f ${limitKiB}; exec "$@"`, 'bash', process.execPath, '--import', 'tsx', '--conditions=envelope-kit-source', script, op, work, stateFile],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const [exit, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
      if (!out) throw new Error(`the child printed nothing (exit ${exit}, signal ${signal}): ${err}`);
      return { ...JSON.parse(out), exit, signal };
    }

    it('encryptFile: fails with EFBIG, no output and no temporary file (and succeeds without the limit)', async () => {
      const work = await folder('fsize-enc');
      await fs.writeFile(path.join(work, 'in.bin'), patterned(4 << 20, 3));
      const limited = await runChild('encrypt', work, 1024);
      expect(limited).toMatchObject({ ok: false, code: 'EFBIG', files: ['in.bin'], exit: 0, signal: null });
      expect(await listing(work)).toEqual(['in.bin']);
      const free = await runChild('encrypt', work, 'unlimited');
      expect(free).toMatchObject({ ok: true, files: ['in.bin', 'out.ek'] });
      expect(inspect(await read(path.join(work, 'out.ek'))).plaintextLength).toBe(4 << 20);
    });

    it('decryptFile: fails with EFBIG, no output and no temporary file (and succeeds without the limit)', async () => {
      const work = await folder('fsize-dec');
      const pt = patterned(4 << 20, 4);
      await fs.writeFile(path.join(work, 'in.bin'), pt);
      await encryptFile(path.join(work, 'in.bin'), path.join(work, 'in.ek'), { provider: keyring, keyId });
      await fs.rm(path.join(work, 'in.bin'));
      const limited = await runChild('decrypt', work, 1024);
      expect(limited).toMatchObject({ ok: false, code: 'EFBIG', files: ['in.ek'], exit: 0, signal: null });
      expect(await listing(work)).toEqual(['in.ek']);
      const free = await runChild('decrypt', work, 'unlimited');
      expect(free).toMatchObject({ ok: true, files: ['in.ek', 'out.bin'] });
      expectSameBytes(await read(path.join(work, 'out.bin')), pt);
    });
  });

  it('decryptFile also reads single-pass envelopes (from encrypt), with their checks', async () => {
    const d = await folder('single');
    const pt = patterned(300_000, 5);
    await fs.writeFile(path.join(d, 'single.ek'), await encrypt(pt, { provider, keyId, encryptionContext: { a: 'b' }, recordId: 'r', recordVersion: 1 }));
    const r = await decryptFile(path.join(d, 'single.ek'), path.join(d, 'out'), { provider, encryptionContext: { a: 'b' }, recordId: 'r', recordVersion: 1 });
    expect(r).toEqual({ keyId, encryptionContext: { a: 'b' }, plaintextLength: pt.length });
    expectSameBytes(await read(path.join(d, 'out')), pt);
    await rejectsWith(decryptFile(path.join(d, 'single.ek'), path.join(d, 'out2'), { provider, encryptionContext: { a: 'c' } }), DF);
    await rejectsWith(decryptFile(path.join(d, 'single.ek'), path.join(d, 'out2'), { provider }), DF);
    const bad = await read(path.join(d, 'single.ek'));
    bad[bad.length - 1]! ^= 1;
    await fs.writeFile(path.join(d, 'bad.ek'), bad);
    await rejectsWith(decryptFile(path.join(d, 'bad.ek'), path.join(d, 'out2'), { provider, encryptionContext: { a: 'b' }, recordId: 'r', recordVersion: 1 }), DF);
    expect(await listing(d)).toEqual(['bad.ek', 'out', 'single.ek']);
  });

  it('bad arguments are refused before any file is opened', async () => {
    const d = await folder('args');
    await fs.writeFile(path.join(d, 'in'), 'x');
    for (const [input, output] of [
      ['', 'o'],
      [path.join(d, 'in'), ''],
      [42, 'o'],
      [path.join(d, 'in'), null],
    ]) {
      await rejectsWith(encryptFile(input as string, output as string, { provider, keyId }), IP);
      await rejectsWith(decryptFile(input as string, output as string, { provider }), IP);
    }
    for (const options of [{ segmentSize: 4095 }, { parallel: 0 }, { overwrite: 'yes' }, { signal: {} }, { onProgress: 1 }, { onTempFile: 'x' }]) {
      await rejectsWith(encryptFile(path.join(d, 'in'), path.join(d, 'o'), { provider, keyId, ...(options as object) }), IP);
    }
    expect(await listing(d)).toEqual(['in']);
  });
});

describe('openFileSource and decryptRange', () => {
  it('reads ranges of an envelope file, one read for the segments of each range', async () => {
    const d = await folder('source');
    const S = 4096;
    const pt = patterned(3 * (1 << 20) + 77, 6);
    await fs.writeFile(path.join(d, 'in'), pt);
    await encryptFile(path.join(d, 'in'), path.join(d, 'in.ek'), { provider, keyId, segmentSize: S });
    const source = await openFileSource(path.join(d, 'in.ek'));
    try {
      expect(source.size).toBe((await fs.stat(path.join(d, 'in.ek'))).size);
      const reads: [number, number][] = [];
      const counted = { size: source.size, read: (o: number, n: number) => (reads.push([o, n]), source.read(o, n)) };
      for (const [offset, length] of [
        [0, 1],
        [S - 1, 2],
        [1_000_000, 65536],
        [pt.length - 100, 100],
        [pt.length, 0],
        [0, pt.length],
      ] as const) {
        reads.length = 0;
        const r = await decryptRange(counted, { provider, offset, length });
        expectSameBytes(r.plaintext, pt.subarray(offset, offset + length));
        expect(r.plaintextLength).toBe(pt.length);
        // One read of the segments (an empty range still opens one, SPEC.md §14.4).
        expect(reads.filter(([o]) => o !== 0).length).toBe(1);
      }
      await rejectsWith(decryptRange(source, { provider, offset: pt.length, length: 1 }), IP);
    } finally {
      await source.close();
    }
    await expect(openFileSource(path.join(d, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('createEncryptStream and createDecryptStream in stream.pipeline', () => {
  it('round-trip file to file, and a tampered envelope makes the pipeline fail', async () => {
    const d = await folder('pipeline');
    const pt = patterned(2 * (1 << 20) + 3, 7);
    await fs.writeFile(path.join(d, 'in'), pt);
    await pipeline(createReadStream(path.join(d, 'in'), { highWaterMark: 10_000 }), createEncryptStream({ provider, keyId, segmentSize: 8192 }), createWriteStream(path.join(d, 'in.ek')));
    const env = await read(path.join(d, 'in.ek'));
    expect(inspect(env)).toMatchObject({ segmentSize: 8192, plaintextLength: pt.length });
    await pipeline(createReadStream(path.join(d, 'in.ek')), createDecryptStream({ provider, parallel: 4 }), createWriteStream(path.join(d, 'out')));
    expectSameBytes(await read(path.join(d, 'out')), pt);
    // chunks from an iterable of Buffers, of uneven sizes
    const parts = [pt.subarray(0, 1), pt.subarray(1, 70_000), pt.subarray(70_000)].map((p) => Buffer.from(p));
    const got: Buffer[] = [];
    await pipeline(Readable.from(parts), createEncryptStream({ provider, keyId }), createDecryptStream({ provider }), async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) got.push(c);
    });
    expectSameBytes(new Uint8Array(Buffer.concat(got)), pt);
    // tampered
    env[env.length - 20]! ^= 1;
    await fs.writeFile(path.join(d, 'bad.ek'), env);
    await rejectsWith(pipeline(createReadStream(path.join(d, 'bad.ek')), createDecryptStream({ provider }), createWriteStream(path.join(d, 'out2'))), DF);
    expect(() => createEncryptStream({ provider, keyId, segmentSize: 1 })).toThrow(InvalidParameterError);
    expect(() => createDecryptStream({ provider, parallel: 100 })).toThrow(InvalidParameterError);
  });
});

describe('a 1 GiB envelope', () => {
  it(
    'encrypted through encryptStream and kept only in part: decryptRange of the last 100 bytes reads the header and the last two segments',
    async () => {
      const S = 65536;
      const sealed = S + TAG;
      // 2^30 bytes and 50 more: the last 100 bytes straddle the last two segments
      const total = 2 ** 30 + 50;
      const n = Math.ceil(total / S);
      // Segment i is a fixed random block with u32be(i) in its first and last 4 bytes.
      const base = crypto.getRandomValues(new Uint8Array(S));
      const segmentBytes = (i: number): Uint8Array => {
        const s = base.slice();
        const v = new DataView(s.buffer);
        v.setUint32(0, i);
        v.setUint32(S - 4, i);
        return s;
      };
      const block = new Uint8Array(16 * S);
      for (let k = 0; k < 16; k++) block.set(base, k * S);
      const view = new DataView(block.buffer);

      const ts = encryptStream({ provider: keyring, keyId, segmentSize: S });
      // The consumer keeps the first 4096 bytes (the header and the start of segment 0) and a window
      // of at least the last two sealed segments; everything else is counted and dropped.
      const consumer = (async () => {
        const reader = ts.readable.getReader();
        let count = 0;
        const prefix = new Uint8Array(4096);
        const tail: Uint8Array[] = [];
        let tailBytes = 0;
        let headerLength = -1;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (headerLength < 0) headerLength = value.length;
          if (count < prefix.length) prefix.set(value.subarray(0, prefix.length - count), count);
          count += value.length;
          tail.push(value);
          tailBytes += value.length;
          while (tail.length > 1 && tailBytes - tail[0]!.length >= 2 * sealed) tailBytes -= tail.shift()!.length;
        }
        return { count, prefix, tail: concatAll(tail), headerLength };
      })();
      const writer = ts.writable.getWriter();
      const fullBlocks = Math.floor(total / block.length);
      for (let b = 0; b < fullBlocks; b++) {
        for (let k = 0; k < 16; k++) {
          view.setUint32(k * S, b * 16 + k);
          view.setUint32(k * S + S - 4, b * 16 + k);
        }
        // the write resolves once the chunk was consumed, so the block can be reused
        await writer.write(block);
      }
      await writer.write(segmentBytes(n - 1).subarray(0, total - (n - 1) * S));
      await writer.close();
      const { count, prefix, tail, headerLength } = await consumer;
      expect(count).toBe(headerLength + total + n * TAG);
      const tailStart = count - tail.length;
      const lastTwo = headerLength + (n - 2) * sealed;
      expect(tailStart).toBeLessThanOrEqual(lastTwo);

      const reads: [number, number][] = [];
      const source = {
        size: count,
        read(offset: number, length: number): Uint8Array {
          reads.push([offset, length]);
          if (offset === 0 && length <= prefix.length) return prefix.slice(0, length);
          if (offset >= lastTwo && offset + length <= count) return tail.slice(offset - tailStart, offset - tailStart + length);
          throw new Error(`a read outside the kept bytes: ${length} bytes at ${offset}`);
        },
      };
      const r = await decryptRange(source, { provider: keyring, offset: total - 100, length: 100 });
      const expected = new Uint8Array(Buffer.concat([segmentBytes(n - 2).subarray(S - 50), segmentBytes(n - 1).subarray(0, 50)]));
      expectSameBytes(r.plaintext, expected);
      expect(r).toMatchObject({ plaintextLength: total, segmentsRead: 2, keyId });
      // the header (as a prefix of at most 4096 bytes), then one read of the last two segments
      expect(reads).toEqual([
        [0, 4096],
        [lastTwo, count - lastTwo],
      ]);
      expect(count - lastTwo).toBeLessThanOrEqual(2 * sealed);
      // the same source refuses any other read: a range in the middle cannot be served
      await expect(decryptRange(source, { provider: keyring, offset: 1 << 29, length: 1 })).rejects.toMatchObject({ code: IP });
    },
    600_000,
  );
});

function concatAll(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

describe('the Web stream and the file writer agree', () => {
  it('an envelope from encryptStream is read by decryptFile, and one from encryptFile by decryptStream', async () => {
    const d = await folder('agree');
    const pt = patterned(150_000, 8);
    const env = await collect(streamOf(pt, [33_333]).pipeThrough(encryptStream({ provider, keyId, segmentSize: 4096 })));
    await fs.writeFile(path.join(d, 'web.ek'), env);
    await decryptFile(path.join(d, 'web.ek'), path.join(d, 'web.out'), { provider });
    expectSameBytes(await read(path.join(d, 'web.out')), pt);
    await fs.writeFile(path.join(d, 'in'), pt);
    await encryptFile(path.join(d, 'in'), path.join(d, 'file.ek'), { provider, keyId, segmentSize: 4096 });
    expectSameBytes(await collect(streamOf(await read(path.join(d, 'file.ek')), [1000]).pipeThrough(decryptStream({ provider }))), pt);
  });
});
