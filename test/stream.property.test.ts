/**
 * Framed envelopes (layout 0x02, SPEC.md §14), through every reader and writer of the core:
 * `encryptStream`, `decryptStream`, `decrypt`, `decryptRange` and `inspect`.
 *
 * - Round trips: segment sizes of 4096 to 20000 bytes (odd ones too), payloads at and around
 *   segment boundaries, input cut in chunks of any size (single bytes, one big chunk, empty ones).
 *   The body is checked against an independent writer (`node:crypto`, §14.2 and §14.3), so the
 *   output is shown to depend on nothing but the header, the data key and the plaintext, whether
 *   it was sealed one segment at a time or four at once.
 * - Detection: every cut, reordering, duplication, drop, append and splice of segments, and every
 *   flipped bit, is refused with the code §14.4 gives (a model of the readers decides which one),
 *   and a streaming reader releases nothing of a segment that did not verify.
 * - Hostile arguments, the record binding, and how often (and when) the provider is asked.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidParameterError,
  KeyDisabledError,
  KeyNotFoundError,
  LocalKeyring,
  MAX_PARALLEL,
  SEGMENT_LIMITS,
  decrypt,
  decryptRange,
  decryptStream,
  encrypt,
  encryptStream,
  inspect,
  nobleAesGcm,
  type AesGcm,
  type DecryptRequest,
  type DecryptStream,
  type ErrorCode,
  type GenerateDataKeyRequest,
  type KeyProvider,
  type RangeSource,
} from '../src/index.js';
import { RecordingProvider, allZero, contextArb, expectSameBytes, numRuns, onlyKeyIdsChanged } from './core-helpers.js';
import { specRecordBinding } from './spec-crypto.js';
import {
  CountingProvider,
  DF,
  type Framed,
  IP,
  MF,
  TAG,
  collect,
  concat,
  drain,
  framedParts,
  lengthRuleHolds,
  modelKnownLength,
  modelRange,
  modelStream,
  patterned,
  recordingSource,
  referenceBody,
  referenceCommitment,
  rejectsWith,
  settled,
  splitBody,
  streamOf,
} from './stream-helpers.js';

const keyring = new LocalKeyring();
const { keyId } = keyring.createKey();
const provider = new CountingProvider(keyring);

/** Codes a change of the header may give (as test/tamper.test.ts, for the header's regions). */
const HEADER_CODES: readonly ErrorCode[] = [MF, 'ERR_UNSUPPORTED_VERSION', DF, 'ERR_NO_MATCHING_PROVIDER', 'ERR_KEY_NOT_FOUND'];

/** Segment sizes: the limits' low end, odd values, values just off powers of two, anything up to 20000. */
const segmentSizeArb = fc.oneof(fc.constantFrom(4096, 4097, 4099, 8191, 8192, 8193, 19999, 20000), fc.integer({ min: 4096, max: 20000 }));

/** Payload lengths around the segment boundaries of `S`: 0, 1, k·S − 1, k·S, k·S + 1, and anything up to 3·S + 17. */
function lengthArb(S: number): fc.Arbitrary<number> {
  return fc.oneof(
    fc.constantFrom(0, 1),
    fc.tuple(fc.integer({ min: 1, max: 3 }), fc.constantFrom(-1, 0, 1)).map(([k, d]) => k * S + d),
    fc.integer({ min: 0, max: 3 * S + 17 }),
  );
}

/** Chunk sizes a stream is fed in (cycled): one big chunk, single bytes, or a mix (with empty chunks). */
const chunkingArb: fc.Arbitrary<readonly number[]> = fc.oneof(
  { weight: 2, arbitrary: fc.constant([] as number[]) },
  { weight: 1, arbitrary: fc.constant([1]) },
  {
    weight: 4,
    arbitrary: fc
      .array(fc.oneof(fc.constantFrom(0, 1, 2, 15, 16, 17, 4095, 4096, 4112, 4113), fc.integer({ min: 1, max: 45000 })), { minLength: 1, maxLength: 6 })
      .filter((a) => a.some((x) => x > 0)),
  },
);

const sizes = (chunking: readonly number[], total: number): readonly number[] => (chunking.length === 0 ? [Math.max(1, total)] : chunking);

async function encryptBytes(pt: Uint8Array, options: Record<string, unknown>, chunking: readonly number[] = []): Promise<Uint8Array> {
  return collect(streamOf(pt, sizes(chunking, pt.length)).pipeThrough(encryptStream({ provider, keyId, ...options })));
}

/** Decrypt as a stream, keeping what it released and how its `info` settled. */
async function streamDecrypt(env: Uint8Array, options: Record<string, unknown> = {}, chunking: readonly number[] = []) {
  const ds: DecryptStream = decryptStream({ provider, ...options });
  let infoAt = -1;
  let step = 0;
  ds.info.then(
    () => (infoAt = step++),
    () => undefined,
  );
  const drained = await drain(streamOf(env, sizes(chunking, env.length)).pipeThrough(ds));
  const errorAt = step++;
  return { ...drained, info: await settled(ds.info), infoBeforeError: infoAt >= 0 && infoAt < errorAt };
}

/** A framed envelope of `length` patterned bytes, with its parts. */
async function framed(length: number, segmentSize: number, seed = 0, options: Record<string, unknown> = {}): Promise<Framed & { plaintext: Uint8Array }> {
  const plaintext = patterned(length, seed);
  return { ...framedParts(await encryptBytes(plaintext, { segmentSize, ...options })), plaintext };
}

/**
 * Run the three readers on `env` (the original header, then `body`) and check each against the
 * model: the code, never a success or a short read where the model says no, and no plaintext
 * released by the stream past the segments the model says verified.
 */
