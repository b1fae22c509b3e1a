import express from 'express';
import { createEventBus, NonRetryableError, type EventBus, type EventBusOptions } from '../../src/index.js';
import { BATCH_CONTENT_TYPE } from '../../src/protocol/cloudevents.js';
import { closeAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, type CapturingLogger } from '../helpers/logger.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { newSecret } from '../helpers/signing.js';
import { sleep, waitFor } from '../helpers/wait.js';

// Batched delivery between real buses over real HTTP: a sender bus, and an Express app with the
// receiver bus's middleware (or a raw node:http peer that does not read batches).

const open = closeAfterEach();

let secret: string;
let log: CapturingLogger;
beforeEach(() => {
  secret = newSecret();
  log = createCapturingLogger('debug');
});

/** What reached a receiver, by kind of request, counted before the events middleware reads anything. */
interface Arrivals {
  batches: number;
  structured: number;
}

const isBatch = (contentType: string | undefined) => (contentType ?? '').startsWith(BATCH_CONTENT_TYPE.split(';')[0]!);

/** The receiving service `payments`: an Express app that counts requests by content type, then eventsMiddleware. */
async function payments(
  subscribe: (bus: EventBus) => void,
  options: EventBusOptions = {},
): Promise<{ bus: EventBus; server: TestServer; arrivals: Arrivals }> {
  const bus = createEventBus({ service: 'payments', secret, logger: log.logger, env: {}, ...options });
  open.unshift(bus);
  subscribe(bus);
  const arrivals: Arrivals = { batches: 0, structured: 0 };
  const app = express();
  app.use((req, _res, next) => {
    if (isBatch(req.headers['content-type'])) arrivals.batches += 1;
    else arrivals.structured += 1;
    next();
  });
  app.use(bus.expressMiddleware());
  const server = await startServer(app);
  open.push(server);
  return { bus, server, arrivals };
}

/** The sending service `users`, with two requests in flight per target so that a burst forms batches. */
function users(services: EventBusOptions['services'], options: EventBusOptions = {}): EventBus {
  const bus = createEventBus({
    service: 'users',
    secret,
    services,
    logger: log.logger,
    env: {},
    concurrency: 2,
    retry: { baseDelayMs: 20, maxDelayMs: 50 },
    redelivery: { baseDelayMs: 100, maxDelayMs: 200 },
    shutdownTimeoutMs: 500,
    ...options,
  });
  open.unshift(bus);
  for (const name of Object.keys(services ?? {})) bus.declareEvent(`to-${name}`, [name]);
  return bus;
}

/** Emits `count` events in one turn (a burst), each with its index. */
const burst = (bus: EventBus, type: string, count: number, from = 0) =>
  Promise.all(Array.from({ length: count }, (_, i) => bus.emit(type, { n: from + i })));

const messages = (text: string) => log.records.filter((r) => String(r.message).includes(text));

