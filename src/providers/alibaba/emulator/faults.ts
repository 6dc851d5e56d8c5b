/**
 * Fault injection for the emulator: make the next requests (optionally only
 * some actions) fail with throttling, a 5xx, any KMS error, a dropped
 * connection, or added latency. Faults apply after authentication, so a client
 * that retries must sign each attempt anew (a replayed nonce is refused).
 * Key states (disabled, pending deletion) are set on the emulator's keyring.
 * @module
 */

/** Which requests a fault applies to. */
export interface FaultScope {
  /** How many matching requests it applies to (default 1; `Infinity` for all). */
  readonly times?: number;
  /** Only these actions (e.g. `["Decrypt"]`); default every action. */
  readonly actions?: readonly string[];
}

/** An injected error answer. */
export interface InjectedError {
  readonly kind: 'error';
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** The connection is destroyed without an answer. */
export interface InjectedDrop {
  readonly kind: 'drop';
}

interface Entry {
  readonly fault: InjectedError | InjectedDrop | { readonly kind: 'latency'; readonly ms: number };
  remaining: number;
  readonly actions: ReadonlySet<string> | undefined;
}

function scope(s: FaultScope | undefined): Pick<Entry, 'remaining' | 'actions'> {
  const times = s?.times ?? 1;
  if (!(times === Infinity || (Number.isInteger(times) && times >= 1))) {
    throw new RangeError('"times" must be a positive integer or Infinity');
  }
  return { remaining: times, actions: s?.actions ? new Set(s.actions) : undefined };
}

/** What to do with one request. */
export interface FaultDecision {
  /** Delay before answering, in ms. */
  readonly latencyMs: number;
  /** An error or a drop instead of the real answer. */
  readonly fault: InjectedError | InjectedDrop | undefined;
}

/** Queue of faults to inject. */
export class FaultInjector {
  #entries: Entry[] = [];

  /**
   * Throttle the next requests: `Throttling` (the API gateway's code) by default,
   * or `Rejected.Throttling` (KMS's). HTTP 400 unless `status` is given.
   */
  throttle(options: FaultScope & { readonly code?: 'Throttling' | 'Rejected.Throttling' | 'Throttling.User'; readonly status?: number } = {}): void {
    const code = options.code ?? 'Throttling';
    this.error({
      ...options,
      status: options.status ?? 400,
      code,
      message: code === 'Rejected.Throttling' ? 'QPS Limit Exceeded' : 'Request was denied due to request throttling.',
    });
  }

  /**
   * Fail the next requests with a server error: 503 `ServiceUnavailableTemporary`
   * by default, or e.g. `{ status: 500, code: 'InternalFailure' }`.
   */
  serverError(options: FaultScope & { readonly status?: number; readonly code?: string } = {}): void {
    const status = options.status ?? 503;
    const code = options.code ?? (status === 500 ? 'InternalFailure' : 'ServiceUnavailableTemporary');
    this.error({ ...options, status, code, message: status === 500 ? 'Internal Failure.' : 'Service Unavailable Temporary.' });
  }

  /** Answer the next requests with any KMS error. */
  error(options: FaultScope & { readonly status: number; readonly code: string; readonly message?: string }): void {
    if (!Number.isInteger(options.status) || options.status < 400 || options.status > 599) {
      throw new RangeError('"status" must be an HTTP error status (400-599)');
    }
    this.#entries.push({
      fault: { kind: 'error', status: options.status, code: options.code, message: options.message ?? options.code },
      ...scope(options),
    });
  }

  /** Destroy the connection of the next requests without answering (a network error for the client). */
  dropConnection(options: FaultScope = {}): void {
    this.#entries.push({ fault: { kind: 'drop' }, ...scope(options) });
  }

  /** Delay the answer to the next requests by `ms`. */
  latency(ms: number, options: FaultScope = {}): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError('"ms" must be a non-negative number');
    this.#entries.push({ fault: { kind: 'latency', ms }, ...scope(options) });
  }

  /** Remove every pending fault. */
  clear(): void {
    this.#entries = [];
  }

  /** Faults not yet used up. */
  get pending(): number {
    return this.#entries.length;
  }

  /**
   * Decide the fate of one request (consumes the faults it uses): every matching
   * latency adds up; the first matching error or drop applies.
   */
  take(action: string): FaultDecision {
    let latencyMs = 0;
    let fault: InjectedError | InjectedDrop | undefined;
    for (const e of this.#entries) {
      if (e.remaining <= 0 || (e.actions && !e.actions.has(action))) continue;
      if (e.fault.kind === 'latency') {
        latencyMs += e.fault.ms;
        e.remaining--;
      } else if (!fault) {
        fault = e.fault;
        e.remaining--;
      }
    }
    this.#entries = this.#entries.filter((e) => e.remaining > 0);
    return { latencyMs, fault };
  }
}
