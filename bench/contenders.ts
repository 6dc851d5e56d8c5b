/**
 * The peers envelope-kit is measured against, and the data they work on:
 * the AWS Encryption SDK (raw AES keyring, no network), a minimal hand-written
 * `node:crypto` envelope (the floor for records) and a single `node:crypto`
 * AES-256-GCM pass (the floor for bulk data). Shared by `run.ts` and the
 * child processes of `rss-child.ts`.
 * @module
 */
import {
  AlgorithmSuiteIdentifier,
  CommitmentPolicy,
  type EncryptedDataKey,
  KeyringNode,
  NodeCachingMaterialsManager,
  type NodeDecryptionMaterial,
  type NodeEncryptionMaterial,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  buildClient,
  getLocalCryptographicMaterialsCache,
} from '@aws-crypto/client-node';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Names of the AWS raw AES wrapping key. These are the example names of the
 * AWS Encryption SDK developer guide ("Raw AES keyrings"): key namespace
 * `HSM_01`, key name `AES_256_012`. They are stored in every AWS message, so
 * their length is part of the AWS overhead.
 */
export const AWS_KEY_NAMESPACE = 'HSM_01';
export const AWS_KEY_NAME = 'AES_256_012';

/** The AWS SDK client with the commitment policy that allows (and requires) committing suites. */
export const aws = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

export type AwsSuite = 'committing-unsigned' | 'default';

/** Suite ids: the committing unsigned suite, or the SDK default (committing, ECDSA P-384 signed). */
export function awsSuiteOptions(suite: AwsSuite): { suiteId?: AlgorithmSuiteIdentifier } {
  return suite === 'committing-unsigned' ? { suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY } : {};
}

export function awsKeyring(material: Uint8Array, names = { keyNamespace: AWS_KEY_NAMESPACE, keyName: AWS_KEY_NAME }): RawAesKeyringNode {
  return new RawAesKeyringNode({
    ...names,
    unencryptedMasterKey: material,
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
}

/**
 * A keyring that counts the calls that reach the keyring it wraps: one
 * `onEncrypt` per data key the AWS SDK makes, one `onDecrypt` per data key it
 * unwraps. Behind a caching materials manager these are its cache misses, so
 * the counts show whether the SDK's cache is caching at all.
 */
export class CountingKeyringNode extends KeyringNode {
  encryptCalls = 0;
  decryptCalls = 0;

  constructor(private readonly inner: KeyringNode) {
    super();
  }

  async _onEncrypt(material: NodeEncryptionMaterial): Promise<NodeEncryptionMaterial> {
    this.encryptCalls++;
    return (await this.inner.onEncrypt(material)) as NodeEncryptionMaterial;
  }

  async _onDecrypt(material: NodeDecryptionMaterial, encryptedDataKeys: EncryptedDataKey[]): Promise<NodeDecryptionMaterial> {
    this.decryptCalls++;
    return (await this.inner.onDecrypt(material, encryptedDataKeys)) as NodeDecryptionMaterial;
  }
}

/** Limits of a data-key cache, as both libraries take them. */
export interface CacheLimits {
  /** Longest time one data key serves, in ms. */
  readonly maxAge: number;
  /** Most messages one data key encrypts. */
  readonly maxMessages: number;
  /** Most entries in the cache. */
  readonly capacity: number;
}

/**
 * The AWS SDK's own data-key cache: a `NodeCachingMaterialsManager` over
 * `keyring` with a fresh `getLocalCryptographicMaterialsCache(capacity)`.
 *
 * How it is set up, from the SDK's source (@aws-crypto/cache-material 5.x,
 * `caching_cryptographic_materials_decorators.ts`):
 * - It caches only when the request carries `plaintextLength`. `encrypt()`
 *   sets it from the plaintext when that is a string or a Uint8Array, which is
 *   how the bench calls it (a string of JSON); `encryptStream()` does not.
 * - It caches only `cacheSafe` suites: the HKDF suites, of which the committing
 *   unsigned suite is one (the signed suites are not cache-safe).
 * - An entry is used for `maxMessagesEncrypted` messages: it is stored with a
 *   count of 1 and refused once the count exceeds the limit, so 1000 serves
 *   1000 messages, like envelope-kit's `maxMessages`.
 * - `maxBytesEncrypted` is left at the SDK's maximum (2^53 - 1): envelope-kit's
 *   cache is run without a byte limit either, and 10,000 records of 265 B are
 *   far from any.
 * - `partition` is named, not left random: it is part of every cache key, and
 *   each run has its own cache anyway.
 * - Decryption materials are cached by suite, encrypted data keys and context,
 *   so the messages that share one data key share one entry.
 */
export function awsCachingCmm(keyring: KeyringNode, limits: CacheLimits): NodeCachingMaterialsManager {
  return new NodeCachingMaterialsManager({
    backingMaterials: keyring,
    cache: getLocalCryptographicMaterialsCache(limits.capacity),
    partition: 'envelope-kit-bench',
    maxAge: limits.maxAge,
    maxMessagesEncrypted: limits.maxMessages,
  });
}

/**
 * The floor for records: the least an envelope can do. A fresh random data key
 * per record, wrapped with AES-256-GCM under the master key, the record's JSON
 * encrypted with AES-256-GCM under the data key. No header, no key commitment,
 * no context, no key derivation: `wrapIv || wrappedKey || wrapTag || iv || ciphertext || tag`.
 * Key and IVs come from three `randomBytes` calls, as hand-written code does.
 */
export class FloorEnvelope {
  constructor(private readonly master: Buffer) {}

  encrypt(record: unknown): Buffer {
    const dataKey = randomBytes(32);
    const wrapIv = randomBytes(12);
    const w = createCipheriv('aes-256-gcm', this.master, wrapIv);
    const wrapped = w.update(dataKey);
    w.final();
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', dataKey, iv);
    const ct = c.update(JSON.stringify(record), 'utf8');
    c.final();
    dataKey.fill(0);
    return Buffer.concat([wrapIv, wrapped, w.getAuthTag(), iv, ct, c.getAuthTag()]);
  }

  decrypt(env: Buffer): unknown {
    const w = createDecipheriv('aes-256-gcm', this.master, env.subarray(0, 12));
    w.setAuthTag(env.subarray(44, 60));
    const dataKey = w.update(env.subarray(12, 44));
    w.final();
    const d = createDecipheriv('aes-256-gcm', dataKey, env.subarray(60, 72));
    d.setAuthTag(env.subarray(env.length - 16));
    const pt = d.update(env.subarray(72, env.length - 16));
    d.final();
    dataKey.fill(0);
    return JSON.parse(pt.toString('utf8'));
  }
}

/** The floor for bulk data: one AES-256-GCM pass over the whole payload, output kept as `update()` returns it. */
export interface RawSealed {
  readonly iv: Buffer;
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
}

export function rawEncrypt(key: Uint8Array, plaintext: Uint8Array): RawSealed {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const ciphertext = c.update(plaintext);
  c.final();
  return { iv, ciphertext, tag: c.getAuthTag() };
}

export function rawDecrypt(key: Uint8Array, s: RawSealed): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, s.iv);
  d.setAuthTag(s.tag);
  const pt = d.update(s.ciphertext);
  d.final();
  return pt;
}

