/**
 * A data-key cache in front of any {@link KeyProvider} (SPEC.md §9.12).
 *
 * `withDataKeyCache(provider, options)` returns a provider with the same
 * `providerId`, so envelopes written through it read without it and the other
 * way round. Two sides, each an LRU map bounded by one `capacity`:
 *
 * - **Encrypt side.** One data key from `generateDataKey` serves many envelopes
 *   until it reaches any of `maxAge`, `maxMessages` or `maxBytes`. Entries are
 *   partitioned by everything the provider binds: provider id, key id (as
 *   asked: an alias and the key id it names are two partitions), key length and
 *   the whole provider context. A key never crosses a context.
 * - **Decrypt side.** A data key unwrapped by `decrypt` is kept by (provider id,
 *   blob bytes, provider context) for `maxAge`, so reading many envelopes that
 *   share one data key asks the provider once.
 *
 * Concurrent misses on one entry make one provider call (single flight); its
 * failure reaches every waiter and is not cached. A hit on an entry within
 * `refreshAhead` of `maxAge` starts one background refresh. With an explicit
 * `staleIfError` window an expired entry may keep serving while the provider
 * fails with a retryable error (decrypt side; encrypt side only with
 * `staleIfErrorOnEncrypt`), and each such use is reported to `onStaleServe`.
 *
 * Each envelope still derives its own content key from the data key and a fresh
 * random message id (SPEC.md §3.3, §9.2): reuse of a data key never reuses a
 * content key. Answers are copies; the cache's own copies are wiped when an
 * entry is evicted, retired or disposed. The cache's answers carry
 * `reused: true`, which makes the envelope layer draw every message id straight
 * from the CSPRNG.
 * @module
 */
import type { CheckedContext } from '../core/context.js';
import { DecryptionFailedError, InvalidParameterError, KeyDisabledError, KeyNotFoundError, ProviderError } from '../core/errors.js';
import {
  type DataKey,
  type DecryptedDataKey,
  type DecryptRequest,
  type GenerateDataKeyRequest,
  type KeyProvider,
  PROVIDER_LIMITS,
  checkDecryptRequest,
  checkGenerateDataKeyRequest,
  isAnswerKeyId,
  readAnswerField,
} from '../core/provider.js';
import { checkProvider } from '../core/envelope.js';
import { isBytes, isSharedMemory, wipe } from '../internal/bytes.js';

/** Bounds on the options of {@link withDataKeyCache}. */
export const CACHE_LIMITS = Object.freeze({
  /** Longest `maxAge` and `staleIfError`: 24 hours, in milliseconds. */
  maxAgeMs: 24 * 60 * 60 * 1000,
  /** Most envelopes one data key may seal (SPEC.md §9.2: below 2^-65 chance of a repeated message id). */
  maxMessages: 2 ** 32,
  /** Most entries in one cache. */
  maxCapacity: 1_000_000,
});

/** Defaults of the optional settings of {@link withDataKeyCache}. */
export const CACHE_DEFAULTS = Object.freeze({
  maxMessages: 1000,
  capacity: 1000,
  /** Fraction of `maxAge` before its end at which a hit starts a background refresh. */
  refreshAheadFraction: 0.2,
});

/** Which side of the cache an event or a counter is about. */
export type CacheSide = 'encrypt' | 'decrypt';

/** What {@link DataKeyCacheOptions.onStaleServe} is told each time an expired entry serves. */
export interface StaleServeEvent {
  readonly side: CacheSide;
  readonly providerId: string;
  /** The master key id the cached entry was made or unwrapped with (as the provider answered it). */
  readonly keyId: string;
  /** Milliseconds since the entry was made or last refreshed (more than `maxAge`). */
  readonly ageMs: number;
  /** The provider's failure that made the cache serve the expired entry. */
  readonly error: unknown;
}

/** What {@link DataKeyCacheOptions.onRefreshError} is told when a background refresh fails. */
export interface RefreshErrorEvent {
  readonly side: CacheSide;
  readonly providerId: string;
  readonly keyId: string;
  /** Whether the entry was dropped: the provider said the key is gone, disabled or refuses the blob. */
  readonly evicted: boolean;
  readonly error: unknown;
}

