/**
 * "Any change must be detected": every single-bit flip, every truncation and
 * every extension of an envelope is rejected with a code allowed for the byte
 * region hit, except a change confined to the key id written beside a blob,
 * which the body does not authenticate (SPEC.md §9.13): that may decrypt, and
 * then to exactly the original plaintext and the key id the provider answers.
 * Random bytes and random text never escape as a foreign error and never hang.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EnvelopeKitError,
  type ErrorCode,
  LocalKeyring,
  UnsupportedVersionError,
  decrypt,
  decryptText,
  encrypt,
  envelopeFromText,
  envelopeToText,
  inspect,
} from '../src/index.js';
import { LAYOUT_NAMES } from '../src/core/format.js';
import { contextArb, expectOnlyOwnErrors, numRuns, onlyKeyIdsChanged, utf8 } from './core-helpers.js';

type Region =
  | 'magic'
  | 'version'
  | 'suite'
  | 'layout'
  | 'messageId'
  | 'structure'
  | 'contextContent'
  | 'providerId'
  | 'edkKeyId'
  | 'blob'
  | 'commitment'
  | 'body';

const MF: ErrorCode = 'ERR_MALFORMED_ENVELOPE';
const UV: ErrorCode = 'ERR_UNSUPPORTED_VERSION';
const DF: ErrorCode = 'ERR_DECRYPTION_FAILED';
const NM: ErrorCode = 'ERR_NO_MATCHING_PROVIDER';
const NF: ErrorCode = 'ERR_KEY_NOT_FOUND';
/** The outcome of a change confined to key-id bytes that decrypted: to the original plaintext and the provider's key id (SPEC.md §9.13). */
const SAME = 'same plaintext';
type Outcome = ErrorCode | typeof SAME;

/**
 * A layout this release knows but `decrypt` does not open (0x01, a record field) is
 * reported as malformed ("open it with decryptFields"); a single-pass envelope read as framed
 * (0x02) has its last header bytes read as a segment size and a commitment, so it is malformed
 * or fails the commitment; any other layout is unsupported.
 */
function allowedFor(region: Region, flipped: number): readonly Outcome[] {
  if (region === 'layout' && flipped === 0x02) return [MF, DF];
  if (region === 'layout' && flipped in LAYOUT_NAMES) return [MF];
  return ALLOWED[region];
}

/** Codes a flip in each region may produce (SPEC.md §3.1 layout). */
const ALLOWED: Record<Region, readonly Outcome[]> = {
  magic: [MF],
  version: [UV],
  suite: [UV],
  layout: [UV],
  messageId: [DF],
  // a count or length byte shifts everything after it: any later field may be hit
  structure: [MF, DF, NM, NF],
  contextContent: [MF, DF],
  providerId: [MF, NM],
  // the key id beside the blob is not authenticated and the local provider reads its own from the blob (SPEC.md §9.13):
  // ill-formed UTF-8 is malformed, anything else may decrypt, to the same plaintext
  edkKeyId: [MF, DF, SAME],
  // the local blob carries its own key id: a flip there may name an unknown key
  blob: [DF, NF],
  commitment: [DF],
  body: [DF],
};

/**
 * Label every byte of a well-formed envelope with its region. An independent
 * reader of the layout: magic(2) version suite layout messageId(16)
 * context(count, (len key len value)*) edkCount (len providerId len keyId len blob)* commitment(32) body.
 */
function regionsOf(env: Uint8Array): Region[] {
  const out: Region[] = [];
  let p = 0;
  const mark = (n: number, r: Region) => {
    for (let i = 0; i < n; i++) out[p++] = r;
  };
  const len = (): number => {
    const a = env[p]!;
    if (a < 0x80) {
      mark(1, 'structure');
      return a;
    }
    const n = ((a & 0x7f) << 8) | env[p + 1]!;
    mark(2, 'structure');
    return n;
  };
  mark(2, 'magic');
  mark(1, 'version');
  mark(1, 'suite');
  mark(1, 'layout');
  mark(16, 'messageId');
  const entries = env[p]!;
  mark(1, 'structure');
  for (let i = 0; i < entries; i++) {
    mark(len(), 'contextContent');
    mark(len(), 'contextContent');
  }
  const edks = env[p]!;
  mark(1, 'structure');
  for (let i = 0; i < edks; i++) {
    mark(len(), 'providerId');
    mark(len(), 'edkKeyId');
    mark(len(), 'blob');
  }
  mark(32, 'commitment');
  mark(env.length - p, 'body');
  return out;
}

