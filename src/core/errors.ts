/**
 * Errors thrown by envelope-kit. Every error is an {@link EnvelopeKitError} with a
 * stable `code`; callers branch on the subclass or on `code` (see {@link ErrorCode}).
 * No message ever contains key material or plaintext.
 * @module
 */

/** Every stable error code the library throws. */
export type ErrorCode =
  | 'ERR_INVALID_PARAMETER'
  | 'ERR_MALFORMED_ENVELOPE'
  | 'ERR_UNSUPPORTED_VERSION'
  | 'ERR_NO_MATCHING_PROVIDER'
  | 'ERR_KEY_NOT_FOUND'
  | 'ERR_KEY_DISABLED'
  | 'ERR_DECRYPTION_FAILED'
  | 'ERR_PROVIDER'
  | 'ERR_KEYRING_FILE'
  | 'ERR_UNSUPPORTED_VALUE'
  | 'ERR_MALFORMED_VALUE'
  | 'ERR_SCHEMA_MISMATCH'
  | 'ERR_UNENCRYPTED_FIELD'
  | 'ERR_FIELD_NOT_FOUND';

/**
 * The brand every envelope-kit error carries, from the global symbol registry so that the ESM and the
 * CommonJS builds (two copies of these classes in one process) share it.
 */
const BRAND: unique symbol = Symbol.for('envelope-kit.error') as never;

/** True when `value` is an error of either build of envelope-kit (checked by brand, not by prototype). */
function isBranded(value: unknown): value is EnvelopeKitError {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  try {
    return (value as { [BRAND]?: unknown })[BRAND] === true && typeof (value as { code?: unknown }).code === 'string';
  } catch {
    // A proxy whose traps throw is not one of ours.
    return false;
  }
}

/**
 * Base class of every error envelope-kit throws.
 *
 * Each class has a literal `name` (minifiers rename classes, so `constructor.name` would read `re`),
 * a `static code` and an instance `code`. `instanceof` works across the ESM and CommonJS builds loaded
 * in one process: `err instanceof EnvelopeKitError` is true for an error of either build, and
 * `err instanceof DecryptionFailedError` for an error of either build whose `code` is that class's code
 * (`'ERR_DECRYPTION_FAILED'`). A class of your own that extends one of these is checked by prototype
 * only. {@link isEnvelopeKitError} is the same check as a function.
 */
export class EnvelopeKitError extends Error {
  /**
   * The code of this class's errors, on every subclass the library defines (undefined on the base
   * class, whose errors carry any code).
   */
  static readonly code: ErrorCode | undefined = undefined;
  /**
   * The class's own name as a literal (on every class): minifiers rename classes, and Node's
   * `util.inspect` (how Node prints an error) shows `N [DecryptionFailedError]: ...` when the
   * constructor's name differs from the error's.
   */
  static override readonly name: string = 'EnvelopeKitError';
  /** Stable, machine-readable code. */
  readonly code: ErrorCode;
  /**
   * @param code - the stable code (see {@link ErrorCode}).
   * @param message - what failed, never key material or plaintext.
   * @param options - `cause`: the underlying error.
   */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    // Each class of the library has a literal static name; a caller's subclass has its own.
    this.name = new.target.name;
  }

  /**
   * `instanceof` across builds: true when `value` is an instance by prototype, or when it carries
   * envelope-kit's brand and, for a class of the library other than the base, that class's code.
   * @param value - any value.
   * @returns whether `value` is an error of this class (of either build).
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    if (!isBranded(value)) return false;
    // Each build's copy of this method compares with its own base class; an error of the other build
    // is matched by brand and code, never by identity.
    if (this === EnvelopeKitError) return true;
    // A subclass outside the library has no code of its own: prototype only.
    if (!Object.hasOwn(this, 'code')) return false;
    const code = (this as { code?: unknown }).code;
    return typeof code === 'string' && value.code === code;
  }
}
Object.defineProperty(EnvelopeKitError.prototype, BRAND, { value: true });

/**
 * True when `err` is an error thrown by envelope-kit, from either its ESM or its CommonJS build, and,
 * when `code` is given, one with that code. Prefer it to `instanceof` where errors may come from
 * another copy of the package.
 * @param err - any caught value.
 * @param code - optional: the code the error must have (see {@link ErrorCode}).
 * @returns whether `err` is an envelope-kit error (with that code).
 * @example
 * ```ts
 * let plaintext: Uint8Array | undefined;
 * try {
 *   ({ plaintext } = await decrypt(envelope, { providers: [keyring] }));
 * } catch (err) {
 *   // Wrong key, wrong context or tampered bytes: treat the row as unreadable; rethrow anything else.
 *   if (!isEnvelopeKitError(err, 'ERR_DECRYPTION_FAILED')) throw err;
 * }
 * ```
 */
