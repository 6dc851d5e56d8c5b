/**
 * Runs the cases of `suite.ts` in real runtimes: headless Chromium (Debian's /usr/bin/chromium,
 * driven by playwright-core), workerd (the binary inside the `workerd` package) and
 * @edge-runtime/vm. Each gets an esbuild bundle (platform "browser", no Node polyfills) of the
 * published entry points: `envelope-kit` and `envelope-kit/alibaba` resolve through
 * package.json "exports" to dist/, and `#aead-default` through "imports" (its non-Node target).
 * Every server binds 127.0.0.1; what a runtime printed is kept for the failure message.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import type { Outcome } from './entry.js';
import type { Fixtures } from './suite.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';
/** How this machine's Chromium must start (a closed network: no background connections). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A runtime that runs cases. */
export interface Runtime {
  readonly name: string;
  /** The page's origin (Chromium), for an emulator that must answer it. */
  readonly origin?: string;
  run(name: string, fixtures: Fixtures): Promise<Outcome>;
  /** What the runtime printed (console, page errors, stderr) since the last call. */
  takeLog(): string;
  close(): Promise<void>;
}

/** The package's "exports" as esbuild resolves a published import (the `import` condition). */
function exportsPlugin(): esbuild.Plugin {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; exports: Record<string, unknown> };
  return {
    name: 'package-exports',
    setup(build) {
      build.onResolve({ filter: new RegExp(`^${pkg.name}(/.*)?$`) }, (args) => {
        const sub = args.path === pkg.name ? '.' : `.${args.path.slice(pkg.name.length)}`;
        const target = (pkg.exports[sub] as { import?: { default?: string } } | undefined)?.import?.default;
        if (target === undefined) return { errors: [{ text: `${args.path} is not exported by package.json` }] };
        return { path: path.join(ROOT, target) };
      });
    },
  };
}

/**
 * Bundle `entry` (a path from the package's root) for a browser-like runtime. Refuses a bundle that
 * took any source file of the package instead of dist/ (so it is the published code).
 */
export async function bundle(entry: string, format: 'iife' | 'esm', conditions: string[] = []): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [path.join(ROOT, entry)],
    absWorkingDir: ROOT,
    bundle: true,
    write: false,
    platform: 'browser',
    format,
    target: 'es2022',
    conditions,
    metafile: true,
    logLevel: 'silent',
    plugins: [exportsPlugin()],
  });
  const inputs = Object.keys(result.metafile.inputs);
  const fromSource = inputs.filter((f) => f.startsWith('src/'));
  if (fromSource.length > 0) throw new Error(`the bundle took sources instead of dist/: ${fromSource.join(', ')}`);
  if (!inputs.some((f) => f === 'dist/aead-default.js')) throw new Error('the bundle lacks dist/aead-default.js (the non-Node backend)');
  return result.outputFiles[0]!.text;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** A free TCP port on 127.0.0.1 (for workerd, which is told its address). */
