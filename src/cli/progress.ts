/**
 * The progress bar of `encrypt` and `decrypt`: one line on stderr, redrawn at
 * most ten times a second, with the bytes read, the rate and the time left.
 * Shown only when stderr is a terminal, the input's size is known and above
 * {@link PROGRESS_MIN_BYTES}, and `--quiet` is not given.
 * @module
 */

/** Inputs up to this size get no progress bar (4 MiB). */
export const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;
/** Least time between two redraws, in ms. */
const REDRAW_MS = 100;

/**
 * Bytes in binary units: `512 B`, `1.5 KiB`, `27.3 MiB`, `1.02 GiB`.
 * @param n - a count of bytes, 0 or more.
 */
export function formatBytes(n: number): string {
  if (!(n >= 1024)) return `${Math.max(0, Math.floor(n || 0))} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}

/**
 * A duration as `m:ss` or `h:mm:ss`; `--:--` when unknown.
 * @param seconds - the duration, or a non-finite number when unknown.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > 360000) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * The text of the progress line (without the carriage return).
 * @param done - bytes read so far.
 * @param total - bytes in all.
 * @param elapsedMs - time since the start.
 * @param width - columns of the terminal.
 */
export function renderProgress(done: number, total: number, elapsedMs: number, width: number): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 0;
  const rate = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0;
  const eta = rate > 0 ? (total - done) / rate : Infinity;
  const percent = `${Math.floor(fraction * 100)}`.padStart(3) + '%';
  const tail = `${formatBytes(done)} / ${formatBytes(total)}  ${formatBytes(rate)}/s  ETA ${formatDuration(eta)}`;
  const barWidth = Math.max(0, Math.min(40, width - percent.length - tail.length - 6));
  if (barWidth < 10) return `${percent}  ${tail}`.slice(0, Math.max(0, width - 1));
  const filled = Math.round(fraction * barWidth);
  return `${percent} [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]  ${tail}`;
}

/** A terminal stream the bar is drawn on (stderr). */
export interface ProgressTerminal {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(s: string): boolean;
}

/** A progress bar, or one that draws nothing. */
export interface Progress {
  /** `done` bytes of the input are read. */
  update(done: number): void;
  /** Erase the line (at the end, on an error, on a signal). */
  clear(): void;
}

const SILENT: Progress = /* @__PURE__ */ Object.freeze({ update: () => {}, clear: () => {} });

/**
 * A progress bar for an input of `total` bytes.
 * @param total - the input's size, undefined when unknown (stdin from a pipe).
 * @param quiet - `--quiet`.
 * @param term - where to draw (stderr).
 * @returns a bar drawing on `term`, or a silent one when `term` is not a terminal, the size is
 *   unknown or at most {@link PROGRESS_MIN_BYTES}, or `quiet`.
 */
export function createProgress(total: number | undefined, quiet: boolean, term: ProgressTerminal = process.stderr): Progress {
  if (quiet || term.isTTY !== true || total === undefined || total <= PROGRESS_MIN_BYTES) return SILENT;
  const start = Date.now();
  let last = 0;
  let drawn = false;
  return {
    update(done) {
      const now = Date.now();
      if (now - last < REDRAW_MS && done < total) return;
      last = now;
      drawn = true;
      term.write(`\r${renderProgress(done, total, now - start, term.columns !== undefined && term.columns > 0 ? term.columns : 80)}\x1b[K`);
    },
    clear() {
      if (drawn) term.write('\r\x1b[K');
      drawn = false;
    },
  };
}
