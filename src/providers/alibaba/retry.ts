/**
 * Retry timing: capped exponential backoff with full jitter
 * (`delay = random(0, min(cap, base * 2^(attempt-1)))`), and a sleep that an
 * `AbortSignal` cuts short.
 * @module
 */

/** How a failed attempt is retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included (1 means no retry). */
  readonly maxAttempts: number;
  /** Base of the exponential backoff, in milliseconds. */
  readonly baseDelayMs: number;
  /** Cap on any one backoff, in milliseconds. */
  readonly maxDelayMs: number;
}

/**
 * Delay before the next attempt after `attempt` attempts failed (full jitter).
 * @param attempt - attempts made so far (1 after the first failure).
 * @param random - a number in [0, 1); `Math.random` by default (jitter needs no secrecy).
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/** The reason an aborted signal carries, or a generic `AbortError`. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** Wait `ms`, or reject with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