const CHUNK = 1 << 20;

/**
 * Reference, not a contender: the same AES-256-GCM work fed to OpenSSL 1 MiB at
 * a time and copied into one preallocated `iv || ciphertext || tag`, which is
 * what an envelope library can do with `node:crypto`. Shows how much of the
 * one-pass figure is the cost of `update()` returning a 64 MiB buffer.
 */
export function chunkedEncrypt(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + plaintext.length + 16);
  const iv = randomBytes(12);
  out.set(iv, 0);
  const c = createCipheriv('aes-256-gcm', key, iv);
  let o = 12;
  for (let i = 0; i < plaintext.length; i += CHUNK) {
    const part = c.update(plaintext.subarray(i, i + CHUNK));
    out.set(part, o);
    o += part.length;
  }
  c.final();
  out.set(c.getAuthTag(), o);
  return out;
}

export function chunkedDecrypt(key: Uint8Array, env: Uint8Array): Uint8Array {
  const n = env.length - 28;
  const out = new Uint8Array(n);
  const d = createDecipheriv('aes-256-gcm', key, env.subarray(0, 12));
  d.setAuthTag(env.subarray(12 + n));
  for (let i = 0; i < n; i += CHUNK) out.set(d.update(env.subarray(12 + i, 12 + Math.min(i + CHUNK, n))), i);
  d.final();
  return out;
}

/** Deterministic pseudo-random numbers (mulberry32), so every run encrypts the same records. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia', 'Whitfield'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson', 'Perlman', 'Diffie'];
const STREETS = ['Marylebone Lane', 'Rue de Rivoli', 'Unter den Linden', 'Via del Corso', 'Nørrebrogade'];
const CITIES = ['London', 'Paris', 'Berlin', 'Roma', 'København'];

/** A customer row: a typical record of about 200 bytes of JSON. */
export interface CustomerRecord {
  id: number;
  name: string;
  email: string;
  phone: string;
  address: { street: string; city: string; postcode: string };
  plan: string;
  active: boolean;
  balance: number;
  createdAt: string;
}

export function makeRecords(n: number, seed = 1): CustomerRecord[] {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const digits = (k: number) => Array.from({ length: k }, () => Math.floor(r() * 10)).join('');
  return Array.from({ length: n }, (_, i) => {
    const first = pick(FIRST);
    const last = pick(LAST);
    return {
      id: 100000 + i,
      name: `${first} ${last}`,
      email: `${first}.${last}${digits(3)}@example.com`.toLowerCase(),
      phone: `+44 20 ${digits(4)} ${digits(4)}`,
      address: { street: `${1 + Math.floor(r() * 200)} ${pick(STREETS)}`, city: pick(CITIES), postcode: `W1U ${digits(1)}NN` },
      plan: pick(['free', 'pro', 'team']),
      active: r() < 0.8,
      balance: Math.round(r() * 1e6) / 100,
      createdAt: new Date(Date.UTC(2024, 0, 1) + Math.floor(r() * 3e10)).toISOString(),
    };
  });
}

/** One contender of the records benchmark: times encrypting then decrypting `recs` one by one. */
export interface RecordContender {
  readonly label: string;
  /** How many records a timed run takes. */
  readonly records: number;
  run(recs: readonly CustomerRecord[]): Promise<{ encrypt: number; decrypt: number }>;
  /** One round trip of `rec`, compared with it. */
  check(rec: CustomerRecord): Promise<boolean>;
}

/** The five fields encrypted by the field-level benchmark. */
export const ENCRYPTED_FIELDS = ['name', 'email', 'phone', 'address.street', 'address.postcode'] as const;
