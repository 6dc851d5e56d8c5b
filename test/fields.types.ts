/**
 * Type-level tests of the records API, checked by `tsc --noEmit` (part of
 * `npm test`) and never run: each `@ts-expect-error` line must be a compile
 * error (tsc fails when it is not), every other line must compile, and each
 * `expectType<Equal<A, B>>()` holds only when A and B are the same type.
 */
import { z } from 'zod';
import {
  type BatchResult,
  type BlindIndex,
  type DecryptedFields,
  type EncryptedField,
  type EncryptedFields,
  type EnvelopeKitError,
  type FieldPath,
  type FieldSelector,
  type KeyProvider,
  decryptFields,
  decryptRecords,
  encryptFields,
  encryptRecords,
} from '../src/index.js';

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | void {}

declare const provider: KeyProvider;
declare const index: BlindIndex;
const o = { provider, keyId: 'alias/users' } as const;

interface User {
  id: number;
  name: string;
  email: string;
  nick?: string;
  address: { street: string; city: string } | null;
  cards: { number: string; exp: string; holder?: string }[];
  tags: string[];
  matrix: number[][];
  born: Date;
  photo: Uint8Array;
  meta: unknown;
  scores: Record<string, number>;
}
declare const user: User;

export async function validSelectors(): Promise<void> {
  await encryptFields(user, { ...o, fields: ['email'] });
  await encryptFields(user, { ...o, fields: ['email', 'name', 'id', 'born', 'photo'] });
  await encryptFields(user, { ...o, fields: ['address.street', 'address.city'] });
  await encryptFields(user, { ...o, fields: ['address'] });
  await encryptFields(user, { ...o, fields: ['cards[].number', 'cards[].holder?'] });
  await encryptFields(user, { ...o, fields: ['cards[]'] });
  await encryptFields(user, { ...o, fields: ['cards'] });
  await encryptFields(user, { ...o, fields: ['tags[]'] });
  await encryptFields(user, { ...o, fields: ['matrix[][]'] });
  await encryptFields(user, { ...o, fields: ['matrix[]'] });
  await encryptFields(user, { ...o, fields: ['nick?', 'email?', 'address.street?'] });
  // Below an `unknown` property or an index signature, any path.
  await encryptFields(user, { ...o, fields: ['meta', 'meta.a.b', 'meta[].c', 'scores.math', 'scores'] });
  // A list declared apart, with `as const` or as FieldSelector<T>[].
  const fields = ['email', 'cards[].number'] as const;
  await encryptFields(user, { ...o, fields });
  const declared: FieldSelector<User>[] = ['email', 'address.street'];
  await encryptFields(user, { ...o, fields: declared });
  // Records typed loosely accept any string.
  const loose: Record<string, unknown> = {};
  const dynamic: string[] = ['anything', 'x.y', 'z[]'];
  await encryptFields(loose, { ...o, fields: dynamic });
  const anyRecord: any = {};
  await encryptFields(anyRecord, { ...o, fields: ['whatever.it[].is'] });
  const plainObject: object = {};
  await encryptFields(plainObject, { ...o, fields: dynamic });
  expectType<Equal<FieldPath<Record<string, unknown>>, string>>();
  expectType<Equal<FieldPath<any>, string>>();
}

