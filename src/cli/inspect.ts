/**
 * `envelope-kit inspect`: what an envelope's header says (format, suite,
 * layout, message id, encryption context, the encrypted data keys' providers
 * and key ids, segment size) and its lengths, through the library's `inspect`.
 * No key is needed and nothing secret is printed: the data keys' blobs are
 * reported by length only.
 *
 * Only the header is held in memory: a binary envelope file goes through the
 * library's `inspectFile` (its header is read, its size taken from the file
 * system), so a large file is inspected at once; stdin is read until the
 * header parses, and the rest only counted.
 * @module
 */
import { TAG_LENGTH } from '../core/aead/types.js';
import { type EnvelopeInfo, envelopeInfo, inspect } from '../core/envelope.js';
import { InvalidParameterError, MalformedEnvelopeError } from '../core/errors.js';
import { FORMAT_LIMITS, LAYOUT_FRAMED, LAYOUT_NAMES, MAX_TEXT_LENGTH, TEXT_PREFIX, isTruncation, maxHeaderBytes, parseHeader } from '../core/format.js';
import { inspectFile } from '../stream/node.js';
import { parseCommand } from './args.js';
import { isTextPrefix } from './decrypt-source.js';
import { escapeControl } from './exit-codes.js';
import { openInput } from './io.js';
import { formatBytes } from './progress.js';
import type { CommandIo } from './run.js';

/** The usage text of `envelope-kit inspect`. */
export const INSPECT_USAGE = `usage: envelope-kit inspect FILE|- [--json]

Print what the header of an envelope (binary or text form, any layout) says: format,
suite, layout, message id, encryption context, the encrypted data keys' providers and
key ids, segment size and lengths. No key is needed; nothing secret is printed.
Only the header is read into memory.

options:
  --json        one JSON object (the fields of the library's inspect())
  -h, --help    show this help
Exit statuses: see envelope-kit --help (3: not a well-formed envelope).
`;

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Inspect an envelope read from a stream, holding only its header (the rest is counted); a text
 * envelope, one base64 string, is read whole.
 * @param source - the envelope's bytes.
 * @returns what `inspect` reports for the whole envelope.
 * @throws MalformedEnvelopeError, UnsupportedVersionError
 */
export async function inspectStream(source: ReadableStream<Uint8Array>): Promise<EnvelopeInfo> {
  const reader = source.getReader();
  const parts: Uint8Array[] = [];
  let held = 0;
  const layouts = Object.keys(LAYOUT_NAMES).map(Number);
  const maxEdks = FORMAT_LIMITS.maxEncryptedDataKeys;
  let ended = false;
  try {
    // Read until the header parses (or is malformed for another reason than its end).
    let parsed: ReturnType<typeof parseHeader> | undefined;
    let text = false;
    for (;;) {
      if (held >= TEXT_PREFIX.length || ended) {
        const head = concat(parts, held);
        if (isTextPrefix(head)) {
          text = true;
          break;
        }
        try {
          parsed = parseHeader(head, maxEdks, layouts, 'prefix');
          break;
        } catch (e) {
          if (!isTruncation(e) || ended || held > maxHeaderBytes(maxEdks)) throw e;
        }
      }
      const { done, value } = await reader.read();
      if (done) ended = true;
      else {
        parts.push(value);
        held += value.length;
      }
    }
    if (text) {
      // The text form is one base64 string: read whole (it is bounded), decoded by inspect.
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        held += value.length;
        if (held > MAX_TEXT_LENGTH + 2) throw new MalformedEnvelopeError('text envelope too long');
        parts.push(value);
      }
      return inspect(new TextDecoder().decode(concat(parts, held)).replace(/\s+$/, ''));
    }
    const { header, bodyOffset } = parsed!;
    let total = held;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
    }
    if (header.layout !== LAYOUT_FRAMED && total - bodyOffset < TAG_LENGTH) throw new MalformedEnvelopeError('truncated: body');
    return envelopeInfo(header, bodyOffset, total);
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** A string as printed: as is when it is plain printable text, else JSON-quoted (control characters escaped). */
function shown(s: string): string {
  return /^[\x21-\x7e]*$/.test(s) && !s.includes('"') ? s : escapeControl(JSON.stringify(s));
}

/** The text report of `inspect`. */
export function formatInfo(info: EnvelopeInfo): string {
  const hex = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;
  const ctx = Object.entries(info.encryptionContext);
  const lines = [
    `format version   ${info.formatVersion}`,
    `suite            ${hex(info.suite.id)} ${info.suite.name}`,
    `layout           ${hex(info.layout.id)} ${info.layout.name}`,
    `message id       ${info.messageId}`,
    `context          ${ctx.length === 0 ? '(empty)' : ''}`.trimEnd(),
    ...ctx.map(([k, v]) => `  ${shown(k)} = ${shown(v)}`),
    `data keys        ${info.encryptedDataKeys.length}`,
    ...info.encryptedDataKeys.map((e) => `  provider ${shown(e.providerId)}  key ${shown(e.keyId)}  (blob of ${e.blobLength} bytes)`),
    `header           ${info.headerLength} bytes`,
    ...(info.segmentSize !== undefined ? [`segment size     ${info.segmentSize} bytes (${info.segmentCount} segments)`] : []),
    `plaintext        ${info.plaintextLength} bytes (${formatBytes(info.plaintextLength)})`,
    `total            ${info.totalLength} bytes`,
  ];
  return lines.join('\n') + '\n';
}

/**
 * Run `envelope-kit inspect FILE|- [--json]`.
 * @returns the exit status (0).
 * @throws MalformedEnvelopeError / UnsupportedVersionError for what is not an envelope; FileError.
 */
export async function inspectCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommand(args, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, 1);
  if (values.help) {
    io.stdout.write(INSPECT_USAGE);
    return 0;
  }
  const spec = positionals[0];
  if (spec === undefined || spec === '') throw new InvalidParameterError('inspect needs an input: a file, or - for stdin');
  const input = await openInput(spec);
  try {
    // A binary envelope file: its header is read, its size taken from the file system. Anything
    // else (stdin, whose size would not count what an earlier reader took; a FIFO; the text form)
    // is read as a stream.
    let info: EnvelopeInfo;
    if (input.regular && !(await input.startsWithText())) {
      await input.close();
      info = await inspectFile(input.name);
    } else {
      info = await inspectStream(input.stream());
    }
    io.stdout.write(values.json ? JSON.stringify(info) + '\n' : formatInfo(info));
  } finally {
    await input.close();
  }
  return 0;
}
