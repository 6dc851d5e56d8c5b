/**
 * The independent readers of the vector tests, written from SPEC.md with `node:crypto` only,
 * nothing of the library's: the primitives (§1 AES-256-GCM, §3.3, §12.2 and §14.2 the
 * HMAC-SHA-512 key schedule, §6 XAES-256-GCM of C2SP, §9.10 and §12.1 the bindings' JSON text),
 * and the decryptor of §3.5 and §14.4 (single-pass and framed envelopes, in memory and by range)
 * with the local provider of §6.
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';

/** HMAC-SHA-512 (RFC 2104). */
export function hmacSha512(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha512', key).update(data).digest());
}

/**
 * §3.3: `HKDF-Expand-SHA-512(PRK = key, info = label || 0x00 || parts..., L = 64)`, written as its
 * one HMAC call `HMAC-SHA-512(key, info || 0x01)`, split into bytes 0..32 and 32..64.
 */
export function expandOne(key: Uint8Array, label: string, ...parts: Uint8Array[]): { input: Uint8Array; keys: Uint8Array; first: Uint8Array; second: Uint8Array } {
  const input = new Uint8Array(Buffer.concat([Buffer.from(label, 'utf8'), Buffer.of(0x00), ...parts, Buffer.of(0x01)]));
  const keys = hmacSha512(key, input);
  return { input, keys, first: keys.subarray(0, 32), second: keys.subarray(32, 64) };
}

/** §12.1: a JSON string as the bindings write it (a lone surrogate as `\uXXXX`). */
export function jsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    const pair = c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff;
    if (pair) {
      out += s[i]! + s[i + 1]!;
      i++;
    } else if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0c) out += '\\f';
    else if (c === 0x0d) out += '\\r';
    else if (c < 0x20 || (c >= 0xd800 && c <= 0xdfff)) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += s[i];
  }
  return out + '"';
}

/** §12.1: a record id or version in a binding: `null`, a JSON string, or decimal digits (`-0` as `0`). */
export function bindingValue(x: string | number | null): string {
  return x === null ? 'null' : typeof x === 'string' ? jsonString(x) : Object.is(x, -0) ? '0' : String(x);
}

/** §9.10: the record binding of a whole value, `"[" || id || "," || version || "]"` in UTF-8. */
export function specRecordBinding(id: string | number | null, version: string | number | null): Uint8Array {
  return new TextEncoder().encode(`[${bindingValue(id)},${bindingValue(version)}]`);
}

/** AES-GCM open of `ciphertext || tag` (16-byte tag), or undefined when the tag does not verify. */
export function gcmOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < 16) return undefined;
  const d = createDecipheriv(key.length === 16 ? 'aes-128-gcm' : 'aes-256-gcm', key, nonce, { authTagLength: 16 });
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  try {
    return new Uint8Array(Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]));
  } catch {
    return undefined;
  }
}

/** AES-GCM seal (16-byte tag): `ciphertext || tag`. */
export function gcmSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const c = createCipheriv(key.length === 16 ? 'aes-128-gcm' : 'aes-256-gcm', key, nonce, { authTagLength: 16 });
  c.setAAD(aad);
  return new Uint8Array(Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]));
}

/** XAES-256-GCM's derivation (SPEC.md §6): `L`, the CMAC subkey `K1`, the subkey `Kx` and the GCM nonce `Nx` of a 24-byte nonce. */
export function xaesDerive(key: Uint8Array, nonce: Uint8Array): { L: Uint8Array; K1: Uint8Array; Kx: Uint8Array; Nx: Uint8Array } {
  const aes = (b: Uint8Array) => {
    const c = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    return new Uint8Array(Buffer.concat([c.update(b), c.final()]));
  };
  const L = aes(new Uint8Array(16));
  const K1 = new Uint8Array(16);
  for (let i = 0; i < 16; i++) K1[i] = ((L[i]! << 1) | (i < 15 ? L[i + 1]! >> 7 : 0)) & 0xff;
  if (L[0]! & 0x80) K1[15]! ^= 0x87;
  const M = (i: number) => new Uint8Array(Buffer.concat([Buffer.of(0, i, 0x58, 0), nonce.subarray(0, 12)])).map((b, j) => b ^ K1[j]!);
  return { L, K1, Kx: new Uint8Array(Buffer.concat([aes(M(1)), aes(M(2))])), Nx: nonce.subarray(12, 24) };
}

