// Issue 6 item 5: misconfiguration and deploy order (401, 404, …) are redelivered until an operator
// fixes them; only a verdict on the event itself (400, 410, 413, 415, 422) is dead-lettered at once.
// Real receivers (our bus behind Express) on 127.0.0.1, with the in-memory and the SQLite outbox.
import express from 'express';
import { createEventBus, type EventBus, type EventBusOptions, NonRetryableError } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, type CapturingLogger, quietLogger } from '../helpers/logger.js';
import { startRecordingServer } from '../helpers/recording-server.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { sleep, waitFor } from '../helpers/wait.js';

const TYPE = 'user-created';
const WAIT = { timeoutMs: 10_000, intervalMs: 20 };
const cleanups = cleanupAfterEach();

/** The receiving service `payments` (our bus behind Express) on `port` (0: any). */
async function payments(
  secret: string,
  options: { port?: number; subscribe?: boolean; bus?: EventBusOptions; handler?: () => void; schema?: object } = {},
): Promise<{ bus: EventBus; server: TestServer; runs: string[] }> {
  const bus = createEventBus({ service: 'payments', secret, logger: quietLogger(), env: {}, ...options.bus });
  const runs: string[] = [];
  if (options.subscribe !== false) {
    bus.subscribeTo(
      TYPE,
      (_data, event) => {
        options.handler?.();
        runs.push(event.id);
      },
      options.schema ? { schema: options.schema } : {},
    );
  }
  const server = await startServer(express().use(bus.expressMiddleware()), options.port);
  cleanups.push(() => bus.close(), () => server.close());
  return { bus, server, runs };
}

