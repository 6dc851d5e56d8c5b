/**
 * Encryption context: a string-to-string map that is authenticated but not
 * encrypted. This module checks a caller's map once, and encodes it canonically
 * (SPEC.md §3.2) so that key order never matters.
 * @module
 */
import { InvalidParameterError } from './errors.js';
import { ByteReader, ByteWriter, isWellFormed, lenSize, utf8DecodeStrict, utf8Encode } from '../internal/bytes.js';

/** A string-to-string map bound to the ciphertext. Never put secrets in it: it is stored in clear. */
export type EncryptionContext = Readonly<Record<string, string>>;

/** SPEC.md §5: limits on the encryption context. */
export const CONTEXT_LIMITS = /* @__PURE__ */ Object.freeze({
  /** Most entries in one context, not counting reserved (`ek:`) keys; and most entries in a header. */
  maxEntries: 64,
  /**
   * Most reserved (`ek:`) entries a context given to a provider may hold besides those: the
   * provider context (SPEC.md §3.2.1) is the envelope's context plus one entry.
   */
  maxReservedEntries: 4,
  /** Longest key, in UTF-8 bytes (at least 1). */
  maxKeyBytes: 256,
  /** Longest value, in UTF-8 bytes. */
  maxValueBytes: 2048,
});

/** A checked, canonically ordered context: entries sorted by the UTF-8 bytes of their keys. */
export interface CheckedContext {
  /** A fresh frozen plain object, keys in canonical order. */
  readonly map: EncryptionContext;
  /** Entries as UTF-8 bytes, in canonical order. */
  readonly entries: readonly (readonly [Uint8Array, Uint8Array])[];
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** A plain object built with defineProperty, so a key such as `__proto__` is an ordinary own property. */
function fromEntries(pairs: [string, string][]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of pairs) {
    if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    else out[k] = v;
  }
  return out;
}

/**
 * The checked context of each frozen map this module made. Such a map cannot change, so a map
 * handed back (the envelope layer gives providers `providerContext(...).map`, and a cache in front
 * of a provider checks it again) needs no second check.
 */
const CHECKED = new WeakMap<object, CheckedContext>();

/** The provider context of each checked context (a batch's shared context is extended once). */
const PROVIDER_CONTEXTS = new WeakMap<CheckedContext, CheckedContext>();

function finish(pairs: [string, string][], bytes: [Uint8Array, Uint8Array][]): CheckedContext {
  const idx = bytes.map((_, i) => i).sort((i, j) => compareBytes(bytes[i]![0], bytes[j]![0]));
  const map = Object.freeze(fromEntries(idx.map((i) => pairs[i]!)));
  const checked: CheckedContext = { map, entries: idx.map((i) => bytes[i]!) };
  CHECKED.set(map, checked);
  return checked;
}

/** The empty context, shared: everything in it is frozen. */
const EMPTY_CONTEXT: CheckedContext = /* @__PURE__ */ Object.freeze({ map: Object.freeze({}), entries: Object.freeze([]) });
CHECKED.set(EMPTY_CONTEXT.map, EMPTY_CONTEXT);

/**
 * Prefix of the context keys reserved for the library's own bindings (SPEC.md §3.2.1): a
 * caller's context never holds one, so an entry such as `ek:purpose` or `ek:blind-index`
 * always comes from the library.
 */
export const RESERVED_KEY_PREFIX = 'ek:';

/**
 * The entry added to the context of every provider call the envelope layer makes (SPEC.md §3.2.1).
 * It is not stored in the header: a reader adds it again.
 */
export const PROVIDER_PURPOSE_KEY = 'ek:purpose';
/** The value of {@link PROVIDER_PURPOSE_KEY}: data keys of format v1. */
export const PROVIDER_PURPOSE_VALUE = 'envelope-kit/v1/data-key';
const PURPOSE_ENTRY: readonly [Uint8Array, Uint8Array] = /* @__PURE__ */ Object.freeze([utf8Encode(PROVIDER_PURPOSE_KEY), utf8Encode(PROVIDER_PURPOSE_VALUE)] as const);

/** True when `key` starts with the reserved prefix `ek:` (compared as bytes; case-sensitive). */
export function isReservedKey(key: string): boolean {
  return key.startsWith(RESERVED_KEY_PREFIX);
}