export function isEnvelopeKitError<C extends ErrorCode>(err: unknown, code?: C): err is EnvelopeKitError & { readonly code: C } {
  if (!isBranded(err)) return false;
  return code === undefined || err.code === code;
}

/** A caller-supplied argument (or a provider parameter) is invalid. Nothing was done. */
export class InvalidParameterError extends EnvelopeKitError {
  /** The code of every InvalidParameterError. */
  static override readonly code = 'ERR_INVALID_PARAMETER' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'InvalidParameterError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'InvalidParameterError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_PARAMETER', message, options);
  }
}

/** The bytes or text given as an envelope are not a well-formed envelope. */
export class MalformedEnvelopeError extends EnvelopeKitError {
  /** The code of every MalformedEnvelopeError. */
  static override readonly code = 'ERR_MALFORMED_ENVELOPE' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'MalformedEnvelopeError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'MalformedEnvelopeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_MALFORMED_ENVELOPE', message, options);
  }
}

/** The envelope names a format version, algorithm suite or body layout this release cannot read. */
export class UnsupportedVersionError extends EnvelopeKitError {
  /** The code of every UnsupportedVersionError. */
  static override readonly code = 'ERR_UNSUPPORTED_VERSION' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'UnsupportedVersionError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'UnsupportedVersionError';
  /** Which header field was not understood. */
  readonly field: 'version' | 'suite' | 'layout' | 'blob';
  /** The value found. */
  readonly value: number;
  constructor(field: 'version' | 'suite' | 'layout' | 'blob', value: number) {
    super('ERR_UNSUPPORTED_VERSION', `unsupported ${field} 0x${value.toString(16).padStart(2, '0')}`);
    this.field = field;
    this.value = value;
  }
}

/** None of the given providers can decrypt any of the envelope's encrypted data keys. */
export class NoMatchingProviderError extends EnvelopeKitError {
  /** The code of every NoMatchingProviderError. */
  static override readonly code = 'ERR_NO_MATCHING_PROVIDER' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'NoMatchingProviderError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'NoMatchingProviderError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NO_MATCHING_PROVIDER', message, options);
  }
}

/** The key id or alias does not name a key the provider knows. */
export class KeyNotFoundError extends EnvelopeKitError {
  /** The code of every KeyNotFoundError. */
  static override readonly code = 'ERR_KEY_NOT_FOUND' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'KeyNotFoundError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'KeyNotFoundError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_KEY_NOT_FOUND', message, options);
  }
}

/** The master key exists but is disabled (or pending deletion). */
export class KeyDisabledError extends EnvelopeKitError {
  /** The code of every KeyDisabledError. */
  static override readonly code = 'ERR_KEY_DISABLED' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'KeyDisabledError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'KeyDisabledError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_KEY_DISABLED', message, options);
  }
}

/** The one message every decryption failure carries, whatever the cause. */
export const DECRYPTION_FAILED_MESSAGE = 'decryption failed';

/**
 * Decryption failed: wrong key, wrong encryption context, or tampered bytes.
 * The message is always the same, so the error reveals nothing about the cause.
 */
export class DecryptionFailedError extends EnvelopeKitError {
  /** The code of every DecryptionFailedError. */
  static override readonly code = 'ERR_DECRYPTION_FAILED' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'DecryptionFailedError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'DecryptionFailedError';
  constructor(options?: { cause?: unknown }) {
    super('ERR_DECRYPTION_FAILED', DECRYPTION_FAILED_MESSAGE, options);
  }
}

