/**
 * Deterministic generator of the framed envelope vectors (layout 0x02, SPEC.md §14, §10.5).
 *
 * Writes one `<name>.txt` file per scenario into the output folder (default: this folder). Every
 * input is fixed (master key, key id and version, blob nonce, data key, message id, record id,
 * segment size 4096 unless the scenario is about the size, plaintext), and the bytes come from
 * the library's own internal functions: `wrapDataKey` for the blob, `recordBinding`,
 * `deriveFramedKeys` for the key schedule, `encodeHeader` for the header, `SegmentCipher` for the
 * segments; the body as built is also what `FramedWriter` (the streaming writer) makes of the
 * plaintext, fed in two chunk sizes. Each value is checked against a second computation spelled out from SPEC.md
 * (the key schedule with @noble/hashes' HMAC-SHA-512 over the input §14.2 gives, the header joined
 * from its encoded pieces, each segment sealed with the nonce of §14.3 written out by hand).
 *
 * Failure vectors are built by hand from the same values: segments dropped, swapped, duplicated,
 * appended or sealed with the wrong last flag by the generator's own sealing function, a header
 * changed before sealing (so that only the rule under test rejects it) or after (so that the
 * segments' associated data no longer matches), bytes cut.
 *
 * Usage: `npm run vectors` or `npx tsx test/vectors/framed/generate.ts [output-folder]`.
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { nobleAesGcm } from '../../../src/core/aead/noble.js';
import { TAG_LENGTH } from '../../../src/core/aead/types.js';
import { type RecordId, type RecordVersion, checkRecordBinding, recordBinding } from '../../../src/core/binding.js';
import { checkContext, encodeContext, providerContext } from '../../../src/core/context.js';
import type { ErrorCode } from '../../../src/core/errors.js';
import { type EncryptedDataKey, LAYOUT_FRAMED, authenticatedHeaderOf, encodeHeader } from '../../../src/core/format.js';
import { SegmentCipher, segmentNonce } from '../../../src/core/framed.js';
import { LABELS, deriveFramedKeys } from '../../../src/core/kdf.js';
import { ByteWriter, concatBytes, utf8Encode } from '../../../src/internal/bytes.js';
import { wrapDataKey } from '../../../src/providers/local/blob.js';
import { FramedWriter } from '../../../src/stream/framing.js';
import { BLOB_NONCE, DATA_KEY_128, DATA_KEY_256, KEY_ID, KEY_VERSION, MASTER_KEY, MESSAGE_ID, hex } from '../inputs.js';
import { writeFromCommandLine } from '../write.js';

type Expect = 'success' | ErrorCode;

interface Vector {
  readonly name: string;
  readonly text: string;
}

function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`generator self-check failed: ${what}`);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// ---------------------------------------------------------------- fixed inputs

/** The segment size of every vector but those about the size itself: the smallest (SPEC.md §14.1). */
const SEGMENT_SIZE = 4096;
const CONTEXT: Record<string, string> = { tenant: 'acme', purpose: 'vectors' };
const SENTENCE = utf8Encode('envelope-kit framed test vector plaintext. ');

/** The first `n` bytes of the sentence repeated: 44 bytes do not divide 4096, so no two chunks are equal. */
function plaintextOf(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => SENTENCE[i % SENTENCE.length]!);
}