// ---------------------------------------------------------------- the independent decryptor
//
// Written from SPEC.md alone (§3.5 for layout 0x00, §14.4 for layout 0x02, §6 for the local
// provider): no import from src/, only node:crypto and the platform's TextDecoder.

/** A failure with the code of §8 that SPEC.md gives for it. */
export class SpecError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
export const specFail = (code: string, message: string): never => {
  throw new SpecError(code, message);
};
export const MALFORMED = 'ERR_MALFORMED_ENVELOPE';
export const UNSUPPORTED = 'ERR_UNSUPPORTED_VERSION';
export const DECRYPTION_FAILED = 'ERR_DECRYPTION_FAILED';
export const INVALID_PARAMETER = 'ERR_INVALID_PARAMETER';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** §1.4: strict UTF-8, or undefined. */
export function utf8(b: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(b);
  } catch {
    return undefined;
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** §3.2: byte strings compared as unsigned bytes, a proper prefix first. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** A reader over untrusted bytes; `code` is the error every structural failure gives. */
export class SpecReader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly code: string,
  ) {}
  get left(): number {
    return this.buf.length - this.pos;
  }
  u8(what: string): number {
    if (this.left < 1) specFail(this.code, `truncated ${what}`);
    return this.buf[this.pos++]!;
  }
  take(n: number, what: string): Uint8Array {
    if (n > this.left) specFail(this.code, `truncated ${what}`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /** §1.1 `len()`, canonical only, checked against [min, max] before anything is taken. */
  len(what: string, min: number, max: number): number {
    const b0 = this.u8(what);
    let n = b0;
    if (b0 >= 0x80) {
      n = ((b0 & 0x7f) << 8) | this.u8(what);
      if (n < 128) specFail(this.code, `non-canonical len: ${what}`);
    }
    if (n < min || n > max) specFail(this.code, `${what}: length ${n} outside ${min}..${max}`);
    return n;
  }
  lenBytes(what: string, min: number, max: number): Uint8Array {
    return this.take(this.len(what, min, max), what);
  }
}

export interface SpecEdk {
  providerId: string;
  keyId: string;
  blob: Uint8Array;
}
export interface SpecHeader {
  /** `0x00` (single pass) or `0x02` (framed). */
  layout: number;
  /** Layout 0x02: §14.1. */
  segmentSize?: number;
  messageId: Uint8Array;
  context: Map<string, string>;
  contextEntries: [Uint8Array, Uint8Array][];
  edks: SpecEdk[];
  commitment: Uint8Array;
  header: Uint8Array;
  /** §3.1: the authenticated header, the header without the EDK count and the EDKs: the body's associated data. */
  aad: Uint8Array;
  body: Uint8Array;
}

/** §14.1: the segment sizes a header may hold. */
export const SPEC_SEGMENT_MIN = 4096;
export const SPEC_SEGMENT_MAX = 16 * 1024 * 1024;

/** §14.4 step 1 (1.10 for layout 0x02): the segments of a framed body of `B` bytes, or malformed. */
export function specFramedShape(B: number, segmentSize: number): { n: number; S: number; lastLength: number; plaintextLength: number } {
  const S = segmentSize + 16;
  if (B < 16) specFail(MALFORMED, 'body shorter than a tag');
  const n = Math.ceil(B / S);
  if (n > 2 ** 32) specFail(MALFORMED, 'more than 2^32 segments');
  const lastLength = B - (n - 1) * S;
  if (lastLength < 16) specFail(MALFORMED, 'last segment shorter than a tag');
  if (n > 1 && lastLength === 16) specFail(MALFORMED, 'empty last segment after a full one');
  return { n, S, lastLength, plaintextLength: B - 16 * n };
}

/** §3.5 step 1 (with §14.4 step 1 for layout 0x02), for an envelope whose whole length is known. */
export function specParseHeader(env: Uint8Array, maxEdks = 8): SpecHeader {
  const r = new SpecReader(env, MALFORMED);
  if (env.length < 2 || env[0] !== 0x45 || env[1] !== 0x4b) specFail(MALFORMED, 'bad magic');
  r.pos = 2;
  if (r.u8('version') !== 0x01) specFail(UNSUPPORTED, 'version');
  if (r.u8('suite') !== 0x01) specFail(UNSUPPORTED, 'suite');
  const layout = r.u8('layout');
  if (layout === 0x01) specFail(MALFORMED, 'record field layout: not read by decrypt');
  if (layout !== 0x00 && layout !== 0x02) specFail(UNSUPPORTED, 'layout');
  const messageId = r.take(16, 'message id');
  // §3.2
  const count = r.u8('context count');
  if (count > 64) specFail(MALFORMED, 'too many context entries');
  const context = new Map<string, string>();
  const contextEntries: [Uint8Array, Uint8Array][] = [];
  let prev: Uint8Array | undefined;
  for (let i = 0; i < count; i++) {
    const k = r.lenBytes('context key', 1, 256);
    const v = r.lenBytes('context value', 0, 2048);
    if (prev && compareBytes(prev, k) >= 0) specFail(MALFORMED, 'context keys not strictly increasing');
    prev = k;
    const ks = utf8(k);
    const vs = utf8(v);
    if (ks === undefined || vs === undefined) specFail(MALFORMED, 'context not UTF-8');
    context.set(ks!, vs!);
    contextEntries.push([k, v]);
  }
  const edkStart = r.pos;
  const edkCount = r.u8('EDK count');
  if (edkCount === 0 || edkCount > maxEdks) specFail(MALFORMED, 'EDK count');
  const edks: SpecEdk[] = [];
  for (let i = 0; i < edkCount; i++) {
    const providerId = utf8(r.lenBytes('provider id', 1, 64));
    if (providerId === undefined || !/^[a-z0-9._-]{1,64}$/.test(providerId)) specFail(MALFORMED, 'provider id');
    const keyId = utf8(r.lenBytes('key id', 1, 2048));
    if (keyId === undefined) specFail(MALFORMED, 'key id');
    const blob = r.lenBytes('blob', 1, 4096);
    edks.push({ providerId: providerId!, keyId: keyId!, blob });
  }
  const edkEnd = r.pos;
  let segmentSize: number | undefined;
  if (layout === 0x02) {
    // §14.1: u32be(segment_size) between the EDKs and the commitment, 4096..16777216.
    const s = r.take(4, 'segment size');
    segmentSize = s[0]! * 2 ** 24 + s[1]! * 2 ** 16 + s[2]! * 2 ** 8 + s[3]!;
    if (segmentSize < SPEC_SEGMENT_MIN || segmentSize > SPEC_SEGMENT_MAX) specFail(MALFORMED, 'segment size out of range');
  }
  const commitment = r.take(32, 'commitment');
  const header = env.subarray(0, r.pos);
  const aad = new Uint8Array([...env.subarray(0, edkStart), ...env.subarray(edkEnd, r.pos)]);
  const rest = env.subarray(r.pos);
  // step 1.10; §14.4 step 1 for layout 0x02
  if (layout === 0x02) specFramedShape(rest.length, segmentSize!);
  else if (rest.length < 16) specFail(MALFORMED, 'body shorter than a tag');
  return { layout, ...(segmentSize !== undefined ? { segmentSize } : {}), messageId, context, contextEntries, edks, commitment, header, aad, body: rest };
}

/** §3.2 encoding of entries given in order. */
export function encodeEntries(entries: readonly (readonly [Uint8Array, Uint8Array])[]): Uint8Array {
  const len = (n: number) => (n < 0x80 ? Uint8Array.of(n) : Uint8Array.of(0x80 | (n >> 8), n & 0xff));
  return concat(Uint8Array.of(entries.length), ...entries.flatMap(([k, v]) => [len(k.length), k, len(v.length), v]));
}

/** §3.2.1: the provider context: the header's entries and `"ek:purpose": "envelope-kit/v1/data-key"`, sorted by key bytes. */
export function providerContextBytes(entries: readonly (readonly [Uint8Array, Uint8Array])[]): Uint8Array {
  const enc = new TextEncoder();
  const all = [...entries, [enc.encode('ek:purpose'), enc.encode('envelope-kit/v1/data-key')] as const];
  return encodeEntries(all.sort((a, b) => compareBytes(a[0], b[0])));
}

/** A keyring of the local provider (§6) holding one key. */
export interface SpecKeyring {
  keyId: string;
  state: string;
  versions: Map<number, Uint8Array>;
}
export interface Unwrapped {
  /** The key id the provider answers with: the blob's own. */
  keyId: string;
  dataKey: Uint8Array;
  blobNonce: Uint8Array;
  blobAad: Uint8Array;
}

/** §6: XAES-256-GCM open, or undefined when the tag fails. */
export function xaesOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  const { Kx, Nx } = xaesDerive(key, nonce);
  return gcmOpen(Kx, Nx, aad, sealed);
}