/** Options of {@link withDataKeyCache}. Durations are milliseconds. */
export interface DataKeyCacheOptions {
  /**
   * Longest time an entry serves, from when the provider answered (required; 1 ms to 24 h). It bounds
   * how long a key disabled in the KMS keeps working through the cache (see the README, "Caching data
   * keys").
   */
  readonly maxAge: number;
  /** Most envelopes one cached data key seals (default 1000; 1 to 2^32). Decrypt side: not counted. */
  readonly maxMessages?: number;
  /**
   * Most plaintext bytes one cached data key seals (default: no limit). With a limit, a request that
   * does not say its `plaintextLength` is not served from the cache (it asks the provider).
   */
  readonly maxBytes?: number;
  /** Most entries, both sides together (default 1000; 1 to 1,000,000); the least recently used goes first. */
  readonly capacity?: number;
  /**
   * How long before `maxAge` a hit starts one background refresh of its entry (default a fifth of
   * `maxAge`; 0 turns refresh-ahead off). The hit is served from the current entry.
   */
  readonly refreshAhead?: number;
  /**
   * How long after `maxAge` an expired entry may keep serving while the provider fails with a
   * retryable error (default 0: never; at most 24 h). Decrypt side only, unless
   * `staleIfErrorOnEncrypt` is set. Every such use is reported to `onStaleServe`.
   */
  readonly staleIfError?: number;
  /**
   * Let the encrypt side serve expired entries within `staleIfError` too (default false): new
   * envelopes keep being written with a data key older than `maxAge` while the KMS is down. Limits on
   * envelopes and bytes per key still hold.
   */
  readonly staleIfErrorOnEncrypt?: boolean;
  /** Told each time an expired entry serves. A hook that throws is counted in `stats.hookErrors` and ignored. */
  readonly onStaleServe?: (event: StaleServeEvent) => void;
  /** Told when a background refresh fails. A hook that throws is counted and ignored. */
  readonly onRefreshError?: (event: RefreshErrorEvent) => void;
  /**
   * Whether a provider failure may be answered with a stale entry. Default: the error has
   * `retryable === true` (e.g. an `AlibabaKmsError` after throttling, a 5xx or a network failure
   * outlived the provider's own retries).
   */
  readonly isRetryable?: (error: unknown) => boolean;
  /** Clock in milliseconds (default `performance.now()`, which never goes back). For tests. */
  readonly now?: () => number;
}

/** Counters of one side of a {@link DataKeyCache}. */
export interface CacheSideStats {
  /** Calls answered from an unexpired entry without waiting for the provider. */
  readonly hits: number;
  /** Calls that found no usable entry and waited for a provider call (their own or a shared one). */
  readonly misses: number;
  /** Calls made to the provider (foreground and background), successful or not. */
  readonly kmsCalls: number;
  /** Provider calls that failed. */
  readonly kmsFailures: number;
  /** Misses answered with an expired entry within `staleIfError` because the provider failed. */
  readonly staleServes: number;
  /** Background refreshes started. */
  readonly refreshes: number;
  /** Background refreshes that failed. */
  readonly refreshFailures: number;
  /** Calls passed straight to the provider without caching (a `maxBytes` limit and no or too large `plaintextLength`). */
  readonly bypasses: number;
  /** Entries dropped to keep within `capacity`. */
  readonly evictions: number;
  /** Entries dropped for age, for reaching `maxMessages`/`maxBytes`, or because the provider refused the key. */
  readonly retirements: number;
  /** Entries held now. */
  readonly entries: number;
}

/** All counters of a {@link DataKeyCache}. */
export interface CacheStats {
  readonly encrypt: CacheSideStats;
  readonly decrypt: CacheSideStats;
  /** Hook calls that threw. */
  readonly hookErrors: number;
}

/** A key provider with a data-key cache in front: see {@link withDataKeyCache}. */
export interface DataKeyCache extends KeyProvider {
  /** A snapshot of the counters. */
  readonly stats: CacheStats;
  /** Entries held now, both sides. */
  readonly size: number;
  /** Wipe and drop every entry. The cache stays usable and starts empty. */
  clear(): void;
  /** Wipe and drop every entry and refuse further calls (`ERR_INVALID_PARAMETER`). Idempotent. */
  dispose(): void;
}

