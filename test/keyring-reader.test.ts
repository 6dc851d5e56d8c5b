/**
 * The keyring file's shape reader (SPEC.md §7), which replaced zod: every rule
 * broken gives KeyringFileError `'keyring file is malformed'` with a TypeError
 * cause naming the JSON path and the rule (never a value, never a ZodError);
 * arbitrary values in any field give the library's own error, never a crash.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { KeyringFileError, LocalKeyring, isEnvelopeKitError } from '../src/index.js';
import { parseKeyring, serializeKeyring } from '../src/providers/local/file-format.js';
import { numRuns } from './core-helpers.js';

const NONE = { protection: 'none' } as const;
type Json = Record<string, unknown>;

let valid: Json;
let material: string;
beforeAll(async () => {
  const kr = new LocalKeyring();
  const { keyId } = kr.createKey({ alias: 'alias/app', description: 'd' });
  kr.rotateKey(keyId);
  kr.createKey();
  valid = JSON.parse(await serializeKeyring(kr, NONE)) as Json;
  material = valid.material as string;
});

/** A deep copy of the valid file with one change. */
function mutate(change: (f: Json & { keys: Json[]; protection: Json; aliases: Json }) => void): string {
  const f = structuredClone(valid) as Json & { keys: Json[]; protection: Json; aliases: Json };
  change(f);
  return JSON.stringify(f);
}

async function malformed(text: string, path: string): Promise<void> {
  const err = await parseKeyring(text, NONE).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KeyringFileError);
  expect(isEnvelopeKitError(err, 'ERR_KEYRING_FILE')).toBe(true);
  const e = err as KeyringFileError;
  expect(e.message).toBe('keyring file is malformed');
  expect(e.cause).toBeInstanceOf(TypeError);
  expect((e.cause as Error).message.startsWith(`${path}: `), (e.cause as Error).message).toBe(true);
  expect((e.cause as Error).constructor.name).not.toMatch(/Zod/);
  expect(`${e.message} ${(e.cause as Error).message}`).not.toContain(material.slice(0, 16));
}

describe('keyring file reader', () => {
  it('reads the file serializeKeyring writes', async () => {
    const kr = await parseKeyring(JSON.stringify(valid), NONE);
    expect(kr.listKeys()).toHaveLength(2);
  });

  const cases: [string, string, (f: Json & { keys: Json[]; protection: Json; aliases: Json }) => void][] = [
    ['an extra top-level property', '$', (f) => (f.extra = 1)],
    ['a __proto__ property', '$', (f) => Object.defineProperty(f, '__proto__', { value: {}, enumerable: true })],
    ['generation missing', '$.generation', (f) => delete f.generation],
    ['generation a string', '$.generation', (f) => (f.generation = '1')],
    ['generation negative', '$.generation', (f) => (f.generation = -1)],
    ['generation fractional', '$.generation', (f) => (f.generation = 1.5)],
    ['generation beyond 2^53', '$.generation', (f) => (f.generation = 2 ** 53)],
    ['protection an array', '$.protection.kind', (f) => (f.protection = [] as never)],
    ['protection of an unknown kind', '$.protection.kind', (f) => (f.protection = { kind: 'rot13' })],
    ['protection none with more', '$.protection', (f) => (f.protection.N = 2)],
    ['keys not an array', '$.keys', (f) => (f.keys = {} as never)],
    ['a key that is null', '$.keys[1]', (f) => (f.keys[1] = null as never)],
    ['a key id with a bad character', '$.keys[0].keyId', (f) => (f.keys[0]!.keyId = 'a/b')],
    ['a key id too long', '$.keys[0].keyId', (f) => (f.keys[0]!.keyId = 'a'.repeat(65))],
    ['an unknown state', '$.keys[0].state', (f) => (f.keys[0]!.state = 'Gone')],
    ['a description with a lone surrogate', '$.keys[0].description', (f) => (f.keys[0]!.description = '\ud800')],
    ['a key with no versions', '$.keys[0].versions', (f) => (f.keys[0]!.versions = [])],
    ['version 0', '$.keys[0].versions[1].version', (f) => ((f.keys[0]!.versions as Json[])[1]!.version = 0)],
    ['version past the maximum', '$.keys[0].versions[0].version', (f) => ((f.keys[0]!.versions as Json[])[0]!.version = 0x4000)],
    ['a version with an extra property', '$.keys[0].versions[0]', (f) => ((f.keys[0]!.versions as Json[])[0]!.material = 'x')],
    ['a createdAt number', '$.keys[1].createdAt', (f) => (f.keys[1]!.createdAt = 5)],
    ['aliases an array', '$.aliases', (f) => (f.aliases = [] as never)],
    ['an alias to a number', '$.aliases[*]', (f) => (f.aliases['alias/app'] = 7)],
    ['material a number', '$.material', (f) => (f.material = 1)],
    ['checksum null', '$.checksum', (f) => (f.checksum = null)],
  ];
  for (const [what, path, change] of cases) {
    it(`${what}: KeyringFileError at ${path}`, async () => {
      await malformed(mutate(change), path);
    });
  }

  it('any JSON value in any field gives a KeyringFileError or a keyring, never another error', async () => {
    const fields = ['format', 'version', 'generation', 'protection', 'keys', 'aliases', 'material', 'checksum', 'extra'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...fields), fc.jsonValue({ maxDepth: 2 }), fc.boolean(), async (field, value, inKey) => {
        const text = mutate((f) => {
          if (inKey) f.keys[0]![field] = value;
          else f[field] = value;
        });
        try {
          await parseKeyring(text, NONE);
        } catch (e) {
          expect(e).toBeInstanceOf(KeyringFileError);
        }
      }),
      { numRuns: numRuns(200) },
    );
  });
});
