#!/usr/bin/env node
/**
 * `envelope-kit`: encrypt and decrypt files and streams, inspect envelopes and
 * manage keyring files from the command line (Node only). See `envelope-kit
 * --help` and run.ts.
 *
 * ```
 * envelope-kit encrypt FILE|- [-o FILE|-] (--keyring FILE | --alibaba-endpoint URL | --alibaba-region ID) --key-id KEY ...
 * envelope-kit decrypt FILE|- [-o FILE|-] (--keyring FILE | --alibaba-...) [--context k=v]... [--key-ids ID,...]
 * envelope-kit inspect FILE|- [--json]
 * envelope-kit rewrap FILE...|- (--keyring FILE | --alibaba-...) [--replace OLD=NEW] [--rotate KEY] [--remove KEY] [--add PROVIDER:KEY] [--dry-run]
 * envelope-kit keys init|create|list|rotate|alias|unalias|disable|enable --keyring FILE ...
 * ```
 * @module
 */
import { errorLine } from './exit-codes.js';
import { main } from './run.js';

/** Resolve once what was written to `stream` is handed to the system (at most after one second). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    try {
      stream.write('', () => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      resolve();
    }
  });
}

// Should the event loop ever empty before the run has settled (an operation that can never
// complete), the process must not end with status 0 as if all went well.
let settled = false;
process.exitCode = 1;
process.on('beforeExit', () => {
  if (!settled) {
    process.stderr.write('envelope-kit: the operation ended without a result (ERR_INTERNAL)\n');
    process.exit(1);
  }
});

// An error outside the run's own promise chain (a bug) is still one line, not a stack trace; a
// temporary output file is then left to the guardian, which removes it when this process is gone.
const crash = (e: unknown) => {
  settled = true;
  try {
    process.stderr.write(errorLine(e));
  } finally {
    process.exit(1);
  }
};
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);

main(process.argv.slice(2)).then(
  async (status) => {
    settled = true;
    // Set first: should the event loop empty while the streams flush, this is the status still.
    process.exitCode = status;
    await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
    // Exit now, so that an open stdin (a terminal, a pipe nobody closes) does not keep the process alive.
    process.exit(status);
  },
  () => {
    settled = true;
    process.exit(1);
  },
);
