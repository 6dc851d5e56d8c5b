/**
 * `npm run bench:bundle`: the size of the bundles an app gets from envelope-kit
 * (see `bench/bundles.ts`), and the package's import time on Node against an
 * empty process and the AWS Encryption SDK, written to the section
 * "Bundle size and import time" of `bench/RESULTS.md` (the rest of the file is
 * left as it is). Runs against the built package (`dist/`), which the npm script
 * builds first.
 *
 * Flags: `--record` also writes the measured sizes to `bench/bundle-sizes.json`,
 * the figures `test/bundle-size.test.ts` holds the bundles to (at most 10% more);
 * `--runs <n>` import-time runs per variant (default 30); `--out <file>`.
 * @module
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { version as esbuildVersion } from 'esbuild';
import { ALLOWED_GROWTH, type BundleSize, BUNDLES, ROOT, SIZES_FILE, measureBundle, presentBundles, readRecorded } from './bundles.js';
import { machine } from './lib.js';

const args = process.argv.slice(2);
const RECORD = args.includes('--record');
const RUNS = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 30;
const OUT = args.includes('--out') ? resolve(args[args.indexOf('--out') + 1]!) : join(ROOT, 'bench', 'RESULTS.md');
const HEADING = '## Bundle size and import time (bench/bundle.ts)';
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');

const kb = (n: number): string => `${(n / 1000).toFixed(1)} KB`;

// ---------------------------------------------------------------- bundle sizes

const loadBefore = load();
const sizes: BundleSize[] = [];
for (const entry of presentBundles()) sizes.push(await measureBundle(entry));
const absent = BUNDLES.filter((b) => !presentBundles().includes(b)).map((b) => b.subpath);

if (RECORD) {
  const bundles: Record<string, { minified: number; gzip: number }> = {};
  for (const s of sizes) bundles[s.name] = { minified: s.minified, gzip: s.gzip };
  const note = 'Recorded by `npm run bench:bundle -- --record`; test/bundle-size.test.ts fails when a bundle grows more than 10% over these gzip sizes.';
  writeFileSync(SIZES_FILE, JSON.stringify({ note, esbuild: esbuildVersion, bundles }, null, 2) + '\n');
}
const recorded = existsSync(SIZES_FILE) ? readRecorded() : undefined;

// ---------------------------------------------------------------- import time

interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}
const spread = (xs: number[]): Spread => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return { median: m, min: s[0]!, max: s[s.length - 1]! };
};

const VARIANTS = [
  { name: 'empty process', code: '' },
  { name: 'envelope-kit (ESM)', code: "await import('envelope-kit')" },
  { name: 'envelope-kit (CommonJS)', code: "(await import('node:module')).createRequire(process.cwd() + '/')('envelope-kit')" },
  { name: '@aws-crypto/client-node', code: "await import('@aws-crypto/client-node')" },
] as const;

const env = { ...process.env };
delete env.NODE_OPTIONS;
const times: number[][] = VARIANTS.map(() => []);
/** CPU time (user + system) of each child: far less moved by the machine's load than wall time. */
const cpu: number[][] = VARIANTS.map(() => []);
const CPU_PRINT = ";{const u=process.cpuUsage();process.stdout.write(String((u.user+u.system)/1000))}";
const loadImportStart = load();
for (let r = -3; r < RUNS; r++) {
  for (let k = 0; k < VARIANTS.length; k++) {
    // Interleaved, in a rotating order, so that a burst of load falls on every variant alike.
    const i = (r + 3 + k) % VARIANTS.length;
    const t0 = performance.now();
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', VARIANTS[i]!.code + CPU_PRINT], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const ms = performance.now() - t0;
    const cpuMs = Number(String(res.stdout));
    if (res.status !== 0 || !Number.isFinite(cpuMs)) throw new Error(`import of ${VARIANTS[i]!.name} failed: ${res.stderr}`);
    if (r >= 0) {
      times[i]!.push(ms);
      cpu[i]!.push(cpuMs);
    }
  }
}
const loadImportEnd = load();
const empty = spread(times[0]!);
const emptyCpu = spread(cpu[0]!);
const rows = VARIANTS.map((v, i) => ({
  name: v.name,
  total: spread(times[i]!),
  over: spread(times[i]!.map((t) => t - empty.median)),
  cpu: spread(cpu[i]!),
  cpuOver: spread(cpu[i]!.map((t) => t - emptyCpu.median)),
}));
const ek = rows[1]!.over.median;
const aws = rows[3]!.over.median;
const ekCpu = rows[1]!.cpuOver.median;
const awsCpu = rows[3]!.cpuOver.median;

