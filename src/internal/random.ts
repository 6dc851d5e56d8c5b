/**
 * Random bytes from the platform CSPRNG (`crypto.getRandomValues`), present in
 * Node 20+, browsers, Deno, Bun and edge runtimes.
 *
 * Two entry points:
 * - {@link randomBytes} for secrets (data keys, master keys, index keys): each
 *   call asks the CSPRNG directly, so no future key ever waits in memory.
 * - {@link randomPublicBytes} for values stored in clear (message ids, key
 *   ids): small requests are served from a 1 KiB pool that one
 *   `getRandomValues` call refills. That call has a fixed cost of several
 *   microseconds whatever its length (on Node it crosses into C++ and
 *   OpenSSL), as much as the rest of a small envelope. The bytes are the
 *   CSPRNG's all the same; each is handed out once and zeroed in the pool as
 *   it is. A copy of the process's memory would hand the same bytes out twice,
 *   so the pool is dropped when `process.pid` changes (a process started from
 *   a V8 startup snapshot of this one); workers have pools of their own.
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

/**
 * `n` fresh random bytes straight from the CSPRNG, a new array the caller owns. For secrets,
 * and for the local keyring's blob nonces (SPEC.md §6), which must never come from the pool.
 */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  const c = csprng();
  for (let i = 0; i < n; i += 65536) c.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

/** `n` random bytes for a value stored in clear (message id, key id), from the pool when small. */
export function randomPublicBytes(n: number): Uint8Array {
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
  return randomBytes(n);
}
