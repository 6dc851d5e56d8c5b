/**
 * Bundle sizes (bench/bundles.ts): each bundle an app gets from the built
 * package stays within 10% of the gzip size recorded in
 * `bench/bundle-sizes.json` (`npm run bench:bundle -- --record` records them).
 * Needs `dist/` (`npm test` builds it first).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALLOWED_GROWTH, BUNDLES, ROOT, measureBundle, presentBundles, readRecorded } from '../bench/bundles.js';

const recorded = readRecorded();

describe('bundle sizes', () => {
  it('has a built package to measure', () => {
    expect(existsSync(join(ROOT, 'dist', 'index.js')), 'dist/ is missing: run `npx tsup` first').toBe(true);
  });

  it('records a figure for every bundle the package exports, and only for known bundles', () => {
    expect(Object.keys(recorded.bundles).sort()).toEqual(presentBundles().map((b) => b.name).sort());
    for (const name of Object.keys(recorded.bundles)) expect(BUNDLES.some((b) => b.name === name)).toBe(true);
  });

  for (const entry of presentBundles()) {
    it(`${entry.name}: at most ${ALLOWED_GROWTH * 100}% over its recorded gzip size`, async () => {
      const rec = recorded.bundles[entry.name];
      expect(rec, `no recorded size for "${entry.name}": run npm run bench:bundle -- --record`).toBeDefined();
      const size = await measureBundle(entry);
      expect(size.minified).toBeGreaterThan(0);
      expect(size.gzip, `${entry.name}: ${size.gzip} bytes gzipped, recorded ${rec!.gzip}`).toBeLessThanOrEqual(Math.floor(rec!.gzip * (1 + ALLOWED_GROWTH)));
    });
  }

  for (const entry of presentBundles().filter((b) => b.subpath === '.')) {
    it(`${entry.name}: holds no zod (schemas are the caller's, passed in)`, async () => {
      const { build } = await import('esbuild');
      const r = await build({
        stdin: { contents: `export { ${entry.imports.join(', ')} } from 'envelope-kit';`, resolveDir: ROOT, loader: 'js' },
        bundle: true,
        platform: 'browser',
        format: 'esm',
        write: false,
        metafile: true,
        logLevel: 'silent',
      });
      const inputs = Object.keys(r.metafile.inputs);
      expect(inputs.some((p) => p.includes('node_modules/zod/'))).toBe(false);
      expect(inputs.some((p) => p.includes('dist/'))).toBe(true);
    });
  }
});
