/**
 * The cases run inside a browser page, a workerd worker and an edge-runtime VM, on a bundle of
 * the published entry points (dist/, as package.json "exports" maps them). Runtime-neutral: it
 * imports nothing at run time; the entry that bundles it passes the library in. Each case takes
 * what Node made (`fixtures`) and returns what Node checks or opens (JSON: bytes as base64).
 */
import type * as Core from '../../dist/index.js';
import type * as Alibaba from '../../dist/alibaba.js';

/** What Node hands to every case. */
export interface Fixtures {
  /** A passphrase-protected keyring file, made by `serializeKeyring` on Node. */
  readonly keyringText: string;
  readonly passphrase: string;
  readonly alias: string;
  /** Made on Node with the keyring: a binary envelope (base64), a text one, an object, fields (self-contained and compact), a framed stream (base64). */
  readonly fromNode: {
    readonly binary: string;
    readonly text: string;
    readonly object: string;
    readonly fields: Record<string, unknown>;
    readonly compact: Record<string, unknown>;
    readonly framed: string;
    readonly indexKey: string;
  };
  /** The Alibaba emulator, when the test started one that answers this page's origin. */
  readonly alibaba?: { readonly endpoint: string; readonly accessKeyId: string; readonly accessKeySecret: string; readonly keyId: string };
}

/** The library as the bundle sees it. */
export interface Libraries {
  readonly core: typeof Core;
  readonly alibaba: typeof Alibaba;
}

export type Case = (lib: Libraries, fixtures: Fixtures) => Promise<unknown>;

/** The plaintexts every runtime seals, so that Node can check what it opens. */
export const PAGE_PLAINTEXT = 'made in the page: \u00e9\u00e8 \u{1F510}';
export const PAGE_OBJECT = { name: 'Grace', tags: ['a', 'b'], n: 42 } as const;
export const PAGE_RECORD = { id: 7, name: 'Grace', ssn: '123-45-6789', email: 'grace@example.com', address: { street: '1 Main St', city: 'Arlington' } };
export const NODE_PLAINTEXT = 'made in Node: \u00fc\u00f1\u00ee';
export const NODE_OBJECT = { name: 'Ada', born: 1815, tags: ['x'] } as const;
export const NODE_RECORD = { id: 42, name: 'Ada', ssn: '078-05-1120', email: 'ada@example.com', address: { street: '12 St James Sq', city: 'London' } };
export const FIELDS = ['ssn', 'email', 'address.street'] as const;
export const CONTEXT = { table: 'users' } as const;
/** The framed stream's plaintext: `STREAM_LENGTH` bytes, byte i = i * 7 mod 251. */
export const STREAM_LENGTH = 300_000;
export const STREAM_SEGMENT = 16_384;

export function streamBytes(length = STREAM_LENGTH): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7) % 251;
  return b;
}

export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text);
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

function fail(what: string): never {
  throw new Error(what);
}