async function expectReaders(orig: Framed & { plaintext: Uint8Array }, body: Uint8Array, what: string, parallel = 1): Promise<void> {
  const env = concat([orig.header, body]);
  const S = orig.segmentSize;
  // decryptStream
  const stream = modelStream(orig, body);
  const got = await streamDecrypt(env, { parallel });
  if (stream.ok) {
    expect(got.error, what).toBeUndefined();
    expectSameBytes(got.bytes, orig.plaintext);
  } else {
    expect(got.error, `${what}: decryptStream must fail`).toBeDefined();
    // the same code whether the segments are opened one at a time or several at once
    await rejectsWith(Promise.reject(got.error), stream.code);
    expect(got.bytes.length, `${what}: released past the segments that verified`).toBeLessThanOrEqual(stream.releasedSegments * S);
    expectSameBytes(got.bytes, orig.plaintext.subarray(0, got.bytes.length));
    if (stream.releasedSegments === 0) {
      expect(got.bytes.length).toBe(0);
      expect(got.info.state, `${what}: info`).toBe('rejected');
    }
    // info never resolves after the error, and never stays pending
    expect(got.info.state).not.toBe('pending');
    if (got.info.state === 'fulfilled') expect(got.infoBeforeError).toBe(true);
  }
  // decrypt
  const known = modelKnownLength(orig, body);
  if (known.ok) expectSameBytes((await decrypt(env, { provider })).plaintext, orig.plaintext);
  else await rejectsWith(decrypt(env, { provider }), known.code);
  // decryptRange: the whole plaintext the body claims, and its last byte
  const segs = splitBody(body, S);
  const claimed = body.length - TAG * segs.length;
  const ranges: [number, number][] = [[0, Math.max(0, claimed)]];
  if (claimed > 0) ranges.push([claimed - 1, 1]);
  ranges.push([0, orig.plaintextLength]);
  for (const [offset, length] of ranges) {
    const m = modelRange(orig, body, offset, length);
    const r = decryptRange(env, { provider, offset, length });
    if (m.ok) {
      const result = await r;
      expectSameBytes(result.plaintext, orig.plaintext.subarray(offset, offset + length));
    } else await rejectsWith(r, m.code);
  }
}

describe('framed envelopes round-trip', () => {
  it('encryptStream → decryptStream, decrypt and decryptRange give the plaintext back; inspect reads the layout (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        segmentSizeArb.chain((S) => fc.tuple(fc.constant(S), lengthArb(S))),
        fc.nat(),
        chunkingArb,
        chunkingArb,
        contextArb,
        fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 4 }),
        async ([S, length], seed, inChunks, outChunks, encryptionContext, randomRanges) => {
          const pt = patterned(length, seed);
          provider.reset();
          const env = await encryptBytes(pt, { segmentSize: S, encryptionContext }, inChunks);
          const n = Math.max(1, Math.ceil(length / S));
          const info = inspect(env);
          expect(info).toMatchObject({ layout: { id: 2, name: 'framed' }, plaintextLength: length, segmentCount: n, segmentSize: S, totalLength: env.length });
          expect(env.length).toBe(info.headerLength + length + TAG * n);
          // the body is what an independent writer makes of this header and data key
          const header = env.subarray(0, info.headerLength);
          expect(header.subarray(header.length - 36, header.length - 32)).toEqual(Uint8Array.of(S >>> 24, (S >>> 16) & 0xff, (S >>> 8) & 0xff, S & 0xff));
          const binding = specRecordBinding(null, null);
          expectSameBytes(header.subarray(header.length - 32), referenceCommitment(provider.lastDataKey!, header, binding));
          expectSameBytes(env.subarray(info.headerLength), referenceBody(provider.lastDataKey!, header, binding, pt, S));

          const ds = decryptStream({ provider, encryptionContext });
          expectSameBytes(await collect(streamOf(env, sizes(outChunks, env.length)).pipeThrough(ds)), pt);
          expect(await ds.info).toEqual({ keyId, encryptionContext: { ...encryptionContext }, segmentSize: S });
          const whole = await decrypt(env, { provider, encryptionContext });
          expectSameBytes(whole.plaintext, pt);
          expect(whole.keyId).toBe(keyId);

          const ranges: [number, number][] = [
            [0, 0],
            [length, 0],
            [0, length],
            ...(length > 0 ? ([[length - 1, 1]] as [number, number][]) : []),
            ...Array.from({ length: n - 1 }, (_, k) => [(k + 1) * S - 1, Math.min(2, length - (k + 1) * S + 1)] as [number, number]),
            ...randomRanges.map(([a, b]) => {
              const offset = a % (length + 1);
              return [offset, b % (length - offset + 1)] as [number, number];
            }),
          ];
          for (const [offset, len] of ranges) {
            const src = recordingSource(env);
            const r = await decryptRange(src, { provider, offset, length: len });
            expectSameBytes(r.plaintext, pt.subarray(offset, offset + len));
            // An empty range opens the one segment at its offset (or the last), SPEC.md §14.4.
            const first = Math.min(Math.floor(offset / S), n - 1);
            const last = len === 0 ? first : Math.floor((offset + len - 1) / S);
            expect(r.segmentsRead).toBe(last - first + 1);
            expect(r.plaintextLength).toBe(length);
            expect(r.keyId).toBe(keyId);
            // the header prefix, then one read of exactly the segments that cover the range
            const body = src.reads.filter(([o]) => o !== 0);
            const start = info.headerLength + first * (S + TAG);
            expect(body.length).toBeGreaterThan(0);
            expect(src.reads.at(-1)).toEqual([start, Math.min(info.headerLength + (last + 1) * (S + TAG), env.length) - start]);
          }
          // the provider was asked once per stream and once per reader
          expect(provider.generateCalls).toBe(1);
          expect(provider.decryptCalls).toBe(2 + ranges.length);
        },
      ),
      { numRuns: numRuns(30) },
    );
  });

  it('a Blob and a { size, read } source read the same ranges as the bytes', async () => {
    const { envelope, plaintext } = await framed(3 * 4096 + 5, 4096, 7);
    for (const source of [new Blob([envelope.slice().buffer]), { size: envelope.length, read: async (o: number, n: number) => envelope.slice(o, o + n) }]) {
      const r = await decryptRange(source, { provider, offset: 4090, length: 4200 });
      expectSameBytes(r.plaintext, plaintext.subarray(4090, 4090 + 4200));
      expect(r.segmentsRead).toBe(3);
    }
  });

  it('the body depends only on the header, the data key and the plaintext: parallel 1 to 8 and any chunking give the reference bytes, and parallel readers give what serial readers give (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        segmentSizeArb.chain((S) => fc.tuple(fc.constant(S), lengthArb(S).map((l) => l + 2 * S))),
        fc.nat(),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 2, max: 8 }),
        // (single bytes are the first property's: here a stream has 2 to 5 segments)
        chunkingArb.filter((c) => c.length !== 1 || c[0]! > 1),
        async ([S, length], seed, writeParallel, readParallel, chunking) => {
          const pt = patterned(length, seed);
          for (const parallel of [writeParallel, 4]) {
            const env = await encryptBytes(pt, { segmentSize: S, parallel }, chunking);
            const h = inspect(env).headerLength;
            expectSameBytes(env.subarray(h), referenceBody(provider.lastDataKey!, env.subarray(0, h), specRecordBinding(null, null), pt, S));
            const serial = await collect(streamOf(env, sizes(chunking, env.length)).pipeThrough(decryptStream({ provider })));
            const par = await collect(streamOf(env, sizes(chunking, env.length)).pipeThrough(decryptStream({ provider, parallel: readParallel })));
            expectSameBytes(serial, pt);
            expectSameBytes(par, serial);
            expectSameBytes((await decrypt(env, { provider })).plaintext, serial);
          }
        },
      ),
      { numRuns: numRuns(15) },
    );
  });

  it('segment sizes at the limits: 4096 and 16 MiB', async () => {
    for (const S of [SEGMENT_LIMITS.min, SEGMENT_LIMITS.max]) {
      // two segments at 16 MiB: 16 MiB and a byte
      const pt = patterned(S === SEGMENT_LIMITS.min ? 3 * S + 1 : S + 1, 3);
      const env = await encryptBytes(pt, { segmentSize: S });
      expect(inspect(env)).toMatchObject({ segmentSize: S, segmentCount: Math.ceil(pt.length / S) });
      expectSameBytes(await collect(streamOf(env, [65536]).pipeThrough(decryptStream({ provider }))), pt);
      expectSameBytes((await decryptRange(env, { provider, offset: pt.length - 2, length: 2 })).plaintext, pt.subarray(pt.length - 2));
    }
    expect(SEGMENT_LIMITS).toEqual({ min: 4096, max: 16777216, default: 65536, maxSegments: 2 ** 32 });
    expect(inspect(await encryptBytes(new Uint8Array(1), {})).segmentSize).toBe(65536);
  });
});

