/**
 * Errors as a user meets them outside the sources: after minification (every
 * class keeps its literal `name`, in `name` and in the stack), and in a process
 * that loads both the ESM and the CommonJS build (`instanceof` and
 * `isEnvelopeKitError` work across the two, class by class). Needs `dist/`
 * (`npm test` builds it first).
 */
import { createRequire } from 'node:module';
import util from 'node:util';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import * as source from '../src/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
type Entry = typeof source;
const esm = (await import(pathToFileURL(path.join(root, 'dist', 'index.js')).href)) as Entry;
const cjs = createRequire(import.meta.url)(path.join(root, 'dist', 'index.cjs')) as Entry;

/** One instance of every error class, made by the given build. */
function samples(m: Entry) {
  return {
    EnvelopeKitError: new m.EnvelopeKitError('ERR_PROVIDER', 'base'),
    InvalidParameterError: new m.InvalidParameterError('m'),
    MalformedEnvelopeError: new m.MalformedEnvelopeError('m'),
    UnsupportedVersionError: new m.UnsupportedVersionError('version', 2),
    NoMatchingProviderError: new m.NoMatchingProviderError('m'),
    KeyNotFoundError: new m.KeyNotFoundError('m'),
    KeyDisabledError: new m.KeyDisabledError('m'),
    DecryptionFailedError: new m.DecryptionFailedError(),
    ProviderError: new m.ProviderError('m'),
    KeyringFileError: new m.KeyringFileError('m'),
    UnsupportedValueError: new m.UnsupportedValueError('$', 'm'),
    MalformedValueError: new m.MalformedValueError('m'),
    SchemaMismatchError: new m.SchemaMismatchError([{ path: '$', code: 'invalid_type' }]),
    UnencryptedFieldError: new m.UnencryptedFieldError('$.a'),
    FieldNotFoundError: new m.FieldNotFoundError('a'),
  } as const;
}
const CLASSES = Object.keys(samples(esm)) as (keyof ReturnType<typeof samples>)[];
const SUBCLASSES = CLASSES.filter((c) => c !== 'EnvelopeKitError');

describe('names after minification', () => {
  it('every class has a literal name and a static code equal to its instances\' code, in the minified bundle too', async () => {
    const r = await build({
      stdin: { contents: "export * from 'envelope-kit';", resolveDir: root, loader: 'js' },
      bundle: true,
      minify: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    const code = r.outputFiles[0]!.text;
    // The bundle's classes were renamed (the test would prove nothing otherwise).
    expect(code).not.toMatch(/class DecryptionFailedError\b/);
    const minified = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as Entry;
    for (const m of [minified, esm, cjs, source]) {
      const s = samples(m);
      for (const name of CLASSES) {
        const e = s[name];
        expect(e.name).toBe(name);
        expect(String(e.stack).split('\n')[0]!.startsWith(`${name}: `)).toBe(true);
        expect(util.inspect(e).startsWith(`${name}: `)).toBe(true);
        if (name !== 'EnvelopeKitError') expect((m[name] as unknown as { code: string }).code).toBe(e.code);
      }
      expect(m.EnvelopeKitError.code).toBeUndefined();
      expect(String(new m.DecryptionFailedError())).toBe('DecryptionFailedError: decryption failed');
    }
  });
});

describe('instanceof and isEnvelopeKitError across the ESM and CommonJS builds', () => {
  it('the two builds are two copies of the classes (the test would prove nothing otherwise)', () => {
    expect(esm.DecryptionFailedError).not.toBe(cjs.DecryptionFailedError);
    expect(Object.getPrototypeOf(samples(cjs).DecryptionFailedError)).not.toBe(esm.DecryptionFailedError.prototype);
  });

  for (const [from, to, fromName, toName] of [
    [cjs, esm, 'CommonJS', 'ESM'],
    [esm, cjs, 'ESM', 'CommonJS'],
    [source, esm, 'source', 'ESM'],
  ] as const) {
    it(`an error of the ${fromName} build is an instance of exactly its own class of the ${toName} build`, () => {
      const s = samples(from);
      for (const made of CLASSES) {
        const e = s[made];
        expect(e instanceof to.EnvelopeKitError).toBe(true);
        expect(e instanceof Error).toBe(true);
        expect(to.isEnvelopeKitError(e)).toBe(true);
        expect(to.isEnvelopeKitError(e, e.code)).toBe(true);
        for (const asked of SUBCLASSES) {
          // Only the class with the same code family; the base class (code ERR_PROVIDER here) is a ProviderError by code.
          const same = asked === made || (made === 'EnvelopeKitError' && asked === 'ProviderError');
          expect(e instanceof (to[asked] as unknown as new () => unknown), `${made} instanceof ${asked}`).toBe(same);
        }
      }
      expect(to.isEnvelopeKitError(s.DecryptionFailedError, 'ERR_PROVIDER')).toBe(false);
    });
  }

  it('a real failure thrown by one build is recognised by the other', async () => {
    const keyring = new cjs.LocalKeyring();
    const { keyId } = keyring.createKey();
    const envelope = await cjs.encrypt(new Uint8Array([1, 2, 3]), { provider: keyring, keyId });
    envelope[envelope.length - 1]! ^= 1;
    const err = await esm.decrypt(envelope, { providers: [keyring] }).catch((e: unknown) => e);
    expect(err instanceof cjs.DecryptionFailedError).toBe(true);
    expect(err instanceof esm.DecryptionFailedError).toBe(true);
    expect(err instanceof cjs.MalformedEnvelopeError).toBe(false);
    expect(cjs.isEnvelopeKitError(err, 'ERR_DECRYPTION_FAILED')).toBe(true);
    const malformed = await cjs.decrypt(new Uint8Array(3), { providers: [keyring] }).catch((e: unknown) => e);
    expect(malformed instanceof esm.MalformedEnvelopeError).toBe(true);
    expect(esm.isEnvelopeKitError(malformed, 'ERR_MALFORMED_ENVELOPE')).toBe(true);
  });

  it('a class of the caller\'s own that extends one of these is checked by prototype only', () => {
    class AppError extends esm.ProviderError {}
    expect(new AppError('m') instanceof AppError).toBe(true);
    expect(new AppError('m') instanceof esm.ProviderError).toBe(true);
    expect(new AppError('m') instanceof cjs.ProviderError).toBe(true);
    expect(samples(esm).ProviderError instanceof AppError).toBe(false);
    expect(samples(cjs).ProviderError instanceof AppError).toBe(false);
  });

  it('nothing else passes: plain errors, look-alikes without the brand, primitives, hostile proxies', () => {
    const lookAlike = Object.assign(new Error('decryption failed'), { code: 'ERR_DECRYPTION_FAILED', name: 'DecryptionFailedError' });
    const throwing = new Proxy({}, { get: () => { throw new Error('trap'); }, getPrototypeOf: () => { throw new Error('trap'); } });
    for (const v of [lookAlike, new Error('x'), null, undefined, 0, 'ERR_PROVIDER', {}, () => 1]) {
      for (const m of [esm, cjs]) {
        expect(m.isEnvelopeKitError(v)).toBe(false);
        expect(v instanceof m.EnvelopeKitError).toBe(false);
        expect(v instanceof m.DecryptionFailedError).toBe(false);
      }
    }
    expect(esm.isEnvelopeKitError(throwing)).toBe(false);
  });
});