/** A provider misbehaved (returned a malformed answer) or failed for a reason outside the other categories. */
export class ProviderError extends EnvelopeKitError {
  /** The code of every ProviderError. */
  static override readonly code = 'ERR_PROVIDER' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'ProviderError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'ProviderError';
  /**
   * True when the failure is of a kind that may pass (throttling, a 5xx, a network failure) and the
   * provider's own retries ran out; false when retrying cannot help or nothing is known.
   */
  readonly retryable: boolean;
  /**
   * @param message - what failed (never key material).
   * @param options - `cause`: the underlying error; `retryable`: see {@link ProviderError.retryable} (default false).
   */
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super('ERR_PROVIDER', message, options);
    this.retryable = options?.retryable === true;
  }
}

/** A keyring file could not be read: corrupt, tampered, wrong passphrase, or not a keyring file. */
export class KeyringFileError extends EnvelopeKitError {
  /** The code of every KeyringFileError. */
  static override readonly code = 'ERR_KEYRING_FILE' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'KeyringFileError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'KeyringFileError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_KEYRING_FILE', message, options);
  }
}

/** A value cannot be encoded (function, symbol, class instance, cycle, too deep, throwing getter...). */
export class UnsupportedValueError extends EnvelopeKitError {
  /** The code of every UnsupportedValueError. */
  static override readonly code = 'ERR_UNSUPPORTED_VALUE' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'UnsupportedValueError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'UnsupportedValueError';
  /** Where in the value the problem is, e.g. `$.address.lines[2]`. */
  readonly path: string;
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_UNSUPPORTED_VALUE', `cannot encode value at ${path}: ${reason}`, options);
    this.path = path;
  }
}

/**
 * Bytes given as an encoded value (SPEC.md §11) are not the canonical encoding of
 * any value: truncated, an unknown tag, or any of the non-canonical forms §11.3
 * lists. The message names the rule broken, never the value.
 */
export class MalformedValueError extends EnvelopeKitError {
  /** The code of every MalformedValueError. */
  static override readonly code = 'ERR_MALFORMED_VALUE' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'MalformedValueError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'MalformedValueError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_MALFORMED_VALUE', message, options);
  }
}

/** One schema problem: where, and the validator's issue code. Never the value. */
export interface SchemaIssue {
  readonly path: string;
  readonly code: string;
}

/**
 * The decrypted value does not match the schema. Decryption itself succeeded.
 * The message names paths and issue codes only, never the values.
 */
export class SchemaMismatchError extends EnvelopeKitError {
  /** The code of every SchemaMismatchError. */
  static override readonly code = 'ERR_SCHEMA_MISMATCH' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'SchemaMismatchError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'SchemaMismatchError';
  readonly issues: readonly SchemaIssue[];
  constructor(issues: readonly SchemaIssue[]) {
    const list = issues.slice(0, 10).map((i) => `${i.path} (${i.code})`).join(', ');
    super('ERR_SCHEMA_MISMATCH', `decrypted value does not match the schema: ${list}${issues.length > 10 ? ', ...' : ''}`);
    this.issues = issues;
  }
}

/** A field that should hold ciphertext holds something else (fail closed). */
export class UnencryptedFieldError extends EnvelopeKitError {
  /** The code of every UnencryptedFieldError. */
  static override readonly code = 'ERR_UNENCRYPTED_FIELD' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'UnencryptedFieldError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'UnencryptedFieldError';
  readonly path: string;
  constructor(path: string) {
    super('ERR_UNENCRYPTED_FIELD', `field ${path} should be encrypted but is not`);
    this.path = path;
  }
}

/**
 * A field selector matches nothing in the record: a misspelt or absent field.
 * A selector that may match nothing is written with a trailing `?`. Nothing was done.
 */
export class FieldNotFoundError extends EnvelopeKitError {
  /** The code of every FieldNotFoundError. */
  static override readonly code = 'ERR_FIELD_NOT_FOUND' as const;
  /** The class's own name as a literal: minifiers rename classes, and Node's `util.inspect` shows it. */
  static override readonly name: string = 'FieldNotFoundError';
  /** The class name as a literal, so that it survives minification. */
  override readonly name: string = 'FieldNotFoundError';
  /** The selector, as the app wrote it (selectors are code, never data). */
  readonly selector: string;
  constructor(selector: string) {
    super(
      'ERR_FIELD_NOT_FOUND',
      `field selector ${JSON.stringify(selector)} matches nothing in the record (write ${JSON.stringify(`${selector}?`)} if the field may be absent)`,
    );
    this.selector = selector;
  }
}

