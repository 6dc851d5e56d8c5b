/**
 * The error the PKCS#11 provider throws when the module, the token or the login fails, and the
 * mapping of PKCS#11 return values (`CKR_*`) to the library's error classes.
 *
 * Return values from PKCS#11 v2.40 §5.1 / v3.0 §5.1 (`pkcs11t.h`). A failure of the library's
 * other categories is thrown as that class (KeyNotFoundError, KeyDisabledError,
 * DecryptionFailedError, InvalidParameterError) with the binding's error as `cause`.
 * @module
 */
import { ProviderError } from '../../core/errors.js';

/** Why a {@link Pkcs11ProviderError} was thrown: one stable string per cause a caller may branch on. */
export type Pkcs11Failure =
  /** The optional peer dependency `pkcs11js` is not installed (or its native addon was not built). */
  | 'binding-missing'
  /** No file at the `module` path. */
  | 'module-not-found'
  /** The file at `module` could not be loaded as a PKCS#11 module. */
  | 'module-load-failed'
  /** No initialised token with the given label (or serial) is present. */
  | 'token-not-found'
  /** The PIN was refused (`CKR_PIN_INCORRECT`). */
  | 'pin-incorrect'
  /** The user PIN is locked (`CKR_PIN_LOCKED`, or the token's `CKF_USER_PIN_LOCKED` flag). */
  | 'pin-locked'
  /** Neither `pin` nor the environment variable `pinEnv` names gave a PIN. */
  | 'pin-missing'
  /** The token does not offer a mechanism the provider needs (`CKM_AES_GCM`, RFC 5649 key wrap). */
  | 'mechanism-unsupported'
  /** A master key was found but is extractable or not sensitive: refused. */
  | 'key-extractable'
  /** More than one object carries the label: refused. */
  | 'key-ambiguous'
  /** `close()` was called. */
  | 'closed'
  /** Any other PKCS#11 failure (see `ckr`). */
  | 'pkcs11';

/**
 * The PKCS#11 provider failed outside the library's other categories: a missing binding or
 * module, a token that is not there, a refused or locked PIN, a missing mechanism, a key that is
 * not safe to use, or another PKCS#11 return value. A {@link ProviderError} (`ERR_PROVIDER`);
 * branch on {@link Pkcs11ProviderError.failure}. The message never holds a PIN or key material.
 */
export class Pkcs11ProviderError extends ProviderError {
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'Pkcs11ProviderError';
  /** Why it failed. */
  readonly failure: Pkcs11Failure;
  /** The PKCS#11 return value's name (`CKR_PIN_INCORRECT`), when a call returned one. */
  readonly ckr: string | undefined;
  /**
   * @param failure - why it failed.
   * @param message - what failed (never a PIN or key material).
   * @param options - `cause`: the binding's error; `ckr`: the return value's name; `retryable`.
   */
  constructor(failure: Pkcs11Failure, message: string, options?: { cause?: unknown; ckr?: string | undefined; retryable?: boolean }) {
    super(message, options);
    this.failure = failure;
    this.ckr = options?.ckr;
  }
}

/** PKCS#11 return values the provider tells apart (`pkcs11t.h`). */
export const CKR = Object.freeze({
  OK: 0x0,
  HOST_MEMORY: 0x2,
  GENERAL_ERROR: 0x5,
  DEVICE_ERROR: 0x30,
  DEVICE_MEMORY: 0x31,
  DEVICE_REMOVED: 0x32,
  KEY_HANDLE_INVALID: 0x60,
  KEY_FUNCTION_NOT_PERMITTED: 0x68,
  OBJECT_HANDLE_INVALID: 0x82,
  PIN_INCORRECT: 0xa0,
  PIN_EXPIRED: 0xa3,
  PIN_LOCKED: 0xa4,
  SESSION_CLOSED: 0xb0,
  SESSION_COUNT: 0xb1,
  SESSION_HANDLE_INVALID: 0xb3,
  TOKEN_NOT_PRESENT: 0xe0,
  TOKEN_NOT_RECOGNIZED: 0xe1,
  USER_ALREADY_LOGGED_IN: 0x100,
  USER_NOT_LOGGED_IN: 0x101,
  USER_PIN_NOT_INITIALIZED: 0x102,
  CRYPTOKI_NOT_INITIALIZED: 0x190,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
});

