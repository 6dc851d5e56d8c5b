/**
 * `npm run bench`: envelope-kit side by side with the AWS Encryption SDK and
 * raw `node:crypto`, in one run on this machine, written to `bench/RESULTS.md`
 * as figures and ratios. See the "Benchmarks" section of README.md.
 *
 * Runs against the built package (`dist/`, through the package's own `node`
 * export condition), which `npm run bench` builds first.
 *
 * Flags: `--quick` (fewer records and repetitions, for trying the harness; its
 * figures are not the ones to quote), `--out <file>` (default bench/RESULTS.md),
 * `--no-stream` (leave out section 8, the streaming benchmark of `bench/stream.ts`,
 * which otherwise runs last, in a process of its own).
 * @module
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { LocalKeyring, decryptFields, decryptObject, encrypt, encryptFields, encryptObject, encryptText } from 'envelope-kit';
import { BULK_LABELS, type BulkContender, type BulkKeys, type BulkName, bulkContender } from './bulk.js';
import {
  type CountCheck,
  type KmsConfig,
  type KmsResult,
  LIMITS,
  benchKms,
  cachedRecordContenders,
} from './cache.js';
import {
  AWS_KEY_NAME,
  AWS_KEY_NAMESPACE,
  type AwsSuite,
  type CustomerRecord,
  ENCRYPTED_FIELDS,
  FloorEnvelope,
  type RecordContender,
  aws,
  awsKeyring,
  awsSuiteOptions,
  makeRecords,
} from './contenders.js';
import { type RecordRow, fmt, gc, log, machine, median, now, ratio, rates, roundRobin, spread } from './lib.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const VERBOSE = args.includes('--verbose');
const STREAM = !args.includes('--no-stream');
const OUT = args.includes('--out') ? resolve(args[args.indexOf('--out') + 1]!) : join(ROOT, 'bench', 'RESULTS.md');

const CONFIG = QUICK
  ? { records: 1000, awsDefaultRecords: 100, recordReps: 3, fieldRecords: 1000, fieldReps: 3, bulkReps: 3, startupRuns: 5, mib1Ops: 4 }
  : { records: 10_000, awsDefaultRecords: 1000, recordReps: 5, fieldRecords: 10_000, fieldReps: 5, bulkReps: 5, startupRuns: 21, mib1Ops: 16 };

const KMS: KmsConfig = QUICK
  ? { latencyMs: 2, cachedRecords: 1000, uncachedRecords: 100, reps: 1, concurrent: 64, tenants: 100, tenantRecords: 1000 }
  : { latencyMs: 2, cachedRecords: 10_000, uncachedRecords: 1000, reps: 3, concurrent: 64, tenants: 100, tenantRecords: 10_000 };

const MiB = 2 ** 20;
const started = now();
const loadAverage = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');
const loadAtStart = loadAverage();

// ---------------------------------------------------------------- 1. records

interface RecordsResult {
  /** Uncached contenders: `ek`, `awsCommit`, `awsDefault`, `floor`. */
  readonly rows: Record<string, RecordRow>;
  /** With a data-key cache (`ek`, `aws`), timed in the same round robin. */
  readonly cached: Record<string, RecordRow>;
  readonly checks: CountCheck[];
}

async function benchRecords(records: readonly CustomerRecord[]): Promise<RecordsResult> {
  const provider = new LocalKeyring();
  const { keyId } = provider.createKey();
  const floor = new FloorEnvelope(randomBytes(32));
  const awsRing = awsKeyring(randomBytes(32));

  const ek: RecordContender = {
    label: 'envelope-kit `encryptObject`/`decryptObject` (text envelope)',
    records: CONFIG.records,
    async run(recs) {
      const out: string[] = new Array(recs.length);
      const t0 = now();
      for (let i = 0; i < recs.length; i++) out[i] = await encryptObject(recs[i], { provider, keyId });
      const t1 = now();
      for (let i = 0; i < recs.length; i++) await decryptObject(out[i]!, { provider });
      return { encrypt: t1 - t0, decrypt: now() - t1 };
    },
    check: async (rec) => isDeepStrictEqual(await decryptObject(await encryptObject(rec, { provider, keyId }), { provider }), rec),
  };
  const awsContender = (suite: AwsSuite, label: string, n: number): RecordContender => {
    const opts = awsSuiteOptions(suite);
    return {
      label,
      records: n,
      async run(recs) {
        const out: Buffer[] = new Array(recs.length);
        const t0 = now();
        for (let i = 0; i < recs.length; i++) out[i] = (await aws.encrypt(awsRing, JSON.stringify(recs[i]), opts)).result;
        const t1 = now();
        for (let i = 0; i < recs.length; i++) JSON.parse((await aws.decrypt(awsRing, out[i]!)).plaintext.toString('utf8'));
        return { encrypt: t1 - t0, decrypt: now() - t1 };
      },
      check: async (rec) =>
        isDeepStrictEqual(JSON.parse((await aws.decrypt(awsRing, (await aws.encrypt(awsRing, JSON.stringify(rec), opts)).result)).plaintext.toString()), rec),
    };
  };
  const floorContender: RecordContender = {
    label: 'minimal node:crypto envelope (floor)',
    records: CONFIG.records,
    async run(recs) {
      const out: Buffer[] = new Array(recs.length);
      const t0 = now();
      for (let i = 0; i < recs.length; i++) out[i] = floor.encrypt(recs[i]);
      const t1 = now();
      for (let i = 0; i < recs.length; i++) floor.decrypt(out[i]!);
      return { encrypt: t1 - t0, decrypt: now() - t1 };
    },
    check: async (rec) => isDeepStrictEqual(floor.decrypt(floor.encrypt(rec)), rec),
  };
  const contenders = {
    ek,
    awsCommit: awsContender('committing-unsigned', 'AWS SDK, committing unsigned suite', CONFIG.records),
    awsDefault: awsContender('default', 'AWS SDK, default suite (committing, ECDSA P-384)', CONFIG.awsDefaultRecords),
    floor: floorContender,
  };
  const cached = cachedRecordContenders(provider, keyId, CONFIG.records);
  const cachedList: Record<string, RecordContender> = { ek: cached.ek, aws: cached.aws };
  const list = [...Object.values(contenders), ...Object.values(cachedList)];
  for (const c of list) if (!(await c.check(records[0]!))) throw new Error(`${c.label}: round trip failed`);
  const controls = await cached.controls(10, records);
  const samples = await roundRobin(
    list,
    CONFIG.recordReps,
    (c, warm) => c.run(records.slice(0, warm ? Math.ceil(c.records / 10) : c.records)),
    (r) => log(`records: repetition ${r + 1}/${CONFIG.recordReps}`),
  );
  const rowsOf = (cs: Record<string, RecordContender>) => Object.fromEntries(Object.entries(cs).map(([k, c]) => [k, rates(c.label, c.records, samples.get(c)!)]));
  return { rows: rowsOf(contenders), cached: rowsOf(cachedList), checks: [...controls, ...cached.checks()] };
}

