/**
 * The records vectors (SPEC.md §11–§13) in test/vectors/records/: value
 * encodings byte for byte, field envelopes through `decryptFields` and through
 * an independent reader written from SPEC.md with `node:crypto` only (every
 * rule of §12.3 and §12.4, so that a reader skipping one fails a vector), blind
 * indexes through the library and by hand.
 */
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bindingValue, expandOne, gcmOpen, jsonString } from './spec-crypto.js';
import { fieldBinding } from '../src/records/fields.js';
import { LocalKeyring, decodeValue, decryptFields, encodeValue, openBlindIndex } from '../src/index.js';
import { runs, sameValue } from './helpers.js';
import { fromTagged, fromTaggedJson, toTagged } from './vectors/records/tagged-json.js';
import { VALUE_FAILURE_VECTORS, VALUE_VECTORS } from './vectors/records/values.js';
import { storedIndexKey } from './core-helpers.js';

const dir = path.join(import.meta.dirname, 'vectors', 'records');
const run = promisify(execFile);

async function load(): Promise<Map<string, Map<string, string>>> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.txt')).sort();
  const out = new Map<string, Map<string, string>>();
  for (const f of files) {
    const text = await readFile(path.join(dir, f), 'utf8');
    const fields = new Map<string, string>();
    for (const line of text.split('\n').filter(Boolean)) {
      const i = line.indexOf(': ');
      fields.set(line.slice(0, i), line.slice(i + 2));
    }
    out.set(f.replace(/\.txt$/, ''), fields);
  }
  return out;
}
const vectors = await load();
const get = (v: Map<string, string>, k: string): string => {
  const x = v.get(k);
  if (x === undefined) throw new Error(`vector has no "${k}"`);
  return x;
};
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');
const hmac = (key: Uint8Array, msg: Uint8Array) => new Uint8Array(createHmac('sha256', key).update(msg).digest());

function keyringFor(v: Map<string, string>): LocalKeyring {
  return LocalKeyring.fromState({
    keys: [
      {
        keyId: get(v, 'key id'),
        state: 'Enabled',
        description: '',
        createdAt: '2026-01-01T00:00:00.000Z',
        versions: [{ version: Number(get(v, 'key version')), createdAt: '2026-01-01T00:00:00.000Z', material: bytes(get(v, 'master key')) }],
      },
    ],
    aliases: {},
  });
}

type Steps = (string | number)[];

// ---------------------------------------------------------------------------
// An independent reader of record fields (SPEC.md §12), from the document alone, with node:crypto.

/** §12.2's labels: once per header (field root, commitment), once per field (field key, field commitment). */
const RECORD_KEYS_LABEL = 'envelope-kit/v1/suite-01/layout-01/keys';
const FIELD_LABEL = 'envelope-kit/v1/suite-01/layout-01/field';
const MAL = 'ERR_MALFORMED_ENVELOPE';
const UNS = 'ERR_UNSUPPORTED_VERSION';
const DF = 'ERR_DECRYPTION_FAILED';

class SpecError extends Error {
  constructor(readonly code: string, why: string) {
    super(`${code}: ${why}`);
  }
}
const fail = (code: string, why: string): never => {
  throw new SpecError(code, why);
};

/** §1.3 strict unpadded base64url. */
function base64urlStrict(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return undefined;
  const b = Buffer.from(s, 'base64url');
  return b.toString('base64url') === s ? new Uint8Array(b) : undefined;
}

