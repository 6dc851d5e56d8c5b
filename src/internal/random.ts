/**
 * Random bytes from the platform CSPRNG (`crypto.getRandomValues`), present in
 * Node 20+, browsers, Deno, Bun and edge runtimes.
 *
 * Small requests (keys, nonces, message ids: 64 bytes or less) are served from
 * a 1 KiB pool that one `getRandomValues` call refills. That call has a fixed
 * cost of several microseconds whatever its length (on Node it crosses into
 * C++ and OpenSSL, with a system call), as much as all the rest of a small
 * envelope. The bytes are the CSPRNG's all the same; each is handed out once
 * and zeroed in the pool as it is.
 *
 * What the pool changes, and why it is safe:
 * - Up to 1 KiB of future random bytes sit in memory until used. Whoever can
 *   read this process's memory can already read the CSPRNG's own state (and
 *   the keys in use), so no new kind of exposure.
 * - A copy of the process's memory would hand the same bytes out twice. The
 *   pool is dropped when `process.pid` changes (a process started from a V8
 *   startup snapshot of this one); workers have pools of their own.
 * @module
 */

function csprng(): { getRandomValues: (a: Uint8Array) => Uint8Array } {
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (!c || typeof c.getRandomValues !== 'function') {
    throw new Error('crypto.getRandomValues is not available in this runtime');
  }
  return c as { getRandomValues: (a: Uint8Array) => Uint8Array };
}

/** Bytes of the pool; requests up to {@link POOLED_MAX} bytes are served from it. */
const POOL_BYTES = 1024;
const POOLED_MAX = 64;
let pool: Uint8Array | undefined;
let poolPos = POOL_BYTES;
let poolPid: number | undefined;

function pid(): number | undefined {
  const p = (globalThis as { process?: { pid?: unknown } }).process?.pid;
  return typeof p === 'number' ? p : undefined;
}

/** `n` fresh random bytes, a new array the caller owns. */
export function randomBytes(n: number): Uint8Array {
  if (n <= POOLED_MAX) {
    const now = pid();
    if (pool === undefined || poolPos + n > POOL_BYTES || now !== poolPid) {
      pool ??= new Uint8Array(POOL_BYTES);
      csprng().getRandomValues(pool);
      poolPos = 0;
      poolPid = now;
    }
    const out = pool.slice(poolPos, poolPos + n);
    pool.fill(0, poolPos, poolPos + n);
    poolPos += n;
    return out;
  }
  const out = new Uint8Array(n);
  const c = csprng();
  for (let i = 0; i < n; i += 65536) c.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}
