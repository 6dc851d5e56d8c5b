/**
 * The `envelope-kit` command line, run as a user runs it: the built
 * `dist/cli.js` in a child process, with files, pipes, a terminal (a pty) and
 * the KMS emulator. Exit statuses, messages, keys, inspect, providers.
 */
import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalKeyring, encrypt, encryptText } from '../src/index.js';
import { nodeAesGcm } from '../src/core/aead/node.js';
import { LAYOUT_FRAMED, keyIdRanges, parseHeader } from '../src/core/format.js';
import { saveKeyring } from '../src/providers/local/file.node.js';
import { startKmsEmulator, type KmsEmulator } from '../src/providers/alibaba/emulator/index.js';
import { CLI, cli, hasProgram, pseudoRandom, sameBytes, tempDir, tempFiles } from './cli-helpers.js';

let dir: string;
let removeDir: () => Promise<void>;
/** An unprotected keyring file with one key, alias/app. */
let plainKeyring: string;
let appKeyId: string;
/** A passphrase-protected keyring (the cheapest scrypt the format allows), with alias/app. */
let sealedKeyring: string;
const PASSPHRASE = 'correct horse battery staple';
const KR = () => ['--keyring', plainKeyring, '--unprotected-keyring'];
const at = (name: string) => path.join(dir, name);

beforeAll(async () => {
  ({ dir, remove: removeDir } = await tempDir());
  plainKeyring = at('plain.keyring.json');
  const init = await cli(['keys', 'init', '--keyring', plainKeyring, '--unprotected-keyring', '--alias', 'alias/app']);
  expect(init.code, init.stderr).toBe(0);
  appKeyId = init.stdout.toString().trim();
  expect(appKeyId).toMatch(/^[a-z2-9]{6}$/);
  sealedKeyring = at('sealed.keyring.json');
  const kr = new LocalKeyring({ aead: nodeAesGcm });
  kr.createKey({ alias: 'alias/app' });
  await saveKeyring(sealedKeyring, kr, { passphrase: PASSPHRASE, scrypt: { N: 2 ** 14, r: 8, p: 1 } });
  kr.destroy();
});
afterAll(async () => {
  await removeDir();
});

