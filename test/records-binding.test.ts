/**
 * What binds a stored field to its place (SPEC.md §12): the field commitment
 * (one ciphertext opens under one binding only, even for someone holding the
 * data key), compact records that admit only their own fields, no header
 * reused for sealing, the record version against rollback, the record id
 * limits, and the rule that a string looking like an envelope is never plaintext.
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkContext } from '../src/core/context.js';
import { LAYOUT_FIELD, encodeHeader, envelopeToText } from '../src/core/format.js';
import { deriveFieldKeys, deriveRecordKeys } from '../src/core/kdf.js';
import { FIELD_LABEL, FIELD_RECORD_LABEL, fieldBinding } from '../src/records/fields.js';
import {
  DecryptionFailedError,
  EnvelopeKitError,
  LocalKeyring,
  decodeValue,
  decryptFields,
  decryptRecords,
  encodeValue,
  encryptFields,
  encryptRecords,
  type KeyProvider,
} from '../src/index.js';
import { runs } from './helpers.js';
import { onlyKeyIdsChanged } from './core-helpers.js';

const keyring = new LocalKeyring();
keyring.createKey({ alias: 'alias/orders' });
const base = { provider: keyring, keyId: 'alias/orders' };

// ---------------------------------------------------------------------------
// GCM arithmetic (NIST SP 800-38D), to build a ciphertext that opens under two keys.

/** A 16-byte block as a bigint, first byte most significant (the bit order of SP 800-38D). */
const toBig = (b: Uint8Array): bigint => BigInt('0x' + (Buffer.from(b).toString('hex') || '0'));
const fromBig = (x: bigint): Uint8Array => new Uint8Array(Buffer.from(x.toString(16).padStart(32, '0'), 'hex'));
const R = 0xe1n << 120n;

/** Multiplication in GF(2^128) as GCM defines it (Algorithm 1 of SP 800-38D). */
function gmul(x: bigint, y: bigint): bigint {
  let z = 0n;
  let v = y;
  for (let i = 127n; i >= 0n; i--) {
    if ((x >> i) & 1n) z ^= v;
    v = v & 1n ? (v >> 1n) ^ R : v >> 1n;
  }
  return z;
}

function aesBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  const c = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
  return new Uint8Array(Buffer.concat([c.update(block), c.final()]));
}

/** The 16-byte blocks GHASH reads: padded aad, padded ciphertext, then the bit lengths. */
function ghashBlocks(aad: Uint8Array, ct: Uint8Array): bigint[] {
  const pad = (b: Uint8Array) => {
    const out: bigint[] = [];
    for (let i = 0; i < b.length; i += 16) {
      const blk = new Uint8Array(16);
      blk.set(b.subarray(i, i + 16));
      out.push(toBig(blk));
    }
    return out;
  };
  return [...pad(aad), ...pad(ct), (BigInt(aad.length * 8) << 64n) | BigInt(ct.length * 8)];
}