// ---------------------------------------------------------------- 2. fields

async function benchFields(records: readonly CustomerRecord[]): Promise<RecordRow> {
  const provider = new LocalKeyring();
  const { keyId } = provider.createKey();
  const fields = [...ENCRYPTED_FIELDS];
  const sample = records[0]!;
  const stored = await encryptFields(sample, { provider, keyId, fields, recordId: sample.id });
  if (!isDeepStrictEqual(await decryptFields(stored, { provider, fields, recordId: sample.id }), sample)) throw new Error('fields: round trip failed');
  const c = {
    async run(recs: readonly CustomerRecord[]) {
      const out: CustomerRecord[] = new Array(recs.length);
      const t0 = now();
      for (let i = 0; i < recs.length; i++) out[i] = await encryptFields(recs[i]!, { provider, keyId, fields, recordId: recs[i]!.id });
      const t1 = now();
      for (let i = 0; i < recs.length; i++) await decryptFields(out[i]!, { provider, fields, recordId: recs[i]!.id });
      return { encrypt: t1 - t0, decrypt: now() - t1 };
    },
  };
  const n = CONFIG.fieldRecords;
  const samples = await roundRobin([c], CONFIG.fieldReps, (x, warm) => x.run(records.slice(0, warm ? n / 10 : n)));
  return rates('envelope-kit `encryptFields`/`decryptFields`, 5 fields per record', n, samples.get(c)!);
}

// ---------------------------------------------------------------- 3. bulk

const BULK_NAMES: BulkName[] = [
  'envelope-kit',
  'envelope-kit-noble',
  'aws-committing-unsigned',
  'aws-default',
  'node-crypto-raw',
  'node-crypto-chunked',
];

interface BulkRow {
  readonly name: BulkName;
  readonly size: number;
  readonly encMBs: number;
  readonly decMBs: number;
  readonly encSpread: number;
  readonly decSpread: number;
  readonly ops: number;
  readonly reps: number;
}

async function benchBulk(size: number, keys: BulkKeys, dir: string): Promise<BulkRow[]> {
  const plaintext = randomBytes(size);
  const ops = size <= MiB ? CONFIG.mib1Ops : 1;
  const contenders = BULK_NAMES.map((n) => bulkContender(n, keys));
  for (const c of contenders) {
    const back = await c.decrypt(await c.encrypt(plaintext));
    if (Buffer.compare(back, plaintext) !== 0) throw new Error(`${c.name}: bulk round trip failed`);
  }
  const samples = await roundRobin(contenders, CONFIG.bulkReps, async (c) => {
    let env: Awaited<ReturnType<BulkContender['encrypt']>> | undefined;
    const t0 = now();
    for (let i = 0; i < ops; i++) env = await c.encrypt(plaintext);
    const t1 = now();
    gc();
    const t2 = now();
    for (let i = 0; i < ops; i++) await c.decrypt(env!);
    const t3 = now();
    if (VERBOSE) log(`  ${c.name} ${sizeName(size)}: encrypt ${(t1 - t0).toFixed(0)} ms, decrypt ${(t3 - t2).toFixed(0)} ms`);
    return { encrypt: t1 - t0, decrypt: t3 - t2 };
  });
  // Envelopes for the peak-memory children.
  for (const c of contenders) {
    const fd = openSync(join(dir, `${c.name}-${size}.bin`), 'w');
    for (const part of c.fileParts(await c.encrypt(plaintext))) writeSync(fd, part);
    closeSync(fd);
  }
  const mb = (ops * size) / 1e6;
  return contenders.map((c) => {
    const s = samples.get(c)!;
    return {
      name: c.name,
      size,
      encMBs: mb / (median(s.encrypt!) / 1000),
      decMBs: mb / (median(s.decrypt!) / 1000),
      encSpread: spread(s.encrypt!),
      decSpread: spread(s.decrypt!),
      ops,
      reps: CONFIG.bulkReps,
    };
  });
}

