/**
 * Random access into framed envelopes (SPEC.md §14.4, range reader): read and authenticate only
 * the header and the segments that cover a range of the plaintext, from anything that can read
 * bytes at an offset (an array, a `Blob`, a file handle, an HTTP range fetcher).
 * @module
 */
import { TAG_LENGTH } from '../core/aead/types.js';
import { type DecryptOptions, type DecryptResult, checkDecryptOptions, readOption, readRecordBinding } from '../core/envelope.js';
import { InvalidParameterError } from '../core/errors.js';
import { LAYOUT_FRAMED } from '../core/format.js';
import { type RangeSource, readSourceHeader, sourceOf } from '../core/source.js';
import { beginFramedDecryption, framedLayout } from '../core/framed.js';
import { wipe } from '../internal/bytes.js';

export type { RangeSource } from '../core/source.js';

/** Options of {@link decryptRange}: those of `decrypt`, and the plaintext range. */
export interface DecryptRangeOptions extends DecryptOptions {
  /** First plaintext byte to return (0-based). */
  readonly offset: number;
  /** Number of plaintext bytes to return (0 or more); the range must end within the plaintext. */
  readonly length: number;
}

/** Result of {@link decryptRange}. */
export interface DecryptRangeResult extends DecryptResult {
  /** The whole plaintext's length, from the envelope's length. */
  readonly plaintextLength: number;
  /** Segments read and authenticated for this range. */
  readonly segmentsRead: number;
}

function checkRangeNumber(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new InvalidParameterError(`"${name}" must be a non-negative safe integer`);
  return v;
}

/**
 * Decrypt `length` plaintext bytes from `offset` of a framed envelope, reading only its header
 * and the segments that cover the range (SPEC.md §14.4). The header is authenticated (it is
 * every segment's associated data), and so is each segment read; the rest of the envelope is not
 * read, so a change there is not detected by this call (a full `decryptStream` finds it).
 *
 * @param source - the envelope: a Uint8Array, a Blob, or `{ size, read(offset, length) }`
 *   (a file handle: `fileSource` of `envelope-kit/node`; an HTTP range fetcher you write).
 * @param options - those of `decrypt`, plus `offset` and `length` in plaintext bytes.
 * @returns the range's plaintext (a fresh array), the key id, the context, the plaintext's whole
 *   length and how many segments were read.
 * @throws InvalidParameterError for a range that ends after the plaintext, or a source that fails;
 *   MalformedEnvelopeError, DecryptionFailedError and the providers' errors as `decrypt`.
 * @example
 * ```ts
 * import { LocalKeyring, decryptRange } from 'envelope-kit';
 * declare const provider: LocalKeyring;
 * declare const file: Blob; // a framed envelope
 * const { plaintext } = await decryptRange(file, { provider, offset: 1_000_000, length: 100 });
 * ```
 */
export async function decryptRange(source: RangeSource | Blob | Uint8Array, options: DecryptRangeOptions): Promise<DecryptRangeResult> {
  const src = sourceOf(source);
  const checked = checkDecryptOptions(options);
  const binding = readRecordBinding(options);
  const offset = checkRangeNumber(readOption(options, 'offset'), 'offset');
  const length = checkRangeNumber(readOption(options, 'length'), 'length');
  const { header, bodyOffset } = await readSourceHeader(src, checked.maxEdks, [LAYOUT_FRAMED]);
  const segmentSize = header.segmentSize!;
  const bodyLength = src.size - bodyOffset;
  const { segments, plaintextLength } = framedLayout(bodyLength, segmentSize);
  if (offset > plaintextLength || length > plaintextLength - offset) {
    throw new InvalidParameterError(`the range ${offset}..${offset + length} ends after the plaintext (${plaintextLength} bytes)`);
  }
  const { cipher, keyId } = await beginFramedDecryption(header, checked, binding, 1);
  const sealedSize = segmentSize + TAG_LENGTH;
  try {
    // An empty range still opens one segment (the one at `offset`, or the last), so that the header is
    // authenticated by a tag and the lengths reported are never read from unauthenticated bytes.
    const first = Math.min(Math.floor(offset / segmentSize), segments - 1);
    const last = length === 0 ? first : Math.floor((offset + length - 1) / segmentSize);
    const start = first * sealedSize;
    const end = Math.min((last + 1) * sealedSize, bodyLength);
    const sealed = new Uint8Array(await src.read(bodyOffset + start, end - start));
    const opened = new Uint8Array(sealed.length - (last - first + 1) * TAG_LENGTH);
    try {
      for (let i = first; i <= last; i++) {
        const s = (i - first) * sealedSize;
        const e = Math.min(s + sealedSize, sealed.length);
        await cipher.openInto(i, i === segments - 1, sealed.subarray(s, e), opened.subarray((i - first) * segmentSize, (i - first) * segmentSize + e - s - TAG_LENGTH));
      }
      const from = Math.min(offset - first * segmentSize, opened.length);
      return {
        plaintext: opened.slice(from, from + length),
        keyId,
        encryptionContext: header.context.map,
        plaintextLength,
        segmentsRead: last - first + 1,
      };
    } finally {
      wipe(opened, sealed);
    }
  } finally {
    cipher.dispose();
  }
}
