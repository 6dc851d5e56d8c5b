/**
 * Envelope format v1: pure encode/parse of the binary header (SPEC.md §3) and
 * the text form (SPEC.md §4). No cryptography here.
 * @module
 */
import { NONCE_LENGTH, TAG_LENGTH } from './aead/types.js';
import { type CheckedContext, contextLength, readContext, writeContext } from './context.js';
import { InvalidParameterError, MalformedEnvelopeError, UnsupportedVersionError } from './errors.js';
import { base64UrlDecode, base64UrlDecodeShared, base64UrlEncode } from '../internal/base64.js';
import { ByteReader, ByteWriter, byteView, lenSize, utf8DecodeStrict, utf8Encode } from '../internal/bytes.js';
import { PROVIDER_LIMITS, isProviderId } from './provider.js';

/** `"EK"`: the first two bytes of every binary envelope. */
export const MAGIC = /* @__PURE__ */ Object.freeze([0x45, 0x4b] as const);
/** Format version this release writes and reads. */
export const FORMAT_VERSION = 0x01;
/** Suite 0x01: HKDF-SHA-512 key schedule (SPEC.md §3.3), AES-256-GCM, 32-byte key commitment. */
export const SUITE_AES256GCM_HKDFSHA512_COMMIT = 0x01;
/** Layout 0x00: the body is one AES-GCM pass (`ciphertext || tag`). */
export const LAYOUT_SINGLE = 0x00;
/** Layout 0x01: one field of a record; the body is sealed under a key bound to the field's path (SPEC.md §12). */
export const LAYOUT_FIELD = 0x01;
/** Layout 0x02: framed; the body is a sequence of segments sealed on their own, for streams and random access (SPEC.md §14). */
export const LAYOUT_FRAMED = 0x02;
/** Layouts this release knows, with their names. */
export const LAYOUT_NAMES: Readonly<Record<number, string>> = /* @__PURE__ */ Object.freeze({ 0x00: 'single pass', 0x01: 'record field', 0x02: 'framed' });
/** Segment sizes of layout 0x02 (SPEC.md §14.1): plaintext bytes of every segment but the last. */
export const SEGMENT_LIMITS = /* @__PURE__ */ Object.freeze({
  /** Smallest segment size: 4 KiB. */
  min: 4096,
  /** Largest segment size: 16 MiB. */
  max: 16 * 1024 * 1024,
  /** What writers use unless told otherwise: 64 KiB. */
  default: 65536,
  /** Most segments in one envelope (SPEC.md §14.3). */
  maxSegments: 2 ** 32,
});
/** Bytes of the message id. */
export const MESSAGE_ID_LENGTH = 16;
/** Bytes of the key commitment. */
export const COMMITMENT_LENGTH = 32;
/** Text-form prefix (SPEC.md §4). */
export const TEXT_PREFIX = 'ek1.';
/** Prefix of a record header stored on its own (compact fields, SPEC.md §12.4). */
export const RECORD_HEADER_PREFIX = 'ekh1.';
/** Prefix of a compact field: the sealed value without a header (SPEC.md §12.4). */
export const COMPACT_FIELD_PREFIX = 'ekf1.';

/** Hard limits of the format (SPEC.md §5). */
export const FORMAT_LIMITS = /* @__PURE__ */ Object.freeze({
  /** Most encrypted data keys the wire format can carry. */
  maxEncryptedDataKeys: 255,
  /** Default limit a reader enforces; raise it with the `maxEncryptedDataKeys` option. */
  defaultMaxEncryptedDataKeys: 8,
});

/** One encrypted data key as stored in the header. */
export interface EncryptedDataKey {
  readonly providerId: string;
  readonly keyId: string;
  readonly blob: Uint8Array;
}

/** A parsed, checked header. */
export interface EnvelopeHeader {
  readonly version: number;
  readonly suite: number;
  readonly layout: number;
  readonly messageId: Uint8Array;
  readonly context: CheckedContext;
  readonly encryptedDataKeys: readonly EncryptedDataKey[];
  readonly commitment: Uint8Array;
  /** Layout 0x02 only: plaintext bytes of every segment but the last (SPEC.md §14.1). */
  readonly segmentSize?: number;
  /** The exact header bytes (a copy). */
  readonly bytes: Uint8Array;
  /**
   * The authenticated header (SPEC.md §3.1): the header without its list of encrypted data keys
   * (a copy). The associated data of the body; the data-key list can change without it (§9.13).
   */
  readonly aad: Uint8Array;
}