const keyring = new LocalKeyring();
const { keyId } = keyring.createKey({ alias: 'alias/tamper' });
keyring.createKey(); // a second key in the keyring: a flipped key id must still never open the envelope

/** Decrypt must throw an EnvelopeKitError whose code is allowed; return the code. */
async function rejectCode(env: Uint8Array): Promise<ErrorCode> {
  let result: unknown;
  try {
    result = await decrypt(env, { provider: keyring });
  } catch (e) {
    if (!(e instanceof EnvelopeKitError)) throw new Error(`foreign error: ${String(e)}`, { cause: e });
    return e.code;
  }
  throw new Error(`tampered envelope decrypted: ${String(result)}`);
}

/**
 * Decrypt `t`, a changed copy of the valid envelope `env` of `plaintext`: an EnvelopeKitError gives its
 * code; a success is allowed only when every changed byte is in a key id beside a blob (by the
 * independent {@link regionsOf}), and must then give exactly `plaintext` and the provider's key id.
 */
async function outcomeOf(t: Uint8Array, env: Uint8Array, plaintext: Uint8Array): Promise<Outcome> {
  let result: Awaited<ReturnType<typeof decrypt>>;
  try {
    result = await decrypt(t, { provider: keyring });
  } catch (e) {
    if (!(e instanceof EnvelopeKitError)) throw new Error(`foreign error: ${String(e)}`, { cause: e });
    return e.code;
  }
  const regions = regionsOf(env);
  const changed = [...t.keys()].filter((i) => t[i] !== env[i]);
  if (t.length !== env.length || changed.length === 0 || changed.some((i) => regions[i] !== 'edkKeyId')) {
    throw new Error(`tampered envelope decrypted (bytes ${changed.join(', ')} changed)`);
  }
  expect(onlyKeyIdsChanged(env, t)).toBe(true);
  expect(Buffer.from(result.plaintext).equals(Buffer.from(plaintext)), 'a key-id change decrypted to other data').toBe(true);
  expect(result.keyId).toBe(keyId);
  return SAME;
}

async function checkEveryBitFlip(env: Uint8Array, plaintext: Uint8Array): Promise<Map<Region, Set<Outcome>>> {
  const regions = regionsOf(env);
  expect(regions).toHaveLength(env.length);
  const seen = new Map<Region, Set<Outcome>>();
  for (let i = 0; i < env.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const t = env.slice();
      t[i]! ^= 1 << bit;
      const code = await outcomeOf(t, env, plaintext);
      const region = regions[i]!;
      const allowed = allowedFor(region, t[i]!);
      if (!allowed.includes(code)) {
        expect.fail(`flip of bit ${bit} of byte ${i} (${region}) gave ${code}; allowed: ${allowed.join(', ')}`);
      }
      if (!seen.has(region)) seen.set(region, new Set());
      seen.get(region)!.add(code);
    }
  }
  return seen;
}

