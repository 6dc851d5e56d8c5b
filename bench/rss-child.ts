/**
 * One bulk operation in a process of its own, so that its peak resident set
 * size (`process.resourceUsage().maxRSS`) is its own. Started by `run.ts`:
 *
 *   node --import tsx bench/rss-child.ts <contender> <encrypt|decrypt> <bytes> <dir>
 *
 * `<dir>` holds `keys.json` and, for decrypt, the envelope `<contender>-<bytes>.bin`
 * written by the parent. Prints one JSON line: the RSS once the input is in
 * memory (after a GC), the peak RSS, and the time of the operation.
 *
 * The peak: on Linux, `getrusage` (`process.resourceUsage().maxRSS`) carries the
 * parent's peak across fork and exec, so a child of a 400 MiB parent reports at
 * least 400 MiB. There the child resets its own high-water mark just before the
 * operation (`/proc/self/clear_refs` = 5) and reads it back (`VmHWM` in
 * `/proc/self/status`), which also keeps start-up allocations out of the figure.
 * Elsewhere it falls back to `maxRSS`.
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BulkContender, bulkContender, type BulkKeys, envelopeLength } from './bulk.js';
import { gc } from './lib.js';

/** Reset the peak RSS to the current RSS. False where the kernel offers no way. */
function resetPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function peak(reset: boolean): number {
  if (reset) {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  }
  return process.resourceUsage().maxRSS * 1024;
}

const [name, op, bytesArg, dir] = process.argv.slice(2);
const size = Number(bytesArg);
const keys = JSON.parse(readFileSync(join(dir!, 'keys.json'), 'utf8')) as BulkKeys;
const c: BulkContender = bulkContender(name as BulkContender['name'], keys);

// Warm-up on a small payload, so that code loading is not counted as the operation's memory.
const small = randomFillSync(new Uint8Array(4096));
await c.decrypt(await c.encrypt(small));

let input: Uint8Array | Buffer;
let envelope: ReturnType<BulkContender['fromFile']> | undefined;
if (op === 'encrypt') {
  input = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) randomFillSync(input, i, Math.min(65536, size - i));
} else {
  const file = readFileSync(join(dir!, `${name}-${size}.bin`));
  envelope = c.fromFile(file);
  input = file;
}
gc();
const baseRss = process.memoryUsage().rss;
const reset = resetPeak();
const t0 = performance.now();
const out = op === 'encrypt' ? await c.encrypt(input) : await c.decrypt(envelope!);
const ms = performance.now() - t0;
const peakRss = peak(reset);
process.stdout.write(JSON.stringify({ baseRss, peakRss, peakSource: reset ? 'VmHWM' : 'maxRSS', ms, inputBytes: input.length, outputBytes: envelopeLength(out) }) + '\n');
