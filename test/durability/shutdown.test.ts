// Graceful shutdown and the durable outbox across restarts, over real servers on 127.0.0.1.
import express from 'express';
import { BusClosedError, createEventBus, type EventBus, type EventBusOptions, inspectOutbox } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { post } from '../helpers/http-client.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { freePort, startServer, type TestServer } from '../helpers/server.js';
import { newSecret, signedRequest } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { gate, sleep, waitFor } from '../helpers/wait.js';

const SECRET = newSecret();
const TYPE = 'shipment-sent';
/** How long, and how often, these tests poll. */
const WAIT = { timeoutMs: 10_000, intervalMs: 20 };

const cleanups = cleanupAfterEach();

async function receiver(
  handler: (id: string) => void | Promise<void>,
  port = 0,
): Promise<{ bus: EventBus; server: TestServer }> {
  const bus = createEventBus({ service: 'tracking', secret: SECRET, logger: quietLogger() });
  bus.subscribeTo(TYPE, (_data, event) => handler(event.id));
  const app = express();
  app.use(bus.expressMiddleware());
  const server = await startServer(app, port);
  cleanups.push(() => bus.close(), () => server.close());
  return { bus, server };
}

function sender(url: string, options: EventBusOptions = {}): EventBus {
  const bus = createEventBus({
    service: 'warehouse',
    secret: SECRET,
    services: { tracking: url },
    logger: quietLogger(),
    shutdownTimeoutMs: 300,
    retry: { retries: 1, baseDelayMs: 20, maxDelayMs: 50 },
    ...options,
  });
  bus.declareEvent(TYPE, ['tracking']);
  cleanups.push(() => bus.close());
  return bus;
}

describe('graceful shutdown', () => {
  it('close() during a slow handler: new requests get 503 + Retry-After, the slow handler completes', async () => {
    const slow = gate();
    const started = gate();
    const finished: string[] = [];
    const { bus, server } = await receiver(async (id) => {
      started.open();
      await slow.wait();
      finished.push(id);
    });
    const first = signedRequest(SECRET, 'warehouse', TYPE, { n: 1 });
    const second = signedRequest(SECRET, 'warehouse', TYPE, { n: 2 });

    const inFlight = post(server.url, first);
    await started.wait();
    let closed = false;
    const closing = bus.close().then(() => (closed = true));

    const refused = await post(server.url, second);
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(closed).toBe(false);

    slow.open();
    expect((await inFlight).status).toBe(200);
    await closing;
    expect(finished).toEqual([first.id]);
  });

  it('emit after close() rejects with BusClosedError', async () => {
    const bus = sender('http://127.0.0.1:9/events');
    await bus.close();
    await expect(bus.emit(TYPE, { n: 1 })).rejects.toBeInstanceOf(BusClosedError);
  });
});

describe('durable outbox across restarts', () => {
  // 30 s before a redelivery: what the restarted bus delivers in time, it did not wait for.
  const slowSchedule = (path: string): EventBusOptions => ({
    outbox: { path, pollIntervalMs: 100 },
    redelivery: { baseDelayMs: 30_000, maxDelayMs: 60_000, probeMaxDelayMs: 300 },
  });

  async function emitWhileDown(path: string, url: string, count: number): Promise<string[]> {
    const { logger, records } = createCapturingLogger();
    const first = sender(url, { ...slowSchedule(path), logger });
    const ids: string[] = [];
    for (let i = 0; i < count; i += 1) ids.push((await first.emit(TYPE, { n: i })).id);
    // Every delivery was tried, refused by the closed port, and put back for a redelivery later.
    await waitFor(
      () => records.filter((r) => r.message === 'delivery failed; will redeliver').length >= count,
      { ...WAIT, what: 'every first try to fail' },
    );
    await first.close();
    expect(await inspectOutbox({ outbox: path })).toMatchObject({ pending: count, deadLetters: 0 });
    return ids;
  }

  it('a new bus on the same file delivers what the closed one could not, once the target is up', async () => {
    const dir = tempDir('outbox-restart');
    cleanups.push(() => dir.remove());
    const path = dir.file('outbox.db');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/events`;
    const ids = await emitWhileDown(path, url, 5);

    const received: string[] = [];
    await receiver((id) => void received.push(id), port);
    sender(url, slowSchedule(path));

    await waitFor(() => received.length === ids.length, { ...WAIT, timeoutMs: 8_000, what: 'every event at the target' });
    expect(received.sort()).toEqual([...ids].sort());
    await waitFor(async () => (await inspectOutbox({ outbox: path })).pending === 0, { ...WAIT, what: 'an empty outbox' });
  });

  it('a new bus started while the target is still down delivers once it comes up', async () => {
    const dir = tempDir('outbox-restart-down');
    cleanups.push(() => dir.remove());
    const path = dir.file('outbox.db');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/events`;
    const ids = await emitWhileDown(path, url, 5);

    const second = sender(url, slowSchedule(path));
    const more = [(await second.emit(TYPE, { n: 5 })).id];
    await sleep(500);
    const received: string[] = [];
    await receiver((id) => void received.push(id), port);

    await waitFor(() => received.length === 6, { ...WAIT, timeoutMs: 8_000, what: 'every event at the target' });
    expect(received.sort()).toEqual([...ids, ...more].sort());
    await waitFor(async () => (await inspectOutbox({ outbox: path })).pending === 0, { ...WAIT, what: 'an empty outbox' });
  });
});

it('closes a durable bus right after creating it, before its first resume, without touching the closed file', async () => {
  const dir = tempDir('close-at-once');
  cleanups.push(() => dir.remove());
  const errors: unknown[] = [];
  const onError = (error: unknown) => errors.push(error);
  process.on('uncaughtException', onError);
  cleanups.push(() => process.off('uncaughtException', onError));
  const bus = createEventBus({ service: 'dispatch', secret: SECRET, logger: quietLogger(), outbox: { path: dir.file('outbox.db') } });
  await bus.close();
  await sleep(50); // past the resume the constructor scheduled
  expect(errors).toEqual([]);
  expect(await inspectOutbox({ outbox: dir.file('outbox.db') })).toMatchObject({ pending: 0, deadLetters: 0 });
});
