/**
 * The bundles whose size envelope-kit watches: each a few named imports from
 * the built package (`dist/`, through the package's own exports, as an app
 * would import it), bundled with esbuild for the browser
 * (`--bundle --minify --platform=browser`) and measured minified and gzipped
 * (level 9). `bench/bundle.ts` records the figures in `bench/bundle-sizes.json`
 * and `bench/RESULTS.md`; `test/bundle-size.test.ts` fails when one grows more
 * than 10% over its recorded figure. A new entry is one line of {@link BUNDLES}.
 * @module
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

/** The package root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The recorded sizes the test holds the bundles to. */
export const SIZES_FILE = join(ROOT, 'bench', 'bundle-sizes.json');
/** How much a bundle may grow over its recorded gzip size before the test fails. */
export const ALLOWED_GROWTH = 0.1;

/** One bundle: what it imports, from which subpath, and the budget it must keep (gzip bytes). */
export interface BundleEntry {
  readonly name: string;
  /** Package subpath, `'.'` for the core. An entry whose subpath the package does not export is skipped. */
  readonly subpath: string;
  /** The named imports; the bundle re-exports them, so nothing is shaken off. */
  readonly imports: readonly string[];
  /** Target, in gzip bytes (1 KB = 1000 bytes), where there is one. */
  readonly budget?: number;
}

const KB = 1000;

/**
 * Every watched bundle; an entry whose subpath the package does not export (yet) is skipped.
 * Node-only entry points (`./node`, `./pkcs11`, the emulators, the CLI) have no browser bundle.
 */
export const BUNDLES: readonly BundleEntry[] = [
  { name: 'core encrypt/decrypt', subpath: '.', imports: ['encrypt', 'decrypt'], budget: 14 * KB },
  { name: 'fields', subpath: '.', imports: ['encryptFields', 'decryptFields'] },
  {
    name: 'fields + blind index + objects',
    subpath: '.',
    imports: ['encryptFields', 'decryptFields', 'createBlindIndexKey', 'openBlindIndex', 'encryptObject', 'decryptObject'],
  },
  { name: 'keyring-file parsing', subpath: '.', imports: ['parseKeyring'], budget: 25 * KB },
  { name: 'provider: alibaba', subpath: './alibaba', imports: ['AlibabaKmsProvider'], budget: 25 * KB },
  { name: 'provider: aws', subpath: './aws', imports: ['AwsKmsProvider'], budget: 25 * KB },
];

/** One measured bundle. */
export interface BundleSize {
  readonly name: string;
  readonly minified: number;
  readonly gzip: number;
  readonly budget: number | undefined;
}

/** The subpaths package.json exports. */
function exportedSubpaths(): Set<string> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  return new Set(Object.keys(pkg.exports));
}

/** The entries the package exports today. */
export function presentBundles(): BundleEntry[] {
  const subpaths = exportedSubpaths();
  return BUNDLES.filter((b) => subpaths.has(b.subpath));
}

/** Bundle one entry (from `dist/`, which must be built) and measure it. */
export async function measureBundle(entry: BundleEntry): Promise<BundleSize> {
  const specifier = entry.subpath === '.' ? 'envelope-kit' : `envelope-kit/${entry.subpath.slice(2)}`;
  const result = await build({
    stdin: { contents: `export { ${entry.imports.join(', ')} } from '${specifier}';\n`, resolveDir: ROOT, loader: 'js' },
    bundle: true,
    minify: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0]!.contents;
  return { name: entry.name, minified: code.length, gzip: gzipSync(code, { level: 9 }).length, budget: entry.budget };
}

/** The recorded figures: minified and gzip bytes by bundle name. */
export interface RecordedSizes {
  readonly note: string;
  readonly esbuild: string;
  readonly bundles: Record<string, { readonly minified: number; readonly gzip: number }>;
}

/** Read `bench/bundle-sizes.json`. */
export function readRecorded(): RecordedSizes {
  return JSON.parse(readFileSync(SIZES_FILE, 'utf8')) as RecordedSizes;
}
