/**
 * Helpers for the Alibaba Cloud KMS tests: an emulator per test with a key and
 * an alias, a provider pointed at it, and small assertions.
 */
import { afterEach, expect } from 'vitest';
import { type KmsEmulator, type KmsEmulatorOptions, startKmsEmulator } from '../src/providers/alibaba/emulator/index.js';
import { AlibabaKmsProvider, type AlibabaKmsProviderOptions } from '../src/providers/alibaba/index.js';

const running: KmsEmulator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});

/** Start an emulator closed after the test, with one key behind `alias/app`. */
export async function emulator(options: KmsEmulatorOptions = {}): Promise<{ kms: KmsEmulator; keyId: string }> {
  const kms = await startKmsEmulator(options);
  running.push(kms);
  const { keyId } = kms.keyring.createKey({ alias: 'alias/app' });
  return { kms, keyId };
}

/** A provider on the emulator with fast retries. */
export function providerFor(kms: KmsEmulator, options: Partial<AlibabaKmsProviderOptions> = {}): AlibabaKmsProvider {
  return new AlibabaKmsProvider({
    endpoint: kms.url,
    credentials: kms.credentials,
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    timeoutMs: 2000,
    ...options,
  });
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  expect.fail('expected a rejection');
}

/** Assert that no string in `secrets` appears in the error's message, stack or JSON, nor in its causes'. */
export function expectNoSecrets(err: unknown, secrets: readonly string[]): void {
  let e: unknown = err;
  for (let depth = 0; e !== undefined && depth < 5; depth++) {
    const text = e instanceof Error ? `${e.message}\n${e.stack ?? ''}\n${JSON.stringify(e)}` : String(e);
    for (const s of secrets) expect(text).not.toContain(s);
    e = e instanceof Error ? e.cause : undefined;
  }
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