/** §6: the local provider's `decrypt(blob, context)`; `context` is its canonical encoding. */
export function localDecrypt(kr: SpecKeyring, blob: Uint8Array, context: Uint8Array): Unwrapped {
  if (blob.length < 1 || blob.length > 4096) specFail(INVALID_PARAMETER, 'blob size');
  const r = new SpecReader(blob, DECRYPTION_FAILED);
  if (r.u8('format') !== 0x02) specFail(DECRYPTION_FAILED, 'blob format');
  const keyId = utf8(r.lenBytes('key id', 1, 64));
  if (keyId === undefined || !/^[A-Za-z0-9_-]{1,64}$/.test(keyId)) specFail(DECRYPTION_FAILED, 'blob key id');
  const version = r.len('version', 1, 16383);
  const prefix = blob.subarray(0, r.pos);
  const nonce = r.take(24, 'nonce');
  const sealed = blob.subarray(r.pos);
  if (sealed.length - 16 < 1 || sealed.length - 16 > 1024) specFail(DECRYPTION_FAILED, 'blob data key length');
  if (keyId !== kr.keyId) specFail('ERR_KEY_NOT_FOUND', 'key not found');
  if (kr.state !== 'Enabled') specFail('ERR_KEY_DISABLED', 'key disabled');
  const master = kr.versions.get(version) ?? specFail(DECRYPTION_FAILED, 'no such version');
  const blobAad = concat(prefix, context);
  const dataKey = xaesOpen(master, nonce, blobAad, sealed) ?? specFail(DECRYPTION_FAILED, 'blob tag');
  return { keyId: keyId!, dataKey, blobNonce: nonce, blobAad };
}

