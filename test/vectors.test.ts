/**
 * Test vectors (SPEC.md §10): every file in test/vectors/*.txt is run
 * 1. through the library (`decrypt` / `decryptText`, with both AES-GCM backends),
 * 2. through an independent decryptor written from SPEC.md alone (spec-crypto.ts: it
 *    uses `node:crypto` and imports nothing from src/), which must reach the same
 *    result and every intermediate value the file lists,
 * and the committed files must be exactly what the generator writes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nobleAesGcm } from '../src/core/aead/noble.js';
import type { AesGcm } from '../src/core/aead/types.js';
import { checkContext } from '../src/core/context.js';
import { checkDecryptOptions, decrypt, decryptChecked, decryptText } from '../src/core/envelope.js';
import { envelopeFromText } from '../src/core/format.js';
import { BLIND_INDEX_PURPOSE, openBlindIndex } from '../src/records/blind-index.js';
import { LocalKeyring } from '../src/providers/local/keyring.js';
import { nodeAesGcm } from '../src/core/aead/node.js';
import {
  MALFORMED,
  SpecError,
  type SpecKeyring,
  UNSUPPORTED,
  concat,
  encodeEntries,
  gcmOpen,
  providerContextBytes,
  specDecrypt,
  specFail,
  specKeySchedule,
  specParseHeader,
  specRecordBinding,
  utf8,
  xaesOpen,
} from './spec-crypto.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const VECTOR_DIR = path.join(ROOT, 'test', 'vectors');

// ---------------------------------------------------------------- vector files (SPEC.md §10.1)

interface VectorFile {
  readonly file: string;
  readonly fields: ReadonlyMap<string, string>;
}

function parseVectorFile(file: string, text: string): VectorFile {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const i = line.indexOf(': ');
    if (i <= 0) throw new Error(`${file}: not a "key: value" line: ${line}`);
    const key = line.slice(0, i);
    if (fields.has(key)) throw new Error(`${file}: duplicate field ${key}`);
    fields.set(key, line.slice(i + 2));
  }
  return { file, fields };
}

function field(v: VectorFile, key: string): string {
  const value = v.fields.get(key);
  if (value === undefined) throw new Error(`${v.file}: missing field "${key}"`);
  return value;
}

function bytes(v: VectorFile, key: string): Uint8Array {
  const h = field(v, key);
  if (!/^(?:[0-9a-f]{2})*$/.test(h)) throw new Error(`${v.file}: "${key}" is not lower-case hex`);
  return new Uint8Array(Buffer.from(h, 'hex'));
}

function optionalJson<T = Record<string, string>>(v: VectorFile, key: string): T | undefined {
  const s = v.fields.get(key);
  return s === undefined ? undefined : (JSON.parse(s) as T);
}

/** The placeholder of §10.1 for a header context that is not a valid map. */
const INVALID_CONTEXT = '(not a valid context; see the header)';

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

const vectorFiles = readdirSync(VECTOR_DIR)
  .filter((f) => f.endsWith('.txt'))
  .sort();
const vectors = vectorFiles.map((f) => parseVectorFile(f, readFileSync(path.join(VECTOR_DIR, f), 'utf8')));

const CODES = new Set([
  'ERR_MALFORMED_ENVELOPE',
  'ERR_UNSUPPORTED_VERSION',
  'ERR_NO_MATCHING_PROVIDER',
  'ERR_KEY_NOT_FOUND',
  'ERR_KEY_DISABLED',
  'ERR_DECRYPTION_FAILED',
  'ERR_PROVIDER',
]);

