/**
 * The packed package passes `publint --strict` and `@arethetypeswrong/cli`
 * (every entry resolves with its types under node10, node16 from CommonJS and
 * from ESM, and bundler resolution). Runs on the tarball `npm pack` makes of the
 * built package (`npm test` builds dist/ first), packed with `--ignore-scripts`
 * so that packing does not rebuild dist/ under the other suites.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name: string) => path.join(root, 'node_modules', '.bin', name);

let tmp: string;
let tarball: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'ek-pack-'));
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  await run(npm, ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp], { cwd: root, timeout: 60_000 });
  const file = (await readdir(tmp)).find((f) => f.endsWith('.tgz'));
  if (!file) throw new Error('npm pack made no tarball');
  tarball = path.join(tmp, file);
  await run('tar', ['-xzf', tarball, '-C', tmp], { timeout: 60_000 });
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('package lint', () => {
  it('publint --strict finds nothing', async () => {
    const { stdout } = await run(bin('publint'), ['--strict', '--pack', 'false', path.join(tmp, 'package')], { cwd: root, timeout: 60_000 });
    expect(stdout).toMatch(/All good!/);
  });

  it('attw: every entry resolves with its types under every resolution mode, node10 included', async () => {
    let out: string;
    try {
      ({ stdout: out } = await run(bin('attw'), [tarball, '--format', 'json'], { cwd: root, timeout: 120_000, maxBuffer: 64 * 2 ** 20 }));
    } catch (e) {
      // attw exits 1 when it finds a problem: show them.
      const stdout = (e as { stdout?: string }).stdout ?? '';
      const problems = (() => {
        try {
          return JSON.stringify((JSON.parse(stdout) as { analysis?: { problems?: unknown } }).analysis?.problems).slice(0, 4000);
        } catch {
          return stdout.slice(0, 4000);
        }
      })();
      throw new Error(`attw found problems: ${problems}`, { cause: e });
    }
    const report = JSON.parse(out) as { analysis: { problems: unknown[]; entrypoints: Record<string, { resolutions: Record<string, unknown> }> } };
    expect(report.analysis.problems).toEqual([]);
    // Every subpath of the exports map was checked, under the four modes.
    const pkg = JSON.parse(await readFile(path.join(tmp, 'package', 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    const entries = Object.keys(report.analysis.entrypoints);
    for (const subpath of Object.keys(pkg.exports)) expect(entries).toContain(subpath);
    for (const e of Object.values(report.analysis.entrypoints)) {
      expect(Object.keys(e.resolutions).sort()).toEqual(['bundler', 'node10', 'node16-cjs', 'node16-esm']);
    }
  });

  it('typesVersions names every subpath the exports map has (node10 resolution)', async () => {
    const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
      exports: Record<string, unknown>;
      typesVersions: Record<string, Record<string, string[]>>;
    };
    const mapped = Object.keys(pkg.typesVersions['*'] ?? {}).sort();
    const subpaths = Object.keys(pkg.exports)
      .filter((s) => s !== '.' && s !== './package.json')
      .map((s) => s.slice(2))
      .sort();
    expect(mapped).toEqual(subpaths);
  });
});
