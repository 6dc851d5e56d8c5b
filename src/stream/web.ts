/**
 * Streaming encryption and decryption on Web Streams (SPEC.md §14): `encryptStream` and
 * `decryptStream` are `TransformStream`s of bytes, in every runtime that has Web Streams
 * (Node 18+, browsers, Deno, edge runtimes). Memory is bounded by a segment (one per
 * operation in flight in parallel mode), whatever the length of the stream.
 * @module
 */
import {
  type DecryptOptions,
  type EncryptOptions,
  checkDecryptOptions,
  checkEncryptOptions,
  readOption,
  readRecordBinding,
} from '../core/envelope.js';
import type { EncryptionContext } from '../core/context.js';
import { InvalidParameterError } from '../core/errors.js';
import { beginFramedEncryption, checkParallel, checkSegmentSize } from '../core/framed.js';
import { byteView } from '../internal/bytes.js';
import { FramedReader, FramedWriter } from './framing.js';

/** Options of {@link encryptStream}: those of `encrypt`, and the segment size and parallelism. */
export interface EncryptStreamOptions extends EncryptOptions {
  /**
   * Plaintext bytes per segment (SPEC.md §14.1): an integer from 4096 to 16 MiB, default 65536.
   * Larger segments are faster to seal and to stream; smaller ones make random access
   * ({@link decryptRange}) read less.
   */
  readonly segmentSize?: number;
  /**
   * Segments sealed at once through the platform's asynchronous WebCrypto AES-GCM (1 to 64). The
   * default, 1, seals them one after the other on the `aead` backend. Above 1, each segment
   * is handed to `crypto.subtle` (on Node its work runs on the thread pool, so several cores
   * share it); the output is the same bytes, in the same order, and memory grows by one
   * segment per operation in flight. It cannot be combined with `aead`.
   */
  readonly parallel?: number;
}

/** Options of {@link decryptStream}: those of `decrypt`, and parallelism. */
export interface DecryptStreamOptions extends DecryptOptions {
  /** Segments opened at once through WebCrypto (1 to 64; default 1), as {@link EncryptStreamOptions.parallel}. */
  readonly parallel?: number;
}

/** What a {@link decryptStream} learned from the envelope's authenticated header. */
export interface DecryptStreamInfo {
  /** The master key that unwrapped the data key, as the provider answered. */
  readonly keyId: string;
  /** The envelope's full encryption context. */
  readonly encryptionContext: EncryptionContext;
  /** Plaintext bytes per segment. */
  readonly segmentSize: number;
}

/** A {@link decryptStream}: a TransformStream of envelope bytes to plaintext, with what its header said. */
export interface DecryptStream extends TransformStream<Uint8Array, Uint8Array> {
  /**
   * Resolves once the header and the first segment are authenticated (just before that segment's
   * plaintext is released); rejects with the stream's error if it fails before. Awaiting it is
   * optional (a rejection nobody awaits is not reported as unhandled).
   */
  readonly info: Promise<DecryptStreamInfo>;
}

function chunkOf(chunk: unknown): Uint8Array {
  const view = byteView(chunk);
  if (!view) throw new InvalidParameterError('stream chunks must be Uint8Array (not a view of a detached ArrayBuffer)');
  return view;
}

/**
 * Encrypt a stream of bytes into a framed envelope (layout 0x02, SPEC.md §14). The options are
 * checked when this is called (bad ones throw at once); the provider is asked for the data key
 * when the stream starts, and the header is the first chunk out. Each later chunk is one sealed
 * segment. The keys are erased when the stream ends, fails or is cancelled.
 *
 * @param options - those of `encrypt` (provider, key id, encryption context, key spec, record
 *   id and version, backend), plus `segmentSize` and `parallel`.
 * @returns a TransformStream: write plaintext, read the envelope.
 * @throws InvalidParameterError for bad options (synchronously). The stream errors with the
 *   provider's error, or InvalidParameterError for a chunk that is not a Uint8Array.
 * @example
 * ```ts
 * import { LocalKeyring, encryptStream, decryptStream } from 'envelope-kit';
 * const provider = new LocalKeyring();
 * const { keyId } = provider.createKey();
 * const source = new Blob([new Uint8Array(1_000_000)]).stream();
 * const envelope = source.pipeThrough(encryptStream({ provider, keyId, encryptionContext: { file: 'export.csv' } }));
 * const plaintext = envelope.pipeThrough(decryptStream({ provider, encryptionContext: { file: 'export.csv' } }));
 * ```
 */
