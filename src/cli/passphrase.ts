/**
 * Where a keyring file's passphrase comes from: an environment variable the
 * caller names (`--passphrase-env NAME`), or a prompt on the terminal with echo
 * off. Never a command-line argument. What is typed at the prompt is collected
 * as bytes (UTF-8, never a JavaScript string) and wiped by the caller when done.
 * @module
 */
import { timingSafeEqual } from 'node:crypto';
import { InvalidParameterError } from '../core/errors.js';
import { InterruptedError } from './exit-codes.js';

/** Longest passphrase read at the prompt, in bytes (the keyring file's own limit). */
const MAX_PROMPT_BYTES = 65536;

/**
 * Read a passphrase from the environment variable `name`.
 * @throws InvalidParameterError when it is unset or empty (never a keyring read without a passphrase).
 */
export function passphraseFromEnv(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,254}$/.test(name)) throw new InvalidParameterError('--passphrase-env takes the name of an environment variable');
  const value = process.env[name];
  if (value === undefined || value === '') throw new InvalidParameterError(`environment variable ${name} is not set (or is empty)`);
  return value;
}

/** The terminal the prompt runs on: the process's stdin and stderr by default. */
export interface PromptTerminal {
  readonly input: NodeJS.ReadStream;
  readonly output: NodeJS.WritableStream;
}

/** Remove the last UTF-8 character of `buf[0..len)`; returns the new length. */
function dropLastChar(buf: Uint8Array, len: number): number {
  let i = len;
  while (i > 0) {
    i--;
    if ((buf[i]! & 0xc0) !== 0x80) break; // not a continuation byte: the start of the character
  }
  buf.fill(0, i, len);
  return i;
}

/**
 * Read one line from the terminal with echo off (raw mode): Enter ends it, Backspace deletes a
 * character, Ctrl-U the whole line, Ctrl-C interrupts, Ctrl-D on an empty line aborts.
 * @returns the bytes typed (a fresh array; the caller wipes it).
 * @throws InterruptedError on Ctrl-C; InvalidParameterError on Ctrl-D or an empty line.
 */
export async function promptHidden(prompt: string, term: PromptTerminal = { input: process.stdin, output: process.stderr }): Promise<Uint8Array> {
  const { input, output } = term;
  if (!input.isTTY) throw new InvalidParameterError('no terminal to ask for the passphrase on: use --passphrase-env NAME');
  output.write(prompt);
  let buf = new Uint8Array(256);
  let len = 0;
  const wasRaw = input.isRaw;
  input.setRawMode(true);
  input.resume();
  try {
    return await new Promise<Uint8Array>((resolve, reject) => {
      const finish = (err?: Error) => {
        input.off('data', onData);
        input.off('end', onEnd);
        if (err) {
          buf.fill(0);
          reject(err);
          return;
        }
        const out = buf.slice(0, len);
        buf.fill(0);
        resolve(out);
      };
      const onEnd = () => finish(new InvalidParameterError('no passphrase given'));
      const onData = (chunk: Buffer) => {
        for (let i = 0; i < chunk.length; i++) {
          const b = chunk[i]!;
          if (b === 0x0d || b === 0x0a) {
            chunk.fill(0);
            if (len === 0) return finish(new InvalidParameterError('no passphrase given'));
            return finish();
          }
          if (b === 0x03) {
            chunk.fill(0);
            return finish(new InterruptedError('SIGINT'));
          }
          if (b === 0x04) {
            if (len === 0) {
              chunk.fill(0);
              return finish(new InvalidParameterError('no passphrase given'));
            }
            continue;
          }
          if (b === 0x7f || b === 0x08) {
            len = dropLastChar(buf, len);
            continue;
          }
          if (b === 0x15) {
            buf.fill(0, 0, len);
            len = 0;
            continue;
          }
          if (b < 0x20) continue; // other control characters (escape sequences start with 0x1b) are ignored
          if (len >= MAX_PROMPT_BYTES) {
            chunk.fill(0);
            return finish(new InvalidParameterError(`the passphrase is longer than ${MAX_PROMPT_BYTES} bytes`));
          }
          if (len === buf.length) {
            const bigger = new Uint8Array(Math.min(buf.length * 2, MAX_PROMPT_BYTES));
            bigger.set(buf);
            buf.fill(0);
            buf = bigger;
          }
          buf[len++] = b;
        }
        chunk.fill(0);
      };
      input.on('data', onData);
      input.on('end', onEnd);
    });
  } finally {
    input.setRawMode(wasRaw);
    input.pause();
    output.write('\n');
  }
}

/**
 * Ask for a new passphrase twice (for a new keyring file).
 * @returns the passphrase bytes (the caller wipes them).
 * @throws InvalidParameterError when the two differ; see {@link promptHidden}.
 */
export async function promptNewPassphrase(what: string, term?: PromptTerminal): Promise<Uint8Array> {
  const first = await promptHidden(`New passphrase for ${what}: `, term);
  let second: Uint8Array | undefined;
  try {
    second = await promptHidden('Repeat the passphrase: ', term);
    if (first.length !== second.length || !timingSafeEqual(first, second)) throw new InvalidParameterError('the two passphrases differ');
    return first;
  } catch (e) {
    first.fill(0);
    throw e;
  } finally {
    second?.fill(0);
  }
}
