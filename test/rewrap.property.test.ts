/**
 * Properties of re-wrapping (SPEC.md §15) and of the unauthenticated data-key list (SPEC.md §9.13):
 * over recipient sets, sequences of add / remove / replace in any order, and every envelope kind,
 * the plaintext and the body never change, present recipients decrypt and removed ones cannot; and
 * any edit of the data-key list makes decryption fail or give the sealed plaintext, never another.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EnvelopeKitError,
  type KeyProvider,
  LocalKeyring,
  decrypt,
  decryptFields,
  decryptText,
  encrypt,
  encryptFields,
  encryptText,
  rewrap,
  rewrapFields,
} from '../src/index.js';
import { decryptStream, encryptStream } from '../src/stream/index.js';
import { encodeHeader, envelopeFromText, parseHeader } from '../src/core/format.js';
import { collect, streamOf } from './stream-helpers.js';
import { runs } from './helpers.js';

type Kind = 'binary' | 'text' | 'framed' | 'fields' | 'compact';
const KINDS: Kind[] = ['binary', 'text', 'framed', 'fields', 'compact'];

/** Four master keys over three providers: two keys in one keyring, and two keyrings under other ids. */
function pool() {
  const ringA = new LocalKeyring();
  const ringB = new LocalKeyring();
  const ringC = new LocalKeyring();
  const view = (kr: LocalKeyring, providerId: string): KeyProvider => ({
    providerId,
    generateDataKey: (r) => kr.generateDataKey(r),
    decrypt: (r) => kr.decrypt(r),
    encrypt: (r) => kr.encrypt(r),
    reEncrypt: (r) => kr.reEncrypt(r),
    describeBlob: (b) => kr.describeBlob(b),
  });
  const b = view(ringB, 'backup');
  // The third provider has no reEncrypt: moving to it always unwraps and wraps again.
  const c: KeyProvider = { ...view(ringC, 'third'), reEncrypt: undefined };
  delete (c as { reEncrypt?: unknown }).reEncrypt;
  const recipients = [
    { provider: ringA as KeyProvider, keyId: ringA.createKey().keyId },
    { provider: ringA as KeyProvider, keyId: ringA.createKey().keyId },
    { provider: b, keyId: ringB.createKey().keyId },
    { provider: c, keyId: ringC.createKey().keyId },
  ];
  return { recipients, providers: [ringA as KeyProvider, b, c] };
}

type Op = { op: 'add'; r: number } | { op: 'remove'; r: number } | { op: 'replace'; from: number; to: number };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), r: fc.nat(3) }),
  fc.record({ op: fc.constant('remove' as const), r: fc.nat(3) }),
  fc.record({ op: fc.constant('replace' as const), from: fc.nat(3), to: fc.nat(3) }),
);

const PLAINTEXT = new TextEncoder().encode('the same plaintext, before and after every re-wrap');
const RECORD_ID = 'row-7';

/** An envelope of each kind, and how to read it, its body, and re-wrap it. */
async function make(kind: Kind, first: number[], pl: ReturnType<typeof pool>) {
  const recipients = first.map((i) => pl.recipients[i]!);
  if (kind === 'binary' || kind === 'text' || kind === 'framed') {
    const value: Uint8Array | string =
      kind === 'binary'
        ? await encrypt(PLAINTEXT, { recipients, recordId: RECORD_ID })
        : kind === 'text'
          ? await encryptText(PLAINTEXT, { recipients, recordId: RECORD_ID })
          : await collect(streamOf(PLAINTEXT, [7, 100]).pipeThrough(encryptStream({ recipients, recordId: RECORD_ID, segmentSize: 4096 })));
    return { value: value as unknown };
  }
  const rec = await encryptFields(
    { id: 7, email: 'e@example.com', note: 'n' },
    { recipients, fields: ['email', 'note'], recordId: RECORD_ID, ...(kind === 'compact' ? { headerField: '_ek' } : {}) },
  );
  return { value: rec as unknown };
}