function same(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${what}: expected ${e}, got ${a}`);
}

function sameBytes(a: Uint8Array, b: Uint8Array, what: string): void {
  if (a.length !== b.length) fail(`${what}: length ${a.length}, expected ${b.length}`);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) fail(`${what}: differs at byte ${i}`);
}

async function rejectsWith(p: Promise<unknown>, code: string, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    same((e as { code?: unknown }).code, code, what);
    return;
  }
  fail(`${what}: expected a rejection with ${code}`);
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function streamOf(bytes: Uint8Array, chunk: number): ReadableStream<Uint8Array> {
  let o = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (o >= bytes.length) return c.close();
      c.enqueue(bytes.slice(o, o + chunk));
      o += chunk;
    },
  });
}

const keyrings = new Map<string, Promise<Core.LocalKeyring>>();
/** The keyring Node wrote, parsed here once per runtime (scrypt is the slow part). */
function keyring(lib: Libraries, f: Fixtures): Promise<Core.LocalKeyring> {
  let k = keyrings.get(f.keyringText);
  if (k === undefined) {
    k = lib.core.parseKeyring(f.keyringText, { passphrase: f.passphrase });
    keyrings.set(f.keyringText, k);
  }
  return k;
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const fromUtf8 = (b: Uint8Array) => new TextDecoder().decode(b);

/** The cases, by name; the same list in every runtime. */
export const CASES: Record<string, Case> = {
  'no Node globals: process, Buffer and require are undefined': async () => {
    const g = globalThis as Record<string, unknown>;
    same([typeof g.process, typeof g.Buffer, typeof g.require], ['undefined', 'undefined', 'undefined'], 'typeof process, Buffer, require');
    if (typeof (globalThis as { crypto?: { subtle?: unknown } }).crypto?.subtle !== 'object') fail('crypto.subtle is missing');
    return null;
  },

  'a passphrase keyring file made in Node parses, and a wrong passphrase is refused': async (lib, f) => {
    const kr = await keyring(lib, f);
    const keys = kr.listAliases();
    await rejectsWith(lib.core.parseKeyring(f.keyringText, { passphrase: 'not it' }), 'ERR_KEYRING_FILE', 'wrong passphrase');
    return keys;
  },

  'encrypt and decrypt, binary and text, both ways across Node': async (lib, f) => {
    const provider = await keyring(lib, f);
    const fromNode = await lib.core.decrypt(fromBase64(f.fromNode.binary), { provider, encryptionContext: CONTEXT });
    same(fromUtf8(fromNode.plaintext), NODE_PLAINTEXT, 'binary envelope from Node');
    same(fromUtf8((await lib.core.decryptText(f.fromNode.text, { provider, encryptionContext: CONTEXT })).plaintext), NODE_PLAINTEXT, 'text envelope from Node');
    const binary = await lib.core.encrypt(utf8(PAGE_PLAINTEXT), { provider, keyId: f.alias, encryptionContext: CONTEXT });
    const text = await lib.core.encryptText(utf8(PAGE_PLAINTEXT), { provider, keyId: f.alias, encryptionContext: CONTEXT });
    // Tampering is caught here too.
    const bad = binary.slice();
    bad[bad.length - 1]! ^= 1;
    await rejectsWith(lib.core.decrypt(bad, { provider, encryptionContext: CONTEXT }), 'ERR_DECRYPTION_FAILED', 'flipped tag bit');
    await rejectsWith(lib.core.decrypt(binary, { provider, encryptionContext: { table: 'other' } }), 'ERR_DECRYPTION_FAILED', 'other context');
    return { binary: toBase64(binary), text };
  },

  'large payloads (WebCrypto path) round-trip and match the noble-only backend': async (lib, f) => {
    const provider = await keyring(lib, f);
    const big = streamBytes(3 << 20);
    const env = await lib.core.encrypt(big, { provider, keyId: f.alias });
    sameBytes((await lib.core.decrypt(env, { provider })).plaintext, big, 'default backend round trip');
    sameBytes((await lib.core.decrypt(env, { provider, aead: lib.core.nobleAesGcm })).plaintext, big, 'noble opens the default backend\u2019s envelope');
    const viaNoble = await lib.core.encrypt(big, { provider, keyId: f.alias, aead: lib.core.nobleAesGcm });
    sameBytes((await lib.core.decrypt(viaNoble, { provider })).plaintext, big, 'default backend opens noble\u2019s envelope');
    const bad = env.slice();
    bad[env.length - 100]! ^= 0x80;
    await rejectsWith(lib.core.decrypt(bad, { provider }), 'ERR_DECRYPTION_FAILED', 'a flipped bit in a large body');
    return { length: env.length };
  },

  'encryptObject and decryptObject, both ways across Node': async (lib, f) => {
    const provider = await keyring(lib, f);
    same(await lib.core.decryptObject(f.fromNode.object, { provider, encryptionContext: CONTEXT, recordId: 1 }), NODE_OBJECT, 'object from Node');
    await rejectsWith(lib.core.decryptObject(f.fromNode.object, { provider, encryptionContext: CONTEXT, recordId: 2 }), 'ERR_DECRYPTION_FAILED', 'another record id');
    return { object: await lib.core.encryptObject(PAGE_OBJECT, { provider, keyId: f.alias, encryptionContext: CONTEXT, recordId: 1 }) };
  },

  'encryptFields and decryptFields, self-contained and compact, with a blind index, both ways across Node': async (lib, f) => {
    const provider = await keyring(lib, f);
    const index = await lib.core.openBlindIndex(f.fromNode.indexKey, { provider, name: 'users.email', normalize: (s) => s.trim().toLowerCase() });
    const opened = await lib.core.decryptFields(f.fromNode.fields, { provider, fields: FIELDS, recordId: NODE_RECORD.id, encryptionContext: CONTEXT });
    same(opened, { ...NODE_RECORD, email_idx: f.fromNode.fields.email_idx }, 'fields from Node');
    same(index.compute(' ADA@example.com '), f.fromNode.fields.email_idx, 'blind index computed here = the one Node stored');
    const compactOpened = await lib.core.decryptFields(f.fromNode.compact, { provider, fields: FIELDS, recordId: NODE_RECORD.id, encryptionContext: CONTEXT, headerField: '_ek' });
    const { _ek, ...compactPlain } = compactOpened as Record<string, unknown>;
    same(compactPlain, NODE_RECORD, 'compact fields from Node');
    if (typeof _ek !== 'string') fail('the header field is kept');
    const fields = await lib.core.encryptFields(PAGE_RECORD, {
      provider,
      keyId: f.alias,
      fields: FIELDS,
      recordId: PAGE_RECORD.id,
      encryptionContext: CONTEXT,
      blindIndexes: { email: { index, into: 'email_idx' } },
    });
    const compact = await lib.core.encryptFields(PAGE_RECORD, { provider, keyId: f.alias, fields: FIELDS, recordId: PAGE_RECORD.id, encryptionContext: CONTEXT, headerField: '_ek' });
    same(typeof compact._ek, 'string', 'compact header written');
    // Round trips in this runtime, and a field moved to another record is refused.
    same(await lib.core.decryptFields(fields, { provider, fields: FIELDS, recordId: PAGE_RECORD.id, encryptionContext: CONTEXT }), { ...PAGE_RECORD, email_idx: fields.email_idx }, 'own fields');
    await rejectsWith(lib.core.decryptFields(fields, { provider, fields: FIELDS, recordId: 8, encryptionContext: CONTEXT }), 'ERR_DECRYPTION_FAILED', 'fields under another record id');
    const newIndex = await lib.core.createBlindIndexKey({ provider, keyId: f.alias, name: 'users.phone' });
    const phone = await lib.core.openBlindIndex(newIndex, { provider, name: 'users.phone' });
    return { fields, compact, phoneIndexKey: newIndex, phoneIndexOf555: phone.compute('555-0100') };
  },

  'encryptStream, decryptStream and decryptRange, both ways across Node': async (lib, f) => {
    const provider = await keyring(lib, f);
    const expected = streamBytes();
    const framed = fromBase64(f.fromNode.framed);
    const opened = await readAll(streamOf(framed, 10_000).pipeThrough(lib.core.decryptStream({ provider, encryptionContext: CONTEXT })));
    sameBytes(opened, expected, 'Node\u2019s framed envelope through decryptStream');
    const range = await lib.core.decryptRange(new Blob([framed]), { provider, offset: 100_000, length: 50_000, encryptionContext: CONTEXT });
    sameBytes(range.plaintext, expected.subarray(100_000, 150_000), 'decryptRange of a Blob');
    const sealed = await readAll(streamOf(expected, 7_000).pipeThrough(lib.core.encryptStream({ provider, keyId: f.alias, encryptionContext: CONTEXT, segmentSize: STREAM_SEGMENT })));
    const parallel = await readAll(streamOf(expected, 7_000).pipeThrough(lib.core.encryptStream({ provider, keyId: f.alias, encryptionContext: CONTEXT, segmentSize: 4096, parallel: 4 })));
    sameBytes(await readAll(streamOf(parallel, 5_000).pipeThrough(lib.core.decryptStream({ provider, parallel: 3 }))), expected, 'parallel round trip');
    // A truncated stream errors, never a short read.
    await rejectsWith(readAll(streamOf(sealed.subarray(0, sealed.length - 1), 9_000).pipeThrough(lib.core.decryptStream({ provider }))), 'ERR_DECRYPTION_FAILED', 'truncated stream');
    return { framed: toBase64(sealed) };
  },

  'the Alibaba provider against the emulator, from this runtime': async (lib, f) => {
    const a = f.alibaba;
    if (a === undefined) fail('the test did not start the Alibaba emulator for this runtime');
    const provider = new lib.alibaba.AlibabaKmsProvider({
      endpoint: a.endpoint,
      credentials: { accessKeyId: a.accessKeyId, accessKeySecret: a.accessKeySecret },
      retryBaseDelayMs: 1,
      retryMaxDelayMs: 5,
      timeoutMs: 5000,
    });
    const text = await lib.core.encryptObject(PAGE_OBJECT, { provider, keyId: 'alias/app', encryptionContext: CONTEXT });
    same(await lib.core.decryptObject(text, { provider, encryptionContext: CONTEXT }), PAGE_OBJECT, 'round trip through the emulator');
    const wrong = new lib.alibaba.AlibabaKmsProvider({ endpoint: a.endpoint, credentials: { accessKeyId: a.accessKeyId, accessKeySecret: 'wrong' }, maxAttempts: 1, timeoutMs: 5000 });
    try {
      await lib.core.encryptObject(PAGE_OBJECT, { provider: wrong, keyId: 'alias/app' });
      fail('a wrong secret was accepted');
    } catch (e) {
      if (!(e instanceof lib.core.EnvelopeKitError)) throw e;
    }
    return { text };
  },
};
