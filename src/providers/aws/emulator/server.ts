/**
 * The loopback AWS KMS emulator: an HTTP server on 127.0.0.1 that speaks the
 * AWS KMS JSON 1.1 protocol (`POST /`, `X-Amz-Target: TrentService.<Op>`,
 * `Content-Type: application/x-amz-json-1.1`) over a {@link LocalKeyring}, so
 * applications and tests run offline against the same wire protocol as the
 * service, with `AwsKmsProvider` or the official `@aws-sdk/client-kms`.
 * Node-only (`node:http`).
 *
 * It verifies SigV4 over what was sent (see `auth.ts`), answers errors in the
 * service's shape (`__type`, `message`, HTTP status, `x-amzn-RequestId`),
 * injects faults on demand, and keeps a request log with secrets redacted.
 * @module
 */
import { randomBytes as nodeRandomBytes, randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { nodeAesGcm } from '../../../core/aead/node.js';
import type { AesGcm } from '../../../core/aead/types.js';
import { InvalidParameterError } from '../../../core/errors.js';
import { utf8DecodeStrict } from '../../../internal/bytes.js';
import { LocalKeyring } from '../../local/keyring.js';
import { distinctHeaders } from '../../alibaba/emulator/auth.js';
import { isAwsRegion } from '../endpoint.js';
import type { QueryParam } from '../sigv4.js';
import { type AwsEmulatorCredential, AwsAuthenticator } from './auth.js';
import { AwsApiError, awsErrors } from './errors.js';
import { AwsFaultInjector } from './faults.js';
import { AwsKmsOperations } from './operations.js';

/** Options of {@link startAwsKmsEmulator}. */
export interface AwsKmsEmulatorOptions {
  /** The keys to serve. Default: a new, empty in-memory keyring (on `node:crypto`). */
  readonly keyring?: LocalKeyring;
  /** AES-GCM backend for large Encrypt plaintexts. Default `node:crypto`. */
  readonly aead?: AesGcm;
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number;
  /** The emulated region (requests must be signed for it; ARNs name it). Default `us-east-1`. */
  readonly region?: string;
  /** The emulated 12-digit account id in ARNs. Default `111122223333`. */
  readonly accountId?: string;
  /** Accepted credentials. Default: one fresh random access key (see {@link AwsKmsEmulator.credentials}). */
  readonly credentials?: readonly AwsEmulatorCredential[];
  /** Largest difference between `X-Amz-Date` and the emulator's clock, in ms (default 5 minutes, as the service). */
  readonly maxClockSkewMs?: number;
  /** The emulator's clock, in ms since the epoch (default `Date.now`). */
  readonly now?: () => number;
  /** Largest request body, in bytes (default 64 KiB). */
  readonly maxBodyBytes?: number;
  /** How many requests {@link AwsKmsEmulator.requests} keeps (default 1000). */
  readonly maxRecordedRequests?: number;
}

/** One request as the emulator saw it. Secrets are redacted: `Authorization` signature, session token, `Plaintext`. */
export interface AwsRecordedRequest {
  readonly method: string;
  readonly path: string;
  /** Header values by lower-case name; `authorization` keeps its credential scope and signed headers only. */
  readonly headers: Readonly<Record<string, string>>;
  /** The operation (`X-Amz-Target` without `TrentService.`), when there was one. */
  readonly operation: string | undefined;
  /** The access key id that signed it, when it was authenticated. */
  readonly accessKeyId: string | undefined;
  /** Member names of the request body (never their values). */
  readonly members: readonly string[];
  /** HTTP status answered (0 when the connection was dropped or the client was gone). */
  readonly status: number;
  /** Error type answered, if any. */
  readonly errorType: string | undefined;
  readonly requestId: string;
}

/** A running emulator. */
export interface AwsKmsEmulator {
  /** `http://127.0.0.1:<port>`: the `endpoint` of `AwsKmsProvider` and of `KMSClient`. */
  readonly url: string;
  readonly port: number;
  /** The emulated region. */
  readonly region: string;
  /** The emulated account id. */
  readonly accountId: string;
  /** The first accepted credential (the generated one by default). Test credentials only. */
  readonly credentials: AwsEmulatorCredential;
  /** The keyring behind the emulator: disable keys, schedule deletion, rotate. */
  readonly keyring: LocalKeyring;
  /** Fault injection. */
  readonly faults: AwsFaultInjector;
  /** Requests seen, oldest first (secrets redacted). */
  readonly requests: readonly AwsRecordedRequest[];
  /**
   * Make a key as `CreateKey` does: a UUID key id (`mrk-…` when `multiRegion`), an alias when given.
   * @returns the key id, its ARN, and the keyring's id for it.
   */
  createKey(options?: { alias?: string; description?: string; multiRegion?: boolean }): { keyId: string; arn: string; localKeyId: string };
  /** The ARN the emulator answers for a keyring key id. */
  arnOf(localKeyId: string): string;
  /** Stop listening and close every connection. */
  close(): Promise<void>;
}

const DEFAULT_SKEW_MS = 5 * 60 * 1000;
const TARGET_PREFIX = 'TrentService.';
const JSON_TYPE = 'application/x-amz-json-1.1';

/** A fresh random test credential: `AKIA` + 16 upper-case characters, and a 40-character secret. */
export function generateAwsEmulatorCredential(): AwsEmulatorCredential {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return {
    accessKeyId: 'AKIA' + Array.from(nodeRandomBytes(16), (b) => alphabet[b & 31]).join(''),
    secretAccessKey: nodeRandomBytes(30).toString('base64'),
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
    req.on('end', () => (over ? reject(awsErrors.tooLarge()) : resolve(new Uint8Array(Buffer.concat(chunks)))));
    req.on('error', reject);
  });
}