function bodyOf(kind: Kind, value: unknown): string {
  if (kind === 'fields' || kind === 'compact') {
    const rec = value as Record<string, string>;
    if (kind === 'compact') return rec.email! + rec.note!;
    return ['email', 'note'].map((f) => {
      const bytes = envelopeFromText(rec[f]!);
      return Buffer.from(bytes.subarray(parseHeader(bytes, 255, [1]).bodyOffset)).toString('hex');
    }).join();
  }
  const bytes = typeof value === 'string' ? envelopeFromText(value) : (value as Uint8Array);
  return Buffer.from(bytes.subarray(parseHeader(bytes, 255, [0, 2]).bodyOffset)).toString('hex');
}

async function open(kind: Kind, value: unknown, provider: KeyProvider, keyId: string): Promise<Uint8Array | string> {
  const o = { provider, keyIds: [keyId], recordId: RECORD_ID };
  if (kind === 'binary') return (await decrypt(value as Uint8Array, o)).plaintext;
  if (kind === 'text') return (await decryptText(value as string, o)).plaintext;
  if (kind === 'framed') return collect(streamOf(value as Uint8Array).pipeThrough(decryptStream(o)));
  const r = await decryptFields(value as Record<string, unknown>, { ...o, fields: ['email', 'note'], ...(kind === 'compact' ? { headerField: '_ek' } : {}) });
  return `${String(r.email)}|${String(r.note)}`;
}

async function apply(kind: Kind, value: unknown, op: Op, pl: ReturnType<typeof pool>): Promise<unknown> {
  const r = (i: number) => pl.recipients[i]!;
  const sel = (i: number) => (k: { providerId: string; keyId: string }) => k.providerId === r(i).provider.providerId && k.keyId === r(i).keyId;
  const rules =
    op.op === 'add' ? { add: [r(op.r)] } : op.op === 'remove' ? { remove: [sel(op.r)] } : { replace: [{ from: sel(op.from), to: r(op.to) }] };
  const options = { providers: pl.providers, ...rules, ...(kind === 'fields' ? { fields: ['email', 'note'] } : kind === 'compact' ? { headerField: '_ek' } : { recordId: RECORD_ID }) };
  if (kind === 'fields' || kind === 'compact') return rewrapFields(value as Record<string, unknown>, options as never);
  return rewrap(value as Uint8Array | string, options as never);
}

/** The model: which recipients (by index) an envelope holds after an operation. */
function model(present: number[], op: Op): number[] | 'refused' {
  if (op.op === 'add') return present.includes(op.r) ? present : [...present, op.r];
  if (op.op === 'remove') {
    const next = present.filter((i) => i !== op.r);
    return next.length === 0 ? 'refused' : next;
  }
  if (!present.includes(op.from)) return present;
  if (op.from === op.to) return present;
  // In place; a replacement already listed elsewhere is not listed twice.
  return present.includes(op.to) ? present.filter((i) => i !== op.from) : present.map((i) => (i === op.from ? op.to : i));
}

describe('re-wrap sequences (property)', () => {
  it('keep the plaintext and the body; present recipients decrypt, removed ones cannot; the list is what the model says', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...KINDS),
        fc.uniqueArray(fc.nat(3), { minLength: 1, maxLength: 3 }),
        fc.array(opArb, { minLength: 1, maxLength: 5 }),
        async (kind, first, ops) => {
          const pl = pool();
          let { value } = await make(kind, first, pl);
          const body = bodyOf(kind, value);
          const expected = kind === 'fields' || kind === 'compact' ? 'e@example.com|n' : Buffer.from(PLAINTEXT).toString('hex');
          const norm = (x: Uint8Array | string) => (typeof x === 'string' ? x : Buffer.from(x).toString('hex'));
          let present = [...first];
          for (const op of ops) {
            const next = model(present, op);
            if (next === 'refused') {
              await expect(apply(kind, value, op, pl)).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
              continue;
            }
            value = await apply(kind, value, op, pl);
            present = next;
            expect(bodyOf(kind, value)).toBe(body);
          }
          for (let i = 0; i < 4; i++) {
            const r = pl.recipients[i]!;
            if (present.includes(i)) expect(norm(await open(kind, value, r.provider, r.keyId))).toBe(expected);
            else await expect(open(kind, value, r.provider, r.keyId)).rejects.toBeInstanceOf(EnvelopeKitError);
          }
        },
      ),
      { numRuns: runs(40) },
    );
  });
});

