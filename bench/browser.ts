/**
 * `npm run bench:browser`: the WebCrypto AES-GCM path against @noble/ciphers alone, in headless
 * Chromium (Debian's /usr/bin/chromium), on the published bundle, in one page; and, on Node,
 * `crypto.subtle` against `node:crypto`. Measures what `WEBCRYPTO_MIN_BYTES` is read from (the
 * raw primitives by size), then `encrypt` + `decrypt` of 1 MiB and 64 MiB, a 16 MiB stream in
 * 64 KiB segments, and a 4-field `encryptFields` + `decryptFields` per record. Appends one run
 * (with the machine's load) under its own heading of bench/RESULTS.md. Not part of `npm test`.
 */
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { nobleAesGcm } from '../dist/index.js';
import { nodeAesGcm } from '../dist/node.js';
import { WEBCRYPTO_MIN_BYTES } from '../src/core/aead/webcrypto.js';
import { ROOT, bundle, openChromium } from '../test/browser/harness.js';

const HEADING = '## Browser and edge: WebCrypto AES-GCM against @noble/ciphers (`npm run bench:browser`)';
const OUT = join(ROOT, 'bench', 'RESULTS.md');
const KiB = 1024;
const MiB = 1024 * KiB;

type Bench = {
  primitive(size: number, samples: number, batch: number): Promise<{ web: number; noble: number }>;
  bulk(size: number, samples: number): Promise<{ fast: number; noble: number }>;
  stream(size: number, samples: number): Promise<{ fast: number; noble: number }>;
  fields(samples: number, batch: number): Promise<{ fast: number; noble: number }>;
  userAgent: string;
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const size = (n: number) => (n >= MiB ? `${n / MiB} MiB` : n >= KiB ? `${n / KiB} KiB` : `${n} B`);
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
const times = (x: number) => `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}×`;
const log = (s: string) => process.stderr.write(`${s}\n`);

/**
 * `crypto.subtle` vs `node:crypto` vs @noble/ciphers on Node, one seal + one open, in ms (median).
 * Node's `crypto.subtle` is also what @edge-runtime/vm offers, so its crossing with noble is that
 * runtime's.
 */
async function nodePrimitive(n: number, samples: number, batch: number): Promise<{ web: number; node: number; noble: number }> {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const aad = crypto.getRandomValues(new Uint8Array(64));
  const pt = new Uint8Array(n).fill(7);
  const sealed = new Uint8Array(n + 16);
  const opened = new Uint8Array(n);
  const web: number[] = [];
  const node: number[] = [];
  const noble: number[] = [];
  const runWeb = async () => {
    const k = await crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']);
    const c = await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, k, pt);
    await crypto.subtle.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, k, c);
  };
  const runOn = (aead: typeof nodeAesGcm) => () => {
    aead.seal(key, nonce, aad, pt, sealed);
    if (!aead.open(key, nonce, aad, sealed, opened)) throw new Error('open failed');
  };
  const runNode = runOn(nodeAesGcm);
  const runNoble = runOn(nobleAesGcm);
  const withNoble = n <= 16 * MiB;
  await runWeb();
  runNode();
  for (let s = 0; s < samples; s++) {
    let t = performance.now();
    for (let i = 0; i < batch; i++) await runWeb();
    web.push((performance.now() - t) / batch);
    t = performance.now();
    for (let i = 0; i < batch; i++) runNode();
    node.push((performance.now() - t) / batch);
    if (!withNoble) continue;
    t = performance.now();
    for (let i = 0; i < batch; i++) runNoble();
    noble.push((performance.now() - t) / batch);
  }
  return { web: median(web), node: median(node), noble: withNoble ? median(noble) : NaN };
}

const batchFor = (n: number) => Math.max(2, Math.min(400, Math.round((256 * KiB) / n)));