/** True when a checked context holds a reserved (`ek:`) key. */
export function hasReservedKey(ctx: CheckedContext): boolean {
  return Object.keys(ctx.map).some(isReservedKey);
}

/**
 * Check the encryption context a caller gives to the envelope and records API (to encrypt, or
 * as a required context): {@link checkContext}, and no key may start with `ek:`.
 * @throws InvalidParameterError
 */
export function checkCallerContext(input: unknown, what = 'encryptionContext'): CheckedContext {
  const ctx = checkContext(input, what);
  if (hasReservedKey(ctx)) {
    throw new InvalidParameterError(`"${what}" keys must not start with "${RESERVED_KEY_PREFIX}": that prefix is reserved for the library's own bindings`);
  }
  return ctx;
}

/**
 * The context of a provider call for an envelope whose header holds `ctx` (SPEC.md §3.2.1):
 * `ctx` plus `"ek:purpose": "envelope-kit/v1/data-key"`, in canonical order. `ctx` holds no
 * `ek:purpose` entry (the parser and the caller checks refuse one).
 * @internal
 */
export function providerContext(ctx: CheckedContext): CheckedContext {
  const known = PROVIDER_CONTEXTS.get(ctx);
  if (known !== undefined) return known;
  // The entries are in canonical order already: the purpose entry goes in at its place.
  let at = 0;
  while (at < ctx.entries.length && compareBytes(ctx.entries[at]![0], PURPOSE_ENTRY[0]) < 0) at++;
  const entries = ctx.entries.slice();
  entries.splice(at, 0, PURPOSE_ENTRY);
  const keys = Object.keys(ctx.map);
  const pairs: [string, string][] = keys.map((k) => [k, ctx.map[k]!]);
  pairs.splice(Math.min(at, pairs.length), 0, [PROVIDER_PURPOSE_KEY, PROVIDER_PURPOSE_VALUE]);
  const map = Object.freeze(fromEntries(pairs));
  const out: CheckedContext = { map, entries };
  CHECKED.set(map, out);
  PROVIDER_CONTEXTS.set(ctx, out);
  return out;
}

/**
 * Check the caller-supplied encryption context given to a provider, and return a canonical copy.
 * `undefined` means the empty context. Reserved keys are allowed here: the envelope layer sends
 * them (see {@link checkCallerContext} for what callers of the envelope API may give).
 * @throws InvalidParameterError naming what is wrong (never the values themselves).
 */
export function checkContext(input: unknown, what = 'encryptionContext'): CheckedContext {
  if (input === undefined) return EMPTY_CONTEXT;
  if (input === null || typeof input !== 'object') {
    throw new InvalidParameterError(`"${what}" must be a plain object of string values`);
  }
  const known = CHECKED.get(input);
  if (known !== undefined) return known;
  let pairs: [string, string][];
  try {
    // Inside the try: a proxy (even a revoked one) throws from these.
    const proto = Object.getPrototypeOf(input);
    if (Array.isArray(input) || (proto !== Object.prototype && proto !== null)) {
      throw new InvalidParameterError(`"${what}" must be a plain object of string values`);
    }
    if (Object.getOwnPropertySymbols(input).length > 0) {
      throw new InvalidParameterError(`"${what}" must not have symbol keys`);
    }
    const keys = Object.keys(input);
    const most = CONTEXT_LIMITS.maxEntries + CONTEXT_LIMITS.maxReservedEntries;
    const reserved = keys.length > CONTEXT_LIMITS.maxEntries && keys.length <= most ? keys.filter(isReservedKey).length : 0;
    if (keys.length - reserved > CONTEXT_LIMITS.maxEntries || reserved > CONTEXT_LIMITS.maxReservedEntries) {
      throw new InvalidParameterError(`"${what}" has ${keys.length} entries; the limit is ${CONTEXT_LIMITS.maxEntries}`);
    }
    pairs = keys.map((k) => {
      const v = (input as Record<string, unknown>)[k];
      if (typeof v !== 'string') throw new InvalidParameterError(`"${what}" value for key ${JSON.stringify(k)} must be a string`);
      return [k, v];
    });
  } catch (e) {
    if (e instanceof InvalidParameterError) throw e;
    throw new InvalidParameterError(`"${what}" could not be read`, { cause: e });
  }
  if (pairs.length === 0) return EMPTY_CONTEXT;
  const bytes = pairs.map(([k, v]): [Uint8Array, Uint8Array] => {
    if (k.length === 0) throw new InvalidParameterError(`"${what}" keys must not be empty`);
    if (!isWellFormed(k) || !isWellFormed(v)) {
      throw new InvalidParameterError(`"${what}" keys and values must be well-formed Unicode (no lone surrogates)`);
    }
    const kb = utf8Encode(k);
    const vb = utf8Encode(v);
    if (kb.length > CONTEXT_LIMITS.maxKeyBytes) {
      throw new InvalidParameterError(`"${what}" key is ${kb.length} bytes; the limit is ${CONTEXT_LIMITS.maxKeyBytes}`);
    }
    if (vb.length > CONTEXT_LIMITS.maxValueBytes) {
      throw new InvalidParameterError(`"${what}" value for key ${JSON.stringify(k)} is ${vb.length} bytes; the limit is ${CONTEXT_LIMITS.maxValueBytes}`);
    }
    return [kb, vb];
  });
  return finish(pairs, bytes);
}

