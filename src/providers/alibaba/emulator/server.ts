/**
 * The loopback KMS emulator: an HTTP server on 127.0.0.1 that speaks the
 * Alibaba Cloud KMS 2016-01-20 API (GenerateDataKey,
 * GenerateDataKeyWithoutPlaintext, Decrypt, Encrypt, ReEncrypt) over a
 * {@link LocalKeyring}, so applications and tests run offline against the same
 * wire protocol as the real service. Node-only (`node:http`).
 *
 * It verifies V1 and V3 signatures over what was sent, refuses stale timestamps
 * and replayed nonces, answers errors in the real shape (`RequestId`, `HostId`,
 * `Code`, `Message`, HTTP status), and injects faults on demand.
 * @module
 */
import { randomBytes as nodeRandomBytes, randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AesGcm } from '../../../core/aead/types.js';
import { InvalidParameterError } from '../../../core/errors.js';
import { utf8DecodeStrict } from '../../../internal/bytes.js';
import { LocalKeyring } from '../../local/keyring.js';
import { nodeAesGcm } from '../../../core/aead/node.js';
import type { Param } from '../encoding.js';
import { KMS_API_VERSION } from '../provider.js';
import { type EmulatorCredential, Authenticator, distinctHeaders } from './auth.js';
import { FaultInjector } from './faults.js';
import { KmsApiError, kmsErrors } from './kms-error.js';
import { KmsOperations } from './operations.js';
import { WireFormatError, parseParams, writeAnswer } from './wire.js';

/** Options of {@link startKmsEmulator}. */
export interface KmsEmulatorOptions {
  /** The keys to serve. Default: a new, empty in-memory keyring (on `node:crypto`). */
  readonly keyring?: LocalKeyring;
  /** AES-GCM backend for Encrypt/ReEncrypt wrapping. Default `node:crypto` (same bytes as @noble/ciphers). */
  readonly aead?: AesGcm;
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number;
  /** Accepted AccessKeys. Default: one fresh random pair (see {@link KmsEmulator.credentials}). */
  readonly credentials?: readonly EmulatorCredential[];
  /** Largest difference between a request's timestamp and the emulator's clock, in ms (default 15 minutes, as the API). */
  readonly maxClockSkewMs?: number;
  /** The emulator's clock, in ms since the epoch (default `Date.now`). */
  readonly now?: () => number;
  /** Largest request body, in bytes (default 64 KiB). */
  readonly maxBodyBytes?: number;
  /** How many requests {@link KmsEmulator.requests} keeps (default 1000). */
  readonly maxRecordedRequests?: number;
  /**
   * The region the emulator says it serves: error answers carry `HostId` `kms.<region>.aliyuncs.com`
   * as the service's do. Default `cn-hangzhou`.
   */
  readonly region?: string;
  /**
   * Origins (`scheme://host[:port]`, exactly as a browser sends `Origin`) allowed to call the
   * emulator from a web page: for those only, a CORS preflight (`OPTIONS`) is answered and answers
   * carry `Access-Control-Allow-Origin`. Default: none (no CORS headers, preflights refused).
   */
  readonly allowedOrigins?: readonly string[];
}

/** One request as the emulator saw it (for tests and debugging; `Plaintext` and `SecurityToken` are redacted). */
export interface RecordedRequest {
  readonly method: string;
  /** Path and query exactly as sent (any `Plaintext=` or `SecurityToken=` value replaced by `<redacted>`). */
  readonly url: string;
  /** Header values by lower-case name (the STS token is redacted). */
  readonly headers: Readonly<Record<string, string>>;
  /** Which signature it carried, when it was authenticated. */
  readonly signatureVersion: 'v1' | 'v3' | undefined;
  /** The action, when it was authenticated. */
  readonly action: string | undefined;
  /** HTTP status answered (0 when the connection was dropped, or the client was gone). */
  readonly status: number;
  /** KMS error code answered, if any. */
  readonly code: string | undefined;
  readonly requestId: string;
}

/** A running emulator. */
export interface KmsEmulator {
  /** `http://127.0.0.1:<port>`: the `endpoint` option of `AlibabaKmsProvider`. */
  readonly url: string;
  /** `127.0.0.1:<port>`: the `endpoint` of the official SDKs' config (with `protocol: 'HTTP'`). */
  readonly endpoint: string;
  readonly port: number;
  /** The first accepted credential (the generated one by default). Test credentials only. */
  readonly credentials: EmulatorCredential;
  /** The keyring behind the emulator: create keys and aliases, disable keys, schedule deletion. */
  readonly keyring: LocalKeyring;
  /** Fault injection. */
  readonly faults: FaultInjector;
  /** Requests seen, oldest first. */
  readonly requests: readonly RecordedRequest[];
  /** Stop listening and close every connection. */
  close(): Promise<void>;
}

const DEFAULT_SKEW_MS = 15 * 60 * 1000;

