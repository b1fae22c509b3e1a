// Issue 6 item 6 and issue 16 item 3: a 2xx that is not the events middleware's receipt is not a
// delivery (kept, retried, dead-lettered, and said) unless the target opts out, and a service URL
// with no path means that service's events path. Real Koa and Express apps on 127.0.0.1.
import { type CloudEvent, HTTP } from 'cloudevents';
import express from 'express';
import Koa from 'koa';
import { resolveConfig, resolveTarget, type ServiceEntry } from '../../src/config.js';
import { createEventBus, type EventBus } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, type CapturingLogger, quietLogger } from '../helpers/logger.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';
import { sleep, waitFor } from '../helpers/wait.js';

const TYPE = 'user-created';
const SECRET = newSecret();
const cleanups = cleanupAfterEach();

/** An app with the events middleware on /events, and a fallback route answering 200 "ok" to everything else. */
async function paymentsApp(options: { events?: boolean; page?: string } = {}): Promise<{ server: TestServer; runs: string[]; fallback: string[] }> {
  const runs: string[] = [];
  const fallback: string[] = [];
  const app = express();
  if (options.events !== false) {
    const bus = createEventBus({ service: 'payments', secret: SECRET, logger: quietLogger(), env: {} });
    bus.subscribeTo(TYPE, (_data, event) => void runs.push(event.id));
    app.use(bus.expressMiddleware());
    cleanups.push(() => bus.close());
  }
  app.use((req, res) => {
    fallback.push(`${req.method} ${req.path}`);
    res.status(200).send(options.page ?? 'ok');
  });
  const server = await startServer(app);
  cleanups.push(() => server.close());
  return { server, runs, fallback };
}

function users(service: string | ServiceEntry, env: Record<string, string> = {}): { bus: EventBus; log: CapturingLogger } {
  const log = createCapturingLogger('debug');
  const bus = createEventBus({
    service: 'users',
    secret: SECRET,
    services: { payments: service },
    logger: log.logger,
    env,
    // Short delays stand in for the production backoff: a kept event is tried again within ms.
    retry: { retries: 0 },
    redelivery: { baseDelayMs: 20, maxDelayMs: 50, probeMaxDelayMs: 50, horizonMs: 400 },
  });
  bus.declareEvent(TYPE, ['payments']);
  cleanups.push(() => bus.close());
  return { bus, log };
}

const notReceipt = (log: CapturingLogger) => log.records.filter((r) => r.level === 'warn' && /is not an events receipt/.test(r.message));

/** A Koa app that forgot the events middleware: a catch-all route answers 200 "ok" to everything. */
async function koaWithoutEvents(page = 'ok'): Promise<{ server: TestServer; hits: string[] }> {
  const hits: string[] = [];
  const app = new Koa().use((ctx) => {
    hits.push(`${ctx.method} ${ctx.path}`);
    ctx.body = page;
  });
  const server = await startServer(app.callback());
  cleanups.push(() => server.close());
  return { server, hits };
}

/** A plain CloudEvents sink (not this library): reads the event with the cloudevents SDK, answers 202 with no body. */
async function cloudEventsSink(): Promise<{ server: TestServer; ids: string[] }> {
  const ids: string[] = [];
  const app = express().use(express.text({ type: '*/*' }), (req, res) => {
    const event = HTTP.toEvent({ headers: req.headers, body: req.body as string }) as CloudEvent<unknown>;
    ids.push(event.id);
    res.status(202).end();
  });
  const server = await startServer(app);
  cleanups.push(() => server.close());
  return { server, ids };
}

