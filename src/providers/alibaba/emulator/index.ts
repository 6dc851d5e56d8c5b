/**
 * `envelope-kit/alibaba-emulator`: a loopback Alibaba Cloud KMS emulator backed
 * by the local keyring, for testing applications offline. Node-only
 * (`node:http`); binds 127.0.0.1 only. Also runnable as the
 * `envelope-kit-kms-emulator` command.
 * @module
 */
export { startKmsEmulator, generateEmulatorCredential } from './server.js';
export type { KmsEmulator, KmsEmulatorOptions, RecordedRequest } from './server.js';
export type { EmulatorCredential } from './auth.js';
export { FaultInjector } from './faults.js';
export type { FaultScope, FaultDecision, InjectedError, InjectedDrop } from './faults.js';
export { KmsApiError, kmsErrors } from './kms-error.js';
export { EMULATED_ACTIONS, EMULATOR_MAX_ENCRYPT_BYTES, emulatorKeyVersionId } from './operations.js';
