/**
 * Keyring files: round-trip with and without a passphrase, mode 0600, atomic
 * saves that leave the old file intact and no temporary files, and every
 * corruption (changed character, truncation, wrong passphrase) reported as
 * ERR_KEYRING_FILE.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import util from 'node:util';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { EnvelopeKitError, LocalKeyring, decrypt, encrypt } from '../src/index.js';
import { parseKeyring, serializeKeyring } from '../src/providers/local/file-format.js';
import { loadKeyring, saveKeyring } from '../src/node.js';
import { allZero, b64, expectCode, expectNoSecret, fromUtf8, numRuns, utf8 } from './core-helpers.js';
import { specPlainFile, specSealedFile, specSkeleton } from './keyring-file-spec.js';

/** The lowest cost the bounds allow (SPEC.md §7): an eighth of the default. */
const FAST_SCRYPT = { N: 2 ** 14, r: 8, p: 1 };
/** The explicit opt-in for a file that holds the master keys in clear. */
const NONE = { protection: 'none' } as const;

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
    await saveKeyring(file, kr, NONE);
    const loaded = await loadKeyring(file, NONE);
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
    expect(json.protection).toMatchObject({ kind: 'scrypt', N: 16384, r: 8, p: 1 });
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
    await expectSameKeyring(await parseKeyring(await serializeKeyring(kr, NONE), NONE), kr);
    const empty = await parseKeyring(await serializeKeyring(new LocalKeyring(), NONE), NONE);
    expect(empty.listKeys()).toEqual([]);
  });

  it('writes the file with mode 0600, also when replacing a more open file', async () => {
    const file = path.join(dir, 'mode.keyring.json');
    await fs.writeFile(file, 'old', { mode: 0o644 });
    await fs.chmod(file, 0o644);
    await saveKeyring(file, richKeyring(), { ...NONE, discardExistingKeys: true });
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    await saveKeyring(file, richKeyring(), { passphrase: 'p', scrypt: FAST_SCRYPT, discardExistingKeys: true });
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
  });
});

describe('wrong passphrase, missing passphrase, corruption', () => {
  let sealedText: string;
  let plainText: string;
  beforeAll(async () => {
    const kr = richKeyring();
    sealedText = await serializeKeyring(kr, { passphrase: 'right', scrypt: FAST_SCRYPT });
    plainText = await serializeKeyring(kr, NONE);
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
    expect((await parseKeyring(plainText, NONE)).listKeys().length).toBeGreaterThan(0);
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
    ['plain', () => plainText, NONE],
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
      await expectCode(() => parseKeyring(plainText.slice(0, i) + c + plainText.slice(i + 1), NONE), 'ERR_KEYRING_FILE');
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
      JSON.stringify({ ...json, version: 1 }),
      JSON.stringify({ ...json, version: 3 }),
      JSON.stringify({ ...json, generation: json.generation + 1 }),
      JSON.stringify([json]),
    ];
    for (const v of variants) await expectCode(() => parseKeyring(v, NONE), 'ERR_KEYRING_FILE');
  });

  it('re-formatting the JSON (whitespace, key order) is harmless', async () => {
    const json = JSON.parse(plainText);
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(json).reverse()));
    expect((await parseKeyring(reordered, NONE)).listKeys()).toHaveLength(3);
    expect((await parseKeyring(plainText.replace(/\n\s*/g, ''), NONE)).listKeys()).toHaveLength(3);
  });

  it('every truncation is ERR_KEYRING_FILE (except dropping the final newline)', async () => {
    expect(plainText.endsWith('}\n')).toBe(true);
    for (let n = 0; n < plainText.length - 1; n++) {
      await expectCode(() => parseKeyring(plainText.slice(0, n), NONE), 'ERR_KEYRING_FILE');
    }
    for (let n = 0; n < sealedText.length - 1; n += 5) {
      await expectCode(() => parseKeyring(sealedText.slice(0, n), { passphrase: 'right' }), 'ERR_KEYRING_FILE');
    }
    const file = path.join(dir, 'truncated.keyring.json');
    await fs.writeFile(file, plainText.slice(0, plainText.length / 2));
    await expectCode(() => loadKeyring(file, NONE), 'ERR_KEYRING_FILE');
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
        await expectCode(() => parseKeyring(text, NONE), 'ERR_KEYRING_FILE');
      }),
      { numRuns: numRuns(200) },
    );
  });

  it('a missing file, a directory, or a non-keyring file is ERR_KEYRING_FILE', async () => {
    await expectCode(() => loadKeyring(path.join(dir, 'missing.json'), NONE), 'ERR_KEYRING_FILE');
    await expectCode(() => loadKeyring(dir, NONE), 'ERR_KEYRING_FILE');
    const other = path.join(dir, 'other.json');
    await fs.writeFile(other, '{"hello": "world"}');
    await expectCode(() => loadKeyring(other, NONE), 'ERR_KEYRING_FILE');
  });
});

