/**
 * Keyring files: round-trip with and without a passphrase, mode 0600, atomic
 * saves that leave the old file intact and no temporary files, and every
 * corruption (changed character, truncation, wrong passphrase) reported as
 * ERR_KEYRING_FILE.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import util from 'node:util';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { EnvelopeKitError, LocalKeyring, decrypt, encrypt } from '../src/index.js';
import { parseKeyring, serializeKeyring } from '../src/providers/local/file-format.js';
import { loadKeyring, saveKeyring } from '../src/node.js';
import { allZero, b64, expectCode, expectNoSecret, fromUtf8, numRuns, utf8 } from './core-helpers.js';

const FAST_SCRYPT = { N: 2 ** 10, r: 8, p: 1 };

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(tmpdir(), 'ek-keyring-file-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** A keyring with every feature a file must keep: versions, aliases, every state, descriptions. */
function richKeyring(): LocalKeyring {
  const kr = new LocalKeyring();
  const a = kr.createKey({ alias: 'alias/app', description: 'application key \u00e9\u{1f511}' });
  kr.rotateKey(a.keyId);
  kr.rotateKey(a.keyId);
  kr.createAlias('alias/app/second-name', a.keyId);
  const b = kr.createKey({ description: 'disabled' });
  kr.disableKey(b.keyId);
  const c = kr.createKey({ alias: 'alias/doomed' });
  kr.scheduleKeyDeletion(c.keyId);
  return kr;
}

async function expectSameKeyring(loaded: LocalKeyring, original: LocalKeyring): Promise<void> {
  expect(loaded.listKeys()).toEqual(original.listKeys());
  expect(loaded.listAliases()).toEqual(original.listAliases());
  // same material: each side decrypts what the other encrypted, under every version
  const [app] = original.listKeys();
  const env = await encrypt(utf8('from the original'), { provider: original, keyId: 'alias/app' });
  expect(fromUtf8((await decrypt(env, { provider: loaded })).plaintext)).toBe('from the original');
  const back = await encrypt(utf8('from the loaded one'), { provider: loaded, keyId: app!.keyId });
  expect(fromUtf8((await decrypt(back, { provider: original })).plaintext)).toBe('from the loaded one');
  const o = original.exportState();
  const l = loaded.exportState();
  expect(l.keys.map((k) => k.versions.map((v) => b64(v.material)))).toEqual(o.keys.map((k) => k.versions.map((v) => b64(v.material))));
}

async function filesIn(d: string): Promise<string[]> {
  return (await fs.readdir(d)).sort();
}

describe('round-trip', () => {
  it('without a passphrase: keys, versions, aliases, states and descriptions survive', async () => {
    const kr = richKeyring();
    const file = path.join(dir, 'plain.keyring.json');
    await saveKeyring(file, kr);
    const loaded = await loadKeyring(file);
    await expectSameKeyring(loaded, kr);
    expect(loaded.describeKey('alias/app').versions.map((v) => v.version)).toEqual([1, 2, 3]);
    expect(loaded.listKeys().map((k) => k.state)).toEqual(['Enabled', 'Disabled', 'PendingDeletion']);
    expect(loaded.describeKey('alias/app').description).toBe('application key \u00e9\u{1f511}');
  });

  it('with a passphrase (scrypt): the file holds no key material in clear', async () => {
    const kr = richKeyring();
    const file = path.join(dir, 'sealed.keyring.json');
    await saveKeyring(file, kr, { passphrase: 'correct horse battery staple', scrypt: FAST_SCRYPT });
    const text = await fs.readFile(file, 'utf8');
    const json = JSON.parse(text);
    expect(json.protection).toMatchObject({ kind: 'scrypt', N: 1024, r: 8, p: 1 });
    expect(json.checksum).toBeUndefined();
    for (const k of kr.exportState().keys) for (const v of k.versions) expectNoSecret(text, v.material, 'sealed keyring file');
    const loaded = await loadKeyring(file, { passphrase: 'correct horse battery staple' });
    await expectSameKeyring(loaded, kr);
  });

  it('a passphrase given as bytes works, and the caller\u2019s buffer is not wiped', async () => {
    const kr = richKeyring();
    const pass = Buffer.from('bytes passphrase');
    const text = await serializeKeyring(kr, { passphrase: pass, scrypt: FAST_SCRYPT });
    expect(pass.toString()).toBe('bytes passphrase');
    const again = Buffer.from('bytes passphrase');
    await expectSameKeyring(await parseKeyring(text, { passphrase: again }), kr);
    expect(again.toString()).toBe('bytes passphrase');
    expect(allZero(pass)).toBe(false);
  });

  it('serializeKeyring/parseKeyring round-trip in memory; an empty keyring too', async () => {
    const kr = richKeyring();
    await expectSameKeyring(await parseKeyring(await serializeKeyring(kr)), kr);
    const empty = await parseKeyring(await serializeKeyring(new LocalKeyring()));
    expect(empty.listKeys()).toEqual([]);
  });

  it('writes the file with mode 0600, also when replacing a more open file', async () => {
    const file = path.join(dir, 'mode.keyring.json');
    await fs.writeFile(file, 'old', { mode: 0o644 });
    await fs.chmod(file, 0o644);
    await saveKeyring(file, richKeyring());
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    await saveKeyring(file, richKeyring(), { passphrase: 'p', scrypt: FAST_SCRYPT });
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
  });
});

