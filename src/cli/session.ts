/**
 * One run of the command line: what must be undone if it is stopped. On
 * SIGINT, SIGTERM or SIGHUP the registered clean-ups run synchronously (the
 * temporary output is removed, the terminal leaves raw mode, the progress line
 * is erased), one line is printed, and the process exits with 128 + the
 * signal's number. SIGKILL cannot be caught: the guardian process
 * (guardian.ts) removes the temporary output then.
 * @module
 */
import { errorLine, InterruptedError, SIGNAL_EXIT, type StopSignal } from './exit-codes.js';
import { type Guardian, startGuardian } from './guardian.js';

/** What the commands get from the run they are part of. */
export interface Session {
  /** Aborted when a stop signal arrives (before the process exits). */
  readonly signal: AbortSignal;
  /**
   * Run `fn` (synchronously) if the process is stopped by a signal.
   * @returns a function that unregisters it.
   */
  onStop(fn: () => void): () => void;
  /** The guardian of temporary files, started on first use. */
  guardian(): Guardian;
  /**
   * Run `fn` with stop signals held back: one that arrives meanwhile takes effect when `fn` has
   * settled (for writes the session cannot clean up after, such as a keyring file's save).
   */
  deferStops<T>(fn: () => Promise<T>): Promise<T>;
}

/** A session, and how to end it. */
export interface SessionControl extends Session {
  /** Remove the signal handlers and let the guardian go (it removes nothing after this). */
  end(): void;
}

/**
 * Start a session: install the stop-signal handlers.
 * @param stderr - where the interruption line goes.
 */
export function startSession(stderr: NodeJS.WritableStream = process.stderr): SessionControl {
  const controller = new AbortController();
  const cleanups = new Set<() => void>();
  let guardian: Guardian | undefined;
  let stopping = false;
  let deferring = 0;
  let held: StopSignal | undefined;
  const handlers = new Map<StopSignal, () => void>();
  const stop = (sig: StopSignal) => {
    if (deferring > 0) {
      held ??= sig;
      return;
    }
    if (stopping) return;
    stopping = true;
    for (const fn of [...cleanups].reverse()) {
      try {
        fn();
      } catch {
        // best effort: the next clean-up still runs
      }
    }
    try {
      if (process.stdin.isTTY && process.stdin.isRaw) process.stdin.setRawMode(false);
    } catch {
      // not a terminal any more
    }
    try {
      controller.abort(new InterruptedError(sig));
    } catch {
      // a listener threw
    }
    try {
      stderr.write(errorLine(new InterruptedError(sig)));
    } catch {
      // stderr is gone
    }
    // The guardian is not told `done`: when this process is gone it removes whatever is left.
    process.exit(SIGNAL_EXIT[sig]);
  };
  for (const sig of Object.keys(SIGNAL_EXIT) as StopSignal[]) {
    const h = () => stop(sig);
    handlers.set(sig, h);
    process.on(sig, h);
  }
  return {
    signal: controller.signal,
    onStop(fn) {
      cleanups.add(fn);
      return () => cleanups.delete(fn);
    },
    guardian() {
      guardian ??= startGuardian();
      return guardian;
    },
    async deferStops(fn) {
      deferring++;
      try {
        return await fn();
      } finally {
        deferring--;
        if (deferring === 0 && held !== undefined) stop(held);
      }
    },
    end() {
      for (const [sig, h] of handlers) process.off(sig, h);
      guardian?.close();
    },
  };
}