/**
 * The authenticated header (SPEC.md §3.1) of a header the writer just encoded: its bytes before the
 * EDK count (`"EK" || version || suite || layout || message id || context`), then those after the
 * last EDK (`[segment size] || commitment`). Taken from the encoded bytes (a copy), so it is the very
 * bytes a reader's {@link parseHeader} gives as `aad`. The associated data of every body.
 */
export function authenticatedHeaderOf(header: Uint8Array, context: CheckedContext, layout: number = LAYOUT_SINGLE): Uint8Array {
  const edkStart = 5 + MESSAGE_ID_LENGTH + contextLength(context);
  const tail = COMMITMENT_LENGTH + (layout === LAYOUT_FRAMED ? 4 : 0);
  return authenticatedPart(header, edkStart, header.length - tail, header.length);
}

/**
 * Build the header bytes (SPEC.md §3.1). Inputs must already be checked.
 * @param room - bytes to leave free after the header: the header is then the
 *   start of a larger array (its length minus `room`), so that an envelope is
 *   one allocation, header and body.
 */
export function encodeHeader(
  h: {
    layout?: number;
    messageId: Uint8Array;
    context: CheckedContext;
    encryptedDataKeys: readonly EncryptedDataKey[];
    commitment: Uint8Array;
    /** Layout 0x02: the segment size, written before the commitment (SPEC.md §14.1). */
    segmentSize?: number;
  },
  room = 0,
): Uint8Array {
  const ids = h.encryptedDataKeys.map((e) => [utf8Encode(e.providerId), utf8Encode(e.keyId)] as const);
  const framed = h.layout === LAYOUT_FRAMED;
  let n = 5 + h.messageId.length + contextLength(h.context) + 1 + h.commitment.length + (framed ? 4 : 0);
  h.encryptedDataKeys.forEach((e, i) => {
    const [p, k] = ids[i]!;
    n += lenSize(p.length) + p.length + lenSize(k.length) + k.length + lenSize(e.blob.length) + e.blob.length;
  });
  const out = new Uint8Array(n + room);
  const header = room === 0 ? out : out.subarray(0, n);
  const w = new ByteWriter(header);
  w.u8(MAGIC[0]).u8(MAGIC[1]).u8(FORMAT_VERSION).u8(SUITE_AES256GCM_HKDFSHA512_COMMIT).u8(h.layout ?? LAYOUT_SINGLE);
  w.bytes(h.messageId);
  writeContext(w, h.context);
  w.u8(h.encryptedDataKeys.length);
  h.encryptedDataKeys.forEach((e, i) => {
    const [p, k] = ids[i]!;
    w.lenBytes(p).lenBytes(k).lenBytes(e.blob);
  });
  if (framed) {
    const s = h.segmentSize!;
    w.u8(s >>> 24).u8((s >>> 16) & 0xff).u8((s >>> 8) & 0xff).u8(s & 0xff);
  }
  w.bytes(h.commitment);
  w.expectFull(header);
  return out;
}

/** The errors of {@link parseHeader} that say only "the bytes ended too early". */
const TRUNCATIONS = new WeakSet<object>();

/**
 * True when `e` is a {@link parseHeader} error that says only that the bytes ended before the
 * header did: a streaming reader then waits for more bytes instead of failing.
 */
export function isTruncation(e: unknown): boolean {
  return typeof e === 'object' && e !== null && TRUNCATIONS.has(e);
}

/**
 * Longest header a reader with this EDK limit accepts: every field at its limit (SPEC.md §5),
 * with a segment size. A streaming reader never holds more before the header parses.
 */
export function maxHeaderBytes(maxEncryptedDataKeys: number): number {
  const context = 1 + 64 * (2 + 256 + 2 + 2048);
  const edk = 1 + 64 + 2 + 2048 + 2 + 4096;
  return 5 + MESSAGE_ID_LENGTH + context + 1 + maxEncryptedDataKeys * edk + 4 + COMMITMENT_LENGTH;
}

/**
 * What may follow a header: a body of at least a tag (`'envelope'`), nothing (`'header'`: a
 * record header stored alone, SPEC.md §12.4), or anything (`'prefix'`: the start of a stream,
 * whose body has not arrived yet).
 */
export type HeaderMode = 'envelope' | 'header' | 'prefix';

/**
 * Parse the header of a binary envelope, checking every length against its
 * limit before reading, and accepting only canonical encodings.
 * @param mode - what may follow the header ({@link HeaderMode}); `true` is `'header'`.
 * @returns the header and the offset where the body starts.
 * @throws MalformedEnvelopeError, UnsupportedVersionError
 */
