import type { IncomingHttpHeaders } from 'node:http';
import type { ResolvedTarget, RetryOptions } from '../../src/config.js';
import { BATCH_CONTENT_TYPE } from '../../src/protocol/cloudevents.js';
import { parseSecret, verify } from '../../src/protocol/signature.js';
import { HttpTransport } from '../../src/backends/http/axios-transport.js';
import { UndiciTransport } from '../../src/backends/http/undici-transport.js';
import type { Delivery, Transport } from '../../src/send/transport.js';
import { createCapturingLogger, type CapturingLogger } from '../helpers/logger.js';
import { freePort, startServer } from '../helpers/server.js';
import { newSecret, structuredEvent } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

/** The HTTP clients behind the `Transport` seam: each runs the same scenarios. */
interface TransportOptions {
  logger: CapturingLogger['logger'];
  timeoutMs: number;
  retry: RetryOptions;
}
const clients: Array<[string, (options: TransportOptions) => Transport]> = [
  ['axios', (options) => new HttpTransport(options)],
  ['undici', (options) => new UndiciTransport(options)],
];

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  /** The signature checked with the library's own verify, against the exact bytes received. */
  verified: boolean;
  /** The event ids in the batch, in order. */
  ids: string[];
}

type Answer = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

/** A receiver that checks each request's signature and answers a script (then 200 with every event delivered). */
async function batchReceiver(secret: string, script: Array<(request: Received) => Answer> = []) {
  const keys = [parseSecret(secret)];
  const received: Received[] = [];
  const server = await startServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const header = (name: string) => req.headers[name] as string | undefined;
      const verified =
        verify(keys, { id: header('webhook-id'), timestamp: header('webhook-timestamp'), signature: header('webhook-signature'), body: raw }, 300) ===
        undefined;
      const body = raw.toString('utf8');
      const ids = (JSON.parse(body) as Array<{ id: string }>).map((event) => event.id);
      const request: Received = { headers: req.headers, body, verified, ids };
      received.push(request);
      const answer = verified ? (script.shift() ?? allDelivered)(request) : { status: 401, body: '{"error":"invalid_signature"}' };
      if (answer === 'hang') return;
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body ?? '');
    });
  });
  return { url: server.url, received, close: () => server.close() };
}

function allDelivered(request: Received): Answer {
  return { status: 200, body: JSON.stringify({ results: request.ids.map((id) => ({ id, status: 200, receipt: 'delivered' })) }) };
}

function deliveriesTo(url: string, secret: string, count: number): Delivery[] {
  const target: ResolvedTarget = { name: 'payments', url, keys: [parseSecret(secret)], batch: true, receipt: true };
  return Array.from({ length: count }, (_, n) => {
    const event = structuredEvent('order-placed', { n });
    return {
      eventId: String(event.id),
      type: 'order-placed',
      source: 'users',
      target,
      body: JSON.stringify(event),
      previousAttempts: 0,
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    };
  });
}

const fastRetry: RetryOptions = { retries: 2, baseDelayMs: 10, maxDelayMs: 20, maxRetryAfterMs: 10_000 };