interface Entry {
  readonly side: CacheSide;
  readonly mapKey: string;
  readonly keyId: string;
  /** The cache's own copy of the data key; zeroed and emptied when the entry dies. */
  key: Uint8Array;
  /** Encrypt side: the blob handed out with every use. */
  readonly blob: Uint8Array | undefined;
  readonly createdAt: number;
  messages: number;
  bytes: number;
  refreshing: boolean;
  dead: boolean;
  /**
   * Set once the entry has served stale because the provider failed retryably (the last such error):
   * while it is set, the entry serves at once within `staleIfError` and the provider is retried in the
   * background, one call at a time, instead of making every caller wait for a provider that is down.
   */
  outage: unknown;
}

interface MutableSideStats {
  hits: number;
  misses: number;
  kmsCalls: number;
  kmsFailures: number;
  staleServes: number;
  refreshes: number;
  refreshFailures: number;
  bypasses: number;
  evictions: number;
  retirements: number;
}

function newSideStats(): MutableSideStats {
  return { hits: 0, misses: 0, kmsCalls: 0, kmsFailures: 0, staleServes: 0, refreshes: 0, refreshFailures: 0, bypasses: 0, evictions: 0, retirements: 0 };
}

interface Settings {
  readonly maxAge: number;
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly capacity: number;
  readonly refreshAhead: number;
  readonly staleIfError: number;
  readonly staleOnEncrypt: boolean;
  readonly onStaleServe: ((event: StaleServeEvent) => void) | undefined;
  readonly onRefreshError: ((event: RefreshErrorEvent) => void) | undefined;
  readonly isRetryable: (error: unknown) => boolean;
  readonly now: () => number;
}

/** The default retryability test: the error says so itself. */
export function isRetryableError(error: unknown): boolean {
  try {
    return error !== null && typeof error === 'object' && (error as { retryable?: unknown }).retryable === true;
  } catch {
    return false;
  }
}

/** Errors after which a cached key is dropped rather than kept: the provider says it is unusable. */
function keyRefused(error: unknown): boolean {
  return error instanceof KeyDisabledError || error instanceof KeyNotFoundError || error instanceof DecryptionFailedError;
}

function defaultClock(): () => number {
  const p = (globalThis as { performance?: { now?: () => number } }).performance;
  if (p && typeof p.now === 'function') return () => p.now!();
  return () => Date.now();
}

function readOptionsObject(options: unknown): Record<string, unknown> {
  if (options === null || typeof options !== 'object') throw new InvalidParameterError('withDataKeyCache expects an options object with "maxAge"');
  const names = [
    'maxAge',
    'maxMessages',
    'maxBytes',
    'capacity',
    'refreshAhead',
    'staleIfError',
    'staleIfErrorOnEncrypt',
    'onStaleServe',
    'onRefreshError',
    'isRetryable',
    'now',
  ];
  const out: Record<string, unknown> = {};
  try {
    for (const n of names) out[n] = (options as Record<string, unknown>)[n];
  } catch (e) {
    throw new InvalidParameterError('withDataKeyCache options could not be read', { cause: e });
  }
  return out;
}

function integerIn(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidParameterError(`"${name}" must be an integer from ${min} to ${max}`);
  }
  return value;
}

function durationIn(value: unknown, name: string, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > CACHE_LIMITS.maxAgeMs) {
    throw new InvalidParameterError(`"${name}" must be a number of milliseconds from ${min} to ${CACHE_LIMITS.maxAgeMs}`);
  }
  return value;
}

function optionalFunction<T>(value: unknown, name: string): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw new InvalidParameterError(`"${name}" must be a function`);
  return value as T;
}

