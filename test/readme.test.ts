/**
 * The README's TypeScript examples compile against the built package's types
 * (`npm test` builds dist/ before running vitest).
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const dir = path.join(root, 'test', '.readme-examples');
const run = promisify(execFile);

async function blocks(): Promise<string[]> {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

describe('README examples', () => {
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('every ts block type-checks against the published types', async () => {
    const list = await blocks();
    expect(list.length).toBeGreaterThanOrEqual(4);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const files: string[] = [];
    for (const [i, code] of list.entries()) {
      const f = `example-${i}.ts`;
      // Each block is a module of its own; `export {}` keeps top-level await legal in blocks without imports.
      await writeFile(path.join(dir, f), `${code}\nexport {};\n`);
      files.push(f);
    }
    await writeFile(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
          noUnusedLocals: false,
        },
        files,
      }),
    );
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], { cwd: dir }).then(
      () => '',
      (e: { stdout?: string }) => e.stdout ?? String(e),
    );
    expect(result).toBe('');
  });
});
