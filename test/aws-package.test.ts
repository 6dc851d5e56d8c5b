/**
 * The built `envelope-kit/aws` entry (dist/, made by `npm test`'s tsup step): it and every chunk it
 * loads import no `node:*` module and no AWS SDK; it loads through the package's exports map in
 * both builds; the emulator entry and its command exist.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const builtins = new Set(builtinModules.flatMap((m) => [m, m.split('/')[0]!]));
const isBuiltin = (spec: string) => spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]!);

function graph(entry: string): { files: string[]; external: string[] } {
  const files = new Set<string>();
  const external = new Set<string>();
  const patterns = [/\bfrom\s*["']([^"']+)["']/g, /\bimport\s*["']([^"']+)["']/g, /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g, /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g];
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const code = readFileSync(file, 'utf8');
    for (const re of patterns) {
      for (const m of code.matchAll(re)) {
        const spec = m[1]!;
        if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
        else external.add(spec);
      }
    }
  };
  visit(entry);
  return { files: [...files], external: [...external] };
}

describe('dist: envelope-kit/aws', () => {
  it.each(['aws.js', 'aws.cjs'])('%s and its chunks import no node:* module and no AWS SDK', (entry) => {
    const { files, external } = graph(path.join(dist, entry));
    expect(external.filter(isBuiltin)).toEqual([]);
    for (const f of files) expect(readFileSync(f, 'utf8')).not.toMatch(/["']node:[a-z_/]+["']/);
    expect(external.filter((s) => s.startsWith('@aws-sdk') || s.startsWith('@smithy'))).toEqual([]);
    for (const spec of external) expect(['@noble/hashes', 'zod', '@noble/ciphers', '#aead-default'].some((d) => spec === d || spec.startsWith(d + '/')), spec).toBe(true);
  });

  it('the check above can fail: the emulator entry does import node:http', () => {
    expect(graph(path.join(dist, 'aws-emulator.js')).external).toContain('node:http');
  });

  it('has ESM, CJS and declarations for both entries, and the command', () => {
    for (const entry of ['aws', 'aws-emulator']) for (const ext of ['.js', '.cjs', '.d.ts', '.d.cts']) expect(existsSync(path.join(dist, entry + ext)), entry + ext).toBe(true);
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(readFileSync(path.join(root, pkg.bin['envelope-kit-aws-emulator']!), 'utf8')).toMatch(/^#!\/usr\/bin\/env node/);
  });

  it('loads through the exports map (ESM and CJS) and the command prints its usage', async () => {
    const esm = await run(process.execPath, ['--input-type=module', '-e', "const m = await import('envelope-kit/aws'); const e = await import('envelope-kit/aws-emulator'); console.log(typeof m.AwsKmsProvider, typeof e.startAwsKmsEmulator)"], { cwd: root });
    expect(esm.stdout.trim()).toBe('function function');
    const cjs = await run(process.execPath, ['-e', "const m = require('envelope-kit/aws'); console.log(new m.AwsKmsProvider({ region: 'eu-west-1', credentials: { accessKeyId: 'A', secretAccessKey: 'S' } }).endpoint)"], { cwd: root });
    expect(cjs.stdout.trim()).toBe('https://kms.eu-west-1.amazonaws.com/');
    const help = await run(process.execPath, [path.join(dist, 'aws-emulator-cli.js'), '--help'], { cwd: root });
    expect(help.stdout).toContain('usage: envelope-kit-aws-emulator');
  });
});