/** A fresh random test credential: `LTAI` + 20 hex characters, and a 30-character secret. */
export function generateEmulatorCredential(): EmulatorCredential {
  return {
    accessKeyId: `LTAI${nodeRandomBytes(10).toString('hex')}`,
    accessKeySecret: nodeRandomBytes(24).toString('base64url').slice(0, 30),
  };
}

function readRequestBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      total += c.length;
      if (total > limit) over = true;
      else chunks.push(c);
    });
    req.on('end', () => (over ? reject(kmsErrors.tooLarge()) : resolve(new Uint8Array(Buffer.concat(chunks)))));
    req.on('error', reject);
  });
}

function redactUrl(url: string): string {
  return url.replace(/([?&](?:Plaintext|SecurityToken)=)[^&]*/gi, '$1<redacted>');
}

/** The headers a CORS answer allows: what the provider and the official SDKs send. */
const CORS_ALLOW_HEADERS =
  'authorization, content-type, accept, x-acs-action, x-acs-version, x-acs-date, x-acs-signature-nonce, x-acs-content-sha256, x-acs-accesskey-id, x-acs-security-token, x-acs-signature-method, x-acs-signature-version';

/** The CORS headers for a request from `origin`, when it is allowed. */
function corsHeaders(origin: string | undefined, allowed: ReadonlySet<string>): Record<string, string> {
  if (origin === undefined || !allowed.has(origin)) return {};
  return { 'access-control-allow-origin': origin, vary: 'Origin', 'access-control-expose-headers': 'x-acs-request-id' };
}

function checkOptions(o: KmsEmulatorOptions): void {
  const int = (v: unknown, name: string, min: number, max: number) => {
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)) {
      throw new InvalidParameterError(`"${name}" must be an integer from ${min} to ${max}`);
    }
  };
  int(o.port, 'port', 0, 65535);
  int(o.maxClockSkewMs, 'maxClockSkewMs', 0, 24 * 3600 * 1000);
  int(o.maxBodyBytes, 'maxBodyBytes', 1024, 16 * 1024 * 1024);
  int(o.maxRecordedRequests, 'maxRecordedRequests', 0, 1_000_000);
  if (o.region !== undefined && (typeof o.region !== 'string' || !/^[a-z0-9-]{1,64}$/.test(o.region))) {
    throw new InvalidParameterError('"region" must be a region id (a-z 0-9 -)');
  }
  if (
    o.allowedOrigins !== undefined &&
    (!Array.isArray(o.allowedOrigins) || o.allowedOrigins.some((x) => typeof x !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\/[^/\s]+$/i.test(x)))
  ) {
    throw new InvalidParameterError('"allowedOrigins" must be an array of origins (scheme://host[:port])');
  }
  if (o.keyring !== undefined && !(o.keyring instanceof LocalKeyring)) throw new InvalidParameterError('"keyring" must be a LocalKeyring');
  if (o.credentials !== undefined && (!Array.isArray(o.credentials) || o.credentials.length === 0)) {
    throw new InvalidParameterError('"credentials" must be a non-empty array');
  }
}

/**
 * Start a KMS emulator on 127.0.0.1.
 *
 * @param options - keyring, port, credentials, clock skew; see {@link KmsEmulatorOptions}.
 * @returns the running emulator: its URL, test credentials, keyring and fault injector.
 * @throws InvalidParameterError for bad options; the listen error when the port is taken.
 * @example
 * ```ts
 * import { startKmsEmulator } from 'envelope-kit/alibaba-emulator';
 * import { AlibabaKmsProvider } from 'envelope-kit/alibaba';
 *
 * const kms = await startKmsEmulator();
 * kms.keyring.createKey({ alias: 'alias/app' });
 * const provider = new AlibabaKmsProvider({ endpoint: kms.url, credentials: kms.credentials });
 * const dk = await provider.generateDataKey({ keyId: 'alias/app' });
 * await kms.close();
 * ```
 */