describe('cut, reordered, duplicated, dropped, appended and spliced segments are refused', () => {
  it('every cut inside the header is malformed for every reader (SPEC.md §14.4: an input that ends inside the header)', async () => {
    const orig = await framed(4096 + 10, 4096, 1, { encryptionContext: { tenant: 'a', file: 'x.csv' } });
    for (let cut = 0; cut <= orig.header.length; cut++) {
      const env = orig.envelope.subarray(0, cut);
      provider.reset();
      const got = await streamDecrypt(env, {}, cut % 2 === 0 ? [] : [1]);
      await rejectsWith(Promise.reject(got.error), MF);
      expect(got.bytes.length).toBe(0);
      expect(got.info.state).toBe('rejected');
      // a whole header with nothing after it is known to be one only when the input ends (the provider may have been asked)
      expect(provider.decryptCalls).toBe(cut === orig.header.length ? provider.decryptCalls : 0);
      provider.reset();
      await rejectsWith(decrypt(env, { provider }), MF);
      await rejectsWith(decryptRange(env, { provider, offset: 0, length: 0 }), MF);
      expect(provider.decryptCalls).toBe(0);
    }
  });

  it('a parallel reader fails with the code a serial one gives: bytes after a full last segment make it a middle segment whose tag fails (SPEC.md §14.3), not a length fault', async () => {
    const S = 4096;
    const orig = await framed(3 * S, S, 6);
    for (const extra of [1, 5, 16, S + TAG + 5]) {
      const body = concat([orig.envelope.subarray(orig.header.length), patterned(extra, extra)]);
      expect(modelStream(orig, body)).toEqual({ ok: false, code: DF, releasedSegments: 2 });
      for (const parallel of [1, 2, 4, MAX_PARALLEL]) {
        const got = await streamDecrypt(concat([orig.header, body]), { parallel });
        await rejectsWith(Promise.reject(got.error), DF);
        expect(got.bytes.length).toBeLessThanOrEqual(2 * S);
      }
      // a reader that knows the length checks it first (§14.4 step 1)
      await rejectsWith(decrypt(concat([orig.header, body]), { provider }), lengthRuleHolds(body.length, S) ? DF : MF);
    }
  });

  it('every cut at a segment boundary, and cuts in every segment (tag and ciphertext), as §14.4 says: ERR_DECRYPTION_FAILED, or ERR_MALFORMED_ENVELOPE when the rest is no length a writer makes', async () => {
    for (const [length, S] of [
      [4 * 4096 + 100, 4096],
      [3 * 4099, 4099],
      [1, 4096],
      [0, 4096],
    ] as const) {
      const orig = await framed(length, S, length);
      const body = orig.envelope.subarray(orig.header.length);
      const sealed = S + TAG;
      const cuts = new Set<number>();
      for (let i = 0; i < orig.segments.length; i++) {
        for (const d of [0, 1, 2, 15, 16, 17, 100, sealed - 17, sealed - 16, sealed - 15, sealed - 1]) cuts.add(Math.min(i * sealed + d, body.length - 1));
      }
      const codes = new Map<ErrorCode, number>();
      for (const cut of [...cuts].sort((a, b) => a - b)) {
        const cutBody = body.subarray(0, cut);
        const expected = lengthRuleHolds(cut, S) ? DF : MF;
        codes.set(expected, (codes.get(expected) ?? 0) + 1);
        expect(modelStream(orig, cutBody)).toMatchObject({ ok: false, code: expected });
        await expectReaders(orig, cutBody, `cut at body byte ${cut} of ${body.length}`);
      }
      if (orig.segments.length > 1) expect([...codes.keys()].sort()).toEqual([DF, MF]);
    }
  });

  it('any cut of any envelope (property): never a success, never a short read', async () => {
    await fc.assert(
      fc.asyncProperty(
        segmentSizeArb.chain((S) => fc.tuple(fc.constant(S), lengthArb(S))),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        fc.boolean(),
        async ([S, length], where, parallel) => {
          const orig = await framed(length, S, length);
          const cut = Math.floor(where * orig.envelope.length);
          if (cut < orig.header.length) {
            const env = orig.envelope.subarray(0, cut);
            await rejectsWith(decrypt(env, { provider }), MF);
            const got = await streamDecrypt(env);
            await rejectsWith(Promise.reject(got.error), MF);
          } else await expectReaders(orig, orig.envelope.subarray(orig.header.length, cut), `cut at ${cut}`, parallel ? 4 : 1);
        },
      ),
      { numRuns: numRuns(25) },
    );
  });

  type Mutation =
    | { kind: 'swap'; i: number; j: number }
    | { kind: 'drop'; i: number }
    | { kind: 'duplicate'; i: number; at: number }
    | { kind: 'move'; i: number; at: number }
    | { kind: 'append-segment'; fromOther: boolean; i: number }
    | { kind: 'append-bytes'; count: number }
    | { kind: 'splice'; i: number }
    | { kind: 'splice-tail'; i: number };

  const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ kind: fc.constant('swap' as const), i: fc.nat(), j: fc.nat() }),
    fc.record({ kind: fc.constant('drop' as const), i: fc.nat() }),
    fc.record({ kind: fc.constant('duplicate' as const), i: fc.nat(), at: fc.nat() }),
    fc.record({ kind: fc.constant('move' as const), i: fc.nat(), at: fc.nat() }),
    fc.record({ kind: fc.constant('append-segment' as const), fromOther: fc.boolean(), i: fc.nat() }),
    fc.record({ kind: fc.constant('append-bytes' as const), count: fc.oneof(fc.integer({ min: 1, max: 17 }), fc.integer({ min: 1, max: 45000 })) }),
    fc.record({ kind: fc.constant('splice' as const), i: fc.nat() }),
    fc.record({ kind: fc.constant('splice-tail' as const), i: fc.nat() }),
  );

  function mutate(orig: Framed, other: Framed, m: Mutation): Uint8Array {
    const segs = [...orig.segments];
    const n = segs.length;
    switch (m.kind) {
      case 'swap': {
        const i = m.i % n;
        const j = m.j % n;
        [segs[i], segs[j]] = [segs[j]!, segs[i]!];
        break;
      }
      case 'drop':
        segs.splice(m.i % n, 1);
        break;
      case 'duplicate':
        segs.splice(m.at % (n + 1), 0, segs[m.i % n]!);
        break;
      case 'move': {
        const [s] = segs.splice(m.i % n, 1);
        segs.splice(m.at % n, 0, s!);
        break;
      }
      case 'append-segment':
        segs.push(m.fromOther ? other.segments[m.i % other.segments.length]! : segs[m.i % n]!);
        break;
      case 'append-bytes':
        segs.push(patterned(m.count, m.count));
        break;
      case 'splice':
        // segment i of another envelope of the same master key, context, segment size and length
        segs[m.i % n] = other.segments[m.i % n]!;
        break;
      case 'splice-tail':
        // this envelope's segments before i, the other's from i on
        segs.splice(m.i % n, n, ...other.segments.slice(m.i % n));
        break;
    }
    return concat(segs);
  }

  it('reordered, duplicated, dropped, moved, appended and spliced segments (property): each reader fails as the model says', async () => {
    await fc.assert(
      fc.asyncProperty(
        segmentSizeArb.chain((S) => fc.tuple(fc.constant(S), lengthArb(S))),
        mutationArb,
        fc.boolean(),
        async ([S, length], m, parallel) => {
          const orig = await framed(length, S, 5);
          const other = await framed(length, S, 5);
          const body = mutate(orig, other, m);
          fc.pre(!lengthRuleHolds(body.length, S) || !modelKnownLength(orig, body).ok);
          await expectReaders(orig, body, JSON.stringify(m), parallel ? 4 : 1);
        },
      ),
      { numRuns: numRuns(40) },
    );
  });

  it('the mutations one by one on a five-segment envelope: each is refused by every reader', async () => {
    const S = 4096;
    const orig = await framed(4 * S + 1000, S, 9);
    const other = await framed(4 * S + 1000, S, 9);
    const all: Mutation[] = [
      { kind: 'swap', i: 0, j: 1 },
      { kind: 'swap', i: 2, j: 3 },
      { kind: 'swap', i: 3, j: 4 },
      { kind: 'drop', i: 0 },
      { kind: 'drop', i: 2 },
      { kind: 'drop', i: 4 },
      { kind: 'duplicate', i: 0, at: 0 },
      { kind: 'duplicate', i: 2, at: 3 },
      { kind: 'duplicate', i: 3, at: 5 },
      { kind: 'duplicate', i: 4, at: 5 },
      { kind: 'move', i: 4, at: 0 },
      { kind: 'append-segment', fromOther: false, i: 4 },
      { kind: 'append-segment', fromOther: true, i: 4 },
      { kind: 'append-segment', fromOther: true, i: 0 },
      { kind: 'append-bytes', count: 1 },
      { kind: 'append-bytes', count: 16 },
      { kind: 'append-bytes', count: S + TAG },
      { kind: 'splice', i: 0 },
      { kind: 'splice', i: 2 },
      { kind: 'splice', i: 4 },
      { kind: 'splice-tail', i: 3 },
    ];
    for (const m of all) {
      const body = mutate(orig, other, m);
      expect(modelStream(orig, body).ok, JSON.stringify(m)).toBe(false);
      await expectReaders(orig, body, JSON.stringify(m));
      await expectReaders(orig, body, JSON.stringify(m) + ' parallel', 4);
    }
  });

  it("another envelope's header on this body, and this header on another body, fail on the first segment", async () => {
    const a = await framed(3 * 4096, 4096, 1);
    const b = await framed(3 * 4096, 4096, 1);
    for (const env of [concat([b.header, a.envelope.subarray(a.header.length)]), concat([a.header, b.envelope.subarray(b.header.length)])]) {
      const got = await streamDecrypt(env);
      await rejectsWith(Promise.reject(got.error), DF);
      expect(got.bytes.length).toBe(0);
      expect(got.info.state).toBe('rejected');
      await rejectsWith(decrypt(env, { provider }), DF);
      await rejectsWith(decryptRange(env, { provider, offset: 2 * 4096, length: 1 }), DF);
    }
  });
});