describe('wrong passphrase, missing passphrase, corruption', () => {
  let sealedText: string;
  let plainText: string;
  beforeAll(async () => {
    const kr = richKeyring();
    sealedText = await serializeKeyring(kr, { passphrase: 'right', scrypt: FAST_SCRYPT });
    plainText = await serializeKeyring(kr);
  });

  it('a wrong passphrase is ERR_KEYRING_FILE; a missing one is ERR_INVALID_PARAMETER', async () => {
    await expectCode(() => parseKeyring(sealedText, { passphrase: 'wrong' }), 'ERR_KEYRING_FILE');
    await expectCode(() => parseKeyring(sealedText, { passphrase: 'right ' }), 'ERR_KEYRING_FILE');
    await expectCode(() => parseKeyring(sealedText), 'ERR_INVALID_PARAMETER');
    const file = path.join(dir, 'wrong-pass.keyring.json');
    await fs.writeFile(file, sealedText);
    await expectCode(() => loadKeyring(file, { passphrase: 'wrong' }), 'ERR_KEYRING_FILE');
  });

  it('a passphrase given for an unprotected file is refused (a sealed file swapped for a plain one)', async () => {
    await expectCode(() => parseKeyring(plainText, { passphrase: 'right' }), 'ERR_KEYRING_FILE');
    expect((await parseKeyring(plainText)).listKeys().length).toBeGreaterThan(0);
  });

  /** Positions of characters inside JSON string and number values (not structure, not whitespace). */
  function valuePositions(text: string): number[] {
    const out: number[] = [];
    let inString = false;
    let isKey = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (inString) {
        if (c === '\\') {
          i++;
          continue;
        }
        if (c === '"') {
          inString = false;
          continue;
        }
        if (!isKey) out.push(i);
      } else if (c === '"') {
        inString = true;
        // a string followed by ':' is a key
        const close = text.indexOf('"', i + 1);
        isKey = text.slice(close + 1).trimStart().startsWith(':');
      } else if (/[0-9]/.test(c)) {
        out.push(i);
      }
    }
    return out;
  }

  for (const [name, get, options] of [
    ['plain', () => plainText, {}],
    ['sealed', () => sealedText, { passphrase: 'right' }],
  ] as const) {
    it(`property (${name} file): changing any character inside a value is ERR_KEYRING_FILE`, async () => {
      const text = get();
      const positions = valuePositions(text);
      expect(positions.length).toBeGreaterThan(200);
      const replacement = fc.constantFrom(...'ABCXYZabcxyz0123456789+/=-_:.T !"\\');
      await fc.assert(
        fc.asyncProperty(fc.nat(positions.length - 1), replacement, async (pick, c) => {
          const i = positions[pick]!;
          if (text[i] === c) return;
          const changed = text.slice(0, i) + c + text.slice(i + 1);
          await expectCode(() => parseKeyring(changed, options), 'ERR_KEYRING_FILE');
        }),
        { numRuns: numRuns(name === 'plain' ? 300 : 60) },
      );
    });
  }

  it('every value character of a plain file, changed to another, is detected', async () => {
    for (const i of valuePositions(plainText)) {
      const c = plainText[i] === '7' ? '8' : '7';
      await expectCode(() => parseKeyring(plainText.slice(0, i) + c + plainText.slice(i + 1)), 'ERR_KEYRING_FILE');
    }
  });

  it('renaming a field, dropping a field, or adding one is detected', async () => {
    const json = JSON.parse(plainText);
    const variants = [
      plainText.replace('"keyId"', '"keyID"'),
      plainText.replace('"checksum"', '"checkSum"'),
      JSON.stringify({ ...json, extra: 1 }),
      JSON.stringify({ ...json, checksum: undefined }),
      JSON.stringify({ ...json, keys: json.keys.slice(1) }),
      JSON.stringify({ ...json, aliases: {} }),
      JSON.stringify({ ...json, keys: [{ ...json.keys[0], state: 'Disabled' }, ...json.keys.slice(1)] }),
      JSON.stringify({ ...json, protection: { kind: 'scrypt', N: 1024, r: 8, p: 1, salt: 'AAAAAAAAAAAAAAAAAAAAAA==', nonce: 'AAAAAAAAAAAAAAAA' } }),
      JSON.stringify({ ...json, version: 2 }),
      JSON.stringify([json]),
    ];
    for (const v of variants) await expectCode(() => parseKeyring(v, { passphrase: 'x' }), 'ERR_KEYRING_FILE');
  });

  it('re-formatting the JSON (whitespace, key order) is harmless', async () => {
    const json = JSON.parse(plainText);
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(json).reverse()));
    expect((await parseKeyring(reordered)).listKeys()).toHaveLength(3);
    expect((await parseKeyring(plainText.replace(/\n\s*/g, ''))).listKeys()).toHaveLength(3);
  });

  it('every truncation is ERR_KEYRING_FILE (except dropping the final newline)', async () => {
    expect(plainText.endsWith('}\n')).toBe(true);
    for (let n = 0; n < plainText.length - 1; n++) {
      await expectCode(() => parseKeyring(plainText.slice(0, n)), 'ERR_KEYRING_FILE');
    }
    for (let n = 0; n < sealedText.length - 1; n += 5) {
      await expectCode(() => parseKeyring(sealedText.slice(0, n), { passphrase: 'right' }), 'ERR_KEYRING_FILE');
    }
    const file = path.join(dir, 'truncated.keyring.json');
    await fs.writeFile(file, plainText.slice(0, plainText.length / 2));
    await expectCode(() => loadKeyring(file), 'ERR_KEYRING_FILE');
  });

  it('hostile cost parameters are refused before any work (no huge scrypt)', async () => {
    const json = JSON.parse(sealedText);
    for (const protection of [
      { ...json.protection, N: 2 ** 30 },
      { ...json.protection, N: 1e308 },
      { ...json.protection, N: 1000 },
      { ...json.protection, r: 1e6 },
      { ...json.protection, p: 64 },
      { ...json.protection, salt: '' },
      { ...json.protection, nonce: 'AAAA' },
    ]) {
      const started = Date.now();
      await expectCode(() => parseKeyring(JSON.stringify({ ...json, protection }), { passphrase: 'right' }), 'ERR_KEYRING_FILE');
      expect(Date.now() - started).toBeLessThan(2000);
    }
  });

  it('property: arbitrary JSON is never a keyring file', async () => {
    await fc.assert(
      fc.asyncProperty(fc.json(), async (text) => {
        await expectCode(() => parseKeyring(text), 'ERR_KEYRING_FILE');
      }),
      { numRuns: numRuns(200) },
    );
  });

  it('a missing file, a directory, or a non-keyring file is ERR_KEYRING_FILE', async () => {
    await expectCode(() => loadKeyring(path.join(dir, 'missing.json')), 'ERR_KEYRING_FILE');
    await expectCode(() => loadKeyring(dir), 'ERR_KEYRING_FILE');
    const other = path.join(dir, 'other.json');
    await fs.writeFile(other, '{"hello": "world"}');
    await expectCode(() => loadKeyring(other), 'ERR_KEYRING_FILE');
  });
});