// ---------------------------------------------------------------- report

const m = machine();
const lines: string[] = [HEADING, ''];
lines.push(
  `Measured ${new Date().toISOString().slice(0, 10)} on ${m.cpu} (${m.cores} cores), Node ${m.node}, esbuild ${esbuildVersion}. ` +
    `Load average (1, 5, 15 min): ${loadBefore} before, ${loadImportStart} when the import runs began, ${loadImportEnd} after.`,
  '',
  '### Bundles',
  '',
  'Named imports from the built package, bundled with `esbuild --bundle --minify --platform=browser` (ESM), gzipped at level 9 (1 KB = 1000 bytes). ' +
    `The recorded figure is \`bench/bundle-sizes.json\`; \`test/bundle-size.test.ts\` fails when a bundle is more than ${ALLOWED_GROWTH * 100}% over it.`,
  '',
  '| bundle | imports | minified | gzip | target | recorded gzip |',
  '| --- | --- | --- | --- | --- | --- |',
);
for (const s of sizes) {
  const entry = BUNDLES.find((b) => b.name === s.name)!;
  const target = s.budget === undefined ? '' : `≤ ${kb(s.budget)} ${s.gzip <= s.budget ? '(met)' : '(**not met**)'}`;
  const rec = recorded?.bundles[s.name];
  lines.push(`| ${s.name} | ${entry.imports.map((x) => `\`${x}\``).join(', ')} | ${kb(s.minified)} | ${kb(s.gzip)} | ${target} | ${rec ? kb(rec.gzip) : 'none'} |`);
}
if (absent.length > 0) lines.push('', `Not measured (the package does not export these subpaths yet): ${absent.map((a) => `\`${a}\``).join(', ')}.`);
const f = (x: number): string => x.toFixed(1);
lines.push(
  '',
  '### Import time on Node',
  '',
  `Wall time of \`node --input-type=module -e "<import>"\` in a fresh process, ${RUNS} interleaved runs per variant after 3 warm-up rounds; ` +
    'median and range (min to max). "Over empty" subtracts the median of the empty process. envelope-kit is the built package through its `node` condition, ' +
    'where the AES-GCM backend is `node:crypto` and @noble/ciphers is loaded only if `nobleAesGcm` is used.',
  '',
  'The CPU columns are the child\'s own user + system CPU time (`process.cpuUsage()` at its end), which the load of a shared machine moves far less than wall time.',
  '',
  '| variant | wall median (ms) | wall range (ms) | wall over empty, median (ms) | CPU median (ms) | CPU range (ms) | CPU over empty, median (ms) |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r, i) =>
      `| ${r.name} | ${f(r.total.median)} | ${f(r.total.min)} to ${f(r.total.max)} | ${i === 0 ? '' : f(r.over.median)} | ` +
      `${f(r.cpu.median)} | ${f(r.cpu.min)} to ${f(r.cpu.max)} | ${i === 0 ? '' : f(r.cpuOver.median)} |`,
  ),
  '',
  `envelope-kit (ESM) over an empty process: ${f(ek)} ms wall, ${f(ekCpu)} ms CPU (target ≤ 30 ms: ${ek <= 30 ? 'met' : '**not met**'} by wall time, ` +
    `${ekCpu <= 30 ? 'met' : '**not met**'} by CPU time); against @aws-crypto/client-node: ${(ek / aws).toFixed(2)}× by wall time, ${(ekCpu / awsCpu).toFixed(2)}× by CPU time ` +
    `(target ≤ 0.2×: ${ek <= 0.2 * aws ? 'met' : '**not met**'}, ${ekCpu <= 0.2 * awsCpu ? 'met' : '**not met**'}).`,
  '',
);
const section = lines.join('\n');

const old = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '';
const start = old.indexOf(HEADING);
let next: string;
if (start < 0) next = `${old.trimEnd()}\n\n${section}`;
else {
  // Replace this section only: up to the next heading of the same level, or the end.
  const after = old.indexOf('\n## ', start + HEADING.length);
  next = old.slice(0, start) + section + (after < 0 ? '' : old.slice(after));
}
writeFileSync(OUT, next.endsWith('\n') ? next : `${next}\n`);
console.log(section);