// ---------------------------------------------------------------- 4. size

interface SizeRow {
  readonly label: string;
  readonly overhead: number;
}

async function benchSize(): Promise<{ rows: Record<string, SizeRow>; ekIdBytes: number }> {
  const provider = new LocalKeyring();
  const { keyId } = provider.createKey();
  const pt = randomBytes(200);
  const material = randomBytes(32);
  const awsOverhead = async (suite: AwsSuite, names?: { keyNamespace: string; keyName: string }) =>
    (await aws.encrypt(awsKeyring(material, names), pt, awsSuiteOptions(suite))).result.length - pt.length;
  const same = { keyNamespace: provider.providerId, keyName: keyId };
  return {
    ekIdBytes: provider.providerId.length + keyId.length,
    rows: {
      ekBinary: { label: 'envelope-kit `encrypt` (binary)', overhead: (await encrypt(pt, { provider, keyId })).length - pt.length },
      ekText: { label: 'envelope-kit `encryptText` (text form, `ek1.` + base64url)', overhead: (await encryptText(pt, { provider, keyId })).length - pt.length },
      awsCommit: { label: `AWS SDK, committing unsigned suite (\`${AWS_KEY_NAMESPACE}\`/\`${AWS_KEY_NAME}\`)`, overhead: await awsOverhead('committing-unsigned') },
      awsDefault: { label: `AWS SDK, default suite (\`${AWS_KEY_NAMESPACE}\`/\`${AWS_KEY_NAME}\`)`, overhead: await awsOverhead('default') },
      awsCommitSame: {
        label: `AWS SDK, committing unsigned suite, with envelope-kit's own ids (\`${same.keyNamespace}\`/\`${same.keyName}\`)`,
        overhead: await awsOverhead('committing-unsigned', same),
      },
      floor: { label: 'minimal node:crypto envelope (floor; no header)', overhead: 12 + 32 + 16 + 12 + 16 },
    },
  };
}

// ---------------------------------------------------------------- 5. start-up

interface StartupResult {
  readonly emptyMs: number;
  readonly ekMs: number;
  readonly awsMs: number;
  readonly runs: number;
}

function benchStartup(): StartupResult {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const variants = [
    { name: 'empty', code: '' },
    { name: 'ek', code: "await import('envelope-kit')" },
    { name: 'aws', code: "await import('@aws-crypto/client-node')" },
  ];
  const times: Record<string, number[]> = { empty: [], ek: [], aws: [] };
  for (let r = -3; r < CONFIG.startupRuns; r++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(r + 3 + k) % variants.length]!;
      const t0 = now();
      const res = spawnSync(process.execPath, ['--input-type=module', '-e', v.code], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
      const ms = now() - t0;
      if (res.status !== 0) throw new Error(`start-up ${v.name} failed: ${res.stderr}`);
      if (r >= 0) times[v.name]!.push(ms);
    }
  }
  const empty = median(times.empty!);
  return { emptyMs: empty, ekMs: median(times.ek!) - empty, awsMs: median(times.aws!) - empty, runs: CONFIG.startupRuns };
}

// ---------------------------------------------------------------- 6. peak memory

interface RssRow {
  readonly name: BulkName;
  readonly size: number;
  readonly op: 'encrypt' | 'decrypt';
  readonly baseRss: number;
  readonly peakRss: number;
  readonly peakSource: string;
  /** (peak - base) / payload: memory the operation needed, in payloads. The output alone is 1. */
  readonly extraPayloads: number;
}

function benchRss(size: number, dir: string): RssRow[] {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const rows: RssRow[] = [];
  for (const name of BULK_NAMES) {
    for (const op of ['encrypt', 'decrypt'] as const) {
      const res = spawnSync(process.execPath, ['--import', 'tsx', join('bench', 'rss-child.ts'), name, op, String(size), dir], {
        cwd: ROOT,
        env,
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      });
      if (res.status !== 0) throw new Error(`rss child ${name} ${op} failed: ${res.stderr}`);
      const { baseRss, peakRss, peakSource } = JSON.parse(res.stdout.trim().split('\n').pop()!) as { baseRss: number; peakRss: number; peakSource: string };
      rows.push({ name, size, op, baseRss, peakRss, peakSource, extraPayloads: (peakRss - baseRss) / size });
    }
  }
  return rows;
}

// ---------------------------------------------------------------- 8. streaming

/**
 * The sections of RESULTS.md that other benchmarks write (bench/bundle.ts, bench/browser.ts), kept
 * as they are when this one rewrites the rest of the file.
 */