/** SPEC.md §3.2: `count:u8 || (len(key) || key || len(value) || value)*`, sorted by key bytes. */
export function writeContext(w: ByteWriter, ctx: CheckedContext): void {
  w.u8(ctx.entries.length);
  for (const [k, v] of ctx.entries) w.lenBytes(k).lenBytes(v);
}

/** Bytes {@link writeContext} writes for `ctx`. */
export function contextLength(ctx: CheckedContext): number {
  let n = 1;
  for (const [k, v] of ctx.entries) n += lenSize(k.length) + k.length + lenSize(v.length) + v.length;
  return n;
}

/** Canonical encoding of a context on its own (used as associated data by providers). */
export function encodeContext(ctx: CheckedContext): Uint8Array {
  const out = new Uint8Array(contextLength(ctx));
  const w = new ByteWriter(out);
  writeContext(w, ctx);
  w.expectFull(out);
  return out;
}

/**
 * Read a context from untrusted bytes, accepting only the canonical encoding:
 * keys strictly increasing (so no duplicates), valid UTF-8, within the limits.
 */
export function readContext(r: ByteReader, fail: (m: string) => Error): CheckedContext {
  const count = r.u8('context count');
  if (count > CONTEXT_LIMITS.maxEntries) throw fail(`context has ${count} entries; the limit is ${CONTEXT_LIMITS.maxEntries}`);
  if (count === 0) return EMPTY_CONTEXT;
  const pairs: [string, string][] = [];
  const bytes: [Uint8Array, Uint8Array][] = [];
  let prev: Uint8Array | undefined;
  for (let i = 0; i < count; i++) {
    const kb = r.lenBytes('context key', CONTEXT_LIMITS.maxKeyBytes, 1).slice();
    const vb = r.lenBytes('context value', CONTEXT_LIMITS.maxValueBytes).slice();
    if (prev && compareBytes(prev, kb) >= 0) throw fail('context keys are not in canonical order');
    prev = kb;
    const k = utf8DecodeStrict(kb);
    const v = utf8DecodeStrict(vb);
    if (k === undefined || v === undefined) throw fail('context is not valid UTF-8');
    pairs.push([k, v]);
    bytes.push([kb, vb]);
  }
  return { map: Object.freeze(fromEntries(pairs)), entries: bytes };
}

/** True when every entry of `required` is present with the same value in `actual`. */
export function contextContains(actual: CheckedContext, required: CheckedContext): boolean {
  let ok = true;
  for (const k of Object.keys(required.map)) {
    if (!Object.prototype.hasOwnProperty.call(actual.map, k) || actual.map[k] !== required.map[k]) ok = false;
  }
  return ok;
}

/** True when both contexts hold exactly the same entries. */
export function contextEquals(a: CheckedContext, b: CheckedContext): boolean {
  return a.entries.length === b.entries.length && contextContains(a, b);
}
