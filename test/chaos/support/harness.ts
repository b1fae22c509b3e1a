// Helpers for the durability and chaos suites: real servers on loopback, temp files, signed requests.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import { createEvent, STRUCTURED_CONTENT_TYPE, toStructuredBody } from '../../../src/protocol/cloudevents.js';
import { parseSecret, signatureHeader } from '../../../src/protocol/signature.js';

/** A logger that writes nothing (set EVENTS_TEST_LOG=1 to see the library's lines on stderr). */
export function quietLogger(): winston.Logger {
  if (process.env.EVENTS_TEST_LOG) {
    return winston.createLogger({
      level: 'debug',
      format: winston.format.json(),
      transports: [new winston.transports.Stream({ stream: process.stderr })],
    });
  }
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

export const newSecret = (): string => `whsec_${randomBytes(24).toString('base64')}`;

/** A directory under os.tmpdir(), removed by `remove()`. */
export function tempDir(prefix: string): { path: string; file(name: string): string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `events-${prefix}-`));
  return { path, file: (name) => join(path, name), remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface Listening {
  port: number;
  /** `http://127.0.0.1:<port>/events` */
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (port 0: a free one). `close()` also drops open (keep-alive or hanging) connections. */
export async function listen(listener: http.RequestListener, port = 0): Promise<Listening> {
  const server = http.createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    port: actual,
    url: `http://127.0.0.1:${actual}/events`,
    server,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

/** A port that was free a moment ago (bound, then released). */
export async function freePort(): Promise<number> {
  const s = await listen((_req, res) => res.end());
  await s.close();
  return s.port;
}

/** Polls until `predicate` is truthy; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A structured CloudEvent signed as a sender would sign it: the same object can be posted twice. */
export interface SignedRequest {
  id: string;
  headers: Record<string, string>;
  body: string;
}

export function signedRequest(secret: string, source: string, type: string, data: unknown): SignedRequest {
  const event = createEvent(source, type, data);
  const body = toStructuredBody(event);
  const timestamp = Math.floor(Date.now() / 1000);
  return {
    id: event.id,
    body,
    headers: {
      'content-type': STRUCTURED_CONTENT_TYPE,
      'webhook-id': event.id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatureHeader([parseSecret(secret)], event.id, timestamp, body),
    },
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

export async function post(url: string, request: SignedRequest): Promise<Answer> {
  const response = await fetch(url, { method: 'POST', headers: request.headers, body: request.body });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** A gate a test opens when it wants: `wait()` resolves after `open()`. */
export function gate(): { wait(): Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => opened, open };
}

/** A logger that keeps each record's message and fields in memory (nothing printed). */
export function recordingLogger(): { logger: winston.Logger; records: Array<{ message: string; [field: string]: unknown }> } {
  const records: Array<{ message: string; [field: string]: unknown }> = [];
  const sink = new Writable({
    objectMode: true,
    write(info: { message: string }, _encoding, done) {
      records.push({ ...info });
      done();
    },
  });
  const logger = winston.createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream: sink })] });
  return { logger, records };
}
