/**
 * The data-key cache in the bench: envelope-kit's `withDataKeyCache` against
 * the AWS SDK's caching materials manager on local keys, and against no cache
 * on the bundled Alibaba Cloud KMS emulator with injected latency.
 *
 * Besides times, every scenario counts the calls that reach the key provider
 * (or the KMS). Counts are facts, not timings: each has the exact number a
 * working cache makes, and `run.ts` exits non-zero when one differs. More calls
 * than that means the cache is not caching; fewer means a data key served
 * beyond its `maxMessages`, across an encryption context, or for a blob it was
 * not unwrapped from.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  type DataKey,
  type DataKeyCache,
  type DecryptRequest,
  type DecryptedDataKey,
  type GenerateDataKeyRequest,
  type KeyProvider,
  LocalKeyring,
  decryptObject,
  encryptObject,
  withDataKeyCache,
} from 'envelope-kit';
import { AlibabaKmsProvider } from 'envelope-kit/alibaba';
import { type KmsEmulator, startKmsEmulator } from 'envelope-kit/alibaba-emulator';
import {
  type AwsSuite,
  type CacheLimits,
  CountingKeyringNode,
  type CustomerRecord,
  type RecordContender,
  aws,
  awsCachingCmm,
  awsKeyring,
  awsSuiteOptions,
} from './contenders.js';
import { type RecordRow, log, now, rates, roundRobin } from './lib.js';

// ---------------------------------------------------------------- the cache under test

const cache = (provider: KeyProvider, limits: CacheLimits): DataKeyCache => withDataKeyCache(provider, limits);

/** The limits of every cache in the bench, both libraries. */
export const LIMITS: CacheLimits = { maxAge: 60_000, maxMessages: 1000, capacity: 1000 };

/**
 * Encrypt and decrypt one record through a fresh cache in front of `provider`, bound to record id
 * `id`: the cached scenarios' correctness check.
 */
async function cachedRoundTrip(provider: KeyProvider, keyId: string, rec: CustomerRecord, id: number): Promise<boolean> {
  const c = cache(provider, LIMITS);
  try {
    return isDeepStrictEqual(await decryptObject(await encryptObject(rec, { provider: c, keyId, recordId: id }), { provider: c, recordId: id }), rec);
  } finally {
    c.dispose();
  }
}

// ---------------------------------------------------------------- counting

/** A key provider that counts the calls reaching the provider it wraps. */
export class CountingProvider implements KeyProvider {
  readonly providerId: string;
  generateDataKeyCalls = 0;
  decryptCalls = 0;

  constructor(private readonly inner: KeyProvider) {
    this.providerId = inner.providerId;
  }

  generateDataKey(request: GenerateDataKeyRequest): Promise<DataKey> {
    this.generateDataKeyCalls++;
    return this.inner.generateDataKey(request);
  }

  decrypt(request: DecryptRequest): Promise<DecryptedDataKey> {
    this.decryptCalls++;
    return this.inner.decrypt(request);
  }
}

/** One count and the exact number a working cache gives. */
export interface CountCheck {
  readonly scenario: string;
  /** What was counted (`GenerateDataKey`, `Decrypt`, `keyring onEncrypt`, ...). */
  readonly what: string;
  /** Where it was counted. */
  readonly where: string;
  readonly counted: number;
  readonly expected: number;
  readonly ok: boolean;
}

function check(scenario: string, what: string, where: string, counted: number, expected: number): CountCheck {
  return { scenario, what, where, counted, expected, ok: counted === expected };
}

/** The per-run counts of a contender, checked against `expected(records)`; one check per distinct outcome. */
function checkRuns(scenario: string, where: string, runs: readonly RunCounts[], expected: (records: number) => number): CountCheck[] {
  const out: CountCheck[] = [];
  for (const what of ['encrypt', 'decrypt'] as const) {
    const bad = runs.find((r) => r[what] !== expected(r.records));
    const r = bad ?? runs[runs.length - 1]!;
    const name = `${what === 'encrypt' ? r.encryptName : r.decryptName}${runs.length > 1 ? `, each of ${runs.length} runs` : ''}`;
    out.push(check(`${scenario}, ${r.records.toLocaleString('en-US')} records`, name, where, r[what], expected(r.records)));
  }
  return out;
}

/** Calls counted in one timed run. */
interface RunCounts {
  readonly records: number;
  readonly encrypt: number;
  readonly decrypt: number;
  readonly encryptName: string;
  readonly decryptName: string;
}

/** Data-key calls a working cache makes for `records` messages: one per `maxMessages` (SPEC.md §9.10). */
export const keysFor = (records: number): number => Math.ceil(records / LIMITS.maxMessages);

// ---------------------------------------------------------------- 1. records on local keys, cache on