/** §3.5 step 1 for layout 0x01: the header and where the body starts; `headerOnly` for a record header (§12.4). */
function parseFieldHeader(
  env: Uint8Array,
  headerOnly: boolean,
  anyLayout = false,
): { header: Uint8Array; aad: Uint8Array; messageId: Uint8Array; blobs: Uint8Array[]; commitment: Uint8Array; body: Uint8Array } {
  let pos = 0;
  const take = (n: number) => {
    if (pos + n > env.length) fail(MAL, 'truncated');
    pos += n;
    return env.subarray(pos - n, pos);
  };
  const len = (min: number, max: number) => {
    const b0 = take(1)[0]!;
    let n = b0;
    if (b0 >= 0x80) {
      n = ((b0 & 0x7f) << 8) | take(1)[0]!;
      if (n < 128) fail(MAL, 'non-canonical len');
    }
    if (n < min || n > max) fail(MAL, 'length out of range');
    return take(n);
  };
  if (env.length < 2 || env[0] !== 0x45 || env[1] !== 0x4b) fail(MAL, 'magic');
  pos = 2;
  if (take(1)[0] !== 1) fail(UNS, 'version');
  if (take(1)[0] !== 1) fail(UNS, 'suite');
  const layout = take(1)[0]!;
  if (!anyLayout && layout === 0x00) fail(MAL, 'a whole message where a field belongs');
  if (!anyLayout && layout !== 0x01) fail(UNS, 'layout');
  const messageId = take(16);
  const count = take(1)[0]!;
  if (count > 64) fail(MAL, 'context count');
  let prev: Buffer | undefined;
  for (let i = 0; i < count; i++) {
    const k = Buffer.from(len(1, 256));
    const v = len(0, 2048);
    if (prev && Buffer.compare(prev, k) >= 0) fail(MAL, 'context order');
    prev = k;
    for (const x of [k, v]) if (!Buffer.from(new TextDecoder().decode(x)).equals(Buffer.from(x))) fail(MAL, 'context UTF-8');
  }
  const edkStart = pos;
  const edks = take(1)[0]!;
  if (edks === 0 || edks > 8) fail(MAL, 'EDK count');
  const blobs: Uint8Array[] = [];
  for (let i = 0; i < edks; i++) {
    if (!/^[a-z0-9._-]{1,64}$/.test(new TextDecoder().decode(len(1, 64)))) fail(MAL, 'provider id');
    len(1, 2048);
    blobs.push(len(1, 4096));
  }
  const edkEnd = pos;
  const commitment = take(32);
  const header = env.subarray(0, pos);
  // §3.1: the authenticated header, without the EDK count and the EDKs.
  const aad = new Uint8Array([...env.subarray(0, edkStart), ...env.subarray(edkEnd, pos)]);
  const body = env.subarray(pos);
  if (headerOnly && body.length !== 0) fail(MAL, 'bytes after the record header');
  if (!headerOnly && body.length < 48) fail(MAL, 'body shorter than 48 bytes');
  return { header, aad, messageId, blobs, commitment, body };
}

/** §12.1. */
function specBinding(path: Steps, id: string | number | null, version: string | number | null): Uint8Array {
  const p = '[' + path.map((s) => (typeof s === 'number' ? String(s) : jsonString(s))).join(',') + ']';
  return new TextEncoder().encode(`[${p},${bindingValue(id)},${bindingValue(version)}]`);
}

/** §12.2: field root and header commitment, from the data key and the message id. */
const recordKeys = (dataKey: Uint8Array, messageId: Uint8Array) => {
  const { keys, first, second } = expandOne(dataKey, RECORD_KEYS_LABEL, messageId);
  return { keys, fieldRoot: first, commitment: second };
};
/** §12.2: field key and field commitment, from the field root and the binding. */
const fieldKeys = (fieldRoot: Uint8Array, binding: Uint8Array) => {
  const { keys, first, second } = expandOne(fieldRoot, FIELD_LABEL, binding);
  return { keys, fieldKey: first, fieldCommitment: second };
};

/** The fields' AES-256-GCM: a zero nonce (SPEC.md §12.2). */
const fieldOpen = (key: Uint8Array, aad: Uint8Array, sealed: Uint8Array) => gcmOpen(key, new Uint8Array(12), aad, sealed);

interface FieldRead {
  record: Record<string, unknown>;
  fields: Steps[];
  headerField: string | null;
  recordId: string | number | null;
  recordVersion: string | number | null;
  allowPlaintext: boolean;
  /** The data key a provider would return for the vector's blob (§6 is checked by the envelope vectors). */
  dataKey: Uint8Array;
  blob: Uint8Array;
}

