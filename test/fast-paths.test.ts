/**
 * The fast paths added for the benchmarks (bench/, docs/benchmarks.md) give the
 * same results as the general code they bypass: the native base64 codec, the
 * UTF-8 helpers, OpenSSL's HMAC-SHA-512 behind the node:crypto backend, the random
 * pool, in-place decryption, and the value encoder's ASCII path.
 */
import { createHmac } from 'node:crypto';
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleAesGcm } from '../src/core/aead/noble.js';
import { LocalKeyring, decrypt, decryptObject, encrypt, encryptObject } from '../src/index.js';
import * as nodeEntry from '../src/index.js';
import { base64Decode, base64DecodeAscii, base64Encode, base64UrlDecode, base64UrlEncode } from '../src/internal/base64.js';
import { utf8DecodeStrict, utf8Encode, utf8Length } from '../src/internal/bytes.js';
import { randomBytes, randomPublicBytes } from '../src/internal/random.js';
import { deriveFieldKeys, deriveKeys, deriveRecordKeys, hmacOf, nobleHmacSha512 } from '../src/core/kdf.js';
import { nodeAesGcm } from '../src/node.js';
import { _encoderSpare, decodeValue, encodeValue } from '../src/records/value-encoding.js';
import { numRuns, utf8 } from './core-helpers.js';

const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \u00e9';

describe('base64 on the native codec', () => {
  it('property: accepts exactly what the strict decoder accepts, with the same bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...STD.split('')), maxLength: 14 }), (s) => {
        const native = base64Decode(s);
        const strict = base64DecodeAscii(new TextEncoder().encode(s)); // the JS decoder
        expect(native === undefined).toBe(strict === undefined);
        if (native && strict) expect(Buffer.from(native).equals(Buffer.from(strict))).toBe(true);
      }),
      { numRuns: numRuns(20000) },
    );
  });

  it('property: round trips, matches Buffer, and returns arrays of their own', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        expect(base64UrlEncode(b)).toBe(Buffer.from(b).toString('base64url'));
        expect(base64Encode(b)).toBe(Buffer.from(b).toString('base64'));
        const back = base64UrlDecode(base64UrlEncode(b))!;
        expect(Buffer.from(back).equals(Buffer.from(b))).toBe(true);
        expect(back.byteOffset).toBe(0);
        expect(back.buffer.byteLength).toBe(back.length); // not a slice of Buffer's shared pool
      }),
      { numRuns: numRuns(2000) },
    );
  });
});

describe('UTF-8 helpers', () => {
  it('property: utf8Encode and utf8Length agree with TextEncoder, lone surrogates included', () => {
    const unit = fc.oneof(fc.constantFrom('a', '\u00e9', '\u20ac', '\ud83d', '\ude00', '\ud83d\ude00'), fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)));
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 80 }), (s) => {
        const want = new TextEncoder().encode(s);
        expect(utf8Length(s)).toBe(want.length);
        expect(Buffer.from(utf8Encode(s)).equals(Buffer.from(want))).toBe(true);
      }),
      { numRuns: numRuns(5000) },
    );
  });
});

describe('strict UTF-8 decoding', () => {
  it('property: utf8DecodeStrict (ASCII built directly when short) gives what a fatal TextDecoder gives, or undefined where it throws', () => {
    const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    const byte = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 0x7f }) }, { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) });
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 100 }), fc.nat(8), (list, at) => {
        // Also as a view that does not start at the start of its buffer.
        const whole = Uint8Array.from([...new Array<number>(at).fill(0x41), ...list]);
        const bytes = whole.subarray(at);
        let expected: string | undefined;
        try {
          expected = strict.decode(bytes);
        } catch {
          expected = undefined;
        }
        expect(utf8DecodeStrict(bytes)).toBe(expected);
      }),
      { numRuns: numRuns(500) },
    );
    expect(utf8DecodeStrict(utf8('\ufeffa'))).toBe('\ufeffa'); // a BOM is kept, as the decoder keeps it
  });
});