/** Contenders of the records benchmark with a data-key cache, and the checks of their counts. */
export interface CachedRecordContenders {
  readonly ek: RecordContender;
  readonly aws: RecordContender;
  /** The counts of every timed run so far (warm-up excluded), checked. */
  checks(): CountCheck[];
  /**
   * The counters themselves, without a cache: `n` records through the counting
   * provider and the counting keyring must be `n` calls each way.
   */
  controls(n: number, recs: readonly CustomerRecord[]): Promise<CountCheck[]>;
}

/**
 * envelope-kit through `withDataKeyCache(LocalKeyring)` and the AWS SDK through
 * its caching materials manager over the raw AES keyring, committing unsigned
 * suite. Each run starts from cold caches: one for encrypting, and a second,
 * as a reader that did not write the records would have, for decrypting; so
 * both directions pay their misses, and their provider calls are counted apart.
 */
export function cachedRecordContenders(local: LocalKeyring, keyId: string, records: number): CachedRecordContenders {
  const suite: AwsSuite = 'committing-unsigned';
  const opts = awsSuiteOptions(suite);
  const awsRing = awsKeyring(randomBytes(32));
  const ekRuns: RunCounts[] = [];
  const awsRuns: RunCounts[] = [];
  let statsMismatch = 0;

  const ek: RecordContender = {
    label: 'envelope-kit, `withDataKeyCache(LocalKeyring)`',
    records,
    async run(recs) {
      const counted = new CountingProvider(local);
      const writer = cache(counted, LIMITS);
      const reader = cache(counted, LIMITS);
      const out: string[] = new Array(recs.length);
      const t0 = now();
      for (let i = 0; i < recs.length; i++) out[i] = await encryptObject(recs[i], { provider: writer, keyId, recordId: i });
      const t1 = now();
      for (let i = 0; i < recs.length; i++) await decryptObject(out[i]!, { provider: reader, recordId: i });
      const t2 = now();
      // Timed runs only (the warm-up takes a tenth of the records).
      if (recs.length === records) {
        ekRuns.push({
          records: recs.length,
          encrypt: counted.generateDataKeyCalls,
          decrypt: counted.decryptCalls,
          encryptName: '`generateDataKey` calls',
          decryptName: '`decrypt` calls',
        });
        statsMismatch +=
          Math.abs(writer.stats.encrypt.kmsCalls - counted.generateDataKeyCalls) + Math.abs(reader.stats.decrypt.kmsCalls - counted.decryptCalls);
      }
      writer.dispose();
      reader.dispose();
      return { encrypt: t1 - t0, decrypt: t2 - t1 };
    },
    check: (rec) => cachedRoundTrip(local, keyId, rec, 7),
  };

  const awsContender: RecordContender = {
    label: 'AWS SDK, committing unsigned suite, `NodeCachingMaterialsManager`',
    records,
    async run(recs) {
      const counted = new CountingKeyringNode(awsRing);
      const writer = awsCachingCmm(counted, LIMITS);
      const reader = awsCachingCmm(counted, LIMITS);
      const out: Buffer[] = new Array(recs.length);
      const t0 = now();
      for (let i = 0; i < recs.length; i++) out[i] = (await aws.encrypt(writer, JSON.stringify(recs[i]), opts)).result;
      const t1 = now();
      for (let i = 0; i < recs.length; i++) JSON.parse((await aws.decrypt(reader, out[i]!)).plaintext.toString('utf8'));
      const t2 = now();
      if (recs.length === records) {
        awsRuns.push({
          records: recs.length,
          encrypt: counted.encryptCalls,
          decrypt: counted.decryptCalls,
          encryptName: 'keyring `onEncrypt` calls',
          decryptName: 'keyring `onDecrypt` calls',
        });
      }
      return { encrypt: t1 - t0, decrypt: t2 - t1 };
    },
    async check(rec) {
      const cmm = awsCachingCmm(awsRing, LIMITS);
      return isDeepStrictEqual(JSON.parse((await aws.decrypt(cmm, (await aws.encrypt(cmm, JSON.stringify(rec), opts)).result)).plaintext.toString()), rec);
    },
  };

  const controls = async (n: number, recs: readonly CustomerRecord[]): Promise<CountCheck[]> => {
    const counted = new CountingProvider(local);
    const ring = new CountingKeyringNode(awsRing);
    for (const rec of recs.slice(0, n)) {
      await decryptObject(await encryptObject(rec, { provider: counted, keyId }), { provider: counted });
      await aws.decrypt(ring, (await aws.encrypt(ring, JSON.stringify(rec), opts)).result);
    }
    const scenario = `control without a cache, ${n} records`;
    return [
      check(scenario, '`generateDataKey` calls', 'counting provider around `LocalKeyring`', counted.generateDataKeyCalls, n),
      check(scenario, '`decrypt` calls', 'counting provider around `LocalKeyring`', counted.decryptCalls, n),
      check(scenario, 'keyring `onEncrypt` calls', 'counting keyring around `RawAesKeyringNode`', ring.encryptCalls, n),
      check(scenario, 'keyring `onDecrypt` calls', 'counting keyring around `RawAesKeyringNode`', ring.decryptCalls, n),
    ];
  };

  return {
    ek,
    aws: awsContender,
    controls,
    checks: () => [
      ...checkRuns('records, local keyring, cache on', 'counting provider around `LocalKeyring`', ekRuns, keysFor),
      check('records, local keyring, cache on', 'calls in `stats.*.kmsCalls` not seen at the provider, or seen and not in stats (all runs)', 'cache stats vs counting provider', statsMismatch, 0),
      ...checkRuns('records, AWS SDK caching materials manager', 'counting keyring around `RawAesKeyringNode`', awsRuns, keysFor),
    ],
  };
}

