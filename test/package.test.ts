/**
 * The built package in dist/ (`npm test` runs tsup first): the core entry and
 * every chunk it loads import no `node:*` module; every entry exists with its
 * types; `import('envelope-kit')` and `require('envelope-kit')` work through the
 * package's own `exports` map, and envelopes cross between the builds.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const run = promisify(execFile);

const builtins = new Set(builtinModules.flatMap((m) => [m, m.split('/')[0]!]));
const isBuiltin = (spec: string) => spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]!);

/** Every module specifier a built file imports or requires (static, dynamic, re-export). */
function specifiers(code: string): string[] {
  const out: string[] = [];
  const patterns = [
    /(?<!["'`])\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]!);
  return out;
}

/** The file and every file it reaches through relative imports, with all their external specifiers. */
function graph(entry: string): { files: string[]; external: string[] } {
  const files = new Set<string>();
  const external = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
      else external.add(spec);
    }
  };
  visit(entry);
  return { files: [...files], external: [...external] };
}

/** Run an ES module snippet in a fresh Node process from the project root (so the package can name itself). */
async function node(code: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code, '--', ...args], { cwd: root, timeout: 20_000 });
  return stdout;
}

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(tmpdir(), 'ek-package-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('dist', () => {
  it('exists (npm test builds it with tsup before running vitest)', () => {
    expect(existsSync(path.join(dist, 'index.js')), 'run `npm run build` first').toBe(true);
  });

  it.each(['index.js', 'index.cjs'])('the core entry %s and every chunk it loads import no node:* module', (entry) => {
    const { files, external } = graph(path.join(dist, entry));
    expect(files.length).toBeGreaterThan(1); // the entry and its chunks
    expect(external.filter(isBuiltin)).toEqual([]);
    for (const f of files) expect(readFileSync(f, 'utf8')).not.toMatch(/["']node:[a-z_/]+["']/);
    // what it does import: the declared dependencies only
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const spec of external) {
      if (spec === '#aead-default') continue; // the package's own internal import, checked below
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      expect(Object.keys(pkg.dependencies), spec).toContain(name);
    }
  });

  it("the internal import #aead-default serves node:crypto under the node condition and @noble/ciphers elsewhere", () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { imports: Record<string, Record<string, Record<string, string>>> };
    const map = pkg.imports['#aead-default']!;
    expect(Object.keys(map)).toEqual(['envelope-kit-source', 'node', 'default']);
    for (const target of Object.values(map.default!)) {
      const g = graph(path.join(root, target));
      expect(g.external.filter(isBuiltin), target).toEqual([]);
      expect(g.external, target).toContain('@noble/ciphers/aes.js');
    }
    for (const target of Object.values(map.node!)) expect(graph(path.join(root, target)).external, target).toContain('node:crypto');
  });

  it.each(['index.js', 'index.cjs'])('%s never loads zod, statically or dynamically (the keyring file has a hand-written reader)', (entry) => {
    const { files, external } = graph(path.join(dist, entry));
    expect(files.length).toBeGreaterThan(1);
    expect(external).not.toContain('zod');
    expect(external.some((s) => s === 'zod' || s.startsWith('zod/'))).toBe(false);
  });

  it.each(['testing.js', 'testing.cjs'])('the testing entry %s is runtime-neutral and imports fast-check, an optional peer the core never loads', (entry) => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      peerDependencies: Record<string, string>;
      peerDependenciesMeta: Record<string, { optional?: boolean }>;
    };
    expect(pkg.peerDependenciesMeta['fast-check']?.optional).toBe(true);
    expect(Object.keys(pkg.dependencies)).not.toContain('fast-check');
    const { files, external } = graph(path.join(dist, entry));
    expect(external.filter(isBuiltin)).toEqual([]);
    for (const f of files) expect(readFileSync(f, 'utf8')).not.toMatch(/["']node:[a-z_/]+["']/);
    expect(external).toContain('fast-check');
    for (const spec of external) {
      if (spec === '#aead-default') continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      expect([...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)], spec).toContain(name);
    }
    expect(graph(path.join(dist, entry.replace('testing', 'index'))).external).not.toContain('fast-check');
  });

  it('envelope-kit/testing loads through the exports map, in both builds', async () => {
    const esm = await node("const t = await import('envelope-kit/testing'); console.log(typeof t.checkRecordEncryption, typeof t.recordArbitrary)");
    expect(esm.trim()).toBe('function function');
    const cjs = await node("import { createRequire } from 'node:module'; const t = createRequire(process.cwd() + '/x.cjs')('envelope-kit/testing'); console.log(typeof t.checkRecordEncryption)");
    expect(cjs.trim()).toBe('function');
  });

  it('the check above can fail: the Node-only entries do import node:* modules', () => {
    expect(graph(path.join(dist, 'node.js')).external.filter(isBuiltin)).toContain('node:crypto');
    expect(graph(path.join(dist, 'aead-default.node.cjs')).external.filter(isBuiltin)).toContain('node:crypto');
  });

  it('has ESM, CJS and type declarations for every entry', () => {
    for (const entry of ['index', 'node', 'alibaba', 'alibaba-emulator', 'testing', 'aead-default', 'aead-default.node']) {
      for (const ext of ['.js', '.cjs', '.d.ts', '.d.cts']) {
        expect(existsSync(path.join(dist, entry + ext)), entry + ext).toBe(true);
      }
    }
    const types = readFileSync(path.join(dist, 'index.d.ts'), 'utf8');
    for (const name of ['encrypt', 'decrypt', 'encryptText', 'decryptText', 'inspect', 'LocalKeyring', 'KeyProvider', 'EnvelopeKitError', 'ErrorCode']) {
      expect(types, name).toMatch(new RegExp(`\\b${name}\\b`));
    }
    expect(readFileSync(path.join(dist, 'node.d.ts'), 'utf8')).toMatch(/\bsaveKeyring\b[\s\S]*\bloadKeyring\b|\bloadKeyring\b[\s\S]*\bsaveKeyring\b/);
  });

  it('every file the exports map names exists', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      exports: unknown;
      imports: Record<string, Record<string, unknown>>;
      main: string;
      module: string;
      types: string;
      bin: Record<string, string>;
    };
    const targets: string[] = [pkg.main, pkg.module, pkg.types, ...Object.values(pkg.bin)];
    const walk = (v: unknown) => {
      if (typeof v === 'string') targets.push(v);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(pkg.exports);
    for (const entry of Object.values(pkg.imports)) walk({ ...entry, 'envelope-kit-source': undefined });
    expect(targets.length).toBeGreaterThan(10);
    for (const t of targets) expect(existsSync(path.join(root, t)), t).toBe(true);
  });
});