describe('a flipped bit anywhere is refused', () => {
  it('in the header (every bit): by every reader, with no plaintext released and info rejected; a key-id flip may only give the same plaintext (SPEC.md §9.13)', async () => {
    const orig = await framed(2 * 4096 + 3, 4096, 2, { encryptionContext: { a: 'b' } });
    let keyIdFlipsRead = 0;
    for (let byte = 0; byte < orig.header.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const env = orig.envelope.slice();
        env[byte]! ^= 1 << bit;
        const got = await streamDecrypt(env, {}, bit === 0 ? [7] : []);
        if (onlyKeyIdsChanged(orig.envelope, env) && got.error === undefined) {
          // the key id beside the blob is not authenticated, and the local provider reads its own from the blob
          keyIdFlipsRead++;
          expectSameBytes(got.bytes, orig.plaintext);
          expect(got.info.state === 'fulfilled' && got.info.value.keyId).toBe(keyId);
          const whole = await decrypt(env, { provider });
          expectSameBytes(whole.plaintext, orig.plaintext);
          expect(whole.keyId).toBe(keyId);
          const range = await decryptRange(env, { provider, offset: 4095, length: 2 });
          expectSameBytes(range.plaintext, orig.plaintext.subarray(4095, 4097));
          expect(range.keyId).toBe(keyId);
          continue;
        }
        expect(got.error, `byte ${byte} bit ${bit}`).toBeDefined();
        await rejectsWith(Promise.reject(got.error), HEADER_CODES);
        expect(got.bytes.length, `byte ${byte} bit ${bit}`).toBe(0);
        expect(got.info.state).toBe('rejected');
        await rejectsWith(decrypt(env, { provider }), HEADER_CODES);
        // a range reader reads the header too: any range that opens a segment fails
        await rejectsWith(decryptRange(env, { provider, offset: 0, length: 1 }), HEADER_CODES);
      }
    }
    expect(keyIdFlipsRead).toBeGreaterThan(0);
  });

  it('in the body (property, and every segment edge): the stream releases nothing of the segment hit, nothing at all for the first; a range over it fails, a range elsewhere still reads', async () => {
    const check = async (orig: Framed & { plaintext: Uint8Array }, pos: number, bit: number, parallel: number) => {
      const env = orig.envelope.slice();
      env[pos]! ^= 1 << bit;
      const S = orig.segmentSize;
      const seg = Math.floor((pos - orig.header.length) / (S + TAG));
      const got = await streamDecrypt(env, { parallel });
      await rejectsWith(Promise.reject(got.error), DF);
      expect(got.bytes.length).toBeLessThanOrEqual(seg * S);
      expectSameBytes(got.bytes, orig.plaintext.subarray(0, got.bytes.length));
      if (seg === 0) {
        expect(got.bytes.length).toBe(0);
        expect(got.info.state).toBe('rejected');
      } else expect(got.info.state).toBe('fulfilled');
      await rejectsWith(decrypt(env, { provider }), DF);
      const segLen = Math.min(S, orig.plaintextLength - seg * S);
      // the range of the segment hit; an empty range there still opens that segment (SPEC.md §14.4)
      await rejectsWith(decryptRange(env, { provider, offset: seg * S, length: segLen }), DF);
      if (seg > 0) expectSameBytes((await decryptRange(env, { provider, offset: 0, length: S })).plaintext, orig.plaintext.subarray(0, S));
    };
    const orig = await framed(4 * 4097 + 1, 4097, 4);
    const sealed = 4097 + TAG;
    for (let i = 0; i < orig.segments.length; i++) {
      const start = orig.header.length + i * sealed;
      const end = start + orig.segments[i]!.length;
      for (const pos of [start, start + 1, end - 17, end - 16, end - 1]) await check(orig, pos, pos % 8, i % 2 === 0 ? 1 : 4);
    }
    await fc.assert(
      fc.asyncProperty(
        segmentSizeArb.chain((S) => fc.tuple(fc.constant(S), lengthArb(S))),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        fc.integer({ min: 0, max: 7 }),
        fc.constantFrom(1, 4),
        async ([S, length], where, bit, parallel) => {
          const o = await framed(length, S, 8);
          const bodyLength = o.envelope.length - o.header.length;
          await check(o, o.header.length + Math.floor(where * bodyLength), bit, parallel);
        },
      ),
      { numRuns: numRuns(30) },
    );
  });
});