describe('every single-bit flip is rejected with the code for its region', () => {
  it('an envelope without context', async () => {
    const env = await encrypt(new Uint8Array(0), { provider: keyring, keyId });
    const seen = await checkEveryBitFlip(env, new Uint8Array(0));
    expect([...seen.keys()].sort()).toEqual(['blob', 'body', 'commitment', 'edkKeyId', 'layout', 'magic', 'messageId', 'providerId', 'structure', 'suite', 'version']);
    // every other region refuses every flip; a key-id flip that stays UTF-8 decrypts (SPEC.md §9.13)
    expect(seen.get('edkKeyId')).toContain(SAME);
    for (const [region, outcomes] of seen) if (region !== 'edkKeyId') expect(outcomes.has(SAME), region).toBe(false);
  });

  it('an envelope with a unicode context and a body', async () => {
    const env = await encrypt(utf8('twenty bytes of data'), {
      provider: keyring,
      keyId: 'alias/tamper',
      encryptionContext: { tenant: 'acme', 'cl\u00e9': '\u{1f511} value' },
    });
    const seen = await checkEveryBitFlip(env, utf8('twenty bytes of data'));
    expect(seen.get('contextContent')).toBeDefined();
  });

  it('an AES_128 envelope with a long context value (two-byte lengths)', async () => {
    const env = await encrypt(utf8('x'), { provider: keyring, keyId, keySpec: 'AES_128', encryptionContext: { long: 'L'.repeat(300) } });
    await checkEveryBitFlip(env, utf8('x'));
  });

  it('version, suite and layout flips name the field', async () => {
    const env = await encrypt(utf8('x'), { provider: keyring, keyId });
    for (const [offset, field] of [[2, 'version'], [3, 'suite'], [4, 'layout']] as const) {
      const t = env.slice();
      t[offset]! ^= 0x04;
      const e = await decrypt(t, { provider: keyring }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UnsupportedVersionError);
      expect((e as UnsupportedVersionError).field).toBe(field);
      expect((e as UnsupportedVersionError).value).toBe(t[offset]);
      expect(() => inspect(t)).toThrow(UnsupportedVersionError);
    }
  });

  it('property: a random bit of a random envelope', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), contextArb, fc.nat(), async (plaintext, ctx, pick) => {
        const env = await encrypt(plaintext, { provider: keyring, keyId, encryptionContext: ctx });
        const regions = regionsOf(env);
        const bit = pick % (env.length * 8);
        const t = env.slice();
        t[bit >> 3]! ^= 1 << (bit & 7);
        const code = await outcomeOf(t, env, plaintext);
        expect(allowedFor(regions[bit >> 3]!, t[bit >> 3]!)).toContain(code);
      }),
      { numRuns: numRuns(100) },
    );
  });
});

describe('truncation and extension', () => {
  it('every truncation is rejected: malformed while the header or tag is cut, else decryption failed', async () => {
    const env = await encrypt(utf8('some plaintext'), { provider: keyring, keyId, encryptionContext: { a: 'b' } });
    const headerLength = inspect(env).headerLength;
    for (let n = 0; n < env.length; n++) {
      const code = await rejectCode(env.subarray(0, n));
      expect(code, `length ${n}`).toBe(n < headerLength + 16 ? MF : DF);
      if (n < headerLength + 16) expect(() => inspect(env.slice(0, n))).toThrow(EnvelopeKitError);
    }
  });

  it('every extension is rejected', async () => {
    const env = await encrypt(utf8('some plaintext'), { provider: keyring, keyId });
    for (let extra = 1; extra <= 64; extra++) {
      for (const fill of [0x00, 0xff]) {
        const t = new Uint8Array(env.length + extra).fill(fill);
        t.set(env);
        expect(await rejectCode(t)).toBe(DF);
      }
    }
    const doubled = new Uint8Array(env.length * 2);
    doubled.set(env);
    doubled.set(env, env.length);
    expect(await rejectCode(doubled)).toBe(DF);
  });

  it('property: random truncations and extensions of random envelopes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), contextArb, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 40 }), async (pt, ctx, cut, tail) => {
        const env = await encrypt(pt, { provider: keyring, keyId, encryptionContext: ctx });
        expect([MF, DF]).toContain(await rejectCode(env.slice(0, cut % env.length)));
        const longer = new Uint8Array(env.length + tail.length);
        longer.set(env);
        longer.set(tail, env.length);
        expect(await rejectCode(longer)).toBe(DF);
      }),
      { numRuns: numRuns(50) },
    );
  });

  it('property: several random byte changes never decrypt, unless confined to the key id, then to the same plaintext', async () => {
    const env = await encrypt(utf8('multi-byte damage'), { provider: keyring, keyId, encryptionContext: { k: 'v' } });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(env.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }), async (edits) => {
        const t = env.slice();
        for (const [i, x] of edits) t[i]! ^= x;
        if (t.every((b, i) => b === env[i])) return; // edits cancelled out
        await outcomeOf(t, env, utf8('multi-byte damage'));
      }),
      { numRuns: numRuns(200) },
    );
  });
});

