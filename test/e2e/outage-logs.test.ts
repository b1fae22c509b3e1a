// Issue 6 item 15 (sender side): one event through an outage makes one line per state change at
// info and above, and no payload above debug. A real receiver on 127.0.0.1 that goes away and
// comes back on the same port; short redelivery delays stand in for a 20 s outage.
import express from 'express';
import { createEventBus } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { startRecordingServer } from '../helpers/recording-server.js';
import { freePort, startServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

const cleanups = cleanupAfterEach();
const SECRET = newSecret();
const MARKER = 'ada@example.com';
const LEVELS = ['error', 'warn', 'info'];

it('one event through an outage: emitted, failed, target down, back up, delivered — and no payload above debug', async () => {
  const port = await freePort();
  const log = createCapturingLogger('debug');
  const users = createEventBus({
    service: 'users',
    secret: SECRET,
    services: { payments: `http://127.0.0.1:${port}/events` },
    logger: log.logger,
    env: {},
    shutdownTimeoutMs: 200,
    retry: { retries: 3, baseDelayMs: 20, maxDelayMs: 40 },
    redelivery: { baseDelayMs: 100, maxDelayMs: 200, probeMaxDelayMs: 150 },
  });
  cleanups.push(() => users.close());
  users.declareEvent('user-created', ['payments']);
  const receipt = await users.emit('user-created', { user_id: 'u1', email: MARKER });

  // The outage: several probes, each of 4 tries, all refused.
  await waitFor(() => log.withMessage('delivery failed; will redeliver').length >= 5, { timeoutMs: 10_000, what: 'five failed sends' });
  expect(log.withMessage('delivery attempt failed').length).toBeGreaterThanOrEqual(20);

  // The receiver comes back on the same address.
  const payments = createEventBus({ service: 'payments', secret: SECRET, logger: quietLogger(), env: {} });
  const runs: string[] = [];
  payments.subscribeTo('user-created', (_data, event) => void runs.push(event.id));
  const server = await startServer(express().use(payments.expressMiddleware()), port);
  cleanups.push(() => payments.close(), () => server.close());
  await waitFor(() => log.withMessage('event delivered').length === 1, { timeoutMs: 10_000, what: 'the delivery' });
  expect(runs).toEqual([receipt.id]);

  const visible = log.records.filter((r) => LEVELS.includes(r.level));
  expect(visible.map((r) => `${r.level} ${r.message}`)).toEqual([
    'info event emitted',
    'warn target down; probing before sending more',
    'warn delivery failed; will redeliver',
    'info target back up; draining its backlog',
    'info event delivered',
  ]);
  expect(visible.filter((r) => r.eventId !== undefined).map((r) => r.eventId)).toEqual([receipt.id, receipt.id, receipt.id]);
  for (const record of visible) {
    expect(record).not.toHaveProperty('data');
    expect(record).not.toHaveProperty('body');
  }
  expect(visible.map((r) => JSON.stringify(r)).join('\n')).not.toContain(MARKER);

  // Every try and every later retry is there, at debug, for whoever turns it on.
  const debug = log.records.filter((r) => r.level === 'debug').map((r) => r.message);
  expect(new Set(debug)).toEqual(new Set(['event data', 'delivery attempt failed', 'delivery retry', 'delivery failed; will redeliver', 'delivery attempt']));
});

describe('every delivery failure line names the target URL, without its query string', () => {
  const SECRET_QUERY = 'token=abc123';

  function users(url: string, redelivery = { baseDelayMs: 20, maxDelayMs: 40, probeMaxDelayMs: 40, horizonMs: 300 }) {
    const log = createCapturingLogger('debug');
    const bus = createEventBus({
      service: 'users',
      secret: SECRET,
      services: { payments: url },
      logger: log.logger,
      env: {},
      shutdownTimeoutMs: 200,
      retry: { retries: 1, baseDelayMs: 10, maxDelayMs: 20 },
      redelivery,
    });
    cleanups.push(() => bus.close());
    bus.declareEvent('user-created', ['payments']);
    return { bus, log };
  }

  const failureLines = (log: ReturnType<typeof createCapturingLogger>) =>
    log.records.filter((r) => r.level !== 'info' && r.message !== 'event data' && r.message !== 'dead letter data');

  it('ECONNREFUSED: target down, failed, retried and dead-lettered lines all carry the URL; the query string appears nowhere', async () => {
    const url = `http://127.0.0.1:${await freePort()}/events`;
    const { bus, log } = users(`${url}?${SECRET_QUERY}`);
    await bus.emit('user-created', { user_id: 'u1' });
    await waitFor(() => log.withMessage('delivery expired after its redelivery horizon; dead-lettered').length === 1, { what: 'the dead letter' });

    const lines = failureLines(log);
    expect(new Set(lines.map((r) => r.message))).toEqual(
      new Set([
        'target down; probing before sending more',
        'delivery failed; will redeliver',
        'delivery attempt failed',
        'delivery retry',
        'delivery expired after its redelivery horizon; dead-lettered',
      ]),
    );
    for (const line of lines) expect(line).toMatchObject({ url });
    expect(log.withMessage('target down; probing before sending more')[0]).toMatchObject({ url, error: 'ECONNREFUSED' });
    expect(log.lines.join('\n')).not.toContain(SECRET_QUERY);
    expect(JSON.stringify(await bus.deadLetters())).not.toContain(SECRET_QUERY);
  });

  it('404 and a refusal: the hint names the URL without its query string, and so does the refused line', async () => {
    const server = await startRecordingServer({ replies: [{ status: 404 }], then: { status: 400 } });
    cleanups.push(() => server.close());
    const { bus, log } = users(`${server.url}?${SECRET_QUERY}`, { baseDelayMs: 20, maxDelayMs: 40, probeMaxDelayMs: 40, horizonMs: 60_000 });
    await bus.emit('user-created', { user_id: 'u1' });
    await waitFor(() => log.withMessage('delivery refused; dead-lettered').length === 1, { what: 'the refusal' });

    expect(server.requests[0]!.url).toBe(`/events?${SECRET_QUERY}`); // the query string is sent, only never logged
    const hint = log.records.find((r) => r.message.startsWith('404 from payments'));
    expect(hint).toMatchObject({ url: server.url });
    expect(hint!.message).toContain(`is the URL (${server.url}) right?`);
    expect(log.withMessage('delivery failed; will redeliver')[0]).toMatchObject({ url: server.url, status: 404 });
    expect(log.withMessage('delivery refused; dead-lettered')[0]).toMatchObject({ url: server.url, status: 400 });
    expect(log.lines.join('\n')).not.toContain(SECRET_QUERY);
  });
});