describe('help and usage', () => {
  it('--help lists the commands and every exit status', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    const text = r.stdout.toString();
    for (const c of ['encrypt', 'decrypt', 'inspect', 'keys']) expect(text).toContain(c);
    for (const status of ['0', '1', '2', '3', '4', '5', '6', '7', '129', '130', '143']) expect(text).toMatch(new RegExp(`^  ${status}\\b|\\b${status},|\\b${status}$`, 'm'));
    for (const code of ['ERR_INVALID_PARAMETER', 'ERR_DECRYPTION_FAILED', 'ERR_KEY_NOT_FOUND', 'ERR_PROVIDER', 'ERR_KEYRING_FILE', 'ENOSPC']) expect(text).toContain(code);
  });

  it('each command has its own --help; no command at all is a usage error on stderr', async () => {
    for (const c of ['encrypt', 'decrypt', 'inspect', 'keys']) {
      const r = await cli([c, '--help']);
      expect(r.code, c).toBe(0);
      expect(r.stdout.toString()).toContain(`usage: envelope-kit ${c}`);
    }
    expect((await cli(['help', 'decrypt'])).stdout.toString()).toContain('To stdout, only');
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stdout.length).toBe(0);
    expect(none.stderr).toContain('usage: envelope-kit');
  });

  it('an unknown command or option is exit status 2, one line, no stack trace', async () => {
    const a = await cli(['encrpyt']);
    expect(a.code).toBe(2);
    expect(a.stderr).toBe('envelope-kit: unknown command encrpyt (see envelope-kit --help) (ERR_INVALID_PARAMETER)\n');
    const b = await cli(['encrypt', 'x', '--colour=red']);
    expect(b.code).toBe(2);
    expect(b.stderr).toBe('envelope-kit: unknown option --colour (ERR_INVALID_PARAMETER)\n');
    expect(b.stderr).not.toContain('red');
    expect(b.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('a passphrase is never an argument', () => {
  it.each([
    ['--passphrase', 'hunter2-secret'],
    ['--passphrase=hunter2-secret'],
    ['--password', 'hunter2-secret'],
  ])('%s is refused with exit status 2 and never echoed', async (...extra) => {
    const r = await cli(['decrypt', at('none.ek'), '--keyring', sealedKeyring, ...extra]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('a passphrase is never taken as a command-line argument');
    expect(r.stderr).not.toContain('hunter2');
  });

  it('a stray argument (a passphrase typed in the wrong place) is refused and not echoed', async () => {
    const r = await cli(['decrypt', at('none.ek'), 'hunter2-secret', '--keyring', sealedKeyring]);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toContain('hunter2');
  });

  it('with no terminal and no --passphrase-env, a protected keyring is a usage error (no read from stdin)', async () => {
    const r = await cli(['keys', 'list', '--keyring', sealedKeyring], { input: PASSPHRASE + '\n' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--passphrase-env NAME');
  });

  it('--passphrase-env reads the variable; an unset one is refused, a wrong passphrase is exit status 7', async () => {
    const ok = await cli(['keys', 'list', '--keyring', sealedKeyring, '--passphrase-env', 'EK_PW', '--json'], { env: { EK_PW: PASSPHRASE } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout.toString())[0].aliases).toEqual(['alias/app']);
    const unset = await cli(['keys', 'list', '--keyring', sealedKeyring, '--passphrase-env', 'EK_PW']);
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain('EK_PW is not set');
    const wrong = await cli(['keys', 'list', '--keyring', sealedKeyring, '--passphrase-env', 'EK_PW'], { env: { EK_PW: 'tr0ub4dor-X' } });
    expect(wrong.code).toBe(7);
    expect(wrong.stderr).toMatch(/\(ERR_KEYRING_FILE\)\n$/);
    expect(wrong.stderr).not.toContain('tr0ub4dor');
  });

  it('an unprotected keyring is used only with --unprotected-keyring', async () => {
    const r = await cli(['keys', 'list', '--keyring', plainKeyring]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--unprotected-keyring');
    expect((await cli(['keys', 'list', ...KR()])).code).toBe(0);
  });

  it.runIf(hasProgram('python3'))('the prompt on a terminal reads the passphrase with echo off', async () => {
    const input = at('prompt.txt');
    await fs.writeFile(input, 'prompted');
    const out = at('prompt.ek');
    // A pseudo-terminal: the CLI sees a TTY on stdin, stdout and stderr; the passphrase is typed after the prompt.
    const py = `
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b''
sent = False
end = time.time() + 20
while time.time() < end:
    r, _, _ = select.select([fd], [], [], 0.05)
    if not r: continue
    try: d = os.read(fd, 4096)
    except OSError: break
    if not d: break
    out += d
    if not sent and b'Passphrase for' in out:
        time.sleep(0.1)
        os.write(fd, os.environ['TYPED'].encode() + b'\\r')
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf-8', 'replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`;
    const run = (typed: string) =>
      spawnSync('python3', ['-c', py, process.execPath, CLI, 'encrypt', input, '-o', out, '--force', '--keyring', sealedKeyring, '--key-id', 'alias/app'], {
        env: { PATH: process.env.PATH, TYPED: typed },
        encoding: 'utf8',
        timeout: 30_000,
      });
    const good = run(PASSPHRASE);
    expect(good.status, good.stdout).toBe(0);
    expect(good.stdout).toContain(`Passphrase for ${sealedKeyring}: `);
    expect(good.stdout).not.toContain(PASSPHRASE);
    expect(statSync(out).size).toBeGreaterThan(100);
    const bad = run('not the passphrase');
    expect(bad.status).toBe(7);
    expect(bad.stdout).not.toContain('not the passphrase');
  });
});

describe('encrypt and decrypt', () => {
  it('round-trips a file, with a context the decryption must match; the plaintext file is mode 0600', async () => {
    const data = pseudoRandom(300_000, 7);
    await fs.writeFile(at('a.bin'), data);
    const e = await cli(['encrypt', at('a.bin'), '-o', at('a.ek'), ...KR(), '--key-id', 'alias/app', '--context', 'purpose=backup', '--context', 'host=db-1', '--segment-size', '16k']);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout.length + e.stderr.length).toBe(0);
    const d = await cli(['decrypt', at('a.ek'), '-o', at('a.out'), ...KR(), '--context', 'purpose=backup']);
    expect(d.code, d.stderr).toBe(0);
    expect(sameBytes(await fs.readFile(at('a.out')), data)).toBe(true);
    expect(statSync(at('a.out')).mode & 0o777).toBe(0o600);
    const wrong = await cli(['decrypt', at('a.ek'), '-o', at('a.wrong'), ...KR(), '--context', 'purpose=other']);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toBe('envelope-kit: decryption failed (ERR_DECRYPTION_FAILED)\n');
    await expect(fs.stat(at('a.wrong'))).rejects.toThrow();
    expect(await tempFiles(dir)).toEqual([]);
  });

  it('pipes: stdin to stdout both ways, with no progress bar on a piped stderr even for a large input', async () => {
    const data = pseudoRandom(5 * 1024 * 1024 + 17, 3);
    const e = await cli(['encrypt', '-', ...KR(), '--key-id', 'alias/app'], { input: data });
    expect(e.code, e.stderr).toBe(0);
    expect(e.stderr).toBe('');
    const d = await cli(['decrypt', '-', '-o', '-', ...KR()], { input: e.stdout });
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toBe('');
    expect(sameBytes(d.stdout, data)).toBe(true);
  });

  it('file to stdout and stdin to file', async () => {
    const data = pseudoRandom(70_000, 11);
    await fs.writeFile(at('b.bin'), data);
    const e = await cli(['encrypt', at('b.bin'), ...KR(), '--key-id', appKeyId]);
    expect(e.code, e.stderr).toBe(0);
    const d = await cli(['decrypt', '-', '-o', at('b.out'), ...KR()], { input: e.stdout });
    expect(d.code, d.stderr).toBe(0);
    expect(sameBytes(await fs.readFile(at('b.out')), data)).toBe(true);
  });

  it('refuses to overwrite an existing output without --force (exit 6, file unchanged); --force replaces it, in place too', async () => {
    await fs.writeFile(at('c.bin'), 'plaintext');
    await fs.writeFile(at('c.ek'), 'keep me');
    const r = await cli(['encrypt', at('c.bin'), '-o', at('c.ek'), ...KR(), '--key-id', 'alias/app']);
    expect(r.code).toBe(6);
    expect(r.stderr).toBe(`envelope-kit: output file ${at('c.ek')} exists (--force replaces it) (EEXIST)\n`);
    expect(await fs.readFile(at('c.ek'), 'utf8')).toBe('keep me');
    const f = await cli(['encrypt', at('c.bin'), '-o', at('c.ek'), ...KR(), '--key-id', 'alias/app', '--force']);
    expect(f.code, f.stderr).toBe(0);
    // Encrypting a file onto itself: the input stays open while the new file is renamed over it.
    const inPlace = await cli(['encrypt', at('c.ek'), '-o', at('c.ek'), ...KR(), '--key-id', 'alias/app', '--force']);
    expect(inPlace.code, inPlace.stderr).toBe(0);
    const once = await cli(['decrypt', at('c.ek'), ...KR()]);
    const twice = await cli(['decrypt', '-', ...KR()], { input: once.stdout });
    expect(twice.stdout.toString()).toBe('plaintext');
    expect(await tempFiles(dir)).toEqual([]);
  });

  it('a device is written in place, not replaced: -o /dev/null verifies an envelope', async () => {
    await fs.writeFile(at('n.bin'), 'to be checked');
    const e = await cli(['encrypt', at('n.bin'), '-o', at('n.ek'), ...KR(), '--key-id', 'alias/app']);
    expect(e.code).toBe(0);
    const d = await cli(['decrypt', at('n.ek'), '-o', '/dev/null', ...KR()]);
    expect(d.code, d.stderr).toBe(0);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  it.runIf(hasProgram('script'))('on a terminal: a progress bar for a large input (none with --quiet), and no binary output', async () => {
    await fs.writeFile(at('p.bin'), pseudoRandom(6 * 1024 * 1024, 13));
    // `script` runs the command on a pseudo-terminal (stdin, stdout and stderr) and copies what it printed.
    const onTty = (args: string[]) => {
      const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ');
      return spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 30_000 });
    };
    const shown = onTty(['encrypt', at('p.bin'), '-o', at('p.ek'), ...KR(), '--key-id', 'alias/app']);
    expect(shown.status, shown.stdout).toBe(0);
    expect(shown.stdout).toMatch(/100% \[#+\] +6\.00 MiB \/ 6\.00 MiB +[\d.]+ [KMG]?i?B\/s +ETA /);
    expect(shown.stdout).toContain('\r\x1b[K'); // the line is erased at the end
    const quiet = onTty(['decrypt', at('p.ek'), '-o', at('p.out'), ...KR(), '--quiet']);
    expect(quiet.status, quiet.stdout).toBe(0);
    expect(quiet.stdout).not.toContain('ETA');
    const decrypting = onTty(['decrypt', at('p.ek'), '-o', at('p2.out'), ...KR()]);
    expect(decrypting.stdout).toContain('ETA'); // the envelope, too, is above 4 MiB
    const binary = onTty(['encrypt', at('p.bin'), ...KR(), '--key-id', 'alias/app']);
    expect(binary.status).toBe(2);
    expect(binary.stdout).toContain('refusing to write an envelope (binary) to a terminal');
  });

  it('decrypts single-pass envelopes and text envelopes made by the library, from files and stdin', async () => {
    const kr = await loadPlain();
    const single = await encrypt(new TextEncoder().encode('single pass'), { provider: kr, keyId: 'alias/app', encryptionContext: { k: 'v' } });
    const text = await encryptText(new TextEncoder().encode('as text'), { provider: kr, keyId: 'alias/app' });
    kr.destroy();
    await fs.writeFile(at('s.ek'), single);
    await fs.writeFile(at('t.ek'), text + '\n');
    const a = await cli(['decrypt', at('s.ek'), '-o', at('s.out'), ...KR(), '--context', 'k=v']);
    expect(a.code, a.stderr).toBe(0);
    expect(await fs.readFile(at('s.out'), 'utf8')).toBe('single pass');
    const b = await cli(['decrypt', '-', ...KR()], { input: single });
    expect(b.stdout.toString()).toBe('single pass');
    const c = await cli(['decrypt', at('t.ek'), '-o', at('t.out'), ...KR()]);
    expect(c.code, c.stderr).toBe(0);
    expect(await fs.readFile(at('t.out'), 'utf8')).toBe('as text');
    const d = await cli(['decrypt', '-', ...KR()], { input: text });
    expect(d.stdout.toString()).toBe('as text');
  });

  it('record id and version bind the envelope: another id fails (exit 3)', async () => {
    await fs.writeFile(at('r.bin'), 'row 42');
    const e = await cli(['encrypt', at('r.bin'), '-o', at('r.ek'), ...KR(), '--key-id', 'alias/app', '--record-id', 'users/42', '--record-version', '7']);
    expect(e.code, e.stderr).toBe(0);
    const ok = await cli(['decrypt', at('r.ek'), ...KR(), '--record-id', 'users/42', '--record-version', '7']);
    expect(ok.stdout.toString()).toBe('row 42');
    const other = await cli(['decrypt', at('r.ek'), ...KR(), '--record-id', 'users/43', '--record-version', '7']);
    expect(other.code).toBe(3);
    const none = await cli(['decrypt', at('r.ek'), ...KR()]);
    expect(none.code).toBe(3);
  });

  it('--key-ids is an allow-list of master keys', async () => {
    await fs.writeFile(at('k.bin'), 'allow');
    await cli(['encrypt', at('k.bin'), '-o', at('k.ek'), ...KR(), '--key-id', 'alias/app']);
    expect((await cli(['decrypt', at('k.ek'), ...KR(), '--key-ids', `zzzzzz,${appKeyId}`])).stdout.toString()).toBe('allow');
    const refused = await cli(['decrypt', at('k.ek'), ...KR(), '--key-ids', 'zzzzzz']);
    expect(refused.code).toBe(3);
  });
});

describe('exit statuses', () => {
  it('2: bad option values', async () => {
    await fs.writeFile(at('u.bin'), 'x');
    const cases: [string[], RegExp][] = [
      [['encrypt', at('u.bin'), ...KR()], /--key-id/],
      [['encrypt', at('u.bin'), ...KR(), '--key-id', 'alias/app', '--context', 'novalue'], /KEY=VALUE/],
      [['encrypt', at('u.bin'), ...KR(), '--key-id', 'alias/app', '--context', 'a=1', '--context', 'a=2'], /given twice/],
      [['encrypt', at('u.bin'), ...KR(), '--key-id', 'alias/app', '--segment-size', '100'], /--segment-size/],
      [['encrypt', at('u.bin'), ...KR(), '--key-id', 'alias/app', '--segment-size', '17m'], /--segment-size/],
      [['encrypt', at('u.bin'), '--key-id', 'alias/app'], /no key provider/],
      [['encrypt', at('u.bin'), ...KR(), '--key-id', 'alias/app', '--key-id', 'alias/b'], /more than once/],
      [['decrypt'], /needs an input/],
      [['encrypt', at('u.bin'), '--alibaba-region', 'cn-hangzhou', '--key-id', 'alias/app'], /ALIBABA_CLOUD_ACCESS_KEY_ID/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/^envelope-kit: .* \(ERR_INVALID_PARAMETER\)\n$/);
    }
  });

  it('3: not an envelope, a truncated envelope, a tampered header', async () => {
    await fs.writeFile(at('g.bin'), 'not an envelope at all');
    const garbage = await cli(['decrypt', at('g.bin'), '-o', at('g.out'), ...KR()]);
    expect(garbage.code).toBe(3);
    expect(garbage.stderr).toMatch(/\(ERR_MALFORMED_ENVELOPE\)\n$/);
    await fs.writeFile(at('h.bin'), pseudoRandom(50_000));
    await cli(['encrypt', at('h.bin'), '-o', at('h.ek'), ...KR(), '--key-id', 'alias/app', '--segment-size', '4096']);
    const env = await fs.readFile(at('h.ek'));
    const truncated = await cli(['decrypt', '-', ...KR()], { input: env.subarray(0, env.length - 100) });
    expect(truncated.code).toBe(3);
    const [[kStart, kEnd]] = keyIdRanges(parseHeader(env, 8, [LAYOUT_FRAMED], 'prefix').header) as [[number, number]];
    for (const i of [10, kStart - 1, kEnd]) {
      // the message id, the key id's length byte, the blob's length byte
      const header = Buffer.from(env);
      header[i]! ^= 1;
      const tampered = await cli(['decrypt', '-', ...KR()], { input: header });
      expect(tampered.code, `byte ${i}`).toBe(3);
      expect(tampered.stdout.length).toBe(0);
    }
    // the key id beside the blob is not authenticated (SPEC.md §9.13): changed, it decrypts to the same bytes
    const keyIdChanged = Buffer.from(env);
    keyIdChanged[kStart]! ^= 1;
    const same = await cli(['decrypt', '-', ...KR()], { input: keyIdChanged });
    expect(same.code).toBe(0);
    expect(sameBytes(new Uint8Array(same.stdout), await fs.readFile(at('h.bin')))).toBe(true);
  });

  it('4: unknown key, disabled key, no provider for the envelope', async () => {
    await fs.writeFile(at('d.bin'), 'x');
    const unknown = await cli(['encrypt', at('d.bin'), '-o', at('d1.ek'), ...KR(), '--key-id', 'alias/nope']);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toBe('envelope-kit: key not found: alias/nope (ERR_KEY_NOT_FOUND)\n');
    // A keyring of its own, so that disabling does not disturb the other tests.
    const file = at('disable.keyring.json');
    const init = await cli(['keys', 'init', '--keyring', file, '--unprotected-keyring', '--alias', 'alias/d', '-q']);
    const id = init.stdout.toString().trim();
    await cli(['encrypt', at('d.bin'), '-o', at('d2.ek'), '--keyring', file, '--unprotected-keyring', '--key-id', 'alias/d']);
    expect((await cli(['keys', 'disable', 'alias/d', '--keyring', file, '--unprotected-keyring'])).code).toBe(0);
    const enc = await cli(['encrypt', at('d.bin'), '-o', at('d3.ek'), '--keyring', file, '--unprotected-keyring', '--key-id', 'alias/d']);
    expect(enc.code).toBe(4);
    expect(enc.stderr).toBe(`envelope-kit: key ${id} is disabled (ERR_KEY_DISABLED)\n`);
    const dec = await cli(['decrypt', at('d2.ek'), '--keyring', file, '--unprotected-keyring']);
    expect(dec.code).toBe(4);
    expect((await cli(['keys', 'enable', id, '--keyring', file, '--unprotected-keyring'])).code).toBe(0);
    expect((await cli(['decrypt', at('d2.ek'), '--keyring', file, '--unprotected-keyring'])).stdout.toString()).toBe('x');
    // The envelope's data key is the local keyring's; only a KMS is given.
    const kms = await startKmsEmulator();
    try {
      const r = await cli(['decrypt', at('d2.ek'), '--alibaba-endpoint', kms.url], { env: alibabaEnv(kms) });
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/\(ERR_NO_MATCHING_PROVIDER\)\n$/);
    } finally {
      await kms.close();
    }
  });

  it('6: a missing input, a missing output folder, a full device on stdout and as the output', async () => {
    const missing = await cli(['encrypt', at('nope.bin'), '-o', at('nope.ek'), ...KR(), '--key-id', 'alias/app']);
    expect(missing.code).toBe(6);
    expect(missing.stderr).toBe(`envelope-kit: cannot read ${at('nope.bin')}: no such file or directory (ENOENT)\n`);
    await fs.writeFile(at('f.bin'), pseudoRandom(200_000));
    const folder = await cli(['encrypt', at('f.bin'), '-o', at('no/such/f.ek'), ...KR(), '--key-id', 'alias/app']);
    expect(folder.code).toBe(6);
    const full = await cli(['encrypt', at('f.bin'), '-o', '/dev/full', ...KR(), '--key-id', 'alias/app']);
    expect(full.code).toBe(6);
    expect(full.stderr).toBe('envelope-kit: cannot write /dev/full: no space left on device (ENOSPC)\n');
    const stdout = await cli(['encrypt', at('f.bin'), ...KR(), '--key-id', 'alias/app'], { shellPrefix: 'exec >/dev/full;' });
    expect(stdout.code).toBe(6);
    expect(stdout.stderr).toBe('envelope-kit: cannot write stdout: no space left on device (ENOSPC)\n');
  });
});

describe('keys', () => {
  it('init refuses an existing file, and needs a passphrase or --unprotected-keyring', async () => {
    const again = await cli(['keys', 'init', '--keyring', plainKeyring, '--unprotected-keyring']);
    expect(again.code).toBe(6);
    expect(again.stderr).toContain('exists');
    const noPass = await cli(['keys', 'init', '--keyring', at('new.keyring.json')]);
    expect(noPass.code).toBe(2);
    await expect(fs.stat(at('new.keyring.json'))).rejects.toThrow();
    const noFile = await cli(['keys', 'create', '--keyring', at('missing.keyring.json'), '--unprotected-keyring']);
    expect(noFile.code).toBe(7);
    await expect(fs.stat(at('missing.keyring.json'))).rejects.toThrow();
  });

  it('create, list, rotate, alias, unalias, disable, enable round trip; old envelopes still decrypt after a rotation', async () => {
    const file = at('ops.keyring.json');
    const k = ['--keyring', file, '--unprotected-keyring'];
    expect((await cli(['keys', 'init', ...k, '-q'])).code).toBe(0);
    const listed0 = await cli(['keys', 'list', ...k, '--json']);
    expect(JSON.parse(listed0.stdout.toString())).toEqual([]);
    const created = await cli(['keys', 'create', ...k, '--alias', 'alias/ops', '--description', 'for tests', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const info = JSON.parse(created.stdout.toString());
    expect(info).toMatchObject({ state: 'Enabled', currentVersion: 1, aliases: ['alias/ops'], description: 'for tests' });
    await fs.writeFile(at('o.bin'), 'before rotation');
    await cli(['encrypt', at('o.bin'), '-o', at('o.ek'), ...k, '--key-id', 'alias/ops']);
    const rotated = await cli(['keys', 'rotate', 'alias/ops', ...k]);
    expect(rotated.stdout.toString()).toBe(`${info.keyId} version 2\n`);
    expect((await cli(['decrypt', at('o.ek'), ...k])).stdout.toString()).toBe('before rotation');
    const second = (await cli(['keys', 'create', ...k])).stdout.toString().trim();
    expect((await cli(['keys', 'alias', 'alias/ops', second, ...k])).code).toBe(2); // exists
    expect((await cli(['keys', 'alias', 'alias/ops', second, ...k, '--force'])).code).toBe(0);
    expect((await cli(['keys', 'alias', 'alias/extra', info.keyId, ...k])).code).toBe(0);
    expect((await cli(['keys', 'disable', info.keyId, ...k])).code).toBe(0);
    let keys = JSON.parse((await cli(['keys', 'list', ...k, '--json'])).stdout.toString());
    expect(keys.map((x: { keyId: string; state: string; aliases: string[]; currentVersion: number }) => [x.keyId, x.state, x.aliases, x.currentVersion])).toEqual([
      [info.keyId, 'Disabled', ['alias/extra'], 2],
      [second, 'Enabled', ['alias/ops'], 1],
    ]);
    expect((await cli(['keys', 'enable', 'alias/extra', ...k])).code).toBe(0);
    expect((await cli(['keys', 'unalias', 'alias/extra', ...k])).code).toBe(0);
    keys = JSON.parse((await cli(['keys', 'list', ...k, '--json'])).stdout.toString());
    expect(keys[0]).toMatchObject({ state: 'Enabled', aliases: [] });
    const table = (await cli(['keys', 'list', ...k])).stdout.toString();
    expect(table.split('\n')[0]).toMatch(/^KEY ID\s+STATE\s+VERSION\s+CREATED\s+ALIASES\s+DESCRIPTION$/);
    expect(table).toContain('for tests');
    const unknown = await cli(['keys', 'rotate', 'alias/none', ...k]);
    expect(unknown.code).toBe(4);
    expect(await tempFiles(dir)).toEqual([]);
    // The file never holds key material in a listing.
    expect(table).not.toMatch(/[A-Za-z0-9+/]{40,}/);
  });

  it('a protected keyring made by keys init keeps its passphrase across changes', async () => {
    const file = at('pw.keyring.json');
    const env = { EK_PW: 'another passphrase' };
    const k = ['--keyring', file, '--passphrase-env', 'EK_PW'];
    const init = await cli(['keys', 'init', ...k, '--alias', 'alias/pw'], { env });
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(await fs.readFile(file, 'utf8')).protection.kind).toBe('scrypt');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const rotated = await cli(['keys', 'rotate', 'alias/pw', ...k], { env });
    expect(rotated.code, rotated.stderr).toBe(0);
    const wrong = await cli(['keys', 'list', ...k], { env: { EK_PW: 'nope' } });
    expect(wrong.code).toBe(7);
  });
});

describe('inspect', () => {
  it('prints the header of a framed envelope, as text and as JSON, from a file and from stdin; never a secret', async () => {
    const data = pseudoRandom(100_000, 5);
    await fs.writeFile(at('i.bin'), data);
    await cli(['encrypt', at('i.bin'), '-o', at('i.ek'), ...KR(), '--key-id', 'alias/app', '--context', 'file=i.bin', '--segment-size', '8192']);
    const j = await cli(['inspect', at('i.ek'), '--json']);
    expect(j.code, j.stderr).toBe(0);
    const info = JSON.parse(j.stdout.toString());
    const size = statSync(at('i.ek')).size;
    expect(info).toMatchObject({
      formatVersion: 1,
      layout: { id: 2, name: 'framed' },
      encryptionContext: { file: 'i.bin' },
      encryptedDataKeys: [{ providerId: 'local', keyId: appKeyId }],
      plaintextLength: data.length,
      totalLength: size,
      segmentSize: 8192,
      segmentCount: Math.ceil(data.length / 8192),
    });
    const fromStdin = await cli(['inspect', '-', '--json'], { input: await fs.readFile(at('i.ek')) });
    expect(JSON.parse(fromStdin.stdout.toString())).toEqual(info);
    const text = (await cli(['inspect', at('i.ek')])).stdout.toString();
    expect(text).toMatch(/^layout\s+0x02 framed$/m);
    expect(text).toMatch(/^ {2}file = i\.bin$/m);
    expect(text).toContain(`key ${appKeyId}`);
    expect(text).toMatch(new RegExp(`^plaintext\\s+${data.length} bytes`, 'm'));
  });

  it('inspects single-pass and text envelopes as the library inspect() does', async () => {
    const { inspect } = await import('../src/index.js');
    const kr = await loadPlain();
    const single = await encrypt(new Uint8Array(1234), { provider: kr, keyId: 'alias/app', encryptionContext: { 'odd\u001bkey': 'v\n' } });
    const text = await encryptText(new Uint8Array(10), { provider: kr, keyId: 'alias/app' });
    kr.destroy();
    const a = await cli(['inspect', '-', '--json'], { input: single });
    expect(JSON.parse(a.stdout.toString())).toEqual(JSON.parse(JSON.stringify(inspect(single))));
    // Control characters of a context are escaped in the text report (no terminal escape sequence gets through).
    const shown = (await cli(['inspect', '-'], { input: single })).stdout.toString();
    expect(shown).not.toContain('\u001b');
    expect(shown).toContain('"odd\\u001bkey" = "v\\n"');
    const b = await cli(['inspect', '-', '--json'], { input: text + '\n' });
    expect(JSON.parse(b.stdout.toString())).toEqual(JSON.parse(JSON.stringify(inspect(text))));
    const bad = await cli(['inspect', '-'], { input: 'EKx' });
    expect(bad.code).toBe(3);
  });

  it('reads only the header of a large file (a sparse 3 GiB envelope is inspected at once)', async () => {
    await fs.writeFile(at('hdr.bin'), 'x');
    await cli(['encrypt', at('hdr.bin'), '-o', at('big.ek'), ...KR(), '--key-id', 'alias/app', '--segment-size', '1m']);
    // Lengthen the file (sparse): the header is unchanged, the lengths follow the size.
    const sealed = 1024 * 1024 + 16;
    const header = statSync(at('big.ek')).size - 17;
    await fs.truncate(at('big.ek'), header + 3000 * sealed + 17);
    const started = Date.now();
    const r = await cli(['inspect', at('big.ek'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.toString())).toMatchObject({ segmentCount: 3001, plaintextLength: 3000 * 1024 * 1024 + 1 });
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('Alibaba Cloud KMS (the loopback emulator)', () => {
  let kms: KmsEmulator;
  beforeAll(async () => {
    kms = await startKmsEmulator();
    kms.keyring.createKey({ alias: 'alias/kms' });
  });
  afterAll(async () => {
    await kms.close();
  });

  it('encrypts and decrypts with credentials from the environment; decrypt takes a keyring and the KMS together', async () => {
    await fs.writeFile(at('kms.bin'), 'through kms');
    const env = alibabaEnv(kms);
    const e = await cli(['encrypt', at('kms.bin'), '-o', at('kms.ek'), '--alibaba-endpoint', kms.url, '--key-id', 'alias/kms', '--context', 'app=cli'], { env });
    expect(e.code, e.stderr).toBe(0);
    const info = JSON.parse((await cli(['inspect', at('kms.ek'), '--json'])).stdout.toString());
    expect(info.encryptedDataKeys[0].providerId).toBe('alibaba-kms');
    const d = await cli(['decrypt', at('kms.ek'), ...KR(), '--alibaba-endpoint', kms.url], { env });
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout.toString()).toBe('through kms');
  });

  it('5: a KMS error is a provider failure; the secret never appears in the output', async () => {
    await fs.writeFile(at('kms5.bin'), 'x');
    const env = alibabaEnv(kms);
    kms.faults.error({ status: 403, code: 'Forbidden.NoPermission' });
    const r = await cli(['encrypt', at('kms5.bin'), '-o', at('kms5.ek'), '--alibaba-endpoint', kms.url, '--key-id', 'alias/kms'], { env });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/^envelope-kit: .*Forbidden\.NoPermission.* \(ERR_PROVIDER\)\n$/);
    const bad = await cli(['encrypt', at('kms5.bin'), '-o', at('kms5.ek'), '--alibaba-endpoint', kms.url, '--key-id', 'alias/kms'], {
      env: { ...env, ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'wrong-secret-value-0123456789' },
    });
    expect(bad.code).toBe(5);
    expect(bad.stderr).not.toContain('wrong-secret-value');
    expect(bad.stderr).not.toContain(kms.credentials.accessKeySecret);
    await expect(fs.stat(at('kms5.ek'))).rejects.toThrow();
    const disabled = kms.keyring.createKey({ alias: 'alias/off' });
    kms.keyring.disableKey(disabled.keyId);
    const off = await cli(['encrypt', at('kms5.bin'), '-o', at('kms5.ek'), '--alibaba-endpoint', kms.url, '--key-id', 'alias/off'], { env });
    expect(off.code).toBe(4);
  });
});

/** The environment that points the CLI's Alibaba provider at an emulator. */
function alibabaEnv(kms: KmsEmulator): Record<string, string> {
  return { ALIBABA_CLOUD_ACCESS_KEY_ID: kms.credentials.accessKeyId, ALIBABA_CLOUD_ACCESS_KEY_SECRET: kms.credentials.accessKeySecret };
}

async function loadPlain(): Promise<LocalKeyring> {
  const { loadKeyring } = await import('../src/providers/local/file.node.js');
  return loadKeyring(plainKeyring, { protection: 'none' });
}