function checkSettings(options: unknown): Settings {
  const o = readOptionsObject(options);
  if (o['maxAge'] === undefined) throw new InvalidParameterError('"maxAge" is required: how long a cached data key may serve, in milliseconds');
  const maxAge = durationIn(o['maxAge'], 'maxAge', 1);
  const maxMessages = o['maxMessages'] === undefined ? CACHE_DEFAULTS.maxMessages : integerIn(o['maxMessages'], 'maxMessages', 1, CACHE_LIMITS.maxMessages);
  const maxBytes = o['maxBytes'] === undefined ? Infinity : integerIn(o['maxBytes'], 'maxBytes', 1, Number.MAX_SAFE_INTEGER);
  const capacity = o['capacity'] === undefined ? CACHE_DEFAULTS.capacity : integerIn(o['capacity'], 'capacity', 1, CACHE_LIMITS.maxCapacity);
  const refreshAhead = o['refreshAhead'] === undefined ? maxAge * CACHE_DEFAULTS.refreshAheadFraction : durationIn(o['refreshAhead'], 'refreshAhead', 0);
  if (refreshAhead >= maxAge) throw new InvalidParameterError('"refreshAhead" must be less than "maxAge"');
  const staleIfError = o['staleIfError'] === undefined ? 0 : durationIn(o['staleIfError'], 'staleIfError', 0);
  const staleOnEncrypt = o['staleIfErrorOnEncrypt'] ?? false;
  if (typeof staleOnEncrypt !== 'boolean') throw new InvalidParameterError('"staleIfErrorOnEncrypt" must be a boolean');
  if (staleOnEncrypt && staleIfError === 0) {
    throw new InvalidParameterError('"staleIfErrorOnEncrypt" needs a "staleIfError" window greater than 0');
  }
  const now = optionalFunction<() => number>(o['now'], 'now') ?? defaultClock();
  return {
    maxAge,
    maxMessages,
    maxBytes,
    capacity,
    refreshAhead,
    staleIfError,
    staleOnEncrypt,
    onStaleServe: optionalFunction(o['onStaleServe'], 'onStaleServe'),
    onRefreshError: optionalFunction(o['onRefreshError'], 'onRefreshError'),
    isRetryable: optionalFunction<(e: unknown) => boolean>(o['isRetryable'], 'isRetryable') ?? isRetryableError,
    now,
  };
}

/** The context as a string that two equal maps share and two different maps never do. */
function contextKey(ctx: CheckedContext): string {
  let key = CONTEXT_KEYS.get(ctx.map);
  if (key === undefined) {
    key = JSON.stringify(Object.entries(ctx.map));
    CONTEXT_KEYS.set(ctx.map, key);
  }
  return key;
}

/** {@link contextKey} of each frozen context map already seen. */
const CONTEXT_KEYS = new WeakMap<object, string>();

/** The bytes as a string of one char per byte: a map key two blobs share only when they are equal. */
function byteString(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 1024) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 1024) as unknown as number[]);
  return s;
}

/**
 * Take ownership of a data key from a provider's answer: the array itself when it is a plain,
 * exclusive view of unshared memory (so that wiping it wipes the only copy), else a copy, with the
 * original wiped.
 */
function adoptKey(key: Uint8Array): Uint8Array {
  if (
    Object.getPrototypeOf(key) === Uint8Array.prototype &&
    !isSharedMemory(key) &&
    key.byteOffset === 0 &&
    key.byteLength === key.buffer.byteLength
  ) {
    return key;
  }
  const copy = new Uint8Array(key);
  wipe(key);
  return copy;
}

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/** Entries a miss looks at, from the least recently used end, to wipe expired ones. */
const SWEEP_PER_MISS = 8;

/**
 * Put a data-key cache in front of `provider`.
 *
 * @param provider - any key provider (the local keyring, Alibaba Cloud KMS, your own).
 * @param options - `maxAge` (required), limits, capacity, refresh-ahead and outage settings.
 * @returns a {@link DataKeyCache}: a key provider with the same `providerId`, plus `stats`, `clear()`
 *   and `dispose()`.
 * @throws InvalidParameterError when the provider or an option is not valid.
 * @example
 * ```ts
 * import { LocalKeyring, withDataKeyCache, encryptObject, decryptObject } from 'envelope-kit';
 * const keyring = new LocalKeyring();
 * const { keyId } = keyring.createKey();
 * const provider = withDataKeyCache(keyring, { maxAge: 5 * 60_000, maxMessages: 1000 });
 * const stored = await encryptObject({ email: 'ada@example.com' }, { provider, keyId, encryptionContext: { table: 'users' }, recordId: 'u-1' });
 * const user = await decryptObject(stored, { provider, encryptionContext: { table: 'users' }, recordId: 'u-1' });
 * provider.dispose();
 * ```
 */
export function withDataKeyCache(provider: KeyProvider, options: DataKeyCacheOptions): DataKeyCache {
  const inner = checkProvider(provider, 'provider');
  const settings = checkSettings(options);
  return new CachingProvider(inner, settings);
}

