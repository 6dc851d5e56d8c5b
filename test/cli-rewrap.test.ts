/**
 * `envelope-kit rewrap` on the built `dist/cli.js`: --add, --remove, --replace and --rotate on a
 * single-pass and a framed file, in place; the body byte for byte as it was and the file's mode
 * kept; one result line per file, a failing file reported and the others still done; a wrong
 * passphrase; a file that is not an envelope; --dry-run; stdin to stdout; a text envelope; and
 * what SIGKILL and a full disk leave behind (the original, and no temporary file).
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalKeyring, encrypt, encryptText, inspect } from '../src/index.js';
import { loadKeyring, saveKeyring } from '../src/node.js';
import { cli, finish, pseudoRandom, sameBytes, start, tempDir, tempFiles, until } from './cli-helpers.js';

const PASSPHRASE = 'rewrap passphrase of the tests';
let dir: string;
let removeDir: () => Promise<void>;
let keyringFile: string;
let sealedFile: string;
let keyA: string;
let keyB: string;
const KR = () => ['--keyring', keyringFile, '--unprotected-keyring'];
const plaintext = pseudoRandom(600_000, 5);
let n = 0;

async function keyring(): Promise<LocalKeyring> {
  return loadKeyring(keyringFile, { protection: 'none' });
}

beforeAll(async () => {
  ({ dir, remove: removeDir } = await tempDir('ek-cli-rewrap-'));
  keyringFile = path.join(dir, 'k.keyring.json');
  const a = await cli(['keys', 'init', ...KR(), '--alias', 'alias/a', '-q']);
  expect(a.code, a.stderr).toBe(0);
  keyA = a.stdout.toString().trim();
  const b = await cli(['keys', 'create', ...KR(), '--alias', 'alias/b', '-q']);
  expect(b.code, b.stderr).toBe(0);
  keyB = b.stdout.toString().trim();
  // The same keys behind a passphrase.
  sealedFile = path.join(dir, 'sealed.keyring.json');
  const kr = await keyring();
  await saveKeyring(sealedFile, kr, { passphrase: PASSPHRASE, scrypt: { N: 2 ** 14, r: 8, p: 1 } });
  kr.destroy();
  await fs.writeFile(path.join(dir, 'plain.bin'), plaintext);
});
afterAll(async () => {
  await removeDir();
});

/** A folder of its own with one envelope file (under alias/a) of the given layout and mode. */
async function envelopeFile(layout: 'single' | 'framed', mode = 0o640): Promise<{ d: string; file: string; bytes: Buffer }> {
  const d = path.join(dir, `t${n++}`);
  await fs.mkdir(d);
  const file = path.join(d, 'data.ek');
  if (layout === 'framed') {
    const e = await cli(['encrypt', path.join(dir, 'plain.bin'), '-o', file, ...KR(), '--key-id', 'alias/a', '--segment-size', '4096']);
    expect(e.code, e.stderr).toBe(0);
  } else {
    const kr = await keyring();
    await fs.writeFile(file, await encrypt(plaintext, { provider: kr, keyId: 'alias/a' }));
    kr.destroy();
  }
  await fs.chmod(file, mode);
  return { d, file, bytes: await fs.readFile(file) };
}

const body = (b: Uint8Array) => b.subarray(inspect(b).headerLength);
/** Reads a local blob's key id and version (no key needed). */
const describer = new LocalKeyring();
const keysIn = (b: Uint8Array) => inspect(b, { providers: [describer] }).encryptedDataKeys.map((k) => `${k.keyId}#${k.keyVersion ?? '?'}`);

/** Whether `decrypt` with only `keyId` accepted opens the file to the plaintext. */
async function opensWith(file: string, keyId: string): Promise<boolean> {
  const r = await cli(['decrypt', file, ...KR(), '--key-ids', keyId]);
  return r.code === 0 && sameBytes(r.stdout, plaintext);
}