/** `u32be(n)` (SPEC.md §14.1). */
function u32be(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** The 12-byte nonce of segment `i`, written out as SPEC.md §14.3 says: `u88be(i) || u8(last)`. */
function nonceBySpec(i: number, last: boolean): Uint8Array {
  const n = new Uint8Array(12);
  let x = i;
  for (let j = 10; j >= 0; j--) {
    n[j] = x % 256;
    x = Math.floor(x / 256);
  }
  n[11] = last ? 1 : 0;
  return n;
}

// ---------------------------------------------------------------- building blocks

/** The pieces of a framed header (SPEC.md §14.1), each already encoded, so that any of them can be made faulty. */
interface HeaderParts {
  prefix: Uint8Array; // magic || version || suite || layout
  messageId: Uint8Array;
  context: Uint8Array;
  edkCount: number;
  edks: Uint8Array[];
  segmentSize: Uint8Array;
  commitment: Uint8Array;
}

function joinHeader(p: HeaderParts): Uint8Array {
  return concatBytes(p.prefix, p.messageId, p.context, Uint8Array.of(p.edkCount), ...p.edks, p.segmentSize, p.commitment);
}

/** SPEC.md §3.1: the authenticated header, the header without the EDK count and the EDKs: every segment's associated data. */
function joinAad(p: HeaderParts): Uint8Array {
  return concatBytes(p.prefix, p.messageId, p.context, p.segmentSize, p.commitment);
}

/** `len(providerId) || providerId || len(keyId) || keyId || len(blob) || blob`. */
function encodeEdk(e: EncryptedDataKey): Uint8Array {
  return new ByteWriter(128).lenBytes(utf8Encode(e.providerId)).lenBytes(utf8Encode(e.keyId)).lenBytes(e.blob).finish();
}

/** `0x02 || len(keyId) || keyId || len(version)`: the local blob's prefix (SPEC.md §6). */
function blobPrefix(keyId: string, version: number): Uint8Array {
  return new ByteWriter(80).u8(0x02).lenBytes(utf8Encode(keyId)).len(version).finish();
}

/** The chunks of a plaintext (SPEC.md §14.3): `max(1, ceil(len / size))` of them, only the last shorter, empty only when the plaintext is. */
function chunksOf(plaintext: Uint8Array, size: number): Uint8Array[] {
  const n = Math.max(1, Math.ceil(plaintext.length / size));
  return Array.from({ length: n }, (_, i) => plaintext.subarray(i * size, Math.min((i + 1) * size, plaintext.length)));
}

/**
 * The generator's framed sealing function: segment `index` of `chunk` under the content key,
 * with the given last flag, the authenticated header as associated data. It runs on the library's
 * SegmentCipher, and the result is checked against AES-256-GCM with the nonce of §14.3 written
 * out by hand.
 */
function sealSegment(contentKey: Uint8Array, header: Uint8Array, index: number, last: boolean, chunk: Uint8Array): Uint8Array {
  const cipher = new SegmentCipher(nobleAesGcm, contentKey, header);
  const out = new Uint8Array(chunk.length + TAG_LENGTH);
  try {
    cipher.seal(index, last, chunk, out);
  } finally {
    cipher.dispose();
  }
  const nonce = nonceBySpec(index, last);
  assert(equalBytes(segmentNonce(index, last), nonce), `nonce of segment ${index}`);
  const check = new Uint8Array(chunk.length + TAG_LENGTH);
  nobleAesGcm.seal(contentKey, nonce, header, chunk, check);
  assert(equalBytes(out, check), `segment ${index} sealed with the nonce of §14.3`);
  return out;
}

/** The body the library's streaming writer makes of `plaintext`, fed in chunks of `feed` bytes. */
async function writerBody(contentKey: Uint8Array, header: Uint8Array, segmentSize: number, plaintext: Uint8Array, feed: number): Promise<Uint8Array> {
  const out: Uint8Array[] = [];
  const writer = new FramedWriter(new SegmentCipher(nobleAesGcm, contentKey, header), segmentSize);
  for (let o = 0; o < plaintext.length; o += feed) await writer.write(plaintext.subarray(o, o + feed), (b) => out.push(b.slice()));
  await writer.end((b) => out.push(b.slice()));
  return concatBytes(...out);
}

/** What a scenario may change in the body: the segments as built, and a sealer for new ones. */
interface BodyTools {
  /** The chunks of the plaintext (SPEC.md §14.3). */
  readonly chunks: readonly Uint8Array[];
  /** Seal a chunk as segment `index` with the last flag given (for writer bugs). */
  seal(index: number, last: boolean, chunk: Uint8Array): Uint8Array;
}

interface Scenario {
  name: string;
  description: string;
  expect: Expect;
  /** Plaintext bytes (made by {@link plaintextOf}). */
  length: number;
  dataKey?: Uint8Array;
  /** The segment size the header holds and the segments are cut at (default 4096). */
  segmentSize?: number;
  recordId?: RecordId;
  recordVersion?: RecordVersion;
  /** What the reader gives, when it differs from what was written (`null`: nothing). */
  readRecordId?: RecordId | null;
  readRecordVersion?: RecordVersion | null;
  /** Change the encoded header pieces before sealing: the segments are sealed over the changed header. */
  header?: (p: HeaderParts) => void;
  /** The key id written beside the blob, when it is not the one the blob names (SPEC.md §9.13). */
  headerKeyId?: string;
  /** The segments of the body, from those the writer makes (default: those). */
  segments?: (built: Uint8Array[], tools: BodyTools) => Uint8Array[];
  /** Change the finished envelope bytes (after sealing); `header` and `parts` as sealed. */
  mutate?: (envelope: Uint8Array, header: Uint8Array, parts: HeaderParts) => Uint8Array;
  /** The plaintext range read by the range reader (default: the middle half of the written plaintext). */
  range?: [offset: number, length: number];
  /** What reading that range gives (default: `expect`). */
  rangeExpect?: Expect;
}

async function build(s: Scenario): Promise<Vector> {
  const dataKey = s.dataKey ?? DATA_KEY_256;
  const messageId = MESSAGE_ID;
  const segmentSize = s.segmentSize ?? SEGMENT_SIZE;
  const plaintext = plaintextOf(s.length);
  const ctx = checkContext(CONTEXT);

  // SPEC.md §3.2.1 and §6: the local blob, bound to the provider context.
  const pctx = providerContext(ctx);
  const blob = wrapDataKey(nobleAesGcm, MASTER_KEY, KEY_ID, KEY_VERSION, BLOB_NONCE, dataKey, pctx);
  const prefix = blobPrefix(KEY_ID, KEY_VERSION);
  const blobAad = concatBytes(prefix, encodeContext(pctx));
  assert(equalBytes(blob.subarray(0, prefix.length), prefix), 'blob prefix');

  // SPEC.md §9.10: the record binding; §14.2: the key schedule, one HMAC-SHA-512.
  const binding = recordBinding(checkRecordBinding(s.recordId, s.recordVersion));
  assert(new TextDecoder().decode(binding) === JSON.stringify([s.recordId ?? null, s.recordVersion ?? null]), 'binding');
  const keysInput = concatBytes(utf8Encode(LABELS.framed), Uint8Array.of(0x00), messageId, binding, Uint8Array.of(0x01));
  assert(LABELS.framed === 'envelope-kit/v1/suite-01/layout-02/keys', 'label of §14.2');
  const { bytes: keys, key: contentKey, commitment } = deriveFramedKeys(dataKey, messageId, binding);
  assert(equalBytes(keys, hmac(sha512, dataKey, keysInput)), 'keys');
  const readRecordId = s.readRecordId === undefined ? s.recordId : (s.readRecordId ?? undefined);
  const readRecordVersion = s.readRecordVersion === undefined ? s.recordVersion : (s.readRecordVersion ?? undefined);

  // SPEC.md §14.1: the header.
  const edk: EncryptedDataKey = { providerId: 'local', keyId: KEY_ID, blob };
  const parts: HeaderParts = {
    prefix: Uint8Array.of(0x45, 0x4b, 0x01, 0x01, 0x02),
    messageId: messageId.slice(),
    context: encodeContext(ctx),
    edkCount: 1,
    edks: [encodeEdk(edk)],
    segmentSize: u32be(segmentSize),
    commitment: commitment.slice(),
  };
  const libraryHeader = encodeHeader({ layout: LAYOUT_FRAMED, messageId, context: ctx, encryptedDataKeys: [edk], commitment, segmentSize });
  assert(equalBytes(libraryHeader, joinHeader(parts)), 'joinHeader matches encodeHeader');
  assert(
    equalBytes(authenticatedHeaderOf(libraryHeader, ctx, LAYOUT_FRAMED), joinAad(parts)),
    'joinAad matches authenticatedHeaderOf',
  );
  if (s.headerKeyId !== undefined) parts.edks = [encodeEdk({ ...edk, keyId: s.headerKeyId })];
  s.header?.(parts);
  const header = joinHeader(parts);
  const aad = joinAad(parts);

  // SPEC.md §14.3: the segments.
  const chunks = chunksOf(plaintext, segmentSize);
  const n = chunks.length;
  const built = chunks.map((c, i) => sealSegment(contentKey, aad, i, i === n - 1, c));
  const body = concatBytes(...built);
  for (const feed of [1000, segmentSize + 1]) {
    assert(equalBytes(await writerBody(contentKey, aad, segmentSize, plaintext, feed), body), `the streaming writer's body (fed ${feed} bytes at a time)`);
  }
  const tools: BodyTools = { chunks, seal: (i, last, c) => sealSegment(contentKey, aad, i, last, c) };
  let envelope = concatBytes(header, ...(s.segments ? s.segments(built.map((b) => b.slice()), tools) : built));
  if (s.mutate) envelope = s.mutate(envelope.slice(), header, parts);

  const [rangeOffset, rangeLength] = s.range ?? [Math.floor(s.length / 4), s.length - 2 * Math.floor(s.length / 4)];

  const fields: [string, string][] = [
    ['name', s.name],
    ['description', s.description],
    ['expect', s.expect],
    ['master key', hex(MASTER_KEY)],
    ['key id', KEY_ID],
    ['key version', String(KEY_VERSION)],
    ['key state', 'Enabled'],
    ['data key', hex(dataKey)],
    ['message id', hex(messageId)],
    ['encryption context', JSON.stringify(CONTEXT)],
    ['provider context', JSON.stringify(pctx.map)],
    ['written record id', JSON.stringify(s.recordId ?? null)],
    ['written record version', JSON.stringify(s.recordVersion ?? null)],
    ['read record id', JSON.stringify(readRecordId ?? null)],
    ['read record version', JSON.stringify(readRecordVersion ?? null)],
    ['blob nonce', hex(BLOB_NONCE)],
    ['blob aad', hex(blobAad)],
    ['blob', hex(blob)],
    ['binding', hex(binding)],
    ['keys input', hex(keysInput)],
    ['keys', hex(keys)],
    ['content key', hex(contentKey)],
    ['commitment', hex(commitment)],
    ['segment size', String(segmentSize)],
    ...(s.headerKeyId !== undefined ? ([['header key id', s.headerKeyId]] as [string, string][]) : []),
    ['header', hex(header)],
    ['authenticated header', hex(aad)],
    ['plaintext', hex(plaintext)],
    ['segments', String(n)],
  ];
  let at = 0;
  built.forEach((seg, i) => {
    fields.push(
      [`segment ${i} nonce`, hex(nonceBySpec(i, i === n - 1))],
      [`segment ${i} chunk`, `${i * segmentSize}..${i * segmentSize + chunks[i]!.length}`],
      [`segment ${i} body range`, `${at}..${at + seg.length}`],
      [`segment ${i} tag`, hex(seg.subarray(seg.length - TAG_LENGTH))],
    );
    at += seg.length;
  });
  fields.push(
    ['envelope', hex(envelope)],
    ['range offset', String(rangeOffset)],
    ['range length', String(rangeLength)],
    ['range expect', s.rangeExpect ?? s.expect],
  );
  for (const [k, v] of fields) assert(!/[\r\n]/.test(v) && v === v.trim(), `field ${k} is one trimmed line`);
  return { name: s.name, text: fields.map(([k, v]) => `${k}: ${v}`).join('\n') + '\n' };
}

// ---------------------------------------------------------------- scenarios

/** Flip the lowest bit of byte `i` of a copy. */
const flip = (b: Uint8Array, i: number): Uint8Array => {
  const out = b.slice();
  out[i]! ^= 0x01;
  return out;
};

const SCENARIOS: Scenario[] = [
  // -- success
  {
    name: 'framed-success-empty-plaintext',
    description: 'Empty plaintext: one segment, the last, empty (its 16-byte tag alone), sealed with the last flag.',
    expect: 'success',
    length: 0,
  },
  {
    name: 'framed-success-one-full-segment',
    description: 'Exactly one full segment (4096 bytes): the last segment holds segment_size bytes; no empty segment follows.',
    expect: 'success',
    length: 4096,
  },
  {
    name: 'framed-success-full-segment-plus-one-byte',
    description: 'A full segment and one byte: segment 0 (flag 0x00) of 4096 bytes, segment 1 (flag 0x01) of 1 byte.',
    expect: 'success',
    length: 4097,
  },
  {
    name: 'framed-success-two-full-segments',
    description: 'An exact multiple of the segment size (8192 bytes): two segments, the last one full.',
    expect: 'success',
    length: 8192,
    range: [4000, 200],
  },
  {
    name: 'framed-success-record-id',
    description: 'Written and read with the record id "u-42" (no version): the binding ["u-42",null] enters the key schedule (SPEC.md §14.2, §9.10).',
    expect: 'success',
    length: 34,
    recordId: 'u-42',
  },
  {
    name: 'framed-success-aes128-data-key',
    description: 'A 16-byte data key (AES_128): the content key is still 32 bytes.',
    expect: 'success',
    length: 34,
    dataKey: DATA_KEY_128,
  },
  {
    name: 'framed-success-segment-size-max',
    description: 'Segment size 16777216 (16 MiB), the largest allowed; one short segment.',
    expect: 'success',
    length: 34,
    segmentSize: 16 * 1024 * 1024,
  },

  // -- segments cut, moved, added, or sealed wrongly
  {
    name: 'framed-fail-truncated-at-segment-boundary',
    description:
      'The 4097-byte envelope cut after segment 0: the body is one full segment sealed with flag 0x00, which does not open as the last (flag 0x01).',
    expect: 'ERR_DECRYPTION_FAILED',
    length: 4097,
    segments: (b) => [b[0]!],
  },
  {
    name: 'framed-fail-segments-swapped',
    description: 'Three segments (8193 bytes) with segments 0 and 1 swapped: segment 0 of the body was sealed with index 1.',
    expect: 'ERR_DECRYPTION_FAILED',
    length: 8193,
    segments: (b) => [b[1]!, b[0]!, b[2]!],
  },
  {
    name: 'framed-fail-segment-duplicated',
    description:
      'Segment 0 of a 4097-byte envelope written twice (segments 0, 0, 1): segment 1 of the body was sealed with index 0. The range crosses from segment 0 into segment 1.',
    expect: 'ERR_DECRYPTION_FAILED',
    length: 4097,
    segments: (b) => [b[0]!, b[0]!, b[1]!],
    range: [4000, 97],
  },
  {
    name: 'framed-fail-segment-appended',
    description:
      'A copy of segment 0 appended after the last segment of an 8192-byte envelope (segments 0, 1, 0): the former last segment, sealed with flag 0x01, does not open as a middle segment.',
    expect: 'ERR_DECRYPTION_FAILED',
    length: 8192,
    segments: (b) => [b[0]!, b[1]!, b[0]!],
  },
  {
    name: 'framed-fail-last-flag-missing',
    description:
      'A writer bug: the last segment of a 4097-byte envelope sealed with flag 0x00. The range reader, which reads only segment 0 for the middle range, does not see it.',
    expect: 'ERR_DECRYPTION_FAILED',
    length: 4097,
    segments: (b, t) => [b[0]!, t.seal(1, false, t.chunks[1]!)],
    rangeExpect: 'success',
  },
  {
    name: 'framed-fail-segment-tampered',
    description: 'The one ciphertext byte of segment 1 (of 4097 bytes) changed. The middle range lies in segment 0, which is intact.',
    expect: 'ERR_DECRYPTION_FAILED',
    length: 4097,
    segments: (b) => [b[0]!, flip(b[1]!, 0)],
    rangeExpect: 'success',
  },

  // -- the length rules (SPEC.md §14.4 step 1)
  {
    name: 'framed-fail-empty-last-segment',
    description:
      'A full segment (flag 0x00) followed by an empty last segment (flag 0x01, 16 bytes): both tags are valid, but a writer never makes an empty last segment after a full one.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    length: 4096,
    segments: (b, t) => [t.seal(0, false, t.chunks[0]!), t.seal(1, true, new Uint8Array(0))],
  },
  {
    name: 'framed-fail-last-segment-shorter-than-tag',
    description: 'The last two bytes of a 4097-byte envelope removed: the last segment is 15 bytes, shorter than a tag.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    length: 4097,
    mutate: (e) => e.subarray(0, e.length - 2),
  },
  {
    name: 'framed-fail-truncated-body',
    description: 'Empty plaintext and the last byte removed: the body is 15 bytes, shorter than a tag.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    length: 0,
    mutate: (e) => e.subarray(0, e.length - 1),
  },
  {
    name: 'framed-fail-header-only',
    description: 'The header and no segment at all.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    length: 34,
    mutate: (_e, h) => h.slice(),
  },
  {
    name: 'framed-fail-truncated-header',
    description: 'Cut inside the header, in the middle of the segment size (two of its four bytes kept).',
    expect: 'ERR_MALFORMED_ENVELOPE',
    length: 34,
    mutate: (e, h) => e.subarray(0, h.length - 32 - 2),
  },
  {
    name: 'framed-fail-segment-size-4095',
    description: 'Segment size 4095, one below the smallest, otherwise valid: commitment and segments made with it.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    length: 34,
    segmentSize: 4095,
  },
  {
    name: 'framed-fail-segment-size-16mib-plus-one',
    description: 'Segment size 16777217, one above the largest, otherwise valid.',
    expect: 'ERR_MALFORMED_ENVELOPE',
    length: 34,
    segmentSize: 16 * 1024 * 1024 + 1,
  },

  // -- the header and the key schedule
  {
    name: 'framed-success-header-key-id-changed',
    description:
      'The key id written beside the blob is "vector-key-0", not the "vector-key-1" the blob names: the data-key list is not authenticated (SPEC.md §9.13), so the segments are the bytes sealed with either key id, the local provider reads its key id from the blob, and the reader reports "vector-key-1", the provider\'s answer (§9.4).',
    expect: 'success',
    length: 34,
    headerKeyId: 'vector-key-0',
  },
  {
    name: 'framed-fail-header-segment-size-changed',
    description:
      'The segment size in the header changed after sealing from 4096 to 4352 (one bit): the 4129-byte body is now one segment, read as the last, and its tag fails (the authenticated header, which holds the segment size, is every segment\'s associated data).',
    expect: 'ERR_DECRYPTION_FAILED',
    length: 4097,
    mutate: (e, h) => {
      // The segment size is the 4 bytes before the commitment: 00 00 10 00 becomes 00 00 11 00.
      const out = flip(e, h.length - 32 - 2);
      assert(out[h.length - 34] === 0x11, 'segment size 4352');
      return out;
    },
    range: [0, 4096],
  },
  {
    name: 'framed-fail-commitment-changed',
    description:
      'Last byte of the commitment changed, and the segments sealed over that header with the right content key: only the commitment check rejects it.',
    expect: 'ERR_DECRYPTION_FAILED',
    length: 34,
    header: (p) => {
      p.commitment[31]! ^= 0x01;
    },
  },
  {
    name: 'framed-fail-record-id-wrong',
    description: 'Written with the record id "u-42", read with "u-43": the commitment does not match.',
    expect: 'ERR_DECRYPTION_FAILED',
    length: 34,
    recordId: 'u-42',
    readRecordId: 'u-43',
  },
];

/** Every vector, in scenario order. */
export async function buildVectors(): Promise<Vector[]> {
  const seen = new Set<string>();
  const out: Vector[] = [];
  for (const s of SCENARIOS) {
    assert(/^[a-z0-9-]+$/.test(s.name) && !seen.has(s.name), `unique file name ${s.name}`);
    seen.add(s.name);
    out.push(await build(s));
  }
  return out;
}

writeFromCommandLine(import.meta.url, 'framed vectors', buildVectors);