export async function invalidSelectors(): Promise<void> {
  // @ts-expect-error a misspelt field
  await encryptFields(user, { ...o, fields: ['emial'] });
  // @ts-expect-error a misspelt nested field
  await encryptFields(user, { ...o, fields: ['address.stret'] });
  // @ts-expect-error a misspelt field among valid ones
  await encryptFields(user, { ...o, fields: ['email', 'ssn'] });
  // @ts-expect-error an array without `[]`
  await encryptFields(user, { ...o, fields: ['cards.number'] });
  // @ts-expect-error `[]` on a property that is not an array
  await encryptFields(user, { ...o, fields: ['name[]'] });
  // @ts-expect-error `[]` on an object
  await encryptFields(user, { ...o, fields: ['address[].street'] });
  // @ts-expect-error more `[]` than the array has
  await encryptFields(user, { ...o, fields: ['tags[][]'] });
  // @ts-expect-error `[]` written with an index
  await encryptFields(user, { ...o, fields: ['cards[0].number'] });
  // @ts-expect-error a path through a string
  await encryptFields(user, { ...o, fields: ['email.length'] });
  // @ts-expect-error a path through a number
  await encryptFields(user, { ...o, fields: ['id.x'] });
  // @ts-expect-error a path through a Date
  await encryptFields(user, { ...o, fields: ['born.getTime'] });
  // @ts-expect-error a path through a Uint8Array
  await encryptFields(user, { ...o, fields: ['photo.length'] });
  // @ts-expect-error a path through __proto__
  await encryptFields(user, { ...o, fields: ['__proto__.isAdmin'] });
  // @ts-expect-error `?` anywhere but at the end
  await encryptFields(user, { ...o, fields: ['address?.street'] });
  // @ts-expect-error an empty selector
  await encryptFields(user, { ...o, fields: [''] });
  // @ts-expect-error a list of plain strings on a typed record
  await encryptFields(user, { ...o, fields: ['email'] as string[] });
  // @ts-expect-error decryptFields checks its selectors too
  await decryptFields(user, { provider, fields: ['emial'] });
  // @ts-expect-error batches too
  await encryptRecords([user], { ...o, fields: ['emial'] });
  // @ts-expect-error a blind index for a field that is not selected
  await encryptFields(user, { ...o, fields: ['email'], blindIndexes: { name: { index, into: 'name_idx' } } });
}

export async function resultTypes(): Promise<void> {
  const enc = await encryptFields(user, {
    ...o,
    fields: ['email', 'nick?', 'address.street?', 'cards[].number', 'cards[].holder?', 'tags[]'],
    blindIndexes: { email: { index, into: 'email_idx' }, 'nick?': { index, into: 'nick_idx' }, 'cards[].number': { index, into: 'number_idx' } },
    headerField: '_ek',
  });
  expectType<Equal<typeof enc.email, EncryptedField<string>>>();
  expectType<Equal<typeof enc.nick, EncryptedField<string | undefined> | undefined>>();
  expectType<Equal<typeof enc.name, string>>();
  expectType<Equal<typeof enc.id, number>>();
  expectType<Equal<typeof enc.email_idx, string>>();
  expectType<Equal<typeof enc.nick_idx, string | undefined>>();
  expectType<Equal<typeof enc._ek, string>>();
  expectType<Equal<typeof enc.address, { street: EncryptedField<string>; city: string } | null>>();
  expectType<Equal<(typeof enc.cards)[number], { number: EncryptedField<string>; exp: string; holder?: EncryptedField<string | undefined>; number_idx: string }>>();
  expectType<Equal<typeof enc.tags, EncryptedField<string>[]>>();
  expectType<Equal<typeof enc.born, Date>>();
  // A sealed field is a string, and no property was invented.
  const text: string = enc.email;
  void text;
  // @ts-expect-error not a property of the result
  void enc.other;
  // @ts-expect-error a plain string is not a sealed field
  const forged: EncryptedField<string> = 'ek1.AAAA';
  void forged;

  // The header is only written when something was sealed: optional when no selector is certain to match a field.
  const maybe = await encryptFields(user, { ...o, fields: ['nick?', 'cards[].number'], headerField: '_ek' });
  expectType<Equal<typeof maybe._ek, string | undefined>>();
  // Without compact storage or indexes, nothing is added.
  const bare = await encryptFields(user, { ...o, fields: ['email'] });
  expectType<Equal<keyof typeof bare, keyof User>>();

  // decryptFields maps the sealed fields it is given back to their types.
  const all = ['email', 'nick?', 'address.street?', 'cards[].number', 'cards[].holder?', 'tags[]'] as const;
  const dec = await decryptFields(enc, { provider, fields: all, headerField: '_ek' });
  expectType<Equal<typeof dec.email, string>>();
  expectType<Equal<typeof dec.nick, string | undefined>>();
  expectType<Equal<typeof dec.address, { street: string; city: string } | null>>();
  expectType<Equal<(typeof dec.cards)[number], { number: string; exp: string; holder?: string | undefined; number_idx: string }>>();
  expectType<Equal<typeof dec.tags, string[]>>();
  expectType<Equal<typeof dec.email_idx, string>>();
  // Partial decryption: the fields not listed stay sealed.
  const part = await decryptFields(enc, { provider, fields: ['email'] });
  expectType<Equal<typeof part.email, string>>();
  expectType<Equal<(typeof part.cards)[number]['number'], EncryptedField<string>>>();
  // A field whose type does not say what was sealed decrypts to unknown.
  const stored: { id: number; ssn: string } = { id: 1, ssn: 'ek1.…' };
  const fromDb = await decryptFields(stored, { provider, fields: ['ssn'] });
  expectType<Equal<typeof fromDb, { id: number; ssn: unknown }>>();
  // With a schema, its output type.
  const checked = await decryptFields(enc, { provider, fields: ['email'], schema: z.object({ email: z.string() }) });
  expectType<Equal<typeof checked, { email: string }>>();
  // The two mappings are inverse.
  type S = 'email' | 'nick?' | 'address.street' | 'cards[].number' | 'tags[]' | 'matrix[][]' | 'born';
  expectType<Equal<DecryptedFields<EncryptedFields<User, S>, S>, { [K in keyof User]: User[K] }>>();
}

