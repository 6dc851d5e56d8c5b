/**
 * The records vectors (SPEC.md §11–§13) in test/vectors/records/: value
 * encodings byte for byte, field envelopes through `decryptFields` and through
 * an independent check written from SPEC.md with `node:crypto` only, blind
 * indexes through the library and by hand.
 */
import { execFile } from 'node:child_process';
import { createDecipheriv, createHmac } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { LocalKeyring, decodeValue, decryptFields, encodeValue, openBlindIndex } from '../src/index.js';
import { storedIndexKey } from './core-helpers.js';
import { sameValue } from './helpers.js';
import { VALUE_VECTORS } from './vectors/records/values.js';

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

/** A record holding `value` at `steps` (arrays padded with empty objects), and the selector for it. */
function recordAt(steps: (string | number)[], value: unknown): { record: Record<string, unknown>; selector: string } {
  const root: Record<string, unknown> = {};
  let node: Record<string | number, unknown> = root;
  let selector = '';
  steps.forEach((s, i) => {
    const next = steps[i + 1];
    if (typeof s === 'number') selector += '[]';
    else selector += (selector ? '.' : '') + s;
    if (i === steps.length - 1) {
      node[s] = value;
      return;
    }
    const child: Record<string | number, unknown> =
      typeof next === 'number' ? (Array.from({ length: next + 1 }, () => ({})) as unknown as Record<number, unknown>) : {};
    node[s] = child;
    node = child;
  });
  return { record: root, selector };
}

describe('records vectors', () => {
  it('are all there, one file per scenario', () => {
    expect(vectors.size).toBeGreaterThanOrEqual(11);
    for (const v of VALUE_VECTORS) expect(vectors.has(v.name)).toBe(true);
  });

  for (const [name, v] of vectors) {
    const expected = get(v, 'expect');
    if (expected === 'value') {
      it(`${name}: encodes byte for byte and decodes back (§11)`, () => {
        const def = VALUE_VECTORS.find((x) => x.name === name)!;
        expect(Buffer.from(encodeValue(def.value())).toString('hex')).toBe(get(v, 'encoding'));
        expect(sameValue(decodeValue(bytes(get(v, 'encoding'))), def.value())).toBe(true);
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
        const at = JSON.parse(get(v, 'read at')) as (string | number)[];
        const { record, selector } = recordAt(at, get(v, 'field'));
        const recordId = JSON.parse(get(v, 'read record id')) as string | number;
        const headerField = v.get('header field');
        if (headerField !== undefined) record[headerField] = get(v, 'record header');
        const result = decryptFields(record, { provider: keyringFor(v), fields: [selector], recordId, headerField });
        if (expected === 'success') {
          const out = await result;
          let node: unknown = out;
          for (const s of at) node = (node as Record<string | number, unknown>)[s];
          expect(node).toEqual(JSON.parse(get(v, 'value')));
        } else {
          await expect(result).rejects.toMatchObject({ code: expected });
        }
      });

      it(`${name}: an independent reader derives the field key and opens the body (node:crypto only)`, () => {
        const dataKey = v.has('data key') ? bytes(get(v, 'data key')) : undefined;
        // A compact field (SPEC.md §12.4) is the same envelope with its header stored apart.
        const env = v.has('record header')
          ? Buffer.concat([Buffer.from(get(v, 'record header').slice('ekh1.'.length), 'base64url'), Buffer.from(get(v, 'field').slice('ekf1.'.length), 'base64url')])
          : Buffer.from(get(v, 'field').slice('ek1.'.length), 'base64url');
        const binding = new TextEncoder().encode(get(v, 'binding'));
        expect(get(v, 'binding')).toBe(JSON.stringify([JSON.parse(get(v, 'written at')), JSON.parse(get(v, 'written record id'))]));
        if (dataKey) {
          const prk = hmac(bytes(get(v, 'message id')), dataKey);
          expect(Buffer.from(prk).toString('hex')).toBe(get(v, 'prk'));
          const info = Buffer.concat([Buffer.from('envelope-kit/v1/field-key'), Buffer.of(0), binding, Buffer.of(1)]);
          expect(Buffer.from(hmac(prk, info)).toString('hex')).toBe(get(v, 'field key'));
          expect(Buffer.from(hmac(prk, Buffer.concat([Buffer.from('envelope-kit/v1/suite-01/key-commitment'), Buffer.of(1)]))).toString('hex')).toBe(get(v, 'commitment'));
          if (get(v, 'expect') === 'success') expect(env.subarray(0, bytes(get(v, 'header')).length).toString('hex')).toBe(get(v, 'header'));
          expect(env[4]).toBe(0x01); // layout: record field
        }
        const headerLength = v.has('header') ? bytes(get(v, 'header')).length : env.length - bytes(get(v, 'encoded value')).length - 16;
        const header = env.subarray(0, headerLength);
        const body = env.subarray(headerLength);
        const open = () => {
          const d = createDecipheriv('aes-256-gcm', bytes(get(v, 'field key')), Buffer.alloc(12));
          d.setAAD(header);
          d.setAuthTag(body.subarray(body.length - 16));
          return Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]);
        };
        // A compact field paired with another record's header must not open (the header is its associated data).
        if (v.has('record header') && expected !== 'success') expect(open).toThrow();
        else expect(open().toString('hex')).toBe(get(v, 'encoded value'));
      });
    }
  }

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