/** §12.3 and §12.4, step by step. Returns the encoded plaintext of each opened field and the plaintext fields reported. */
function specReadFields(r: FieldRead): { opened: { path: Steps; encoding: Uint8Array }[]; reported: Steps[] } {
  const at = (path: Steps) => {
    let n: unknown = r.record;
    for (const s of path) {
      if (n === null || typeof n !== 'object' || !Object.prototype.hasOwnProperty.call(n, s)) return { present: false, v: undefined };
      n = (n as Record<string | number, unknown>)[s];
    }
    return { present: true, v: n };
  };
  const compactForm = r.headerField !== null;
  type Parsed = { path: Steps; env?: ReturnType<typeof parseFieldHeader>; body?: Uint8Array };
  const parsed: Parsed[] = [];
  const reported: Steps[] = [];
  // Step 1: the form of each field.
  for (const path of r.fields) {
    const { present, v } = at(path);
    if (!present) continue;
    if (typeof v !== 'string' || !/^ek[fh]?[0-9]+\./i.test(v)) {
      if (!r.allowPlaintext) fail('ERR_UNENCRYPTED_FIELD', 'plaintext field');
      reported.push(path);
      continue;
    }
    if (v.startsWith('ekf1.')) {
      if (!compactForm) fail(MAL, 'a compact field in a record not read in compact form');
      const body = base64urlStrict(v.slice(5));
      if (!body || body.length < 48) fail(MAL, 'compact field');
      parsed.push({ path, body });
    } else if (/^ek[0-9]/i.test(v)) {
      // §4
      if (!v.startsWith('ek1.')) fail(/^ek[1-9][0-9]{0,2}\./.test(v) ? UNS : MAL, 'text form of another version or spelling');
      const bytes = base64urlStrict(v.slice(4)) ?? fail(MAL, 'base64url');
      if (compactForm) fail(MAL, 'mixed forms');
      parsed.push({ path, env: parseFieldHeader(bytes, false) });
    } else if (v.startsWith('ekh1.')) {
      fail(MAL, 'a record header where a field belongs');
    } else {
      fail(/^ek[fh][1-9][0-9]{0,2}\./.test(v) ? UNS : MAL, 'compact field or header of another version or spelling');
    }
  }
  // Step 2: the record header.
  if (parsed.some((p) => p.body)) {
    const { present, v } = at([r.headerField!]);
    if (!present || typeof v !== 'string') fail(MAL, 'record header missing');
    const h = v as string;
    if (!h.startsWith('ekh1.')) fail(/^ekh[1-9][0-9]{0,2}\./.test(h) ? UNS : MAL, 'record header prefix');
    const env = parseFieldHeader(base64urlStrict(h.slice(5)) ?? fail(MAL, 'record header base64url'), true);
    for (const p of parsed) if (p.body) p.env = { ...env, body: p.body };
  }
  // Steps 4 to 6 (no required context in these vectors).
  const opened: { path: Steps; encoding: Uint8Array }[] = [];
  for (const p of parsed) {
    const env = p.env!;
    expect(Buffer.from(env.blobs[0]!).equals(Buffer.from(r.blob))).toBe(true);
    const rk = recordKeys(r.dataKey, env.messageId);
    if (!Buffer.from(rk.commitment).equals(Buffer.from(env.commitment))) fail(DF, 'header commitment');
    const fk = fieldKeys(rk.fieldRoot, specBinding(p.path, r.recordId, r.recordVersion));
    if (!Buffer.from(fk.fieldCommitment).equals(Buffer.from(env.body.subarray(0, 32)))) fail(DF, 'field commitment');
    const encoding = fieldOpen(fk.fieldKey, env.aad, env.body.subarray(32)) ?? fail(DF, 'tag');
    opened.push({ path: p.path, encoding });
  }
  return { opened, reported };
}

/** The selector that names `path` (`cards[].number`). */
function selectorOf(path: Steps): string {
  let s = '';
  for (const step of path) s += typeof step === 'number' ? '[]' : (s ? '.' : '') + step;
  return s;
}

function fieldRead(v: Map<string, string>): FieldRead {
  return {
    record: fromTaggedJson(get(v, 'record')) as Record<string, unknown>,
    fields: JSON.parse(get(v, 'fields')) as Steps[],
    headerField: JSON.parse(get(v, 'header field')) as string | null,
    recordId: JSON.parse(get(v, 'read record id')) as string | number | null,
    recordVersion: JSON.parse(get(v, 'read record version')) as string | number | null,
    allowPlaintext: get(v, 'allow plaintext') === 'true',
    dataKey: bytes(get(v, 'data key')),
    blob: bytes(get(v, 'blob')),
  };
}