describe('decryptStream info', () => {
  it('resolves once the first segment verified, before its plaintext comes out', async () => {
    const { envelope, plaintext } = await framed(3 * 4096, 4096);
    const ds = decryptStream({ provider });
    const reader = streamOf(envelope, [100]).pipeThrough(ds).getReader();
    expect((await settled(ds.info)).state).toBe('pending');
    const first = await reader.read();
    expect((await settled(ds.info)).state).toBe('fulfilled');
    expectSameBytes(first.value!, plaintext.subarray(0, 4096));
    await reader.cancel();
  });

  it('rejects with the stream\u2019s error for a bad header, a wrong required context, a single-pass envelope, an empty input', async () => {
    const { envelope } = await framed(10, 4096, 0, { encryptionContext: { a: 'b' } });
    const bad = envelope.slice();
    bad[0] = 0;
    const cases: [Uint8Array, Record<string, unknown>, ErrorCode][] = [
      [bad, {}, MF],
      [envelope, { encryptionContext: { a: 'c' } }, DF],
      [envelope, { recordId: 'x' }, DF],
      [await encrypt(new Uint8Array(10), { provider, keyId }), {}, MF],
      [new Uint8Array(0), {}, MF],
    ];
    for (const [env, options, code] of cases) {
      const got = await streamDecrypt(env, options);
      const e = await rejectsWith(Promise.reject(got.error), code);
      expect(got.info.state).toBe('rejected');
      expect(got.info.state === 'rejected' && got.info.reason).toBe(e);
      expect(got.bytes.length).toBe(0);
    }
  });

  it('rejects when the stream is cancelled or aborted before the first segment, and stays resolved after a later failure', async () => {
    const { envelope } = await framed(3 * 4096, 4096);
    const stop = new Error('stop');
    const ds1 = decryptStream({ provider });
    await ds1.readable.cancel(stop);
    expect(await settled(ds1.info)).toEqual({ state: 'rejected', reason: stop });
    // a source that fails after the header: the pipe aborts the stream
    const broken = new Error('source failed');
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(envelope.slice(0, 300));
        c.enqueue(envelope.slice(300, 4000));
        c.error(broken);
      },
    });
    const ds2 = decryptStream({ provider });
    const d2 = await drain(source.pipeThrough(ds2));
    expect(d2.error).toBe(broken);
    expect(d2.bytes.length).toBe(0);
    expect(await settled(ds2.info)).toEqual({ state: 'rejected', reason: broken });
    const cut = envelope.subarray(0, envelope.length - 1);
    const got = await streamDecrypt(cut);
    await rejectsWith(Promise.reject(got.error), DF);
    expect(got.info.state).toBe('fulfilled');
    expect(got.infoBeforeError).toBe(true);
  });
});

