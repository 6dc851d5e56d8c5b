/**
 * `rewrapFile` (`envelope-kit/node`, SPEC.md §15): an envelope file re-wrapped in place, atomically,
 * with its body copied byte for byte (through the kernel when the header keeps its length, through
 * buffers when it does not); the file's mode kept; nothing written when no rule applies; on an
 * abort, a provider failure or a file that changes meanwhile, the original is as it was and no
 * temporary file is left; `output` and `dryRun`.
 */
import { appendFileSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalKeyring, decrypt, encrypt, inspect } from '../src/index.js';
import { decryptFile, encryptFile, rewrapFile } from '../src/node.js';
import { pseudoRandom, sameBytes, tempFiles } from './cli-helpers.js';

const keyring = new LocalKeyring();
const a = keyring.createKey({ alias: 'alias/a' }).keyId;
const b = keyring.createKey({ alias: 'alias/b' }).keyId;
const plaintext = pseudoRandom(700_000, 7);

let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(tmpdir(), 'ek-rewrap-file-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A folder of its own, holding one envelope file of the given layout under key `a`. */
async function envelopeFile(layout: 'single' | 'framed', mode = 0o640): Promise<{ d: string; file: string; bytes: Buffer }> {
  const d = path.join(dir, `t${n++}`);
  await fs.mkdir(d);
  const file = path.join(d, 'data.ek');
  if (layout === 'single') {
    await fs.writeFile(file, await encrypt(plaintext, { provider: keyring, keyId: a }));
  } else {
    await fs.writeFile(path.join(d, 'plain'), plaintext);
    await encryptFile(path.join(d, 'plain'), file, { provider: keyring, keyId: a, segmentSize: 4096 });
    await fs.rm(path.join(d, 'plain'));
  }
  await fs.chmod(file, mode);
  return { d, file, bytes: await fs.readFile(file) };
}

function bodyOf(bytes: Uint8Array): Uint8Array {
  const info = inspect(bytes);
  return bytes.subarray(info.headerLength);
}

async function opens(file: string, keyId: string): Promise<boolean> {
  const bytes = await fs.readFile(file);
  if (inspect(bytes).layout.name === 'framed') {
    const out = file + '.out';
    try {
      await decryptFile(file, out, { provider: keyring, keyIds: [keyId] });
      return sameBytes(await fs.readFile(out), plaintext);
    } catch {
      return false;
    } finally {
      await fs.rm(out, { force: true });
    }
  }
  try {
    return sameBytes((await decrypt(bytes, { provider: keyring, keyIds: [keyId] })).plaintext, plaintext);
  } catch {
    return false;
  }
}

describe.each(['single', 'framed'] as const)('%s layout', (layout) => {
  it('add: the header grows, the body is copied byte for byte, the mode is kept', async () => {
    const { d, file, bytes } = await envelopeFile(layout, 0o640);
    const r = await rewrapFile(file, { provider: keyring, add: [{ provider: keyring, keyId: b }] });
    expect(r.changed).toBe(true);
    expect(r.layout).toBe(layout === 'single' ? 'single pass' : 'framed');
    expect(r.headerBytes.after).toBeGreaterThan(r.headerBytes.before);
    expect(r.bodyBytes).toBe(bytes.length - r.headerBytes.before);
    expect(r.keys.before.map((k) => k.keyId)).toEqual([a]);
    expect(r.keys.after.map((k) => k.keyId)).toEqual([a, b]);
    const after = await fs.readFile(file);
    expect(after.length).toBe(r.headerBytes.after + r.bodyBytes);
    expect(sameBytes(bodyOf(after), bodyOf(bytes))).toBe(true);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o640);
    expect(await opens(file, a)).toBe(true);
    expect(await opens(file, b)).toBe(true);
    expect(await fs.readdir(d)).toEqual(['data.ek']);
  });

  it('replace within the keyring (reEncrypt): same header length, kernel copy, then the header written over it', async () => {
    const { d, file, bytes } = await envelopeFile(layout, 0o604);
    const r = await rewrapFile(file, { provider: keyring, replace: [{ from: { keyId: a }, to: { provider: keyring, keyId: b } }] });
    expect(r.changed).toBe(true);
    expect(r.headerBytes.after).toBe(r.headerBytes.before);
    const after = await fs.readFile(file);
    expect(sameBytes(after, bytes)).toBe(false);
    expect(sameBytes(bodyOf(after), bodyOf(bytes))).toBe(true);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o604);
    expect(await opens(file, b)).toBe(true);
    expect(await opens(file, a)).toBe(false);
    expect(await fs.readdir(d)).toEqual(['data.ek']);
  });

  it('remove: the header shrinks; a rule that selects nothing writes nothing', async () => {
    const { file } = await envelopeFile(layout);
    await rewrapFile(file, { provider: keyring, add: [{ provider: keyring, keyId: b }] });
    const two = await fs.readFile(file);
    const r = await rewrapFile(file, { provider: keyring, remove: [{ keyId: a }] });
    expect(r.headerBytes.after).toBeLessThan(r.headerBytes.before);
    const one = await fs.readFile(file);
    expect(sameBytes(bodyOf(one), bodyOf(two))).toBe(true);
    expect(await opens(file, b)).toBe(true);
    const st = await fs.stat(file);
    const again = await rewrapFile(file, { provider: keyring, remove: [{ keyId: a }] });
    expect(again.changed).toBe(false);
    const st2 = await fs.stat(file);
    expect([st2.ino, st2.mtimeMs]).toEqual([st.ino, st.mtimeMs]);
  });
});

