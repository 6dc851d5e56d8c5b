/**
 * Field selectors and checked record copies for the records API (fields.ts,
 * SPEC.md §12): parsing `a.b[].c` selectors, a near-linear overlap check over a
 * trie of path steps, and the walk that finds each selector's locations in a
 * copy of the record. Every container on a selected path is copied once, own
 * enumerable properties read once each and defined as data properties (never
 * assigned, so an own `__proto__` key stays a key), and only the copy is read
 * afterwards.
 * @module
 */
import { EnvelopeKitError, FieldNotFoundError, InvalidParameterError } from '../core/errors.js';
import { pathKey } from './value-encoding.js';

/** Bounds on the selectors of one call (README "Fields of records"). */
export const SELECTOR_LIMITS = /* @__PURE__ */ Object.freeze({
  /** Selectors in `fields`. */
  maxSelectors: 1024,
  /** Characters (UTF-16 code units) of one selector, its `?` included. */
  maxSelectorLength: 1024,
  /** Characters of a property name given on its own (`headerField`, a blind index's `into`). */
  maxNameLength: 256,
});

/** Names refused as a step of a selector or as a property name to write. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** One `name[][]` step of a selector. */
export interface Segment {
  readonly name: string;
  /** How many `[]` follow the name. */
  readonly arrays: number;
}

/** A parsed selector. */
export interface Selector {
  /** As the caller wrote it (with its `?`, if any). */
  readonly text: string;
  readonly segments: readonly Segment[];
  /** Written with a trailing `?`: may match nothing. */
  readonly optional: boolean;
}

export type Step = string | number;

/** One concrete place a selector names, and the value it held in the checked copy. */
export interface Located {
  readonly steps: readonly Step[];
  readonly path: string;
  readonly selector: Selector;
  readonly value: unknown;
}

const SEGMENT_RE = /^([^.[\]?]+)((?:\[\])*)$/;

/** Run `f`, turning any foreign throw (a hostile proxy or getter in the caller's input) into InvalidParameterError. */
export function guard<R>(what: string, f: () => R): R {
  try {
    return f();
  } catch (e) {
    if (e instanceof EnvelopeKitError) throw e;
    throw new InvalidParameterError(`${what} could not be read`, { cause: e });
  }
}

/** Parse `a.b[].c` (or `a.b[].c?`) into segments. @throws InvalidParameterError */
export function parseSelector(text: unknown): Selector {
  if (typeof text !== 'string' || text.length === 0 || text.length > SELECTOR_LIMITS.maxSelectorLength) {
    throw new InvalidParameterError(
      `field selectors must be strings of 1 to ${SELECTOR_LIMITS.maxSelectorLength} characters like "address.street" or "cards[].number"`,
    );
  }
  const optional = text.endsWith('?');
  const body = optional ? text.slice(0, -1) : text;
  const segments = body.split('.').map((part) => {
    const m = SEGMENT_RE.exec(part);
    if (!m) throw new InvalidParameterError(`invalid field selector ${JSON.stringify(text)}`);
    if (RESERVED_NAMES.has(m[1]!)) throw new InvalidParameterError(`field selector ${JSON.stringify(text)} goes through ${JSON.stringify(m[1])}, which is refused`);
    return { name: m[1]!, arrays: m[2]!.length / 2 };
  });
  return { text, segments, optional };
}

/**
 * Check a property name the library writes (`headerField`, a blind index's `into`):
 * a non-empty string, not `__proto__`, `constructor` or `prototype`.
 */
export function checkPropertyName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > SELECTOR_LIMITS.maxNameLength) {
    throw new InvalidParameterError(`${what} must be a property name of 1 to ${SELECTOR_LIMITS.maxNameLength} characters`);
  }
  if (RESERVED_NAMES.has(name)) throw new InvalidParameterError(`${what} ${JSON.stringify(name)} is refused: it is not an ordinary property name`);
  return name;
}

/** Read and parse the `fields` option: a non-empty array of at most `maxSelectors` selectors, each element read once. */
export function readSelectors(fields: unknown): Selector[] {
  const list = guard('"fields"', () => {
    if (!Array.isArray(fields)) throw new InvalidParameterError('"fields" must be a non-empty array of selectors');
    const n = fields.length;
    if (n === 0) throw new InvalidParameterError('"fields" must be a non-empty array of selectors');
    if (n > SELECTOR_LIMITS.maxSelectors) throw new InvalidParameterError(`"fields" may hold at most ${SELECTOR_LIMITS.maxSelectors} selectors`);
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push((fields as unknown[])[i]);
    return out;
  });
  return list.map(parseSelector);
}

