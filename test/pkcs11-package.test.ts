/**
 * The built `envelope-kit/pkcs11` entry (`npm test` builds dist/ first): no other entry point, nor
 * any chunk they load, names `pkcs11js`; the PKCS#11 entry imports it only dynamically, on first use;
 * both the ESM and the CJS builds load it through the package's own exports map.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const run = promisify(execFile);

describe('envelope-kit/pkcs11 in dist', () => {
  it('only the pkcs11 entry mentions pkcs11js, and never in a static import or require', () => {
    const files = readdirSync(dist).filter((f) => /\.(c?js)$/.test(f));
    expect(files).toContain('pkcs11.js');
    for (const f of files) {
      const code = readFileSync(path.join(dist, f), 'utf8');
      if (f === 'pkcs11.js' || f === 'pkcs11.cjs') {
        expect(code).not.toMatch(/\bfrom\s*["']pkcs11js["']|\brequire\(\s*["']pkcs11js["']\s*\)|\bimport\s*\(\s*["']pkcs11js["']\s*\)/);
        expect(code).toMatch(/await import\(specifier\)/);
      } else {
        expect(code, f).not.toContain('pkcs11js');
      }
    }
  });

  it.each([
    ['ESM', ['--input-type=module', '-e', "const m = await import('envelope-kit/pkcs11'); const b = await m.loadPkcs11Binding(); console.log(typeof b.PKCS11, typeof m.Pkcs11Provider)"]],
    ['CJS', ['-e', "const m = require('envelope-kit/pkcs11'); m.loadPkcs11Binding().then((b) => console.log(typeof b.PKCS11, typeof m.Pkcs11Provider))"]],
  ])('the %s build loads the binding on demand', async (_, args) => {
    const { stdout } = await run(process.execPath, args, { cwd: root, timeout: 20_000 });
    expect(stdout.trim()).toBe('function function');
  });
});