/** The tag of AES-256-GCM with the all-zero 12-byte nonce. */
function gcmTag(key: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array {
  const h = toBig(aesBlock(key, new Uint8Array(16)));
  let y = 0n;
  for (const x of ghashBlocks(aad, ct)) y = gmul(y ^ x, h);
  const j0 = new Uint8Array(16);
  j0[15] = 1;
  return fromBig(y ^ toBig(aesBlock(key, j0)));
}

/** The first `n` bytes of the GCM keystream for the all-zero nonce (counter 2 onwards; n ≤ 16). */
function keystream(key: Uint8Array, n: number): Uint8Array {
  const ctr = new Uint8Array(16);
  ctr[15] = 2;
  return aesBlock(key, ctr).subarray(0, n);
}

const hmac = (key: Uint8Array, msg: Uint8Array) => new Uint8Array(createHmac('sha512', key).update(msg).digest());
/** SPEC.md §12.2: the 64 bytes of one derivation, `HMAC-SHA-512(key, label || 0x00 || part || 0x01)`. */
const expand = (key: Uint8Array, label: string, part: Uint8Array) => hmac(key, Buffer.concat([Buffer.from(label), Buffer.of(0), part, Buffer.of(1)]));
/** The field root of a header (bytes 0..32 of its record keys) and the field key of a binding (bytes 0..32 of its field keys). */
const fieldRootOf = (dataKey: Uint8Array, messageId: Uint8Array) => expand(dataKey, FIELD_RECORD_LABEL, messageId).subarray(0, 32);
const fieldKeyOf = (root: Uint8Array, binding: Uint8Array) => expand(root, FIELD_LABEL, binding).subarray(0, 32);

function gcmOpens(key: Uint8Array, aad: Uint8Array, ct: Uint8Array, tag: Uint8Array): Uint8Array | undefined {
  const d = createDecipheriv('aes-256-gcm', key, Buffer.alloc(12));
  d.setAAD(aad);
  d.setAuthTag(tag);
  try {
    return new Uint8Array(Buffer.concat([d.update(ct), d.final()]));
  } catch {
    return undefined;
  }
}

/** A provider whose data key is a fixed, known value: the attacker's position (they can decrypt the record). */
const DATA_KEY = new Uint8Array(32).map((_, i) => 0x30 + i);
const fixedProvider: KeyProvider = {
  providerId: 'test.fixed',
  generateDataKey: async () => ({ keyId: 'k', plaintext: DATA_KEY.slice(), ciphertextBlob: Uint8Array.of(1, 2, 3) }),
  decrypt: async () => ({ keyId: 'k', plaintext: DATA_KEY.slice() }),
};

describe('field commitment: one ciphertext, one binding (SPEC.md §9.1, §12.2)', () => {
  it('the GCM arithmetic here gives the tags node:crypto gives', () => {
    const key = new Uint8Array(32).fill(7);
    const aad = new Uint8Array(37).map((_, i) => i);
    const pt = new Uint8Array(21).map((_, i) => 200 - i);
    const c = createCipheriv('aes-256-gcm', key, Buffer.alloc(12));
    c.setAAD(aad);
    const ct = Buffer.concat([c.update(pt), c.final()]);
    expect(Buffer.from(gcmTag(key, aad, ct)).toString('hex')).toBe(c.getAuthTag().toString('hex'));
    expect(Buffer.from(keystream(key, 16)).toString('hex')).toBe(Buffer.from(new Uint8Array(ct.subarray(0, 16)).map((b, i) => b ^ pt[i]!)).toString('hex'));
  });

  it('a ciphertext built with the data key to open as 10 under order-1 and as another number under order-2 opens under one of them only', async () => {
    // The attacker holds the data key of a record header (its blob and context) and writes
    // their own header: a message id of their choice and an extra context entry whose value is
    // 48 bytes of ASCII, 336 free bits of the associated data (the authenticated header, SPEC.md
    // §3.1: the EDK list is not part of it), enough to solve the 128 bit equations of one tag.
    const FREE = 48;
    const edk = { providerId: 'test.fixed', keyId: 'k', blob: Uint8Array.of(1, 2, 3) };
    const p1 = encodeValue(10);
    const b1 = fieldBinding(['total'], 'order-1');
    const b2 = fieldBinding(['total'], 'order-2');
    // Search a message id for which order-2 also reads a number: the first two bytes of the
    // two keystreams agree (2^16 tries on average; deterministic: fixed data key, counting ids).
    const messageId = new Uint8Array(16);
    let found: { k1: Uint8Array; k2: Uint8Array; ct: Uint8Array; p2: Uint8Array } | undefined;
    for (let i = 0; i < 1 << 22 && !found; i++) {
      new DataView(messageId.buffer).setUint32(12, i);
      const root = fieldRootOf(DATA_KEY, messageId);
      const k1 = fieldKeyOf(root, b1);
      const k2 = fieldKeyOf(root, b2);
      const s1 = keystream(k1, p1.length);
      const s2 = keystream(k2, p1.length);
      if (s1[0] !== s2[0] || s1[1] !== s2[1]) continue;
      const ct = p1.map((b, j) => b ^ s1[j]!);
      const p2 = ct.map((b, j) => b ^ s2[j]!);
      const v = (() => {
        try {
          return decodeValue(p2);
        } catch {
          return undefined;
        }
      })();
      if (typeof v === 'number' && !Number.isNaN(v) && v !== 10) found = { k1, k2, ct, p2 };
    }
    expect(found).toBeDefined();
    const { k1, k2, ct, p2 } = found!;
    const { commitment } = deriveRecordKeys(DATA_KEY, messageId);
    // The authenticated header, written out from SPEC.md §3.1 and §3.2: "EK" 01 01 01, the message id,
    // the context { table: "orders", zz: <free> } (count, then len-prefixed key and value each), the commitment.
    const ctxPrefix = Buffer.concat([Buffer.of(2, 5), Buffer.from('table'), Buffer.of(6), Buffer.from('orders'), Buffer.of(2), Buffer.from('zz'), Buffer.of(FREE)]);
    const free = 5 + 16 + ctxPrefix.length; // offset of the free value in the authenticated header
    const authenticated = (value: Uint8Array) => new Uint8Array(Buffer.concat([Buffer.of(0x45, 0x4b, 1, 1, 1), messageId, ctxPrefix, value, commitment]));
    // T1(A) xor T2(A) is affine in the bits of A: flipping bit j adds v_j. Solve sum of v_j over S = T1(A0) xor T2(A0)
    // over GF(2) for the low 7 bits of each free byte (so the value stays ASCII, valid UTF-8).
    const tagDiff = (a: Uint8Array) => toBig(gcmTag(k1, a, ct)) ^ toBig(gcmTag(k2, a, ct));
    const zeroValue = new Uint8Array(FREE);
    const d0 = tagDiff(authenticated(zeroValue));
    const basis = new Map<number, { v: bigint; bits: bigint }>(); // pivot bit -> reduced vector and the free bits that make it
    for (let j = 0; j < FREE * 7; j++) {
      const value = new Uint8Array(FREE);
      value[Math.floor(j / 7)] = 1 << (j % 7);
      let v = tagDiff(authenticated(value)) ^ d0;
      let bits = 1n << BigInt(j);
      for (let b = 127; b >= 0 && v !== 0n; b--) {
        if (!((v >> BigInt(b)) & 1n)) continue;
        const row = basis.get(b);
        if (!row) {
          basis.set(b, { v, bits });
          v = 0n;
        } else {
          v ^= row.v;
          bits ^= row.bits;
        }
      }
    }
    let rest = d0;
    let chosen = 0n;
    for (let b = 127; b >= 0; b--) {
      if (!((rest >> BigInt(b)) & 1n)) continue;
      const row = basis.get(b);
      expect(row, 'the free bits span the tag difference').toBeDefined();
      rest ^= row!.v;
      chosen ^= row!.bits;
    }
    expect(rest).toBe(0n);
    const freeValue = new Uint8Array(FREE);
    for (let j = 0; j < FREE * 7; j++) if ((chosen >> BigInt(j)) & 1n) freeValue[Math.floor(j / 7)]! |= 1 << (j % 7);
    const aad = authenticated(freeValue);
    const tag = gcmTag(k1, aad, ct);
    expect(Buffer.from(gcmTag(k2, aad, ct)).toString('hex')).toBe(Buffer.from(tag).toString('hex'));
    const context = checkContext({ table: 'orders', zz: Buffer.from(freeValue).toString('latin1') });
    const header = encodeHeader({ layout: LAYOUT_FIELD, messageId, context, encryptedDataKeys: [edk], commitment });
    // the header is the authenticated header with the EDK list inserted before the commitment
    expect(Buffer.from(header.subarray(0, free + FREE)).equals(Buffer.from(aad.subarray(0, free + FREE)))).toBe(true);
    expect(Buffer.from(header.subarray(header.length - 32)).equals(Buffer.from(commitment))).toBe(true);

    // Without a commitment (GCM alone, as layout 0x01 was), both bindings open, to two numbers:
    expect(decodeValue(gcmOpens(k1, aad, ct, tag)!)).toBe(10);
    expect(decodeValue(gcmOpens(k2, aad, ct, tag)!)).toBe(decodeValue(p2));
    expect(decodeValue(p2)).not.toBe(10);

    // The library's field: a commitment to one binding's key, then the same ciphertext and tag.
    const read = (commitmentFor: Uint8Array, recordId: string) => {
      const c = deriveFieldKeys(deriveRecordKeys(DATA_KEY, messageId).key, commitmentFor);
      const field = envelopeToText(Buffer.concat([header, c.commitment, ct, tag]));
      return decryptFields({ total: field }, { provider: fixedProvider, fields: ['total'], recordId, encryptionContext: { table: 'orders' } });
    };
    expect(await read(b1, 'order-1')).toEqual({ total: 10 });
    await expect(read(b1, 'order-2')).rejects.toBeInstanceOf(DecryptionFailedError);
    expect(await read(b2, 'order-2')).toEqual({ total: decodeValue(p2) });
    await expect(read(b2, 'order-1')).rejects.toBeInstanceOf(DecryptionFailedError);
  });

  it('checks the stored commitment: a field whose commitment byte is changed fails, though its body is intact', async () => {
    const enc = await encryptFields({ total: 10 }, { ...base, fields: ['total'], recordId: 'order-1', headerField: '_ek' });
    const body = Buffer.from((enc as unknown as { total: string }).total.slice(5), 'base64url');
    for (const at of [0, 17, 31]) {
      const bad = Buffer.from(body);
      bad[at]! ^= 1;
      const r = { ...enc, total: 'ekf1.' + bad.toString('base64url') };
      await expect(decryptFields(r, { provider: keyring, fields: ['total'], recordId: 'order-1', headerField: '_ek' })).rejects.toBeInstanceOf(
        DecryptionFailedError,
      );
    }
  });

  it('derives the field root, the field key and the commitments with labels that name the suite and the layout', () => {
    expect(FIELD_RECORD_LABEL).toBe('envelope-kit/v1/suite-01/layout-01/keys');
    expect(FIELD_LABEL).toBe('envelope-kit/v1/suite-01/layout-01/field');
    const mid = new Uint8Array(16).fill(9);
    const b = fieldBinding(['a', 0], 'r', 3);
    const record = deriveRecordKeys(DATA_KEY, mid);
    const { key: fieldKey, commitment } = deriveFieldKeys(record.key, b);
    const recordKeys = expand(DATA_KEY, FIELD_RECORD_LABEL, mid);
    expect(Buffer.from(record.bytes).equals(Buffer.from(recordKeys))).toBe(true);
    const fieldKeys = expand(recordKeys.subarray(0, 32), FIELD_LABEL, b);
    expect(Buffer.from(fieldKey).equals(Buffer.from(fieldKeys.subarray(0, 32)))).toBe(true);
    expect(Buffer.from(commitment).equals(Buffer.from(fieldKeys.subarray(32)))).toBe(true);
  });
});

// ---------------------------------------------------------------------------

const order = () => ({ id: 'order-1', total: 10, note: 'leave at the door', lines: [{ sku: 'a-1' }, { sku: 'b-2' }] });
const FIELDS = ['total', 'note', 'lines[].sku'] as const;

describe('compact records admit only their own fields (SPEC.md §12.4)', () => {
  const compactOpts = { ...base, fields: FIELDS, headerField: '_ek' };
  const read = (r: object, extra: object = {}) => decryptFields(r, { provider: keyring, fields: FIELDS, recordId: 'order-1', headerField: '_ek', ...extra });

  it('refuses a self-contained field put in place of a compact one, whatever key sealed it', async () => {
    const enc = await encryptFields(order(), { ...compactOpts, recordId: 'order-1' });
    const other = new LocalKeyring();
    other.createKey({ alias: 'alias/evil' });
    const forged = await encryptFields({ total: 1_000_000 }, { provider: other, keyId: 'alias/evil', fields: ['total'], recordId: 'order-1' });
    const same = await encryptFields({ total: 1_000_000 }, { ...base, fields: ['total'], recordId: 'order-1' });
    for (const f of [forged.total, same.total]) {
      await expect(read({ ...enc, total: f }, { providers: [keyring, other] })).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    }
    // The same header and body joined into a self-contained field is refused too: forms are not mixed.
    const header = Buffer.from((enc as unknown as { _ek: string })._ek.slice(5), 'base64url');
    const body = Buffer.from((enc as unknown as { note: string }).note.slice(5), 'base64url');
    await expect(read({ ...enc, note: envelopeToText(Buffer.concat([header, body])) })).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    expect(await read(enc)).toMatchObject({ total: 10, note: 'leave at the door' });
  });

  it('refuses compact fields without a header, and in a record read without "headerField"', async () => {
    const enc = (await encryptFields(order(), { ...compactOpts, recordId: 'order-1' })) as Record<string, unknown>;
    const { _ek, ...noHeader } = enc;
    await expect(read(noHeader)).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    await expect(read({ ...enc, _ek: 42 })).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    await expect(read({ ...enc, _ek: 'ekh2.AAAA' })).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_VERSION' });
    await expect(read({ ...enc, _ek: 'EKH1.' + String(_ek).slice(5) })).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    await expect(decryptFields(enc, { provider: keyring, fields: FIELDS, recordId: 'order-1' })).rejects.toMatchObject({ code: 'ERR_MALFORMED_ENVELOPE' });
    // The header of another encryption of the same record, with this one's fields: every field fails.
    const again = (await encryptFields(order(), { ...compactOpts, recordId: 'order-1' })) as Record<string, unknown>;
    await expect(read({ ...enc, _ek: again._ek })).rejects.toBeInstanceOf(DecryptionFailedError);
    await expect(read({ ...enc, total: again.total })).rejects.toBeInstanceOf(DecryptionFailedError);
  });
});

describe('no header is reused for sealing (SPEC.md §12.2)', () => {
  it('refuses a record that already holds a record header, and values that are already sealed', async () => {
    const enc = (await encryptFields(order(), { ...base, fields: FIELDS, recordId: 'order-1', headerField: '_ek' })) as Record<string, unknown>;
    const p = { ...base, recordId: 'order-1', headerField: '_ek' };
    // Updating one field of a compact record under its header would reuse the GCM key and nonce of that path.
    await expect(encryptFields({ ...enc, total: 11 }, { ...p, fields: ['total'] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(encryptFields({ _ek: enc._ek, total: 11 }, { ...p, fields: ['total'] })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    // Sealed values are refused, in either form, as are other strings that look like envelopes.
    const self = await encryptFields(order(), { ...base, fields: FIELDS, recordId: 'order-1' });
    const { _ek, ...compactFields } = enc;
    for (const r of [self, compactFields, { total: 'EK1.abc' }, { total: 'ekh1.abc' }, { total: 'ek2.abc' }]) {
      await expect(encryptFields(r, { ...base, fields: ['total'], recordId: 'order-1' })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    }
    // A header property that holds null (a column never filled) is not a header.
    expect(await encryptFields({ _ek: null, total: 11 }, { ...p, fields: ['total'] })).toMatchObject({ _ek: expect.stringMatching(/^ekh1\./) });
  });

  it('gives every encryption its own header, so no two share a message id (property)', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.integer(), async (total) => {
        const enc = (await encryptFields({ total }, { ...base, fields: ['total'], recordId: 'order-1', headerField: '_ek' })) as unknown as { _ek: string };
        const messageId = Buffer.from(enc._ek.slice(5), 'base64url').subarray(5, 21).toString('hex');
        expect(seen.has(messageId)).toBe(false);
        seen.add(messageId);
      }),
      { numRuns: runs(50) },
    );
  });
});

describe('record version against rollback (SPEC.md §12.1, §12.3)', () => {
  it('refuses a field of an older version of the same record, when the version is given', async () => {
    for (const headerField of [undefined, '_ek']) {
      const o = { ...base, fields: FIELDS, recordId: 'order-1', headerField };
      const v1 = await encryptFields(order(), { ...o, recordVersion: 1 });
      const v2 = await encryptFields({ ...order(), total: 99 }, { ...o, recordVersion: 2 });
      const r = { provider: keyring, fields: FIELDS, recordId: 'order-1', headerField };
      expect(await decryptFields(v2, { ...r, recordVersion: 2 })).toMatchObject({ total: 99 });
      // The whole old record, read as the version the application expects:
      await expect(decryptFields(v1, { ...r, recordVersion: 2 })).rejects.toBeInstanceOf(DecryptionFailedError);
      // No version on read, or a version as another type:
      await expect(decryptFields(v2, r)).rejects.toBeInstanceOf(DecryptionFailedError);
      await expect(decryptFields(v2, { ...r, recordVersion: '2' })).rejects.toBeInstanceOf(DecryptionFailedError);
      if (headerField === undefined) {
        // One old self-contained field in the new record:
        await expect(decryptFields({ ...v2, total: v1.total }, { ...r, recordVersion: 2 })).rejects.toBeInstanceOf(DecryptionFailedError);
      }
    }
  });

  it('without a version, an older copy of the same record is accepted (the documented limit)', async () => {
    const o = { ...base, fields: FIELDS, recordId: 'order-1' };
    const v1 = await encryptFields(order(), o);
    const v2 = await encryptFields({ ...order(), total: 99 }, o);
    expect(await decryptFields({ ...v2, total: v1.total }, { provider: keyring, fields: FIELDS, recordId: 'order-1' })).toMatchObject({ total: 10 });
  });

  it('takes the version per record in batches', async () => {
    const rows = [order(), { ...order(), id: 'order-2' }];
    const enc = await encryptRecords(rows, { ...base, fields: FIELDS, recordId: (r) => r.id, recordVersion: (_, i) => i + 1 });
    const ok = enc.map((e) => (e.ok ? e.value : undefined)) as Record<string, unknown>[];
    const o = { provider: keyring, fields: FIELDS, recordId: (r: object) => (r as { id: string }).id };
    expect((await decryptRecords(ok, { ...o, recordVersion: (_, i) => i + 1 })).every((r) => r.ok)).toBe(true);
    expect((await decryptRecords(ok, { ...o, recordVersion: () => 1 })).map((r) => r.ok)).toEqual([true, false]);
    await expect(decryptRecords(ok, { ...o, recordVersion: 1 as never })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
  });
});

describe('record ids and versions (SPEC.md §12.1)', () => {
  it('limits strings to 1024 bytes of UTF-8 and refuses empty, ill-formed and non-integer values', async () => {
    const o = { ...base, fields: ['total'] as const };
    const ok = ['x'.repeat(1024), 'é'.repeat(512), '😀'.repeat(256), 0, -5, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER];
    for (const id of ok) {
      const enc = await encryptFields({ total: 1 }, { ...o, recordId: id, recordVersion: id });
      expect(await decryptFields(enc, { provider: keyring, fields: ['total'], recordId: id, recordVersion: id })).toEqual({ total: 1 });
    }
    const bad: unknown[] = ['x'.repeat(1025), 'é'.repeat(513), '😀'.repeat(257), '', 'a\ud800', 1.5, 2 ** 53, NaN, Infinity, 1n, null, {}];
    for (const id of bad) {
      for (const name of ['recordId', 'recordVersion']) {
        await expect(encryptFields({ total: 1 }, { ...o, [name]: id })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
        await expect(decryptFields({ total: 'x' }, { provider: keyring, fields: ['total'], [name]: id })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
      }
    }
  });

  it('reads a hostile recordVersion option as a typed error', async () => {
    const throwing = <T extends object>(o: T): T =>
      Object.defineProperty(o, 'recordVersion', {
        get() {
          throw new Error('boom');
        },
      });
    await expect(encryptFields({ total: 1 }, throwing({ ...base, fields: ['total'] }))).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    await expect(decryptFields({ total: 1 }, throwing({ provider: keyring, fields: ['total'] }))).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    await expect(encryptFields({ total: 1 }, { ...base, fields: ['total'], recordVersion: revoked.proxy as never })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
  });

  it('writes numbers in decimal in the binding, -0 as 0, and keeps strings and numbers apart', async () => {
    expect(new TextDecoder().decode(fieldBinding(['a', 3, 'b"\\\n\u0001é'], -42, 7))).toBe('[["a",3,"b\\"\\\\\\n\\u0001é"],-42,7]');
    expect(new TextDecoder().decode(fieldBinding(['a'], -0))).toBe('[["a"],0,null]');
    expect(new TextDecoder().decode(fieldBinding(['\ud800'], undefined, 'v'))).toBe('[["\\ud800"],null,"v"]');
    const enc = await encryptFields({ total: 1 }, { ...base, fields: ['total'], recordId: -0 });
    expect(await decryptFields(enc, { provider: keyring, fields: ['total'], recordId: 0 })).toEqual({ total: 1 });
    await expect(decryptFields(enc, { provider: keyring, fields: ['total'], recordId: '0' })).rejects.toBeInstanceOf(DecryptionFailedError);
  });
});

describe('a string that looks like an envelope is never plaintext (SPEC.md §12.3 step 1)', () => {
  const allow = { provider: keyring, fields: ['v'] as const, allowPlaintextFields: true, onPlaintextField: () => {} };
  it('refuses other versions and other spellings, even when plaintext is allowed', async () => {
    const cases: [string, string][] = [
      ['ek2.AAAA', 'ERR_UNSUPPORTED_VERSION'],
      ['EK1.AAAA', 'ERR_MALFORMED_ENVELOPE'],
      ['Ek1.AAAA', 'ERR_MALFORMED_ENVELOPE'],
      ['ekf2.AAAA', 'ERR_UNSUPPORTED_VERSION'],
      ['ekh7.AAAA', 'ERR_UNSUPPORTED_VERSION'],
      ['EKF1.AAAA', 'ERR_MALFORMED_ENVELOPE'],
      ['ekf01.AAAA', 'ERR_MALFORMED_ENVELOPE'],
      ['ekf1000.AAAA', 'ERR_MALFORMED_ENVELOPE'],
      ['ekh1.AAAA', 'ERR_MALFORMED_ENVELOPE'],
      ['ekf1.AAAA', 'ERR_MALFORMED_ENVELOPE'], // a compact field, and no header given
    ];
    for (const [v, code] of cases) {
      await expect(decryptFields({ v }, allow)).rejects.toMatchObject({ code });
      await expect(decryptFields({ v }, { provider: keyring, fields: ['v'] })).rejects.toMatchObject({ code });
    }
  });

  it('passes other strings as plaintext when allowed', async () => {
    for (const v of ['ek.1', 'ek1', 'ekx1.a', 'hello', ' ek1.AAAA', 'ekf.1']) {
      const seen: string[] = [];
      expect(await decryptFields({ v }, { ...allow, onPlaintextField: (p) => seen.push(p) })).toEqual({ v });
      expect(seen).toEqual(['$.v']);
      await expect(decryptFields({ v }, { provider: keyring, fields: ['v'] })).rejects.toMatchObject({ code: 'ERR_UNENCRYPTED_FIELD' });
    }
  });
});

// ---------------------------------------------------------------------------

describe('any change to a stored record is detected (property)', () => {
  const rec = { total: 10, note: 'leave at the door', lines: [{ sku: 'a-1' }, { sku: 'b-2' }, { sku: 'c-3' }] };
  const at = (r: Record<string, unknown>, p: (string | number)[]) => p.reduce<unknown>((n, s) => (n as Record<string | number, unknown>)[s], r);
  const put = (r: Record<string, unknown>, p: (string | number)[], v: unknown) => {
    const out = structuredClone(r);
    const parent = p.slice(0, -1).reduce<unknown>((n, s) => (n as Record<string | number, unknown>)[s], out) as Record<string | number, unknown>;
    parent[p[p.length - 1]!] = v;
    return out;
  };
  const PATHS: (string | number)[][] = [['total'], ['note'], ['lines', 0, 'sku'], ['lines', 1, 'sku'], ['lines', 2, 'sku']];
  const setup = async (headerField: string | undefined) => ({
    headerField,
    enc: (await encryptFields(rec, { ...base, fields: FIELDS, recordId: 'order-1', recordVersion: 3, headerField })) as Record<string, unknown>,
  });
  const forms = Promise.all([setup(undefined), setup('_ek')]);

  it('one character changed in any stored field or header string fails', async () => {
    const both = await forms;
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ é';
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...both), fc.nat(PATHS.length), fc.nat(), fc.constantFrom(...chars), async ({ headerField, enc }, which, pos, ch) => {
        const path = which === PATHS.length ? (headerField ? [headerField] : PATHS[0]!) : PATHS[which]!;
        const s = at(enc, path) as string;
        const i = pos % s.length;
        fc.pre(s[i] !== ch);
        const changed = s.slice(0, i) + ch + s.slice(i + 1);
        const bad = put(enc, path, changed);
        const options = { provider: keyring, fields: FIELDS, recordId: 'order-1', recordVersion: 3, headerField };
        const err = await decryptFields(bad, options).catch((e: unknown) => e);
        // SPEC.md §9.13: a change confined to a key id beside a blob may decrypt, and then to the same record
        if (onlyKeyIdsChanged(s, changed) && !(err instanceof Error)) {
          const same = await decryptFields(enc, options);
          expect(err).toEqual(headerField !== undefined && path[0] === headerField ? put(same, path, changed) : same);
          return;
        }
        expect(err).toBeInstanceOf(EnvelopeKitError);
      }),
      { numRuns: runs(300) },
    );
  });

  it('a field moved to another path or element, or read with another record id or version, fails', async () => {
    const both = await forms;
    const idOrVersion = fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.integer());
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...both),
        fc.nat(PATHS.length - 1),
        fc.nat(PATHS.length - 1),
        fc.option(idOrVersion, { nil: undefined }),
        fc.option(idOrVersion, { nil: undefined }),
        async ({ headerField, enc }, from, to, id, version) => {
          const moved = from !== to;
          const recordId = id ?? 'order-1';
          const recordVersion = version ?? 3;
          fc.pre(moved || recordId !== 'order-1' || recordVersion !== 3);
          const r = moved ? put(enc, PATHS[to]!, at(enc, PATHS[from]!)) : enc;
          await expect(decryptFields(r, { provider: keyring, fields: FIELDS, recordId, recordVersion, headerField })).rejects.toBeInstanceOf(
            DecryptionFailedError,
          );
        },
      ),
      { numRuns: runs(200) },
    );
  });
});
