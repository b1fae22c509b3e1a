import express from 'express';
import { Webhook } from 'standardwebhooks';
import { createEventBus, type EventBus, type EventBusOptions } from '../../src/index.js';
import { closeAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, type CapturingLogger } from '../helpers/logger.js';
import { headersOf, startRecordingServer, type RecordingServer, type RecordingServerOptions } from '../helpers/recording-server.js';
import { freePort, startServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * The single-send scenarios of the HTTP transport, run through the bus over each HTTP client:
 * `httpClient: 'undici'` must deliver, retry, refuse and log exactly as the default axios does.
 */
const clients = ['axios', 'undici'] as const;

const open = closeAfterEach();

let secret: string;
let log: CapturingLogger;
beforeEach(() => {
  secret = newSecret();
  log = createCapturingLogger('debug');
});

const payload = { user_id: 'u_1', email: 'ada@example.com' };

async function target(options: RecordingServerOptions = {}): Promise<RecordingServer> {
  const server = await startRecordingServer(options);
  open.push(server);
  return server;
}

describe.each(clients)('single sends over %s', (httpClient) => {
  function users(services: Record<string, string>, options: EventBusOptions = {}): EventBus {
    const bus = createEventBus({
      service: 'users',
      secret,
      services,
      logger: log.logger,
      env: {},
      httpClient,
      retry: { baseDelayMs: 50, maxDelayMs: 100 },
      redelivery: { baseDelayMs: 60_000 },
      shutdownTimeoutMs: 300,
      ...options,
    });
    open.unshift(bus);
    for (const name of Object.keys(services)) bus.declareEvent(`to-${name}`, [name]);
    return bus;
  }

  it('delivers to an Express service through its middleware, whose handler runs once', async () => {
    const received: unknown[] = [];
    const payments = createEventBus({ service: 'payments', secret, logger: createCapturingLogger('warn').logger, env: {} });
    open.unshift(payments);
    payments.subscribeTo('to-payments', (data, event) => void received.push({ data, id: event.id }));
    const server = await startServer(express().use(payments.expressMiddleware()));
    open.push(server);

    const receipt = await users({ payments: server.url }).emit('to-payments', payload);

    await waitFor(() => received.length === 1, { what: 'the handler' });
    expect(received).toEqual([{ data: payload, id: receipt.id }]);
    await waitFor(() => log.withMessage('event delivered').length === 1);
    expect(log.withMessage('event delivered')).toEqual([expect.objectContaining({ eventId: receipt.id, status: 200 })]);
    // A receipt answer: no "plain 2xx" warning.
    expect(log.records.filter((r) => r.level === 'warn')).toEqual([]);
  });

  it('sends through the chosen client', async () => {
    const server = await target();
    await users({ payments: server.url }).emit('to-payments', payload);
    await waitFor(() => server.requests.length === 1);
    const agent = String(server.requests[0]?.headers['user-agent'] ?? '');
    if (httpClient === 'axios') expect(agent).toMatch(/^axios\//);
    else expect(agent).not.toMatch(/axios/);
  });

  it('retries 500, 500, then delivers: each try signed again', async () => {
    const server = await target({ replies: [{ status: 500 }, { status: 500 }] });
    const receipt = await users({ payments: server.url }).emit('to-payments', payload);
    await waitFor(() => log.withMessage('event delivered').length === 1, { what: 'the delivery' });
    await sleep(200); // room for a wrong extra try
    expect(server.requests.map((r) => r.status)).toEqual([500, 500, 200]);
    for (const request of server.requests) {
      expect(request.headers['webhook-id']).toBe(receipt.id);
      expect(request.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
      expect(request.body).toBe(server.requests[0]?.body);
      expect(() => new Webhook(secret).verify(request.rawBody, headersOf(request))).not.toThrow();
    }
    expect(log.withMessage('delivery retry').map((r) => r.attempt)).toEqual([2, 3]);
    expect(log.withMessage('delivery attempt failed').map((r) => r.status)).toEqual([500, 500]);
    expect(log.withMessage('delivery attempt')).toEqual([expect.objectContaining({ level: 'debug', attempt: 3, status: 200, durationMs: expect.any(Number) })]);
  });

  it('waits out a Retry-After: 1 on a 503 in place', async () => {
    const server = await target({ replies: [{ status: 503, headers: { 'retry-after': '1' } }] });
    await users({ payments: server.url }).emit('to-payments', payload);
    await waitFor(() => server.requests.length === 2 && server.requests[1]?.status === 200, { what: 'the retry' });
    expect((server.requests[1]?.receivedAt ?? 0) - (server.requests[0]?.receivedAt ?? 0)).toBeGreaterThanOrEqual(900);
  });

  it('a Retry-After longer than maxRetryAfterMs goes back to the outbox at once', async () => {
    const server = await target({ replies: [{ status: 503, headers: { 'retry-after': '60' } }] });
    await users({ payments: server.url }).emit('to-payments', payload);
    await waitFor(() => log.withMessage('delivery failed; will redeliver').length === 1);
    expect(server.requests).toHaveLength(1);
    expect(log.withMessage('delivery retry')).toEqual([]);
  });

  it.each([408, 429, 502])('retries a %i, then delivers', async (status) => {
    const server = await target({ replies: [{ status }] });
    await users({ payments: server.url }).emit('to-payments', payload);
    await waitFor(() => server.requests.some((r) => r.status === 200), { what: 'the retry' });
    expect(server.requests.map((r) => r.status)).toEqual([status, 200]);
  });

  it.each([400, 415, 422])('never retries a %i: one request, then a dead letter', async (status) => {
    const server = await target({ then: { status, body: '{"error":"nope"}' } });
    const bus = users({ payments: server.url });
    const receipt = await bus.emit('to-payments', payload);
    await waitFor(() => log.withMessage('delivery refused; dead-lettered').length === 1);
    await sleep(300); // several retry delays: a retry would have come
    expect(server.requests).toHaveLength(1);
    expect(await bus.deadLetters()).toEqual([expect.objectContaining({ eventId: receipt.id })]);
  });

  it('a handler\'s NonRetryableError under a 409 is refused', async () => {
    const server = await target({ then: { status: 409, body: '{"error":"rejected_by_handler","message":"no"}' } });
    await users({ payments: server.url }).emit('to-payments', payload);
    await waitFor(() => log.withMessage('delivery refused; dead-lettered').length === 1);
    expect(server.requests).toHaveLength(1);
  });

  it('does not follow a redirect: one request, kept for redelivery', async () => {
    const elsewhere = await target();
    const server = await target({ then: { status: 307, headers: { location: elsewhere.url } } });
    await users({ payments: server.url }).emit('to-payments', payload);
    await waitFor(() => log.withMessage('delivery failed; will redeliver').length === 1);
    expect(server.requests).toHaveLength(1);
    expect(elsewhere.requests).toEqual([]);
  });

  it('a plain 2xx whose body is over the answer cap is not a receipt: kept for redelivery, said', async () => {
    const server = await target({ then: { status: 200, body: `<html>${'x'.repeat(100 * 1024)}</html>` } });
    const bus = users({ payments: server.url });
    await bus.emit('to-payments', payload);
    await waitFor(() => log.withMessage('delivery failed; will redeliver').length === 1);
    expect(server.requests).toHaveLength(1);
    expect(log.withMessage('event delivered')).toEqual([]);
    expect((await bus.outboxStats()).pending).toBe(1);
    expect(log.records.filter((r) => r.level === 'warn').map((r) => r.message)).toContainEqual(expect.stringContaining('is not an events receipt'));
  });

  it('retries a network error, logging every try at debug with its code', async () => {
    const port = await freePort();
    const bus = users({ payments: `http://127.0.0.1:${port}/events` }, { retry: { retries: 2, baseDelayMs: 20, maxDelayMs: 40 } });
    const receipt = await bus.emit('to-payments', payload);
    await waitFor(() => log.withMessage('delivery failed; will redeliver').length === 1);
    const tries = log.withMessage('delivery attempt failed');
    expect(tries.map((r) => r.attempt)).toEqual([1, 2, 3]);
    for (const t of tries) expect(t).toMatchObject({ level: 'debug', eventId: receipt.id, error: expect.stringContaining('ECONNREFUSED') });
    expect(log.withMessage('delivery failed; will redeliver')).toEqual([expect.objectContaining({ level: 'warn', attempt: 3 })]);
  });

  it('times out a target that never answers after timeoutMs, and retries', async () => {
    const server = await target({ then: 'hang' });
    const bus = users({ payments: server.url }, { timeoutMs: 150, retry: { retries: 1, baseDelayMs: 20, maxDelayMs: 40 } });
    await bus.emit('to-payments', payload);
    await waitFor(() => log.withMessage('delivery failed; will redeliver').length === 1, { what: 'both tries to time out' });
    expect(server.requests).toHaveLength(2);
    expect(log.withMessage('delivery attempt failed').map((r) => r.error)).toEqual(['ETIMEDOUT', 'ETIMEDOUT']);
  });

  it('close() ends a send waiting on a hanging target', async () => {
    const server = await target({ then: 'hang' });
    const bus = users({ payments: server.url }, { timeoutMs: 60_000 });
    await bus.emit('to-payments', payload);
    await waitFor(() => server.requests.length === 1);
    // shutdownTimeoutMs 300: the transport aborts what is in flight (else close waits the 60 s timeout, past jest's)
    await bus.close();
    expect(server.requests).toHaveLength(1);
  });

  it('no secret and no signature in any record', async () => {
    const server = await target({ replies: [{ status: 500 }], then: { status: 400 } });
    await users({ payments: server.url }).emit('to-payments', payload);
    await waitFor(() => log.withMessage('delivery refused; dead-lettered').length === 1);
    const everything = log.lines.join('\n');
    expect(everything).not.toContain(secret.slice('whsec_'.length));
    expect(everything).not.toMatch(/v1,[A-Za-z0-9+/]{20,}/);
  });
});

describe('choosing the HTTP client', () => {
  it('EVENTS_HTTP_CLIENT=undici picks undici', async () => {
    const server = await target();
    const bus = createEventBus({
      service: 'users',
      secret,
      services: { payments: server.url },
      logger: log.logger,
      env: { EVENTS_HTTP_CLIENT: 'undici' },
    });
    open.unshift(bus);
    bus.declareEvent('to-payments', ['payments']);
    await bus.emit('to-payments', payload);
    await waitFor(() => server.requests.length === 1);
    expect(String(server.requests[0]?.headers['user-agent'] ?? '')).not.toMatch(/axios/);
  });

  // What the README says of the two clients: axios goes through the proxy HTTP_PROXY names (its
  // proxy-from-env), undici (an Agent) always goes direct.
  it.each([
    ['axios', 'the proxy'],
    ['undici', 'the target, directly'],
  ] as const)('with HTTP_PROXY set, %s sends to %s', async (httpClient, reached) => {
    const server = await target();
    const proxy = await target();
    // Both spellings: proxy-from-env reads the lower-case one first.
    const names = ['HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'] as const;
    const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]));
    for (const name of names) process.env[name] = name.toLowerCase() === 'http_proxy' ? proxy.origin : '';
    try {
      const bus = createEventBus({ service: 'users', secret, services: { payments: server.url }, logger: log.logger, env: {}, httpClient });
      open.unshift(bus);
      bus.declareEvent('to-payments', ['payments']);
      await bus.emit('to-payments', payload);
      const through = reached === 'the proxy' ? proxy : server;
      await waitFor(() => through.requests.length === 1, { what: reached });
      // A proxy is asked for the absolute URL; a target directly for its path.
      expect(through.requests[0]!.url).toBe(reached === 'the proxy' ? server.url : '/events');
      expect((reached === 'the proxy' ? server : proxy).requests).toEqual([]);
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});
