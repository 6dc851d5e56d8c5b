/**
 * Linking abort signals: one `AbortController` that aborts when any of several
 * signals does (the provider's own, the call's, a per-attempt timeout).
 * @module
 */

/** The reason an aborted signal carries, or a generic `AbortError`. */
function reasonOf(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** One AbortController that aborts when any of `signals` does; `dispose` removes the listeners. */
export function anySignal(signals: readonly AbortSignal[]): {
  readonly signal: AbortSignal;
  abort(reason: unknown): void;
  dispose(): void;
} {
  const ctrl = new AbortController();
  const offs: (() => void)[] = [];
  for (const s of signals) {
    if (s.aborted) {
      ctrl.abort(reasonOf(s));
      break;
    }
    const on = () => ctrl.abort(reasonOf(s));
    s.addEventListener('abort', on, { once: true });
    offs.push(() => s.removeEventListener('abort', on));
  }
  return {
    signal: ctrl.signal,
    abort: (reason) => ctrl.abort(reason),
    dispose: () => offs.forEach((off) => off()),
  };
}

/** True when `v` has the shape of an `AbortSignal`. Never throws for an ordinary object. */
export function isAbortSignal(v: unknown): v is AbortSignal {
  return (
    v !== null &&
    typeof v === 'object' &&
    typeof (v as AbortSignal).aborted === 'boolean' &&
    typeof (v as AbortSignal).addEventListener === 'function'
  );
}