/** Keep the credential scope and signed headers of an `Authorization` value, never its signature. */
function redactAuthorization(v: string): string {
  return v.replace(/Signature=[0-9a-fA-F]*/g, 'Signature=<redacted>');
}

function checkOptions(o: AwsKmsEmulatorOptions): void {
  const int = (v: unknown, name: string, min: number, max: number) => {
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)) {
      throw new InvalidParameterError(`"${name}" must be an integer from ${min} to ${max}`);
    }
  };
  int(o.port, 'port', 0, 65535);
  int(o.maxClockSkewMs, 'maxClockSkewMs', 0, 24 * 3600 * 1000);
  int(o.maxBodyBytes, 'maxBodyBytes', 1024, 16 * 1024 * 1024);
  int(o.maxRecordedRequests, 'maxRecordedRequests', 0, 1_000_000);
  if (o.region !== undefined && !isAwsRegion(o.region)) throw new InvalidParameterError('"region" must be an AWS region id such as "us-east-1"');
  if (o.accountId !== undefined && (typeof o.accountId !== 'string' || !/^\d{12}$/.test(o.accountId))) {
    throw new InvalidParameterError('"accountId" must be 12 digits');
  }
  if (o.keyring !== undefined && !(o.keyring instanceof LocalKeyring)) throw new InvalidParameterError('"keyring" must be a LocalKeyring');
  if (o.credentials !== undefined && (!Array.isArray(o.credentials) || o.credentials.length === 0)) {
    throw new InvalidParameterError('"credentials" must be a non-empty array');
  }
}

function writeJson(res: ServerResponse, status: number, requestId: string, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'x-amzn-RequestId': requestId,
    'Content-Type': JSON_TYPE,
    'Content-Length': Buffer.byteLength(text),
    Date: new Date().toUTCString(),
  });
  res.end(text);
}

/**
 * Start an AWS KMS emulator on 127.0.0.1.
 *
 * @param options - keyring, port, region, account, credentials, clock skew; see {@link AwsKmsEmulatorOptions}.
 * @returns the running emulator: its URL, test credentials, keyring and fault injector.
 * @throws InvalidParameterError for bad options; the listen error when the port is taken.
 * @example
 * ```ts
 * import { startAwsKmsEmulator } from 'envelope-kit/aws-emulator';
 * import { AwsKmsProvider } from 'envelope-kit/aws';
 *
 * const kms = await startAwsKmsEmulator();
 * kms.createKey({ alias: 'alias/app' });
 * const provider = new AwsKmsProvider({ region: kms.region, endpoint: kms.url, credentials: kms.credentials });
 * const dk = await provider.generateDataKey({ keyId: 'alias/app' });
 * await kms.close();
 * ```
 */
