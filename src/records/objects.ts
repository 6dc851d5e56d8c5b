/**
 * Whole values: `encryptObject` / `decryptObject` put any supported JavaScript
 * value into a text envelope and back, types intact (SPEC.md §11), optionally
 * validated by a schema on the way out. Plus bounded-concurrency batches.
 * @module
 */
import { type DecryptOptions, type EncryptOptions, decrypt, encrypt } from '../core/envelope.js';
import { EnvelopeKitError, InvalidParameterError, SchemaMismatchError, type SchemaIssue } from '../core/errors.js';
import { envelopeFromTextForDecrypt, envelopeToText } from '../core/format.js';
import { wipe } from '../internal/bytes.js';
import { readOptions } from '../internal/options.js';
import { decodeValue, encodeValue } from './value-encoding.js';

/**
 * A validator with zod's `safeParse` shape (any zod 4 schema fits). Its output
 * type is what {@link decryptObject} returns.
 */
export interface ValueSchema<T> {
  safeParse(data: unknown):
    | { success: true; data: T }
    | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; code?: string }[] } };
}

/** Options of {@link encryptObject}. */
export interface EncryptObjectOptions extends EncryptOptions {
  /** Nesting limit of the value (default 64, at most 1000). */
  readonly maxDepth?: number;
}

/** Options of {@link decryptObject}. */
export interface DecryptObjectOptions<T = unknown> extends DecryptOptions {
  /** Validate the decrypted value; a mismatch throws SchemaMismatchError. */
  readonly schema?: ValueSchema<T>;
  /** Nesting limit of the value (default 64, at most 1000). */
  readonly maxDepth?: number;
}

function pathString(path: readonly PropertyKey[]): string {
  let s = '$';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else if (typeof p === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(p)) s += `.${p}`;
    else s += `[${JSON.stringify(String(p))}]`;
  }
  return s;
}

/**
 * Run a schema over a decrypted value. The error names paths and issue codes, never values.
 * @internal
 */
export function applySchema<T>(schema: ValueSchema<T> | undefined, value: unknown): T {
  if (schema === undefined) return value as T;
  checkSchema(schema);
  let r: ReturnType<ValueSchema<T>['safeParse']>;
  let issues: SchemaIssue[];
  try {
    r = schema.safeParse(value);
    if (r.success) return r.data;
    issues = (r.error?.issues ?? []).map((i) => ({
      path: pathString(Array.isArray(i.path) ? i.path : []),
      code: typeof i.code === 'string' ? i.code : 'invalid',
    }));
  } catch (e) {
    // A schema that throws (rather than reporting) is treated as a mismatch; its error may hold values, so it is not kept.
    void e;
    issues = [{ path: '$', code: 'schema_threw' }];
  }
  throw new SchemaMismatchError(issues.length ? issues : [{ path: '$', code: 'invalid' }]);
}

/**
 * Encrypt a JavaScript value into a text envelope (`ek1.` + base64url): a string
 * that fits in a JSON document or a text column.
 * @param value - any supported value: JSON values, `undefined`, `Date`, `bigint`, `Uint8Array`,
 *   `Map`, `Set`, `NaN`, `±Infinity`, `-0`, nested up to `maxDepth`.
 * @throws UnsupportedValueError naming the path of a value that cannot be encoded; and as {@link encrypt}.
 * @example
 * ```ts
 * import { LocalKeyring, encryptObject, decryptObject } from 'envelope-kit';
 * const provider = new LocalKeyring();
 * provider.createKey({ alias: 'alias/app' });
 * const text = await encryptObject({ name: 'Ada', born: new Date('1815-12-10') }, { provider, keyId: 'alias/app' });
 * const back = await decryptObject(text, { provider });
 * ```
 */
export async function encryptObject(value: unknown, options: EncryptObjectOptions): Promise<string> {
  if (options === null || typeof options !== 'object') throw new InvalidParameterError('encryptObject expects an options object');
  const { maxDepth } = readOptions(options, ['maxDepth'], 'encryptObject options');
  const bytes = encodeValue(value, { maxDepth: maxDepth as number | undefined });
  try {
    return envelopeToText(await encrypt(bytes, options));
  } finally {
    wipe(bytes);
  }
}