/** §3.5 step 3 with one provider, the local keyring of §6, and an optional allow-list. */
export function specUnwrap(h: SpecHeader, kr: SpecKeyring, allowed: readonly string[] | undefined): Unwrapped {
  let matched = false;
  const failures: string[] = [];
  for (const edk of h.edks) {
    if (edk.providerId !== 'local') continue;
    matched = true;
    try {
      const u = localDecrypt(kr, edk.blob, providerContextBytes(h.contextEntries));
      if (u.dataKey.length !== 16 && u.dataKey.length !== 32) failures.push(DECRYPTION_FAILED);
      else if (allowed && !allowed.includes(u.keyId)) failures.push(DECRYPTION_FAILED);
      else return u;
    } catch (e) {
      failures.push(e instanceof SpecError ? e.code : 'ERR_PROVIDER');
    }
  }
  if (!matched) return specFail('ERR_NO_MATCHING_PROVIDER', 'no provider');
  const other = failures.find((c) => c !== 'ERR_KEY_DISABLED' && c !== 'ERR_KEY_NOT_FOUND');
  if (other === undefined) return specFail(failures.includes('ERR_KEY_DISABLED') ? 'ERR_KEY_DISABLED' : 'ERR_KEY_NOT_FOUND', 'key');
  return specFail(other, 'unwrap');
}

/** §3.3 (layout 0x00) and §14.2 (layout 0x02), in their HMAC form; `binding` is §9.10's. */
export function specKeySchedule(layout: number, dataKey: Uint8Array, messageId: Uint8Array, binding: Uint8Array) {
  const label = `envelope-kit/v1/suite-01/layout-0${layout}/keys`;
  const { input, keys, first, second } = expandOne(dataKey, label, messageId, binding);
  return { binding, keysInput: input, keys, contentKey: first, commitment: second };
}

/** §14.3: `nonce_i = u88be(i) || u8(last ? 0x01 : 0x00)`. */
export function specSegmentNonce(i: number, last: boolean): Uint8Array {
  const nonce = new Uint8Array(12);
  let x = i;
  for (let j = 10; j >= 0; j--) {
    nonce[j] = x % 256;
    x = Math.floor(x / 256);
  }
  nonce[11] = last ? 0x01 : 0x00;
  return nonce;
}

/** One opened segment of a framed body (§14.3), where it was in the body, and its plaintext. */
export interface SpecSegment {
  index: number;
  nonce: Uint8Array;
  start: number;
  end: number;
  plaintext: Uint8Array;
}