describe.each(['single', 'framed'] as const)('%s layout, in place', (layout) => {
  it('--add then --remove: the body byte for byte as it was, the mode kept, one line per file', async () => {
    const { d, file, bytes } = await envelopeFile(layout, 0o640);
    const r = await cli(['rewrap', file, ...KR(), '--add', 'keyring:alias/b']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toMatch(new RegExp(`^${file.replace(/[/.]/g, '\\$&')}: rewrapped \\((single pass|framed)\\): keys local:${keyA}#1 -> local:${keyA}#1, local:${keyB}#1; header \\d+ -> \\d+ bytes, body \\d+ bytes copied unchanged\\n$`));
    const added = await fs.readFile(file);
    expect(keysIn(added)).toEqual([`${keyA}#1`, `${keyB}#1`]);
    expect(sameBytes(body(added), body(bytes))).toBe(true);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o640);
    expect(await opensWith(file, keyB)).toBe(true);

    const rm = await cli(['rewrap', file, ...KR(), '--remove', 'alias/a']);
    expect(rm.code, rm.stderr).toBe(0);
    const removed = await fs.readFile(file);
    expect(keysIn(removed)).toEqual([`${keyB}#1`]);
    expect(sameBytes(body(removed), body(bytes))).toBe(true);
    expect(await opensWith(file, keyA)).toBe(false);
    expect(await opensWith(file, keyB)).toBe(true);
    expect(await fs.readdir(d)).toEqual(['data.ek']);
  });

  it('--replace OLD=NEW: the keyring re-encrypts the data key; the header keeps its length', async () => {
    const { d, file, bytes } = await envelopeFile(layout, 0o604);
    const r = await cli(['rewrap', file, ...KR(), '--replace', `alias/a=${keyB}`]);
    expect(r.code, r.stderr).toBe(0);
    const after = await fs.readFile(file);
    expect(after.length).toBe(bytes.length);
    expect(keysIn(after)).toEqual([`${keyB}#1`]);
    expect(sameBytes(body(after), body(bytes))).toBe(true);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o604);
    expect(await opensWith(file, keyB)).toBe(true);
    expect(await fs.readdir(d)).toEqual(['data.ek']);
  });
});

