/**
 * A fixed-size pool of PKCS#11 sessions. A session runs one operation at a time (PKCS#11 v2.40
 * §5.2: operations are per session), so each call borrows one; calls beyond the pool's size wait
 * in order. Sessions open on first need and stay open (and logged in) until {@link SessionPool.close}.
 * @module
 */
import type { Pkcs11Handle } from './binding.js';
import { Pkcs11ProviderError, ckrOf } from './errors.js';

/** A pool of sessions; see the module documentation. */
export class SessionPool {
  readonly #openSession: () => Pkcs11Handle;
  readonly #closeSession: (s: Pkcs11Handle) => void;
  readonly #size: number;
  readonly #idle: Pkcs11Handle[] = [];
  readonly #waiters: { resolve: (s: Pkcs11Handle) => void; reject: (e: unknown) => void }[] = [];
  #open = 0;
  #busy = 0;
  #closed = false;
  #drained: (() => void) | undefined;

  /**
   * @param openSession - opens one session (throws the binding's error on failure).
   * @param closeSession - closes one session; its errors are ignored.
   * @param size - most sessions open at once (1..64).
   * @param first - a session already open, given to the pool.
   */
  constructor(openSession: () => Pkcs11Handle, closeSession: (s: Pkcs11Handle) => void, size: number, first?: Pkcs11Handle) {
    this.#openSession = openSession;
    this.#closeSession = closeSession;
    this.#size = size;
    if (first !== undefined) {
      this.#idle.push(first);
      this.#open = 1;
    }
  }

  /** Sessions open now. */
  get openCount(): number {
    return this.#open;
  }

  /** Most sessions the pool opens. */
  get size(): number {
    return this.#size;
  }

  #acquire(): Promise<Pkcs11Handle> {
    if (this.#closed) return Promise.reject(new Pkcs11ProviderError('closed', 'the PKCS#11 provider is closed'));
    const s = this.#idle.pop();
    if (s !== undefined) return Promise.resolve(s);
    if (this.#open < this.#size) {
      this.#open++;
      try {
        return Promise.resolve(this.#openSession());
      } catch (e) {
        this.#open--;
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #release(s: Pkcs11Handle, lost: boolean): void {
    if (lost || this.#closed) {
      this.#open--;
      try {
        this.#closeSession(s);
      } catch {
        // A lost session may not close; it is forgotten either way.
      }
      const w = !this.#closed ? this.#waiters.shift() : undefined;
      if (w !== undefined) this.#acquire().then(w.resolve, w.reject);
      return;
    }
    const w = this.#waiters.shift();
    if (w !== undefined) w.resolve(s);
    else this.#idle.push(s);
  }

  /**
   * Run `fn` with a session of the pool's own, and give it back after (closed instead when the
   * failure says the session is gone).
   * @throws whatever `fn` throws; Pkcs11ProviderError `closed` after {@link close}.
   */
  async use<T>(fn: (session: Pkcs11Handle) => Promise<T> | T): Promise<T> {
    const s = await this.#acquire();
    this.#busy++;
    let lost = false;
    try {
      return await fn(s);
    } catch (e) {
      // A PKCS#11 call failed: the session may be gone, or left with an operation active (a
      // C_Decrypt that answered CKR_BUFFER_TOO_SMALL, say). It is closed, and a fresh one opened
      // when needed. A decryption failure carries no return value: its session stays.
      lost = ckrOf(e) !== undefined || ckrOf((e as { cause?: unknown } | null)?.cause) !== undefined;
      throw e;
    } finally {
      this.#busy--;
      this.#release(s, lost);
      if (this.#busy === 0) this.#drained?.();
    }
  }

  /** Refuse new calls, wait for the running ones, then close every session. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w.reject(new Pkcs11ProviderError('closed', 'the PKCS#11 provider is closed'));
    if (this.#busy > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    for (const s of this.#idle.splice(0)) {
      this.#open--;
      try {
        this.#closeSession(s);
      } catch {
        // Closing is best effort: C_Finalize follows.
      }
    }
  }
}
