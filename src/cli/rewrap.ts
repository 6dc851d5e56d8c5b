/**
 * `envelope-kit rewrap`: change the master keys that can open envelope files
 * without decrypting or re-encrypting their bodies (SPEC.md §15), through the
 * library's `rewrapFile`. Each file is replaced atomically (a temporary file in
 * its folder with the new header and the old body, fsynced, renamed over it);
 * the temporary file is handed to the guardian and the stop signals (io.ts
 * `tempFileHooks`), so no failure leaves it behind and the original stays as it
 * was. One result line per file; a failing file does not stop the others, and
 * the exit status is then that of the first failure. `-` reads stdin and writes
 * the re-wrapped envelope to stdout, streaming the body.
 * @module
 */
import { promises as fs } from 'node:fs';
import { EnvelopeKitError, InvalidParameterError, MalformedEnvelopeError } from '../core/errors.js';
import { Readable } from 'node:stream';
import {
  FORMAT_LIMITS,
  LAYOUT_FIELD,
  LAYOUT_FRAMED,
  LAYOUT_NAMES,
  LAYOUT_SINGLE,
  MAX_TEXT_LENGTH,
  TEXT_PREFIX,
  envelopeFromText,
  isTruncation,
  parseHeader,
} from '../core/format.js';
import { keyVersionOf } from '../core/envelope.js';
import type { KeyProvider } from '../core/provider.js';
import { type EncryptedDataKeyInfo, type KeySelector, type ReplaceRule, type RewrapOptions, rewrap, rewrapHeader } from '../core/rewrap.js';
import type { Recipient } from '../core/envelope.js';
import { LOCAL_PROVIDER_ID, LocalKeyring } from '../providers/local/keyring.js';
import { ALIBABA_KMS_PROVIDER_ID } from '../providers/alibaba/provider.js';
import { writeStreamAtomic } from '../stream/node.js';
import { type RewrapFileResult, rewrapFile } from '../stream/rewrap-file.node.js';
import { parseCommand, parseContext } from './args.js';
import { isTextPrefix } from './decrypt-source.js';
import { errorLine, escapeControl, exitCodeFor, FileError } from './exit-codes.js';
import { fileError, tempFileHooks, writeToStdout } from './io.js';
import { ALIBABA_OPTIONS, KEYRING_OPTIONS, openProviders, type ProviderSet } from './providers.js';
import type { CommandIo } from './run.js';

/** The usage text of `envelope-kit rewrap`. */
export const REWRAP_USAGE = `usage: envelope-kit rewrap FILE...|- (--keyring FILE | --alibaba-endpoint URL | --alibaba-region ID)... [rules] [options]

Change which master keys can open envelopes (any layout, binary or text form) without
decrypting or re-encrypting their bodies: only the list of encrypted data keys in the
header changes; the body is copied byte for byte. Each FILE is replaced atomically (a
temporary file in its folder, with the file's mode, fsynced, renamed over it): on any
failure the file is left as it was. "-" reads stdin and writes to stdout.

rules (at least one; applied in this order: replace and rotate, remove, add):
  --replace OLDKEY=NEWKEY    move the data key wrapped by OLDKEY to NEWKEY (repeatable); within
                             one provider the provider re-encrypts it (the data key never
                             leaves it); NEWKEY may name another provider: PROVIDER:KEY
  --rotate KEY               move the data key wrapped by an older version of KEY to KEY's
                             newest version (after envelope-kit keys rotate; repeatable)
  --remove KEY               drop the data key wrapped by KEY (repeatable); one must remain
  --add PROVIDER:KEY         wrap the data key for KEY too (repeatable); PROVIDER is keyring or
                             alibaba, and may be left out when a single provider is given

KEY is a key id or, for the keyring, an alias; PROVIDER:KEY names the provider (keyring:KEY,
alibaba:KEY). The data key is unwrapped (and checked against the envelope's commitment)
only when a rule needs it: --add, or --replace to another provider.

options:
  --dry-run                  report what would change (the providers are asked), write nothing
  --context KEY=VALUE        an entry the envelope's context must hold (repeatable)
  --record-id ID             the record id the envelope was bound to
  --record-version V         the record version it was bound to
  -q, --quiet                no result lines (errors are still printed)
  -h, --help                 show this help

providers:
  --keyring FILE             a keyring file (see envelope-kit keys)
  --passphrase-env NAME      read its passphrase from environment variable NAME; without it,
                             the passphrase is asked for on the terminal (echo off)
  --unprotected-keyring      the keyring file keeps its master keys in clear (no passphrase)
  --alibaba-endpoint URL     Alibaba Cloud KMS at this endpoint
  --alibaba-region ID        Alibaba Cloud KMS of this region
                             AccessKey from ALIBABA_CLOUD_ACCESS_KEY_ID,
                             ALIBABA_CLOUD_ACCESS_KEY_SECRET (and ALIBABA_CLOUD_SECURITY_TOKEN)

One line per file on stdout ("FILE: rewrapped ...", "FILE: unchanged ...", or with
--dry-run "FILE: would rewrap ..."; on stderr when the output is stdout). A file that
fails is reported on stderr and the others are still done; the exit status is then that
of the first failure (see envelope-kit --help).
`;

