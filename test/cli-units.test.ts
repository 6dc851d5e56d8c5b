/**
 * The pieces of the command line that need no process of their own: the exit
 * status of every error code, the error line, option parsing, the progress
 * line, and the decryption of an envelope arriving as a stream in any form and
 * any chunking (property tests).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DecryptionFailedError,
  type ErrorCode,
  InvalidParameterError,
  KeyDisabledError,
  KeyNotFoundError,
  KeyringFileError,
  LocalKeyring,
  MalformedEnvelopeError,
  NoMatchingProviderError,
  ProviderError,
  UnsupportedVersionError,
  encrypt,
  encryptStream,
  encryptText,
} from '../src/index.js';
import { parseCommand, parseContext, parseList, parseSize } from '../src/cli/args.js';
import { decryptingStream } from '../src/cli/decrypt-source.js';
import { EXIT, FileError, InterruptedError, errorLine, escapeControl, exitCodeFor } from '../src/cli/exit-codes.js';
import { PROGRESS_MIN_BYTES, createProgress, formatBytes, formatDuration, renderProgress } from '../src/cli/progress.js';
import { numRuns, onlyKeyIdsChanged } from './core-helpers.js';

describe('exit statuses', () => {
  it('each error class maps to its documented status', () => {
    const cases: [unknown, number][] = [
      [new InvalidParameterError('x'), 2],
      [new MalformedEnvelopeError('x'), 3],
      [new UnsupportedVersionError('layout', 9), 3],
      [new DecryptionFailedError(), 3],
      [new KeyNotFoundError('x'), 4],
      [new KeyDisabledError('x'), 4],
      [new NoMatchingProviderError('x'), 4],
      [new ProviderError('x'), 5],
      [new FileError('x', 'ENOSPC'), 6],
      [Object.assign(new Error('EFBIG: file too large, write'), { code: 'EFBIG', syscall: 'write' }), 6],
      [new KeyringFileError('x'), 7],
      [new InterruptedError('SIGHUP'), 129],
      [new InterruptedError('SIGINT'), 130],
      [new InterruptedError('SIGTERM'), 143],
      [new Error('a bug'), 1],
      [new TypeError('a bug'), 1],
      ['a string', 1],
      [null, 1],
      [{ code: 'ERR_SOMETHING_ELSE' }, 1],
    ];
    for (const [e, status] of cases) expect(exitCodeFor(e), String((e as Error)?.name ?? e)).toBe(status);
  });

  it('every library error code has a status other than "other" unless it is a record API code', () => {
    const codes: ErrorCode[] = ['ERR_INVALID_PARAMETER', 'ERR_MALFORMED_ENVELOPE', 'ERR_UNSUPPORTED_VERSION', 'ERR_NO_MATCHING_PROVIDER', 'ERR_KEY_NOT_FOUND', 'ERR_KEY_DISABLED', 'ERR_DECRYPTION_FAILED', 'ERR_PROVIDER', 'ERR_KEYRING_FILE'];
    for (const code of codes) expect(exitCodeFor({ code }), code).not.toBe(EXIT.other);
  });

  it('the error line: one line, the code at the end, no system-code prefix, control characters escaped, no stack', () => {
    expect(errorLine(new DecryptionFailedError())).toBe('envelope-kit: decryption failed (ERR_DECRYPTION_FAILED)\n');
    const sys = Object.assign(new Error("ENOENT: no such file or directory, open 'x'"), { code: 'ENOENT' });
    expect(errorLine(sys)).toBe("envelope-kit: no such file or directory, open 'x' (ENOENT)\n");
    expect(errorLine(new InvalidParameterError('bad\nname \u001b[31mred'))).toBe('envelope-kit: bad\\x0aname \\x1b[31mred (ERR_INVALID_PARAMETER)\n');
    expect(errorLine(new Error('x'.repeat(5000))).length).toBeLessThan(1100);
    expect(errorLine('thrown string')).toBe('envelope-kit: thrown string (ERROR)\n');
    expect(errorLine(new InterruptedError('SIGINT'))).toBe('envelope-kit: interrupted (SIGINT)\n');
  });

  it('escapeControl leaves printable text alone and escapes everything a terminal would act on', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const out = escapeControl(s);
        expect(out).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
        if (/^[\x20-\x7e]*$/.test(s)) expect(out).toBe(s);
      }),
      { numRuns: numRuns(300) },
    );
  });
});

describe('options', () => {
  it('parseContext reads KEY=VALUE entries back to the map they came from', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1 }).filter((k) => !k.includes('=') && k !== '__proto__'), fc.string()), (map) => {
        const entries = Object.entries(map).map(([k, v]) => `${k}=${v}`);
        expect(parseContext(entries) ?? {}).toEqual(map);
      }),
      { numRuns: numRuns(200) },
    );
    expect(parseContext(['a=b=c'])).toEqual({ a: 'b=c' });
    expect(parseContext(['a='])).toEqual({ a: '' });
    expect(parseContext([])).toBeUndefined();
    for (const bad of [['novalue'], ['=v'], ['a=1', 'a=2']]) expect(() => parseContext(bad)).toThrow(InvalidParameterError);
  });

  it('parseSize takes bytes, k/KiB and m/MiB within bounds', () => {
    expect(parseSize('4096', '--s', 4096, 1 << 24)).toBe(4096);
    expect(parseSize('64k', '--s', 4096, 1 << 24)).toBe(65536);
    expect(parseSize('1MiB', '--s', 4096, 1 << 24)).toBe(1 << 20);
    expect(parseSize('16m', '--s', 4096, 1 << 24)).toBe(1 << 24);
    for (const bad of ['4095', '17m', '1.5m', '-4096', '4096x', '', '1e4', '99999999999']) expect(() => parseSize(bad, '--s', 4096, 1 << 24), bad).toThrow(InvalidParameterError);
  });

  it('parseList splits on commas and drops empty entries', () => {
    expect(parseList(['a,b', ' c ', ','])).toEqual(['a', 'b', 'c']);
    expect(parseList([','])).toBeUndefined();
    expect(parseList(undefined)).toBeUndefined();
  });

  it('parseCommand refuses passphrase options, repeated options and extra arguments without echoing values', () => {
    const table = { out: { type: 'string' }, many: { type: 'string', multiple: true } } as const;
    expect(parseCommand(['x', '--out', 'o', '--many', '1', '--many', '2'], table, 1)).toMatchObject({ values: { out: 'o', many: ['1', '2'] }, positionals: ['x'] });
    for (const args of [['--passphrase', 's3cret'], ['--passphrase=s3cret'], ['--out', 'a', '--out', 'b'], ['x', 's3cret'], ['--unknown=s3cret'], ['--out']]) {
      let err: unknown;
      try {
        parseCommand(args, table, 1);
      } catch (e) {
        err = e;
      }
      expect(err, args.join(' ')).toBeInstanceOf(InvalidParameterError);
      expect((err as Error).message).not.toContain('s3cret');
    }
    // After `--`, an argument that looks like an option is a file name.
    expect(parseCommand(['--', '--passphrase'], table, 1).positionals).toEqual(['--passphrase']);
  });
});

describe('progress', () => {
  it('formats bytes, durations and the line', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(64 * 1024 * 1024)).toBe('64.0 MiB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.00 GiB');
    expect(formatDuration(5)).toBe('0:05');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(Infinity)).toBe('--:--');
    const line = renderProgress(32 * 1024 * 1024, 64 * 1024 * 1024, 1000, 100);
    expect(line).toMatch(/^ 50% \[#+\.+\] {2}32\.0 MiB \/ 64\.0 MiB {2}32\.0 MiB\/s {2}ETA 0:01$/);
    expect(line.length).toBeLessThanOrEqual(100);
    for (const width of [0, 20, 40, 200]) expect(renderProgress(1, 10, 1, width).length).toBeLessThanOrEqual(Math.max(0, width - 1) || 1000);
  });

  it('draws only on a terminal, for inputs above 4 MiB, without --quiet', () => {
    const writes: string[] = [];
    const term = { isTTY: true, columns: 80, write: (s: string) => (writes.push(s), true) };
    const big = PROGRESS_MIN_BYTES + 1;
    createProgress(big, true, term).update(big);
    createProgress(PROGRESS_MIN_BYTES, false, term).update(PROGRESS_MIN_BYTES);
    createProgress(undefined, false, term).update(big);
    createProgress(big, false, { ...term, isTTY: false }).update(big);
    expect(writes).toEqual([]);
    const p = createProgress(big, false, term);
    p.update(big);
    p.clear();
    expect(writes[0]).toMatch(/^\r100% \[#+\] .* ETA \S+\x1b\[K$/);
    expect(writes[1]).toBe('\r\x1b[K');
  });
});

describe('decryption of a stream in any form', () => {
  const provider = new LocalKeyring();
  const { keyId } = provider.createKey();

  function chunked(bytes: Uint8Array, cuts: number[]): ReadableStream<Uint8Array> {
    const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    const parts: Uint8Array[] = [];
    let last = 0;
    for (const p of [...points, bytes.length]) {
      if (p > last) parts.push(bytes.slice(last, p));
      last = Math.max(last, p);
    }
    return new ReadableStream({
      pull(c) {
        const next = parts.shift();
        if (next) c.enqueue(next);
        else c.close();
      },
    });
  }

  async function collect(rs: ReadableStream<Uint8Array>): Promise<Uint8Array> {
    const out: number[] = [];
    const reader = rs.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return Uint8Array.from(out);
      out.push(...value);
    }
  }

  async function framed(plaintext: Uint8Array): Promise<Uint8Array> {
    return collect(chunked(plaintext, []).pipeThrough(encryptStream({ provider, keyId, segmentSize: 4096 })));
  }

  it('framed, single-pass and text envelopes decrypt to their plaintext, however the input is cut', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 10_000 }),
        fc.constantFrom('framed', 'single', 'text'),
        fc.array(fc.nat(), { maxLength: 12 }),
        async (plaintext, form, cuts) => {
          const envelope =
            form === 'framed'
              ? await framed(plaintext)
              : form === 'single'
                ? await encrypt(plaintext, { provider, keyId })
                : new TextEncoder().encode((await encryptText(plaintext, { provider, keyId })) + '\n');
          const out = await collect(await decryptingStream(chunked(envelope, cuts), { provider }));
          expect(out).toEqual(plaintext);
        },
      ),
      { numRuns: numRuns(60) },
    );
  });

  it('any one-bit change of a framed or single-pass envelope makes the stream fail, except in a key id beside a blob, which gives the same bytes', async () => {
    const plaintext = new Uint8Array(9000).map((_, i) => i);
    const envelopes = [await framed(plaintext), await encrypt(plaintext, { provider, keyId })];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(0, 1), fc.nat(), fc.integer({ min: 0, max: 7 }), fc.array(fc.nat(), { maxLength: 5 }), async (which, pos, bit, cuts) => {
        const changed = envelopes[which]!.slice();
        changed[pos % changed.length]! ^= 1 << bit;
        let failed: unknown;
        let out: Uint8Array | undefined;
        try {
          out = await collect(await decryptingStream(chunked(changed, cuts), { provider }));
        } catch (e) {
          failed = e;
        }
        // SPEC.md §9.13: the key id beside the blob is not authenticated; a change there may decrypt, to the same bytes
        if (failed === undefined && onlyKeyIdsChanged(envelopes[which]!, changed)) {
          expect(out).toEqual(plaintext);
          return;
        }
        expect(failed).toBeDefined();
        expect(exitCodeFor(failed)).toBeGreaterThanOrEqual(3);
        expect(exitCodeFor(failed)).toBeLessThanOrEqual(4);
      }),
      { numRuns: numRuns(100) },
    );
  });
});