describe('hostile arguments', () => {
  const detached = (): Uint8Array => {
    const b = new Uint8Array(8);
    structuredClone(b.buffer, { transfer: [b.buffer] });
    return b;
  };
  const notBytes: [string, () => unknown][] = [
    ['a string', () => 'abc'],
    ['a number', () => 42],
    ['null', () => null],
    ['undefined', () => undefined],
    ['an array', () => [1, 2, 3]],
    ['an ArrayBuffer', () => new ArrayBuffer(8)],
    ['a DataView', () => new DataView(new ArrayBuffer(8))],
    ['a Uint16Array', () => new Uint16Array(4)],
    ['an Int8Array', () => new Int8Array(4)],
    ['a detached Uint8Array', detached],
    ['a Proxy of a Uint8Array', () => new Proxy(new Uint8Array(4), {})],
    ['an object with a length', () => ({ length: 4, 0: 1, 1: 2, 2: 3, 3: 4 })],
  ];

  it('a chunk that is not a Uint8Array errors encryptStream and decryptStream with InvalidParameterError', async () => {
    const { envelope } = await framed(5000, 4096);
    for (const [what, make] of notBytes) {
      for (const side of ['encrypt', 'decrypt'] as const) {
        const ts = side === 'encrypt' ? encryptStream({ provider, keyId, segmentSize: 4096 }) : decryptStream({ provider });
        const out = drain(ts.readable);
        const w = ts.writable.getWriter();
        // a good chunk first, then the bad one
        await w.write(side === 'encrypt' ? new Uint8Array(10) : envelope.subarray(0, 200)).catch(() => undefined);
        const e = await w.write(make() as Uint8Array).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(e, `${side}: ${what}`).toBeInstanceOf(InvalidParameterError);
        const d = await out;
        expect(d.error).toBe(e);
        // encryptStream released its header and no segment; decryptStream released nothing
        expect(d.bytes.length, `${side}: ${what}`).toBe(side === 'encrypt' ? framedParts(envelope).header.length : 0);
        if (side === 'decrypt') expect((await settled((ts as DecryptStream).info)).state).toBe('rejected');
      }
    }
    // a Buffer is a Uint8Array
    const env = await collect(streamOf(new Uint8Array(10)).pipeThrough(new TransformStream({ transform: (c, ctl) => ctl.enqueue(Buffer.from(c)) })).pipeThrough(encryptStream({ provider, keyId })));
    expect(inspect(env).plaintextLength).toBe(10);
  });

  it('bad options throw synchronously with ERR_INVALID_PARAMETER, before the provider is asked', () => {
    provider.reset();
    const badSegment = [4095, SEGMENT_LIMITS.max + 1, 1.5, '65536', NaN, -4096, Infinity, null, 2 ** 32 + 4096, 65536n];
    for (const segmentSize of badSegment) {
      expect(() => encryptStream({ provider, keyId, segmentSize: segmentSize as number }), String(segmentSize)).toThrow(InvalidParameterError);
    }
    const badParallel = [0, MAX_PARALLEL + 1, 1.5, '4', NaN, -1, null, true];
    for (const parallel of badParallel) {
      expect(() => encryptStream({ provider, keyId, parallel: parallel as number }), String(parallel)).toThrow(InvalidParameterError);
      expect(() => decryptStream({ provider, parallel: parallel as number }), String(parallel)).toThrow(InvalidParameterError);
    }
    expect(() => encryptStream({ provider, keyId, parallel: 2, aead: nobleAesGcm })).toThrow(InvalidParameterError);
    expect(() => decryptStream({ provider, parallel: 2, aead: nobleAesGcm })).toThrow(InvalidParameterError);
    // parallel 1 with a backend is fine; so are the limits
    expect(() => encryptStream({ provider, keyId, parallel: 1, aead: nobleAesGcm }).readable.cancel()).not.toThrow();
    expect(() => encryptStream({ provider, keyId, parallel: MAX_PARALLEL, segmentSize: SEGMENT_LIMITS.max }).readable.cancel()).not.toThrow();
    for (const bad of [
      undefined,
      null,
      'x',
      {},
      { provider },
      { keyId },
      { provider, keyId: '' },
      { provider, keyId, encryptionContext: { 'ek:purpose': 'x' } },
      { provider, keyId, keySpec: 'AES_512' },
      { provider, keyId, recordId: {} },
      { provider, keyId, recordVersion: -1.5 },
    ]) {
      expect(() => encryptStream(bad as never), JSON.stringify(bad)).toThrow(InvalidParameterError);
    }
    for (const bad of [undefined, null, {}, { provider: {} }, { provider, encryptionContext: 'x' }, { provider, maxEncryptedDataKeys: 0 }, { provider, keyIds: [] }]) {
      expect(() => decryptStream(bad as never), JSON.stringify(bad)).toThrow(InvalidParameterError);
    }
    expect(provider.generateCalls).toBe(2);
  });

  it('decryptRange refuses bad offsets and lengths, and a range beyond the plaintext, before the provider is asked', async () => {
    const { envelope } = await framed(2 * 4096 + 10, 4096);
    provider.reset();
    for (const bad of [-1, NaN, 1.5, Infinity, -Infinity, 2 ** 53, '0', null, undefined, 0n]) {
      await rejectsWith(decryptRange(envelope, { provider, offset: bad as number, length: 1 }), IP);
      await rejectsWith(decryptRange(envelope, { provider, offset: 0, length: bad as number }), IP);
    }
    const p = 2 * 4096 + 10;
    for (const [offset, length] of [
      [0, p + 1],
      [p, 1],
      [p + 1, 0],
      [p - 1, 2],
      [2 ** 52, 1],
      [1, 2 ** 53 - 1],
    ]) {
      await rejectsWith(decryptRange(envelope, { provider, offset: offset!, length: length! }), IP);
    }
    expect(provider.decryptCalls).toBe(0);
    expect((await decryptRange(envelope, { provider, offset: p, length: 0 })).plaintext.length).toBe(0);
  });

  it('decryptRange refuses sources that are not sources, that read short, long or not at all, or that lie about their size', async () => {
    const { envelope, plaintext } = await framed(3 * 4096 + 10, 4096);
    const opts = { provider, offset: 4096, length: 100 };
    for (const bad of [null, 42, 'envelope', {}, { size: -1, read: () => envelope }, { size: 1.5, read: () => envelope }, { size: NaN, read: () => envelope }, { size: 2 ** 53, read: () => envelope }, { size: envelope.length }, { size: '5', read: () => envelope }]) {
      await rejectsWith(decryptRange(bad as never, opts), IP);
    }
    const throwing = { get size(): number { throw new Error('no'); }, read: () => envelope };
    await rejectsWith(decryptRange(throwing, opts), IP);
    const src = (read: RangeSource['read'], size = envelope.length): RangeSource => ({ size, read });
    // reads that go wrong
    const failure = new Error('disk gone');
    const e = await rejectsWith(decryptRange(src(() => { throw failure; }), opts), IP);
    expect(e.cause).toBe(failure);
    await rejectsWith(decryptRange(src(async () => { throw failure; }), opts), IP);
    const short = (o: number, n: number) => envelope.slice(o, o + n - 1);
    await rejectsWith(decryptRange(src(short), opts), MF);
    const shortBody = (o: number, n: number) => envelope.slice(o, o + (o === 0 ? n : n - 1));
    await rejectsWith(decryptRange(src(shortBody), opts), MF);
    const long = (o: number, n: number) => envelope.slice(o, o + n + 1);
    await rejectsWith(decryptRange(src(long), opts), MF);
    for (const answer of ['bytes', [1, 2, 3], null, new ArrayBuffer(4096), new Uint16Array(2048)]) {
      await rejectsWith(decryptRange(src(() => answer as never), opts), MF);
    }
    // a size larger than the bytes: the reads come back short
    const lying = { size: envelope.length + 100, read: (o: number, n: number) => envelope.slice(o, o + n) };
    await rejectsWith(decryptRange(lying, { ...opts, offset: 3 * 4096 }), MF);
    // a size smaller than the bytes: the last segment seen is not the last one written
    for (const less of [1, 10, 16, 17, 4112, 4113]) {
      const truncated = { size: envelope.length - less, read: (o: number, n: number) => envelope.slice(o, o + n) };
      const body = envelope.length - less - framedParts(envelope).header.length;
      const claimed = body - TAG * Math.ceil(body / (4096 + TAG));
      await rejectsWith(decryptRange(truncated, { ...opts, offset: claimed - 1, length: 1 }), lengthRuleHolds(body, 4096) ? DF : MF);
      // the segments before it still read, as SPEC.md §14.4 says (the range reader authenticates what it reads)
      if (lengthRuleHolds(body, 4096)) expectSameBytes((await decryptRange(truncated, { ...opts, offset: 0, length: 10 })).plaintext, plaintext.subarray(0, 10));
    }
    // a source whose bytes change between reads: the header read once, the segment read from other bytes
    const other = await framed(3 * 4096 + 10, 4096);
    const swapping = { size: envelope.length, read: (o: number, n: number) => (o === 0 ? envelope : other.envelope).slice(o, o + n) };
    await rejectsWith(decryptRange(swapping, opts), DF);
  });
});

