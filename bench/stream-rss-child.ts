/**
 * One `encryptFile` or `decryptFile` in a process of its own, so that its peak resident set size
 * is its own. Started by `stream.ts`:
 *
 *   node --import tsx bench/stream-rss-child.ts <encrypt|decrypt> <input> <output> <keys.json> <segmentSize> <parallel>
 *
 * Prints one JSON line: the RSS before the call (after a warm-up round trip of 1 MiB and a GC),
 * the peak RSS during it two ways (the kernel's high-water mark, reset just before the call, and
 * the highest of `process.memoryUsage.rss()` sampled every 10 ms), and the time of the call.
 * Files written to a tmpfs live in the page cache, which is not part of a process's RSS, so the
 * figure is the memory the call itself holds. See rss-child.ts for why the high-water mark is
 * reset rather than read from `process.resourceUsage().maxRSS`.
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { decryptFile, encryptFile } from 'envelope-kit/node';
import { type BulkKeys, benchKeyring } from './bulk.js';
import { gc } from './lib.js';

function resetPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function highWaterMark(reset: boolean): number {
  if (reset) {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  }
  return process.resourceUsage().maxRSS * 1024;
}

const [op, input, output, keysFile, segArg, parArg] = process.argv.slice(2);
const keys = JSON.parse(readFileSync(keysFile!, 'utf8')) as BulkKeys;
const provider = benchKeyring(keys);
const segmentSize = Number(segArg);
const parallel = Number(parArg);

// Warm-up: one round trip of 1 MiB with the same options, so that loading and compiling the code is not counted.
const warmIn = `${output}.warm-in`;
writeFileSync(warmIn, randomFillSync(new Uint8Array(1 << 20)));
await encryptFile(warmIn, `${output}.warm-ek`, { provider, keyId: keys.ekKeyId, segmentSize, parallel });
await decryptFile(`${output}.warm-ek`, `${output}.warm-out`, { provider, parallel });
for (const f of [warmIn, `${output}.warm-ek`, `${output}.warm-out`]) rmSync(f, { force: true });

gc();
const baseRss = process.memoryUsage.rss();
let sampled = baseRss;
const timer = setInterval(() => {
  sampled = Math.max(sampled, process.memoryUsage.rss());
}, 10);
const reset = resetPeak();
const t0 = performance.now();
if (op === 'encrypt') await encryptFile(input!, output!, { provider, keyId: keys.ekKeyId, segmentSize, parallel });
else await decryptFile(input!, output!, { provider, parallel });
const ms = performance.now() - t0;
clearInterval(timer);
sampled = Math.max(sampled, process.memoryUsage.rss());
const hwm = highWaterMark(reset);
process.stdout.write(JSON.stringify({ baseRss, peakHwm: hwm, peakSampled: sampled, peakSource: reset ? 'VmHWM' : 'maxRSS', ms }) + '\n');