class CachingProvider implements DataKeyCache {
  readonly providerId: string;
  /** The inner provider's optional operations, passed through uncached (each wraps or moves one given key). */
  readonly encrypt?: KeyProvider['encrypt'];
  readonly reEncrypt?: KeyProvider['reEncrypt'];
  readonly describeBlob?: KeyProvider['describeBlob'];
  /** The caller's provider, its id and methods read once. */
  readonly #inner: KeyProvider;
  readonly #s: Settings;
  /** Both sides, least recently used first. */
  readonly #entries = new Map<string, Entry>();
  readonly #flights = new Map<string, Promise<Entry>>();
  readonly #stats = { encrypt: newSideStats(), decrypt: newSideStats(), hookErrors: 0 };
  #disposed = false;
  /** Bumped by clear/dispose: a flight that started before does not insert its entry. */
  #epoch = 0;

  constructor(inner: KeyProvider, settings: Settings) {
    this.providerId = inner.providerId;
    this.#inner = inner;
    this.#s = settings;
    // Methods as own, bound properties: the envelope layer reads them off the object once.
    this.generateDataKey = this.generateDataKey.bind(this);
    this.decrypt = this.decrypt.bind(this);
    if (inner.encrypt) this.encrypt = inner.encrypt;
    if (inner.reEncrypt) this.reEncrypt = inner.reEncrypt;
    if (inner.describeBlob) this.describeBlob = inner.describeBlob;
  }

