/**
 * The published bundle in real runtimes: headless Chromium, workerd and @edge-runtime/vm run the
 * cases of test/browser/suite.ts on an esbuild bundle of dist/ (no Node polyfills), with a
 * keyring file and envelopes made here in Node, and hand back what they made, which Node opens.
 * A failing case fails here, with what the runtime printed (console, page errors) in the message.
 * Needs dist/ (`npm test` builds it) and /usr/bin/chromium (.ci/run installs it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LocalKeyring,
  createBlindIndexKey,
  decrypt,
  decryptFields,
  decryptObject,
  decryptText,
  encrypt,
  encryptFields,
  encryptObject,
  encryptStream,
  encryptText,
  openBlindIndex,
  serializeKeyring,
} from '../src/index.js';
import { startKmsEmulator, type KmsEmulator } from '../src/providers/alibaba/emulator/index.js';
import { AlibabaKmsProvider } from '../src/providers/alibaba/index.js';
import { type Runtime, chromiumRuntime, edgeRuntime, workerdRuntime } from './browser/harness.js';
import {
  CASES,
  CONTEXT,
  FIELDS,
  type Fixtures,
  NODE_OBJECT,
  NODE_PLAINTEXT,
  NODE_RECORD,
  PAGE_OBJECT,
  PAGE_PLAINTEXT,
  PAGE_RECORD,
  STREAM_SEGMENT,
  fromBase64,
  streamBytes,
  toBase64,
} from './browser/suite.js';

const utf8 = (s: string) => new TextEncoder().encode(s);
const fromUtf8 = (b: Uint8Array) => new TextDecoder().decode(b);
const ALIAS = 'alias/users';
const PASSPHRASE = 'correct horse battery staple';

/**
 * The Alibaba emulator answers a browser page only when it allows the page's origin (CORS,
 * `allowedOrigins`): Chromium gets an emulator of its own that allows its page's origin; workerd
 * and edge-runtime (no CORS there) share one.
 */

let keyring: LocalKeyring;
let kms: KmsEmulator;
/** The emulator the running case talks to. */
let currentKms: KmsEmulator;
const kmsProvider = () =>
  new AlibabaKmsProvider({ endpoint: currentKms.url, credentials: currentKms.credentials, retryBaseDelayMs: 1, retryMaxDelayMs: 5, timeoutMs: 5000 });
let base: Omit<Fixtures, 'alibaba'>;

beforeAll(async () => {
  keyring = new LocalKeyring();
  keyring.createKey({ alias: ALIAS });
  // The smallest scrypt cost the format accepts (N·r = 2^17): the page derives it in JavaScript.
  const keyringText = await serializeKeyring(keyring, { passphrase: PASSPHRASE, scrypt: { N: 2 ** 14, r: 8, p: 1 } });
  const indexKey = await createBlindIndexKey({ provider: keyring, keyId: ALIAS, name: 'users.email' });
  const index = await openBlindIndex(indexKey, { provider: keyring, name: 'users.email', normalize: (s) => s.trim().toLowerCase() });
  const framed = await collect(
    new Blob([streamBytes()]).stream().pipeThrough(encryptStream({ provider: keyring, keyId: ALIAS, encryptionContext: CONTEXT, segmentSize: STREAM_SEGMENT })),
  );
  base = {
    keyringText,
    passphrase: PASSPHRASE,
    alias: ALIAS,
    fromNode: {
      binary: toBase64(await encrypt(utf8(NODE_PLAINTEXT), { provider: keyring, keyId: ALIAS, encryptionContext: CONTEXT })),
      text: await encryptText(utf8(NODE_PLAINTEXT), { provider: keyring, keyId: ALIAS, encryptionContext: CONTEXT }),
      object: await encryptObject(NODE_OBJECT, { provider: keyring, keyId: ALIAS, encryptionContext: CONTEXT, recordId: 1 }),
      fields: await encryptFields(NODE_RECORD, {
        provider: keyring,
        keyId: ALIAS,
        fields: FIELDS,
        recordId: NODE_RECORD.id,
        encryptionContext: CONTEXT,
        blindIndexes: { email: { index, into: 'email_idx' } },
      }),
      compact: await encryptFields(NODE_RECORD, { provider: keyring, keyId: ALIAS, fields: FIELDS, recordId: NODE_RECORD.id, encryptionContext: CONTEXT, headerField: '_ek' }),
      framed: toBase64(framed),
      indexKey,
    },
  };
  kms = await startKmsEmulator({});
  kms.keyring.createKey({ alias: 'alias/app' });
});