describe.each(['in-memory', 'SQLite'] as const)('with the %s outbox', (kind) => {
  let log: CapturingLogger;
  const secret = newSecret();

  function users(url: string): EventBus {
    log = createCapturingLogger('debug');
    const options: EventBusOptions = {
      service: 'users',
      secret,
      services: { payments: url },
      logger: log.logger,
      env: {},
      shutdownTimeoutMs: 200,
      retry: { retries: 2, baseDelayMs: 20, maxDelayMs: 50 },
      redelivery: { baseDelayMs: 100, maxDelayMs: 300, probeMaxDelayMs: 200 },
    };
    if (kind === 'SQLite') {
      const dir = tempDir('misconfig');
      cleanups.push(() => dir.remove());
      options.outbox = { path: dir.file('outbox.db') };
    }
    const bus = createEventBus(options);
    bus.declareEvent(TYPE, ['payments']);
    cleanups.push(() => bus.close());
    return bus;
  }

  const warnings = (pattern: RegExp) => log.records.filter((r) => r.level === 'warn' && pattern.test(r.message));

  it('401 (the receiver has another secret) is redelivered, not dead-lettered; once the secret is fixed the event is delivered', async () => {
    const wrong = await payments(newSecret());
    const bus = users(wrong.server.url);
    const receipt = await bus.emit(TYPE, { user_id: 'u1' });

    // Several tries, all refused with 401, none dead-lettered; the likely cause is said once.
    await waitFor(() => log.records.filter((r) => r.message === 'delivery attempt failed' && r.status === 401).length >= 3, {
      ...WAIT,
      what: 'three refused tries',
    });
    expect(await bus.deadLetters()).toEqual([]);
    expect((await bus.outboxStats()).pending).toBe(1);
    const hints = warnings(/^401 from payments: check EVENTS_SECRET \/ EVENTS_SERVICE_PAYMENTS_SECRET on both sides, and the clocks/);
    expect(hints).toEqual([expect.objectContaining({ target: 'payments', status: 401 })]);
    expect(log.withMessage('delivery retry')).toEqual([]); // redelivered from the outbox, never retried in place

    // The operator fixes the receiver's secret (same address).
    const port = wrong.server.port;
    await wrong.bus.close();
    await wrong.server.close();
    const fixed = await payments(secret, { port });
    await waitFor(() => fixed.runs.length === 1, { ...WAIT, what: 'the delivery after the fix' });
    expect(fixed.runs).toEqual([receipt.id]);
    await waitFor(async () => (await bus.outboxStats()).pending === 0, { ...WAIT, what: 'an empty outbox' });
    expect(await bus.deadLetters()).toEqual([]);
    expect(warnings(/^401 from payments/)).toHaveLength(1);
  });

  it('404 (deployed before the receiver subscribed) is redelivered; once the handler is subscribed the event is delivered', async () => {
    const receiver = await payments(secret, { subscribe: false });
    const bus = users(receiver.server.url);
    const receipt = await bus.emit(TYPE, { user_id: 'u2' });

    await waitFor(() => log.records.filter((r) => r.message === 'delivery attempt failed' && r.status === 404).length >= 3, {
      ...WAIT,
      what: 'three tries refused with 404',
    });
    expect(await bus.deadLetters()).toEqual([]);
    expect(warnings(/^404 from payments: is the receiver deployed and subscribed to user-created\? is the URL/)).toHaveLength(1);

    const runs: string[] = [];
    receiver.bus.subscribeTo(TYPE, (_data, event) => void runs.push(event.id));
    await waitFor(() => runs.length === 1, { ...WAIT, what: 'the delivery after subscribing' });
    expect(runs).toEqual([receipt.id]);
    await waitFor(async () => (await bus.outboxStats()).pending === 0, { ...WAIT, what: 'an empty outbox' });
    expect(await bus.deadLetters()).toEqual([]);
  });

  const atOnce: Array<{ status: number; name: string; receiver: () => Promise<string> }> = [
    {
      status: 400,
      name: 'schema-invalid data (400)',
      receiver: async () =>
        (await payments(secret, { schema: { type: 'object', required: ['email'] } })).server.url,
    },
    {
      status: 413,
      name: 'a body over the receiver’s limit (413)',
      receiver: async () => (await payments(secret, { bus: { bodyLimitBytes: 200 } })).server.url,
    },
    {
      status: 415,
      name: 'an unsupported content type (415)',
      receiver: async () => {
        const server = await startRecordingServer({ then: { status: 415, body: '{"error":"unsupported_media_type"}' } });
        cleanups.push(() => server.close());
        return server.url;
      },
    },
    {
      status: 422,
      name: 'a handler’s NonRetryableError (422)',
      receiver: async () =>
        (
          await payments(secret, {
            handler: () => {
              throw new NonRetryableError('unsupported country');
            },
          })
        ).server.url,
    },
    {
      status: 409,
      name: 'a handler’s NonRetryableError with its own status (409)',
      receiver: async () =>
        (
          await payments(secret, {
            handler: () => {
              throw new NonRetryableError('already a customer', { status: 409 });
            },
          })
        ).server.url,
    },
    {
      status: 410,
      name: 'an endpoint gone for good (410)',
      receiver: async () => {
        const server = await startRecordingServer({ then: { status: 410, body: '{"error":"gone"}' } });
        cleanups.push(() => server.close());
        return server.url;
      },
    },
  ];

  it.each(atOnce)('$name is dead-lettered at once, after one request', async ({ status, receiver }) => {
    const bus = users(await receiver());
    const receipt = await bus.emit(TYPE, { user_id: 'u3', pad: 'x'.repeat(300) });
    await waitFor(async () => (await bus.deadLetters()).length === 1, { ...WAIT, what: 'the dead letter' });
    await sleep(300); // more than one redelivery delay: a retry would have come
    expect(await bus.deadLetters()).toEqual([expect.objectContaining({ eventId: receipt.id, status: status, reason: 'refused' })]);
    expect(log.records.filter((r) => r.message === 'delivery attempt' || r.message === 'delivery attempt failed')).toHaveLength(1);
    expect(log.withMessage('delivery refused; dead-lettered')).toEqual([expect.objectContaining({ level: 'error', status })]);
    expect((await bus.outboxStats()).pending).toBe(0);
  });
});
