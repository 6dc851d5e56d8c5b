/**
 * Types of the records API (fields.ts): selectors checked against the record's
 * type at compile time, and result types that say what is there after
 * `encryptFields` (sealed fields are {@link EncryptedField} strings, blind
 * indexes and the record header added) and after `decryptFields` (the sealed
 * fields listed are their original types again).
 *
 * The path types are bounded: {@link FIELD_PATH_DEPTH} steps (a property or a
 * `[]`) are spelt out, and a recursive type is spelt out twice along a path;
 * below that any continuation is accepted, and the run-time check still applies. Records typed with a string index signature
 * (`Record<string, unknown>`) or `any` accept any selector.
 * @module
 */
import type { BlindIndex } from './blind-index.js';

declare const encryptedFieldBrand: unique symbol;

/**
 * A field sealed by `encryptFields`: at run time a string (`ek1.…`, or `ekf1.…`
 * in compact storage); in types it remembers the type `T` of the value it holds,
 * which `decryptFields` gives back. The brand exists only in types.
 */
export type EncryptedField<T = unknown> = string & { readonly [encryptedFieldBrand]: T };

/** How many steps (properties or `[]`) of a record's type the selector types spell out. */
export type FIELD_PATH_DEPTH = 8;

type Prev = [never, 0, 1, 2, 3, 4, 5, 6, 7, 8];
type IsAny<T> = 0 extends 1 & T ? true : false;
type IsFunction<V> = [V] extends [never] ? false : V extends (...args: never[]) => unknown ? true : false;
/** Values a selector cannot go into (it can only take them whole). */
type Leaf =
  | string
  | number
  | boolean
  | bigint
  | symbol
  | null
  | undefined
  | Date
  | Uint8Array
  | ReadonlyMap<unknown, unknown>
  | ReadonlySet<unknown>
  | ((...args: never[]) => unknown);
/** Whatever may follow a property whose type says nothing (`unknown`, `any`, beyond the depth bound). */
type AnyTail = '' | `.${string}` | `[]${string}`;
/** Property names a selector cannot spell (separators, the optional marker) or that are refused. */
type Spellable<K extends string> = K extends `${string}${'.' | '[' | ']' | '?'}${string}` | '__proto__' | 'constructor' | 'prototype' ? never : K;

/** How many times `T` is already on the path `Seen` (types are compared both ways). */
type CountIn<T, Seen extends unknown[], Acc extends unknown[] = []> = Seen extends [infer H, ...infer Rest]
  ? CountIn<T, Rest, [T] extends [H] ? ([H] extends [T] ? [...Acc, 0] : Acc) : Acc>
  : Acc['length'];

/** What may follow a property of type `V`: `''` (the property itself), `[]…` for arrays, `.…` for objects. */
type PathTail<V, D extends number, Seen extends unknown[]> = [D] extends [never]
  ? AnyTail
  : IsAny<V> extends true
    ? AnyTail
    : unknown extends V
      ? AnyTail
      : [NonNullable<V>] extends [never]
        ? ''
        : DefinedTail<NonNullable<V>, D, Seen>;
type DefinedTail<V, D extends number, Seen extends unknown[]> = V extends Leaf
  ? ''
  : V extends readonly (infer E)[]
    ? '' | `[]${PathTail<E, Prev[D], Seen>}`
    : V extends object
      ? CountIn<V, Seen> extends 0 | 1
        ? '' | `.${PathsOf<V, Prev[D], [...Seen, V]>}`
        : AnyTail
      : '';

type PathsOf<T, D extends number, Seen extends unknown[]> = [D] extends [never]
  ? string
  : string extends keyof T
    ? string
    : number extends keyof T
      ? string
      : {
          [K in keyof T & (string | number)]-?: IsFunction<NonNullable<T[K]>> extends true
            ? never
            : `${Spellable<`${K}`>}${PathTail<T[K], D, Seen>}`;
        }[keyof T & (string | number)];

/**
 * Every field path of a record type `T`: `ssn`, `address.street`,
 * `cards[].number` (`[]` = every element of an array), `cards[]` (each element
 * whole). Any string when `T` has a string index signature or is `any`, and
 * when its type names no property (`object`, `never`).
 */
export type FieldPath<T> = [T] extends [never]
  ? string
  : IsAny<T> extends true
    ? string
    : unknown extends T
      ? string
      : T extends object
        ? [keyof T] extends [never]
          ? string
          : PathsOf<T, Prev[FIELD_PATH_DEPTH], [T]>
        : never;

/** A field selector of `T`: a {@link FieldPath}, or one with a trailing `?` (may match nothing). */
export type FieldSelector<T> = FieldPath<T> | `${FieldPath<T>}?`;

/** The selector without its optional marker. */
type Strip<S> = S extends `${infer P}?` ? P : S;

/** The tails (`''`, `.…`, `[]…`) of the paths in `P` that start with property `K`. */
type TailsAt<P, K extends string> = [Spellable<K>] extends [never]
  ? never
  : P extends `${K}${infer R}`
    ? R extends '' | `.${string}` | `[]${string}`
      ? R
      : never
    : never;

/*
 * Blind indexes to add travel down the record's type as tuples
 * `[field path relative to the current object, into, optional]`.
 */