describe('an edited data-key list (property)', () => {
  it('fails with a typed error or gives the sealed plaintext; never another plaintext', async () => {
    const pl = pool();
    const env = await encrypt(PLAINTEXT, { recipients: [pl.recipients[0]!, pl.recipients[2]!, pl.recipients[3]!] });
    const { header, bodyOffset } = parseHeader(env, 8, [0]);
    const body = env.subarray(bodyOffset);
    // Valid blobs of the pool's keys, bound to the envelope's provider context, holding other data keys.
    const ctx = { 'ek:purpose': 'envelope-kit/v1/data-key' };
    const foreign = await Promise.all(
      pl.recipients.map(async (r, i) => ({
        providerId: r.provider.providerId,
        keyId: r.keyId,
        blob: (await r.provider.encrypt!({ keyId: r.keyId, plaintext: new Uint8Array(32).fill(i + 1), encryptionContext: ctx })).ciphertextBlob,
      })),
    );
    const edit = fc.oneof(
      fc.record({ kind: fc.constant('drop' as const), i: fc.nat(7) }),
      fc.record({ kind: fc.constant('duplicate' as const), i: fc.nat(7) }),
      fc.record({ kind: fc.constant('swap' as const), i: fc.nat(7), j: fc.nat(7) }),
      fc.record({ kind: fc.constant('insert-foreign' as const), at: fc.nat(7), f: fc.nat(3) }),
      fc.record({ kind: fc.constant('flip-blob' as const), i: fc.nat(7), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant('key-id' as const), i: fc.nat(7), keyId: fc.string({ minLength: 1, maxLength: 8 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), fc.shuffledSubarray(pl.providers, { minLength: 1 }), async (edits, readers) => {
        let list = [...header.encryptedDataKeys];
        for (const e of edits) {
          const n = list.length;
          if (e.kind === 'drop' && n > 1) list.splice(e.i % n, 1);
          if (e.kind === 'duplicate' && n < 8) list.splice(e.i % n, 0, list[e.i % n]!);
          if (e.kind === 'swap') [list[e.i % n], list[e.j % n]] = [list[e.j % n]!, list[e.i % n]!];
          if (e.kind === 'insert-foreign' && n < 8) list.splice(e.at % (n + 1), 0, foreign[e.f]!);
          if (e.kind === 'flip-blob') {
            const x = list[e.i % n]!;
            const blob = x.blob.slice();
            blob[e.at % blob.length]! ^= e.mask;
            list[e.i % n] = { ...x, blob };
          }
          if (e.kind === 'key-id') list[e.i % n] = { ...list[e.i % n]!, keyId: e.keyId };
          list = list.filter(Boolean);
        }
        const forged = encodeHeader({ messageId: header.messageId, context: header.context, commitment: header.commitment, encryptedDataKeys: list });
        const edited = new Uint8Array(forged.length + body.length);
        edited.set(forged);
        edited.set(body, forged.length);
        try {
          const r = await decrypt(edited, { providers: readers });
          expect(Buffer.from(r.plaintext).equals(Buffer.from(PLAINTEXT))).toBe(true);
          // The key id reported is the provider's, one of the master keys that wrapped the genuine data key.
          expect([pl.recipients[0]!.keyId, pl.recipients[2]!.keyId, pl.recipients[3]!.keyId]).toContain(r.keyId);
        } catch (e) {
          expect(e).toBeInstanceOf(EnvelopeKitError);
        }
      }),
      { numRuns: runs(150) },
    );
  });
});