describe('records vectors', () => {
  it('are all there, one file per scenario', () => {
    expect(vectors.size).toBeGreaterThanOrEqual(11);
    for (const v of [...VALUE_VECTORS, ...VALUE_FAILURE_VECTORS]) expect(vectors.has(v.name)).toBe(true);
  });

  for (const [name, v] of vectors) {
    const expected = get(v, 'expect');
    if (expected === 'value') {
      it(`${name}: the value (tagged JSON) encodes byte for byte, and the encoding decodes back to it (§11)`, () => {
        const json = get(v, 'value');
        const value = fromTagged(JSON.parse(json));
        expect(Buffer.from(encodeValue(value)).toString('hex')).toBe(get(v, 'encoding'));
        const back = decodeValue(bytes(get(v, 'encoding')));
        expect(sameValue(back, value)).toBe(true);
        expect(JSON.stringify(toTagged(back))).toBe(JSON.stringify(JSON.parse(json)));
      });
    } else if (name.startsWith('value-')) {
      it(`${name}: the encoding is refused with ${expected} (§11.3 rule ${get(v, 'rule')})`, () => {
        expect(() => decodeValue(bytes(get(v, 'encoding')))).toThrow(expect.objectContaining({ code: expected }));
      });
    } else if (expected === 'index') {
      it(`${name}: the library and a hand computation give the index (§13)`, async () => {
        const key = bytes(get(v, 'index key'));
        const indexName = get(v, 'index name');
        const bits = Number(get(v, 'bits'));
        const normalized = JSON.parse(get(v, 'normalized')) as string;
        const msg = bytes(get(v, 'hmac input'));
        const label = new TextEncoder().encode(`envelope-kit/v1/blind-index\0${indexName}\0`);
        expect(Buffer.from(msg.subarray(0, label.length)).equals(Buffer.from(label))).toBe(true);
        expect(Buffer.from(msg.subarray(label.length)).toString('hex')).toBe(Buffer.from(encodeValue(normalized)).toString('hex'));
        const mac = hmac(key, msg);
        expect(Buffer.from(mac).toString('hex')).toBe(get(v, 'hmac'));
        expect(Buffer.from(mac.subarray(0, bits / 8)).toString('base64url')).toBe(get(v, 'index'));
        // Through the library: a stored index key holding exactly this key.
        const kr = new LocalKeyring();
        const { keyId } = kr.createKey();
        const stored = await storedIndexKey(kr, keyId, indexName, key);
        const index = await openBlindIndex(stored, { provider: kr, name: indexName, bits, normalize: (s) => s.trim().toLowerCase() });
        expect(index.compute(JSON.parse(get(v, 'input')))).toBe(get(v, 'index'));
      });
    } else {
      it(`${name}: decryptFields gives ${expected} (§12)`, async () => {
        const r = fieldRead(v);
        const reported: string[] = [];
        const result = decryptFields(r.record, {
          provider: keyringFor(v),
          fields: [...new Set(r.fields.map(selectorOf))],
          recordId: r.recordId ?? undefined,
          recordVersion: r.recordVersion ?? undefined,
          headerField: r.headerField ?? undefined,
          ...(r.allowPlaintext ? { allowPlaintextFields: true, onPlaintextField: (p: string) => reported.push(p) } : {}),
        });
        if (expected === 'success') {
          expect(sameValue(await result, fromTaggedJson(get(v, 'decrypted')))).toBe(true);
          expect(reported.length).toBe(v.has('plaintext fields') ? (JSON.parse(get(v, 'plaintext fields')) as unknown[]).length : 0);
        } else {
          await expect(result).rejects.toMatchObject({ code: expected });
        }
      });

      it(`${name}: every intermediate value follows from the inputs (§12.1, §12.2; node:crypto only)`, () => {
        const dataKey = bytes(get(v, 'data key'));
        const messageId = bytes(get(v, 'message id'));
        const header = bytes(get(v, 'header'));
        const rk = recordKeys(dataKey, messageId);
        expect(hexOf(rk.keys)).toBe(get(v, 'keys'));
        expect(hexOf(rk.fieldRoot)).toBe(get(v, 'field root'));
        expect(hexOf(rk.commitment)).toBe(get(v, 'commitment'));
        expect(hexOf(header.subarray(5, 21))).toBe(get(v, 'message id'));
        expect(hexOf(header.subarray(header.length - 32))).toBe(get(v, 'commitment'));
        expect(hexOf(parseFieldHeader(header, true, true).aad)).toBe(get(v, 'authenticated header'));
        const binding = specBinding(
          JSON.parse(get(v, 'written at')) as Steps,
          JSON.parse(get(v, 'written record id')) as string | number | null,
          JSON.parse(get(v, 'written record version')) as string | number | null,
        );
        expect(new TextDecoder().decode(binding)).toBe(get(v, 'binding'));
        const { keys, fieldKey, fieldCommitment } = fieldKeys(rk.fieldRoot, binding);
        expect(hexOf(keys)).toBe(get(v, 'field keys'));
        expect(hexOf(fieldKey)).toBe(get(v, 'field key'));
        expect(hexOf(fieldCommitment)).toBe(get(v, 'field commitment'));
        expect(hexOf(encodeValue(fromTaggedJson(get(v, 'value'))))).toBe(get(v, 'encoded value'));
        expect(hexOf(fieldOpen(fieldKey, parseFieldHeader(header, true, true).aad, bytes(get(v, 'ciphertext')))!)).toBe(get(v, 'encoded value'));
        expect(get(v, 'body')).toBe(get(v, 'field commitment') + get(v, 'ciphertext'));
        expect(get(v, 'field')).toBe('ek1.' + Buffer.concat([header, bytes(get(v, 'body'))]).toString('base64url'));
        expect(get(v, 'compact field')).toBe('ekf1.' + Buffer.from(bytes(get(v, 'body'))).toString('base64url'));
        expect(get(v, 'record header')).toBe('ekh1.' + Buffer.from(header).toString('base64url'));
      });

      it(`${name}: an independent reader written from SPEC.md gives ${expected} (node:crypto only)`, () => {
        const r = fieldRead(v);
        let out: ReturnType<typeof specReadFields> | undefined;
        let code = 'success';
        try {
          out = specReadFields(r);
        } catch (e) {
          if (!(e instanceof SpecError)) throw e;
          code = e.code;
        }
        expect(code).toBe(expected);
        if (!out) return;
        // The opened encodings give the decrypted record; the described field is among them.
        const decrypted = structuredClone(r.record);
        for (const o of out.opened) {
          let node = decrypted as Record<string | number, unknown>;
          for (const s of o.path.slice(0, -1)) node = node[s] as Record<string | number, unknown>;
          node[o.path[o.path.length - 1]!] = decodeValue(o.encoding);
        }
        expect(sameValue(decrypted, fromTaggedJson(get(v, 'decrypted')))).toBe(true);
        expect(out.reported).toEqual(v.has('plaintext fields') ? JSON.parse(get(v, 'plaintext fields')) : []);
        const written = JSON.stringify(JSON.parse(get(v, 'written at')));
        const described = out.opened.find((o) => JSON.stringify(o.path) === written);
        if (described) expect(hexOf(described.encoding)).toBe(get(v, 'encoded value'));
      });
    }
  }

  it('are listed in SPEC.md §10.1 with the outcome each expects', async () => {
    const spec = await readFile(path.join(import.meta.dirname, '..', 'SPEC.md'), 'utf8');
    const rows = [...spec.matchAll(/^\| `(field-[a-z0-9-]+)` \| `?([A-Za-z_]+)`? \|/gm)].map((m) => [m[1], m[2]]);
    const files = [...vectors].filter(([n]) => n.startsWith('field-')).map(([n, v]) => [n, get(v, 'expect')]);
    expect(rows.sort()).toEqual(files.sort());
  });

  it('SPEC.md §12.1 written out by hand gives the bytes of the library binding, for any path, id and version (property)', () => {
    // Any UTF-16 string, lone surrogates and control characters included.
    const text = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 });
    const id = fc.option(fc.oneof(text, fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), fc.constant(-0)), { nil: null });
    fc.assert(
      fc.property(fc.array(fc.oneof(text, fc.nat()), { minLength: 1, maxLength: 5 }), id, id, (steps, recordId, recordVersion) => {
        const lib = fieldBinding(steps, recordId ?? undefined, recordVersion ?? undefined);
        expect(hexOf(specBinding(steps, recordId, recordVersion))).toBe(hexOf(lib));
      }),
      { numRuns: runs(500) },
    );
  });

  it('are exactly what the generator writes', async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'ek-records-vectors-'));
    try {
      const tsx = path.join(import.meta.dirname, '..', 'node_modules', 'tsx', 'dist', 'cli.mjs');
      await run(process.execPath, [tsx, path.join(dir, 'generate.ts'), out]);
      const made = (await readdir(out)).sort();
      expect(made).toEqual([...vectors.keys()].map((n) => `${n}.txt`).sort());
      for (const f of made) expect(await readFile(path.join(out, f), 'utf8')).toBe(await readFile(path.join(dir, f), 'utf8'));
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