interface TrieEntry {
  /** The entry ending at this step with the fewest `[]` (it covers every path through here with at least as many). */
  min?: { readonly arrays: number; readonly label: string };
  /** The entry through this step with the most `[]`. */
  max?: { readonly arrays: number; readonly label: string };
  readonly children: Map<number, Map<string, TrieEntry>>;
}

/**
 * Overlap check of selectors and of the properties the library writes beside
 * them, in time linear in the total number of steps. Path `a` covers path `b`
 * when `a`'s steps are a prefix of `b`'s, all but `a`'s last equal, and `a`'s
 * last has the same name and no more `[]` than `b`'s step there.
 */
export class OverlapCheck {
  readonly #root = new Map<string, TrieEntry>();

  /** Add a path; `label` names it in the error. @throws InvalidParameterError when it overlaps one already added. */
  add(segments: readonly Segment[], label: string): void {
    let level = this.#root;
    for (let k = 0; k < segments.length; k++) {
      const seg = segments[k]!;
      const last = k === segments.length - 1;
      let e = level.get(seg.name);
      if (!e) {
        e = { children: new Map() };
        level.set(seg.name, e);
      }
      if (e.min && e.min.arrays <= seg.arrays) throw overlap(e.min.label, label);
      if (last && e.max && e.max.arrays >= seg.arrays) throw overlap(label, e.max.label);
      if (!e.max || seg.arrays > e.max.arrays) e.max = { arrays: seg.arrays, label };
      if (last) {
        if (!e.min || seg.arrays < e.min.arrays) e.min = { arrays: seg.arrays, label };
        return;
      }
      let next = e.children.get(seg.arrays);
      if (!next) {
        next = new Map();
        e.children.set(seg.arrays, next);
      }
      level = next;
    }
  }
}

function overlap(a: string, b: string): InvalidParameterError {
  return new InvalidParameterError(`${a} and ${b} overlap`);
}

/** Label of a selector in error messages. Selectors are the app's own code, never data. */
export function selectorLabel(s: Selector): string {
  return `field selector ${JSON.stringify(s.text)}`;
}

/** Parse the selectors and refuse overlapping ones. */
export function checkSelectors(fields: unknown): { selectors: Selector[]; overlaps: OverlapCheck } {
  const selectors = readSelectors(fields);
  const overlaps = new OverlapCheck();
  for (const s of selectors) overlaps.add(s.segments, selectorLabel(s));
  return { selectors, overlaps };
}

export function isContainer(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function hasOwn(o: object, k: PropertyKey): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/** Define `o[k] = v` as an own data property (no setter, no `__proto__` special case). */
export function defineData(o: object, k: PropertyKey, v: unknown): void {
  Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
}

/**
 * A shallow copy: own enumerable properties (string and symbol keys, as
 * `Object.assign` takes them) read once each and defined as data properties
 * on an object of the same prototype; arrays become plain arrays of their
 * elements (holes read as `undefined`).
 */
export function copyContainer(v: object): Record<PropertyKey, unknown> {
  if (Array.isArray(v)) {
    const n = v.length;
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) defineData(out, i, (v as unknown[])[i]);
    return out as unknown as Record<PropertyKey, unknown>;
  }
  const out = Object.create(Object.getPrototypeOf(v)) as Record<PropertyKey, unknown>;
  for (const k of Reflect.ownKeys(v)) {
    const d = Reflect.getOwnPropertyDescriptor(v, k);
    if (!d || !d.enumerable) continue;
    defineData(out, k, 'value' in d ? d.value : d.get?.call(v));
  }
  return out;
}

const MAX_PROTOTYPE_CHAIN = 1000;

/**
 * Refuse a thenable (a Promise, or anything with a `then` method or a `then`
 * accessor on it or its prototypes): `await` would call it.
 * @throws InvalidParameterError
 */