describe('atomic saves', () => {
  it('a save into a missing directory fails and creates nothing', async () => {
    const missing = path.join(dir, 'no-such-dir', 'k.json');
    const e = await saveKeyring(missing, richKeyring()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(Error);
    await expect(fs.stat(path.dirname(missing))).rejects.toThrow();
  });

  async function withOldFile(name: string): Promise<{ sub: string; file: string; before: string }> {
    const sub = await fs.mkdtemp(path.join(dir, `${name}-`));
    const file = path.join(sub, 'k.json');
    const old = richKeyring();
    await saveKeyring(file, old);
    return { sub, file, before: await fs.readFile(file, 'utf8') };
  }

  async function expectIntact(sub: string, file: string, before: string): Promise<void> {
    expect(await fs.readFile(file, 'utf8')).toBe(before);
    expect(await filesIn(sub)).toEqual(['k.json']);
    expect((await loadKeyring(file)).listKeys()).toHaveLength(3);
  }

  it('a save whose write fails midway leaves the old file intact and no temporary file', async () => {
    const { sub, file, before } = await withOldFile('write-fails');
    const probe = await fs.open(path.join(sub, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { writeFile: (...a: unknown[]) => Promise<void> };
    await probe.close();
    await fs.rm(path.join(sub, 'probe'));
    const original = proto.writeFile;
    vi.spyOn(proto, 'writeFile').mockImplementation(async function (this: unknown, ...args: unknown[]) {
      // write a little, then fail like a full disk
      await original.call(this, String(args[0]).slice(0, 10));
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    });
    await expect(saveKeyring(file, new LocalKeyring())).rejects.toMatchObject({ code: 'ERR_KEYRING_FILE', cause: expect.objectContaining({ message: expect.stringMatching(/ENOSPC/) }) });
    vi.restoreAllMocks();
    await expectIntact(sub, file, before);
  });

  it('a save whose fsync or rename fails leaves the old file intact and no temporary file', async () => {
    for (const method of ['rename'] as const) {
      const { sub, file, before } = await withOldFile(`${method}-fails`);
      vi.spyOn(fs, method).mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }));
      await expect(saveKeyring(file, new LocalKeyring())).rejects.toMatchObject({ code: 'ERR_KEYRING_FILE', cause: expect.objectContaining({ message: expect.stringMatching(/EIO/) }) });
      vi.restoreAllMocks();
      await expectIntact(sub, file, before);
    }
    const { sub, file, before } = await withOldFile('sync-fails');
    const probe = await fs.open(path.join(sub, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
    await probe.close();
    await fs.rm(path.join(sub, 'probe'));
    vi.spyOn(proto, 'sync').mockRejectedValueOnce(new Error('EIO: fsync failed'));
    await expect(saveKeyring(file, new LocalKeyring())).rejects.toMatchObject({ code: 'ERR_KEYRING_FILE', cause: expect.objectContaining({ message: expect.stringMatching(/EIO/) }) });
    vi.restoreAllMocks();
    await expectIntact(sub, file, before);
  });

  it('a save refused for bad options touches nothing', async () => {
    const { sub, file, before } = await withOldFile('bad-options');
    await expectCode(() => saveKeyring(file, new LocalKeyring(), { passphrase: 'p', scrypt: { N: 3, r: 8, p: 1 } }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => saveKeyring(file, {} as LocalKeyring), 'ERR_INVALID_PARAMETER');
    await expectIntact(sub, file, before);
  });

  it('a successful save replaces the file and leaves no temporary file', async () => {
    const { sub, file } = await withOldFile('replace');
    const next = new LocalKeyring();
    next.createKey({ alias: 'alias/next' });
    await saveKeyring(file, next);
    expect(await filesIn(sub)).toEqual(['k.json']);
    expect((await loadKeyring(file)).listAliases().map((a) => a.alias)).toEqual(['alias/next']);
  });

  it('saving is safe from concurrent saves: the file is always one whole keyring', async () => {
    const { sub, file } = await withOldFile('concurrent');
    const rings = Array.from({ length: 6 }, (_, i) => {
      const kr = new LocalKeyring();
      kr.createKey({ alias: `alias/k${i}` });
      return kr;
    });
    await Promise.all(rings.map((kr) => saveKeyring(file, kr)));
    expect(await filesIn(sub)).toEqual(['k.json']);
    const loaded = await loadKeyring(file);
    expect(loaded.listAliases()).toHaveLength(1);
    expect(loaded.listAliases()[0]!.alias).toMatch(/^alias\/k[0-5]$/);
  });
});

describe('errors from keyring files carry no key material', () => {
  it('including JSON syntax errors inside the material', async () => {
    const kr = richKeyring();
    const text = await serializeKeyring(kr);
    const material = JSON.parse(text).material as string;
    const start = text.indexOf(material);
    const broken: string[] = [];
    for (let i = start; i < start + material.length; i += 3) broken.push(text.slice(0, i) + '"' + text.slice(i + 1));
    // V8 quotes the text after an unexpected token: here, the start of the material
    for (const c of ['x', '-', 't', '1', '']) broken.push(text.slice(0, start - 1) + c + text.slice(start));
    broken.push(text.slice(0, start + 40) + '"x' + text.slice(start + 42));
    for (const b of broken) {
      const e = await expectCode(() => parseKeyring(b), 'ERR_KEYRING_FILE');
      const shown = util.inspect(e, { depth: 10, showHidden: true });
      for (const k of kr.exportState().keys) for (const v of k.versions) expectNoSecret(shown, v.material, 'keyring file error');
      // the material field is the keys in clear (base64 of their concatenation): no 8 characters of it either
      for (let j = 0; j + 8 <= material.length; j++) {
        if (shown.includes(material.slice(j, j + 8))) expect.fail(`error shows part of the material: ${material.slice(j, j + 8)}`);
      }
      expect(e).toBeInstanceOf(EnvelopeKitError);
    }
  });
});
