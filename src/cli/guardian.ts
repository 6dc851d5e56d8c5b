/**
 * The guardian: a small child process that removes the command's temporary
 * output files if the command dies without cleaning up, above all by SIGKILL,
 * which no handler can catch. The parent tells it each temporary path before
 * the file can hold anything (`+<path>`), and that it is gone once renamed into
 * place or removed (`-<path>`), then `done`. When its stdin pipe closes (the
 * parent exited, however it died) without `done`, the guardian removes every
 * path it still holds. It runs in its own session (`detached`), so a Ctrl-C on
 * the terminal or a hang-up does not reach it, and ignores SIGINT, SIGTERM and
 * SIGHUP itself.
 *
 * Protocol, one line each, paths as JSON strings: `+"/dir/.out.123.abcd.tmp"`,
 * `-"/dir/.out.123.abcd.tmp"`, `done`.
 * @module
 */
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';

/**
 * The guardian's program, run with `node -e` (CommonJS). It reads the pipe and,
 * at its end, removes the files still listed unless told `done`.
 */
export const GUARDIAN_SOURCE = `
'use strict';
const fs = require('node:fs');
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGPIPE']) process.on(s, () => {});
const paths = new Set();
let done = false;
let rest = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  rest += d;
  let i;
  while ((i = rest.indexOf('\\n')) >= 0) {
    const line = rest.slice(0, i);
    rest = rest.slice(i + 1);
    try {
      if (line === 'done') done = true;
      else if (line[0] === '+') paths.add(JSON.parse(line.slice(1)));
      else if (line[0] === '-') paths.delete(JSON.parse(line.slice(1)));
    } catch {}
  }
});
let finished = false;
const finish = () => {
  if (finished) return;
  finished = true;
  if (!done) for (const p of paths) { try { fs.unlinkSync(p); } catch {} }
  process.exit(0);
};
process.stdin.on('end', finish);
process.stdin.on('error', finish);
process.stdin.on('close', finish);
`;

/** A running guardian. */
export interface Guardian {
  /** Hand it a temporary path; resolves once the line is in the pipe (before the file is created). */
  watch(tempPath: string): Promise<void>;
  /** The file is renamed into place or removed: forget it. */
  release(tempPath: string): void;
  /** Say `done` and close the pipe (nothing is removed after this). */
  close(): void;
}

/**
 * Start a guardian. It does not keep the parent's event loop alive.
 * @returns the guardian; when it cannot be started, one that does nothing (the stale
 *   temporary files of a dead process are then removed by the next run instead).
 */
export function startGuardian(): Guardian {
  let stdin: Writable | null = null;
  try {
    const child = spawn(process.execPath, ['-e', GUARDIAN_SOURCE], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
      windowsHide: true,
      // No inherited NODE_OPTIONS (a --require of the parent's would run in the guardian too).
      env: { PATH: process.env.PATH ?? '' },
    });
    child.on('error', () => {
      stdin = null;
    });
    child.unref();
    stdin = child.stdin;
    stdin?.on('error', () => {
      stdin = null;
    });
    (stdin as unknown as { unref?: () => void } | null)?.unref?.();
  } catch {
    stdin = null;
  }
  let closed = false;
  const send = (line: string): Promise<void> =>
    new Promise((resolve) => {
      const s = stdin;
      if (!s || closed || s.destroyed) return resolve();
      try {
        s.write(line + '\n', () => resolve());
      } catch {
        resolve();
      }
    });
  return {
    watch: (p) => send('+' + JSON.stringify(p)),
    release: (p) => void send('-' + JSON.stringify(p)),
    close: () => {
      if (closed) return;
      void send('done');
      closed = true;
      try {
        stdin?.end();
      } catch {
        // already gone
      }
    },
  };
}
