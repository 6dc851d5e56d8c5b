/**
 * Reading an envelope from anything that reads bytes at an offset (an array, a `Blob`, a file
 * handle, an HTTP range fetcher), and its header from the start of it: for random access
 * (`decryptRange`, SPEC.md §14.4) and for re-wrapping without reading the body (SPEC.md §15).
 * @module
 */
import { InvalidParameterError, MalformedEnvelopeError } from './errors.js';
import { type EnvelopeHeader, isTruncation, maxHeaderBytes, parseHeader } from './format.js';
import { byteView } from '../internal/bytes.js';

/**
 * Something that reads bytes at an offset. `size` is the whole envelope's length; `read` returns
 * exactly `length` bytes from `offset` (a shorter answer is an error). `read` is called a few
 * times for the header (at most once per doubling of the prefix read) and once for the segments.
 */
export interface RangeSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array> | Uint8Array;
}

/** A checked source: its size read once, `read` answering exactly the bytes asked. @internal */
export interface Reader {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/**
 * Check a source argument: a `Uint8Array`, a `Blob`, or a {@link RangeSource}.
 * @throws InvalidParameterError for anything else, or a `read` that throws; MalformedEnvelopeError
 *   when `read` answers fewer or more bytes than asked.
 * @internal
 */
export function sourceOf(source: unknown): Reader {
  const bytes = byteView(source);
  if (bytes) return { size: bytes.length, read: async (o, n) => bytes.subarray(o, o + n) };
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    return { size: source.size, read: async (o, n) => new Uint8Array(await source.slice(o, o + n).arrayBuffer()) };
  }
  let size: unknown, read: unknown;
  try {
    if (source !== null && typeof source === 'object') ({ size, read } = source as Record<string, unknown>);
  } catch (e) {
    throw new InvalidParameterError('"source" could not be read', { cause: e });
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || typeof read !== 'function') {
    throw new InvalidParameterError('"source" must be a Uint8Array, a Blob, or { size, read(offset, length) }');
  }
  const fn = read as RangeSource['read'];
  return {
    size,
    async read(o, n) {
      let got: unknown;
      try {
        got = await fn.call(source, o, n);
      } catch (e) {
        throw new InvalidParameterError(`reading ${n} bytes at offset ${o} of the source failed`, { cause: e });
      }
      const view = byteView(got);
      if (!view || view.length !== n) throw new MalformedEnvelopeError(`the source returned ${view ? view.length : 'no'} bytes where ${n} were asked at offset ${o}`);
      return view;
    },
  };
}

/**
 * Parse the header at the start of a source: a prefix read, doubled until it parses (its length is
 * bounded by the format, SPEC.md §5), so that only the header's bytes (rounded up) are read.
 * @throws MalformedEnvelopeError, UnsupportedVersionError as `parseHeader`, and the source's errors.
 * @internal
 */
export async function readSourceHeader(src: Reader, maxEdks: number, layouts: readonly number[]): Promise<{ header: EnvelopeHeader; bodyOffset: number }> {
  let want = Math.min(src.size, 4096);
  const limit = Math.min(src.size, maxHeaderBytes(maxEdks));
  for (;;) {
    const prefix = await src.read(0, want);
    try {
      return parseHeader(prefix, maxEdks, layouts, 'prefix');
    } catch (e) {
      if (!isTruncation(e) || want >= limit) throw e;
      want = Math.min(limit, want * 2);
    }
  }
}
