/**
 * Fault injection for the AWS KMS emulator, over the Alibaba emulator's
 * generic {@link FaultInjector} (one queue, the same scoping by operation and
 * count), with AWS's error types as defaults: `ThrottlingException`,
 * `KMSInternalException` (500), `ServiceUnavailableException` (503),
 * `DependencyTimeoutException` (503), any error, a dropped connection, or
 * added latency. Faults apply after authentication.
 * @module
 */
import { type FaultDecision, type FaultScope, FaultInjector } from '../../alibaba/emulator/faults.js';

export type { FaultScope, FaultDecision };

/** Queue of faults to inject into the AWS KMS emulator. */
export class AwsFaultInjector {
  readonly #q = new FaultInjector();

  /** Throttle the next requests: HTTP 400 `ThrottlingException` ("Rate exceeded"). */
  throttle(options: FaultScope = {}): void {
    this.#q.error({ ...options, status: 400, code: 'ThrottlingException', message: 'Rate exceeded' });
  }

  /**
   * Fail the next requests with a server fault: 500 `KMSInternalException` by default, 503
   * `ServiceUnavailableException` for `{ status: 503 }`, or another `type`.
   */
  serverError(options: FaultScope & { readonly status?: number; readonly type?: string } = {}): void {
    const status = options.status ?? 500;
    const type = options.type ?? (status === 500 ? 'KMSInternalException' : 'ServiceUnavailableException');
    this.#q.error({ ...options, status, code: type, message: status === 500 ? 'An internal error occurred.' : 'Service Unavailable' });
  }

  /** Answer the next requests with any error (HTTP 400..599). */
  error(options: FaultScope & { readonly status: number; readonly type: string; readonly message?: string }): void {
    this.#q.error({ ...options, code: options.type, message: options.message ?? '' });
  }

  /** Destroy the connection of the next requests without answering (a network error for the client). */
  dropConnection(options: FaultScope = {}): void {
    this.#q.dropConnection(options);
  }

  /** Delay the answer to the next requests by `ms`. */
  latency(ms: number, options: FaultScope = {}): void {
    this.#q.latency(ms, options);
  }

  /** Remove every pending fault. */
  clear(): void {
    this.#q.clear();
  }

  /** Faults not yet used up. */
  get pending(): number {
    return this.#q.pending;
  }

  /** Decide the fate of one request (consumes the faults it uses). */
  take(operation: string): FaultDecision {
    return this.#q.take(operation);
  }
}