describe('HMAC-SHA-512 of the node:crypto backend', () => {
  it('property: equals @noble/hashes and node:crypto, and returns an array of its own', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 300 }), (k, m) => {
        const got = nodeAesGcm.hmacSha512!(k, m);
        expect(got.length).toBe(64);
        expect(got.buffer.byteLength).toBe(64); // not a slice of Buffer's shared pool: the caller may wipe it
        expect(Buffer.from(got).equals(Buffer.from(hmac(sha512, k, m)))).toBe(true);
        expect(Buffer.from(got).equals(createHmac('sha512', k).update(m).digest())).toBe(true);
      }),
      { numRuns: numRuns(500) },
    );
  });

  it('property: gives the key schedule the same keys as the portable one (every derivation of SPEC.md §3.3 and §12.2)', () => {
    fc.assert(
      fc.property(fc.constantFrom(16, 32), fc.uint8Array({ maxLength: 80 }), (n, binding) => {
        const dataKey = randomBytes(n);
        const messageId = randomBytes(16);
        const node = hmacOf(nodeAesGcm);
        expect(hmacOf(nobleAesGcm)).toBe(nobleHmacSha512);
        for (const [a, b] of [
          [deriveKeys(dataKey, messageId, binding), deriveKeys(dataKey, messageId, binding, node)],
          [deriveRecordKeys(dataKey, messageId), deriveRecordKeys(dataKey, messageId, node)],
          [deriveFieldKeys(dataKey, binding), deriveFieldKeys(dataKey, binding, node)],
        ] as const) {
          expect(Buffer.from(a.bytes).toString('hex')).toBe(Buffer.from(b.bytes).toString('hex'));
          expect(Buffer.from(a.key).equals(Buffer.from(a.bytes.subarray(0, 32)))).toBe(true);
          expect(Buffer.from(a.commitment).equals(Buffer.from(a.bytes.subarray(32)))).toBe(true);
        }
      }),
      { numRuns: numRuns(200) },
    );
  });

  it('a backend whose HMAC does not return 64 bytes is refused, and what it returned is wiped', async () => {
    const keyring = new LocalKeyring();
    const { keyId } = keyring.createKey();
    for (const n of [32, 63, 65]) {
      const returned: Uint8Array[] = [];
      const bad = {
        ...nobleAesGcm,
        hmacSha512: (k: Uint8Array, m: Uint8Array) => {
          const out = new Uint8Array(n);
          out.set(hmac(sha512, k, m).subarray(0, Math.min(n, 64)));
          returned.push(out);
          return out;
        },
      };
      await expect(encrypt(utf8('x'), { provider: keyring, keyId, aead: bad })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
      expect(returned).toHaveLength(1);
      expect(returned[0]!.every((b) => b === 0)).toBe(true);
    }
    const notBytes = { ...nobleAesGcm, hmacSha512: () => 'not bytes' };
    await expect(encrypt(utf8('x'), { provider: keyring, keyId, aead: notBytes as never })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMETER' });
  });
});

describe('random pool', () => {
  it('hands out distinct bytes across refills, of every small length', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const n = 8 + (i % 57); // 8..64 bytes: pooled sizes, crossing the 1 KiB refill at varying offsets
      const b = i % 2 ? randomPublicBytes(n) : randomBytes(n);
      expect(b.length).toBe(n);
      const h = Buffer.from(b).toString('hex');
      expect(seen.has(h)).toBe(false);
      seen.add(h);
    }
    expect(randomPublicBytes(100).length).toBe(100); // larger requests bypass the pool
  });
});

describe('decryption in place', () => {
  const keyring = new LocalKeyring();
  const { keyId } = keyring.createKey();

  it('gives the same plaintext with in-place backends, a copying backend, and from shared memory', async () => {
    const pt = randomBytes(64 * 1024 + 3).fill(7, 0, 10);
    const env = await nodeEntry.encrypt(pt, { provider: keyring, keyId });
    const copying = { name: 'copying', seal: nobleAesGcm.seal, open: nobleAesGcm.open };
    const shared = new Uint8Array(new SharedArrayBuffer(env.length));
    shared.set(env);
    for (const [bytes, aead] of [
      [env, nodeAesGcm],
      [env, nobleAesGcm],
      [env, copying],
      [shared, nodeAesGcm],
      [Buffer.from(env), nodeAesGcm],
    ] as const) {
      const { plaintext } = await decrypt(bytes, { provider: keyring, aead });
      expect(Buffer.from(plaintext).equals(Buffer.from(pt))).toBe(true);
      expect(plaintext.buffer).not.toBe(bytes.buffer);
    }
  });

  it('a tampered body still fails on both in-place backends', async () => {
    const env = await encrypt(utf8('secret stuff'), { provider: keyring, keyId });
    env[env.length - 20]! ^= 1;
    for (const aead of [nodeAesGcm, nobleAesGcm]) {
      await expect(decrypt(env, { provider: keyring, aead })).rejects.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
    }
  });
});