/**
 * Decrypt a text envelope made by {@link encryptObject}, and validate it when a schema is given.
 * @returns the value, typed by the schema's output when one is given.
 * @throws as {@link decrypt}; MalformedEnvelopeError when the plaintext is not an encoded value;
 *   SchemaMismatchError (distinct from decryption failures; never shows values).
 */
export async function decryptObject<T = unknown>(envelope: string, options: DecryptObjectOptions<T>): Promise<T> {
  const bytes = envelopeFromTextForDecrypt(envelope);
  if (options === null || typeof options !== 'object') throw new InvalidParameterError('decryptObject expects an options object');
  const { schema, maxDepth } = readOptions(options, ['schema', 'maxDepth'], 'decryptObject options');
  checkSchema(schema);
  const { plaintext } = await decrypt(bytes, options);
  let value: unknown;
  try {
    value = decodeValue(plaintext, { maxDepth: maxDepth as number | undefined });
  } finally {
    wipe(plaintext);
  }
  return applySchema(schema as ValueSchema<T> | undefined, value);
}

/** Check a schema argument without calling it. Never throws a foreign error. */
export function checkSchema(schema: unknown): void {
  if (schema === undefined) return;
  let ok = false;
  try {
    ok = schema !== null && typeof schema === 'object' && typeof (schema as ValueSchema<unknown>).safeParse === 'function';
  } catch {
    ok = false;
  }
  if (!ok) throw new InvalidParameterError('"schema" must have a safeParse method (a zod schema)');
}

/**
 * One item's outcome in a batch: the value, or the error it failed with (always
 * an {@link EnvelopeKitError}: anything else an item throws, such as a
 * caller's callback, is wrapped in an InvalidParameterError with it as `cause`).
 * Order matches the input.
 */
export type BatchResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: EnvelopeKitError };

/** Batch options: how many items are in flight at once (default 8, 1..256). */
export interface BatchOptions {
  readonly concurrency?: number;
}

/**
 * Run `fn` over `items` with at most `concurrency` in flight, keeping order and
 * collecting each item's failure instead of stopping.
 * @internal
 */
export async function mapBounded<I, O>(items: readonly I[], concurrency: unknown, fn: (item: I, index: number) => Promise<O>): Promise<BatchResult<O>[]> {
  let list: I[];
  try {
    if (!Array.isArray(items)) throw new InvalidParameterError('batch input must be an array');
    list = [...items];
  } catch (e) {
    if (e instanceof InvalidParameterError) throw e;
    throw new InvalidParameterError('batch input could not be read', { cause: e });
  }
  const c = concurrency ?? 8;
  if (typeof c !== 'number' || !Number.isInteger(c) || c < 1 || c > 256) {
    throw new InvalidParameterError('"concurrency" must be an integer from 1 to 256');
  }
  const out: BatchResult<O>[] = new Array(list.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < list.length) {
      const i = next++;
      try {
        out[i] = { ok: true, value: await fn(list[i]!, i) };
      } catch (error) {
        out[i] = {
          ok: false,
          error: error instanceof EnvelopeKitError ? error : new InvalidParameterError(`batch item ${i} failed with an error that is not the library's own`, { cause: error }),
        };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(c, list.length) }, worker));
  return out;
}

/** {@link encryptObject} over an array: one envelope (and one data key) per value. */
export async function encryptObjects(values: readonly unknown[], options: EncryptObjectOptions & BatchOptions): Promise<BatchResult<string>[]> {
  const { concurrency } = readOptions(options, ['concurrency'], 'encryptObjects options');
  return mapBounded(values, concurrency, (v) => encryptObject(v, options));
}

/** {@link decryptObject} over an array of text envelopes. */
export async function decryptObjects<T = unknown>(
  envelopes: readonly string[],
  options: DecryptObjectOptions<T> & BatchOptions,
): Promise<BatchResult<T>[]> {
  const { concurrency } = readOptions(options, ['concurrency'], 'decryptObjects options');
  return mapBounded(envelopes, concurrency, (e) => decryptObject<T>(e, options));
}
