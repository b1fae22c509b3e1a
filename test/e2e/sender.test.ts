import express from 'express';
import { Webhook } from 'standardwebhooks';
import { createEventBus, type EventBus, type EventBusOptions } from '../../src/index.js';
import { closeAfterEach } from '../helpers/cleanups.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger, type CapturingLogger, type LogRecord } from '../helpers/logger.js';
import { headersOf, startRecordingServer, type RecordingServer, type RecordingServerOptions } from '../helpers/recording-server.js';
import { freePort, startServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';
import { sleep, waitFor } from '../helpers/wait.js';

const open = closeAfterEach();

let secret: string;
let log: CapturingLogger;
beforeEach(() => {
  secret = newSecret();
  log = createCapturingLogger('debug');
});

/** The sending service `users`, with fast retry timings (the tests are about behaviour, not the default delays). */
function users(services: Record<string, string>, options: EventBusOptions = {}): EventBus {
  const bus = createEventBus({
    service: 'users',
    secret,
    services,
    logger: log.logger,
    env: {},
    retry: { baseDelayMs: 50, maxDelayMs: 100 },
    redelivery: { baseDelayMs: 60_000 },
    shutdownTimeoutMs: 300,
    ...options,
  });
  open.unshift(bus);
  for (const name of Object.keys(services)) bus.declareEvent(`to-${name}`, [name]);
  return bus;
}

async function target(options: RecordingServerOptions = {}): Promise<RecordingServer> {
  const server = await startRecordingServer(options);
  open.push(server);
  return server;
}

const payload = { user_id: 'u_1', email: 'ada@example.com' };
const withMessage = (message: string, target?: string): LogRecord[] =>
  log.records.filter((r) => r.message === message && (target === undefined || r.target === target));

function expectSignedFor(request: RecordingServer['requests'][number], key = secret): void {
  expect(() => new Webhook(key).verify(request.rawBody, headersOf(request))).not.toThrow();
}

describe('sending over HTTP to a real server', () => {
  it('delivers an emitted event to an Express service, whose handler runs with the payload', async () => {
    const received: unknown[] = [];
    const payments = createEventBus({ service: 'payments', secret, logger: log.logger, env: {} });
    open.unshift(payments);
    payments.subscribeTo('to-payments', (data, event) => void received.push({ data, id: event.id, source: event.source }));
    const server = await startServer(express().use(payments.expressMiddleware()));
    open.push(server);

    const bus = users({ payments: `${server.origin}/events` });
    const receipt = await bus.emit('to-payments', payload);
    expect(receipt).toMatchObject({ type: 'to-payments', source: 'users', targets: ['payments'] });
    await waitFor(() => received.length === 1, { what: 'the handler' });
    expect(received).toEqual([{ data: payload, id: receipt.id, source: 'users' }]);
  });

  it('retries 500, 500, then delivers once: 3 requests, each re-signed with a valid timestamp', async () => {
    const received: unknown[] = [];
    const payments = createEventBus({ service: 'payments', secret, logger: log.logger, env: {} });
    open.unshift(payments);
    payments.subscribeTo('to-payments', (data) => void received.push(data));
    const server = await target({
      replies: [{ status: 500 }, { status: 500 }],
      // Then the real receiver answers, through the framework-agnostic entry point.
      then: async (req) => {
        const res = await payments.handle({ headers: req.headers, body: req.rawBody });
        return { status: res.status, headers: res.headers, body: JSON.stringify(res.body) };
      },
    });

    const bus = users({ payments: server.url });
    const receipt = await bus.emit('to-payments', payload);
    await waitFor(() => withMessage('delivery attempt', 'payments').length === 1, { what: 'the delivery' });
    await sleep(200); // room for a wrong extra try
    expect(server.requests.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(received).toEqual([payload]);
    for (const req of server.requests) {
      expect(req.headers['webhook-id']).toBe(receipt.id);
      expect(req.body).toBe(server.requests[0]!.body);
      expectSignedFor(req);
      expect(Math.abs(Number(req.headers['webhook-timestamp']) - req.receivedAt / 1000)).toBeLessThan(2);
    }
    expect(withMessage('delivery retry').map((r) => r.attempt)).toEqual([2, 3]);
    expect(withMessage('delivery failed; will redeliver')).toEqual([]);
  });

  it('honours Retry-After: 1 on a 503 (the next try comes at least ~1 s later)', async () => {
    const server = await target({ replies: [{ status: 503, headers: { 'retry-after': '1' } }] });
    const bus = users({ payments: server.url });
    await bus.emit('to-payments', payload);
    await waitFor(() => server.requests.length === 2 && server.requests[1]!.status === 200, { what: 'the retry' });
    const gap = server.requests[1]!.receivedAt - server.requests[0]!.receivedAt;
    expect(gap).toBeGreaterThanOrEqual(900);
  });

  it.each([408, 429, 500, 502, 503, 504])('retries a %i, then delivers', async (status) => {
    const server = await target({ replies: [{ status }] });
    const bus = users({ payments: server.url });
    await bus.emit('to-payments', payload);
    await waitFor(() => server.requests.some((r) => r.status === 200), { what: 'the retry' });
    expect(server.requests.map((r) => r.status)).toEqual([status, 200]);
  });

  it.each([400, 410, 413, 415, 422])('never retries a %i: one request, then a dead letter and an error record (payload at debug only)', async (status) => {
    const server = await target({ then: { status, body: '{"error":"nope"}' } });
    const bus = users({ payments: server.url });
    const receipt = await bus.emit('to-payments', payload);
    const [failure] = await waitFor(() => withMessage('delivery refused; dead-lettered').length === 1 && withMessage('delivery refused; dead-lettered'));
    await sleep(300); // several retry delays: a retry would have come
    expect(server.requests).toHaveLength(1);
    expect(failure).toMatchObject({ level: 'error', eventId: receipt.id, type: 'to-payments', source: 'users', target: 'payments', status });
    expect(failure).not.toHaveProperty('data');
    expect(withMessage('dead letter data')).toEqual([expect.objectContaining({ level: 'debug', eventId: receipt.id, data: payload })]);
    expect(await bus.deadLetters()).toEqual([expect.objectContaining({ eventId: receipt.id, body: server.requests[0]!.body })]);
  });

  it.each([401, 403, 404, 405, 409])('a %i is redelivered from the outbox (no immediate retry), then delivered', async (status) => {
    const server = await target({ replies: [{ status }, { status }] });
    const bus = users({ payments: server.url }, { redelivery: { baseDelayMs: 50, probeMaxDelayMs: 100 } });
    const receipt = await bus.emit('to-payments', payload);
    await waitFor(() => withMessage('event delivered').length === 1, { what: 'the delivery' });
    expect(server.requests.map((r) => r.status)).toEqual([status, status, 200]);
    expect(withMessage('delivery retry')).toEqual([]); // never retried in place
    expect(await bus.deadLetters()).toEqual([]);
    expect(withMessage('event delivered')).toEqual([expect.objectContaining({ level: 'info', eventId: receipt.id, attempt: 3, status: 200 })]);
  });

  it('retries a network error (nothing listening), logs every try at debug, and still resolves emit', async () => {
    const port = await freePort();
    const bus = users({ payments: `http://127.0.0.1:${port}/events` }, { retry: { retries: 2, baseDelayMs: 20, maxDelayMs: 40 } });
    const receipt = await bus.emit('to-payments', payload);
    expect(receipt.id).toEqual(expect.any(String));
    await waitFor(() => withMessage('delivery failed; will redeliver').length === 1, { what: 'the final failure of this send' });
    const tries = withMessage('delivery attempt failed');
    expect(tries.map((r) => r.attempt)).toEqual([1, 2, 3]);
    for (const t of tries) expect(t).toMatchObject({ level: 'debug', eventId: receipt.id, target: 'payments', error: expect.stringContaining('ECONNREFUSED') });
    expect(withMessage('delivery retry')).toHaveLength(2);
    const [failed] = withMessage('delivery failed; will redeliver');
    expect(failed).toMatchObject({ level: 'warn', eventId: receipt.id, attempt: 3 });
    expect(failed).not.toHaveProperty('data');
  });

  it('retries a target that never answers, after the configured timeoutMs', async () => {
    const server = await target({ then: 'hang' });
    const bus = users({ payments: server.url }, { timeoutMs: 150, retry: { retries: 1, baseDelayMs: 20, maxDelayMs: 40 } });
    await bus.emit('to-payments', payload);
    await waitFor(() => withMessage('delivery failed; will redeliver').length === 1, { what: 'both tries to time out' });
    expect(server.requests).toHaveLength(2);
    expect(withMessage('delivery attempt failed').map((r) => r.error)).toEqual(['ETIMEDOUT', 'ETIMEDOUT']);
  });

  it('an event that keeps failing past its redelivery horizon is dead-lettered and logged as an error (payload at debug only)', async () => {
    const server = await target({ then: { status: 500 } });
    const bus = users(
      { payments: server.url },
      { retry: { retries: 1, baseDelayMs: 20, maxDelayMs: 40 }, redelivery: { baseDelayMs: 50, horizonMs: 30 } },
    );
    const receipt = await bus.emit('to-payments', payload);
    const [failure] = await waitFor(() => {
      const found = withMessage('delivery expired after its redelivery horizon; dead-lettered');
      return found.length === 1 && found;
    });
    expect(failure).toMatchObject({ level: 'error', eventId: receipt.id, type: 'to-payments', target: 'payments', status: 500 });
    expect(failure).not.toHaveProperty('data');
    expect(withMessage('dead letter data')).toEqual([expect.objectContaining({ level: 'debug', data: payload })]);
    expect(server.requests).toHaveLength(2);
    expect(await bus.deadLetters()).toEqual([expect.objectContaining({ eventId: receipt.id, target: 'payments' })]);
  });

  it('fans out in parallel: a target that hangs does not hold back a healthy one', async () => {
    const slow = await target({ then: 'hang' });
    const fast = await target();
    const bus = users({ slow: slow.url, fast: fast.url });
    bus.declareEvent('user-created', ['slow', 'fast']);
    for (let i = 0; i < 3; i += 1) await bus.emit('user-created', { ...payload, n: i });
    await waitFor(() => withMessage('delivery attempt', 'fast').length === 3, { what: 'the healthy target to get all three' });
    expect(fast.requests.map((r) => r.status)).toEqual([200, 200, 200]);
    // The slow target has the events too, and has answered none of them.
    await waitFor(() => slow.requests.length === 3, { what: 'the slow target to receive' });
    expect(slow.requests.every((r) => r.status === undefined)).toBe(true);
    expect(withMessage('delivery attempt', 'slow')).toEqual([]);
  });
});

describe('logging', () => {
  async function receivingService(level = 'debug'): Promise<{ url: string; log: CapturingLogger }> {
    const receiverLog = createCapturingLogger(level);
    const payments = createEventBus({ service: 'payments', secret, logger: receiverLog.logger, env: {} });
    open.unshift(payments);
    payments.subscribeTo('to-payments', () => undefined);
    const server = await startServer(express().use(payments.expressMiddleware()));
    open.push(server);
    return { url: `${server.origin}/events`, log: receiverLog };
  }

  const MARKER = 'payload-marker-7f3a';

  it('one record per emit, delivery and receipt, each with the event fields', async () => {
    const receiver = await receivingService();
    const bus = users({ payments: receiver.url });
    const first = await bus.emit('to-payments', { note: MARKER });
    const second = await bus.emit('to-payments', { note: MARKER });
    await waitFor(() => receiver.log.withMessage('event received').length === 2, { what: 'both receipts' });
    await waitFor(() => withMessage('event delivered').length === 2);

    const emitted = withMessage('event emitted');
    expect(emitted.map((r) => r.eventId)).toEqual([first.id, second.id]);
    expect(emitted[0]).toMatchObject({ level: 'info', type: 'to-payments', source: 'users', targets: ['payments'] });

    const delivered = withMessage('event delivered');
    expect(delivered.map((r) => r.eventId).sort()).toEqual([first.id, second.id].sort());
    for (const a of delivered) {
      expect(a).toMatchObject({ level: 'info', type: 'to-payments', source: 'users', target: 'payments', attempt: 1, status: 200 });
      expect(a.durationMs).toEqual(expect.any(Number));
    }
    // Each try is a debug line too.
    expect(withMessage('delivery attempt').map((r) => r.level)).toEqual(['debug', 'debug']);

    const receipts = receiver.log.withMessage('event received');
    expect(receipts.map((r) => r.eventId).sort()).toEqual([first.id, second.id].sort());
    for (const r of receipts) {
      expect(r).toMatchObject({ level: 'info', type: 'to-payments', source: 'users', target: 'payments', status: 200 });
      expect(r.durationMs).toEqual(expect.any(Number));
    }
  });

  it('one record per refusal, with status, reason and duration', async () => {
    const receiver = await receivingService();
    const res = await request(receiver.url, {
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({ specversion: '1.0', id: 'e1', source: 'x', type: 'to-payments', data: {} }),
    });
    expect(res.status).toBe(401);
    const refusals = receiver.log.withMessage('event refused');
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ level: 'warn', target: 'payments', status: 401, reason: expect.any(String) });
    expect(refusals[0]!.durationMs).toEqual(expect.any(Number));
  });

  it('one debug record per failed try and per retry, with attempt, status and duration', async () => {
    const server = await target({ replies: [{ status: 500 }, { status: 503 }] });
    const bus = users({ payments: server.url });
    const receipt = await bus.emit('to-payments', payload);
    await waitFor(() => withMessage('event delivered').length === 1);
    const fields = { eventId: receipt.id, type: 'to-payments', source: 'users', target: 'payments' };
    expect(withMessage('delivery attempt failed')).toEqual([
      expect.objectContaining({ ...fields, level: 'debug', attempt: 1, status: 500, durationMs: expect.any(Number) }),
      expect.objectContaining({ ...fields, level: 'debug', attempt: 2, status: 503, durationMs: expect.any(Number) }),
    ]);
    expect(withMessage('delivery retry')).toEqual([
      expect.objectContaining({ ...fields, attempt: 2, status: 500 }),
      expect.objectContaining({ ...fields, attempt: 3, status: 503 }),
    ]);
    expect(withMessage('delivery attempt')).toEqual([expect.objectContaining({ ...fields, level: 'debug', attempt: 3, status: 200 })]);
    expect(withMessage('event delivered')).toEqual([expect.objectContaining({ ...fields, level: 'info', attempt: 3, status: 200 })]);
  });

  it('no secret and no signature in any record, at any level, on either side, whatever happens', async () => {
    const receiver = await receivingService('debug');
    const flaky = await target({ replies: [{ status: 500 }], then: { status: 400 } });
    const bus = users({ payments: receiver.url, flaky: flaky.url });
    bus.declareEvent('both', ['payments', 'flaky']);
    await bus.emit('to-payments', { note: MARKER });
    await bus.emit('to-flaky', { note: MARKER });
    await waitFor(() => receiver.log.withMessage('event received').length === 1);
    await waitFor(() => withMessage('delivery refused; dead-lettered').length === 1);
    // A request with a wrong signature, to be refused and logged.
    await request(receiver.url, {
      headers: { 'content-type': 'application/cloudevents+json', 'webhook-id': 'e1', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,AAAA' },
      body: '{}',
    });
    expect(receiver.log.withMessage('event refused')).toHaveLength(1);

    const everything = [...log.lines, ...receiver.log.lines].join('\n');
    const key = secret.slice('whsec_'.length);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(key);
    expect(everything).not.toContain(Buffer.from(key, 'base64').toString('hex'));
    const signatures = flaky.requests.map((r) => String(r.headers['webhook-signature']));
    expect(signatures).toHaveLength(2);
    for (const signature of signatures) {
      expect(everything).not.toContain(signature.slice(3));
    }
    expect(everything).not.toMatch(/v1,[A-Za-z0-9+/]{20,}/);
  });

  it('payloads appear only at debug level, the dead-letter line included', async () => {
    const receiver = await receivingService('debug');
    const refusing = await target({ then: { status: 422 } });
    const bus = users({ payments: receiver.url, refusing: refusing.url });
    await bus.emit('to-payments', { note: MARKER });
    await bus.emit('to-refusing', { note: MARKER });
    await waitFor(() => receiver.log.withMessage('event received').length === 1);
    await waitFor(() => withMessage('delivery refused; dead-lettered').length === 1);

    const withPayload = [...log.records, ...receiver.log.records].filter((r) => JSON.stringify(r).includes(MARKER));
    const byLevel = withPayload.map((r) => `${r.level}: ${r.message}`).sort();
    expect(byLevel).toEqual(['debug: dead letter data', 'debug: event data', 'debug: event data', 'debug: event data']);
  });

  it('at info level, no record carries the payload of a delivered event', async () => {
    log = createCapturingLogger('info');
    const receiver = await receivingService('info');
    const bus = users({ payments: receiver.url });
    await bus.emit('to-payments', { note: MARKER });
    await waitFor(() => receiver.log.withMessage('event received').length === 1);
    await waitFor(() => withMessage('event delivered').length === 1);
    expect(log.records.length + receiver.log.records.length).toBeGreaterThanOrEqual(3);
    expect([...log.lines, ...receiver.log.lines].join('\n')).not.toContain(MARKER);
  });
});