/** §14.4 step 3: open segments `first..last` of a framed body (every segment by default), each with its nonce. */
export function specOpenSegments(contentKey: Uint8Array, h: SpecHeader, first = 0, last?: number): SpecSegment[] {
  const { n, S } = specFramedShape(h.body.length, h.segmentSize!);
  const out: SpecSegment[] = [];
  for (let i = first; i <= (last ?? n - 1); i++) {
    const start = i * S;
    const end = Math.min(start + S, h.body.length);
    const nonce = specSegmentNonce(i, i === n - 1);
    const plaintext = gcmOpen(contentKey, nonce, h.aad, h.body.subarray(start, end)) ?? specFail(DECRYPTION_FAILED, `segment ${i} tag`);
    out.push({ index: i, nonce, start, end, plaintext });
  }
  return out;
}

/** What a reader is given besides the envelope (§3.5 inputs). */
export interface SpecReadOptions {
  keyring: SpecKeyring;
  required?: Record<string, string> | undefined;
  allowed?: readonly string[] | undefined;
  /** §13: open the envelope as the blind-index key of this name. */
  indexName?: string | undefined;
  /** §9.10: the record binding of the record id and version the reader is given. */
  binding: Uint8Array;
}

/** §3.5 steps 1.11 to 5: the context rules, the provider, the key schedule, the commitment. */
function specKeysOf(h: SpecHeader, o: SpecReadOptions) {
  if (o.indexName === undefined) {
    // step 1.11: no reserved key in a message's context
    if ([...h.context.keys()].some((k) => k.startsWith('ek:'))) specFail(MALFORMED, 'reserved context key');
  } else if (h.context.size !== 1 || h.context.get('ek:blind-index') !== o.indexName) {
    specFail(DECRYPTION_FAILED, 'not a blind-index key of that name'); // §13: exactly this context
  }
  for (const [k, v] of Object.entries(o.required ?? {})) {
    if (h.context.get(k) !== v) specFail(DECRYPTION_FAILED, 'required context'); // step 2
  }
  const found = specUnwrap(h, o.keyring, o.allowed); // step 3
  const keys = specKeySchedule(h.layout, found.dataKey, h.messageId, o.binding); // step 4, with the reader's record binding
  if (!constantTimeEqual(keys.commitment, h.commitment)) specFail(DECRYPTION_FAILED, 'commitment'); // step 5
  return { ...found, ...keys };
}

/**
 * §3.5 (layout 0x00) and §14.4 (layout 0x02, an envelope of a known length), with one provider:
 * the local keyring of §6. With `indexName`, opened as a blind-index key (§13, layout 0x00 only).
 */
export function specDecrypt(env: Uint8Array, o: SpecReadOptions) {
  const h = specParseHeader(env); // step 1
  if (o.indexName !== undefined && h.layout !== 0x00) specFail(UNSUPPORTED, 'a blind-index key is a layout 0x00 envelope');
  const k = specKeysOf(h, o);
  let plaintext: Uint8Array;
  let segments: SpecSegment[] = [];
  if (h.layout === 0x02) {
    segments = specOpenSegments(k.contentKey, h); // §14.4 step 3
    plaintext = concat(...segments.map((s) => s.plaintext));
  } else {
    plaintext = gcmOpen(k.contentKey, new Uint8Array(12), h.aad, h.body) ?? specFail(DECRYPTION_FAILED, 'body tag'); // step 6
  }
  if (o.indexName !== undefined && plaintext.length !== 32) specFail(DECRYPTION_FAILED, 'an index key is 32 bytes'); // §13
  return { ...k, layout: h.layout, segmentSize: h.segmentSize, header: h.header, body: h.body, plaintext, segments, context: h.context };
}

/**
 * §14.4, the range reader: plaintext bytes `[offset, offset + length)` of a framed envelope, opening
 * only the segments that cover them, the last flag set exactly for `i = n − 1` with `n` from the
 * envelope's length. A range that ends after the plaintext is an argument error.
 */
export function specDecryptRange(env: Uint8Array, o: SpecReadOptions, offset: number, length: number) {
  const h = specParseHeader(env);
  if (h.layout !== 0x02) specFail(MALFORMED, 'not a framed envelope');
  const { plaintextLength } = specFramedShape(h.body.length, h.segmentSize!);
  if (offset + length > plaintextLength) specFail(INVALID_PARAMETER, 'the range ends after the plaintext');
  const k = specKeysOf(h, o);
  const first = Math.floor(offset / h.segmentSize!);
  const last = Math.floor((offset + length - 1) / h.segmentSize!);
  const segments = length === 0 ? [] : specOpenSegments(k.contentKey, h, first, last);
  const opened = concat(...segments.map((s) => s.plaintext));
  const from = offset - first * h.segmentSize!;
  return { plaintext: opened.subarray(from, from + length), plaintextLength, segmentsRead: segments.length };
}
