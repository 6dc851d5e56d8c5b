/**
 * `envelope-kit/aws-emulator`: a loopback AWS KMS emulator backed by the local
 * keyring, for testing applications offline with `AwsKmsProvider` or the
 * official `@aws-sdk/client-kms`. Node-only (`node:http`); binds 127.0.0.1
 * only. Also runnable as the `envelope-kit-aws-emulator` command.
 * @module
 */
export { startAwsKmsEmulator, generateAwsEmulatorCredential } from './server.js';
export type { AwsKmsEmulator, AwsKmsEmulatorOptions, AwsRecordedRequest } from './server.js';
export type { AwsEmulatorCredential } from './auth.js';
export { AwsFaultInjector } from './faults.js';
export type { FaultScope, FaultDecision } from './faults.js';
export { AwsApiError, awsErrors } from './errors.js';
export { AWS_EMULATED_OPERATIONS, AWS_EMULATOR_MAX_CONTEXT_BYTES, awsEmulatorKeyMaterialId } from './operations.js';