describe('rotation', () => {
  it('a replace of a key by itself moves its data key to the newest version', async () => {
    const k = new LocalKeyring();
    const id = k.createKey().keyId;
    const d = path.join(dir, 'rot');
    await fs.mkdir(d);
    const file = path.join(d, 'x.ek');
    await fs.writeFile(file, await encrypt(plaintext, { provider: k, keyId: id }));
    k.rotateKey(id);
    const r = await rewrapFile(file, { provider: k, replace: [{ from: { keyId: id, keyVersion: '1' }, to: { provider: k, keyId: id } }] });
    expect(r.keys.before.map((x) => x.keyVersion)).toEqual(['1']);
    expect(r.keys.after.map((x) => x.keyVersion)).toEqual(['2']);
    expect(sameBytes((await decrypt(await fs.readFile(file), { provider: k })).plaintext, plaintext)).toBe(true);
    expect((await rewrapFile(file, { provider: k, replace: [{ from: { keyId: id, keyVersion: '1' }, to: { provider: k, keyId: id } }] })).changed).toBe(false);
  });
});

describe('failures leave the original as it was and no temporary file', () => {
  it.each([
    ['add (buffered copy)', { add: [{ provider: keyring, keyId: b }] }],
    ['replace (kernel copy)', { replace: [{ from: { keyId: a }, to: { provider: keyring, keyId: b } }] }],
  ])('an abort once the temporary file exists: %s', async (_, rules) => {
    const { d, file, bytes } = await envelopeFile('framed');
    const ac = new AbortController();
    let temp = '';
    await expect(
      rewrapFile(file, {
        provider: keyring,
        ...rules,
        signal: ac.signal,
        onTempFile: (t) => {
          temp = t;
          ac.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    expect(temp).not.toBe('');
    expect(sameBytes(await fs.readFile(file), bytes)).toBe(true);
    expect(await tempFiles(d)).toEqual([]);
    expect(await fs.readdir(d)).toEqual(['data.ek']);
  });

  it('a signal aborted before the start: nothing is read or written', async () => {
    const { d, file, bytes } = await envelopeFile('single');
    await expect(rewrapFile(file, { provider: keyring, add: [{ provider: keyring, keyId: b }], signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    expect(sameBytes(await fs.readFile(file), bytes)).toBe(true);
    expect(await fs.readdir(d)).toEqual(['data.ek']);
  });

  it('a file that grows while it is copied is not replaced', async () => {
    const { d, file, bytes } = await envelopeFile('framed');
    await expect(
      rewrapFile(file, { provider: keyring, add: [{ provider: keyring, keyId: b }], onTempFile: () => appendFileSync(file, new Uint8Array([0])) }),
    ).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    const now = await fs.readFile(file);
    expect(sameBytes(now.subarray(0, bytes.length), bytes)).toBe(true);
    expect(now.length).toBe(bytes.length + 1);
    expect(await fs.readdir(d)).toEqual(['data.ek']);
  });

  it('a provider that fails, a wrong record id, a key that is not there', async () => {
    const { d, file, bytes } = await envelopeFile('single');
    const broken = Object.assign(Object.create(keyring) as LocalKeyring, {
      providerId: 'local',
      reEncrypt: async () => {
        throw new Error('KMS down');
      },
    });
    await expect(rewrapFile(file, { provider: keyring, replace: [{ from: { keyId: a }, to: { provider: broken, keyId: b } }] })).rejects.toMatchObject({ code: 'ERR_PROVIDER' });
    await expect(rewrapFile(file, { provider: keyring, recordId: 'other', add: [{ provider: keyring, keyId: b }] })).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
    await expect(rewrapFile(file, { provider: keyring, add: [{ provider: keyring, keyId: 'nope' }] })).rejects.toMatchObject({ code: 'ERR_KEY_NOT_FOUND' });
    await expect(rewrapFile(file, { provider: keyring, remove: [{ keyId: a }] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    expect(sameBytes(await fs.readFile(file), bytes)).toBe(true);
    expect(await fs.readdir(d)).toEqual(['data.ek']);
  });

  it('a file that is not an envelope, a truncated one, a folder, a missing file, bad options', async () => {
    const d = path.join(dir, 'bad');
    await fs.mkdir(d);
    const junk = path.join(d, 'junk');
    await fs.writeFile(junk, pseudoRandom(10_000, 3));
    const rule = { provider: keyring, add: [{ provider: keyring, keyId: b }] };
    await expect(rewrapFile(junk, rule)).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    const { bytes } = await envelopeFile('single');
    const cut = path.join(d, 'cut');
    await fs.writeFile(cut, bytes.subarray(0, inspect(bytes).headerLength + 3));
    await expect(rewrapFile(cut, rule)).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    await expect(rewrapFile(d, rule)).rejects.toBeDefined();
    await expect(rewrapFile(path.join(d, 'missing'), rule)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(rewrapFile(junk, { provider: keyring })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(rewrapFile(junk, { ...rule, overwrite: true })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(rewrapFile(junk, { ...rule, dryRun: 'yes' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(rewrapFile('' as never, rule)).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(rewrapFile(junk, null as never)).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    expect((await fs.readdir(d)).sort()).toEqual(['cut', 'junk']);
  });
});

describe('output, dry run, symbolic links', () => {
  it('output: written atomically with the mode of the original, which is untouched; an existing output only with overwrite', async () => {
    const { d, file, bytes } = await envelopeFile('framed', 0o644);
    const out = path.join(d, 'out.ek');
    const r = await rewrapFile(file, { provider: keyring, add: [{ provider: keyring, keyId: b }], output: out });
    expect(r.changed).toBe(true);
    expect(sameBytes(await fs.readFile(file), bytes)).toBe(true);
    expect(sameBytes(bodyOf(await fs.readFile(out)), bodyOf(bytes))).toBe(true);
    expect((await fs.stat(out)).mode & 0o777).toBe(0o644);
    expect(await opens(out, b)).toBe(true);
    const first = await fs.readFile(out);
    await expect(rewrapFile(file, { provider: keyring, add: [{ provider: keyring, keyId: b }], output: out })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    expect(sameBytes(await fs.readFile(out), first)).toBe(true);
    // No rule applies: the output is still written, a copy of the input.
    const same = await rewrapFile(file, { provider: keyring, remove: [{ keyId: b }], output: out, overwrite: true });
    expect(same.changed).toBe(false);
    expect(sameBytes(await fs.readFile(out), bytes)).toBe(true);
    expect((await fs.readdir(d)).sort()).toEqual(['data.ek', 'out.ek']);
  });

  it('dryRun: reports what would change and writes nothing', async () => {
    const { d, file, bytes } = await envelopeFile('single');
    const st = await fs.stat(file);
    const r = await rewrapFile(file, { provider: keyring, add: [{ provider: keyring, keyId: b }], dryRun: true });
    expect(r.changed).toBe(true);
    expect(r.keys.after.map((k) => k.keyId)).toEqual([a, b]);
    expect(sameBytes(await fs.readFile(file), bytes)).toBe(true);
    expect((await fs.stat(file)).mtimeMs).toBe(st.mtimeMs);
    await rewrapFile(file, { provider: keyring, add: [{ provider: keyring, keyId: b }], dryRun: true, output: path.join(d, 'o') });
    expect(await fs.readdir(d)).toEqual(['data.ek']);
  });

  it('a symbolic link: its target is re-wrapped, the link stays a link', async () => {
    const { d, file } = await envelopeFile('single');
    const link = path.join(d, 'link.ek');
    await fs.symlink(file, link);
    await rewrapFile(link, { provider: keyring, add: [{ provider: keyring, keyId: b }] });
    expect((await fs.lstat(link)).isSymbolicLink()).toBe(true);
    expect(await opens(file, b)).toBe(true);
  });
});