export function parseHeader(
  bytes: Uint8Array,
  maxEncryptedDataKeys: number = FORMAT_LIMITS.defaultMaxEncryptedDataKeys,
  layouts: readonly number[] = [LAYOUT_SINGLE],
  mode: HeaderMode | boolean = 'envelope',
): { header: EnvelopeHeader; bodyOffset: number } {
  const m: HeaderMode = mode === true ? 'header' : mode === false ? 'envelope' : mode;
  const fail = (m: string) => {
    const e = new MalformedEnvelopeError(m);
    if (m.startsWith('truncated: ')) TRUNCATIONS.add(e);
    return e;
  };
  const r = new ByteReader(bytes, fail);
  if (bytes.length < 2 || bytes[0] !== MAGIC[0] || bytes[1] !== MAGIC[1]) throw fail('not an envelope (bad magic)');
  r.pos = 2;
  const version = r.u8('version');
  if (version !== FORMAT_VERSION) throw new UnsupportedVersionError('version', version);
  const suite = r.u8('suite');
  if (suite !== SUITE_AES256GCM_HKDFSHA512_COMMIT) throw new UnsupportedVersionError('suite', suite);
  const layout = r.u8('layout');
  if (!layouts.includes(layout)) {
    if (layout === LAYOUT_FIELD) throw fail('this envelope is a record field (layout 0x01): open it with decryptFields');
    if (layout === LAYOUT_SINGLE) throw fail('this envelope is a whole message (layout 0x00): open it with decrypt');
    throw new UnsupportedVersionError('layout', layout);
  }
  const messageId = r.take(MESSAGE_ID_LENGTH, 'message id').slice();
  const context = readContext(r, fail);
  const edkStart = r.pos;
  const count = r.u8('encrypted data key count');
  if (count === 0) throw fail('no encrypted data key');
  if (count > maxEncryptedDataKeys) throw fail(`${count} encrypted data keys; the limit is ${maxEncryptedDataKeys}`);
  const edks: EncryptedDataKey[] = [];
  for (let i = 0; i < count; i++) {
    const providerId = utf8DecodeStrict(r.lenBytes('provider id', PROVIDER_LIMITS.maxProviderIdBytes, 1));
    if (providerId === undefined || !isProviderId(providerId)) throw fail('invalid provider id');
    const keyId = utf8DecodeStrict(r.lenBytes('key id', PROVIDER_LIMITS.maxKeyIdBytes, 1));
    if (keyId === undefined) throw fail('key id is not valid UTF-8');
    const blob = r.lenBytes('blob', PROVIDER_LIMITS.maxBlobBytes, 1).slice();
    edks.push(Object.freeze({ providerId, keyId, blob }));
  }
  const edkEnd = r.pos;
  let segmentSize: number | undefined;
  if (layout === LAYOUT_FRAMED) {
    // SPEC.md §14.1
    const s = r.take(4, 'segment size');
    segmentSize = ((s[0]! << 24) | (s[1]! << 16) | (s[2]! << 8) | s[3]!) >>> 0;
    if (segmentSize < SEGMENT_LIMITS.min || segmentSize > SEGMENT_LIMITS.max) {
      throw fail(`segment size ${segmentSize} is outside ${SEGMENT_LIMITS.min}..${SEGMENT_LIMITS.max}`);
    }
  }
  const commitment = r.take(COMMITMENT_LENGTH, 'commitment').slice();
  const headerEnd = r.pos;
  // A record header (SPEC.md §12.4) is the header alone; an envelope has at least a tag after it.
  if (m === 'header' && r.remaining !== 0) throw fail('trailing bytes after the header');
  if (m === 'envelope' && r.remaining < TAG_LENGTH) throw fail('truncated: body');
  return {
    header: {
      version,
      suite,
      layout,
      messageId,
      context,
      encryptedDataKeys: Object.freeze(edks),
      commitment,
      ...(segmentSize !== undefined ? { segmentSize } : {}),
      bytes: bytes.slice(0, headerEnd),
      aad: authenticatedPart(bytes, edkStart, edkEnd, headerEnd),
    },
    bodyOffset: headerEnd,
  };
}

/**
 * Where the key ids written beside the blobs lie in a header's bytes (`[start, end)` of each EDK's
 * key id, without its length): the only bytes of a valid envelope whose change may leave it
 * decryptable, to the same plaintext, since a provider that names its key in the blob does not read
 * them (SPEC.md §9.13). For tests that check "any other change is refused".
 * @internal
 */
