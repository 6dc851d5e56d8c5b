/**
 * Framed envelope vectors (layout 0x02, SPEC.md §14, §10.5): every file in test/vectors/framed/ is
 * 1. recomputed value by value from its inputs, as SPEC.md says, with `node:crypto` only,
 * 2. run through the library: `decrypt`, `decryptText`, `decryptStream` fed 1 byte and 1000
 *    bytes at a time (and 1000 in parallel mode), `decryptRange` over the whole plaintext and
 *    over the file's range, and `inspect`,
 * 3. run through the independent reader of spec-crypto.ts (SPEC.md §3.5 and §14.4, nothing of
 *    the library's), in memory and by range,
 * each giving the code the file expects; and the committed files must be exactly what the
 * generator writes.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LocalKeyring, decrypt, decryptRange, decryptStream, decryptText, inspect } from '../src/index.js';
import { runs } from './helpers.js';
import {
  SpecError,
  type SpecKeyring,
  concat,
  encodeEntries,
  gcmOpen,
  gcmSeal,
  providerContextBytes,
  specDecrypt,
  specDecryptRange,
  specFramedShape,
  specKeySchedule,
  specParseHeader,
  specRecordBinding,
  specSegmentNonce,
  xaesOpen,
} from './spec-crypto.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const DIR = path.join(ROOT, 'test', 'vectors', 'framed');
const run = promisify(execFile);

// ---------------------------------------------------------------- vector files (SPEC.md §10.5)

type Vector = ReadonlyMap<string, string> & { readonly file: string };

function parse(file: string, text: string): Vector {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const i = line.indexOf(': ');
    if (i <= 0) throw new Error(`${file}: not a "key: value" line: ${line}`);
    const key = line.slice(0, i);
    if (fields.has(key)) throw new Error(`${file}: duplicate field ${key}`);
    fields.set(key, line.slice(i + 2));
  }
  return Object.assign(fields, { file });
}

const files = (await readdir(DIR)).filter((f) => f.endsWith('.txt')).sort();
const vectors: Vector[] = await Promise.all(files.map(async (f) => parse(f, await readFile(path.join(DIR, f), 'utf8'))));

function field(v: Vector, key: string): string {
  const x = v.get(key);
  if (x === undefined) throw new Error(`${v.file}: missing field "${key}"`);
  return x;
}
function bytes(v: Vector, key: string): Uint8Array {
  const h = field(v, key);
  if (!/^(?:[0-9a-f]{2})*$/.test(h)) throw new Error(`${v.file}: "${key}" is not lower-case hex`);
  return new Uint8Array(Buffer.from(h, 'hex'));
}
function int(v: Vector, key: string): number {
  const s = field(v, key);
  if (!/^(0|[1-9][0-9]*)$/.test(s)) throw new Error(`${v.file}: "${key}" is not a decimal integer`);
  return Number(s);
}
/** `a..b`, as the files write a range. */
function span(v: Vector, key: string): [number, number] {
  const m = /^(0|[1-9][0-9]*)\.\.(0|[1-9][0-9]*)$/.exec(field(v, key));
  if (!m) throw new Error(`${v.file}: "${key}" is not a range a..b`);
  return [Number(m[1]), Number(m[2])];
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const json = (v: Vector, key: string): unknown => JSON.parse(field(v, key));
const CODES = ['ERR_MALFORMED_ENVELOPE', 'ERR_UNSUPPORTED_VERSION', 'ERR_DECRYPTION_FAILED', 'ERR_INVALID_PARAMETER', 'ERR_KEY_NOT_FOUND', 'ERR_KEY_DISABLED', 'ERR_NO_MATCHING_PROVIDER'];
const cases = vectors.map((v) => [v.file, v] as const);

/** The record id or version the reader gives (SPEC.md §9.10): `null` is none. */
function readBinding(v: Vector, key: 'read record id' | 'read record version'): string | number | undefined {
  return (json(v, key) as string | number | null) ?? undefined;
}
function bindingOf(v: Vector, who: 'written' | 'read'): Uint8Array {
  return specRecordBinding(json(v, `${who} record id`) as string | number | null, json(v, `${who} record version`) as string | number | null);
}

describe('framed vector files', () => {
  it('exist, cover every scenario of SPEC.md §10.5, and each is well-formed', async () => {
    expect(vectors.length).toBeGreaterThanOrEqual(24);
    const spec = await readFile(path.join(ROOT, 'SPEC.md'), 'utf8');
    const section = spec.slice(spec.indexOf('### 10.5'), spec.indexOf('## 11.'));
    for (const v of vectors) {
      expect(field(v, 'name') + '.txt').toBe(v.file);
      const e = field(v, 'expect');
      expect(e === 'success' || CODES.includes(e), `${v.file}: expect ${e}`).toBe(true);
      const re = field(v, 'range expect');
      expect(re === 'success' || CODES.includes(re), `${v.file}: range expect ${re}`).toBe(true);
      expect(field(v, 'description').length).toBeGreaterThan(0);
      for (const k of ['master key', 'data key', 'message id', 'blob nonce', 'blob aad', 'blob', 'binding', 'keys input', 'keys', 'content key', 'commitment', 'header', 'authenticated header', 'plaintext', 'envelope']) bytes(v, k);
      for (const k of ['key version', 'segment size', 'segments', 'range offset', 'range length']) int(v, k);
      for (let i = 0; i < int(v, 'segments'); i++) {
        bytes(v, `segment ${i} nonce`);
        span(v, `segment ${i} chunk`);
        span(v, `segment ${i} body range`);
        bytes(v, `segment ${i} tag`);
      }
      // SPEC.md lists each file, with its expectation, in the table of §10.5.
      expect(section, v.file).toMatch(new RegExp('`' + field(v, 'name') + '` \\| ' + (e === 'success' ? 'success' : '`' + e + '`') + ' \\|'));
    }
    for (const e of ['success', 'ERR_DECRYPTION_FAILED', 'ERR_MALFORMED_ENVELOPE']) expect(vectors.some((v) => field(v, 'expect') === e)).toBe(true);
  });

  it('are exactly what the generator writes (re-run into a temporary folder)', async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'ek-framed-vectors-'));
    try {
      await run(process.execPath, ['--import', 'tsx', '--conditions=envelope-kit-source', path.join(DIR, 'generate.ts'), out], { cwd: ROOT });
      const regenerated = (await readdir(out)).filter((f) => f.endsWith('.txt')).sort();
      expect(regenerated).toEqual(files);
      for (const f of regenerated) {
        expect(await readFile(path.join(out, f), 'utf8'), f).toBe(await readFile(path.join(DIR, f), 'utf8'));
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- every intermediate value, recomputed from SPEC.md

/** The vector whose header was changed before its segments were sealed over it (§10.5): the last byte of its commitment. */
const COMMITMENT_CHANGED = 'framed-fail-commitment-changed';

describe('framed vectors: every intermediate value, recomputed from SPEC.md', () => {
  it.each(cases)('%s', (_file, v) => {
    const enc = new TextEncoder();
    const dataKey = bytes(v, 'data key');
    const messageId = bytes(v, 'message id');
    const segmentSize = int(v, 'segment size');
    const plaintext = bytes(v, 'plaintext');

    // §3.2.1 and §6: the provider context, the blob's associated data, the blob.
    const context = json(v, 'encryption context') as Record<string, string>;
    const entries = Object.entries(context)
      .map(([k, x]) => [enc.encode(k), enc.encode(x)] as [Uint8Array, Uint8Array])
      .sort((a, b) => Buffer.compare(a[0], b[0]));
    const pctx = providerContextBytes(entries);
    const listed = Object.entries(json(v, 'provider context') as Record<string, string>).map(([k, x]) => [enc.encode(k), enc.encode(x)] as const);
    expect(hex(encodeEntries(listed))).toBe(hex(pctx));
    const keyId = enc.encode(field(v, 'key id'));
    const prefix = concat(Uint8Array.of(0x02, keyId.length), keyId, Uint8Array.of(int(v, 'key version')));
    expect(field(v, 'blob aad')).toBe(hex(concat(prefix, pctx)));
    const blob = bytes(v, 'blob');
    expect(hex(blob.subarray(0, prefix.length + 24))).toBe(hex(prefix) + field(v, 'blob nonce'));
    expect(hex(xaesOpen(bytes(v, 'master key'), bytes(v, 'blob nonce'), bytes(v, 'blob aad'), blob.subarray(prefix.length + 24)) ?? new Uint8Array())).toBe(field(v, 'data key'));

    // §9.10 and §14.2: the binding and the key schedule of the writer.
    const ks = specKeySchedule(0x02, dataKey, messageId, bindingOf(v, 'written'));
    expect(hex(ks.binding)).toBe(field(v, 'binding'));
    expect(hex(ks.keysInput)).toBe(field(v, 'keys input'));
    expect(hex(ks.keys)).toBe(field(v, 'keys'));
    expect(hex(ks.contentKey)).toBe(field(v, 'content key'));
    expect(hex(ks.commitment)).toBe(field(v, 'commitment'));

    // §14.1: the header, from its pieces.
    const len = (n: number) => (n < 0x80 ? Uint8Array.of(n) : Uint8Array.of(0x80 | (n >> 8), n & 0xff));
    const lenBytes = (b: Uint8Array) => concat(len(b.length), b);
    const u32 = Uint8Array.of(segmentSize >>> 24, (segmentSize >>> 16) & 0xff, (segmentSize >>> 8) & 0xff, segmentSize & 0xff);
    const commitment = ks.commitment.slice();
    if (v.file === `${COMMITMENT_CHANGED}.txt`) commitment[31]! ^= 0x01;
    const header = concat(
      Uint8Array.of(0x45, 0x4b, 0x01, 0x01, 0x02),
      messageId,
      encodeEntries(entries),
      Uint8Array.of(1),
      lenBytes(enc.encode('local')),
      lenBytes(v.has('header key id') ? enc.encode(field(v, 'header key id')) : keyId),
      lenBytes(blob),
      u32,
      commitment,
    );
    expect(field(v, 'header')).toBe(hex(header));
    // §3.1: the authenticated header, the header without the EDK count and the EDK: every segment's associated data.
    const aad = concat(Uint8Array.of(0x45, 0x4b, 0x01, 0x01, 0x02), messageId, encodeEntries(entries), u32, commitment);
    expect(field(v, 'authenticated header')).toBe(hex(aad));

    // §14.3: the chunks, the nonces, the segments.
    const n = Math.max(1, Math.ceil(plaintext.length / segmentSize));
    expect(int(v, 'segments')).toBe(n);
    expect(v.has(`segment ${n} nonce`)).toBe(false);
    const sealed: Uint8Array[] = [];
    let at = 0;
    for (let i = 0; i < n; i++) {
      const chunk = plaintext.subarray(i * segmentSize, Math.min((i + 1) * segmentSize, plaintext.length));
      expect(chunk.length === 0).toBe(plaintext.length === 0);
      const nonce = specSegmentNonce(i, i === n - 1);
      expect(hex(nonce)).toBe(field(v, `segment ${i} nonce`));
      expect(span(v, `segment ${i} chunk`)).toEqual([i * segmentSize, i * segmentSize + chunk.length]);
      const seg = gcmSeal(ks.contentKey, nonce, aad, chunk);
      expect(span(v, `segment ${i} body range`)).toEqual([at, at + seg.length]);
      expect(hex(seg.subarray(seg.length - 16))).toBe(field(v, `segment ${i} tag`));
      at += seg.length;
      sealed.push(seg);
    }
    // A success vector's envelope is the header and the segments as built.
    const asBuilt = concat(header, ...sealed);
    if (field(v, 'expect') === 'success') expect(field(v, 'envelope')).toBe(hex(asBuilt));
    // The file's range lies within the written plaintext.
    expect(int(v, 'range offset') + int(v, 'range length')).toBeLessThanOrEqual(plaintext.length);
  });
});

// ---------------------------------------------------------------- the library

function keyring(v: Vector): LocalKeyring {
  return LocalKeyring.fromState({
    keys: [
      {
        keyId: field(v, 'key id'),
        state: field(v, 'key state') as 'Enabled',
        description: '',
        createdAt: '2025-01-01T00:00:00.000Z',
        versions: [{ version: int(v, 'key version'), createdAt: '2025-01-01T00:00:00.000Z', material: bytes(v, 'master key') }],
      },
    ],
    aliases: {},
  });
}

function readOptions(v: Vector) {
  return { provider: keyring(v), recordId: readBinding(v, 'read record id'), recordVersion: readBinding(v, 'read record version') };
}

async function outcome<T>(p: () => Promise<T>): Promise<{ code: string; value?: T }> {
  try {
    return { code: 'success', value: await p() };
  } catch (e) {
    return { code: (e as { code?: string }).code ?? `foreign error: ${String(e)}` };
  }
}

function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let o = 0;
  return new ReadableStream({
    pull(c) {
      if (o >= bytes.length) return c.close();
      c.enqueue(bytes.slice(o, o + size));
      o += size;
    },
  });
}

async function collect(rs: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = rs.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return concat(...parts);
    parts.push(value);
  }
}

/** The plaintext length of the envelope as delivered (SPEC.md §14.6), or 0 when its length rules fail. */
function deliveredLength(env: Uint8Array): number {
  try {
    const h = specParseHeader(env);
    return specFramedShape(h.body.length, h.segmentSize!).plaintextLength;
  } catch {
    return 0;
  }
}

describe('framed vectors through the library', () => {
  it.each(cases)('%s', async (_file, v) => {
    const env = bytes(v, 'envelope');
    const expected = field(v, 'expect');
    const plaintext = field(v, 'plaintext');
    const context = json(v, 'encryption context');
    const check = (o: { code: string; value?: { plaintext: Uint8Array; keyId: string; encryptionContext: object } }, what: string) => {
      expect(o.code, what).toBe(expected);
      if (expected !== 'success') return;
      expect(hex(o.value!.plaintext), what).toBe(plaintext);
      expect(o.value!.keyId, what).toBe(field(v, 'key id'));
      expect({ ...o.value!.encryptionContext }, what).toEqual(context);
    };

    check(await outcome(() => decrypt(env, readOptions(v))), 'decrypt');
    check(await outcome(() => decryptText('ek1.' + Buffer.from(env).toString('base64url'), readOptions(v))), 'decryptText');

    for (const [feed, parallel] of [[1, 1], [1000, 1], [1000, 4]] as const) {
      const what = `decryptStream, ${feed}-byte chunks, parallel ${parallel}`;
      const ds = decryptStream({ ...readOptions(v), parallel });
      const o = await outcome(() => collect(chunked(env, feed).pipeThrough(ds)));
      expect(o.code, what).toBe(expected);
      const info = await outcome(() => ds.info);
      if (expected === 'success') {
        expect(hex(o.value!), what).toBe(plaintext);
        expect(info.value, what).toEqual({ keyId: field(v, 'key id'), encryptionContext: context, segmentSize: int(v, 'segment size') });
      }
    }

    // The whole plaintext by range: the code of the vector. Then the file's range: `range expect`.
    const whole = await outcome(() => decryptRange(env, { ...readOptions(v), offset: 0, length: deliveredLength(env) }));
    check(whole, 'decryptRange over the whole plaintext');
    if (expected === 'success') {
      expect(whole.value!.plaintextLength).toBe(plaintext.length / 2);
      // An empty range still opens one segment, so that a tag authenticates the header (SPEC.md §14.4).
      expect(whole.value!.segmentsRead).toBe(plaintext.length === 0 ? 1 : int(v, 'segments'));
    }
    const offset = int(v, 'range offset');
    const length = int(v, 'range length');
    const part = await outcome(() => decryptRange(new Blob([env.slice().buffer as ArrayBuffer]), { ...readOptions(v), offset, length }));
    expect(part.code, 'decryptRange over the file range').toBe(field(v, 'range expect'));
    if (part.code === 'success') expect(hex(part.value!.plaintext)).toBe(plaintext.slice(2 * offset, 2 * (offset + length)));

    // inspect: step 1 only (SPEC.md §3.5), so it fails exactly when the vector fails there.
    const info = await outcome(async () => inspect(env));
    if (expected === 'ERR_MALFORMED_ENVELOPE' || expected === 'ERR_UNSUPPORTED_VERSION') {
      expect(info.code).toBe(expected);
    } else {
      expect(info.code).toBe('success');
      const h = specParseHeader(env);
      const shape = specFramedShape(h.body.length, h.segmentSize!);
      expect(info.value).toMatchObject({ layout: { id: 2, name: 'framed' }, segmentSize: h.segmentSize, segmentCount: shape.n, plaintextLength: shape.plaintextLength });
    }
  });
});

// ---------------------------------------------------------------- the independent reader

function specKeyring(v: Vector): SpecKeyring {
  return { keyId: field(v, 'key id'), state: field(v, 'key state'), versions: new Map([[int(v, 'key version'), bytes(v, 'master key')]]) };
}

function specOutcome<T>(f: () => T): { code: string; why: string; value?: T } {
  try {
    return { code: 'success', why: '', value: f() };
  } catch (e) {
    return { code: e instanceof SpecError ? e.code : `foreign error: ${String(e)}`, why: e instanceof Error ? e.message : '' };
  }
}

describe('framed vectors through the independent reader written from SPEC.md', () => {
  it.each(cases)('%s', (_file, v) => {
    const env = bytes(v, 'envelope');
    const expected = field(v, 'expect');
    const o = { keyring: specKeyring(v), binding: bindingOf(v, 'read') };
    const r = specOutcome(() => specDecrypt(env, o));
    expect(r.code, r.why).toBe(expected);
    // A reader given another record binding than the writer's fails at the commitment check (§3.5 step 5).
    if (hex(bindingOf(v, 'read')) !== hex(bindingOf(v, 'written'))) expect(r.why).toBe('commitment');
    if (expected === 'success') {
      const x = r.value!;
      expect(x.layout).toBe(0x02);
      expect(x.segmentSize).toBe(int(v, 'segment size'));
      expect(hex(x.plaintext)).toBe(field(v, 'plaintext'));
      expect(x.keyId).toBe(field(v, 'key id'));
      for (const k of ['data key', 'blob nonce', 'blob aad', 'binding', 'keys input', 'keys', 'content key', 'commitment', 'header'] as const) {
        const got = { 'data key': x.dataKey, 'blob nonce': x.blobNonce, 'blob aad': x.blobAad, binding: x.binding, 'keys input': x.keysInput, keys: x.keys, 'content key': x.contentKey, commitment: x.commitment, header: x.header }[k];
        expect(hex(got), k).toBe(field(v, k));
      }
      expect(Object.fromEntries(x.context)).toEqual(json(v, 'encryption context'));
      expect(x.segments.length).toBe(int(v, 'segments'));
      for (const s of x.segments) {
        expect(hex(s.nonce)).toBe(field(v, `segment ${s.index} nonce`));
        expect([s.start, s.end]).toEqual(span(v, `segment ${s.index} body range`));
        expect(hex(x.body.subarray(s.end - 16, s.end))).toBe(field(v, `segment ${s.index} tag`));
        const [a, b] = span(v, `segment ${s.index} chunk`);
        expect(hex(s.plaintext)).toBe(field(v, 'plaintext').slice(2 * a, 2 * b));
      }
    }
    const whole = specOutcome(() => specDecryptRange(env, o, 0, deliveredLength(env)));
    expect(whole.code, whole.why).toBe(expected);
    if (expected === 'success') expect(hex(whole.value!.plaintext)).toBe(field(v, 'plaintext'));
    const offset = int(v, 'range offset');
    const length = int(v, 'range length');
    const part = specOutcome(() => specDecryptRange(env, o, offset, length));
    expect(part.code, part.why).toBe(field(v, 'range expect'));
    if (part.code === 'success') expect(hex(part.value!.plaintext)).toBe(field(v, 'plaintext').slice(2 * offset, 2 * (offset + length)));
  });
});

// ---------------------------------------------------------------- any change is detected, and both readers agree

describe('framed vectors: a change anywhere in a success vector', () => {
  const successes = vectors.filter((v) => field(v, 'expect') === 'success' && int(v, 'segment size') === 4096);

  it('is refused by decrypt and by the independent reader, with the same code, or opens to the same plaintext when only the key id beside the blob changed (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...successes), fc.nat(), fc.integer({ min: 1, max: 255 }), async (v, at, mask) => {
        const env = bytes(v, 'envelope');
        const i = at % env.length;
        env[i]! ^= mask;
        const lib = await outcome(() => decrypt(env, readOptions(v)));
        const spec = specOutcome(() => specDecrypt(env, { keyring: specKeyring(v), binding: bindingOf(v, 'read') }));
        expect(lib.code, `byte ${i}: ${spec.why}`).toBe(spec.code);
        // §9.13: the data-key list is not authenticated. The key id written beside the local blob is not read by the
        // local provider, so a change there (still valid UTF-8) opens the same plaintext; any other change is refused.
        const header = bytes(v, 'header');
        const blob = bytes(v, 'blob');
        const keyIdEnd = header.length - 32 - 4 - blob.length - (blob.length < 0x80 ? 1 : 2);
        const keyIdStart = keyIdEnd - new TextEncoder().encode(v.has('header key id') ? field(v, 'header key id') : field(v, 'key id')).length;
        if (i >= keyIdStart && i < keyIdEnd) {
          if (lib.code === 'success') expect(hex(lib.value!.plaintext)).toBe(field(v, 'plaintext'));
          else expect(lib.code).toBe('ERR_MALFORMED_ENVELOPE');
        } else {
          expect(lib.code, `byte ${i}`).not.toBe('success');
        }
      }),
      { numRuns: runs(100) },
    );
  });

  it('cut at any length is refused by decrypt, decryptStream and the independent reader, with the same code (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...successes), fc.nat(), async (v, at) => {
        const full = bytes(v, 'envelope');
        const env = full.subarray(0, at % full.length);
        const spec = specOutcome(() => specDecrypt(env, { keyring: specKeyring(v), binding: bindingOf(v, 'read') }));
        expect(spec.code).not.toBe('success');
        expect((await outcome(() => decrypt(env, readOptions(v)))).code, spec.why).toBe(spec.code);
        expect((await outcome(() => collect(chunked(env, 1000).pipeThrough(decryptStream(readOptions(v)))))).code, spec.why).toBe(spec.code);
      }),
      { numRuns: runs(60) },
    );
  });

  it('opens the listed segments with gcmOpen and nothing else (a check of the check)', () => {
    // Each segment of a success vector opens under its own nonce only: the last flag and the index are both authenticated.
    for (const v of successes) {
      const env = bytes(v, 'envelope');
      const header = bytes(v, 'header');
      const aad = bytes(v, 'authenticated header');
      const body = env.subarray(header.length);
      const key = bytes(v, 'content key');
      const n = int(v, 'segments');
      for (let i = 0; i < n; i++) {
        const [a, b] = span(v, `segment ${i} body range`);
        const seg = body.subarray(a, b);
        expect(gcmOpen(key, bytes(v, `segment ${i} nonce`), aad, seg)).toBeDefined();
        expect(gcmOpen(key, specSegmentNonce(i, i !== n - 1), aad, seg)).toBeUndefined();
        expect(gcmOpen(key, specSegmentNonce(i + 1, i === n - 1), aad, seg)).toBeUndefined();
        // The header with its data-key list is not the associated data (§9.13).
        expect(gcmOpen(key, bytes(v, `segment ${i} nonce`), header, seg)).toBeUndefined();
      }
    }
  });
});