describe('packing', () => {
  it('npm pack of a clean checkout (no dist/) builds the package itself and ships it', async () => {
    // What a git dependency or `npm pack` sees: the tracked sources, no dist/.
    const clean = await fs.mkdtemp(path.join(tmpdir(), 'ek-clean-'));
    try {
      for (const f of ['package.json', 'tsconfig.json', 'tsup.config.ts', 'src', 'README.md', 'SPEC.md', 'LICENSE']) {
        await fs.cp(path.join(root, f), path.join(clean, f), { recursive: true });
      }
      await fs.symlink(path.join(root, 'node_modules'), path.join(clean, 'node_modules'), 'dir');
      expect(existsSync(path.join(clean, 'dist'))).toBe(false);
      const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
      const { stdout } = await run(npm, ['pack', '--dry-run', '--json'], { cwd: clean, timeout: 120_000 });
      const files = (JSON.parse(stdout.slice(stdout.indexOf('['))) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
      for (const f of ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/node.js', 'dist/aead-default.node.js', 'LICENSE']) expect(files, f).toContain(f);
    } finally {
      await fs.rm(clean, { recursive: true, force: true });
    }
  }, 180_000);

  it('the lockfile agrees with package.json, so `npm install` leaves it unchanged', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
    const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
    const self = lock.packages['']!;
    expect(self.name).toBe(pkg.name);
    expect(self.version).toBe(pkg.version);
    expect(self.license).toBe(pkg.license);
    expect(self.engines).toEqual(pkg.engines);
    for (const field of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']) expect(self[field], field).toEqual(pkg[field]);
    // npm records bin targets without the leading "./"
    const bin = Object.fromEntries(Object.entries((pkg.bin ?? {}) as Record<string, string>).map(([k, v]) => [k, v.replace(/^\.\//, '')]));
    expect(self.bin ?? {}).toEqual(bin);
  });

  it('builds on install and pack (prepare), ships the LICENSE package.json names, dist and the docs, and no sources', async () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { license: string; scripts: Record<string, string> };
    expect(pkg.scripts.prepare).toMatch(/^tsup\b/);
    // `npm test` builds before it type-checks, so a fresh clone needs no separate build step
    expect(pkg.scripts.test).toMatch(/^tsup\b[^&]*&& tsc --noEmit && vitest run$/);
    expect(pkg.license).toBe('Apache-2.0');
    const license = readFileSync(path.join(root, 'LICENSE'), 'utf8');
    expect(license).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const { stdout } = await run(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, timeout: 60_000 });
    const files = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    for (const f of ['LICENSE', 'README.md', 'SPEC.md', 'package.json', 'dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/node.js', 'dist/aead-default.js', 'dist/aead-default.node.js']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => /^(src|test|bench|examples)\//.test(f) || f.endsWith('.keyring.json'))).toEqual([]);
  });
});

describe('the package, as a consumer loads it', () => {
  it('import("envelope-kit") resolves to the package entry on the node:crypto backend and round-trips; envelope-kit/node saves a keyring', async () => {
    const file = path.join(tmp, 'esm.keyring.json');
    const out = await node(
      `
      const ek = await import('envelope-kit');
      const { saveKeyring } = await import('envelope-kit/node');
      const kr = new ek.LocalKeyring();
      kr.createKey({ alias: 'alias/pkg' });
      const text = await ek.encryptText(new TextEncoder().encode('from esm'), { provider: kr, keyId: 'alias/pkg', encryptionContext: { via: 'esm' } });
      const back = await ek.decryptText(text, { provider: kr, encryptionContext: { via: 'esm' } });
      await saveKeyring(process.argv[1], kr, { protection: 'none' });
      console.log(JSON.stringify({
        resolved: import.meta.resolve('envelope-kit'),
        backend: (await import('#aead-default')).defaultAesGcm.name,
        plaintext: new TextDecoder().decode(back.plaintext),
        text,
        isError: new ek.DecryptionFailedError() instanceof ek.EnvelopeKitError,
      }));
      `,
      file,
    );
    const r = JSON.parse(out) as { resolved: string; backend: string; plaintext: string; text: string; isError: boolean };
    expect(r.resolved).toBe(pathToFileURL(path.join(dist, 'index.js')).href);
    expect(r.backend).toBe('node');
    expect(r.plaintext).toBe('from esm');
    expect(r.text).toMatch(/^ek1\./);
    expect(r.isError).toBe(true);

    // the CJS build reads what the ESM build wrote: same format, same keyring file
    const require = createRequire(path.join(root, 'package.json'));
    expect(require.resolve('envelope-kit')).toBe(path.join(dist, 'index.cjs'));
    const ek = require('envelope-kit') as typeof import('../src/index.js');
    const { loadKeyring } = require('envelope-kit/node') as typeof import('../src/node.js');
    const kr = await loadKeyring(file, { protection: 'none' });
    const back = await ek.decryptText(r.text, { provider: kr, encryptionContext: { via: 'esm' } });
    expect(new TextDecoder().decode(back.plaintext)).toBe('from esm');
  });

  it('require("envelope-kit") round-trips, with typed errors', async () => {
    const require = createRequire(path.join(root, 'package.json'));
    const ek = require('envelope-kit') as typeof import('../src/index.js');
    const kr = new ek.LocalKeyring();
    const { keyId } = kr.createKey();
    const env = await ek.encrypt(new TextEncoder().encode('from cjs'), { provider: kr, keyId });
    expect(new TextDecoder().decode((await ek.decrypt(env, { provider: kr })).plaintext)).toBe('from cjs');
    env[env.length - 1]! ^= 1;
    const e = await ek.decrypt(env, { provider: kr }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ek.DecryptionFailedError);
    expect((e as { code: string }).code).toBe('ERR_DECRYPTION_FAILED');
  });

  it('error classes keep their names and codes in a minified bundle', async () => {
    const esbuild = await import('esbuild');
    const out = path.join(tmp, 'minified.mjs');
    await esbuild.build({
      stdin: { contents: "export * from 'envelope-kit'; export { AlibabaKmsError } from 'envelope-kit/alibaba';", resolveDir: root },
      bundle: true,
      minify: true,
      platform: 'browser',
      format: 'esm',
      outfile: out,
      logLevel: 'silent',
    });
    const got = await node(
      `
      const ek = await import(process.argv[1]);
      const names = Object.entries(ek).filter(([k, v]) => typeof v === 'function' && /Error$/.test(k) && v.prototype instanceof Error);
      const out = {};
      for (const [k, C] of names) {
        let e;
        for (const args of [['m'], [[]], ['version', 1], ['$', 'reason'], ['ERR', 'm', 400]]) {
          try { e = new C(...args); break; } catch {}
        }
        out[k] = e ? [e.name, e instanceof ek.EnvelopeKitError] : ['not constructed', false];
      }
      console.log(JSON.stringify(out));
      `,
      pathToFileURL(out).href,
    );
    const names = JSON.parse(got) as Record<string, [string, boolean]>;
    expect(Object.keys(names).length).toBeGreaterThanOrEqual(15);
    for (const [exported, [name, isOurs]] of Object.entries(names)) {
      expect(isOurs, exported).toBe(true);
      if (exported !== 'EnvelopeKitError') expect(name, exported).toBe(exported);
    }
  });

  it('a browser bundle of the package gets @noble/ciphers with WebCrypto (the webcrypto backend), imports no node:* module, and reads the Node build\u2019s envelopes', async () => {
    const esbuild = await import('esbuild');
    const out = path.join(tmp, 'browser.mjs');
    const result = await esbuild.build({
      stdin: { contents: "export * from 'envelope-kit'; export { defaultAesGcm } from '#aead-default';", resolveDir: root },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      outfile: out,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs).toContain('dist/aead-default.js');
    expect(inputs.some((i) => i.includes('aead-default.node'))).toBe(false);
    expect(readFileSync(out, 'utf8')).not.toMatch(/["']node:[a-z_/]+["']/);
    const got = await node(
      `
      const browser = await import(process.argv[1]);
      const nodeBuild = await import('envelope-kit');
      const kr = new browser.LocalKeyring();
      const { keyId } = kr.createKey();
      const a = await browser.encrypt(new TextEncoder().encode('portable'), { provider: kr, keyId });
      const b = await nodeBuild.encrypt(new TextEncoder().encode('node'), { provider: kr, keyId });
      const ra = await nodeBuild.decrypt(a, { provider: kr });
      const rb = await browser.decrypt(b, { provider: kr });
      console.log([new TextDecoder().decode(ra.plaintext), new TextDecoder().decode(rb.plaintext), browser.inspect(a).formatVersion, browser.defaultAesGcm.name].join(','));
      `,
      pathToFileURL(out).href,
    );
    expect(got.trim()).toBe('portable,node,1,webcrypto');
  });
});