export function keyIdRanges(header: EnvelopeHeader): [number, number][] {
  let at = 5 + header.messageId.length + contextLength(header.context) + 1;
  const out: [number, number][] = [];
  for (const e of header.encryptedDataKeys) {
    const p = utf8Encode(e.providerId).length;
    const k = utf8Encode(e.keyId).length;
    at += lenSize(p) + p + lenSize(k);
    out.push([at, at + k]);
    at += k + lenSize(e.blob.length) + e.blob.length;
  }
  return out;
}

/** SPEC.md §3.1: the header's bytes before the EDK count, then those after the last EDK (a copy). */
function authenticatedPart(bytes: Uint8Array, edkStart: number, edkEnd: number, headerEnd: number): Uint8Array {
  const out = new Uint8Array(edkStart + headerEnd - edkEnd);
  out.set(bytes.subarray(0, edkStart), 0);
  out.set(bytes.subarray(edkEnd, headerEnd), edkStart);
  return out;
}

/** The body nonce of layout 0x00: twelve zero bytes (the content key is unique per envelope). SPEC.md §3.4 */
export const SINGLE_PASS_NONCE: Uint8Array = new Uint8Array(NONCE_LENGTH);

/**
 * Longest text form, in characters (ASCII, so also bytes): 2^29 − 24, the string limit of
 * V8 (Node, Chrome, Deno, edge runtimes), the lowest of the major engines. SPEC.md §5.
 */
export const MAX_TEXT_LENGTH = 2 ** 29 - 24;
/** Longest binary envelope that has a text form: `"ek1." || base64url` within {@link MAX_TEXT_LENGTH}. */
export const MAX_TEXT_ENVELOPE_BYTES = Math.floor(((MAX_TEXT_LENGTH - TEXT_PREFIX.length) * 3) / 4);

/**
 * Binary envelope to its text form: `ek1.` + unpadded base64url. SPEC.md §4
 * @throws InvalidParameterError for a value that is not a Uint8Array, or an envelope longer than
 *   {@link MAX_TEXT_ENVELOPE_BYTES} (its text would not fit in a JavaScript string).
 */
export function envelopeToText(bytes: Uint8Array): string {
  const view = byteView(bytes);
  if (!view) throw new InvalidParameterError('"envelope" must be a Uint8Array (not a view of a detached ArrayBuffer)');
  if (view.length > MAX_TEXT_ENVELOPE_BYTES) {
    throw new InvalidParameterError(`envelope of ${view.length} bytes is too long for the text form (at most ${MAX_TEXT_ENVELOPE_BYTES} bytes)`);
  }
  let text: string;
  try {
    text = base64UrlEncode(view);
  } catch (e) {
    // An engine with a lower string limit than V8's.
    throw new InvalidParameterError(`envelope of ${view.length} bytes is too long for this runtime's strings`, { cause: e });
  }
  return TEXT_PREFIX + text;
}

/**
 * Text form to binary. Only the canonical text is accepted (exact prefix,
 * unpadded base64url, no whitespace, zero trailing bits).
 * @throws MalformedEnvelopeError, UnsupportedVersionError (for a prefix of another version)
 */
export function envelopeFromText(text: string): Uint8Array {
  return fromText(text, base64UrlDecode);
}

/**
 * {@link envelopeFromText} for the library's own decrypt paths, which only read
 * the bytes (decrypt copies what it keeps): on Node the result may be a view
 * into Buffer's shared pool instead of a fresh array.
 * @internal
 */
export function envelopeFromTextForDecrypt(text: string): Uint8Array {
  return fromText(text, base64UrlDecodeShared);
}

/**
 * The version a text form's prefix names (SPEC.md §4): `ek`, a version 1..255 in canonical
 * decimal (no leading zero), then `.`. `undefined` when the text has no such prefix (`ek0.`,
 * `ek01.`, `ek256.`, `EK1.` are not version prefixes).
 */
export function textVersion(text: string): number | undefined {
  const m = /^ek([1-9][0-9]{0,2})\./.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n <= 255 ? n : undefined;
}

function fromText(text: string, decode: (s: string) => Uint8Array | undefined): Uint8Array {
  if (typeof text !== 'string') throw new MalformedEnvelopeError('text envelope must be a string');
  if (!text.startsWith(TEXT_PREFIX)) {
    const version = textVersion(text);
    if (version !== undefined) throw new UnsupportedVersionError('version', version);
    throw new MalformedEnvelopeError('not a text envelope (expected prefix "ek1.")');
  }
  const bytes = decode(text.slice(TEXT_PREFIX.length));
  if (!bytes) throw new MalformedEnvelopeError('text envelope is not canonical base64url');
  return bytes;
}
