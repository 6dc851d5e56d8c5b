/**
 * Helpers for the AWS KMS tests: an emulator per test with a key and an alias,
 * a provider and an official `KMSClient` pointed at it, and small assertions.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { afterEach } from 'vitest';
import { type AwsKmsEmulator, type AwsKmsEmulatorOptions, startAwsKmsEmulator } from '../src/providers/aws/emulator/index.js';
import { AwsKmsProvider, type AwsKmsProviderOptions } from '../src/providers/aws/index.js';

export { rejection, expectNoSecrets, utf8, hex } from './alibaba-helpers.js';

const running: AwsKmsEmulator[] = [];
const clients: KMSClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(running.splice(0).map((e) => e.close()));
});

/** Start an emulator closed after the test, with one key (UUID id) behind `alias/app`. */
export async function awsEmulator(options: AwsKmsEmulatorOptions = {}): Promise<{ kms: AwsKmsEmulator; keyId: string; arn: string }> {
  const kms = await startAwsKmsEmulator(options);
  running.push(kms);
  const { keyId, arn } = kms.createKey({ alias: 'alias/app' });
  return { kms, keyId, arn };
}

/** A provider on the emulator with fast retries. */
export function awsProviderFor(kms: AwsKmsEmulator, options: Partial<AwsKmsProviderOptions> = {}): AwsKmsProvider {
  return new AwsKmsProvider({
    region: kms.region,
    endpoint: kms.url,
    credentials: kms.credentials,
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    timeoutMs: 2000,
    ...options,
  });
}

/** The official client on the emulator (no retries, so that error shapes are seen as answered). */
export function sdkClientFor(
  kms: AwsKmsEmulator,
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = kms.credentials,
  maxAttempts = 1,
): KMSClient {
  const c = new KMSClient({ region: kms.region, endpoint: kms.url, credentials, maxAttempts });
  clients.push(c);
  return c;
}
