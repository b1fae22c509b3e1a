// Issue 6 item 6: a 2xx from the wrong endpoint is never silent, and a service URL with no path
// means that service's events path. Real Express apps on 127.0.0.1.
import express from 'express';
import { resolveConfig, resolveTarget } from '../../src/config.js';
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

function users(url: string): { bus: EventBus; log: CapturingLogger } {
  const log = createCapturingLogger('debug');
  const bus = createEventBus({ service: 'users', secret: SECRET, services: { payments: url }, logger: log.logger, env: {} });
  bus.declareEvent(TYPE, ['payments']);
  cleanups.push(() => bus.close());
  return { bus, log };
}

const notReceipt = (log: CapturingLogger) => log.records.filter((r) => r.level === 'warn' && /is not an events receipt/.test(r.message));

describe('a 2xx that is not an events receipt', () => {
  it('a fallback route answering 200 "ok": delivered, with one warning naming the URL and the status (not one per event)', async () => {
    const app = await paymentsApp();
    const url = `${app.server.origin}/not-the-events-path`;
    const { bus, log } = users(url);
    for (let i = 0; i < 3; i += 1) await bus.emit(TYPE, { n: i });
    await waitFor(() => log.withMessage('event delivered').length === 3, { what: 'three deliveries' });
    expect(app.fallback).toEqual(['POST /not-the-events-path', 'POST /not-the-events-path', 'POST /not-the-events-path']);
    expect(app.runs).toEqual([]);
    const warnings = notReceipt(log);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain(url);
    expect(warnings[0]).toMatchObject({ target: 'payments', url, status: 200 });
  });

  it('a fallback answering 200 with a 100 KB HTML page (over what the sender reads): delivered once, not retried, with the warning', async () => {
    const app = await paymentsApp({ page: `<!doctype html><html><body>${'<p>app</p>'.repeat(10_000)}</body></html>` });
    const url = `${app.server.origin}/app`;
    const { bus, log } = users(url);
    await bus.emit(TYPE, { n: 1 });
    await waitFor(() => log.withMessage('event delivered').length === 1, { what: 'the delivery' });
    await sleep(200); // an immediate retry would have come
    expect(app.fallback).toEqual(['POST /app']);
    expect(notReceipt(log)).toEqual([expect.objectContaining({ url, status: 200 })]);
    expect((await bus.outboxStats()).pending).toBe(0);
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