async function main(): Promise<void> {
  const load = execSync('uptime').toString().trim();
  const started = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  log(`load before: ${load}`);
  const { page, close } = await openChromium(await bundle('bench/browser-page.ts', 'iife'), '__bench');
  const lines: string[] = [];
  const p = (s = '') => lines.push(s);
  try {
    const ua = await page.evaluate(() => (globalThis as unknown as { __bench: Bench }).__bench.userAgent);
    const call = <K extends Exclude<keyof Bench, 'userAgent'>>(name: K, ...args: Parameters<Bench[K]>) =>
      page.evaluate(
        ([n, a]) => ((globalThis as unknown as { __bench: Record<string, (...x: unknown[]) => Promise<unknown>> }).__bench[n as string]!)(...(a as unknown[])),
        [name, args] as const,
      ) as ReturnType<Bench[K]>;

    p(`### Run of ${started}`);
    p();
    p(`Chromium: \`${ua.replace(/^.*(Chrome\/[\d.]+).*$/, '$1')}\` headless; Node ${process.version}; ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}.`);
    p(`Load: \`${load.replace(/^.*load average/, 'load average')}\` (before the run; the machine is shared).`);
    p();
    p('One seal + one open of n bytes, raw primitives (the WebCrypto side includes its key import), ms, median:');
    p();
    p('| n | Chromium WebCrypto | Chromium noble | WebCrypto faster by | Node `crypto.subtle` | Node `node:crypto` | subtle / node:crypto | Node noble | subtle faster than noble by |');
    p('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    let crossing: number | undefined;
    let nodeCrossing: number | undefined;
    for (const n of [16, 256, 1 * KiB, 2 * KiB, 4 * KiB, 8 * KiB, 16 * KiB, 64 * KiB, 1 * MiB]) {
      const b = batchFor(n);
      const c = await call('primitive', n, 15, b);
      const nd = await nodePrimitive(n, 15, b);
      if (crossing === undefined && c.web < c.noble) crossing = n;
      if (nodeCrossing === undefined && nd.web < nd.noble) nodeCrossing = n;
      p(`| ${size(n)} | ${ms(c.web)} | ${ms(c.noble)} | ${times(c.noble / c.web)} | ${ms(nd.web)} | ${ms(nd.node)} | ${times(nd.web / nd.node)} | ${ms(nd.noble)} | ${times(nd.noble / nd.web)} |`);
      log(`primitive ${size(n)} done`);
    }
    for (const n of [64 * MiB]) {
      const nd = await nodePrimitive(n, 3, 1);
      p(`| ${size(n)} | | | | ${ms(nd.web)} | ${ms(nd.node)} | ${times(nd.web / nd.node)} | | |`);
    }
    p();
    p(
      `WebCrypto first beats noble in Chromium at ${crossing === undefined ? 'no measured size' : size(crossing)}, and Node's \`crypto.subtle\` (@edge-runtime/vm's) beats noble from ${nodeCrossing === undefined ? 'no measured size' : size(nodeCrossing)}; the library's threshold \`WEBCRYPTO_MIN_BYTES\` is ${size(WEBCRYPTO_MIN_BYTES)} (src/core/aead/webcrypto.ts). On Node the last column is above 1× where \`crypto.subtle\` is slower than \`node:crypto\`, which Node keeps.`,
    );
    p();
    p('Through the published API in the page: the default backend (WebCrypto at or above the threshold) against `aead: nobleAesGcm`, ms per operation, median:');
    p();
    p('| case | default | noble only | speed-up | target |');
    p('| --- | ---: | ---: | ---: | --- |');
    for (const [n, samples] of [
      [1 * MiB, 11],
      [64 * MiB, 3],
    ] as const) {
      const r = await call('bulk', n, samples);
      p(`| \`encrypt\` + \`decrypt\`, ${size(n)} | ${ms(r.fast)} | ${ms(r.noble)} | ${times(r.noble / r.fast)} | ≥ 20× ${r.noble / r.fast >= 20 ? 'met' : 'not met'} |`);
      log(`bulk ${size(n)} done`);
    }
    const s = await call('stream', 16 * MiB, 3);
    p(`| \`encryptStream\` + \`decryptStream\`, 16 MiB in 64 KiB segments | ${ms(s.fast)} | ${ms(s.noble)} | ${times(s.noble / s.fast)} | |`);
    const f = await call('fields', 21, 50);
    p(`| \`encryptFields\` + \`decryptFields\`, 4 fields, per record | ${ms(f.fast)} | ${ms(f.noble)} | ${times(f.noble / f.fast)} | no slower: ${f.fast <= f.noble * 1.05 ? 'met' : 'not met'} (within 5%) |`);
    p();
  } finally {
    await close();
  }
  const text = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '';
  const head = text.includes(HEADING)
    ? ''
    : `\n${HEADING}\n\nEach run below is one \`npm run bench:browser\`, appended; contenders alternate within one page (and one Node process).\n\n`;
  writeFileSync(OUT, `${text.replace(/\n*$/, '\n')}${head}${lines.join('\n')}\n`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