describe.each(clients)('batch sends over %s', (_name, create) => {
  const open: Array<{ close(): Promise<void> }> = [];
  let log: CapturingLogger;
  let secret: string;
  let transport: Transport & Required<Pick<Transport, 'sendBatch'>>;

  beforeEach(() => {
    log = createCapturingLogger('debug');
    secret = newSecret();
    transport = create({ logger: log.logger, timeoutMs: 2_000, retry: fastRetry }) as typeof transport;
    open.push(transport);
  });
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
  });

  async function receiver(script?: Array<(request: Received) => Answer>) {
    const server = await batchReceiver(secret, script);
    open.push(server);
    return server;
  }

  test('sends one signed request: the stored bodies as a JSON array, a fresh batch id, no trace header', async () => {
    const server = await receiver();
    const deliveries = deliveriesTo(server.url, secret, 3);

    const results = await transport.sendBatch(deliveries);

    expect(results).toEqual(deliveries.map(() => ({ outcome: 'delivered', status: 200, attempts: 1 })));
    expect(server.received).toHaveLength(1);
    const [request] = server.received;
    expect(request?.verified).toBe(true);
    expect(request?.body).toBe(`[${deliveries.map((d) => d.body).join(',')}]`);
    expect(request?.headers['content-type']).toBe(BATCH_CONTENT_TYPE);
    expect(request?.headers['webhook-id']).toMatch(/^batch_[0-9a-f-]{36}$/);
    expect(request?.headers.traceparent).toBeUndefined();
  });

  test('a mixed answer settles each event on its own, and is never sent again', async () => {
    const server = await receiver([
      ({ ids }) => ({
        status: 503,
        headers: { 'retry-after': '2' },
        body: JSON.stringify({
          results: [
            { id: ids[0], status: 200, receipt: 'delivered' },
            { id: ids[1], status: 422, error: 'rejected_by_handler', message: 'order is closed' },
            { id: ids[2], status: 503, error: 'inbox_unavailable', message: 'inbox is down', retryAfter: 1 },
            { id: ids[3], status: 200, receipt: 'duplicate' },
            { id: ids[4], status: 500, error: 'handler_failed', message: 'boom' },
          ],
        }),
      }),
    ]);

    const results = await transport.sendBatch(deliveriesTo(server.url, secret, 5));

    expect(results).toEqual([
      { outcome: 'delivered', status: 200, attempts: 1 },
      { outcome: 'refused', status: 422, error: 'HTTP 422: rejected_by_handler: order is closed', attempts: 1, targetDown: false, retryAfterMs: 2000 },
      { outcome: 'retry', status: 503, error: 'HTTP 503: inbox_unavailable: inbox is down', attempts: 1, targetDown: true, retryAfterMs: 1000 },
      { outcome: 'delivered', status: 200, attempts: 1 },
      { outcome: 'retry', status: 500, error: 'HTTP 500: handler_failed: boom', attempts: 1, targetDown: false, retryAfterMs: 2000 },
    ]);
    expect(server.received).toHaveLength(1);
  });

  test('a 415 says the peer does not read batches: every event comes back for a single send', async () => {
    const server = await receiver([() => ({ status: 415, body: '{"error":"unsupported_media_type"}' })]);

    const results = await transport.sendBatch(deliveriesTo(server.url, secret, 2));

    for (const result of results) expect(result).toMatchObject({ outcome: 'retry', status: 415, batchUnsupported: true, attempts: 1 });
    expect(server.received).toHaveLength(1);
  });

  test('a 413 says the batch was too large: every event comes back, with the size of the batch refused', async () => {
    const server = await receiver([() => ({ status: 413, body: '{"error":"payload_too_large"}' })]);
    const deliveries = deliveriesTo(server.url, secret, 3);

    const results = await transport.sendBatch(deliveries);

    const bytes = Buffer.byteLength(`[${deliveries.map((d) => d.body).join(',')}]`);
    for (const result of results) expect(result).toMatchObject({ outcome: 'retry', status: 413, batchUnsupported: true, batchTooLarge: bytes });
    expect(server.received).toHaveLength(1);
  });

  test('a plain 2xx is not a receipt: every event is kept for redelivery, with the hint', async () => {
    const server = await receiver([() => ({ status: 204 })]);

    const results = await transport.sendBatch(deliveriesTo(server.url, secret, 2));

    const kept = { outcome: 'retry', status: 204, attempts: 1, targetDown: true, error: 'HTTP 204 without an events receipt' };
    expect(results).toEqual([
      { ...kept, hint: expect.objectContaining({ key: 'not-a-receipt', scope: 'target' }) },
      { ...kept, hint: expect.objectContaining({ key: 'not-a-receipt', scope: 'target' }) },
    ]);
  });

  test('a plain 2xx takes every event of a target with receipt: false, silently', async () => {
    const server = await receiver([() => ({ status: 204 })]);
    const deliveries = deliveriesTo(server.url, secret, 2).map((d) => ({ ...d, target: { ...d.target, receipt: false } }));

    const results = await transport.sendBatch(deliveries);

    expect(results).toEqual([
      { outcome: 'delivered', status: 204, attempts: 1 },
      { outcome: 'delivered', status: 204, attempts: 1 },
    ]);
  });

  test('a 503 without results is retried in place, signed again under a fresh id', async () => {
    const server = await receiver([() => ({ status: 503, body: '{"error":"busy"}' })]);

    const results = await transport.sendBatch(deliveriesTo(server.url, secret, 2));

    expect(results).toEqual([
      { outcome: 'delivered', status: 200, attempts: 2 },
      { outcome: 'delivered', status: 200, attempts: 2 },
    ]);
    expect(server.received).toHaveLength(2);
    expect(server.received.every((request) => request.verified)).toBe(true);
    expect(server.received[0]?.body).toBe(server.received[1]?.body);
    expect(server.received[0]?.headers['webhook-id']).not.toBe(server.received[1]?.headers['webhook-id']);
  });

  test('a 503 without results on every try: each event is retried later, target down', async () => {
    const busy = () => ({ status: 503, body: 'busy' });
    const server = await receiver([busy, busy, busy]);

    const results = await transport.sendBatch(deliveriesTo(server.url, secret, 2));

    for (const result of results) expect(result).toMatchObject({ outcome: 'retry', status: 503, attempts: 3, targetDown: true, error: 'HTTP 503: busy' });
    expect(server.received).toHaveLength(3);
  });

  test('a results array of the wrong length is an answer without results', async () => {
    const server = await receiver([() => ({ status: 503, body: JSON.stringify({ results: [{ status: 200 }] }) })]);

    const results = await transport.sendBatch(deliveriesTo(server.url, secret, 2));

    expect(results.map((r) => r.outcome)).toEqual(['delivered', 'delivered']);
    expect(server.received).toHaveLength(2);
  });

  test('results in another order than the batch are not trusted: retried in place as an answer without results', async () => {
    const server = await receiver([
      ({ ids }) => ({ status: 503, body: JSON.stringify({ results: [...ids].reverse().map((id) => ({ id, status: 200, receipt: 'delivered' })) }) }),
    ]);

    const results = await transport.sendBatch(deliveriesTo(server.url, secret, 2));

    expect(results.map((r) => [r.outcome, r.attempts])).toEqual([
      ['delivered', 2],
      ['delivered', 2],
    ]);
    expect(server.received).toHaveLength(2);
  });

  test('a wrong secret: 401 for every event, not retried in place', async () => {
    const server = await receiver();
    const deliveries = deliveriesTo(server.url, newSecret(), 2);

    const results = await transport.sendBatch(deliveries);

    for (const result of results) expect(result).toMatchObject({ outcome: 'retry', status: 401, attempts: 1, targetDown: true });
    expect(server.received).toHaveLength(1);
    expect(log.lines.join('\n')).not.toContain('v1,');
  });

  test('the answer to a large batch is read whole (results beyond the single send cap)', async () => {
    const server = await receiver([
      ({ ids }) => ({
        status: 503,
        body: JSON.stringify({
          results: ids.map((id, n) =>
            n === 0
              ? { id, status: 400, error: 'invalid_data', message: 'x'.repeat(600) }
              : { id, status: 503, error: 'inbox_unavailable', message: 'y'.repeat(600) },
          ),
        }),
      }),
    ]);

    const results = await transport.sendBatch(deliveriesTo(server.url, secret, 150));

    expect(results).toHaveLength(150);
    expect(results[0]).toMatchObject({ outcome: 'refused', status: 400 });
    expect(results.slice(1).every((r) => r.outcome === 'retry' && r.status === 503)).toBe(true);
    expect(server.received).toHaveLength(1);
  });

  test('an unreachable target: every event is retried later, target down', async () => {
    const port = await freePort();
    const results = await transport.sendBatch(deliveriesTo(`http://127.0.0.1:${port}/events`, secret, 2));

    expect(results).toHaveLength(2);
    for (const result of results) expect(result).toMatchObject({ outcome: 'retry', targetDown: true, attempts: 3 });
  });

  test('close() aborts a batch in flight: every event is retried later', async () => {
    const server = await receiver([() => 'hang']);
    const pending = transport.sendBatch(deliveriesTo(server.url, secret, 2));
    await waitFor(() => server.received.length === 1);

    await transport.close();
    const results = await pending;

    for (const result of results) expect(result).toMatchObject({ outcome: 'retry', targetDown: true });
    expect(server.received).toHaveLength(1);
  });

  test('each try is logged at debug, with the batch id and its size', async () => {
    const server = await receiver();
    await transport.sendBatch(deliveriesTo(server.url, secret, 4));

    expect(log.withMessage('delivery attempt')).toEqual([
      expect.objectContaining({ target: 'payments', events: 4, batch: server.received[0]?.headers['webhook-id'], attempt: 1, status: 200 }),
    ]);
  });
});