describe('--rotate', () => {
  it('after keys rotate: older versions move to the newest, then nothing is left to do', async () => {
    const own = path.join(dir, 'rotate');
    await fs.mkdir(own);
    const kf = path.join(own, 'k.json');
    const KRR = ['--keyring', kf, '--unprotected-keyring'];
    const id = (await cli(['keys', 'init', ...KRR, '--alias', 'alias/r', '-q'])).stdout.toString().trim();
    const files = ['one.ek', 'two.ek'].map((f) => path.join(own, f));
    for (const f of files) expect((await cli(['encrypt', path.join(dir, 'plain.bin'), '-o', f, ...KRR, '--key-id', 'alias/r'])).code).toBe(0);
    const before = await Promise.all(files.map((f) => fs.readFile(f)));
    expect((await cli(['keys', 'rotate', ...KRR, 'alias/r'])).code).toBe(0);
    const r = await cli(['rewrap', ...files, ...KRR, '--rotate', 'alias/r']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.toString().trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toContain(`keys local:${id}#1 -> local:${id}#2`);
    for (let i = 0; i < files.length; i++) {
      const after = await fs.readFile(files[i]!);
      expect(keysIn(after)).toEqual([`${id}#2`]);
      expect(sameBytes(body(after), body(before[i]!))).toBe(true);
      const d = await cli(['decrypt', files[i]!, ...KRR]);
      expect(d.code, d.stderr).toBe(0);
      expect(sameBytes(d.stdout, plaintext)).toBe(true);
    }
    const st = await fs.stat(files[0]!);
    const again = await cli(['rewrap', files[0]!, ...KRR, '--rotate', 'alias/r']);
    expect(again.code).toBe(0);
    expect(again.stdout.toString()).toBe(`${files[0]}: unchanged (no rule applies): keys local:${id}#2\n`);
    expect((await fs.stat(files[0]!)).mtimeMs).toBe(st.mtimeMs);
  });
});

describe('failures', () => {
  it('a file that is not an envelope: reported, the other files still done, exit 3', async () => {
    const { d, file, bytes } = await envelopeFile('framed');
    const junk = path.join(d, 'junk.ek');
    const junkBytes = pseudoRandom(5000, 2);
    await fs.writeFile(junk, junkBytes);
    const r = await cli(['rewrap', junk, file, path.join(d, 'missing.ek'), ...KR(), '--add', 'alias/b']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`envelope-kit: ${junk}: not an envelope`);
    expect(r.stderr).toContain('(ERR_MALFORMED_ENVELOPE)');
    expect(r.stderr).toContain(`envelope-kit: ${path.join(d, 'missing.ek')}: cannot rewrap`);
    expect(r.stderr).toContain('(ENOENT)');
    expect(r.stdout.toString()).toContain(`${file}: rewrapped`);
    expect(sameBytes(await fs.readFile(junk), junkBytes)).toBe(true);
    expect(sameBytes(body(await fs.readFile(file)), body(bytes))).toBe(true);
    expect((await fs.readdir(d)).sort()).toEqual(['data.ek', 'junk.ek']);
  });

  it('a wrong passphrase: exit 7, nothing touched; the right one works', async () => {
    const { d, file, bytes } = await envelopeFile('single');
    const bad = await cli(['rewrap', file, '--keyring', sealedFile, '--passphrase-env', 'EK_PW', '--add', 'alias/b'], { env: { EK_PW: 'not it' } });
    expect(bad.code).toBe(7);
    expect(bad.stderr).not.toContain('not it');
    expect(sameBytes(await fs.readFile(file), bytes)).toBe(true);
    const ok = await cli(['rewrap', file, '--keyring', sealedFile, '--passphrase-env', 'EK_PW', '--add', 'alias/b'], { env: { EK_PW: PASSPHRASE } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(keysIn(await fs.readFile(file))).toHaveLength(2);
    expect(await fs.readdir(d)).toEqual(['data.ek']);
  });

  it('a wrong record id, an unknown key, removing the last key: the file untouched', async () => {
    const { d, file, bytes } = await envelopeFile('framed');
    const rid = await cli(['rewrap', file, ...KR(), '--record-id', 'other', '--add', 'alias/b']);
    expect(rid.code).toBe(3);
    const unknown = await cli(['rewrap', file, ...KR(), '--add', 'alias/none']);
    expect(unknown.code).toBe(4);
    const last = await cli(['rewrap', file, ...KR(), '--remove', 'alias/a']);
    expect(last.code).toBe(2);
    expect(sameBytes(await fs.readFile(file), bytes)).toBe(true);
    expect(await fs.readdir(d)).toEqual(['data.ek']);
  });

  it('--remove PROVIDER:KEY of a provider that is not given: its data key is dropped', async () => {
    const d = path.join(dir, 'other-provider');
    await fs.mkdir(d);
    const file = path.join(d, 'x.ek');
    const kr = await keyring();
    const other = new LocalKeyring();
    const otherKey = other.createKey().keyId;
    // Another keyring under the provider id of Alibaba Cloud KMS: the envelope names a provider the command line does not give.
    const fake = {
      providerId: 'alibaba-kms',
      generateDataKey: (r: Parameters<LocalKeyring['generateDataKey']>[0]) => other.generateDataKey(r),
      decrypt: (r: Parameters<LocalKeyring['decrypt']>[0]) => other.decrypt(r),
      encrypt: (r: Parameters<LocalKeyring['encrypt']>[0]) => other.encrypt(r),
    };
    await fs.writeFile(file, await encrypt(plaintext, { recipients: [{ provider: kr, keyId: 'alias/a' }, { provider: fake, keyId: otherKey }] }));
    kr.destroy();
    const bytes = await fs.readFile(file);
    expect(inspect(bytes).encryptedDataKeys.map((k) => k.providerId)).toEqual(['local', 'alibaba-kms']);
    const r = await cli(['rewrap', file, ...KR(), '--remove', `alibaba:${otherKey}`]);
    expect(r.code, r.stderr).toBe(0);
    const after = await fs.readFile(file);
    expect(inspect(after).encryptedDataKeys.map((k) => k.providerId)).toEqual(['local']);
    expect(sameBytes(body(after), body(bytes))).toBe(true);
    expect(await opensWith(file, keyA)).toBe(true);
  });

  it('bad command lines: exit 2', async () => {
    const { file } = await envelopeFile('single');
    for (const args of [
      ['rewrap', file, ...KR()],
      ['rewrap', ...KR(), '--add', 'alias/b'],
      ['rewrap', '-', file, ...KR(), '--add', 'alias/b'],
      ['rewrap', file, ...KR(), '--replace', 'alias/a'],
      ['rewrap', file, ...KR(), '--add', 'alibaba:key'],
      ['rewrap', file, '--add', 'alias/b'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^envelope-kit: .* \(ERR_INVALID_PARAMETER\)\n$/);
    }
  });

  it('a full disk (file size limit): exit 6, the original as it was, no temporary file', async () => {
    for (const rule of [['--add', 'alias/b'], ['--replace', `alias/a=${keyB}`]]) {
      const { d, file, bytes } = await envelopeFile('framed');
      const r = await cli(['rewrap', file, ...KR(), ...rule], { shellPrefix: 'ulimit -f 200;' });
      expect(r.code, r.stderr).toBe(6);
      expect(r.stderr).toContain('(EFBIG)');
      expect(sameBytes(await fs.readFile(file), bytes)).toBe(true);
      expect(await fs.readdir(d)).toEqual(['data.ek']);
    }
  });

  it('SIGKILL during the copy of a large body: the guardian removes the temporary file, the original is intact', async () => {
    const d = path.join(dir, 'kill');
    await fs.mkdir(d);
    // A real header, then a large sparse body: a re-wrap never reads the body, it copies it.
    const kr = await keyring();
    const small = await encrypt(new Uint8Array(16), { provider: kr, keyId: 'alias/a' });
    kr.destroy();
    const header = small.subarray(0, inspect(small).headerLength);
    const file = path.join(d, 'big.ek');
    await fs.writeFile(file, header);
    await fs.truncate(file, 512 * 1024 * 1024);
    const hash = async () => {
      const h = createHash('sha256');
      for await (const c of createReadStream(file)) h.update(c as Buffer);
      return h.digest('hex');
    };
    const before = await hash();
    const child = start(['rewrap', file, ...KR(), '--add', 'alias/b']);
    const done = finish(child, 60_000);
    child.stdin!.end();
    // Killed once the copy is under way (the guardian is told of the file right after it is created).
    await until(
      async () => {
        const t = await tempFiles(d);
        return t.length === 1 && ((await fs.stat(path.join(d, t[0]!)).catch(() => undefined))?.size ?? 0) > 8 * 1024 * 1024;
      },
      20_000,
      'the copy to be under way',
    );
    child.kill('SIGKILL');
    const r = await done;
    expect(r.signal).toBe('SIGKILL');
    await until(async () => (await tempFiles(d)).length === 0, 10_000, 'the guardian to remove the temporary file');
    expect(await fs.readdir(d)).toEqual(['big.ek']);
    expect(await hash()).toBe(before);
  });
});

describe('--dry-run, stdin, text form, help', () => {
  it('--dry-run: says what would change, writes nothing', async () => {
    const { d, file, bytes } = await envelopeFile('framed');
    const st = await fs.stat(file);
    const r = await cli(['rewrap', file, ...KR(), '--add', 'alias/b', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toContain(`${file}: would rewrap (framed): keys local:${keyA}#1 -> local:${keyA}#1, local:${keyB}#1;`);
    expect(r.stdout.toString()).toContain('(dry run: nothing written)');
    expect(sameBytes(await fs.readFile(file), bytes)).toBe(true);
    expect((await fs.stat(file)).mtimeMs).toBe(st.mtimeMs);
    expect(await fs.readdir(d)).toEqual(['data.ek']);
  });

  it('- reads stdin and writes the re-wrapped envelope to stdout; the result line goes to stderr', async () => {
    for (const layout of ['single', 'framed'] as const) {
      const { bytes } = await envelopeFile(layout);
      const r = await cli(['rewrap', '-', ...KR(), '--add', 'alias/b'], { input: bytes });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^stdin: rewrapped/);
      expect(keysIn(r.stdout)).toEqual([`${keyA}#1`, `${keyB}#1`]);
      expect(sameBytes(body(r.stdout), body(bytes))).toBe(true);
    }
  });

  it('- with input that is not an envelope: exit 3, nothing on stdout', async () => {
    const r = await cli(['rewrap', '-', ...KR(), '--add', 'alias/b'], { input: pseudoRandom(3000, 9) });
    expect(r.code).toBe(3);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toContain('envelope-kit: stdin: ');
  });

  it('--record-id: an envelope bound to a record is re-wrapped with it, and still needs it', async () => {
    const d = path.join(dir, 'record');
    await fs.mkdir(d);
    const file = path.join(d, 'r.ek');
    const e = await cli(['encrypt', path.join(dir, 'plain.bin'), '-o', file, ...KR(), '--key-id', 'alias/a', '--record-id', 'row-7', '--record-version', '3']);
    expect(e.code, e.stderr).toBe(0);
    const without = await cli(['rewrap', file, ...KR(), '--add', 'alias/b']);
    expect(without.code).toBe(3);
    const r = await cli(['rewrap', file, ...KR(), '--add', 'alias/b', '--record-id', 'row-7', '--record-version', '3']);
    expect(r.code, r.stderr).toBe(0);
    const out = await cli(['decrypt', file, ...KR(), '--key-ids', keyB, '--record-id', 'row-7', '--record-version', '3']);
    expect(out.code, out.stderr).toBe(0);
    expect(sameBytes(out.stdout, plaintext)).toBe(true);
    expect((await cli(['decrypt', file, ...KR(), '--key-ids', keyB])).code).toBe(3);
  });

  it('a text envelope file is re-wrapped as text', async () => {
    const d = path.join(dir, 'text');
    await fs.mkdir(d);
    const file = path.join(d, 'x.txt');
    const kr = await keyring();
    await fs.writeFile(file, (await encryptText(plaintext.subarray(0, 1000), { provider: kr, keyId: 'alias/a' })) + '\n');
    kr.destroy();
    const r = await cli(['rewrap', file, ...KR(), '--replace', `alias/a=alias/b`]);
    expect(r.code, r.stderr).toBe(0);
    const text = await fs.readFile(file, 'utf8');
    expect(text).toMatch(/^ek1\.[A-Za-z0-9_-]+\n$/);
    const out = await cli(['decrypt', file, ...KR(), '--key-ids', keyB]);
    expect(out.code, out.stderr).toBe(0);
    expect(sameBytes(out.stdout, plaintext.subarray(0, 1000))).toBe(true);
  });

  it('--help and help rewrap', async () => {
    const a = await cli(['rewrap', '--help']);
    expect(a.code).toBe(0);
    expect(a.stdout.toString()).toContain('usage: envelope-kit rewrap FILE...');
    expect((await cli(['help', 'rewrap'])).stdout.toString()).toBe(a.stdout.toString());
    expect((await cli(['--help'])).stdout.toString()).toContain('rewrap FILE...|-');
  });
});