describe('atomic saves', () => {
  it('a save into a missing directory fails and creates nothing', async () => {
    const missing = path.join(dir, 'no-such-dir', 'k.json');
    const e = await saveKeyring(missing, richKeyring(), NONE).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(Error);
    await expect(fs.stat(path.dirname(missing))).rejects.toThrow();
  });

  async function withOldFile(name: string): Promise<{ sub: string; file: string; before: string }> {
    const sub = await fs.mkdtemp(path.join(dir, `${name}-`));
    const file = path.join(sub, 'k.json');
    const old = richKeyring();
    await saveKeyring(file, old, NONE);
    return { sub, file, before: await fs.readFile(file, 'utf8') };
  }

  async function expectIntact(sub: string, file: string, before: string): Promise<void> {
    expect(await fs.readFile(file, 'utf8')).toBe(before);
    expect(await filesIn(sub)).toEqual(['k.json']);
    expect((await loadKeyring(file, NONE)).listKeys()).toHaveLength(3);
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
    await expect(saveKeyring(file, new LocalKeyring(), { ...NONE, discardExistingKeys: true })).rejects.toMatchObject({ code: 'ERR_KEYRING_FILE', cause: expect.objectContaining({ message: expect.stringMatching(/ENOSPC/) }) });
    vi.restoreAllMocks();
    await expectIntact(sub, file, before);
  });

  it('a save whose fsync or rename fails leaves the old file intact and no temporary file', async () => {
    for (const method of ['rename'] as const) {
      const { sub, file, before } = await withOldFile(`${method}-fails`);
      vi.spyOn(fs, method).mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }));
      await expect(saveKeyring(file, new LocalKeyring(), { ...NONE, discardExistingKeys: true })).rejects.toMatchObject({ code: 'ERR_KEYRING_FILE', cause: expect.objectContaining({ message: expect.stringMatching(/EIO/) }) });
      vi.restoreAllMocks();
      await expectIntact(sub, file, before);
    }
    const { sub, file, before } = await withOldFile('sync-fails');
    const probe = await fs.open(path.join(sub, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
    await probe.close();
    await fs.rm(path.join(sub, 'probe'));
    vi.spyOn(proto, 'sync').mockRejectedValueOnce(new Error('EIO: fsync failed'));
    await expect(saveKeyring(file, new LocalKeyring(), { ...NONE, discardExistingKeys: true })).rejects.toMatchObject({ code: 'ERR_KEYRING_FILE', cause: expect.objectContaining({ message: expect.stringMatching(/EIO/) }) });
    vi.restoreAllMocks();
    await expectIntact(sub, file, before);
  });

  it('a save refused for bad options touches nothing', async () => {
    const { sub, file, before } = await withOldFile('bad-options');
    await expectCode(() => saveKeyring(file, new LocalKeyring(), { passphrase: 'p', scrypt: { N: 3, r: 8, p: 1 } }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => saveKeyring(file, {} as LocalKeyring, NONE), 'ERR_INVALID_PARAMETER');
    await expectIntact(sub, file, before);
  });

  it('a successful save replaces the file and leaves no temporary file', async () => {
    const { sub, file } = await withOldFile('replace');
    const next = new LocalKeyring();
    next.createKey({ alias: 'alias/next' });
    await saveKeyring(file, next, { ...NONE, discardExistingKeys: true });
    expect(await filesIn(sub)).toEqual(['k.json']);
    expect((await loadKeyring(file, NONE)).listAliases().map((a) => a.alias)).toEqual(['alias/next']);
  });

  it('saving is safe from concurrent saves: the file is always one whole keyring', async () => {
    const { sub, file } = await withOldFile('concurrent');
    const rings = Array.from({ length: 6 }, (_, i) => {
      const kr = new LocalKeyring();
      kr.createKey({ alias: `alias/k${i}` });
      return kr;
    });
    await Promise.all(rings.map((kr) => saveKeyring(file, kr, { ...NONE, discardExistingKeys: true })));
    expect(await filesIn(sub)).toEqual(['k.json']);
    const loaded = await loadKeyring(file, NONE);
    expect(loaded.listAliases()).toHaveLength(1);
    expect(loaded.listAliases()[0]!.alias).toMatch(/^alias\/k[0-5]$/);
  });
});