describe('a 2xx that is not an events receipt', () => {
  it('a Koa app without the events middleware, answering 200 to everything: kept and retried, one warning naming the URL and the opt-out, then a dead letter', async () => {
    const app = await koaWithoutEvents();
    const url = `${app.server.origin}/events`;
    const { bus, log } = users(`${url}?tenant=t1`);
    const { id } = await bus.emit(TYPE, { n: 1 });

    await waitFor(() => app.hits.length >= 2, { what: 'the event sent again' });
    await waitFor(() => log.withMessage('delivery expired after its redelivery horizon; dead-lettered').length === 1, { what: 'the dead letter' });
    expect(log.withMessage('event delivered')).toEqual([]);
    expect(await bus.deadLetters()).toEqual([expect.objectContaining({ eventId: id, reason: 'expired', status: 200 })]);
    const warnings = notReceipt(log);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ target: 'payments', url, status: 200 });
    expect(warnings[0]!.message).toContain(`200 from payments at ${url} is not an events receipt`);
    expect(warnings[0]!.message).toContain('is not the events middleware');
    expect(warnings[0]!.message).toContain('services.payments.receipt: false');
    expect(warnings[0]!.message).toContain('EVENTS_SERVICE_PAYMENTS_RECEIPT=false');
    expect(log.lines.join('\n')).not.toContain('tenant=t1');
  });

  it('a fallback answering 200 with a 100 KB HTML page (over what the sender reads): kept, with the warning', async () => {
    const app = await koaWithoutEvents(`<!doctype html><html><body>${'<p>app</p>'.repeat(10_000)}</body></html>`);
    const url = `${app.server.origin}/app`;
    const { bus, log } = users(url);
    await bus.emit(TYPE, { n: 1 });
    await waitFor(() => app.hits.length >= 2, { what: 'the event sent again' });
    expect(log.withMessage('event delivered')).toEqual([]);
    expect(notReceipt(log)).toEqual([expect.objectContaining({ url, status: 200 })]);
  });

  it.each([
    ['services.payments.receipt: false', (url: string) => users({ url, receipt: false })],
    ['EVENTS_SERVICE_PAYMENTS_RECEIPT=false', (url: string) => users(url, { EVENTS_SERVICE_PAYMENTS_RECEIPT: 'false' })],
  ])('a plain CloudEvents sink with %s: a 2xx is delivered, once, without a warning', async (_how, sender) => {
    const sink = await cloudEventsSink();
    const { bus, log } = sender(sink.server.url);
    const { id } = await bus.emit(TYPE, { n: 1 });
    await waitFor(() => log.withMessage('event delivered').length === 1, { what: 'the delivery' });
    await sleep(100); // a redelivery would have come
    expect(sink.ids).toEqual([id]);
    expect((await bus.outboxStats()).pending).toBe(0);
    expect(log.records.filter((r) => r.level === 'warn' || r.level === 'error')).toEqual([]);
  });

  it('EVENTS_SERVICE_PAYMENTS_RECEIPT must be a boolean', () => {
    expect(() => users('http://127.0.0.1:1/events', { EVENTS_SERVICE_PAYMENTS_RECEIPT: 'maybe' })).toThrow(/EVENTS_SERVICE_PAYMENTS_RECEIPT must be true or false/);
  });

  it('a real events receiver: delivered, no warning', async () => {
    const app = await paymentsApp();
    const { bus, log } = users(app.server.url);
    await bus.emit(TYPE, { n: 1 });
    await waitFor(() => app.runs.length === 1, { what: 'the handler' });
    await waitFor(() => log.withMessage('event delivered').length === 1);
    await sleep(50);
    expect(notReceipt(log)).toEqual([]);
    expect(log.records.filter((r) => r.level === 'warn' || r.level === 'error')).toEqual([]);
  });
});

describe('a URL that reaches another service (issue 16 item 21)', () => {
  it("payments' URL points at orders (same secret): 403 wrong_recipient, nothing runs at orders, the delivery is kept and redelivered, never dead-lettered at once", async () => {
    const runs: string[] = [];
    const orders = createEventBus({ service: 'orders', secret: SECRET, logger: quietLogger(), env: {} });
    orders.subscribeTo(TYPE, (_data, event) => void runs.push(event.id));
    const server = await startServer(express().use(orders.expressMiddleware()));
    cleanups.push(() => orders.close(), () => server.close());
    const answers: number[] = [];
    const log = createCapturingLogger('debug');
    const bus = createEventBus({
      service: 'users',
      secret: SECRET,
      services: { payments: server.url },
      logger: log.logger,
      env: {},
      redelivery: { baseDelayMs: 20, maxDelayMs: 50, probeMaxDelayMs: 50 },
      onDeadLetter: () => void answers.push(-1),
    });
    cleanups.push(() => bus.close());
    bus.declareEvent(TYPE, ['payments']);
    await bus.emit(TYPE, { n: 1 });
    const tries = () => log.records.filter((r) => r.status === 403 && /delivery/.test(r.message)).length;
    await waitFor(() => tries() >= 3, { what: 'three refused tries' });
    expect(runs).toEqual([]);
    expect(await bus.outboxStats()).toMatchObject({ pending: 1, deadLetters: 0 });
    expect(answers).toEqual([]);
    const hint = log.records.find((r) => r.level === 'warn' && r.message.startsWith('403 from payments'));
    expect(hint?.message).toContain('EVENTS_SERVICE_PAYMENTS_URL');
  });
});

describe('a service URL with no path means its events path', () => {
  it.each(['', '/'])('EVENTS_SERVICE_PAYMENTS_URL=http://127.0.0.1:<port>%s reaches /events: the handler runs, the fallback is never hit', async (suffix) => {
    const app = await paymentsApp();
    const log = createCapturingLogger('debug');
    const bus = createEventBus({
      service: 'users',
      secret: SECRET,
      logger: log.logger,
      env: { EVENTS_SERVICE_PAYMENTS_URL: `${app.server.origin}${suffix}` },
    });
    cleanups.push(() => bus.close());
    bus.declareEvent(TYPE, ['payments']);
    const receipt = await bus.emit(TYPE, { n: 1 });
    await waitFor(() => app.runs.length === 1, { what: 'the handler' });
    expect(app.runs).toEqual([receipt.id]);
    expect(app.fallback).toEqual([]);
    await waitFor(() => log.withMessage('event delivered').length === 1);
    expect(notReceipt(log)).toEqual([]);
  });
});

describe('resolveTarget normalises a URL with no path, and only that', () => {
  it.each([
    ['http://payments:3002', 'http://payments:3002/events'],
    ['http://payments:3002/', 'http://payments:3002/events'],
    ['https://payments.example.com/?tenant=a', 'https://payments.example.com/events?tenant=a'],
    ['http://payments:3002/hooks/in', 'http://payments:3002/hooks/in'],
    ['http://payments:3002/events', 'http://payments:3002/events'],
  ])('%s → %s', (given, expected) => {
    const config = resolveConfig({ secret: SECRET, logger: quietLogger(), env: { EVENTS_SERVICE_PAYMENTS_URL: given } });
    expect(resolveTarget(config, 'payments').url).toBe(expected);
  });
});
