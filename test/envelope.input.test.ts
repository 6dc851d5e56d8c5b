/**
 * Hostile byte arrays and objects at the envelope boundary: detached buffers, typed arrays whose
 * `length` lies or that only claim to be a Uint8Array, text forms too long for a string, and
 * caller objects whose properties change between reads. Each gets the library's own error, and
 * every caller-supplied property is read once.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { AesGcm } from '../src/core/aead/types.js';
import { nobleAesGcm } from '../src/core/aead/noble.js';
import { MAX_TEXT_ENVELOPE_BYTES, MAX_TEXT_LENGTH, textVersion } from '../src/core/format.js';
import { LABELS } from '../src/core/kdf.js';
import { byteView, isBytes } from '../src/internal/bytes.js';
import {
  LocalKeyring,
  decrypt,
  decryptText,
  encrypt,
  encryptObject,
  encryptText,
  envelopeToText,
  inspect,
} from '../src/index.js';
import type { KeyProvider } from '../src/core/provider.js';
import { expectCode, utf8 } from './core-helpers.js';

function keyring(): { kr: LocalKeyring; keyId: string } {
  const kr = new LocalKeyring();
  return { kr, keyId: kr.createKey().keyId };
}

/** A view whose ArrayBuffer was transferred away. */
function detached(n = 8): Uint8Array {
  const buf = new ArrayBuffer(n);
  const view = new Uint8Array(buf);
  structuredClone(buf, { transfer: [buf] });
  return view;
}

/** A resizable ArrayBuffer (ES2024; the project's TypeScript lib is older). */
interface ResizableBuffer extends ArrayBuffer {
  resize(n: number): void;
}
function resizable(n: number): ResizableBuffer {
  const Ctor = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ResizableBuffer;
  return new Ctor(n, { maxByteLength: n });
}

/** A Uint8Array subclass whose `length` says `n`. */
function lyingLength(n: number): Uint8Array {
  class Liar extends Uint8Array {
    override get length(): number {
      return n;
    }
  }
  return new Liar(4);
}

describe('isBytes and byteView', () => {
  it('accept Uint8Array and its subclasses (Buffer), and nothing that only claims to be one', () => {
    expect(isBytes(new Uint8Array(3))).toBe(true);
    expect(isBytes(Buffer.from('abc'))).toBe(true);
    // A typed array of another kind whose constructor is named Uint8Array.
    const Uint8ArrayImpostor = { Uint8Array: class Uint8Array extends Uint16Array {} }.Uint8Array;
    const claims = [
      new Uint8ArrayImpostor(4),
      Object.defineProperty(new Int8Array(4), 'constructor', { value: { name: 'Uint8Array' } }),
      Object.create(Uint8Array.prototype),
      new Proxy(new Uint8Array(4), {}),
      new DataView(new ArrayBuffer(4)),
      { length: 4, 0: 1, constructor: Uint8Array },
    ];
    for (const c of claims) expect(isBytes(c)).toBe(false);
  });

  it('refuse a view of a detached buffer and a length that lies, own or inherited', () => {
    expect(isBytes(detached())).toBe(false);
    expect(isBytes(lyingLength(2 ** 31))).toBe(false);
    expect(isBytes(Object.defineProperty(new Uint8Array(4), 'length', { value: 1 }))).toBe(false);
    expect(isBytes(Object.defineProperty(new Uint8Array(4), 'length', { get: () => { throw new Error('x'); } }))).toBe(false);
    expect(isBytes(new Uint8Array(0))).toBe(true);
    expect(isBytes(new Uint8Array(new SharedArrayBuffer(0)))).toBe(true);
  });

  it('byteView is a plain view of the same memory, whatever the subclass says', () => {
    const b = Buffer.from('hello world');
    const v = byteView(b.subarray(6))!;
    expect(Object.getPrototypeOf(v)).toBe(Uint8Array.prototype);
    expect(new TextDecoder().decode(v)).toBe('world');
    v[0] = 0x57;
    expect(b.toString()).toBe('hello World');
    expect(byteView(detached())).toBeUndefined();
  });
});