describe('errors from keyring files carry no key material', () => {
  it('including JSON syntax errors inside the material', async () => {
    const kr = richKeyring();
    const text = await serializeKeyring(kr, NONE);
    const material = JSON.parse(text).material as string;
    const start = text.indexOf(material);
    const broken: string[] = [];
    for (let i = start; i < start + material.length; i += 3) broken.push(text.slice(0, i) + '"' + text.slice(i + 1));
    // V8 quotes the text after an unexpected token: here, the start of the material
    for (const c of ['x', '-', 't', '1', '']) broken.push(text.slice(0, start - 1) + c + text.slice(start));
    broken.push(text.slice(0, start + 40) + '"x' + text.slice(start + 42));
    for (const b of broken) {
      const e = await expectCode(() => parseKeyring(b, NONE), 'ERR_KEYRING_FILE');
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

// ---------------------------------------------------------------- hardening (SPEC.md §7, §9.7)

describe('no unprotected file by accident', () => {
  it('a missing passphrase is an error unless protection: "none" is given by name (save, serialize, parse, load)', async () => {
    const kr = richKeyring();
    const file = path.join(dir, 'accident.keyring.json');
    const unset = process.env.ENVELOPE_KIT_TEST_SURELY_UNSET;
    expect(unset).toBeUndefined();
    await expectCode(() => saveKeyring(file, kr, { passphrase: unset }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => saveKeyring(file, kr), 'ERR_INVALID_PARAMETER');
    await expect(fs.stat(file)).rejects.toThrow(); // nothing written
    await expectCode(() => serializeKeyring(kr, { passphrase: unset }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => serializeKeyring(kr), 'ERR_INVALID_PARAMETER');
    await expectCode(() => serializeKeyring(kr, { protection: 'passphrase' }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => serializeKeyring(kr, { protection: 'none', passphrase: 'p' }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => serializeKeyring(kr, { protection: 'none', scrypt: FAST_SCRYPT }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => serializeKeyring(kr, { protection: 'clear' as never }), 'ERR_INVALID_PARAMETER');

    const plain = await serializeKeyring(kr, NONE);
    await expectCode(() => parseKeyring(plain), 'ERR_INVALID_PARAMETER');
    await expectCode(() => parseKeyring(plain, { passphrase: unset }), 'ERR_INVALID_PARAMETER');
    await saveKeyring(file, kr, NONE);
    await expectCode(() => loadKeyring(file), 'ERR_INVALID_PARAMETER');
    await expectCode(() => loadKeyring(file, { passphrase: unset }), 'ERR_INVALID_PARAMETER');
    expect((await loadKeyring(file, NONE)).listKeys()).toHaveLength(3);
  });

  it('protection: "none" for a protected file is refused (the files do not match what the caller expects)', async () => {
    const sealed = await serializeKeyring(richKeyring(), { passphrase: 'p', scrypt: FAST_SCRYPT });
    await expectCode(() => parseKeyring(sealed, NONE), 'ERR_KEYRING_FILE');
  });
});

describe('no keys lost by a save', () => {
  const PASS = { passphrase: 'pass', scrypt: FAST_SCRYPT };

  it('re-running the "once" step is refused and leaves the file as it was; discardExistingKeys replaces it', async () => {
    const file = path.join(await fs.mkdtemp(path.join(dir, 'once-')), 'app.keyring.json');
    const first = new LocalKeyring();
    first.createKey({ alias: 'alias/users' });
    await saveKeyring(file, first, PASS);
    const before = await fs.readFile(file, 'utf8');
    const second = new LocalKeyring();
    second.createKey({ alias: 'alias/users' });
    const e = await expectCode(() => saveKeyring(file, second, PASS), 'ERR_KEYRING_FILE');
    expect(e.message).toContain(first.listKeys()[0]!.keyId);
    expect(e.message).toContain('discardExistingKeys');
    expect(await fs.readFile(file, 'utf8')).toBe(before);
    await saveKeyring(file, second, { ...PASS, discardExistingKeys: true });
    expect((await loadKeyring(file, { passphrase: 'pass' })).listKeys().map((k) => k.keyId)).toEqual([second.listKeys()[0]!.keyId]);
  });

  it('a stale copy that lacks a newer version is refused; a superset, a deletion on purpose and an upgrade to a passphrase are not', async () => {
    const file = path.join(await fs.mkdtemp(path.join(dir, 'superset-')), 'k.json');
    const kr = new LocalKeyring();
    const { keyId } = kr.createKey({ alias: 'alias/a' });
    await saveKeyring(file, kr, NONE);
    const stale = await loadKeyring(file, NONE);
    kr.rotateKey(keyId);
    kr.createKey();
    await saveKeyring(file, kr, NONE); // a superset of the file
    const e = await expectCode(() => saveKeyring(file, stale, NONE), 'ERR_KEYRING_FILE');
    expect(e.message).toContain(`${keyId} version 2`);
    // deleting a key on purpose is not losing it
    const loaded = await loadKeyring(file, NONE);
    loaded.scheduleKeyDeletion(keyId);
    loaded.deleteKeyMaterial(keyId);
    await saveKeyring(file, loaded, NONE);
    expect((await loadKeyring(file, NONE)).listKeys()).toHaveLength(1);
    // an unprotected file read to check it, then sealed: no discard needed
    await saveKeyring(file, loaded, PASS);
    expect((await loadKeyring(file, { passphrase: 'pass' })).listKeys()).toHaveLength(1);
  });

  it('an existing file that cannot be read (wrong passphrase, corrupt, not a keyring) is not replaced unless told so', async () => {
    const file = path.join(await fs.mkdtemp(path.join(dir, 'unreadable-')), 'k.json');
    const kr = richKeyring();
    await saveKeyring(file, kr, PASS);
    const before = await fs.readFile(file, 'utf8');
    // a passphrase change: the old file does not open with the new passphrase
    await expectCode(() => saveKeyring(file, kr, { passphrase: 'new', scrypt: FAST_SCRYPT }), 'ERR_KEYRING_FILE');
    await expectCode(() => saveKeyring(file, kr, NONE), 'ERR_KEYRING_FILE'); // and cannot be read without one
    expect(await fs.readFile(file, 'utf8')).toBe(before);
    await saveKeyring(file, kr, { passphrase: 'new', scrypt: FAST_SCRYPT, previousPassphrase: 'pass' });
    expect((await loadKeyring(file, { passphrase: 'new' })).listKeys()).toHaveLength(3);
    for (const junk of ['{"not":"a keyring"}', before.slice(0, 100), '']) {
      await fs.writeFile(file, junk);
      await expectCode(() => saveKeyring(file, kr, PASS), 'ERR_KEYRING_FILE');
      expect(await fs.readFile(file, 'utf8')).toBe(junk);
      await saveKeyring(file, kr, { ...PASS, discardExistingKeys: true });
    }
    await expectCode(() => saveKeyring(file, kr, { ...PASS, discardExistingKeys: 'yes' as never }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => saveKeyring(file, kr, { ...PASS, previousPassphrase: 'pass\ud800' }), 'ERR_INVALID_PARAMETER');
  });
});

describe('hostile keyring files', () => {
  const MATERIAL = new Uint8Array(32).fill(7);

  it('an alias named __proto__ (or anything that is not an alias) is refused, even in an otherwise valid file', async () => {
    for (const name of ['__proto__', 'constructor', 'toString', 'alias/acs/x', 'x']) {
      const f = specSkeleton({ kind: 'none' });
      Object.defineProperty(f.aliases, name, { value: 'vector-key-1', enumerable: true, writable: true, configurable: true });
      const text = specPlainFile(f, MATERIAL);
      expect(Object.keys(JSON.parse(text).aliases)).toEqual([name]);
      await expectCode(() => parseKeyring(text, NONE), 'ERR_KEYRING_FILE');
      // and with the checksum computed as a reader that lost the member would see it
      const lost = specPlainFile(specSkeleton({ kind: 'none' }), MATERIAL);
      const swapped = JSON.stringify({ ...JSON.parse(lost), aliases: JSON.parse(text).aliases });
      await expectCode(() => parseKeyring(swapped, NONE), 'ERR_KEYRING_FILE');
    }
  });

  it('scrypt parameters below the floor are refused on read, though the file is validly sealed with them', async () => {
    const weak = { N: 2 ** 10, r: 1, p: 1 };
    const f = specSkeleton({ kind: 'scrypt', ...weak, salt: b64(new Uint8Array(16).fill(1)), nonce: b64(new Uint8Array(12).fill(2)) });
    const text = specSealedFile(f, MATERIAL, 'pw');
    const e = await expectCode(() => parseKeyring(text, { passphrase: 'pw' }), 'ERR_KEYRING_FILE');
    expect(e.message).toMatch(/scrypt/);
    // on write too
    await expectCode(() => serializeKeyring(richKeyring(), { passphrase: 'pw', scrypt: weak }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => serializeKeyring(richKeyring(), { passphrase: 'pw', scrypt: { N: 2 ** 13, r: 8, p: 1 } }), 'ERR_INVALID_PARAMETER');
    // the floor itself is accepted
    const atFloor = specSealedFile(specSkeleton({ kind: 'scrypt', N: 2 ** 14, r: 8, p: 1, salt: b64(new Uint8Array(16)), nonce: b64(new Uint8Array(12)) }), MATERIAL, 'pw');
    expect((await parseKeyring(atFloor, { passphrase: 'pw' })).listKeys()).toHaveLength(1);
  });

  it('scrypt work above the ceiling (N = 2^18, r = 8, p = 4: seconds of CPU) is refused before scrypt runs', async () => {
    const json = JSON.parse(await serializeKeyring(richKeyring(), { passphrase: 'right', scrypt: FAST_SCRYPT }));
    for (const params of [
      { N: 2 ** 18, r: 8, p: 4 },
      { N: 2 ** 17, r: 8, p: 3 },
      { N: 2 ** 22, r: 1, p: 1 },
      { N: 2 ** 20, r: 4, p: 1 },
    ]) {
      const started = Date.now();
      const e = await expectCode(() => parseKeyring(JSON.stringify({ ...json, protection: { ...json.protection, ...params } }), { passphrase: 'wrong' }), 'ERR_KEYRING_FILE');
      expect(e.message, JSON.stringify(params)).toMatch(/scrypt/);
      expect(Date.now() - started).toBeLessThan(500);
      await expectCode(() => serializeKeyring(richKeyring(), { passphrase: 'pw', scrypt: params }), 'ERR_INVALID_PARAMETER');
    }
  });

  it('a passphrase that is not well-formed Unicode is refused: two lone surrogates would open the same file', async () => {
    const kr = richKeyring();
    await expectCode(() => serializeKeyring(kr, { passphrase: 'pass\udfffword', scrypt: FAST_SCRYPT }), 'ERR_INVALID_PARAMETER');
    // a file sealed with the UTF-8 that a lone surrogate would have become (U+FFFD)
    const sealed = await serializeKeyring(kr, { passphrase: 'pass\ufffdword', scrypt: FAST_SCRYPT });
    await expectCode(() => parseKeyring(sealed, { passphrase: 'pass\ud800word' }), 'ERR_INVALID_PARAMETER');
    expect((await parseKeyring(sealed, { passphrase: 'pass\ufffdword' })).listKeys()).toHaveLength(3);
    await expectCode(() => serializeKeyring(kr, { passphrase: 'x'.repeat(65537), scrypt: FAST_SCRYPT }), 'ERR_INVALID_PARAMETER');
  });

  it('huge or deeply nested input is refused before JSON.parse, in milliseconds', async () => {
    const n = 8 * 1024 * 1024;
    const cases: [string, RegExp][] = [
      ['['.repeat(n) + ']'.repeat(n), /nested/], // 16 MiB of nested arrays
      ['{"a":'.repeat(6) + '1' + '}'.repeat(6), /nested/],
      ['[' + '0,'.repeat(n / 2 - 1) + '0]', /too many values/], // 8 MiB of one flat array
      [' '.repeat(16 * 1024 * 1024 + 1), /too large/],
      ['"' + '\u00e9'.repeat(8 * 1024 * 1024 + 1) + '"', /too large/], // fewer code units than bytes of UTF-8
    ];
    for (const [text, re] of cases) {
      const started = performance.now();
      const e = await expectCode(() => parseKeyring(text, NONE), 'ERR_KEYRING_FILE');
      expect(e.message).toMatch(re);
      expect(performance.now() - started).toBeLessThan(1000);
    }
    // a file on disk over the limit is not even read
    const big = path.join(dir, 'big.keyring.json');
    await fs.writeFile(big, ' '.repeat(16 * 1024 * 1024 + 1));
    await expectCode(() => loadKeyring(big, NONE), 'ERR_KEYRING_FILE');
  });

  it('limits are bytes of UTF-8: a description of 8192 two-byte characters is refused, of 4096 accepted', async () => {
    const f = specSkeleton({ kind: 'none' });
    f.keys[0]!.description = '\u00e9'.repeat(8192);
    await expectCode(() => parseKeyring(specPlainFile(f, MATERIAL), NONE), 'ERR_KEYRING_FILE');
    f.keys[0]!.description = '\u00e9'.repeat(4096);
    expect((await parseKeyring(specPlainFile(f, MATERIAL), NONE)).describeKey('vector-key-1').description).toHaveLength(4096);
    f.keys[0]!.createdAt = '\u{1f511}'.repeat(17); // 68 bytes, 34 code units
    await expectCode(() => parseKeyring(specPlainFile(f, MATERIAL), NONE), 'ERR_KEYRING_FILE');
    f.keys[0]!.createdAt = 'ok';
    f.keys[0]!.description = 'lone \ud800';
    await expectCode(() => parseKeyring(specPlainFile(f, MATERIAL), NONE), 'ERR_KEYRING_FILE');
  });
});

describe('rollback: the generation', () => {
  it('each save writes the next generation; an older copy of the file is refused with minGeneration', async () => {
    const file = path.join(await fs.mkdtemp(path.join(dir, 'rollback-')), 'k.json');
    const opts = { passphrase: 'pw', scrypt: FAST_SCRYPT };
    const kr = new LocalKeyring();
    const { keyId } = kr.createKey({ alias: 'alias/a' });
    expect(kr.generation).toBe(0);
    await saveKeyring(file, kr, opts);
    expect(kr.generation).toBe(1);
    const old = await fs.readFile(file, 'utf8');
    kr.rotateKey(keyId);
    kr.disableKey(keyId);
    await saveKeyring(file, kr, opts);
    expect(kr.generation).toBe(2);
    const pinned = kr.generation;
    expect((await loadKeyring(file, { passphrase: 'pw', minGeneration: pinned })).generation).toBe(2);
    // the attacker puts the older copy back: version 1 only, enabled
    await fs.writeFile(file, old);
    expect((await loadKeyring(file, { passphrase: 'pw' })).describeKey(keyId).state).toBe('Enabled');
    const e = await expectCode(() => loadKeyring(file, { passphrase: 'pw', minGeneration: pinned }), 'ERR_KEYRING_FILE');
    expect(e.message).toMatch(/older/);
    // and cannot raise its generation without the passphrase: it is authenticated
    const json = JSON.parse(old);
    await expectCode(() => parseKeyring(JSON.stringify({ ...json, generation: 5 }), { passphrase: 'pw', minGeneration: pinned }), 'ERR_KEYRING_FILE');
    await expectCode(() => parseKeyring(old, { passphrase: 'pw', minGeneration: -1 }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => parseKeyring(old, { passphrase: 'pw', minGeneration: 1.5 }), 'ERR_INVALID_PARAMETER');
  });

  it('a save by a keyring loaded earlier still writes a generation above the file\u2019s', async () => {
    const file = path.join(await fs.mkdtemp(path.join(dir, 'gen-')), 'k.json');
    const kr = new LocalKeyring();
    kr.createKey();
    await saveKeyring(file, kr, NONE);
    const early = await loadKeyring(file, NONE);
    await saveKeyring(file, kr, NONE);
    await saveKeyring(file, kr, NONE);
    expect(kr.generation).toBe(3);
    await saveKeyring(file, early, NONE);
    expect(early.generation).toBe(4);
    expect((await loadKeyring(file, { ...NONE, minGeneration: 4 })).generation).toBe(4);
    // serializeKeyring writes the keyring's generation + 1
    expect(JSON.parse(await serializeKeyring(early, NONE)).generation).toBe(5);
    expect(early.generation).toBe(5);
  });
});

describe('temporary files and symbolic links', () => {
  it('a save through a symbolic link replaces its target and keeps the link; a dangling link is refused', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'link-'));
    const target = path.join(sub, 'real.keyring.json');
    const link = path.join(sub, 'link.keyring.json');
    const kr = richKeyring();
    await saveKeyring(target, kr, NONE);
    await fs.symlink(target, link);
    kr.createKey({ alias: 'alias/added' });
    await saveKeyring(link, kr, NONE);
    expect((await fs.lstat(link)).isSymbolicLink()).toBe(true);
    expect((await loadKeyring(target, NONE)).listKeys()).toHaveLength(4);
    expect((await fs.stat(target)).mode & 0o777).toBe(0o600);
    expect(await filesIn(sub)).toEqual(['link.keyring.json', 'real.keyring.json']);
    // a stale temporary file next to the target (another folder) is removed by a save or load through the link
    const other = await fs.mkdtemp(path.join(dir, 'link-target-'));
    const far = path.join(other, 'far.keyring.json');
    await saveKeyring(far, kr, NONE);
    const farLink = path.join(sub, 'far-link.json');
    await fs.symlink(far, farLink);
    const stale = path.join(other, `.far.keyring.json.${2 ** 22 + 4321}.0123456789ab.tmp`);
    for (const via of ['save', 'load'] as const) {
      await fs.writeFile(stale, 'x');
      if (via === 'save') await saveKeyring(farLink, kr, NONE);
      else await loadKeyring(farLink, NONE);
      expect(await filesIn(other), via).toEqual(['far.keyring.json']);
    }
    const dangling = path.join(sub, 'dangling.json');
    await fs.symlink(path.join(sub, 'missing.json'), dangling);
    await expectCode(() => saveKeyring(dangling, kr, NONE), 'ERR_KEYRING_FILE');
    await expectCode(() => saveKeyring(dangling, kr, { ...NONE, discardExistingKeys: true }), 'ERR_KEYRING_FILE');
    await expect(fs.stat(path.join(sub, 'missing.json'))).rejects.toThrow();
  });

  const ROOT = path.resolve(import.meta.dirname, '..');
  const CHILD = `
    import { promises as fsp } from 'node:fs';
    const { LocalKeyring } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/index.ts')).href)});
    const { saveKeyring } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/node.ts')).href)});
    const [file, mode, pauseAt] = process.argv.slice(2);
    const kr = new LocalKeyring();
    for (let i = 0; i < 200; i++) kr.createKey({ description: 'k'.repeat(200) });
    const hexes = kr.exportState().keys.map((k) => Buffer.from(k.versions[0].material).toString('hex'));
    process.stdout.write('MATERIAL ' + JSON.stringify(hexes) + '\\n');
    const options = { discardExistingKeys: true, ...(mode === 'sealed' ? { passphrase: 'pw', scrypt: { N: 2 ** 14, r: 8, p: 1 } } : { protection: 'none' }) };
    const rename = fsp.rename;
    let n = 0;
    fsp.rename = async (a, b) => {
      if (++n === Number(pauseAt)) {
        process.stdout.write('PAUSED ' + a + '\\n');
        await new Promise(() => {});
      }
      return rename.call(fsp, a, b);
    };
    process.stdout.write('READY\\n');
    for (;;) await saveKeyring(file, kr, options);
  `;

  /** Run the child until `until` appears on its stdout (or `ms` pass), then SIGKILL it. Returns its stdout. */
  async function killChild(sub: string, file: string, mode: 'plain' | 'sealed', pauseAt: number, ms?: number): Promise<string> {
    const script = path.join(sub, 'child.mts');
    await fs.writeFile(script, CHILD);
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=envelope-kit-source', script, file, mode, String(pauseAt)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (ms === undefined ? out.includes('PAUSED ') : out.includes('READY')) resolve();
      });
      child.on('exit', () => resolve());
    });
    if (ms !== undefined) await new Promise((r) => setTimeout(r, ms));
    child.kill('SIGKILL');
    await exited;
    return out;
  }

  const temps = async (sub: string) => (await filesIn(sub)).filter((f) => f.endsWith('.tmp'));

  for (const mode of ['plain', 'sealed'] as const) {
    it(`kill -9 during a save (${mode}) leaves a temporary file that the next load, or save, removes`, async () => {
      const sub = await fs.mkdtemp(path.join(dir, `kill-${mode}-`));
      const file = path.join(sub, 'k.json');
      const options = mode === 'sealed' ? { passphrase: 'pw', scrypt: FAST_SCRYPT } : NONE;
      for (const cleaner of ['load', 'save'] as const) {
        const out = await killChild(sub, file, mode, 2);
        const material = JSON.parse(out.split('\n').find((l) => l.startsWith('MATERIAL '))!.slice(9)) as string[];
        const left = await temps(sub);
        expect(left).toHaveLength(1);
        expect(left[0]).toMatch(/^\.k\.json\.[0-9]+\.[0-9a-f]{12}\.tmp$/);
        const tmp = path.join(sub, left[0]!);
        expect((await fs.stat(tmp)).mode & 0o777).toBe(0o600);
        const leftText = await fs.readFile(tmp, 'utf8');
        expect(JSON.parse(leftText).protection.kind).toBe(mode === 'sealed' ? 'scrypt' : 'none');
        if (mode === 'sealed') {
          // a protected keyring's temporary file is sealed too: no key in clear
          for (const h of material.slice(0, 20)) expectNoSecret(leftText, new Uint8Array(Buffer.from(h, 'hex')), 'temporary file');
        }
        if (cleaner === 'load') {
          expect((await loadKeyring(file, options)).listKeys()).toHaveLength(200);
        } else {
          // read without loadKeyring (which would clean up), then save: the save removes it
          await saveKeyring(file, await parseKeyring(await fs.readFile(file, 'utf8'), options), options);
        }
        expect(await temps(sub)).toEqual([]);
      }
    });
  }

  it('kill -9 at random moments of a save loop: whatever is left, the next load removes it and the file is whole', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'kill-random-'));
    const file = path.join(sub, 'k.json');
    for (let i = 0; i < 4; i++) {
      await killChild(sub, file, 'plain', 0, 100 + Math.floor(Math.random() * 300));
      if (await fs.stat(file).then(() => true, () => false)) {
        expect((await loadKeyring(file, NONE)).listKeys()).toHaveLength(200);
        expect(await temps(sub)).toEqual([]);
      }
    }
  });

  it('temporary files of a live writer, of other names and of other users are left alone', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'tmp-keep-'));
    const file = path.join(sub, 'k.json');
    await saveKeyring(file, richKeyring(), NONE);
    const keep = [
      `.k.json.${process.ppid}.0123456789ab.tmp`, // a live process (the parent)
      '.other.json.1.0123456789ab.tmp', // another file's
      '.k.json.1.0123456789ab.tmpx', // not our name
    ];
    for (const f of keep) await fs.writeFile(path.join(sub, f), 'x');
    const dead = `.k.json.${2 ** 22 + 12345}.0123456789ab.tmp`; // above any pid_max: no such process
    const legacy = '.k.json.0123456789ab.tmp'; // the older name, without a process id
    await fs.writeFile(path.join(sub, dead), 'x');
    await fs.writeFile(path.join(sub, legacy), 'x');
    await fs.utimes(path.join(sub, legacy), new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    await loadKeyring(file, NONE);
    expect(await filesIn(sub)).toEqual([...keep, 'k.json'].sort());
  });
});