  get stats(): CacheStats {
    let enc = 0;
    let dec = 0;
    for (const e of this.#entries.values()) {
      if (e.side === 'encrypt') enc++;
      else dec++;
    }
    return Object.freeze({
      encrypt: Object.freeze({ ...this.#stats.encrypt, entries: enc }),
      decrypt: Object.freeze({ ...this.#stats.decrypt, entries: dec }),
      hookErrors: this.#stats.hookErrors,
    });
  }

  get size(): number {
    return this.#entries.size;
  }

  clear(): void {
    this.#epoch++;
    for (const e of this.#entries.values()) this.#kill(e);
    this.#entries.clear();
  }

  dispose(): void {
    this.#disposed = true;
    this.clear();
  }

  /** Nothing of the cache's contents: the provider id and the counters. */
  toJSON(): { providerId: string; stats: CacheStats } {
    return { providerId: this.providerId, stats: this.stats };
  }

  [INSPECT](): string {
    const s = this.stats;
    return `DataKeyCache { providerId: '${this.providerId}', entries: ${s.encrypt.entries + s.decrypt.entries}, encrypt: { hits: ${s.encrypt.hits}, misses: ${s.encrypt.misses} }, decrypt: { hits: ${s.decrypt.hits}, misses: ${s.decrypt.misses} }${this.#disposed ? ', disposed' : ''} }`;
  }

  // ---- encrypt side ----

  async generateDataKey(request: GenerateDataKeyRequest): Promise<DataKey> {
    this.#checkLive();
    const checked = checkGenerateDataKeyRequest(request);
    const length = readPlaintextLength(request);
    // Forwarded as numberOfBytes, which every provider honours over keySpec: the length the entry is checked against.
    const forward: GenerateDataKeyRequest = {
      keyId: checked.keyId,
      numberOfBytes: checked.numberOfBytes,
      encryptionContext: checked.context.map,
      ...(length !== undefined ? { plaintextLength: length } : {}),
    };
    const stats = this.#stats.encrypt;
    const s = this.#s;
    if (s.maxBytes !== Infinity && (length === undefined || length > s.maxBytes)) {
      stats.bypasses++;
      stats.kmsCalls++;
      try {
        return await this.#inner.generateDataKey(forward);
      } catch (e) {
        stats.kmsFailures++;
        throw e;
      }
    }
    const bytes = length ?? 0;
    // Injective: the context key is JSON (no raw NUL), so the key id is everything after the second NUL.
    const mapKey = `e${checked.numberOfBytes}\u0000${contextKey(checked.context)}\u0000${checked.keyId}`;
    let missed = false;
    for (;;) {
      this.#checkLive();
      const now = s.now();
      const entry = this.#entries.get(mapKey);
      let stale: Entry | undefined;
      if (entry) {
        const age = now - entry.createdAt;
        if (!this.#hasRoom(entry, bytes)) {
          this.#retire(entry);
        } else if (age < s.maxAge) {
          this.#touch(entry);
          if (!missed) stats.hits++;
          this.#maybeRefresh(entry, age, () => this.#generateFlight(mapKey, forward, checked.numberOfBytes, true));
          return this.#use(entry, bytes);
        } else if (s.staleOnEncrypt && age < s.maxAge + s.staleIfError) {
          if (entry.outage !== undefined) {
            if (!missed) stats.misses++;
            stats.staleServes++;
            this.#touch(entry);
            this.#report(entry, age, entry.outage);
            this.#retryInBackground(entry, () => this.#generateFlight(mapKey, forward, checked.numberOfBytes, true));
            return this.#use(entry, bytes);
          }
          stale = entry;
        } else {
          this.#retire(entry);
        }
      }
      if (!missed) {
        missed = true;
        stats.misses++;
      }
      let fresh: Entry;
      try {
        fresh = await (this.#flights.get(mapKey) ?? this.#generateFlight(mapKey, forward, checked.numberOfBytes, false));
      } catch (e) {
        if (stale && this.#serveStale(stale, e, s.now())) {
          // A stale entry serves only within its limits; it may have been used up meanwhile.
          if (this.#hasRoom(stale, bytes) && !stale.dead) {
            stats.staleServes++;
            stale.outage = e;
            this.#report(stale, s.now() - stale.createdAt, e);
            return this.#use(stale, bytes);
          }
        }
        throw e;
      }
      // Take a use of the fresh entry when it still has room (other waiters may have used it up). Its age
      // is not checked again: it was made for this wait, and a check could loop on a very short maxAge.
      if (!fresh.dead && this.#hasRoom(fresh, bytes)) return this.#use(fresh, bytes);
    }
  }

  #use(entry: Entry, bytes: number): DataKey {
    entry.messages++;
    entry.bytes += bytes;
    const answer: DataKey & { reused: true } = {
      keyId: entry.keyId,
      plaintext: entry.key.slice(),
      ciphertextBlob: entry.blob!.slice(),
      reused: true,
    };
    if (entry.messages >= this.#s.maxMessages || entry.bytes >= this.#s.maxBytes) this.#retire(entry);
    return answer;
  }

  #hasRoom(entry: Entry, bytes: number): boolean {
    return entry.messages < this.#s.maxMessages && entry.bytes + bytes <= this.#s.maxBytes;
  }

  // ---- decrypt side ----

  async decrypt(request: DecryptRequest): Promise<DecryptedDataKey> {
    this.#checkLive();
    const { blob, context } = checkDecryptRequest(request);
    const forward: DecryptRequest = { ciphertextBlob: blob, encryptionContext: context.map };
    const mapKey = `d\u0000${byteString(blob)}\u0000${contextKey(context)}`;
    const stats = this.#stats.decrypt;
    const s = this.#s;
    let missed = false;
    for (;;) {
      this.#checkLive();
      const now = s.now();
      const entry = this.#entries.get(mapKey);
      let stale: Entry | undefined;
      if (entry) {
        const age = now - entry.createdAt;
        if (age < s.maxAge) {
          this.#touch(entry);
          if (!missed) stats.hits++;
          this.#maybeRefresh(entry, age, () => this.#decryptFlight(mapKey, forward, true));
          return { keyId: entry.keyId, plaintext: entry.key.slice() };
        }
        if (age < s.maxAge + s.staleIfError) {
          if (entry.outage !== undefined) {
            if (!missed) stats.misses++;
            stats.staleServes++;
            this.#touch(entry);
            this.#report(entry, age, entry.outage);
            this.#retryInBackground(entry, () => this.#decryptFlight(mapKey, forward, true));
            return { keyId: entry.keyId, plaintext: entry.key.slice() };
          }
          stale = entry;
        } else this.#retire(entry);
      }
      if (!missed) {
        missed = true;
        stats.misses++;
      }
      let fresh: Entry;
      try {
        fresh = await (this.#flights.get(mapKey) ?? this.#decryptFlight(mapKey, forward, false));
      } catch (e) {
        if (stale && !stale.dead && this.#serveStale(stale, e, s.now())) {
          stats.staleServes++;
          stale.outage = e;
          this.#report(stale, s.now() - stale.createdAt, e);
          return { keyId: stale.keyId, plaintext: stale.key.slice() };
        }
        throw e;
      }
      if (!fresh.dead) return { keyId: fresh.keyId, plaintext: fresh.key.slice() };
    }
  }

  /** Ask the provider for a data key to cache on the encrypt side, checking its answer. */
  #generateFlight(mapKey: string, forward: GenerateDataKeyRequest, n: number, background: boolean): Promise<Entry> {
    return this.#flight('encrypt', mapKey, background, () => this.#inner.generateDataKey(forward), (answer) => {
      const plaintext = readAnswerField(answer, 'plaintext');
      if (!isBytes(plaintext) || plaintext.length !== n) throw new ProviderError('provider returned a data key of the wrong type or length');
      const blob = readAnswerField(answer, 'ciphertextBlob');
      if (!isBytes(blob) || blob.length < 1 || blob.length > PROVIDER_LIMITS.maxBlobBytes) {
        wipe(plaintext);
        throw new ProviderError('provider returned an invalid ciphertextBlob');
      }
      return { plaintext, blob: new Uint8Array(blob) };
    });
  }

  /** Ask the provider to unwrap a blob, for the decrypt side, checking its answer. */
  #decryptFlight(mapKey: string, forward: DecryptRequest, background: boolean): Promise<Entry> {
    return this.#flight('decrypt', mapKey, background, () => this.#inner.decrypt(forward), (answer) => {
      const plaintext = readAnswerField(answer, 'plaintext');
      if (!isBytes(plaintext) || plaintext.length < 1 || plaintext.length > PROVIDER_LIMITS.maxNumberOfBytes) {
        throw new ProviderError('provider returned a data key of the wrong type or length');
      }
      return { plaintext, blob: undefined };
    });
  }

  /**
   * One provider call that concurrent misses of `mapKey` share: its checked answer becomes an entry
   * (unless the cache was cleared meanwhile); a failure reaches every waiter and is not kept.
   * `check` returns the answer's data key (owned by the cache from then on) and, encrypt side, a copy of the blob.
   */
  #flight(
    side: CacheSide,
    mapKey: string,
    background: boolean,
    call: () => Promise<unknown>,
    check: (answer: unknown) => { plaintext: Uint8Array; blob: Uint8Array | undefined },
  ): Promise<Entry> {
    const stats = this.#stats[side];
    const epoch = this.#epoch;
    const flight = (async (): Promise<Entry> => {
      stats.kmsCalls++;
      let answer: unknown;
      try {
        answer = await call();
      } catch (e) {
        stats.kmsFailures++;
        throw e;
      }
      let key: Uint8Array | undefined;
      try {
        const { plaintext, blob } = check(answer);
        key = adoptKey(plaintext);
        const keyId = readAnswerField(answer, 'keyId');
        if (!isAnswerKeyId(keyId)) throw new ProviderError('provider returned an invalid keyId');
        const entry: Entry = {
          side,
          mapKey,
          keyId,
          key,
          blob,
          createdAt: this.#s.now(),
          messages: 0,
          bytes: 0,
          refreshing: false,
          dead: false,
          outage: undefined,
        };
        key = undefined;
        this.#insert(entry, epoch);
        return entry;
      } catch (e) {
        stats.kmsFailures++;
        wipe(key);
        throw e;
      }
    })();
    this.#track(mapKey, flight);
    if (background) stats.refreshes++;
    return flight;
  }