export function refuseThenable(o: object, what: string): void {
  const bad = guard(what, () => {
    let p: object | null = o;
    for (let i = 0; p !== null; i++) {
      if (i > MAX_PROTOTYPE_CHAIN) return true;
      const d = Reflect.getOwnPropertyDescriptor(p, 'then');
      if (d) return d.get !== undefined || d.set !== undefined || typeof d.value === 'function';
      p = Object.getPrototypeOf(p) as object | null;
    }
    return false;
  });
  if (bad) throw new InvalidParameterError(`${what} must not be a thenable (a Promise, or an object with a "then" method): await it first`);
}

function stepsPath(steps: readonly Step[]): string {
  let p = '$';
  for (const s of steps) p = typeof s === 'number' ? `${p}[${s}]` : pathKey(p, s);
  return p;
}

/**
 * A record's checked copy: the root copied at once, and each container on a
 * selected path copied the first time a selector walks through it. The copy
 * is what the caller gets back, with the selected locations replaced.
 */
export class RecordCopy {
  readonly root: Record<PropertyKey, unknown>;
  readonly #copies = new WeakSet<object>();

  constructor(record: object) {
    this.root = copyContainer(record);
    this.#copies.add(this.root);
  }

  /** The container at `parent[key]`, copied into the parent on first use. */
  #own(parent: Record<PropertyKey, unknown>, key: Step): Record<PropertyKey, unknown> {
    const v = parent[key] as Record<PropertyKey, unknown>;
    if (this.#copies.has(v)) return v;
    const c = copyContainer(v);
    this.#copies.add(c);
    defineData(parent, key, c);
    return c;
  }

  /**
   * Every location `sel` names. A selector matches when it names at least one
   * present property, or reaches an empty array through a `[]` (there is then
   * nothing to encrypt); a property counts as present when it is an own
   * property, whatever its value (`null` and `undefined` included). A `null`
   * or `undefined` on the way is skipped; any other non-object on the way is an error.
   * @throws FieldNotFoundError when a selector not marked optional matches nothing.
   */
  locate(sel: Selector): Located[] {
    const out: Located[] = [];
    let matched = false;
    const last = sel.segments.length - 1;
    /** Walk segment `i` from `parent[key]` (the root when `parent` is undefined). */
    const walk = (parent: Record<PropertyKey, unknown> | undefined, key: Step, i: number, steps: readonly Step[]): void => {
      const seg = sel.segments[i]!;
      const node = parent === undefined ? this.root : parent[key];
      if (!isContainer(node)) {
        if (node === undefined || node === null) return;
        throw new InvalidParameterError(`field ${sel.text}: ${stepsPath(steps)} is not an object`);
      }
      if (!hasOwn(node, seg.name)) return;
      const own = parent === undefined ? this.root : this.#own(parent, key);
      // The copy decides (a proxy may answer the two questions differently).
      if (!hasOwn(own, seg.name)) return;
      const expand = (holder: Record<PropertyKey, unknown>, k: Step, depth: number, st: readonly Step[]): void => {
        if (depth === seg.arrays) {
          if (i === last) {
            matched = true;
            out.push({ steps: st, path: stepsPath(st), selector: sel, value: holder[k] });
          } else {
            walk(holder, k, i + 1, st);
          }
          return;
        }
        const v = holder[k];
        if (v === undefined || v === null) return;
        if (!Array.isArray(v)) throw new InvalidParameterError(`field ${sel.text}: ${stepsPath(st)} is not an array`);
        const arr = this.#own(holder, k);
        const n = (arr as unknown as unknown[]).length;
        if (n === 0) matched = true;
        for (let j = 0; j < n; j++) expand(arr, j, depth + 1, [...st, j]);
      };
      expand(own, seg.name, 0, [...steps, seg.name]);
    };
    walk(undefined, '', 0, []);
    if (!matched && !sel.optional) throw new FieldNotFoundError(sel.text);
    return out;
  }

  /** Set `value` at `steps`; every container on the way is already a copy (made by {@link locate}). */
  set(steps: readonly Step[], value: unknown): void {
    let n = this.root;
    for (let i = 0; i < steps.length - 1; i++) n = n[steps[i]!] as Record<PropertyKey, unknown>;
    defineData(n, steps[steps.length - 1]!, value);
  }

  /** The container holding `steps` (the record itself for a top-level field). */
  parentOf(steps: readonly Step[]): Record<PropertyKey, unknown> {
    let n = this.root;
    for (let i = 0; i < steps.length - 1; i++) n = n[steps[i]!] as Record<PropertyKey, unknown>;
    return n;
  }
}
