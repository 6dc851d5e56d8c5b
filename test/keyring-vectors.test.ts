/**
 * Local keyring vectors (SPEC.md §6, §7, §10.4): every file in
 * test/vectors/keyring/*.txt is run through the library (the keyring's
 * `decrypt` with both AES-GCM backends, `parseKeyring`) and must give the
 * result it names; success vectors are also recomputed from SPEC.md with
 * node:crypto alone (the XAES-256-GCM derivation, the scrypt file key). The
 * committed files must be exactly what the generator writes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gcmOpen, xaesDerive as specXaes } from './spec-crypto.js';
import { nobleAesGcm } from '../src/core/aead/noble.js';
import { nodeAesGcm } from '../src/core/aead/node.js';
import { LocalKeyring } from '../src/providers/local/keyring.js';
import { parseKeyring } from '../src/providers/local/file-format.js';
import { xaesDerive, xaesOpen } from '../src/providers/local/xaes.js';
import { specFileKey } from './keyring-file-spec.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIR = path.join(ROOT, 'test', 'vectors', 'keyring');

type Vector = ReadonlyMap<string, string> & { file: string };

function parse(file: string): Vector {
  const m = new Map<string, string>() as Map<string, string> & { file: string };
  m.file = file;
  for (const line of readFileSync(path.join(DIR, file), 'utf8').split('\n')) {
    if (line === '') continue;
    const i = line.indexOf(': ');
    if (i <= 0) throw new Error(`${file}: not a "key: value" line`);
    if (m.has(line.slice(0, i))) throw new Error(`${file}: duplicate field`);
    m.set(line.slice(0, i), line.slice(i + 2));
  }
  return m;
}
const files = readdirSync(DIR).filter((f) => f.endsWith('.txt')).sort();
const vectors = files.map(parse);
const field = (v: Vector, k: string): string => {
  const x = v.get(k);
  if (x === undefined) throw new Error(`${v.file}: missing ${k}`);
  return x;
};
const bytes = (v: Vector, k: string) => new Uint8Array(Buffer.from(field(v, k), 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const of = (kind: string) => vectors.filter((v) => field(v, 'kind') === kind).map((v) => [v.file, v] as const);

async function codeOf(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'success';
  } catch (e) {
    return (e as { code?: string }).code ?? `foreign error: ${String(e)}`;
  }
}

describe('keyring vector files', () => {
  it('exist, each well-formed, with failures of every kind', () => {
    expect(of('xaes').length).toBe(2);
    expect(of('blob').length).toBeGreaterThan(20);
    expect(of('keyring file').length).toBeGreaterThan(20);
    for (const v of vectors) {
      expect(field(v, 'name') + '.txt').toBe(v.file);
      expect(['xaes', 'blob', 'keyring file']).toContain(field(v, 'kind'));
      expect(field(v, 'expect')).toMatch(/^(success|ERR_[A-Z_]+)$/);
    }
  });

  it('are exactly what the generator writes', () => {
    const out = mkdtempSync(path.join(tmpdir(), 'envelope-kit-keyring-vectors-'));
    try {
      execFileSync(process.execPath, ['--import', 'tsx', '--conditions=envelope-kit-source', path.join(DIR, 'generate.ts'), out], { cwd: ROOT, stdio: 'pipe' });
      const again = readdirSync(out).filter((f) => f.endsWith('.txt')).sort();
      expect(again).toEqual(files);
      for (const f of again) expect(readFileSync(path.join(out, f), 'utf8'), f).toBe(readFileSync(path.join(DIR, f), 'utf8'));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('XAES-256-GCM vectors (C2SP)', () => {
  it.each(of('xaes'))('%s', (_f, v) => {
    const key = bytes(v, 'key');
    const nonce = bytes(v, 'nonce');
    for (const aead of [nobleAesGcm, nodeAesGcm]) {
      const d = xaesDerive(aead, key, nonce);
      expect([hex(d.L), hex(d.K1), hex(d.Kx), hex(d.Nx)]).toEqual([field(v, 'L'), field(v, 'K1'), field(v, 'Kx'), field(v, 'Nx')]);
      const out = new Uint8Array(bytes(v, 'plaintext').length);
      expect(xaesOpen(aead, key, nonce, bytes(v, 'aad'), bytes(v, 'ciphertext'), out)).toBe(true);
      expect(hex(out)).toBe(field(v, 'plaintext'));
    }
    const s = specXaes(key, nonce);
    expect([hex(s.L), hex(s.K1), hex(s.Kx), hex(s.Nx)]).toEqual([field(v, 'L'), field(v, 'K1'), field(v, 'Kx'), field(v, 'Nx')]);
    expect(hex(bytes(v, 'M1'))).toBe(`00015800${hex(nonce.subarray(0, 12))}`);
    expect(hex(bytes(v, 'M2'))).toBe(`00025800${hex(nonce.subarray(0, 12))}`);
  });
});

describe('local blob vectors (SPEC.md §6)', () => {
  it.each(of('blob'))('%s', async (_f, v) => {
    const state = {
      keys: [
        {
          keyId: field(v, 'key id'),
          state: field(v, 'key state') as 'Enabled' | 'Disabled',
          description: '',
          createdAt: '2025-01-01T00:00:00.000Z',
          versions: [{ version: Number(field(v, 'key version')), createdAt: '2025-01-01T00:00:00.000Z', material: bytes(v, 'master key') }],
        },
      ],
      aliases: {},
    };
    const request = { ciphertextBlob: bytes(v, 'blob'), encryptionContext: JSON.parse(field(v, 'encryption context')) as Record<string, string> };
    for (const aead of [nobleAesGcm, nodeAesGcm]) {
      const kr = LocalKeyring.fromState(state, { aead });
      if (field(v, 'expect') === 'success') {
        const r = await kr.decrypt(request);
        expect(hex(r.plaintext)).toBe(field(v, 'data key'));
        expect(r.keyId).toBe(field(v, 'key id'));
      } else {
        expect(await codeOf(() => kr.decrypt(request))).toBe(field(v, 'expect'));
      }
    }
    // The listed derivation is SPEC.md's, recomputed with node:crypto alone.
    const s = specXaes(bytes(v, 'master key'), bytes(v, 'nonce'));
    expect([hex(s.L), hex(s.K1), hex(s.Kx), hex(s.Nx)]).toEqual([field(v, 'L'), field(v, 'K1'), field(v, 'Kx'), field(v, 'Nx')]);
    if (field(v, 'expect') === 'success') {
      const blob = bytes(v, 'blob');
      const aad = bytes(v, 'blob aad');
      const prefixLength = blob.length - 24 - bytes(v, 'data key').length - 16;
      expect(hex(blob.subarray(0, prefixLength))).toBe(hex(aad.subarray(0, prefixLength)));
      expect(hex(blob.subarray(prefixLength, prefixLength + 24))).toBe(field(v, 'nonce'));
      expect(hex(gcmOpen(s.Kx, s.Nx, aad, blob.subarray(prefixLength + 24)) ?? new Uint8Array())).toBe(field(v, 'data key'));
    }
  });
});

describe('keyring file vectors (SPEC.md §7)', () => {
  it.each(of('keyring file'))('%s', async (_f, v) => {
    const options = JSON.parse(field(v, 'options')) as Record<string, unknown>;
    const text = field(v, 'file');
    if (field(v, 'expect') !== 'success') {
      expect(await codeOf(() => parseKeyring(text, options))).toBe(field(v, 'expect'));
      return;
    }
    const kr = await parseKeyring(text, options);
    const state = kr.exportState();
    expect(hex(Buffer.concat(state.keys.flatMap((k) => k.versions.map((x) => x.material))))).toBe(field(v, 'material'));
    const json = JSON.parse(text);
    expect(state.keys.map((k) => k.keyId)).toEqual(json.keys.map((k: { keyId: string }) => k.keyId));
    expect(kr.generation).toBe(json.generation);
    if (json.protection.kind === 'scrypt') {
      // SPEC.md §7 by hand: scrypt file key, then AES-256-GCM with the canonical metadata as AAD.
      const p = json.protection;
      const key = specFileKey(String(options.passphrase), Buffer.from(p.salt, 'base64'), p.N, p.r, p.p);
      expect(hex(key)).toBe(field(v, 'file key'));
      const opened = gcmOpen(key, Buffer.from(p.nonce, 'base64'), Buffer.from(field(v, 'meta'), 'utf8'), Buffer.from(json.material, 'base64'));
      expect(opened && hex(opened)).toBe(field(v, 'material'));
    }
  });
});