  // ---- shared ----

  #checkLive(): void {
    if (this.#disposed) throw new InvalidParameterError('this data-key cache was disposed');
  }

  /** Register a flight so that concurrent misses join it; forget it once it settles. */
  #track(mapKey: string, flight: Promise<Entry>): void {
    this.#flights.set(mapKey, flight);
    const forget = (): void => {
      if (this.#flights.get(mapKey) === flight) this.#flights.delete(mapKey);
    };
    flight.then(forget, forget);
  }

  /** A hit within `refreshAhead` of `maxAge` starts one background refresh of its entry. */
  #maybeRefresh(entry: Entry, age: number, start: () => Promise<Entry>): void {
    const s = this.#s;
    if (s.refreshAhead === 0 || entry.refreshing || age < s.maxAge - s.refreshAhead || this.#flights.has(entry.mapKey)) return;
    entry.refreshing = true;
    this.#background(entry, start);
  }

  /** During an outage: one background call at a time to see whether the provider is back. */
  #retryInBackground(entry: Entry, start: () => Promise<Entry>): void {
    if (this.#flights.has(entry.mapKey)) return;
    this.#background(entry, start);
  }

  #background(entry: Entry, start: () => Promise<Entry>): void {
    const s = this.#s;
    start().then(
      () => undefined,
      (e: unknown) => {
        const side = this.#stats[entry.side];
        side.refreshFailures++;
        // A provider that says the key is gone, disabled or refuses the blob ends the entry now.
        const evicted = keyRefused(e);
        if (evicted) this.#retire(entry);
        else if (entry.outage !== undefined && this.#isRetryable(e)) entry.outage = e;
        else entry.outage = undefined;
        this.#hook(s.onRefreshError, { side: entry.side, providerId: this.providerId, keyId: entry.keyId, evicted, error: e });
      },
    );
  }