describe('hostile byte arrays get the library\u2019s errors', () => {
  it('a detached ArrayBuffer as plaintext or envelope', async () => {
    const { kr, keyId } = keyring();
    await expectCode(() => encrypt(detached(), { provider: kr, keyId }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => encryptText(detached(), { provider: kr, keyId }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => decrypt(detached(200), { provider: kr }), 'ERR_MALFORMED_ENVELOPE');
    expect(() => inspect(detached(200))).toThrow(expect.objectContaining({ code: 'ERR_MALFORMED_ENVELOPE' }));
    expect(() => envelopeToText(detached(200))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PARAMETER' }));
  });

  it('a plaintext whose buffer is transferred while the provider is awaited is refused, not sealed as empty', async () => {
    const { kr, keyId } = keyring();
    const buf = new ArrayBuffer(64);
    const plaintext = new Uint8Array(buf).fill(7);
    const thief: KeyProvider = {
      providerId: 'local',
      generateDataKey: async (r) => {
        structuredClone(buf, { transfer: [buf] });
        return kr.generateDataKey(r);
      },
      decrypt: (r) => kr.decrypt(r),
    };
    await expectCode(() => encrypt(plaintext, { provider: thief, keyId }), 'ERR_INVALID_PARAMETER');
  });

  it('a view that a shrunk resizable buffer left out of bounds, before or while the provider is awaited', async () => {
    const { kr, keyId } = keyring();
    const gone = resizable(64);
    const outOfBounds = new Uint8Array(gone, 0, 64);
    gone.resize(8);
    expect(isBytes(outOfBounds)).toBe(false);
    await expectCode(() => encrypt(outOfBounds, { provider: kr, keyId }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => decrypt(outOfBounds, { provider: kr }), 'ERR_MALFORMED_ENVELOPE');
    const rab = resizable(64);
    const shrinker: KeyProvider = {
      providerId: 'local',
      generateDataKey: async (r) => {
        rab.resize(8);
        return kr.generateDataKey(r);
      },
      decrypt: (r) => kr.decrypt(r),
    };
    await expectCode(() => encrypt(new Uint8Array(rab, 0, 64), { provider: shrinker, keyId }), 'ERR_INVALID_PARAMETER');
  });

  it('a Uint8Array subclass whose length lies is refused at once (encrypt, decrypt, inspect, encryptObject)', async () => {
    const { kr, keyId } = keyring();
    const liar = lyingLength(2 ** 31);
    const started = Date.now();
    await expectCode(() => encrypt(liar, { provider: kr, keyId }), 'ERR_INVALID_PARAMETER');
    await expectCode(() => decrypt(liar, { provider: kr }), 'ERR_MALFORMED_ENVELOPE');
    expect(() => inspect(liar)).toThrow(expect.objectContaining({ code: 'ERR_MALFORMED_ENVELOPE' }));
    await expectCode(() => encryptObject(liar, { provider: kr, keyId }), 'ERR_UNSUPPORTED_VALUE');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('an envelope too long for the text form is refused (before the provider is asked, for encryptText)', async () => {
    expect(MAX_TEXT_LENGTH).toBe(2 ** 29 - 24);
    expect(MAX_TEXT_ENVELOPE_BYTES).toBe(402_653_163);
    let asked = 0;
    const { kr, keyId } = keyring();
    const counting: KeyProvider = {
      providerId: 'local',
      generateDataKey: (r) => (asked++, kr.generateDataKey(r)),
      decrypt: (r) => kr.decrypt(r),
    };
    const big = new Uint8Array(MAX_TEXT_ENVELOPE_BYTES + 1);
    expect(() => envelopeToText(big)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PARAMETER' }));
    await expectCode(() => encryptText(big, { provider: counting, keyId }), 'ERR_INVALID_PARAMETER');
    expect(asked).toBe(0);
  });
});

describe('caller-supplied properties are read once', () => {
  it('a providerId getter that changes between reads cannot make encrypt write an envelope inspect rejects', async () => {
    const { kr, keyId } = keyring();
    let reads = 0;
    const shifty = {
      get providerId() {
        reads++;
        return reads === 1 ? 'local' : 'NOT A PROVIDER ID';
      },
      generateDataKey: (r: never) => kr.generateDataKey(r),
      decrypt: (r: never) => kr.decrypt(r),
    } as KeyProvider;
    const env = await encrypt(utf8('x'), { provider: shifty, keyId });
    expect(reads).toBe(1);
    expect(inspect(env).encryptedDataKeys[0]!.providerId).toBe('local');
    expect(new TextDecoder().decode((await decrypt(env, { provider: kr })).plaintext)).toBe('x');
  });

  it('decrypt reads providerId and the methods once per call, and calls them on the provider', async () => {
    const { kr, keyId } = keyring();
    const env = await encrypt(utf8('x'), { provider: kr, keyId });
    const reads: string[] = [];
    let self: unknown;
    const target = {
      providerId: 'local',
      generateDataKey(this: unknown, r: never) {
        self = this;
        return kr.generateDataKey(r);
      },
      decrypt(this: unknown, r: never) {
        self = this;
        return kr.decrypt(r);
      },
    };
    const provider = new Proxy(target, {
      get(t, k, rcv) {
        reads.push(String(k));
        return Reflect.get(t, k, rcv);
      },
    });
    await decrypt(env, { provider: provider as KeyProvider });
    // the optional encrypt, reEncrypt and describeBlob are read once too (absent here)
    expect(reads.sort()).toEqual(['decrypt', 'describeBlob', 'encrypt', 'generateDataKey', 'providerId', 'reEncrypt']);
    expect(self).toBe(provider);
    reads.length = 0;
    self = undefined;
    await encrypt(utf8('y'), { provider: provider as KeyProvider, keyId });
    expect(reads.sort()).toEqual(['decrypt', 'describeBlob', 'encrypt', 'generateDataKey', 'providerId', 'reEncrypt']);
    expect(self).toBe(provider);
  });

  it('an aead backend whose members change after the check is used as it was checked', async () => {
    const { kr, keyId } = keyring();
    let sealReads = 0;
    const backend = {
      name: 'counting',
      get seal() {
        sealReads++;
        return sealReads === 1 ? nobleAesGcm.seal : () => { throw new Error('swapped'); };
      },
      open: nobleAesGcm.open,
    } as unknown as AesGcm;
    const env = await encrypt(utf8('x'), { provider: kr, keyId, aead: backend });
    expect(sealReads).toBe(1);
    expect(new TextDecoder().decode((await decrypt(env, { provider: kr })).plaintext)).toBe('x');
  });
});

describe('format details', () => {
  it('HKDF labels name the format version, the suite and the layout (SPEC.md §3.3, §12.2)', () => {
    expect(LABELS.singlePass).toBe('envelope-kit/v1/suite-01/layout-00/keys');
    expect(LABELS.fieldRecord).toBe('envelope-kit/v1/suite-01/layout-01/keys');
    expect(LABELS.field).toBe('envelope-kit/v1/suite-01/layout-01/field');
  });

  it('a version prefix is "ek" + 1..255 in canonical decimal + "." (SPEC.md §4)', async () => {
    for (const [prefix, version] of [['ek1.', 1], ['ek2.', 2], ['ek10.', 10], ['ek99.', 99], ['ek255.', 255]] as const) {
      expect(textVersion(`${prefix}AAAA`)).toBe(version);
    }
    for (const prefix of ['ek0.', 'ek00.', 'ek01.', 'ek09.', 'ek010.', 'ek256.', 'ek999.', 'ek1000.', 'EK2.', 'ek.', 'ek2', 'ekh1.', ' ek2.']) {
      expect(textVersion(`${prefix}AAAA`), prefix).toBeUndefined();
    }
    const { kr } = keyring();
    await expectCode(() => decryptText('ek3.AAAA', { provider: kr }), 'ERR_UNSUPPORTED_VERSION');
    await expectCode(() => decryptText('ek03.AAAA', { provider: kr }), 'ERR_MALFORMED_ENVELOPE');
  });
});

describe('the public randomness pool (src/internal/random.ts)', () => {
  it('serves message ids and local key ids only: never a key, a blob nonce or any nonce under a long-lived key', () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
    const uses: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts') && p !== path.join(root, 'internal', 'random.ts')) {
          for (const m of readFileSync(p, 'utf8').matchAll(/randomPublicBytes\(([^)]*)\)/g)) {
            uses.push(`${path.relative(root, p).split(path.sep).join('/')}: ${m[1]}`);
          }
        }
      }
    };
    walk(root);
    expect(uses.sort()).toEqual([
      'core/envelope.ts: MESSAGE_ID_LENGTH',
      // Local key ids: the short form (6 bytes) and the UUID form (16 bytes, keyIdFormat: 'uuid').
      'providers/local/keyring.ts: 16',
      'providers/local/keyring.ts: 6',
    ]);
  });
});