function sectionsOfOthers(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return '';
  }
  const starts = ['## Bundle size and import time', '## Browser and edge: WebCrypto'].map((h) => text.indexOf(`\n${h}`)).filter((i) => i >= 0);
  return starts.length === 0 ? '' : `\n${text.slice(Math.min(...starts) + 1).replace(/\n*$/, '\n')}`;
}

/** Section 8 of RESULTS.md and its target rows, from `bench/stream.ts` run in a process of its own. */
interface StreamPart {
  readonly section: string;
  readonly rows: TargetRow[];
}

function benchStream(dir: string): StreamPart {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const out = join(dir, 'stream.md');
  const res = spawnSync(process.execPath, ['--import', 'tsx', join('bench', 'stream.ts'), '--section', '--out', out, ...(QUICK ? ['--quick'] : [])], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  });
  if (res.status !== 0) throw new Error(`bench/stream.ts failed (exit ${res.status})`);
  const summary = JSON.parse(res.stdout.trim().split('\n').pop()!) as { rows: TargetRow[] };
  return { section: readFileSync(out, 'utf8'), rows: summary.rows };
}

// ---------------------------------------------------------------- report

const TARGETS = {
  recordsVsAws: 12,
  recordsVsFloor: 0.6,
  cachedVsFloor: 1.5,
  cachedVsAwsCaching: 15,
  kmsCachedVsUncached: 50,
  bulkVsRaw: 0.7,
  bulkExtraPayloads: 2,
  overheadVsAws: 0.7,
  importVsAws: 0.25,
};

const verdict = (ok: boolean): string => (ok ? '**met**' : '**missed**');
const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
const sizeName = (b: number): string => (b >= MiB ? `${b / MiB} MiB` : `${b} B`);