export async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Serve `files` (path → [content type, body]) on 127.0.0.1. */
export async function serve(files: Record<string, [string, string]>): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const f = files[new URL(req.url ?? '/', 'http://x').pathname];
    if (f === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': f[0], 'cache-control': 'no-store' }).end(f[1]);
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A page on 127.0.0.1 loading `script`, and a headless Chromium on it, once the script has set `globalThis[ready]`. */
export async function openChromium(script: string, ready = '__envelopeKitSuite'): Promise<{ page: import('playwright-core').Page; origin: string; log: string[]; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (.ci/run does)`);
  const { chromium } = await import('playwright-core');
  const site = await serve({
    '/': ['text/html; charset=utf-8', '<!doctype html><meta charset="utf-8"><title>envelope-kit</title><script src="/bundle.js"></script>'],
    '/bundle.js': ['text/javascript; charset=utf-8', script],
    '/favicon.ico': ['image/x-icon', ''],
  });
  // playwright gives every launch a new, empty profile (its own --user-data-dir).
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, chromiumSandbox: false, args: CHROMIUM_ARGS });
  const log: string[] = [];
  try {
    const page = await browser.newPage();
    page.on('console', (m) => log.push(`[console.${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => log.push(`[pageerror] ${e.stack ?? e.message}`));
    page.on('requestfailed', (r) => log.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText ?? ''}`));
    await page.goto(`${site.url}/`);
    await page.waitForFunction((name) => (globalThis as Record<string, unknown>)[name] !== undefined, ready, { timeout: 20_000 });
    return {
      page,
      origin: site.url,
      log,
      close: async () => {
        await browser.close();
        await site.close();
      },
    };
  } catch (e) {
    await browser.close();
    await site.close();
    throw new Error(`the page did not start:\n${log.join('\n')}`, { cause: e });
  }
}

/** Chromium as a {@link Runtime}. */
export async function chromiumRuntime(): Promise<Runtime> {
  const { page, origin, log, close } = await openChromium(await bundle('test/browser/entry.ts', 'iife'));
  return {
    name: 'chromium',
    origin,
    run: async (name, fixtures) => {
      const before = log.filter((l) => l.startsWith('[pageerror]')).length;
      const outcome = await page.evaluate(
        ([n, f]) => (globalThis as unknown as { __envelopeKitSuite: { run(n: string, f: unknown): Promise<Outcome> } }).__envelopeKitSuite.run(n, f),
        [name, fixtures] as const,
      );
      // An uncaught error in the page while the case ran fails it too.
      const errors = log.filter((l) => l.startsWith('[pageerror]')).length - before;
      return outcome.ok && errors > 0 ? { ok: false, error: `${errors} uncaught error(s) in the page` } : outcome;
    },
    takeLog: () => log.splice(0).join('\n'),
    close,
  };
}

/** @edge-runtime/vm (the Vercel Edge and Next.js middleware runtime) as a {@link Runtime}. */
export async function edgeRuntime(): Promise<Runtime> {
  const { EdgeVM } = await import('@edge-runtime/vm');
  const log: string[] = [];
  const line = (kind: string) => (...args: unknown[]) => log.push(`[console.${kind}] ${args.map((a) => (typeof a === 'string' ? a : String(a))).join(' ')}`);
  const vm = new EdgeVM({
    extend: (context) => {
      context.console = { ...context.console, log: line('log'), info: line('info'), warn: line('warn'), error: line('error'), debug: line('debug') };
      return context;
    },
  });
  vm.evaluate(await bundle('test/browser/entry.ts', 'iife', ['edge-light', 'worker']));
  return {
    name: 'edge-runtime',
    run: async (name, fixtures) => {
      // Crosses the realm as JSON, as a request body would.
      const text = await vm.evaluate<Promise<string>>(
        `__envelopeKitSuite.run(${JSON.stringify(name)}, JSON.parse(${JSON.stringify(JSON.stringify(fixtures))})).then((o) => JSON.stringify(o))`,
      );
      return JSON.parse(text) as Outcome;
    },
    takeLog: () => log.splice(0).join('\n'),
    close: async () => {},
  };
}

/** The workerd binary the `workerd` package ships. */
function workerdBinary(): string {
  const bin = path.join(ROOT, 'node_modules/@cloudflare/workerd-linux-64/bin/workerd');
  if (existsSync(bin)) return bin;
  return path.join(ROOT, 'node_modules/workerd/bin/workerd');
}

/** workerd (Cloudflare Workers' runtime), without Node compatibility, as a {@link Runtime}. */
export async function workerdRuntime(): Promise<Runtime> {
  const dir = mkdtempSync(path.join(tmpdir(), 'envelope-kit-workerd-'));
  const port = await freePort();
  writeFileSync(path.join(dir, 'worker.js'), await bundle('test/browser/worker.ts', 'esm', ['workerd', 'worker']));
  // Outbound fetch may reach loopback (the Alibaba emulator); the socket binds 127.0.0.1 only.
  writeFileSync(
    path.join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "loopback", network = (allow = ["local", "private"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "worker.js") ],
  compatibilityDate = "2025-01-01",
  globalOutbound = "loopback",
);
`,
  );
  const log: string[] = [];
  const child: ChildProcess = spawn(workerdBinary(), ['serve', path.join(dir, 'config.capnp'), '--verbose'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => log.push(d.toString().trimEnd()));
  child.stderr!.on('data', (d: Buffer) => log.push(d.toString().trimEnd()));
  let exited = false;
  child.on('exit', (code) => {
    exited = true;
    log.push(`[workerd exited with ${code}]`);
  });
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      await new Promise<void>((r) => (exited ? r() : child.once('exit', () => r())));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/`)).status === 404) break;
    } catch {
      // not listening yet
    }
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`workerd did not start:\n${log.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name: 'workerd',
    run: async (name, fixtures) => {
      const res = await fetch(`${base}/run/${encodeURIComponent(name)}`, { method: 'POST', body: JSON.stringify(fixtures) });
      const text = await res.text();
      if (res.status !== 200) return { ok: false, error: `workerd answered ${res.status}: ${text}` };
      return JSON.parse(text) as Outcome;
    },
    takeLog: () => log.splice(0).join('\n'),
    close: stop,
  };
}