describe('value encoding fast paths', () => {
  it('ASCII strings around the one-byte length limit, and non-ASCII ones, round trip through objects', async () => {
    const keyring = new LocalKeyring();
    const { keyId } = keyring.createKey();
    const values = [
      'a'.repeat(126),
      'a'.repeat(127),
      'a'.repeat(128),
      'abc\u00e9',
      'x'.repeat(100) + '\ud800',
      { constructor: 'c', toString: 's', __proto__x: 1, ['__proto__']: 2 },
      Object.assign(Object.create(null), { a: 1 }),
    ];
    for (const v of values) {
      expect(decodeValue(encodeValue(v))).toEqual(v);
      expect(await decryptObject(await encryptObject(v, { provider: keyring, keyId }), { provider: keyring })).toEqual(v);
    }
    // ASCII strings are stored as tag, one length byte, the bytes.
    expect([...encodeValue('ab')]).toEqual([0x01, 0x05, 0x02, 0x61, 0x62]);
  });

  it('property: the decoder\'s short-ASCII path reads any bytes in the UTF-8 tag exactly as TextDecoder does', () => {
    const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    // Mostly ASCII, with a few bytes of every other kind (UTF-8 lead and continuation bytes, invalid ones) anywhere.
    const byte = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 0x7f }) }, { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) });
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 80 }), (bytes) => {
        const encoded = Uint8Array.of(0x01, 0x05, bytes.length, ...bytes);
        let expected: string | undefined;
        try {
          expected = strict.decode(Uint8Array.from(bytes));
        } catch {
          expected = undefined;
        }
        if (expected === undefined) expect(() => decodeValue(encoded)).toThrow(expect.objectContaining({ code: 'ERR_MALFORMED_VALUE' }));
        else expect(decodeValue(encoded)).toBe(expected);
      }),
      { numRuns: numRuns(500) },
    );
    // Every length around the eight-character steps and the limit of the path, ASCII and not.
    for (let n = 0; n <= 70; n++) {
      for (const s of ['k'.repeat(n), 'k'.repeat(n) + '\u00e9', '\u00e9' + 'k'.repeat(n)]) expect(decodeValue(encodeValue({ [s]: s }))).toEqual({ [s]: s });
    }
  });

  it('the encoder leaves its reused buffer zeroed after values short and long, non-ASCII, outgrown, and after a failure', () => {
    const spare = _encoderSpare()!;
    const zeroed = (): boolean => spare.every((x) => x === 0);
    const values: unknown[] = ['short', { a: 'k'.repeat(127), b: -0, c: 2n ** 70n }, { b: 'é'.repeat(300) }, 'x\ud800'.repeat(100), { a: 'x'.repeat(5000) }];
    for (const v of values) {
      expect(decodeValue(encodeValue(v))).toEqual(v);
      expect(_encoderSpare()).toBe(spare);
      expect(zeroed()).toBe(true);
    }
    expect(() => encodeValue({ a: 'secret'.repeat(20), f: () => 0 })).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED_VALUE' }));
    expect(zeroed()).toBe(true);
    // A getter that encodes while the buffer is lent out: the inner encoder makes its own.
    const nested = { get a() { return encodeValue('inner ' + 'y'.repeat(50)).length; } };
    expect(decodeValue(encodeValue(nested))).toEqual({ a: 59 });
    expect(zeroed()).toBe(true);
  });

  it('encryptObject seals from the lent encoder buffer: values encrypted at once, around a slow provider, each decrypt as given', async () => {
    const keyring = new LocalKeyring();
    const { keyId } = keyring.createKey();
    let inFlight = 0;
    let most = 0;
    // While one value's encoding waits for its data key, the others are encoded (in buffers of their own).
    const slow = {
      providerId: 'local',
      async generateDataKey(r: Parameters<LocalKeyring['generateDataKey']>[0]) {
        most = Math.max(most, ++inFlight);
        await new Promise((f) => setTimeout(f, 5));
        inFlight--;
        return keyring.generateDataKey(r);
      },
      decrypt: (r: Parameters<LocalKeyring['decrypt']>[0]) => keyring.decrypt(r),
    };
    const values = Array.from({ length: 6 }, (_, i) => ({ i, name: 'n'.repeat(i * 40), bytes: new Uint8Array(i * 30).fill(i) }));
    const texts = await Promise.all(values.map((v) => encryptObject(v, { provider: slow, keyId })));
    expect(most).toBe(values.length);
    for (const [i, t] of texts.entries()) expect(await decryptObject(t, { provider: keyring })).toEqual(values[i]);
    expect(_encoderSpare()!.every((x) => x === 0)).toBe(true);
    // A value that cannot be encoded, or a provider that fails, leaves it zeroed too.
    await expect(encryptObject({ a: 'x'.repeat(50), f: () => 0 }, { provider: keyring, keyId })).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_VALUE' });
    await expect(encryptObject({ a: 'x'.repeat(50) }, { provider: keyring, keyId: 'missing' })).rejects.toMatchObject({ code: 'ERR_KEY_NOT_FOUND' });
    expect(_encoderSpare()!.every((x) => x === 0)).toBe(true);
  });

  it('keeps "__proto__" as an own property and does not touch Object.prototype', () => {
    const v = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    const back = decodeValue(encodeValue(v)) as Record<string, unknown>;
    expect(Object.prototype.hasOwnProperty.call(back, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
