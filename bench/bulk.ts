/**
 * Bulk contenders: one payload in, one envelope out, and back. Used in-process
 * by `run.ts` for throughput and by `rss-child.ts` for peak memory.
 * @module
 */
import { LocalKeyring, decrypt, encrypt, nobleAesGcm } from 'envelope-kit';
import {
  type AwsSuite,
  aws,
  awsKeyring,
  awsSuiteOptions,
  chunkedDecrypt,
  chunkedEncrypt,
  rawDecrypt,
  rawEncrypt,
  type RawSealed,
} from './contenders.js';

export type BulkName =
  | 'envelope-kit'
  | 'envelope-kit-noble'
  | 'aws-committing-unsigned'
  | 'aws-default'
  | 'node-crypto-raw'
  | 'node-crypto-chunked';

export const BULK_LABELS: Record<BulkName, string> = {
  'envelope-kit': 'envelope-kit `encrypt`/`decrypt` (node:crypto backend)',
  'envelope-kit-noble': 'envelope-kit forced onto @noble/ciphers (`aead: nobleAesGcm`)',
  'aws-committing-unsigned': 'AWS SDK, committing unsigned suite',
  'aws-default': 'AWS SDK, default suite (committing, ECDSA P-384)',
  'node-crypto-raw': 'raw node:crypto AES-256-GCM, one pass',
  'node-crypto-chunked': 'reference: node:crypto AES-256-GCM, 1 MiB `update()` calls into one preallocated output',
};

/** Key material shared with the child processes (random per run; benchmark keys only). */
export interface BulkKeys {
  readonly ekKeyId: string;
  readonly ekMaterialHex: string;
  readonly awsMaterialHex: string;
  readonly rawKeyHex: string;
}

export interface BulkContender {
  readonly name: BulkName;
  encrypt(plaintext: Uint8Array): Promise<Uint8Array | RawSealed>;
  decrypt(envelope: Uint8Array | RawSealed): Promise<Uint8Array>;
  /** The envelope as the parts of a file (no copy). */
  fileParts(envelope: Uint8Array | RawSealed): Uint8Array[];
  /** An envelope back from a file's bytes (views, no copy). */
  fromFile(bytes: Buffer): Uint8Array | RawSealed;
}

/** Hex to an isolated array (the AWS keyring refuses a slice of Node's shared Buffer pool). */
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/** A keyring holding exactly the benchmark key, so that parent and children share it. */
export function benchKeyring(keys: BulkKeys, noble = false): LocalKeyring {
  const createdAt = '2026-01-01T00:00:00.000Z';
  return LocalKeyring.fromState(
    {
      keys: [{ keyId: keys.ekKeyId, state: 'Enabled', description: '', createdAt, versions: [{ version: 1, createdAt, material: hex(keys.ekMaterialHex) }] }],
      aliases: {},
    },
    noble ? { aead: nobleAesGcm } : {},
  );
}

export function bulkContender(name: BulkName, keys: BulkKeys): BulkContender {
  const bytesEnvelope = {
    fileParts: (e: Uint8Array | RawSealed) => [e as Uint8Array],
    fromFile: (b: Buffer) => b as Uint8Array,
  };
  switch (name) {
    case 'envelope-kit':
    case 'envelope-kit-noble': {
      const noble = name === 'envelope-kit-noble';
      const provider = benchKeyring(keys, noble);
      const aead = noble ? nobleAesGcm : undefined;
      return {
        name,
        ...bytesEnvelope,
        encrypt: (pt) => encrypt(pt, { provider, keyId: keys.ekKeyId, aead }),
        decrypt: async (env) => (await decrypt(env as Uint8Array, { provider, aead })).plaintext,
      };
    }
    case 'aws-committing-unsigned':
    case 'aws-default': {
      const suite: AwsSuite = name === 'aws-default' ? 'default' : 'committing-unsigned';
      const keyring = awsKeyring(hex(keys.awsMaterialHex));
      const opts = awsSuiteOptions(suite);
      return {
        name,
        ...bytesEnvelope,
        encrypt: async (pt) => (await aws.encrypt(keyring, pt, opts)).result,
        decrypt: async (env) => (await aws.decrypt(keyring, env as Uint8Array)).plaintext,
      };
    }
    case 'node-crypto-chunked': {
      const key = hex(keys.rawKeyHex);
      return {
        name,
        ...bytesEnvelope,
        encrypt: async (pt) => chunkedEncrypt(key, pt),
        decrypt: async (env) => chunkedDecrypt(key, env as Uint8Array),
      };
    }
    case 'node-crypto-raw': {
      const key = hex(keys.rawKeyHex);
      return {
        name,
        encrypt: async (pt) => rawEncrypt(key, pt),
        decrypt: async (s) => rawDecrypt(key, s as RawSealed),
        fileParts: (e) => {
          const s = e as RawSealed;
          return [s.iv, s.ciphertext, s.tag];
        },
        fromFile: (b) => ({ iv: b.subarray(0, 12), ciphertext: b.subarray(12, b.length - 16), tag: b.subarray(b.length - 16) }),
      };
    }
  }
}

/** Bytes of an envelope of any contender. */
export function envelopeLength(e: Uint8Array | RawSealed): number {
  return e instanceof Uint8Array ? e.length : e.iv.length + e.ciphertext.length + e.tag.length;
}