type AddTailsAt<A, K extends string> = A extends readonly [infer P extends string, infer N extends string, infer O extends boolean]
  ? TailsAt<P, K> extends infer R extends string
    ? [R] extends [never]
      ? never
      : R extends ''
        ? never
        : readonly [R, N, O]
    : never
  : never;
type DotTail<A> = A extends readonly [`.${infer R}`, infer N extends string, infer O extends boolean] ? readonly [R, N, O] : never;
type ElementTail<A> = A extends readonly [`[]${infer R}`, infer N extends string, infer O extends boolean] ? readonly [R, N, O] : never;

/** Blind-index properties added to an object of type `T`: required when the field is a required property and its selector is not optional. */
type AddedHere<T, A> = {
  [N in A extends readonly [infer P extends string, infer N2 extends string, false]
    ? P extends keyof T
      ? {} extends Pick<T, P>
        ? never
        : N2
      : never
    : never]: string;
} & {
  [N in A extends readonly [infer P extends string, infer N2 extends string, infer O extends boolean]
    ? P extends `${string}${'.' | '['}${string}`
      ? never
      : O extends true
        ? N2
        : P extends keyof T
          ? {} extends Pick<T, P>
            ? N2
            : never
          : N2
    : never]?: string;
};

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type SealValue<V, R, A> = [R] extends [never] ? ([A] extends [never] ? V : SealInside<V, never, A>) : '' extends R ? EncryptedField<V> : SealInside<V, R, A>;
type SealInside<V, R, A> =
  IsAny<V> extends true
    ? V
    : V extends Leaf
      ? V
      : V extends readonly (infer E)[]
        ? SealValue<E, R extends `[]${infer X}` ? X : never, ElementTail<A>>[]
        : V extends object
          ? SealObject<V, R extends `.${infer X}` ? X : never, DotTail<A>>
          : V;
type SealObject<T, P, A> = string extends keyof T
  ? { [K in keyof T]: unknown }
  : Simplify<{ [K in keyof T]: K extends string | number ? SealValue<T[K], TailsAt<P, `${K}`>, AddTailsAt<A, `${K}`>> : T[K] } & AddedHere<T, A>>;

/** `{ into }` names of a blind-index option, as additions to make. */
type IndexAdds<I> = {
  [K in keyof I & string]-?: NonNullable<I[K]> extends { readonly into: infer N extends string }
    ? readonly [Strip<K>, string extends N ? never : N, K extends `${string}?` ? true : false]
    : never;
}[keyof I & string];

/** Selectors that always seal something when the call succeeds: not optional, and no `[]` (an empty array matches with nothing to seal). */
type CertainSelector<S> = S extends `${string}?` ? never : S extends `${string}[]${string}` ? never : S;
/** The header property: present whenever something was sealed, so certain when one selector is. */
type HeaderOf<H, S> = [H] extends [never]
  ? {}
  : string extends H
    ? {}
    : H extends string
      ? [CertainSelector<S>] extends [never]
        ? { [K in H]?: string }
        : { [K in H]: string }
      : {};

/**
 * The type `encryptFields` returns for a record of type `T` and the selectors
 * `S`: each selected field an {@link EncryptedField} of its type, the blind
 * indexes `I` (`{ [selector]: { into } }`) added beside their fields as
 * strings, and the header property `H` when compact storage is used (a
 * `string`; optional when every selector is optional or goes through `[]`,
 * since the header is only written when something was sealed).
 */
export type EncryptedFields<T, S extends string, I = {}, H extends string = never> = Simplify<SealObject<T, Strip<S>, IndexAdds<I>> & HeaderOf<H, S>>;

type Opened<V> = V extends null | undefined ? V : V extends EncryptedField<infer P> ? P : unknown;
type UnsealValue<V, R> = [R] extends [never] ? V : '' extends R ? Opened<V> : UnsealInside<V, R>;
type UnsealInside<V, R> =
  IsAny<V> extends true
    ? V
    : V extends Leaf
      ? V
      : V extends readonly (infer E)[]
        ? UnsealValue<E, R extends `[]${infer X}` ? X : never>[]
        : V extends object
          ? UnsealObject<V, R extends `.${infer X}` ? X : never>
          : V;
type UnsealObject<T, P> = string extends keyof T
  ? { [K in keyof T]: unknown }
  : Simplify<{ [K in keyof T]: K extends string | number ? UnsealValue<T[K], TailsAt<P, `${K}`>> : T[K] }>;

/**
 * The type `decryptFields` returns for a record of type `E` and the selectors
 * `S` (without a schema): each listed {@link EncryptedField}`<T>` is a `T`
 * again (`unknown` where the record's type does not say what was sealed); every
 * other property is as it was.
 */
export type DecryptedFields<E, S extends string> = UnsealObject<E, Strip<S>>;

/** Where and how to store a blind index of a field. */
export interface BlindIndexField<N extends string = string> {
  /** The index to compute (from `openBlindIndex`). */
  readonly index: BlindIndex;
  /** Property, beside the field, that receives the index string (e.g. `email_idx`). */
  readonly into: N;
}

/** The `blindIndexes` option: by field selector (one of `fields`, as written there). */
export type BlindIndexOptions<S extends string = string> = { readonly [K in S]?: BlindIndexField };