async function main(): Promise<void> {
  const m = machine();
  log(`${m.cpu}, ${m.cores} cores, Node ${m.node}${QUICK ? ' (quick mode)' : ''}`);
  const dir = mkdtempSync(join(tmpdir(), 'envelope-kit-bench-'));
  try {
    const records = makeRecords(CONFIG.records);
    const avgJson = records.reduce((a, r) => a + JSON.stringify(r).length, 0) / records.length;

    log('1. records');
    const records1 = await benchRecords(records);
    const rec = records1.rows;
    log('2. field-level');
    const fields = await benchFields(records);
    log('7. KMS emulator');
    const kms = await benchKms(records, KMS);

    const keys: BulkKeys = {
      ekKeyId: 'bench1',
      ekMaterialHex: randomBytes(32).toString('hex'),
      awsMaterialHex: randomBytes(32).toString('hex'),
      rawKeyHex: randomBytes(32).toString('hex'),
    };
    writeFileSync(join(dir, 'keys.json'), JSON.stringify(keys));
    log('3. bulk 1 MiB');
    const bulk1 = await benchBulk(MiB, keys, dir);
    log('3. bulk 64 MiB');
    const bulk64 = await benchBulk(64 * MiB, keys, dir);
    log('4. size');
    const size = await benchSize();
    log('5. start-up');
    const startup = benchStartup();
    log('6. peak memory');
    const rss = [...benchRss(MiB, dir), ...benchRss(64 * MiB, dir)];
    let stream: StreamPart | undefined;
    if (STREAM) {
      log('8. streaming (bench/stream.ts, in a process of its own)');
      stream = benchStream(dir);
    }

    const checks = [...records1.checks, ...kms.checks];
    const r = { m, avgJson, rec, cached: records1.cached, kms, checks, fields, bulk: [...bulk1, ...bulk64], size, startup, rss, stream, seconds: (now() - started) / 1000, load: { start: loadAtStart } };
    writeFileSync(OUT, report(r) + sectionsOfOthers(OUT));
    log(`wrote ${OUT} in ${((now() - started) / 1000).toFixed(0)} s`);
    // The machine-readable summary: one JSON line on stdout (the log goes to stderr).
    process.stdout.write(`${JSON.stringify(summary(r))}\n`);
    const failed = checks.filter((c) => !c.ok);
    for (const c of failed) log(`COUNT FAILED: ${c.scenario}: ${c.what} = ${c.counted}, expected ${c.expected}`);
    if (failed.length > 0) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface RunResult {
  m: ReturnType<typeof machine>;
  avgJson: number;
  rec: Record<string, RecordRow>;
  cached: Record<string, RecordRow>;
  kms: KmsResult;
  checks: CountCheck[];
  fields: RecordRow;
  bulk: BulkRow[];
  size: Awaited<ReturnType<typeof benchSize>>;
  startup: StartupResult;
  rss: RssRow[];
  stream: StreamPart | undefined;
  seconds: number;
  load: { start: string };
}

/** One target: its figure, the ratio, and the bound the ratio (or the figure, without a ratio) must keep. */
interface TargetRow {
  readonly id: string;
  readonly what: string;
  readonly figure: string;
  readonly ratio: number | undefined;
  readonly op: '≥' | '≤' | '<';
  readonly needed: number;
  /** What follows `needed` in the table; `×` for a ratio when absent. */
  readonly unit?: string;
  readonly met: boolean;
}

function targetRows(r: RunResult): TargetRow[] {
  const { rec, cached, kms, bulk, size, startup, rss } = r;
  const b = (name: BulkName, s: number) => bulk.find((x) => x.name === name && x.size === s)!;
  const mem = (name: BulkName, s: number, op: 'encrypt' | 'decrypt') => rss.find((x) => x.name === name && x.size === s && x.op === op)!;
  const ge = (id: string, what: string, a: number, bb: number, unit: string, needed: number): TargetRow => ({
    id,
    what,
    figure: `${fmt(a)} vs ${fmt(bb)} ${unit}`,
    ratio: a / bb,
    op: '≥',
    needed,
    met: a / bb >= needed,
  });
  const le = (id: string, what: string, a: number, bb: number, unit: string, needed: number): TargetRow => ({
    ...ge(id, what, a, bb, unit, needed),
    op: '≤',
    met: a / bb <= needed,
  });
  const ek64 = b('envelope-kit', 64 * MiB);
  const raw64 = b('node-crypto-raw', 64 * MiB);
  const memEnc = mem('envelope-kit', 64 * MiB, 'encrypt').extraPayloads;
  const memDec = mem('envelope-kit', 64 * MiB, 'decrypt').extraPayloads;
  const rows: TargetRow[] = [
    ge('recordsVsAws', 'records, no cache, vs AWS SDK committing unsigned', rec.ek!.bothPerSec, rec.awsCommit!.bothPerSec, 'records/s', TARGETS.recordsVsAws),
    ge('recordsVsFloor', 'records, no cache, vs minimal node:crypto envelope', rec.ek!.bothPerSec, rec.floor!.bothPerSec, 'records/s', TARGETS.recordsVsFloor),
    ge('cachedVsFloor', 'records, cache on (local keyring), vs minimal node:crypto envelope', cached.ek!.bothPerSec, rec.floor!.bothPerSec, 'records/s', TARGETS.cachedVsFloor),
    ge('cachedVsAwsCaching', 'records, cache on (local keyring), vs AWS SDK caching materials manager, committing unsigned', cached.ek!.bothPerSec, cached.aws!.bothPerSec, 'records/s', TARGETS.cachedVsAwsCaching),
    ge('kmsCachedVsUncached', `records on the Alibaba KMS emulator (${kms.config.latencyMs} ms latency), cache on vs no cache`, kms.cached.bothPerSec, kms.uncached.bothPerSec, 'records/s', TARGETS.kmsCachedVsUncached),
    ge('bulkEncryptVsRaw', 'bulk 64 MiB encrypt vs one node:crypto pass', ek64.encMBs, raw64.encMBs, 'MB/s', TARGETS.bulkVsRaw),
    ge('bulkDecryptVsRaw', 'bulk 64 MiB decrypt vs one node:crypto pass', ek64.decMBs, raw64.decMBs, 'MB/s', TARGETS.bulkVsRaw),
    {
      id: 'bulkMemory',
      what: 'bulk 64 MiB memory: no more than one extra copy of the payload (peak growth during the call)',
      figure: `encrypt ${memEnc.toFixed(2)}, decrypt ${memDec.toFixed(2)} payloads`,
      ratio: undefined,
      op: '<',
      needed: TARGETS.bulkExtraPayloads,
      met: memEnc < TARGETS.bulkExtraPayloads && memDec < TARGETS.bulkExtraPayloads,
    },
    le('overheadVsAws', 'overhead for 200 B vs AWS SDK committing unsigned', size.rows.ekBinary!.overhead, size.rows.awsCommit!.overhead, 'B', TARGETS.overheadVsAws),
    le('importVsAws', 'import time vs AWS SDK', startup.ekMs, startup.awsMs, 'ms', TARGETS.importVsAws),
    ...(r.stream?.rows ?? []),
  ];
  return rows;
}

/** The run in one JSON object: targets (ratio, needed, met) and counts (counted, expected, ok). */
function summary(r: RunResult): unknown {
  return {
    quick: QUICK,
    targets: Object.fromEntries(targetRows(r).map((t) => [t.id, { ratio: t.ratio === undefined ? null : Number(t.ratio.toFixed(3)), needed: `${{ '≥': '>=', '≤': '<=', '<': '<' }[t.op]}${t.needed}`, met: t.met }])),
    counts: r.checks.map((c) => ({ scenario: c.scenario, what: c.what, counted: c.counted, expected: c.expected, ok: c.ok })),
    countsOk: r.checks.every((c) => c.ok),
  };
}

function report(r: RunResult): string {
  const { rec, bulk, size, startup, rss } = r;
  const b = (name: BulkName, s: number) => bulk.find((x) => x.name === name && x.size === s)!;
  const ek64 = b('envelope-kit', 64 * MiB);
  const imp = startup.ekMs / startup.awsMs;
  const L: string[] = [];
  const p = (s = '') => L.push(s);

  p('# envelope-kit benchmark results');
  p();
  p(`Written by \`npm run bench\` (bench/run.ts)${QUICK ? ' in **quick mode** (fewer records and repetitions: not figures to quote)' : ''}.`);
  p('Every figure below comes from the same run; the ratios compare contenders measured side by side.');
  p();
  p('## Machine');
  p();
  p(`- CPU: ${r.m.cpu}, ${r.m.cores} cores`);
  p(`- Memory: ${r.m.memoryGiB.toFixed(1)} GiB`);
  p(`- Node ${r.m.node} (OpenSSL ${r.m.openssl}), ${r.m.platform}`);
  p(`- Date: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; the run took ${r.seconds.toFixed(0)} s; load average ${r.load.start} at the start, ${loadAverage()} at the end (other work on the machine shows in the spread columns)`);
  p(`- Peers: @aws-crypto/client-node ${awsVersion()}, raw AES keyring (no network)`);
  p();
  p('## Targets');
  p();
  p('| target | figure | ratio | needed | |');
  p('| --- | --- | --- | --- | --- |');
  for (const t of targetRows(r)) {
    p(`| ${t.what} | ${t.figure} | ${t.ratio === undefined ? '' : ratio(t.ratio)} | ${t.op} ${t.needed}${t.unit ?? (t.ratio === undefined ? '' : '×')} | ${verdict(t.met)} |`);
  }
  p();
  if (r.checks.length > 0) {
    p('Counts of data-key calls (section 7): facts, not timings. Each must equal what a working cache makes, and the bench exits non-zero when one does not.');
    p();
    p('| scenario | what | where | counted | expected | |');
    p('| --- | --- | --- | --- | --- | --- |');
    const n = (x: number) => x.toLocaleString('en-US');
    for (const c of r.checks) p(`| ${c.scenario} | ${c.what} | ${c.where} | ${n(c.counted)} | ${n(c.expected)} | ${c.ok ? '**ok**' : '**FAILED**'} |`);
    p();
  }
  p('## 1. Records');
  p();
  p(`${fmt(CONFIG.records)} customer records, ${r.avgJson.toFixed(0)} bytes of JSON on average, encrypted one by one (one envelope and a fresh data key per record), then decrypted.`);
  p(`Local keys only: envelope-kit's \`LocalKeyring\`, the AWS SDK's \`RawAesKeyringNode\`. No encryption context. Median of ${CONFIG.recordReps} interleaved repetitions after a warm-up.`);
  p(`The AWS default suite signs every message with ECDSA P-384 and is timed on the first ${fmt(CONFIG.awsDefaultRecords)} records only (its rate per second is what is compared).`);
  p();
  p('| contender | records | encrypt /s | decrypt /s | encrypt + decrypt /s | spread | envelope-kit is |');
  p('| --- | --- | --- | --- | --- | --- | --- |');
  for (const row of Object.values(rec)) {
    p(`| ${row.label} | ${fmt(row.records)} | ${fmt(row.encPerSec)} | ${fmt(row.decPerSec)} | ${fmt(row.bothPerSec)} | ${row.spreadPct.toFixed(0)}% | ${row === rec.ek ? '' : ratio(rec.ek!.bothPerSec / row.bothPerSec)} |`);
  }
  p();
  p('The floor is the least an envelope can do: random data key, AES-GCM wrap of it, AES-GCM encryption of `JSON.stringify(record)`, no header, no key commitment, no key derivation, binary output; three `randomBytes` calls per record (key and two IVs).');
  p("envelope-kit does the same work plus a typed value encoding, an authenticated header, HKDF content key and key commitment, and the text form (base64url), so that the result fits a JSON document or a text column.");
  p("Spread is (max - min) / median of the encrypt + decrypt time over the repetitions.");
  p();
  p('## 2. Field-level encryption');
  p();
  p(`\`encryptFields\` on the same ${fmt(r.fields.records)} records with 5 encrypted fields (\`${ENCRYPTED_FIELDS.join('`, `')}\`), record id bound; one data key per record, one envelope per field; then \`decryptFields\`.`);
  p();
  p('| | records/s | fields/s |');
  p('| --- | --- | --- |');
  p(`| encryptFields | ${fmt(r.fields.encPerSec)} | ${fmt(r.fields.encPerSec * 5)} |`);
  p(`| decryptFields | ${fmt(r.fields.decPerSec)} | ${fmt(r.fields.decPerSec * 5)} |`);
  p(`| encrypt + decrypt | ${fmt(r.fields.bothPerSec)} | ${fmt(r.fields.bothPerSec * 5)} |`);
  p();
  p(`Spread ${r.fields.spreadPct.toFixed(0)}%. For comparison, whole-record \`encryptObject\` + \`decryptObject\` did ${fmt(rec.ek!.bothPerSec)} records/s in the same run.`);
  p();
  p('## 3. Bulk');
  p();
  p(`Random payloads; MB/s = 10⁶ bytes of plaintext per second. Median of ${CONFIG.bulkReps} interleaved repetitions after a warm-up; 1 MiB samples time ${CONFIG.mib1Ops} operations each, 64 MiB samples one.`);
  p('"vs raw" divides by the single node:crypto AES-256-GCM pass over the same bytes (`update()` over the whole payload, output kept as returned), the limit on this machine.');
  p();
  p('| payload | contender | encrypt MB/s | decrypt MB/s | encrypt vs raw | decrypt vs raw | spread enc / dec |');
  p('| --- | --- | --- | --- | --- | --- | --- |');
  for (const row of bulk) {
    const raw = b('node-crypto-raw', row.size);
    p(`| ${sizeName(row.size)} | ${BULK_LABELS[row.name]} | ${fmt(row.encMBs)} | ${fmt(row.decMBs)} | ${ratio(row.encMBs / raw.encMBs)} | ${ratio(row.decMBs / raw.decMBs)} | ${row.encSpread.toFixed(0)}% / ${row.decSpread.toFixed(0)}% |`);
  }
  p();
  const n64 = b('envelope-kit-noble', 64 * MiB);
  p(`What the node:crypto seam buys: at 64 MiB envelope-kit on node:crypto encrypts ${ratio(ek64.encMBs / n64.encMBs)} and decrypts ${ratio(ek64.decMBs / n64.decMBs)} as fast as on @noble/ciphers (measured, not extrapolated).`);
  p();
  p('## 4. Size');
  p();
  p('Bytes added to a 200-byte plaintext, one local/raw-AES wrapping key, no encryption context.');
  p();
  p('| format | overhead (bytes) | envelope-kit binary is |');
  p('| --- | --- | --- |');
  for (const row of Object.values(size.rows)) {
    p(`| ${row.label} | ${row.overhead} | ${row === size.rows.ekBinary ? '' : ratio(size.rows.ekBinary!.overhead / row.overhead)} |`);
  }
  p();
  p(`The key identifiers are stored in clear in both formats. envelope-kit stores provider id \`local\` and a 6-character key id (${size.ekIdBytes} bytes); the AWS figures use the key namespace and name of the AWS developer guide's raw AES keyring example, \`${AWS_KEY_NAMESPACE}\` and \`${AWS_KEY_NAME}\` (${AWS_KEY_NAMESPACE.length + AWS_KEY_NAME.length} bytes). The row "with envelope-kit's own ids" gives AWS the same ${size.ekIdBytes} bytes of names; each byte of name adds one byte to either format.`);
  p('The text form is the binary envelope in base64url (4/3 of the whole envelope, plus `ek1.`); the AWS SDK has no text form.');
  p();
  p('## 5. Start-up');
  p();
  p(`Wall time of \`node --input-type=module -e "await import('<package>')"\` in a fresh process, minus the same with an empty script (${fmt(startup.emptyMs)} ms); median of ${startup.runs} interleaved runs after 3 warm-up runs each. envelope-kit is the built package (\`dist/index.node.js\`, through the \`node\` export condition).`);
  p();
  p('| package | import time (ms) |');
  p('| --- | --- |');
  p(`| envelope-kit | ${fmt(startup.ekMs)} |`);
  p(`| @aws-crypto/client-node | ${fmt(startup.awsMs)} |`);
  p(`| ratio | ${ratio(imp)} |`);
  p();
  p('## 6. Peak memory of the bulk cases');
  p();
  p('Each operation runs once in a child process of its own (`bench/rss-child.ts`). "base" is the RSS with the input in memory, after a GC; "peak" is the highest RSS during the call.');
  p(`Peak source: ${[...new Set(rss.map((x) => x.peakSource))].join(', ')}. On Linux the child resets its high-water mark just before the call (\`/proc/self/clear_refs\`) and reads \`VmHWM\`, because \`process.resourceUsage().maxRSS\` inherits the parent's peak across fork and exec (a child of this ~400 MiB parent would report at least that).`);
  p('"extra" is (peak - base) / payload: the memory the call needed, in payloads. The output alone is 1.0; a second copy of the payload would bring it to 2.0 or more, which is what the memory target forbids.');
  p("envelope-kit's own figure above 1.0 is not a copy it holds: node:crypto's `update()` returns a new buffer for every 1 MiB chunk, and V8 frees those only at its next collection, which external-memory pressure triggers after about 32 MiB (the reference row, which does the same with no library around it, shows the same 1.5). It does not grow with the payload.");
  p('At 1 MiB the figures are close to the resolution of the measure (the process allocates and frees other memory too).');
  p();
  p('| payload | contender | op | base RSS | peak RSS | extra (payloads) |');
  p('| --- | --- | --- | --- | --- | --- |');
  for (const row of rss) {
    p(`| ${sizeName(row.size)} | ${BULK_LABELS[row.name]} | ${row.op} | ${mib(row.baseRss)} | ${mib(row.peakRss)} | ${row.extraPayloads.toFixed(2)} |`);
  }
  p();
  reportCache(r, p);
  if (r.stream) {
    p(r.stream.section.trimEnd());
    p();
  }
  p('## Reproduce');
  p();
  p('```sh');
  p('npm install');
  p('npm run bench          # builds dist/ with tsup, then runs bench/run.ts; about 10 minutes on 2 cores, 5 of them section 8');
  p('npm run bench:stream   # section 8 alone, into bench/RESULTS-stream.md');
  p('```');
  p();
  p('`npx tsx bench/run.ts --quick` runs the same harness with fewer records and repetitions (after `npx tsup`). Close other work first: the contenders are interleaved so that load hits them alike, but the spread column shows how steady the machine was.');
  p();
  return L.join('\n');
}

/** Section 7 of RESULTS.md: the data-key cache. */
function reportCache(r: RunResult, p: (s?: string) => void): void {
  const { rec, cached, kms } = r;
  const row = (x: RecordRow, base: RecordRow | undefined) =>
    p(`| ${x.label} | ${fmt(x.records)} | ${fmt(x.encPerSec)} | ${fmt(x.decPerSec)} | ${fmt(x.bothPerSec)} | ${x.spreadPct.toFixed(0)}% | ${base && x !== base ? ratio(base.bothPerSec / x.bothPerSec) : ''} |`);
  const count = (scenario: string, what: string) => r.checks.find((c) => c.scenario.startsWith(scenario) && c.what.startsWith(what));
  p('## 7. Data-key cache');
  p();
  p(`Every cache has the same limits: \`maxAge\` ${LIMITS.maxAge / 1000} s, ${fmt(LIMITS.maxMessages)} messages per data key, ${fmt(LIMITS.capacity)} entries. envelope-kit: \`withDataKeyCache(provider, { maxAge: ${LIMITS.maxAge}, maxMessages: ${LIMITS.maxMessages}, capacity: ${LIMITS.capacity} })\`. AWS SDK: \`NodeCachingMaterialsManager\` over the raw AES keyring with \`getLocalCryptographicMaterialsCache(${LIMITS.capacity})\`, \`maxMessagesEncrypted: ${LIMITS.maxMessages}\`, \`maxAge: ${LIMITS.maxAge}\`, \`maxBytesEncrypted\` left at the SDK's maximum (envelope-kit's cache runs without a byte limit too), a named partition, the committing unsigned suite.`);
  p('Each timed run starts from two cold caches: one that encrypts, and a second that decrypts, as a reader that did not write the records would; so both directions pay their misses, and their calls are counted apart.');
  p("envelope-kit binds each record to its id (`recordId: i`, in the envelope, not sent to the KMS), so rows that share a data key cannot be swapped. The AWS SDK's rows are not bound: it has no binding outside the encryption context, and the context is part of its cache key (an id there would mean a data key per row).");
  p();
  p('### Records on local keys');
  p();
  p(`The records of section 1, timed in the same round robin (${CONFIG.recordReps} repetitions after a warm-up, median).`);
  p();
  p('| contender | records | encrypt /s | decrypt /s | encrypt + decrypt /s | spread | envelope-kit with cache is |');
  p('| --- | --- | --- | --- | --- | --- | --- |');
  for (const x of [cached.ek!, cached.aws!, rec.floor!, rec.ek!, rec.awsCommit!]) row(x, cached.ek);
  p();
  const onEnc = count('records, AWS SDK', 'keyring `onEncrypt`');
  const onDec = count('records, AWS SDK', 'keyring `onDecrypt`');
  p(
    `That the AWS SDK's cache caches is counted, not assumed: its keyring is wrapped in one that counts the calls reaching the raw AES keyring (\`CountingKeyringNode\`, bench/contenders.ts). In every timed run of ${fmt(CONFIG.records)} records it saw ${onEnc?.counted ?? '?'} \`onEncrypt\` and ${onDec?.counted ?? '?'} \`onDecrypt\` calls (without the cache: one per record each way); likewise envelope-kit's \`LocalKeyring\` behind a counting provider. ` +
      'The SDK caches only when `encrypt()` is given the plaintext whole (a string or bytes: it passes `plaintextLength` to the materials manager; `encryptStream()` does not) and only cache-safe suites (the HKDF suites; the committing unsigned suite is one).',
  );
  p();
  p(`### Alibaba Cloud KMS emulator, ${kms.config.latencyMs} ms latency`);
  p();
  p(`\`AlibabaKmsProvider\` against the bundled emulator (\`envelope-kit/alibaba-emulator\`) on 127.0.0.1, over HTTP, with ${kms.config.latencyMs} ms added to every request by its fault injector (\`latency(${kms.config.latencyMs}, { times: Infinity })\`). Records one after the other; ${kms.config.reps === 1 ? 'one repetition' : `${kms.config.reps} interleaved repetitions`} after a warm-up, median. Without a cache every record costs a GenerateDataKey and a Decrypt round trip, so that run takes ${fmt(kms.config.uncachedRecords)} records; the rates per second are compared.`);
  p('KMS calls are counted from the emulator\'s own record of the requests it answered (retries would count), not from the cache\'s counters.');
  p();
  p('| contender | records | encrypt /s | decrypt /s | encrypt + decrypt /s | spread | envelope-kit with cache is |');
  p('| --- | --- | --- | --- | --- | --- | --- |');
  row(kms.cached, kms.cached);
  row(kms.uncached, kms.cached);
  row(kms.tenants, kms.cached);
  p();
  p(`Cold cache under load: ${kms.config.concurrent} \`encryptObject\` calls started at once on a cold cache must make one GenerateDataKey, and ${kms.config.concurrent} \`decryptObject\` calls of their envelopes at once on another cold cache one Decrypt.`);
  p(`Many tenants: ${fmt(kms.config.tenantRecords)} records, record i under the encryption context \`{ tenant: "t" + (i mod ${kms.config.tenants}) }\` (contexts interleaved), cache capacity ${fmt(LIMITS.capacity)}: one data key per context each way (its row above is one run).`);
  p('The counts, with what each must be, are in the second table of "Targets".');
  p();
}

function awsVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', '@aws-crypto', 'client-node', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

await main();