afterAll(async () => {
  await kms?.close();
});

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** What Node checks of each case's answer (and opens of what the runtime made). */
const CHECKS: Record<string, (value: never) => Promise<void> | void> = {
  'no Node globals: process, Buffer and require are undefined': () => {},
  'a passphrase keyring file made in Node parses, and a wrong passphrase is refused': (aliases: { alias: string; keyId: string }[]) => {
    expect(aliases).toEqual(keyring.listAliases());
  },
  'encrypt and decrypt, binary and text, both ways across Node': async (v: { binary: string; text: string }) => {
    expect(fromUtf8((await decrypt(fromBase64(v.binary), { provider: keyring, encryptionContext: CONTEXT })).plaintext)).toBe(PAGE_PLAINTEXT);
    expect(fromUtf8((await decryptText(v.text, { provider: keyring, encryptionContext: CONTEXT })).plaintext)).toBe(PAGE_PLAINTEXT);
  },
  'large payloads (WebCrypto path) round-trip and match the noble-only backend': (v: { length: number }) => {
    expect(v.length).toBeGreaterThan(3 << 20);
  },
  'encryptObject and decryptObject, both ways across Node': async (v: { object: string }) => {
    expect(await decryptObject(v.object, { provider: keyring, encryptionContext: CONTEXT, recordId: 1 })).toEqual(PAGE_OBJECT);
  },
  'encryptFields and decryptFields, self-contained and compact, with a blind index, both ways across Node': async (v: {
    fields: Record<string, unknown>;
    compact: Record<string, unknown>;
    phoneIndexKey: string;
    phoneIndexOf555: string;
  }) => {
    const index = await openBlindIndex(base.fromNode.indexKey, { provider: keyring, name: 'users.email', normalize: (s) => s.trim().toLowerCase() });
    expect(v.fields.email_idx).toBe(index.compute('grace@example.com'));
    expect(await decryptFields(v.fields, { provider: keyring, fields: FIELDS, recordId: PAGE_RECORD.id, encryptionContext: CONTEXT })).toEqual({ ...PAGE_RECORD, email_idx: v.fields.email_idx });
    const { _ek, ...compact } = await decryptFields(v.compact, { provider: keyring, fields: FIELDS, recordId: PAGE_RECORD.id, encryptionContext: CONTEXT, headerField: '_ek' });
    expect(typeof _ek).toBe('string');
    expect(compact).toEqual(PAGE_RECORD);
    const phone = await openBlindIndex(v.phoneIndexKey, { provider: keyring, name: 'users.phone' });
    expect(phone.compute('555-0100')).toBe(v.phoneIndexOf555);
  },
  'encryptStream, decryptStream and decryptRange, both ways across Node': async (v: { framed: string }) => {
    const { plaintext } = await decrypt(fromBase64(v.framed), { provider: keyring, encryptionContext: CONTEXT });
    expect(Buffer.from(plaintext).equals(Buffer.from(streamBytes()))).toBe(true);
  },
  'the Alibaba provider against the emulator, from this runtime': async (v: { text: string }) => {
    expect(await decryptObject(v.text, { provider: kmsProvider(), encryptionContext: CONTEXT })).toEqual(PAGE_OBJECT);
  },
};

it('every case has a check in Node', () => {
  expect(Object.keys(CHECKS).sort()).toEqual(Object.keys(CASES).sort());
});

const RUNTIMES: { name: string; start: () => Promise<Runtime>; cors: boolean }[] = [
  { name: 'chromium', start: chromiumRuntime, cors: true },
  { name: 'workerd', start: workerdRuntime, cors: false },
  { name: 'edge-runtime', start: edgeRuntime, cors: false },
];

for (const rt of RUNTIMES) {
  describe(`published bundle in ${rt.name}`, () => {
    let runtime: Runtime | undefined;
    /** The emulator this runtime's case talks to: for a page, one that allows the page's origin. */
    let own: KmsEmulator | undefined;
    beforeAll(async () => {
      runtime = await rt.start();
      if (rt.cors) {
        own = await startKmsEmulator({ allowedOrigins: [runtime.origin!] });
        own.keyring.createKey({ alias: 'alias/app' });
      }
    });
    afterAll(async () => {
      await runtime?.close();
      await own?.close();
    });

    for (const name of Object.keys(CASES)) {
      it(name, async () => {
        const r = runtime!;
        const e = own ?? kms;
        currentKms = e;
        const fixtures: Fixtures = {
          ...base,
          alibaba: { endpoint: e.url, accessKeyId: e.credentials.accessKeyId, accessKeySecret: e.credentials.accessKeySecret, keyId: 'alias/app' },
        };
        let outcome;
        try {
          outcome = await r.run(name, fixtures);
          if (!outcome.ok) throw new Error(outcome.error);
          await (CHECKS[name] as (v: unknown) => Promise<void>)(outcome.value);
        } catch (e) {
          const printed = r.takeLog();
          throw new Error(`${rt.name}: "${name}" failed: ${e instanceof Error ? e.message : String(e)}\n--- what ${rt.name} printed ---\n${printed || '(nothing)'}`, { cause: e });
        }
        r.takeLog();
      });
    }
  });
}