export async function startAwsKmsEmulator(options: AwsKmsEmulatorOptions = {}): Promise<AwsKmsEmulator> {
  checkOptions(options);
  const aead = options.aead ?? nodeAesGcm;
  const keyring = options.keyring ?? new LocalKeyring({ aead });
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '111122223333';
  const credentials = options.credentials ? [...options.credentials] : [generateAwsEmulatorCredential()];
  const now = options.now ?? Date.now;
  const auth = new AwsAuthenticator(credentials, region, options.maxClockSkewMs ?? DEFAULT_SKEW_MS, now);
  const ops = new AwsKmsOperations(keyring, aead, region, accountId);
  const faults = new AwsFaultInjector();
  const maxBody = options.maxBodyBytes ?? 64 * 1024;
  const maxRecorded = options.maxRecordedRequests ?? 1000;
  const requests: AwsRecordedRequest[] = [];

  const record = (r: AwsRecordedRequest) => {
    if (maxRecorded === 0) return;
    requests.push(r);
    if (requests.length > maxRecorded) requests.splice(0, requests.length - maxRecorded);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = randomUUID();
    const headers = distinctHeaders(req.headersDistinct);
    const recorded: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) {
      recorded[k] = k === 'x-amz-security-token' ? '<redacted>' : k === 'authorization' ? v.map(redactAuthorization).join(', ') : v.join(', ');
    }
    let operation: string | undefined;
    let accessKeyId: string | undefined;
    let members: string[] = [];
    const rawUrl = req.url ?? '/';
    const done = (status: number, errorType?: string) =>
      record({ method: req.method ?? '', path: rawUrl.split('?')[0]!, headers: recorded, operation, accessKeyId, members, status, errorType, requestId });
    try {
      const body = await readRequestBody(req, maxBody);
      const target = headers['x-amz-target']?.[0];
      if (target !== undefined && target.startsWith(TARGET_PREFIX)) operation = target.slice(TARGET_PREFIX.length);
      const q = rawUrl.indexOf('?');
      let path: string;
      const query: QueryParam[] = [];
      try {
        path = decodeURIComponent(q < 0 ? rawUrl : rawUrl.slice(0, q));
        if (q >= 0) {
          for (const part of rawUrl.slice(q + 1).split('&')) {
            if (part === '') continue;
            const e = part.indexOf('=');
            query.push(e < 0 ? [decodeURIComponent(part), ''] : [decodeURIComponent(part.slice(0, e)), decodeURIComponent(part.slice(e + 1))]);
          }
        }
      } catch {
        throw awsErrors.serialization('The request URL could not be decoded.');
      }
      accessKeyId = auth.verify({ method: req.method ?? '', path, query, headers, body });
      if (req.method !== 'POST' || path !== '/' || query.length > 0) throw awsErrors.unknownOperation();
      const contentType = headers['content-type']?.[0]?.split(';')[0]?.trim().toLowerCase();
      if (contentType !== JSON_TYPE) throw awsErrors.serialization(`Content-Type must be ${JSON_TYPE}.`);
      if (operation === undefined || headers['x-amz-target']!.length !== 1) throw awsErrors.unknownOperation();
      const text = utf8DecodeStrict(body);
      let json: unknown;
      try {
        json = text === undefined ? undefined : text === '' ? {} : JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (json === null || typeof json !== 'object' || Array.isArray(json)) throw awsErrors.serialization();
      members = Object.keys(json).sort();
      const decision = faults.take(operation);
      if (decision.latencyMs > 0) await new Promise((r) => setTimeout(r, decision.latencyMs));
      if (decision.fault?.kind === 'drop') {
        done(0);
        req.socket.destroy();
        return;
      }
      if (decision.fault?.kind === 'error') throw new AwsApiError(decision.fault.status, decision.fault.code, decision.fault.message);
      const result = await ops.run(operation, json as Record<string, unknown>);
      if (res.destroyed) return done(0);
      writeJson(res, 200, requestId, result);
      done(200);
    } catch (e) {
      const err = e instanceof AwsApiError ? e : awsErrors.internal();
      if (res.destroyed || res.headersSent) return done(0, err.type);
      writeJson(res, err.status, requestId, { __type: err.type, message: err.message });
      done(err.status, err.type);
    }
  };

  const server: Server = createServer((req, res) => {
    void handle(req, res);
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
    port,
    region,
    accountId,
    credentials: credentials[0]!,
    keyring,
    faults,
    requests,
    createKey: (o) => ops.createKey(o),
    arnOf: (id) => ops.arnOf(id),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
