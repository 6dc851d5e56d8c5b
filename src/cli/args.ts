/**
 * Command-line parsing for `envelope-kit`: `node:util` `parseArgs` in strict
 * mode, with errors turned into the library's {@link InvalidParameterError}
 * (exit status 2) whose messages never repeat an argument's value (a value
 * typed in the wrong place may be a secret), and the option values the
 * commands share (`--context k=v`, sizes) read and checked once.
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidParameterError } from '../core/errors.js';

/** The option table of one command, in `parseArgs` form. */
export type OptionTable = NonNullable<ParseArgsConfig['options']>;

/** Options that would carry a passphrase on the command line, which is visible to every user of the machine (`ps`). */
const PASSPHRASE_OPTION_RE = /^--?(?:passphrase|password|pass|pw|secret)(?:=|$)/i;

/**
 * Parse the arguments of one command.
 * @param args - the arguments after the command's name.
 * @param options - the command's options.
 * @param positionals - how many positional arguments the command takes, at most.
 * @returns the option values and the positional arguments.
 * @throws InvalidParameterError for an unknown option, a missing value, an option given twice,
 *   too many arguments, or an attempt to give a passphrase as an argument.
 */
export function parseCommand<T extends OptionTable>(
  args: readonly string[],
  options: T,
  positionals: number,
): { values: ReturnType<typeof parseArgs<{ options: T; strict: true; allowPositionals: true }>>['values']; positionals: string[] } {
  for (const a of args) {
    if (a === '--') break;
    if (PASSPHRASE_OPTION_RE.test(a)) {
      throw new InvalidParameterError(
        'a passphrase is never taken as a command-line argument (other users can read those): use --passphrase-env NAME, or type it at the prompt',
      );
    }
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true, tokens: true });
  } catch (e) {
    throw new InvalidParameterError(describeParseError(e, args));
  }
  // An option that is not `multiple` and is given twice is most likely a mistake: refused.
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option' || options[t.name]?.multiple) continue;
    if (seen.has(t.name)) throw new InvalidParameterError(`--${t.name} is given more than once`);
    seen.add(t.name);
  }
  if (parsed.positionals.length > positionals) {
    throw new InvalidParameterError(
      positionals === 0 ? 'this command takes no arguments besides its options' : `too many arguments (at most ${positionals})`,
    );
  }
  return { values: parsed.values as never, positionals: parsed.positionals };
}

/** A message for a `parseArgs` error that names the option only, never a value. */
function describeParseError(e: unknown, args: readonly string[]): string {
  const code = (e as { code?: unknown })?.code;
  const message = e instanceof Error ? e.message : '';
  // The option, as Node's message quotes it, cut before any "=value".
  const quoted = /'(-[^'=\s]*)/.exec(message)?.[1];
  const option = quoted !== undefined && args.some((a) => a === quoted || a.startsWith(`${quoted}=`)) ? quoted : undefined;
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return option !== undefined ? `unknown option ${option}` : 'unknown option';
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return option !== undefined ? `option ${option} needs a value (or takes none)` : 'an option is missing its value, or takes none';
    default:
      return 'invalid command line';
  }
}

/**
 * Read `--context k=v` options into an encryption context. The key is what comes before the
 * first `=`; the value may itself contain `=` and may be empty.
 * @throws InvalidParameterError for an entry without `=`, an empty key, or a key given twice.
 */
export function parseContext(entries: readonly string[] | undefined, option = '--context'): Record<string, string> | undefined {
  if (entries === undefined || entries.length === 0) return undefined;
  const out: Record<string, string> = Object.create(null);
  for (const e of entries) {
    const i = e.indexOf('=');
    if (i <= 0) throw new InvalidParameterError(`${option} takes KEY=VALUE with a non-empty KEY`);
    const key = e.slice(0, i);
    if (Object.prototype.hasOwnProperty.call(out, key)) throw new InvalidParameterError(`${option}: the key ${JSON.stringify(key)} is given twice`);
    out[key] = e.slice(i + 1);
  }
  // A plain object again, for the library's checks.
  return { ...out };
}

const SIZE_UNITS: Readonly<Record<string, number>> = /* @__PURE__ */ Object.freeze({ '': 1, k: 1024, kib: 1024, m: 1024 * 1024, mib: 1024 * 1024 });

/**
 * Read a byte size: a decimal integer with an optional unit `k`/`KiB` (1024) or `m`/`MiB` (1024²).
 * @throws InvalidParameterError when it is not one, or is outside `min..max`.
 */
export function parseSize(text: string, option: string, min: number, max: number): number {
  const m = /^(\d{1,10})\s*([a-z]*)$/i.exec(text);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  const n = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new InvalidParameterError(`${option} must be a size from ${min} to ${max} bytes (units: k, KiB, m, MiB)`);
  }
  return n;
}

/**
 * Read a list given as repeated options and/or comma-separated values (`--key-ids a,b --key-ids c`).
 * @returns the entries, without empty ones; undefined when none was given.
 */
export function parseList(values: readonly string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const out = values.flatMap((v) => v.split(',')).map((s) => s.trim()).filter((s) => s.length > 0);
  return out.length > 0 ? out : undefined;
}
