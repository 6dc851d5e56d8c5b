/**
 * Helpers for the command-line suites: run the built `dist/cli.js` (`npm test`
 * builds it with tsup first) as a user would, with pipes, files and signals.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The built binary. */
export const CLI = path.join(root, 'dist', 'cli.js');

/** What a run gave. */
export interface RunResult {
  /** Exit status, or null when a signal ended it. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Options of {@link cli}. */
export interface RunOptions {
  /** Bytes for stdin (default: nothing, stdin closed at once). */
  readonly input?: Uint8Array | string;
  /** Extra environment variables (the rest is a minimal environment, with no Alibaba credentials). */
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  /** Run through `bash -c` with this prefix, e.g. `ulimit -f 100;`. */
  readonly shellPrefix?: string;
  readonly timeoutMs?: number;
}

/** A minimal environment: PATH and HOME only (no credentials leak in from the outside). */
export function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...extra };
}

/** Start the CLI without waiting for it. */
export function start(args: readonly string[], options: RunOptions = {}): ChildProcess {
  const env = baseEnv(options.env);
  if (options.shellPrefix !== undefined) {
    const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    return spawn('bash', ['-c', `${options.shellPrefix} exec ${quoted}`], { cwd: options.cwd, env, stdio: 'pipe' });
  }
  return spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env, stdio: 'pipe' });
}

/** Collect a started run's output and outcome. */
export function finish(child: ChildProcess, timeoutMs = 30_000): Promise<RunResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the CLI did not finish in time'));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Run the CLI to the end. */
export async function cli(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const child = start(args, options);
  const done = finish(child, options.timeoutMs);
  child.stdin!.on('error', () => {}); // the CLI may exit before reading it all
  child.stdin!.end(options.input ?? '');
  return done;
}

/** A fresh temporary folder, removed by the returned function. */
export async function tempDir(prefix = 'ek-cli-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(tmpdir(), prefix));
  return { dir, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}

/** The temporary files (`.NAME.<pid>.<hex>.tmp`) in a folder. */
export async function tempFiles(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((n) => /^\..+\.\d+\.[0-9a-f]{12}\.tmp$/.test(n));
}

/** Wait until `check` holds (polling), or fail after `ms`. */
export async function until(check: () => Promise<boolean> | boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Deterministic pseudo-random bytes (fast, for large inputs). */
export function pseudoRandom(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Whether a program is on the PATH. */
export function hasProgram(name: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => existsSync(path.join(d, name)));
}

/** Byte-wise equality (vitest's deep equality is slow on megabytes). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}