// ---------------------------------------------------------------- 2. Alibaba KMS emulator with latency

/** How the emulator scenarios are sized. */
export interface KmsConfig {
  /** Injected latency on every request, in ms. */
  readonly latencyMs: number;
  /** Records per timed run with the cache. */
  readonly cachedRecords: number;
  /** Records per timed run without it (each costs two KMS round trips). */
  readonly uncachedRecords: number;
  readonly reps: number;
  /** Callers at once on a cold cache. */
  readonly concurrent: number;
  /** Encryption contexts interleaved in the multi-tenant run, and its records. */
  readonly tenants: number;
  readonly tenantRecords: number;
}

/** What the emulator scenarios measured and counted. */
export interface KmsResult {
  readonly config: KmsConfig;
  readonly cached: RecordRow;
  readonly uncached: RecordRow;
  readonly tenants: RecordRow;
  readonly checks: CountCheck[];
}

/** Requests the emulator recorded since index `from`, by action. */
function countRequests(kms: KmsEmulator, from: number): { generate: number; decrypt: number; total: number } {
  if (kms.requests.length >= MAX_RECORDED) throw new Error('the emulator dropped recorded requests: counts would be wrong');
  const seen = kms.requests.slice(from);
  return {
    generate: seen.filter((r) => r.action === 'GenerateDataKey').length,
    decrypt: seen.filter((r) => r.action === 'Decrypt').length,
    total: seen.length,
  };
}

const MAX_RECORDED = 1_000_000;

/**
 * Records through `AlibabaKmsProvider` against the bundled emulator on
 * 127.0.0.1, `latencyMs` added to every request, with and without the cache;
 * then a cold cache under concurrent callers, and many tenants interleaved.
 * KMS calls are counted from the emulator's own record of the requests it
 * answered (retries included), not from the cache's counters.
 */