describe('record binding', () => {
  it('a record id and version given to encryptStream must be given to every reader; a wrong or missing one fails before any plaintext', async () => {
    const binding = { recordId: 'user/42', recordVersion: 7 };
    const { envelope, plaintext } = await framed(2 * 4096 + 1, 4096, 3, binding);
    // the body is sealed under the bound key schedule (§14.2 with the binding of §9.10)
    const info = inspect(envelope);
    const header = envelope.subarray(0, info.headerLength);
    expectSameBytes(envelope.subarray(info.headerLength), referenceBody(provider.lastDataKey!, header, specRecordBinding('user/42', 7), plaintext, 4096));
    expectSameBytes((await collect(streamOf(envelope).pipeThrough(decryptStream({ provider, ...binding })))), plaintext);
    expectSameBytes((await decrypt(envelope, { provider, ...binding })).plaintext, plaintext);
    expectSameBytes((await decryptRange(envelope, { provider, ...binding, offset: 4000, length: 200 })).plaintext, plaintext.subarray(4000, 4200));
    const wrong: Record<string, unknown>[] = [{}, { recordId: 'user/42' }, { recordVersion: 7 }, { recordId: 'user/43', recordVersion: 7 }, { recordId: 'user/42', recordVersion: 8 }, { recordId: 'user/42', recordVersion: '7' }, { recordId: 42, recordVersion: 7 }];
    for (const w of wrong) {
      const got = await streamDecrypt(envelope, w);
      await rejectsWith(Promise.reject(got.error), DF);
      expect(got.bytes.length).toBe(0);
      expect(got.info.state).toBe('rejected');
      await rejectsWith(decrypt(envelope, { provider, ...w }), DF);
      await rejectsWith(decryptRange(envelope, { provider, ...w, offset: 0, length: 1 }), DF);
    }
    // and an envelope without a binding is not opened with one
    const unbound = await framed(10, 4096);
    await rejectsWith(decrypt(unbound.envelope, { provider, ...binding }), DF);
    const got = await streamDecrypt(unbound.envelope, binding);
    await rejectsWith(Promise.reject(got.error), DF);
  });
});

