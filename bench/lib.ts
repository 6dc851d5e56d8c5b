/**
 * Measurement helpers for `bench/run.ts`: a forced GC between samples,
 * round-robin interleaving of contenders, medians, and number formatting.
 * @module
 */
import { cpus, totalmem } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose_gc');
/** V8's `gc()`, reachable without starting node with `--expose-gc`. */
export const gc: () => void = runInNewContext('gc');

/** High-resolution clock in milliseconds. */
export const now = (): number => performance.now();

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Spread of the samples around their median, in percent: (max - min) / median. */
export function spread(xs: readonly number[]): number {
  return ((Math.max(...xs) - Math.min(...xs)) / median(xs)) * 100;
}

/** Samples per phase (`encrypt`, `decrypt`, ...) in milliseconds. */
export type Samples = Record<string, number[]>;

/** Rates of one records contender: records per second, from the median of its samples. */
export interface RecordRow {
  readonly label: string;
  readonly records: number;
  readonly encPerSec: number;
  readonly decPerSec: number;
  readonly bothPerSec: number;
  readonly spreadPct: number;
}

/** The {@link RecordRow} of `n` records timed in `s` (phases `encrypt` and `decrypt`). */
export function rates(label: string, n: number, s: Samples): RecordRow {
  const both = s.encrypt!.map((e, i) => e + s.decrypt![i]!);
  return {
    label,
    records: n,
    encPerSec: n / (median(s.encrypt!) / 1000),
    decPerSec: n / (median(s.decrypt!) / 1000),
    bothPerSec: n / (median(both) / 1000),
    spreadPct: spread(both),
  };
}

/**
 * Run `measure` for every contender, `reps` times, round-robin: repetition r
 * starts at contender r mod n, so that drift of the machine (other load,
 * thermal state, GC debt) falls on all contenders alike. One warm-up round
 * (`warm = true`) is run first and discarded.
 */
export async function roundRobin<C>(
  contenders: readonly C[],
  reps: number,
  measure: (c: C, warm: boolean) => Promise<Record<string, number>>,
  onRep?: (rep: number) => void,
): Promise<Map<C, Samples>> {
  const out = new Map<C, Samples>(contenders.map((c) => [c, {}]));
  for (const c of contenders) {
    gc();
    await measure(c, true);
  }
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(r + k) % contenders.length]!;
      gc();
      const res = await measure(c, false);
      const s = out.get(c)!;
      for (const [phase, ms] of Object.entries(res)) (s[phase] ??= []).push(ms);
    }
    onRep?.(r);
  }
  return out;
}

/** Machine description for RESULTS.md. */
export function machine(): { cpu: string; cores: number; memoryGiB: number; node: string; openssl: string; platform: string } {
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    openssl: process.versions.openssl ?? 'unknown',
    platform: `${process.platform} ${process.arch}`,
  };
}

/** Format with a fixed number of significant-looking digits: 12,345 / 123 / 12.3 / 1.23. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** A ratio as `0.63×`. */
export function ratio(x: number): string {
  return `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}×`;
}

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