export async function benchKms(records: readonly CustomerRecord[], config: KmsConfig): Promise<KmsResult> {
  const kms = await startKmsEmulator({ maxRecordedRequests: MAX_RECORDED });
  try {
    const keyId = 'alias/bench';
    kms.keyring.createKey({ alias: keyId });
    kms.faults.latency(config.latencyMs, { times: Infinity });
    const provider = new AlibabaKmsProvider({ endpoint: kms.url, credentials: kms.credentials });
    const checks: CountCheck[] = [];
    const where = 'emulator requests';

    const uncachedRuns: RunCounts[] = [];
    const cachedRuns: RunCounts[] = [];
    const timed = (runs: RunCounts[], full: number) => (n: number, c: { generate: number; decrypt: number }) => {
      if (n === full) runs.push({ records: n, encrypt: c.generate, decrypt: c.decrypt, encryptName: 'GenerateDataKey', decryptName: 'Decrypt' });
    };
    const countUncached = timed(uncachedRuns, config.uncachedRecords);
    const countCached = timed(cachedRuns, config.cachedRecords);

    const uncached: RecordContender = {
      label: `envelope-kit, \`AlibabaKmsProvider\` on the emulator, ${config.latencyMs} ms latency, no cache`,
      records: config.uncachedRecords,
      async run(recs) {
        const mark = kms.requests.length;
        const out: string[] = new Array(recs.length);
        const t0 = now();
        for (let i = 0; i < recs.length; i++) out[i] = await encryptObject(recs[i], { provider, keyId });
        const t1 = now();
        for (let i = 0; i < recs.length; i++) await decryptObject(out[i]!, { provider });
        const t2 = now();
        countUncached(recs.length, countRequests(kms, mark));
        return { encrypt: t1 - t0, decrypt: t2 - t1 };
      },
      check: async (rec) => isDeepStrictEqual(await decryptObject(await encryptObject(rec, { provider, keyId }), { provider }), rec),
    };
    const cachedC: RecordContender = {
      label: `envelope-kit, \`withDataKeyCache(AlibabaKmsProvider)\` on the emulator, ${config.latencyMs} ms latency`,
      records: config.cachedRecords,
      async run(recs) {
        const writer = cache(provider, LIMITS);
        const reader = cache(provider, LIMITS);
        const mark = kms.requests.length;
        const out: string[] = new Array(recs.length);
        const t0 = now();
        for (let i = 0; i < recs.length; i++) out[i] = await encryptObject(recs[i], { provider: writer, keyId, recordId: i });
        const t1 = now();
        for (let i = 0; i < recs.length; i++) await decryptObject(out[i]!, { provider: reader, recordId: i });
        const t2 = now();
        countCached(recs.length, countRequests(kms, mark));
        writer.dispose();
        reader.dispose();
        return { encrypt: t1 - t0, decrypt: t2 - t1 };
      },
      check: (rec) => cachedRoundTrip(provider, keyId, rec, 3),
};

    const contenders = [cachedC, uncached];
    for (const c of contenders) if (!(await c.check(records[0]!))) throw new Error(`${c.label}: round trip failed`);
    const samples = await roundRobin(
      contenders,
      config.reps,
      (c, warm) => c.run(records.slice(0, warm ? Math.ceil(c.records / 10) : c.records)),
      (r) => log(`kms emulator: repetition ${r + 1}/${config.reps}`),
    );
    // Without a cache every record costs one call each way: this shows the counting sees every call.
    checks.push(...checkRuns('emulator, no cache', where, uncachedRuns, (n) => n));
    const result = {
      config,
      uncached: rates(uncached.label, uncached.records, samples.get(uncached)!),
      cached: rates(cachedC.label, cachedC.records, samples.get(cachedC)!),
    };
    checks.push(...checkRuns('emulator, cache on', where, cachedRuns, keysFor));

    // Cold cache, `concurrent` callers at once: one GenerateDataKey (single flight), then as many
    // readers at once on another cold cache: one Decrypt.
    {
      const writer = cache(provider, LIMITS);
      const reader = cache(provider, LIMITS);
      const some = records.slice(0, config.concurrent);
      let mark = kms.requests.length;
      const out = await Promise.all(some.map((r, i) => encryptObject(r, { provider: writer, keyId, recordId: i })));
      const enc = countRequests(kms, mark);
      mark = kms.requests.length;
      const back = await Promise.all(out.map((e, i) => decryptObject(e, { provider: reader, recordId: i })));
      const dec = countRequests(kms, mark);
      if (!isDeepStrictEqual(back, some)) throw new Error('concurrent callers: round trip failed');
      const scenario = `emulator, cache on, ${config.concurrent} concurrent callers on a cold cache`;
      checks.push(check(scenario, 'GenerateDataKey', where, enc.generate, 1), check(scenario, 'Decrypt', where, dec.decrypt, 1));
      writer.dispose();
      reader.dispose();
    }

    // Many tenants: record i under context { tenant: t(i mod tenants) }, interleaved.
    let tenants: RecordRow;
    {
      const writer = cache(provider, LIMITS);
      const reader = cache(provider, LIMITS);
      const recs = records.slice(0, config.tenantRecords);
      const ctx = (i: number) => ({ tenant: `t${i % config.tenants}` });
      let mark = kms.requests.length;
      const out: string[] = new Array(recs.length);
      const t0 = now();
      for (let i = 0; i < recs.length; i++) out[i] = await encryptObject(recs[i], { provider: writer, keyId, encryptionContext: ctx(i), recordId: i });
      const t1 = now();
      const enc = countRequests(kms, mark);
      mark = kms.requests.length;
      for (let i = 0; i < recs.length; i++) {
        const back = await decryptObject(out[i]!, { provider: reader, encryptionContext: ctx(i), recordId: i });
        if (i % 997 === 0 && !isDeepStrictEqual(back, recs[i])) throw new Error('tenants: round trip failed');
      }
      const t2 = now();
      const dec = countRequests(kms, mark);
      const expected = Math.min(config.tenants, recs.length) * keysFor(Math.ceil(recs.length / config.tenants));
      const scenario = `emulator, cache on, ${config.tenants} encryption contexts interleaved, ${recs.length.toLocaleString('en-US')} records`;
      checks.push(check(scenario, 'GenerateDataKey', where, enc.generate, expected), check(scenario, 'Decrypt', where, dec.decrypt, expected));
      tenants = rates(`envelope-kit, cache on, ${config.tenants} tenants interleaved`, recs.length, { encrypt: [t1 - t0], decrypt: [t2 - t1] });
      log(`kms emulator: tenants: evictions ${writer.stats.encrypt.evictions} / ${reader.stats.decrypt.evictions}`);
      writer.dispose();
      reader.dispose();
    }
    return { ...result, tenants, checks };
  } finally {
    await kms.close();
  }
}
