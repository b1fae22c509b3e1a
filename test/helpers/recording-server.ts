import type { IncomingHttpHeaders } from 'node:http';
import type { ServerOptions } from 'node:https';
import { startServer } from './server.js';

/**
 * How the recording server answers one request. `'hang'` never answers (until the server closes).
 * Without a `body`, a 2xx answers our receiver's receipt (`{"status":"delivered","id":<webhook-id>}`, a batch's `results`), any other status `{}`.
 */
export type Reply = { status: number; headers?: Record<string, string>; body?: string; delayMs?: number } | 'hang';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** The exact bytes received. */
  rawBody: Buffer;
  body: string;
  /** Date.now() when the whole body had arrived. */
  receivedAt: number;
  /** Status sent back, once answered. */
  status?: number;
  answeredAt?: number;
}

export interface RecordingServer {
  /** `http://127.0.0.1:<port>/events` */
  url: string;
  origin: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export interface RecordingServerOptions {
  /** Answers for the first requests, in order. */
  replies?: Reply[];
  /** Answer once `replies` are used up. @default { status: 200 } */
  then?: Reply | ((request: RecordedRequest) => Reply | Promise<Reply>);
  /** Over HTTPS, with these certificates. */
  tls?: ServerOptions;
}

/** A target service that records every request (headers and exact raw body) and answers a script. */
export async function startRecordingServer(options: RecordingServerOptions = {}): Promise<RecordingServer> {
  const replies = [...(options.replies ?? [])];
  const then = options.then ?? { status: 200 };
  const requests: RecordedRequest[] = [];
  const server = await startServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks);
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawBody,
        body: rawBody.toString('utf8'),
        receivedAt: Date.now(),
      };
      requests.push(recorded);
      const next = replies.shift();
      void Promise.resolve(next ?? (typeof then === 'function' ? then(recorded) : then)).then(async (reply) => {
        if (reply === 'hang') return;
        if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
        if (res.destroyed) return;
        recorded.status = reply.status;
        recorded.answeredAt = Date.now();
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
        // By default a 2xx is our receiver's receipt (a batch's: one result per event); a reply with a body answers exactly that body.
        res.end(reply.body ?? (reply.status < 300 ? receiptFor(recorded) : '{}'));
      });
    });
  }, 0, options.tls);
  return { url: server.url, origin: server.origin, requests, close: () => server.close() };
}

/** What our receiver answers a delivered request: `{ status, id }`, or for a batch `{ results }` with one receipt per event. */
function receiptFor(request: RecordedRequest): string {
  if (String(request.headers['content-type']).startsWith('application/cloudevents-batch+json')) {
    const events = JSON.parse(request.body) as { id: string }[];
    return JSON.stringify({ results: events.map((event) => ({ id: event.id, status: 200, receipt: 'delivered' })) });
  }
  return JSON.stringify({ status: 'delivered', id: request.headers['webhook-id'] ?? '' });
}

/** The `webhook-*` and other headers of a recorded request as plain strings (for standardwebhooks / cloudevents). */
export function headersOf(request: RecordedRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