/**
 * Return values that say the session, the token or the library failed rather than the bytes:
 * during a decryption they are a {@link Pkcs11ProviderError}, never a decryption failure.
 * `CKR_DEVICE_MEMORY`, `CKR_HOST_MEMORY` and `CKR_SESSION_COUNT` may pass, so they are retryable.
 */
export const NOT_A_DECRYPTION_FAILURE: ReadonlySet<number> = new Set([
  CKR.HOST_MEMORY,
  CKR.DEVICE_ERROR,
  CKR.DEVICE_MEMORY,
  CKR.DEVICE_REMOVED,
  CKR.KEY_HANDLE_INVALID,
  CKR.KEY_FUNCTION_NOT_PERMITTED,
  CKR.OBJECT_HANDLE_INVALID,
  CKR.SESSION_CLOSED,
  CKR.SESSION_COUNT,
  CKR.SESSION_HANDLE_INVALID,
  CKR.TOKEN_NOT_PRESENT,
  CKR.TOKEN_NOT_RECOGNIZED,
  CKR.USER_NOT_LOGGED_IN,
  CKR.CRYPTOKI_NOT_INITIALIZED,
]);

const RETRYABLE: ReadonlySet<number> = new Set([CKR.HOST_MEMORY, CKR.DEVICE_MEMORY, CKR.SESSION_COUNT]);

/**
 * The numeric return value of a binding error (`pkcs11js` sets `code` on its `Pkcs11Error`), or
 * `undefined` for anything else. Never throws.
 */
export function ckrOf(e: unknown): number | undefined {
  try {
    if (e === null || typeof e !== 'object') return undefined;
    const name = (e as { name?: unknown }).name;
    const code = (e as { code?: unknown }).code;
    const message = (e as { message?: unknown }).message;
    if (name !== 'Pkcs11Error' || typeof code !== 'number' || !Number.isInteger(code) || code < 0) return undefined;
    return typeof message === 'string' && message.startsWith('CKR_') ? code : undefined;
  } catch {
    return undefined;
  }
}

/** The `CKR_*` name of a binding error, when it carries one. Never throws. */
export function ckrNameOf(e: unknown): string | undefined {
  if (ckrOf(e) === undefined) return undefined;
  const m = /^CKR_[A-Z0-9_]{1,60}$/.exec((e as { message: string }).message);
  return m ? m[0] : undefined;
}

/**
 * A binding error (or anything else thrown by a PKCS#11 call) as a {@link Pkcs11ProviderError}:
 * `what` names the call, the message adds the return value's name.
 */
export function pkcs11Failure(what: string, e: unknown): Pkcs11ProviderError {
  if (e instanceof Pkcs11ProviderError) return e;
  const code = ckrOf(e);
  const ckr = ckrNameOf(e);
  if (code === CKR.PIN_INCORRECT) return new Pkcs11ProviderError('pin-incorrect', `${what}: the PIN was refused (CKR_PIN_INCORRECT)`, { cause: e, ckr });
  if (code === CKR.PIN_LOCKED) return new Pkcs11ProviderError('pin-locked', `${what}: the user PIN is locked (CKR_PIN_LOCKED)`, { cause: e, ckr });
  const retryable = code !== undefined && RETRYABLE.has(code);
  return new Pkcs11ProviderError('pkcs11', `${what} failed${ckr ? ` (${ckr})` : ''}`, { cause: e, ...(ckr ? { ckr } : {}), retryable });
}