const REWRAP_OPTIONS = {
  ...KEYRING_OPTIONS,
  ...ALIBABA_OPTIONS,
  add: { type: 'string', multiple: true },
  remove: { type: 'string', multiple: true },
  replace: { type: 'string', multiple: true },
  rotate: { type: 'string', multiple: true },
  'dry-run': { type: 'boolean' },
  context: { type: 'string', multiple: true },
  'record-id': { type: 'string' },
  'record-version': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The names a PROVIDER: prefix may use, and the provider id each one means. */
const PROVIDER_NAMES: Readonly<Record<string, string>> = Object.freeze({
  keyring: LOCAL_PROVIDER_ID,
  [LOCAL_PROVIDER_ID]: LOCAL_PROVIDER_ID,
  alibaba: ALIBABA_KMS_PROVIDER_ID,
  [ALIBABA_KMS_PROVIDER_ID]: ALIBABA_KMS_PROVIDER_ID,
});

/** A key named on the command line: `KEY` or `PROVIDER:KEY`. */
interface KeyRef {
  readonly providerId?: string;
  readonly key: string;
}

/** Read `KEY` or `PROVIDER:KEY` (a prefix that is not a provider's name is part of the key: `acs:kms:...`). */
export function parseKeyRef(text: string, option: string): KeyRef {
  const i = text.indexOf(':');
  if (i > 0) {
    const id = Object.prototype.hasOwnProperty.call(PROVIDER_NAMES, text.slice(0, i)) ? PROVIDER_NAMES[text.slice(0, i)] : undefined;
    if (id !== undefined) {
      const key = text.slice(i + 1);
      if (key.length === 0) throw new InvalidParameterError(`${option} needs a key after the provider's name`);
      return { providerId: id, key };
    }
  }
  if (text.length === 0) throw new InvalidParameterError(`${option} needs a key`);
  return { key: text };
}

/** The opened providers a reference may mean: the one it names, or every one. */
function providersOf(ref: KeyRef, providers: readonly KeyProvider[], option: string): KeyProvider[] {
  if (ref.providerId === undefined) return [...providers];
  const p = providers.filter((x) => x.providerId === ref.providerId);
  if (p.length === 0) {
    throw new InvalidParameterError(`${option} names ${ref.providerId === LOCAL_PROVIDER_ID ? 'the keyring: give --keyring FILE' : 'Alibaba Cloud KMS: give --alibaba-endpoint or --alibaba-region'}`);
  }
  return p;
}

/** The key id an encrypted data key of `p` records for `key`: an alias of the keyring resolved; anything else as given. */
function recordedKeyId(p: KeyProvider, key: string): string {
  if (p instanceof LocalKeyring) {
    try {
      return p.resolveKeyId(key);
    } catch {
      // Not in the keyring (any more): an envelope may still name it.
      return key;
    }
  }
  return key;
}

function canWrap(p: KeyProvider): boolean {
  return typeof p.encrypt === 'function' || typeof p.reEncrypt === 'function';
}

/** The re-wrap rules of the command line. */
export function buildRules(
  v: { add?: string[] | undefined; remove?: string[] | undefined; replace?: string[] | undefined; rotate?: string[] | undefined },
  providers: readonly KeyProvider[],
): Pick<RewrapOptions, 'add' | 'remove' | 'replace'> {
  const replace: ReplaceRule[] = [];
  const remove: KeySelector[] = [];
  const add: Recipient[] = [];
  for (const text of v.replace ?? []) {
    const eq = text.indexOf('=');
    if (eq <= 0 || eq === text.length - 1) throw new InvalidParameterError('--replace takes OLDKEY=NEWKEY');
    const from = parseKeyRef(text.slice(0, eq), '--replace');
    const to = parseKeyRef(text.slice(eq + 1), '--replace');
    const sources = providersOf(from, providers, '--replace');
    if (to.providerId !== undefined) {
      // To a named provider: from the old key in whichever provider holds it.
      const dest = providersOf(to, providers, '--replace')[0]!;
      if (!canWrap(dest)) throw new InvalidParameterError(`--replace: provider ${dest.providerId} cannot wrap a data key`);
      for (const p of sources) replace.push({ from: { providerId: p.providerId, keyId: recordedKeyId(p, from.key) }, to: { provider: dest, keyId: to.key } });
    } else {
      // Within each provider.
      for (const p of sources.filter(canWrap)) replace.push({ from: { providerId: p.providerId, keyId: recordedKeyId(p, from.key) }, to: { provider: p, keyId: to.key } });
    }
  }
  for (const text of v.rotate ?? []) {
    const ref = parseKeyRef(text, '--rotate');
    let any = false;
    for (const p of providersOf(ref, providers, '--rotate').filter(canWrap)) {
      const keyId = recordedKeyId(p, ref.key);
      let current: string | undefined;
      if (p instanceof LocalKeyring) {
        try {
          current = String(p.describeKey(keyId).currentVersion);
        } catch (e) {
          // The key is not in this keyring: it is another provider's, or an error below.
          if (ref.providerId !== undefined || providers.length === 1) throw e;
          continue;
        }
      }
      // Only data keys under an older version move (a provider that cannot tell the version: every one of KEY's).
      const from = (k: EncryptedDataKeyInfo) => k.providerId === p.providerId && k.keyId === keyId && (current === undefined || k.keyVersion !== current);
      replace.push({ from, to: { provider: p, keyId: ref.key } });
      any = true;
    }
    if (!any) throw new InvalidParameterError('--rotate: no provider given can rotate this key');
  }
  for (const text of v.remove ?? []) {
    // A data key of a provider that is not given can be removed too (nothing of it is needed).
    const ref = parseKeyRef(text, '--remove');
    const given = providers.filter((p) => ref.providerId === undefined || p.providerId === ref.providerId);
    for (const p of given) remove.push({ providerId: p.providerId, keyId: recordedKeyId(p, ref.key) });
    remove.push(ref.providerId !== undefined ? { providerId: ref.providerId, keyId: ref.key } : { keyId: ref.key });
  }
  for (const text of v.add ?? []) {
    const ref = parseKeyRef(text, '--add');
    const candidates = providersOf(ref, providers, '--add');
    if (candidates.length > 1) throw new InvalidParameterError('--add: name the provider, keyring:KEY or alibaba:KEY (several providers are given)');
    const p = candidates[0]!;
    if (!canWrap(p)) throw new InvalidParameterError(`--add: provider ${p.providerId} cannot wrap a data key`);
    add.push({ provider: p, keyId: ref.key });
  }
  if (replace.length + remove.length + add.length === 0) {
    throw new InvalidParameterError('rewrap needs at least one rule: --replace, --rotate, --remove or --add (see envelope-kit rewrap --help)');
  }
  return { replace, remove, add };
}

/** The record binding options, checked (the library's checks would name its own option names). */
function binding(value: string | undefined, option: string): string | undefined {
  if (value === undefined) return undefined;
  if (value.length === 0) throw new InvalidParameterError(`${option} must not be empty`);
  return value;
}

function describeKeys(keys: readonly EncryptedDataKeyInfo[]): string {
  return keys.map((k) => `${k.providerId}:${k.keyId}${k.keyVersion !== undefined ? `#${k.keyVersion}` : ''}`).join(', ');
}

/** The result line of one file. */
function resultLine(name: string, r: RewrapFileResult, dryRun: boolean): string {
  const file = escapeControl(name);
  if (!r.changed) return `${file}: unchanged (no rule applies): keys ${escapeControl(describeKeys(r.keys.before))}\n`;
  return (
    `${file}: ${dryRun ? 'would rewrap' : 'rewrapped'} (${r.layout}): keys ${escapeControl(describeKeys(r.keys.before))} -> ${escapeControl(describeKeys(r.keys.after))}; ` +
    `header ${r.headerBytes.before} -> ${r.headerBytes.after} bytes, body ${r.bodyBytes} bytes ${dryRun ? 'untouched (dry run: nothing written)' : 'copied unchanged'}\n`
  );
}

/** A system error of one file, as a FileError naming it. */
function describeFailure(e: unknown, name: string): unknown {
  if (e instanceof EnvelopeKitError || e instanceof FileError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code)) return e;
  return fileError('rewrap', name, e);
}

const ALL_LAYOUTS = [LAYOUT_SINGLE, LAYOUT_FIELD, LAYOUT_FRAMED];

/** The data keys a header (or the start of an envelope) lists. */
function keysOf(header: Uint8Array, providers: readonly KeyProvider[]): EncryptedDataKeyInfo[] {
  const { header: h } = parseHeader(header, FORMAT_LIMITS.maxEncryptedDataKeys, ALL_LAYOUTS, 'prefix');
  return h.encryptedDataKeys.map((e) => {
    const keyVersion = keyVersionOf(e, providers);
    return { providerId: e.providerId, keyId: e.keyId, blobLength: e.blob.length, ...(keyVersion !== undefined ? { keyVersion } : {}) };
  });
}

/** The result of re-wrapping a text envelope: the lengths of its binary form's header and body. */
function textResult(before: string, after: string, providers: readonly KeyProvider[]): RewrapFileResult {
  const a = envelopeFromText(before);
  const b = before === after ? a : envelopeFromText(after);
  const pa = parseHeader(a, FORMAT_LIMITS.maxEncryptedDataKeys, ALL_LAYOUTS, 'envelope');
  const pb = before === after ? pa : parseHeader(b, FORMAT_LIMITS.maxEncryptedDataKeys, ALL_LAYOUTS, 'envelope');
  return {
    changed: before !== after,
    headerBytes: { before: pa.bodyOffset, after: pb.bodyOffset },
    bodyBytes: a.length - pa.bodyOffset,
    layout: `${LAYOUT_NAMES[pa.header.layout]!}, text form`,
    keys: { before: keysOf(a, providers), after: keysOf(b, providers) },
  };
}

/**
 * A text envelope file (`ek1.…`, at most the text form's length): read whole, re-wrapped as text,
 * written back atomically with the file's mode and its trailing white space.
 */
async function rewrapTextFile(file: string, options: RewrapOptions, providers: readonly KeyProvider[], dryRun: boolean, atomic: { signal: AbortSignal; onTempFile: (p: string) => void }): Promise<RewrapFileResult> {
  const st = await fs.stat(file);
  if (st.size > MAX_TEXT_LENGTH + 2) throw new MalformedEnvelopeError('text envelope too long');
  const text = await fs.readFile(file, 'utf8');
  const trimmed = text.replace(/\s+$/, '');
  const out = await rewrap(trimmed, options);
  const changed = out !== trimmed;
  const result = textResult(trimmed, out, providers);
  if (changed && !dryRun) {
    await writeStreamAtomic(file, [new TextEncoder().encode(out + text.slice(trimmed.length))], { overwrite: true, mode: st.mode & 0o777, ...atomic });
  }
  return result;
}

/** Stdin to stdout: read until the header parses, write the new header, then stream the rest as it is. */
async function rewrapStdin(options: RewrapOptions, providers: readonly KeyProvider[], dryRun: boolean, io: CommandIo): Promise<RewrapFileResult> {
  const reader = (Readable.toWeb(process.stdin) as ReadableStream<Uint8Array>).getReader();
  const parts: Uint8Array[] = [];
  let held = 0;
  let ended = false;
  const more = async (): Promise<void> => {
    const { done, value } = await reader.read();
    if (done) ended = true;
    else {
      parts.push(value);
      held += value.length;
    }
  };
  const joined = (): Uint8Array => {
    const out = new Uint8Array(held);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    parts.length = 0;
    parts.push(out);
    return out;
  };
  while (held < TEXT_PREFIX.length && !ended) await more();
  if (isTextPrefix(joined())) {
    while (!ended) {
      await more();
      if (held > MAX_TEXT_LENGTH + 2) throw new MalformedEnvelopeError('text envelope too long');
    }
    const text = new TextDecoder('utf-8', { fatal: false }).decode(joined());
    const trimmed = text.replace(/\s+$/, '');
    const out = await rewrap(trimmed, options);
    if (!dryRun) await writeToStdout(new Blob([out + text.slice(trimmed.length)]).stream(), io.stdout);
    return textResult(trimmed, out, providers);
  }
  // Enough of the input that the header and the first tag of the body are held (or all of it).
  for (;;) {
    try {
      const { bodyOffset } = parseHeader(joined(), FORMAT_LIMITS.defaultMaxEncryptedDataKeys, ALL_LAYOUTS, 'prefix');
      if (held >= bodyOffset + 16 || ended) break;
    } catch (e) {
      if (!isTruncation(e) || ended) throw e;
    }
    await more();
  }
  const prefix = joined();
  const { header, bodyOffset, changed, layout } = await rewrapHeader(prefix, options);
  let bodyBytes = prefix.length - bodyOffset;
  if (!dryRun) {
    const rest = new ReadableStream<Uint8Array>(
      {
        start(c) {
          c.enqueue(header);
          if (prefix.length > bodyOffset) c.enqueue(prefix.subarray(bodyOffset));
        },
        async pull(c) {
          const { done, value } = await reader.read();
          if (done) c.close();
          else {
            bodyBytes += value.length;
            c.enqueue(value);
          }
        },
        cancel: (reason) => reader.cancel(reason),
      },
      { highWaterMark: 0 },
    );
    await writeToStdout(rest, io.stdout);
  } else {
    while (!ended) {
      const { done, value } = await reader.read();
      if (done) ended = true;
      else bodyBytes += value.length;
    }
  }
  const before = keysOf(prefix.subarray(0, bodyOffset), providers);
  return { changed, headerBytes: { before: bodyOffset, after: header.length }, bodyBytes, layout, keys: { before, after: changed ? keysOf(header, providers) : before } };
}

/**
 * Run `envelope-kit rewrap ...`.
 * @param args - the arguments after the command's name.
 * @returns 0 when every file was done; otherwise the exit status of the first failure.
 * @throws InvalidParameterError for a bad command line; the providers' errors when they cannot be opened.
 */
export async function rewrapCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values: v, positionals: files } = parseCommand(args, REWRAP_OPTIONS, Number.MAX_SAFE_INTEGER);
  if (v.help) {
    io.stdout.write(REWRAP_USAGE);
    return 0;
  }
  if (files.length === 0) throw new InvalidParameterError('rewrap needs at least one file, or - for stdin');
  if (files.some((f) => f === '')) throw new InvalidParameterError('rewrap: a file name must not be empty');
  const stdin = files.includes('-');
  if (stdin && files.length > 1) throw new InvalidParameterError('rewrap: - (stdin to stdout) cannot be given with files');
  const context = parseContext(v.context);
  const recordId = binding(v['record-id'], '--record-id');
  const recordVersion = binding(v['record-version'], '--record-version');
  const dryRun = v['dry-run'] === true;
  if (!(v.add || v.remove || v.replace || v.rotate)) {
    throw new InvalidParameterError('rewrap needs at least one rule: --replace, --rotate, --remove or --add (see envelope-kit rewrap --help)');
  }
  let set: ProviderSet | undefined;
  try {
    set = await openProviders(v, stdin, io.session.signal);
    const options: RewrapOptions = {
      providers: set.providers,
      ...buildRules(v, set.providers),
      ...(context ? { encryptionContext: context } : {}),
      ...(recordId !== undefined ? { recordId } : {}),
      ...(recordVersion !== undefined ? { recordVersion } : {}),
    };
    // Result lines go to stdout, unless it carries the envelope.
    const report = stdin ? io.stderr : io.stdout;
    let status = 0;
    for (const file of files) {
      const hooks = tempFileHooks(io.session);
      try {
        let r: RewrapFileResult;
        if (file === '-') {
          r = await rewrapStdin(options, set.providers, dryRun, io);
        } else if (await startsWithText(file)) {
          r = await rewrapTextFile(file, options, set.providers, dryRun, { signal: io.session.signal, onTempFile: hooks.onTempFile });
        } else {
          r = await rewrapFile(file, { ...options, dryRun, signal: io.session.signal, onTempFile: hooks.onTempFile });
        }
        if (!v.quiet) report.write(resultLine(file === '-' ? 'stdin' : file, r, dryRun));
      } catch (e) {
        const failure = describeFailure(e, file === '-' ? 'stdin' : file);
        io.stderr.write(`envelope-kit: ${escapeControl(file === '-' ? 'stdin' : file)}: ${errorLine(failure).slice('envelope-kit: '.length)}`);
        if (status === 0) status = exitCodeFor(failure);
      } finally {
        hooks.done();
      }
    }
    return status;
  } finally {
    set?.dispose();
  }
}

/** Whether a file begins like a text envelope (`ek1.`). */
async function startsWithText(file: string): Promise<boolean> {
  let fh;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    // The error is reported by the re-wrap itself, with the file's name.
    return false;
  }
  try {
    const head = new Uint8Array(TEXT_PREFIX.length);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return bytesRead === head.length && isTextPrefix(head);
  } catch {
    return false;
  } finally {
    await fh.close().catch(() => undefined);
  }
}