describe('the provider', () => {
  /** A provider whose calls fail with `error` (after the real one was asked, so the blob is genuine). */
  class FailingProvider implements KeyProvider {
    readonly providerId = keyring.providerId;
    calls = 0;
    constructor(
      readonly error: unknown,
      readonly side: 'generate' | 'decrypt',
    ) {}
    async generateDataKey(r: GenerateDataKeyRequest) {
      this.calls++;
      if (this.side === 'generate') throw this.error;
      return keyring.generateDataKey(r);
    }
    async decrypt(r: DecryptRequest) {
      this.calls++;
      if (this.side === 'decrypt') throw this.error;
      return keyring.decrypt(r);
    }
  }
  const failures: [unknown, ErrorCode][] = [
    [new KeyDisabledError('disabled'), 'ERR_KEY_DISABLED'],
    [new KeyNotFoundError('gone'), 'ERR_KEY_NOT_FOUND'],
    [new Error('network down'), 'ERR_PROVIDER'],
    ['a string', 'ERR_PROVIDER'],
  ];

  it('is asked exactly once per stream, whatever the chunking (even one byte at a time), and told no plaintext length', async () => {
    const pt = patterned(3 * 4096 + 1);
    provider.reset();
    const env = await encryptBytes(pt, { segmentSize: 4096 }, [1]);
    expect(provider.generateCalls).toBe(1);
    expect(provider.generateRequests[0]).not.toHaveProperty('plaintextLength');
    for (const chunking of [[1], [7, 1, 300], []]) {
      provider.reset();
      expectSameBytes(await collect(streamOf(env, chunking.length ? chunking : [env.length]).pipeThrough(decryptStream({ provider }))), pt);
      expect(provider.decryptCalls).toBe(1);
    }
  });

  it('a failing provider errors the stream with its code (encryptStream and decryptStream), and decrypt and decryptRange the same way', async () => {
    const { envelope } = await framed(5000, 4096);
    for (const [error, code] of failures) {
      const g = new FailingProvider(error, 'generate');
      const enc = await drain(streamOf(new Uint8Array(5000)).pipeThrough(encryptStream({ provider: g, keyId, segmentSize: 4096 })));
      await rejectsWith(Promise.reject(enc.error), code);
      expect(enc.bytes.length).toBe(0);
      expect(g.calls).toBe(1);
      const d = new FailingProvider(error, 'decrypt');
      const ds = decryptStream({ provider: d });
      const dec = await drain(streamOf(envelope, [1000]).pipeThrough(ds));
      await rejectsWith(Promise.reject(dec.error), code);
      expect(dec.bytes.length).toBe(0);
      expect((await settled(ds.info)).state).toBe('rejected');
      await rejectsWith(decrypt(envelope, { provider: d }), code);
      await rejectsWith(decryptRange(envelope, { provider: d, offset: 0, length: 1 }), code);
      expect(d.calls).toBe(3);
    }
  });

  it('a required context the envelope does not hold fails with ERR_DECRYPTION_FAILED, and the provider is never asked', async () => {
    const { envelope } = await framed(5000, 4096, 0, { encryptionContext: { tenant: 'a', region: 'eu' } });
    provider.reset();
    for (const encryptionContext of [{ tenant: 'b' }, { tenant: 'a', region: 'us' }, { other: '' }, { tenant: 'a', region: 'eu', more: 'x' }] as Record<string, string>[]) {
      const got = await streamDecrypt(envelope, { encryptionContext });
      await rejectsWith(Promise.reject(got.error), DF);
      expect(got.bytes.length).toBe(0);
      await rejectsWith(decrypt(envelope, { provider, encryptionContext }), DF);
      await rejectsWith(decryptRange(envelope, { provider, encryptionContext, offset: 0, length: 1 }), DF);
    }
    expect(provider.decryptCalls).toBe(0);
    // containment: a part of the context is enough
    expect((await decrypt(envelope, { provider, encryptionContext: { region: 'eu' } })).plaintext.length).toBe(5000);
    // an allow-list of key ids that leaves the key out fails after the provider answered
    await rejectsWith(decrypt(envelope, { provider, keyIds: ['other-key'] }), DF);
    const got = await streamDecrypt(envelope, { keyIds: ['other-key'] });
    await rejectsWith(Promise.reject(got.error), DF);
  });
});

describe('keys are erased when a stream ends, fails or is cancelled (SPEC.md §14.5 step 5)', () => {
  /** The noble backend, keeping every key it is handed (the segment cipher's own copy of the content key). */
  function capturingAead(): { aead: AesGcm; keys: Set<Uint8Array> } {
    const keys = new Set<Uint8Array>();
    const aead: AesGcm = {
      name: 'capturing',
      seal(key, nonce, aad, plaintext, out) {
        keys.add(key);
        nobleAesGcm.seal(key, nonce, aad, plaintext, out);
      },
      open(key, nonce, aad, sealed, out) {
        keys.add(key);
        return nobleAesGcm.open(key, nonce, aad, sealed, out);
      },
    };
    return { aead, keys };
  }
  const erased = (keys: Set<Uint8Array>) => {
    expect(keys.size).toBeGreaterThan(0);
    for (const k of keys) expect(allZero(k)).toBe(true);
  };

  it('encryptStream: at the end, on a bad chunk, when its output is cancelled', async () => {
    const rec = new RecordingProvider(keyring);
    const pt = patterned(5 * 4096, 1);
    {
      const { aead, keys } = capturingAead();
      await collect(streamOf(pt, [3000]).pipeThrough(encryptStream({ provider: rec, keyId, segmentSize: 4096, aead })));
      erased(keys);
    }
    {
      const { aead, keys } = capturingAead();
      const ts = encryptStream({ provider: rec, keyId, segmentSize: 4096, aead });
      const out = drain(ts.readable);
      const w = ts.writable.getWriter();
      await w.write(pt);
      await w.write('bad' as never).catch(() => undefined);
      expect((await out).error).toBeInstanceOf(InvalidParameterError);
      erased(keys);
    }
    {
      const { aead, keys } = capturingAead();
      const reader = streamOf(pt, [4096]).pipeThrough(encryptStream({ provider: rec, keyId, segmentSize: 4096, aead })).getReader();
      await reader.read(); // the header
      await reader.read(); // segment 0
      await reader.cancel(new Error('enough'));
      erased(keys);
    }
    expect(rec.handedOut).toHaveLength(3);
    for (const k of rec.handedOut) expect(allZero(k)).toBe(true);
  });

  it('decryptStream: at the end, on a tag failure, when its output is cancelled', async () => {
    const { envelope } = await framed(5 * 4096, 4096, 2);
    const rec = new RecordingProvider(keyring);
    const flipped = envelope.slice();
    flipped[flipped.length - 1]! ^= 1;
    for (const env of [envelope, flipped]) {
      const { aead, keys } = capturingAead();
      await drain(streamOf(env, [5000]).pipeThrough(decryptStream({ provider: rec, aead })));
      erased(keys);
    }
    const { aead, keys } = capturingAead();
    const reader = streamOf(envelope, [5000]).pipeThrough(decryptStream({ provider: rec, aead })).getReader();
    await reader.read();
    await reader.cancel();
    erased(keys);
    expect(rec.handedOut).toHaveLength(3);
    for (const k of rec.handedOut) expect(allZero(k)).toBe(true);
  });
});
