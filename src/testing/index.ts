/**
 * `envelope-kit/testing`: property tests of an app's own record encryption.
 * Records are generated from the app's zod 4 schema; each invariant is a
 * fast-check property, and {@link checkRecordEncryption} runs them all.
 * Needs `fast-check` (an optional peer dependency of envelope-kit). Every
 * property is a plain fast-check property: give it to `fc.assert`, or drive
 * `recordArbitrary(schema)` from `@fast-check/vitest` yourself.
 * @module
 */
export { recordArbitrary, sensitiveSelectors, piiString } from './arbitrary.js';
export type { RecordSchema } from './arbitrary.js';
export {
  checkRecordEncryption,
  recordEncryptionProperties,
  roundTripProperty,
  noPlaintextProperty,
  bindingProperty,
  blindIndexProperty,
  schemaProperty,
  findPlaintext,
  sensitiveFieldsOf,
  allowedCollisions,
  MIN_SENSITIVE_LENGTH,
  RecordEncryptionCheckError,
} from './properties.js';
export type {
  BlindIndexCheck,
  CheckRecordEncryptionOptions,
  InvariantName,
  PlaintextReport,
  RecordEncryptionConfig,
} from './properties.js';
