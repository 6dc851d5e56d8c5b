/**
 * Decryption of an envelope that arrives as a stream, whatever its form: a
 * framed envelope (layout 0x02) streams through `decryptStream`, segment by
 * segment; a single-pass envelope (from `encrypt`) or its text form (`ek1.…`,
 * from `encryptText`) has one tag at its end, so it is read whole (at most
 * {@link MAX_WHOLE_ENVELOPE_BYTES}) and opened with `decrypt`.
 * @module
 */
import { decrypt, decryptText, type DecryptOptions } from '../core/envelope.js';
import { MalformedEnvelopeError } from '../core/errors.js';
import { LAYOUT_FRAMED, MAGIC, MAX_TEXT_LENGTH, TEXT_PREFIX } from '../core/format.js';
import { decryptStream } from '../stream/web.js';

/** Largest single-pass envelope read from a stream: 2^32 - 1 bytes of plaintext and a header. */
export const MAX_WHOLE_ENVELOPE_BYTES = 2 ** 32 + 2 ** 20;
/** Plaintext bytes per chunk given out for a whole envelope. */
const OUT_CHUNK = 1 << 20;
/** Bytes that tell the form: the magic, version, suite and layout of a binary envelope. */
const PEEK = 5;

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Whether these first bytes are those of a binary framed envelope. */
export function isFramedPrefix(head: Uint8Array): boolean {
  return head.length >= PEEK && head[0] === MAGIC[0] && head[1] === MAGIC[1] && head[4] === LAYOUT_FRAMED;
}

/** Whether these first bytes are those of a text envelope (`ek1.`). */
export function isTextPrefix(head: Uint8Array): boolean {
  return TEXT_PREFIX.split('').every((c, i) => head[i] === c.charCodeAt(0));
}

/**
 * Decrypt an envelope read from `source`.
 * @param source - the envelope's bytes.
 * @param options - those of `decrypt`.
 * @returns the plaintext as a stream; it errors with the library's error (DecryptionFailedError,
 *   MalformedEnvelopeError...) on any failure. For a framed envelope each segment is released only
 *   once authenticated; for a whole envelope, nothing is released before the whole verified.
 */
export async function decryptingStream(source: ReadableStream<Uint8Array>, options: DecryptOptions): Promise<ReadableStream<Uint8Array>> {
  const reader = source.getReader();
  const head: Uint8Array[] = [];
  let headLength = 0;
  try {
    while (headLength < PEEK) {
      const { done, value } = await reader.read();
      if (done) break;
      head.push(value);
      headLength += value.length;
    }
  } catch (e) {
    reader.releaseLock();
    throw e;
  }
  const first = concat(head, headLength);
  const rest = new ReadableStream<Uint8Array>(
    {
      start(c) {
        if (first.length > 0) c.enqueue(first);
      },
      async pull(c) {
        const { done, value } = await reader.read();
        if (done) c.close();
        else c.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  if (isFramedPrefix(first)) {
    const stream = decryptStream(options);
    return rest.pipeThrough(stream);
  }
  const text = isTextPrefix(first);
  const limit = text ? MAX_TEXT_LENGTH + 2 : MAX_WHOLE_ENVELOPE_BYTES;
  let plaintext: Uint8Array | undefined;
  let offset = 0;
  return new ReadableStream<Uint8Array>(
    {
      async start() {
        const parts: Uint8Array[] = [];
        let total = 0;
        const r = rest.getReader();
        for (;;) {
          const { done, value } = await r.read();
          if (done) break;
          total += value.length;
          if (total > limit) {
            await r.cancel();
            throw new MalformedEnvelopeError(text ? 'text envelope too long' : 'a single-pass envelope holds at most 2^32 - 1 bytes of plaintext');
          }
          parts.push(value);
        }
        const bytes = concat(parts, total);
        if (text) {
          // A text envelope in a file usually ends with a newline.
          const t = new TextDecoder('utf-8', { fatal: false }).decode(bytes).replace(/\s+$/, '');
          plaintext = (await decryptText(t, options)).plaintext;
        } else {
          plaintext = (await decrypt(bytes, options)).plaintext;
        }
      },
      pull(c) {
        const p = plaintext!;
        if (offset >= p.length) {
          c.close();
          return;
        }
        const end = Math.min(p.length, offset + OUT_CHUNK);
        c.enqueue(p.slice(offset, end));
        p.fill(0, offset, end);
        offset = end;
      },
      cancel() {
        plaintext?.fill(0);
      },
    },
    { highWaterMark: 0 },
  );
}