export function encryptStream(options: EncryptStreamOptions): TransformStream<Uint8Array, Uint8Array> {
  const { provider, keyId, also, keySpec, context, aead } = checkEncryptOptions(options, 'encryptStream');
  const binding = readRecordBinding(options);
  const segmentSize = checkSegmentSize(readOption(options, 'segmentSize'));
  const parallel = checkParallel(readOption(options, 'parallel'), readOption(options, 'aead') !== undefined);
  let writer: FramedWriter | undefined;
  const fail = (e: unknown): never => {
    writer?.dispose();
    throw e;
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    async start(controller) {
      try {
        const { header, cipher } = await beginFramedEncryption(provider, keyId, keySpec, context, aead, binding, segmentSize, parallel, undefined, also);
        writer = new FramedWriter(cipher, segmentSize);
        controller.enqueue(header);
      } catch (e) {
        fail(e);
      }
    },
    async transform(chunk, controller) {
      try {
        await writer!.write(chunkOf(chunk), (b) => controller.enqueue(b));
      } catch (e) {
        fail(e);
      }
    },
    async flush(controller) {
      try {
        await writer!.end((b) => controller.enqueue(b));
      } catch (e) {
        fail(e);
      }
    },
    cancel() {
      writer?.dispose();
    },
  } as Transformer<Uint8Array, Uint8Array>);
}

/**
 * Decrypt a framed envelope as a stream (SPEC.md §14.4). The header is read as it arrives, the
 * providers are asked once, and each segment's plaintext is released only after its tag
 * verified; the first plaintext comes after the header was authenticated. A stream that ends
 * early, or anything changed, added, dropped or reordered, makes the stream error
 * (DecryptionFailedError, or MalformedEnvelopeError for a length no writer makes): never a
 * silent short read. Segments before the fault were already released: a consumer that must not
 * act on a prefix keeps the output aside until the stream closed without an error (the file
 * adapter of `envelope-kit/node` does).
 *
 * A single-pass envelope (from `encrypt`) is refused with MalformedEnvelopeError: it has one tag
 * at its end, so it cannot be read as a stream; open it with `decrypt`.
 *
 * @param options - those of `decrypt` (providers, required context, `keyIds`, record id and
 *   version, EDK limit, backend), plus `parallel`.
 * @returns a TransformStream with an `info` promise (key id, context, segment size).
 * @throws InvalidParameterError for bad options (synchronously).
 */
export function decryptStream(options: DecryptStreamOptions): DecryptStream {
  const checked = checkDecryptOptions(options);
  const binding = readRecordBinding(options);
  const parallel = checkParallel(readOption(options, 'parallel'), readOption(options, 'aead') !== undefined);
  let resolveInfo!: (i: DecryptStreamInfo) => void;
  let rejectInfo!: (e: unknown) => void;
  const info = new Promise<DecryptStreamInfo>((res, rej) => {
    resolveInfo = res;
    rejectInfo = rej;
  });
  info.catch(() => {});
  const reader = new FramedReader(checked, binding, parallel, ({ header, keyId }) =>
    resolveInfo(Object.freeze({ keyId, encryptionContext: header.context.map, segmentSize: header.segmentSize! })),
  );
  const fail = (e: unknown): never => {
    reader.dispose();
    rejectInfo(e);
    throw e;
  };
  const stream = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      try {
        await reader.write(chunkOf(chunk), (b) => controller.enqueue(b));
      } catch (e) {
        fail(e);
      }
    },
    async flush(controller) {
      try {
        await reader.end((b) => controller.enqueue(b));
      } catch (e) {
        fail(e);
      }
    },
    cancel(reason: unknown) {
      reader.dispose();
      rejectInfo(reason);
    },
  } as Transformer<Uint8Array, Uint8Array>);
  Object.defineProperty(stream, 'info', { value: info, enumerable: true });
  return stream as DecryptStream;
}
