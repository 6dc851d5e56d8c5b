/**
 * Random bytes from the platform CSPRNG (`crypto.getRandomValues`), present in
 * Node 20+, browsers, Deno, Bun and edge runtimes.
 *
 * Two entry points:
 * - {@link randomBytes} for keys, and for every nonce or salt used under a
 *   long-lived key: each call asks the CSPRNG directly, so no future key or
 *   nonce ever waits in memory, and nothing is shared between two copies of a
 *   process image beyond what the CSPRNG itself shares.
 * - {@link randomPublicBytes} for public values whose repetition costs
 *   nothing: small requests are served from a 1 KiB pool that one
 *   `getRandomValues` call refills. That call has a fixed cost of several
 *   microseconds whatever its length (on Node it crosses into C++ and
 *   OpenSSL), as much as the rest of a small envelope. The bytes are the
 *   CSPRNG's all the same; each is handed out once and zeroed in the pool as
 *   it is. The pool is dropped when `process.pid` changes (a process started
 *   from a V8 startup snapshot of this one); workers have pools of their own.
 *
 * ## Where the pool is used, and why only there
 * A process image restored twice (checkpoint/restore, a cloned VM) holds the
 * same pool in both copies, and both hand out the same bytes. The pool is
 * therefore used for exactly these, and nothing else (a test keeps this list):
 * - the message id of an envelope or a record (`obtainDataKey`,
 *   src/core/envelope.ts, for `encrypt` and `encryptFields`) when its data key
 *   is fresh from the provider, so a repeated message id never meets the same
 *   data key. A data key that may seal other envelopes (a cache's answer,
 *   marked `reused`) gets its message ids from {@link randomBytes} instead;
 * - the 6 random bytes of a new local key id (src/providers/local/keyring.ts),
 *   which is public and checked for uniqueness.
 * Never use it for keys, for the nonce or salt of a blob under a master key,
 * or for any other nonce under a long-lived key.
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

/** `n` fresh random bytes straight from the CSPRNG, a new array the caller owns. For keys, and nonces or salts under long-lived keys. */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  const c = csprng();
  for (let i = 0; i < n; i += 65536) c.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

/** `n` random bytes from the pool when small, for the public values listed in the module summary only (message ids, local key ids). */
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