  #isRetryable(error: unknown): boolean {
    try {
      return this.#s.isRetryable(error) === true;
    } catch {
      this.#stats.hookErrors++;
      return false;
    }
  }

  #serveStale(entry: Entry, error: unknown, now: number): boolean {
    const s = this.#s;
    if (entry.dead || now - entry.createdAt >= s.maxAge + s.staleIfError) return false;
    const retryable = this.#isRetryable(error);
    if (!retryable && keyRefused(error)) this.#retire(entry);
    return retryable;
  }

  #report(entry: Entry, ageMs: number, error: unknown): void {
    this.#hook(this.#s.onStaleServe, { side: entry.side, providerId: this.providerId, keyId: entry.keyId, ageMs, error });
  }

  #hook<E>(hook: ((event: E) => void) | undefined, event: E): void {
    if (!hook) return;
    try {
      hook(Object.freeze(event));
    } catch {
      this.#stats.hookErrors++;
    }
  }

  #insert(entry: Entry, epoch: number): void {
    if (this.#disposed || epoch !== this.#epoch) {
      // Cleared or disposed while the provider was asked: the waiters are answered, nothing is kept.
      this.#kill(entry);
      return;
    }
    const old = this.#entries.get(entry.mapKey);
    if (old) this.#retire(old);
    this.#entries.set(entry.mapKey, entry);
    this.#sweep();
    while (this.#entries.size > this.#s.capacity) {
      const lru = this.#entries.values().next().value!;
      this.#stats[lru.side].evictions++;
      this.#drop(lru);
    }
  }

  /**
   * Drop entries past any use (beyond `maxAge` and the stale window) from the least recently used
   * end, a few at a time: a miss costs O(1) whatever the capacity, and keys nobody asks for any more
   * are wiped as later misses come.
   */
  #sweep(): void {
    const s = this.#s;
    const now = s.now();
    let looked = 0;
    for (const e of this.#entries.values()) {
      if (++looked > SWEEP_PER_MISS) break;
      const window = e.side === 'decrypt' || s.staleOnEncrypt ? s.staleIfError : 0;
      if (now - e.createdAt >= s.maxAge + window) this.#retire(e);
    }
  }

  #touch(entry: Entry): void {
    this.#entries.delete(entry.mapKey);
    this.#entries.set(entry.mapKey, entry);
  }

  #retire(entry: Entry): void {
    if (entry.dead) return;
    this.#stats[entry.side].retirements++;
    this.#drop(entry);
  }

  #drop(entry: Entry): void {
    if (this.#entries.get(entry.mapKey) === entry) this.#entries.delete(entry.mapKey);
    this.#kill(entry);
  }

  #kill(entry: Entry): void {
    entry.dead = true;
    wipe(entry.key);
    entry.key = new Uint8Array(0);
  }
}

function readPlaintextLength(request: unknown): number | undefined {
  let v: unknown;
  try {
    v = (request as Record<string, unknown>)['plaintextLength'];
  } catch (e) {
    throw new InvalidParameterError('generateDataKey request could not be read', { cause: e });
  }
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) {
    throw new InvalidParameterError('"plaintextLength" must be a non-negative integer');
  }
  return v;
}