export async function batchTypes(): Promise<void> {
  const enc = await encryptRecords([user, user], { ...o, fields: ['email'], recordId: (r) => r.id, blindIndexes: { email: { index, into: 'email_idx' } } });
  const first = enc[0]!;
  if (first.ok) {
    expectType<Equal<typeof first.value.email, EncryptedField<string>>>();
    expectType<Equal<typeof first.value.email_idx, string>>();
  } else {
    expectType<Equal<typeof first.error, EnvelopeKitError>>();
  }
  const values = enc.flatMap((r) => (r.ok ? [r.value] : []));
  const dec = await decryptRecords(values, { provider, fields: ['email'], recordId: (r) => r.id });
  const d = dec[0]!;
  if (d.ok) expectType<Equal<typeof d.value.email, string>>();
  else expectType<Equal<typeof d.error, EnvelopeKitError>>();
  expectType<Equal<BatchResult<number>, { readonly ok: true; readonly value: number } | { readonly ok: false; readonly error: EnvelopeKitError }>>();
}

/** Recursive and deep types: the path types are bounded, so these compile quickly; below the bound any continuation is accepted. */
interface Tree {
  name: string;
  children: Tree[];
  parent?: Tree;
  next?: Tree;
  attrs: { key: string; value: Tree; more: { a: Tree; b: Tree[] } };
}
declare const tree: Tree;
interface Deep {
  a: { b: { c: { d: { e: { f: { g: { h: { i: { j: string } } } } } } } } };
}
declare const deep: Deep;

export async function recursiveTypes(): Promise<void> {
  await encryptFields(tree, { ...o, fields: ['name', 'children[].name', 'parent.next.attrs.value.name', 'attrs.more.b[].children[].name'] });
  // @ts-expect-error a misspelling within the bound
  await encryptFields(tree, { ...o, fields: ['children[].nmae'] });
  await encryptFields(deep, { ...o, fields: ['a.b.c.d.e.f.g'] });
  // @ts-expect-error within the bound
  await encryptFields(deep, { ...o, fields: ['a.b.c.x'] });
  // Beyond the bound (8 steps) the type accepts any continuation; the run-time check still applies.
  await encryptFields(deep, { ...o, fields: ['a.b.c.d.e.f.g.h.i.j', 'a.b.c.d.e.f.g.h.zz'] });
}