export async function startKmsEmulator(options: KmsEmulatorOptions = {}): Promise<KmsEmulator> {
  checkOptions(options);
  const aead = options.aead ?? nodeAesGcm;
  const keyring = options.keyring ?? new LocalKeyring({ aead, keyIdFormat: 'uuid' });
  const credentials = options.credentials ? [...options.credentials] : [generateEmulatorCredential()];
  const now = options.now ?? Date.now;
  const auth = new Authenticator(credentials, options.maxClockSkewMs ?? DEFAULT_SKEW_MS, now);
  const ops = new KmsOperations(keyring, aead);
  const faults = new FaultInjector();
  const maxBody = options.maxBodyBytes ?? 64 * 1024;
  const maxRecorded = options.maxRecordedRequests ?? 1000;
  const requests: RecordedRequest[] = [];
  const hostId = `kms.${options.region ?? 'cn-hangzhou'}.aliyuncs.com`;
  const allowedOrigins = new Set(options.allowedOrigins ?? []);

  const record = (r: RecordedRequest) => {
    if (maxRecorded === 0) return;
    requests.push(r);
    if (requests.length > maxRecorded) requests.splice(0, requests.length - maxRecorded);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = randomUUID().toUpperCase();
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined;
    const cors = corsHeaders(origin, allowedOrigins);
    for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);
    const rawUrl = req.url ?? '/';
    const headers = distinctHeaders(req.headersDistinct);
    const recorded = Object.fromEntries(
      Object.entries(headers).map(([k, v]) => [k, k === 'x-acs-security-token' ? '<redacted>' : v.join(', ')]),
    );
    let format: 'JSON' | 'XML' = 'JSON';
    let action: string | undefined;
    let signatureVersion: 'v1' | 'v3' | undefined;
    const done = (status: number, code?: string) =>
      record({ method: req.method ?? '', url: redactUrl(rawUrl), headers: recorded, signatureVersion, action, status, code, requestId });
    try {
      const method = req.method ?? '';
      if (method === 'OPTIONS' && cors['access-control-allow-origin'] !== undefined) {
        res.writeHead(204, {
          'access-control-allow-methods': 'GET, POST',
          'access-control-allow-headers': CORS_ALLOW_HEADERS,
          'access-control-max-age': '600',
          'content-length': '0',
        });
        res.end();
        return done(204);
      }
      if (method !== 'GET' && method !== 'POST') throw kmsErrors.unsupportedMethod();
      const q = rawUrl.indexOf('?');
      const pathname = q < 0 ? rawUrl : rawUrl.slice(0, q);
      let query: Param[];
      let form: Param[] = [];
      const body = await readRequestBody(req, maxBody);
      try {
        query = parseParams(q < 0 ? '' : rawUrl.slice(q + 1));
        if (query.some(([k]) => k === 'Signature')) format = (query.find(([k]) => k === 'Format')?.[1] ?? 'XML').toUpperCase() === 'JSON' ? 'JSON' : 'XML';
        const contentType = headers['content-type']?.[0] ?? '';
        if (body.length > 0 && /^application\/x-www-form-urlencoded\b/i.test(contentType)) {
          const text = utf8DecodeStrict(body);
          if (text === undefined) throw new WireFormatError('body is not UTF-8');
          form = parseParams(text);
        }
      } catch (e) {
        if (e instanceof WireFormatError) throw new KmsApiError(400, 'InvalidParameter', 'The request parameters could not be decoded.');
        throw e;
      }
      if (pathname !== '/') throw kmsErrors.actionNotFound();
      const call = auth.verify({ method, pathname, query, form, headers, body });
      signatureVersion = call.signatureVersion;
      action = call.action;
      format = call.format;
      if (call.version !== KMS_API_VERSION) throw kmsErrors.invalidVersion();
      const decision = faults.take(call.action);
      if (decision.latencyMs > 0) await new Promise((r) => setTimeout(r, decision.latencyMs));
      if (decision.fault?.kind === 'drop') {
        done(0, undefined);
        req.socket.destroy();
        return;
      }
      if (decision.fault?.kind === 'error') throw new KmsApiError(decision.fault.status, decision.fault.code, decision.fault.message);
      const result = await ops.run(call.action, call.params);
      if (res.destroyed) return done(0);
      writeAnswer(res, { status: 200, root: result.root, body: { ...result.body, RequestId: requestId } }, format);
      done(200);
    } catch (e) {
      const err = e instanceof KmsApiError ? e : kmsErrors.internalFailure();
      if (res.destroyed || res.headersSent) return done(0, err.code);
      const recommend = `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(err.code)}&product=Kms&requestId=${requestId}`;
      writeAnswer(
        res,
        { status: err.status, root: 'Error', body: { RequestId: requestId, HostId: hostId, Code: err.code, Message: err.message, Recommend: recommend } },
        format,
      );
      done(err.status, err.code);
    }
  };

  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  // What Node's parser refuses (a malformed request line, headers too large, a bad Expect) is
  // answered as the service answers: a KMS-shaped error body, never Node's bare status line.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const e = err.code === 'HPE_HEADER_OVERFLOW' ? kmsErrors.headersTooLarge() : kmsErrors.badRequest();
    const requestId = randomUUID().toUpperCase();
    const text = JSON.stringify({ RequestId: requestId, HostId: hostId, Code: e.code, Message: e.message });
    const reason = e.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
    socket.end(
      `HTTP/1.1 ${e.status} ${reason}\r\ncontent-type: application/json;charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\nx-acs-request-id: ${requestId}\r\nconnection: close\r\n\r\n${text}`,
    );
  });
  // `Expect: 100-continue` is answered (the service accepts it); any other expectation is refused in
  // the KMS shape rather than with Node's bare 417.
  server.on('checkExpectation', (req, res) => {
    const requestId = randomUUID().toUpperCase();
    writeAnswer(
      res,
      { status: 417, root: 'Error', body: { RequestId: requestId, HostId: hostId, Code: 'InvalidParameter', Message: 'The Expect header is not supported.' } },
      'JSON',
    );
    req.resume();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    endpoint: `127.0.0.1:${port}`,
    port,
    credentials: credentials[0]!,
    keyring,
    faults,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
