/**
 * Record ids and record versions: what binds a ciphertext to the row it was
 * written for. The same two values and the same checks serve whole values
 * (layout 0x00, the record binding of SPEC.md §9.10, which enters the key
 * schedule of §3.3) and record fields (layout 0x01, the field binding of
 * §12.1). Neither is stored in an envelope or sent to a provider: a reader
 * gives them again.
 * @module
 */
import { InvalidParameterError } from './errors.js';
import { isWellFormed, utf8Encode, utf8Length } from '../internal/bytes.js';

/** A record id: binds a ciphertext to its record (its row). */
export type RecordId = string | number;
/** A record version (a version counter, an `updatedAt` as text): binds a ciphertext to one version of its record. */
export type RecordVersion = string | number;

/** Most UTF-8 bytes of a string record id or record version (SPEC.md §12.1). */
export const MAX_RECORD_ID_BYTES = 1024;

/** A record id and a record version, checked; `undefined` is absent. */
export interface RecordBinding {
  readonly recordId: RecordId | undefined;
  readonly recordVersion: RecordVersion | undefined;
}

/**
 * Check a record id or record version (SPEC.md §12.1): absent (`undefined`), a well-formed string of
 * 1 to 1024 bytes of UTF-8, or a safe integer. Anything else (an empty or longer string, a lone
 * surrogate, a fraction, an unsafe integer, another type) is refused.
 * @param id - the caller's value.
 * @param name - the option's name, for the error message.
 * @returns the value, unchanged.
 * @throws InvalidParameterError for any other value.
 */
export function checkRecordId(id: unknown, name: 'recordId' | 'recordVersion' = 'recordId'): RecordId | undefined {
  if (id === undefined) return undefined;
  if (typeof id === 'string' && id.length > 0 && id.length <= MAX_RECORD_ID_BYTES && isWellFormed(id) && utf8Length(id) <= MAX_RECORD_ID_BYTES) return id;
  if (typeof id === 'number' && Number.isSafeInteger(id)) return id;
  throw new InvalidParameterError(`"${name}" must be a well-formed string of 1 to ${MAX_RECORD_ID_BYTES} bytes of UTF-8, or a safe integer`);
}

/**
 * Check a record id and a record version together.
 * @param recordId - the caller's `recordId` (may be `undefined`).
 * @param recordVersion - the caller's `recordVersion` (may be `undefined`).
 * @returns both, checked.
 * @throws InvalidParameterError as {@link checkRecordId}.
 */
export function checkRecordBinding(recordId: unknown, recordVersion: unknown): RecordBinding {
  return { recordId: checkRecordId(recordId), recordVersion: checkRecordId(recordVersion, 'recordVersion') };
}

/** The record binding with neither an id nor a version: `[null,null]`. Never handed out, never written to. */
const NO_RECORD = utf8Encode('[null,null]');

/**
 * The record binding of a whole value (SPEC.md §9.10): UTF-8 of `"[" || id || "," || version || "]"`,
 * each written as in §12.1 (`null` when absent, a JSON string, or a decimal integer, `-0` as `0`);
 * that is, `JSON.stringify([recordId ?? null, recordVersion ?? null])`. It enters the key schedule
 * of layout 0x00 (§3.3).
 * @param binding - a checked record id and version.
 * @returns the binding's bytes. The result for an absent id and version is shared: the caller only reads it.
 */
export function recordBinding(binding: RecordBinding): Uint8Array {
  if (binding.recordId === undefined && binding.recordVersion === undefined) return NO_RECORD;
  return utf8Encode(JSON.stringify([binding.recordId ?? null, binding.recordVersion ?? null]));
}

/**
 * The record binding of a value written without a record id or version: see {@link recordBinding}.
 * @returns the shared bytes of `[null,null]`, which the caller only reads.
 */
export function noRecordBinding(): Uint8Array {
  return NO_RECORD;
}
