/**
 * The emulator's view of the wire: strict parsing of query strings and form
 * bodies into parameters (exactly what was sent, decoded once), and answers in
 * the KMS shapes: JSON by default, XML when a V1 request asks for it (or names
 * no `Format`, as the RPC API's default is XML). Errors carry `RequestId`,
 * `HostId`, `Code` and `Message` with the HTTP status of the KMS error tables.
 * @module
 */
import type { ServerResponse } from 'node:http';
import type { Param } from '../encoding.js';

/** A parameter list could not be decoded (bad percent-encoding or invalid UTF-8). */
export class WireFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireFormatError';
  }
}

/**
 * Decode `a=1&b=2` (query string or `application/x-www-form-urlencoded` body):
 * `+` is a space, `%XY` sequences must form valid UTF-8.
 * @throws WireFormatError
 */
export function parseParams(text: string): Param[] {
  if (text === '') return [];
  const out: Param[] = [];
  for (const part of text.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    out.push([decodeComponent(rawName), decodeComponent(rawValue)]);
  }
  return out;
}

function decodeComponent(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw new WireFormatError('malformed percent-encoding');
  }
}

/** An answer to write. */
export interface Answer {
  readonly status: number;
  /** Top-level members, in order. */
  readonly body: Readonly<Record<string, string | number>>;
  /** XML root element (`<Action>Response` or `Error`). */
  readonly root: string;
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** Write an answer as JSON or XML, with `x-acs-request-id`. */
export function writeAnswer(res: ServerResponse, answer: Answer, format: 'JSON' | 'XML'): void {
  let text: string;
  if (format === 'XML') {
    const members = Object.entries(answer.body)
      .map(([k, v]) => `<${k}>${xmlEscape(String(v))}</${k}>`)
      .join('');
    text = `<?xml version="1.0" encoding="UTF-8"?><${answer.root}>${members}</${answer.root}>`;
  } else {
    text = JSON.stringify(answer.body);
  }
  const bytes = Buffer.from(text, 'utf8');
  const requestId = answer.body['RequestId'];
  res.writeHead(answer.status, {
    'content-type': format === 'XML' ? 'text/xml;charset=utf-8' : 'application/json;charset=utf-8',
    'content-length': String(bytes.length),
    ...(typeof requestId === 'string' ? { 'x-acs-request-id': requestId } : {}),
  });
  res.end(bytes);
}