describe('batched delivery to a library receiver (Express + eventsMiddleware)', () => {
  it.each(['in-memory', 'SQLite'])('a burst goes out as batches from the %s outbox; every event is handled exactly once', async (outbox) => {
    const seen: number[] = [];
    const { server, arrivals } = await payments((bus) => bus.subscribeTo('to-payments', (data) => void seen.push((data as { n: number }).n)));
    const dir = tempDir('batch-delivery');
    open.push({ close: async () => dir.remove() });
    const sender = users({ payments: server.url }, outbox === 'SQLite' ? { outbox: { path: dir.file('outbox.db') } } : {});

    await burst(sender, 'to-payments', 60);
    await waitFor(async () => seen.length >= 60 && (await sender.outboxStats()).pending === 0, { what: 'every event handled' });
    await sleep(100); // room for a wrong extra delivery

    expect(seen.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(arrivals.batches).toBeGreaterThan(0);
    // Fewer requests than events: the burst was carried in batches, not one event per request.
    expect(arrivals.batches + arrivals.structured).toBeLessThan(60);
    expect(await sender.outboxStats()).toMatchObject({ pending: 0, deadLetters: 0 });
    expect(messages('is not an events receipt')).toEqual([]);
  });

  it('a mixed batch: one event delivered, one refused (dead letter at once), one failing once (redelivered, then delivered), each settled on its own', async () => {
    const calls: Record<string, number> = { ok: 0, refuse: 0, flaky: 0 };
    const { server, arrivals } = await payments((bus) =>
      bus.subscribeTo('to-payments', (data) => {
        const { kind } = data as { kind: string };
        calls[kind]! += 1;
        if (kind === 'refuse') throw new NonRetryableError('this order cannot be paid');
        if (kind === 'flaky' && calls.flaky === 1) throw new Error('database briefly unavailable');
      }),
    );
    const sender = users({ payments: server.url }, { concurrency: 1 });

    // One turn: the lane's one request carries all three.
    const [ok, refused, flaky] = await Promise.all(['ok', 'refuse', 'flaky'].map((kind) => sender.emit('to-payments', { kind })));
    await waitFor(async () => calls.flaky === 2 && (await sender.outboxStats()).pending === 0, { what: 'the flaky event redelivered' });
    await sleep(150); // room for a wrong extra delivery

    expect(arrivals.batches).toBe(1);
    // Only the failed event came back, alone, in structured mode; the delivered and refused ones never did.
    expect(arrivals.structured).toBe(1);
    expect(calls).toEqual({ ok: 1, refuse: 1, flaky: 2 });
    expect(await sender.outboxStats()).toMatchObject({ pending: 0, deadLetters: 1 });
    expect(await sender.deadLetters()).toEqual([expect.objectContaining({ eventId: refused!.id, reason: 'refused', attempts: 1, status: 422 })]);
    const delivered = log.records.filter((r) => r.message === 'event delivered');
    expect(delivered.map((r) => r.eventId).sort()).toEqual([ok!.id, flaky!.id].sort());
    expect(delivered.find((r) => r.eventId === flaky!.id)).toMatchObject({ attempt: 2 });
    expect(messages('delivery failed; will redeliver').map((r) => r.eventId)).toEqual([flaky!.id]);
  });
});

describe('a peer that does not read batches', () => {
  it('answers 415 to a batch: every event arrives exactly once, later events go one per request, one warning', async () => {
    const requests: Array<{ batch: boolean; ids: string[] }> = [];
    const server = await startServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (isBatch(req.headers['content-type'])) {
          requests.push({ batch: true, ids: [] });
          res.writeHead(415, { 'content-type': 'application/json' }).end('{"error":"unsupported_media_type"}');
          return;
        }
        const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string };
        requests.push({ batch: false, ids: [event.id] });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'delivered', id: event.id }));
      });
    });
    open.push(server);
    const sender = users({ peer: server.url });

    const first = await burst(sender, 'to-peer', 10);
    await waitFor(async () => (await sender.outboxStats()).pending === 0, { what: 'the first burst delivered' });
    const batchesAfterFirst = requests.filter((r) => r.batch).length;
    expect(batchesAfterFirst).toBeGreaterThan(0);

    const second = await burst(sender, 'to-peer', 10, 10);
    await waitFor(async () => (await sender.outboxStats()).pending === 0, { what: 'the second burst delivered' });
    await sleep(100);

    const structuredIds = requests.filter((r) => !r.batch).flatMap((r) => r.ids);
    expect(structuredIds.slice().sort()).toEqual([...first, ...second].map((r) => r.id).sort());
    expect(requests.filter((r) => r.batch)).toHaveLength(batchesAfterFirst);
    expect(await sender.outboxStats()).toMatchObject({ pending: 0, deadLetters: 0 });
    expect(messages('does not accept CloudEvents batches')).toEqual([
      expect.objectContaining({ level: 'warn', target: 'peer', status: 415 }),
    ]);
    expect(messages('delivery failed; will redeliver')).toEqual([]);
  });

  it('a receiver with a smaller body limit answers 413 to a large batch: its events go again in smaller batches, each handled once', async () => {
    const seen: number[] = [];
    const { server, arrivals } = await payments((bus) => bus.subscribeTo('to-payments', (data) => void seen.push((data as { n: number }).n)), {
      bodyLimitBytes: 8 * 1024,
    });
    const sender = users({ payments: server.url });
    const pad = 'x'.repeat(500);
    // Forty ~700-byte events in one turn: two batches of twenty (~14 KB each), over the receiver's 8 KiB.
    await Promise.all(Array.from({ length: 40 }, (_, n) => sender.emit('to-payments', { n, pad })));
    await waitFor(async () => seen.length >= 40 && (await sender.outboxStats()).pending === 0, { what: 'every event handled' });
    await sleep(100);

    expect(seen.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, n) => n));
    expect(arrivals.batches).toBeGreaterThan(2);
    expect(await sender.outboxStats()).toMatchObject({ pending: 0, deadLetters: 0 });
    // One warning per shrink: the two batches in flight may each shrink it (the second only if it was the smaller).
    const shrinks = messages('as too large (413); sending batches of at most');
    expect(shrinks.length).toBeGreaterThanOrEqual(1);
    expect(shrinks.length).toBeLessThanOrEqual(2);
    expect(shrinks.every((r) => r.level === 'warn' && r.target === 'payments' && r.status === 413)).toBe(true);
    expect(messages('does not accept CloudEvents batches')).toEqual([]);
    expect(messages('delivery failed; will redeliver')).toEqual([]);
  });

  it('services.<name>.batch = false: never receives a batch', async () => {
    const seen: number[] = [];
    const { server, arrivals } = await payments((bus) => bus.subscribeTo('to-payments', (data) => void seen.push((data as { n: number }).n)));
    const sender = users({ payments: { url: server.url, batch: false } });

    await burst(sender, 'to-payments', 30);
    await waitFor(async () => seen.length >= 30 && (await sender.outboxStats()).pending === 0, { what: 'every event handled' });
    await sleep(100);

    expect(arrivals).toEqual({ batches: 0, structured: 30 });
    expect(seen).toHaveLength(30);
  });
});