describe('vector files', () => {
  it('exist, and each is well-formed', () => {
    expect(vectors.length).toBeGreaterThan(0);
    for (const v of vectors) {
      expect(field(v, 'name') + '.txt').toBe(v.file);
      const e = field(v, 'expect');
      expect(e === 'success' || CODES.has(e), `${v.file}: expect ${e}`).toBe(true);
      expect(['binary', 'text']).toContain(field(v, 'form'));
      for (const k of ['master key', 'data key', 'message id', 'blob nonce', 'blob aad', 'blob', 'binding', 'keys input', 'keys', 'content key', 'commitment', 'header', 'authenticated header', 'plaintext', 'body', 'envelope']) {
        bytes(v, k);
      }
      for (const k of ['written record id', 'written record version', 'read record id', 'read record version']) {
        const x: unknown = JSON.parse(field(v, k));
        expect(x === null || typeof x === 'string' || Number.isSafeInteger(x), `${v.file}: ${k}`).toBe(true);
      }
      expect(field(v, 'description').length).toBeGreaterThan(0);
      field(v, 'provider context');
    }
    expect(vectors.some((v) => field(v, 'expect') === 'success')).toBe(true);
    expect(vectors.some((v) => field(v, 'expect') !== 'success')).toBe(true);
  });

  it('are exactly what the generator writes (re-run into a temporary folder)', () => {
    const out = mkdtempSync(path.join(tmpdir(), 'envelope-kit-vectors-'));
    try {
      execFileSync(process.execPath, ['--import', 'tsx', path.join(VECTOR_DIR, 'generate.ts'), out], { cwd: ROOT, stdio: 'pipe' });
      const regenerated = readdirSync(out).filter((f) => f.endsWith('.txt')).sort();
      expect(regenerated).toEqual(vectorFiles);
      for (const f of regenerated) {
        expect(readFileSync(path.join(out, f), 'utf8'), f).toBe(readFileSync(path.join(VECTOR_DIR, f), 'utf8'));
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('give the placeholder as "encryption context" exactly when the header context is not a valid map (§10.1)', () => {
    for (const v of vectors) {
      const entries = lenientContext(bytes(v, 'header'));
      const keys = entries.map(([k]) => k);
      const valid =
        entries.length <= 64 &&
        entries.every(([k, val]) => k.length >= 1 && k.length <= 256 && val.length <= 2048 && utf8(k) !== undefined && utf8(val) !== undefined) &&
        new Set(keys.map(hex)).size === keys.length;
      const given = field(v, 'encryption context');
      if (!valid) {
        expect(given, v.file).toBe(INVALID_CONTEXT);
        expect(field(v, 'provider context'), v.file).toBe(INVALID_CONTEXT);
        continue;
      }
      expect(given, v.file).not.toBe(INVALID_CONTEXT);
      expect(JSON.parse(given), v.file).toEqual(Object.fromEntries(entries.map(([k, val]) => [utf8(k), utf8(val)])));
      // §3.2.1: the provider context is the header context and the purpose entry, in canonical order.
      const expected = providerContextBytes(entries);
      const pctx = JSON.parse(field(v, 'provider context')) as Record<string, string>;
      const enc = new TextEncoder();
      const listed = Object.entries(pctx).map(([k, val]) => [enc.encode(k), enc.encode(val)] as const);
      expect(hex(encodeEntries(listed)), v.file).toBe(hex(expected));
    }
  });

  it('SPEC.md quotes its inline vectors verbatim', () => {
    const spec = readFileSync(path.join(ROOT, 'SPEC.md'), 'utf8');
    const quoted = [...spec.matchAll(/<!-- vector: ([a-z0-9-]+) -->\n```text\n([\s\S]*?)```/g)];
    expect(quoted.length).toBeGreaterThan(0);
    for (const [, name, text] of quoted) {
      expect(text, name).toBe(readFileSync(path.join(VECTOR_DIR, `${name}.txt`), 'utf8'));
    }
  });
});

// ---------------------------------------------------------------- the library

function keyringState(v: VectorFile) {
  return {
    keys: [
      {
        keyId: field(v, 'key id'),
        state: field(v, 'key state') as 'Enabled' | 'Disabled' | 'PendingDeletion',
        description: '',
        createdAt: '2025-01-01T00:00:00.000Z',
        versions: [{ version: Number(field(v, 'key version')), createdAt: '2025-01-01T00:00:00.000Z', material: bytes(v, 'master key') }],
      },
    ],
    aliases: {},
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { code?: string }).code ?? `foreign error: ${String(e)}`;
  }
  return 'success';
}

const BACKENDS: [string, AesGcm][] = [
  ['noble', nobleAesGcm],
  ['node', nodeAesGcm],
];

/** The record id or version the reader gives (§9.10): `null` in the file is none. */
function readBinding(v: VectorFile, key: 'read record id' | 'read record version'): string | number | undefined {
  return (JSON.parse(field(v, key)) as string | number | null) ?? undefined;
}

describe.each(BACKENDS)('library decrypt (%s AES-GCM)', (_name, aead) => {
  it.each(vectors.map((v) => [v.file, v] as const))('%s', async (_file, v) => {
    const provider = LocalKeyring.fromState(keyringState(v), { aead });
    const keyIds = optionalJson<string[]>(v, 'allowed key ids');
    const options = {
      provider,
      encryptionContext: optionalJson(v, 'required context'),
      aead,
      keyIds,
      recordId: readBinding(v, 'read record id'),
      recordVersion: readBinding(v, 'read record version'),
    };
    const text = field(v, 'envelope text');
    const expected = field(v, 'expect');
    const indexName = v.fields.get('blind index name');
    if (indexName !== undefined) {
      // §13: opened as a blind-index key, through openBlindIndex and through the path it takes.
      const opened = openBlindIndex(text, { provider, name: indexName, aead, keyIds });
      const exact = checkContext({ [BLIND_INDEX_PURPOSE]: indexName });
      if (expected === 'success') {
        (await opened).destroy();
        const r = await decryptChecked(envelopeFromText(text), checkDecryptOptions({ provider, aead }), exact);
        expect(hex(r.plaintext)).toBe(field(v, 'plaintext'));
        expect(r.keyId).toBe(field(v, 'key id'));
      } else {
        expect(await codeOf(opened)).toBe(expected);
      }
      return;
    }
    const runs = field(v, 'form') === 'text' ? [() => decryptText(text, options)] : [() => decrypt(bytes(v, 'envelope'), options), () => decryptText(text, options)];
    for (const run of runs) {
      if (expected === 'success') {
        const r = await run();
        expect(hex(r.plaintext)).toBe(field(v, 'plaintext'));
        expect(r.keyId).toBe(field(v, 'key id'));
        expect({ ...r.encryptionContext }).toEqual(optionalJson(v, 'encryption context'));
      } else {
        expect(await codeOf(run())).toBe(expected);
      }
    }
  });
});

// ---------------------------------------------------------------- independent decryptor
//
// The decryptor written from SPEC.md alone is in spec-crypto.ts (no import from src/, only
// node:crypto); these helpers read the vector files for it.

/** §1.3 strict unpadded base64url. */
function base64urlStrict(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return undefined;
  const b = Buffer.from(s, 'base64url');
  return b.toString('base64url') === s ? new Uint8Array(b) : undefined; // zero unused bits
}

/** The header's context entries read without any check (for the §10.1 placeholder rule). */
function lenientContext(header: Uint8Array): [Uint8Array, Uint8Array][] {
  let pos = 21;
  const len = (): number => {
    const b0 = header[pos++]!;
    return b0 < 0x80 ? b0 : ((b0 & 0x7f) << 8) | header[pos++]!;
  };
  const count = header[pos++]!;
  const out: [Uint8Array, Uint8Array][] = [];
  for (let i = 0; i < count; i++) {
    const kl = len();
    const k = header.subarray(pos, (pos += kl));
    const vl = len();
    out.push([k, header.subarray(pos, (pos += vl))]);
  }
  return out;
}

/** §4. */
function fromText(text: string): Uint8Array {
  if (text.startsWith('ek1.')) {
    return base64urlStrict(text.slice(4)) ?? specFail(MALFORMED, 'text form is not strict base64url');
  }
  const m = /^ek([1-9][0-9]{0,2})\./.exec(text); // a version 1..255 in canonical decimal
  if (m && Number(m[1]) <= 255) specFail(UNSUPPORTED, 'text form of another version');
  return specFail(MALFORMED, 'bad text prefix');
}

/** §9.10: the binding of the record id and version in the file under `prefix` ("written" or "read"). */
function bindingOf(v: VectorFile, prefix: 'written' | 'read'): Uint8Array {
  const x = (k: string) => JSON.parse(field(v, `${prefix} record ${k}`)) as string | number | null;
  return specRecordBinding(x('id'), x('version'));
}

function specKeyring(v: VectorFile): SpecKeyring {
  return {
    keyId: field(v, 'key id'),
    state: field(v, 'key state'),
    versions: new Map([[Number(field(v, 'key version')), bytes(v, 'master key')]]),
  };
}

function specRun(v: VectorFile, form: 'binary' | 'text') {
  const env = form === 'text' ? fromText(field(v, 'envelope text')) : bytes(v, 'envelope');
  return specDecrypt(env, {
    keyring: specKeyring(v),
    required: optionalJson(v, 'required context'),
    allowed: optionalJson<string[]>(v, 'allowed key ids'),
    indexName: v.fields.get('blind index name'),
    binding: bindingOf(v, 'read'),
  });
}

describe('independent decryptor written from SPEC.md', () => {
  it.each(vectors.map((v) => [v.file, v] as const))('%s', (_file, v) => {
    const expected = field(v, 'expect');
    const forms: ('binary' | 'text')[] = field(v, 'form') === 'text' ? ['text'] : ['binary', 'text'];
    for (const form of forms) {
      if (expected !== 'success') {
        let code = 'success';
        let why = '';
        try {
          specRun(v, form);
        } catch (e) {
          code = e instanceof SpecError ? e.code : `foreign error: ${String(e)}`;
          why = e instanceof Error ? e.message : '';
        }
        expect(code, form).toBe(expected);
        // A reader given another record binding than the writer's fails at the commitment check (§3.5 step 5).
        if (hex(bindingOf(v, 'read')) !== hex(bindingOf(v, 'written'))) expect(why, form).toBe('commitment');
        continue;
      }
      const r = specRun(v, form);
      expect(hex(r.plaintext)).toBe(field(v, 'plaintext'));
      expect(r.keyId).toBe(field(v, 'key id'));
      expect(hex(r.dataKey)).toBe(field(v, 'data key'));
      expect(hex(r.blobNonce)).toBe(field(v, 'blob nonce'));
      expect(hex(r.blobAad)).toBe(field(v, 'blob aad'));
      expect(hex(r.binding)).toBe(field(v, 'binding'));
      expect(hex(r.keysInput)).toBe(field(v, 'keys input'));
      expect(hex(r.keys)).toBe(field(v, 'keys'));
      expect(hex(r.contentKey)).toBe(field(v, 'content key'));
      expect(hex(r.commitment)).toBe(field(v, 'commitment'));
      expect(hex(r.header)).toBe(field(v, 'header'));
      expect(hex(r.body)).toBe(field(v, 'body'));
      expect(Object.fromEntries(r.context)).toEqual(optionalJson(v, 'encryption context'));
      // A success vector is read with the binding it was written with.
      expect(hex(bindingOf(v, 'read'))).toBe(hex(bindingOf(v, 'written')));
      // The local blob of the vector is the one listed in the header.
      expect(specParseHeader(bytes(v, 'envelope')).edks.some((e) => hex(e.blob) === field(v, 'blob'))).toBe(true);
    }

    // Every vector's listed values are consistent with each other (success and failure alike):
    // the key schedule of §3.3 from the data key, the message id and the writer's binding (§9.10).
    const ks = specKeySchedule(0x00, bytes(v, 'data key'), bytes(v, 'message id'), bindingOf(v, 'written'));
    expect(hex(ks.binding)).toBe(field(v, 'binding'));
    expect(hex(ks.keysInput)).toBe(field(v, 'keys input'));
    expect(hex(ks.keys)).toBe(field(v, 'keys'));
    expect(hex(ks.contentKey)).toBe(field(v, 'content key'));
    expect(hex(ks.commitment)).toBe(field(v, 'commitment'));
    const blob = bytes(v, 'blob');
    const master = bytes(v, 'master key');
    const blobAad = bytes(v, 'blob aad');
    // blob = prefix || nonce (24) || ciphertext (data key length) || tag (16), §6
    const prefixLength = blob.length - 24 - bytes(v, 'data key').length - 16;
    expect(hex(blob.subarray(0, prefixLength))).toBe(hex(blobAad.subarray(0, prefixLength)));
    expect(hex(blob.subarray(prefixLength, prefixLength + 24))).toBe(field(v, 'blob nonce'));
    expect(hex(xaesOpen(master, bytes(v, 'blob nonce'), blobAad, blob.subarray(prefixLength + 24)) ?? new Uint8Array())).toBe(field(v, 'data key'));
    // "Otherwise valid" (§10.1): when the envelope is exactly header || body, the body opens
    // under the content key with the header as AAD, so only the rule under test can reject it.
    const header = bytes(v, 'header');
    const body = bytes(v, 'body');
    const aad = bytes(v, 'authenticated header');
    if (hex(concat(header, body)) === field(v, 'envelope')) {
      // §3.1: the authenticated header is the header without the EDK count and the EDKs.
      // (A header malformed on purpose does not parse; its listed authenticated header is still what the body was sealed with.)
      let parsed: ReturnType<typeof specParseHeader> | undefined;
      try {
        parsed = specParseHeader(concat(header, body), 255);
      } catch {
        parsed = undefined;
      }
      if (parsed) expect(hex(parsed.aad)).toBe(hex(aad));
      const pt = gcmOpen(ks.contentKey, new Uint8Array(12), aad, body);
      expect(pt && hex(pt)).toBe(field(v, 'plaintext'));
    }
    // §9.13: a re-wrapped envelope is the new header before the very body sealed under the old one.
    if (v.fields.has('envelope before rewrap')) {
      const before = specParseHeader(bytes(v, 'envelope before rewrap'), 255);
      const after = specParseHeader(bytes(v, 'envelope'), 255);
      expect(hex(after.body)).toBe(hex(before.body));
      expect(hex(after.aad)).toBe(hex(before.aad));
      expect(hex(after.header)).not.toBe(hex(before.header));
    }
  });
});