/** Run `f` with a deadline, so a hang is a clear failure rather than a test timeout. */
async function withinDeadline<T>(f: () => Promise<T>, ms = 2000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      f(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const PREFIX = [0x45, 0x4b, 0x01, 0x01, 0x00];

describe('random input never escapes as a foreign error and never hangs', () => {
  const garbage = fc.oneof(
    fc.uint8Array({ maxLength: 2048 }),
    fc.uint8Array({ maxLength: 600 }).map((b) => Uint8Array.from([...PREFIX, ...b])),
    // a plausible start: prefix, message id, empty context, one data key, then noise
    fc.uint8Array({ maxLength: 400 }).map((b) => Uint8Array.from([...PREFIX, ...new Uint8Array(16), 0x00, 0x01, 0x05, ...utf8('local'), ...b])),
    // every length byte at its maximum
    fc.nat(64).map((n) => Uint8Array.from([...PREFIX, ...new Uint8Array(16), ...new Array<number>(n).fill(0xff)])),
  );

  it('decrypt and inspect on random bytes', async () => {
    await fc.assert(
      fc.asyncProperty(garbage, async (bytes) => {
        const e = await withinDeadline(() => expectOnlyOwnErrors(() => decrypt(bytes, { provider: keyring })));
        expect(e).toBeDefined();
        await expectOnlyOwnErrors(() => inspect(bytes));
        await expectOnlyOwnErrors(() => inspect(bytes, { maxEncryptedDataKeys: 1 }));
      }),
      { numRuns: numRuns(300) },
    );
  });

  it('decryptText and inspect on random text', async () => {
    const b64url = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), maxLength: 800 });
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.string({ maxLength: 200 }).map((s) => `ek1.${s}`),
      b64url.map((s) => `ek1.${s}`),
      fc.uint8Array({ maxLength: 400 }).map((b) => envelopeToText(Uint8Array.from([...PREFIX, ...b]))),
      fc.tuple(fc.nat(999), b64url).map(([v, s]) => `ek${v}.${s}`),
    );
    await fc.assert(
      fc.asyncProperty(text, async (t) => {
        const e = await withinDeadline(() => expectOnlyOwnErrors(() => decryptText(t, { provider: keyring })));
        expect(e).toBeDefined();
        await expectOnlyOwnErrors(() => inspect(t));
        await expectOnlyOwnErrors(() => envelopeFromText(t));
      }),
      { numRuns: numRuns(300) },
    );
  });

  it('text-form changes to a valid text envelope are rejected', async () => {
    const text = envelopeToText(await encrypt(utf8('text tamper'), { provider: keyring, keyId }));
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. ';
    await fc.assert(
      fc.asyncProperty(fc.nat(text.length - 1), fc.constantFrom(...alphabet), async (i, c) => {
        if (text[i] === c) return;
        const t = text.slice(0, i) + c + text.slice(i + 1);
        // SPEC.md §9.13: a change whose bytes (character i after "ek1." covers bits [6i, 6i+6)) all lie in the key id beside the blob may decrypt
        if (onlyKeyIdsChanged(text, t)) {
          const r = await decryptText(t, { provider: keyring }).catch((e: unknown) => e);
          if (r instanceof EnvelopeKitError) return;
          const { plaintext, keyId: answered } = r as Awaited<ReturnType<typeof decryptText>>;
          expect(Buffer.from(plaintext).toString(), `change at ${i} to ${c}`).toBe('text tamper');
          expect(answered).toBe(keyId);
          return;
        }
        const e = await expectOnlyOwnErrors(() => decryptText(t, { provider: keyring }));
        expect(e, `change at ${i} to ${c} decrypted`).toBeDefined();
      }),
      { numRuns: numRuns(200) },
    );
  });
});
