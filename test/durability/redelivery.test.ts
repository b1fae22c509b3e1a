// Redelivery, recovery after an outage, dead letters and replay, over real servers on 127.0.0.1.
import express from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createEventBus,
  discardDeadLetters,
  type EventBus,
  type EventBusOptions,
  inspectOutbox,
  listDeadLetters,
  replayDeadLetters,
} from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { quietLogger } from '../helpers/logger.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { sleep, waitFor } from '../helpers/wait.js';

const SECRET = newSecret();
const TYPE = 'invoice-issued';
/** How long, and how often, these tests poll. */
const WAIT = { timeoutMs: 10_000, intervalMs: 20 };

const cleanups = cleanupAfterEach();

type Front = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/**
 * A receiving service `name`: a bus behind Express, optionally behind `front` (which may answer
 * instead of the bus). `runs` lists the event ids whose handler completed, once per run.
 */
async function receiver(
  options: { port?: number; schema?: object; fail?: () => boolean; front?: Front } = {},
): Promise<{ bus: EventBus; server: TestServer; runs: string[] }> {
  const bus = createEventBus({ service: 'billing', secret: SECRET, logger: quietLogger() });
  const runs: string[] = [];
  bus.subscribeTo(
    TYPE,
    (_data, event) => {
      if (options.fail?.()) throw new Error('handler failing for a while');
      runs.push(event.id);
    },
    options.schema ? { schema: options.schema } : {},
  );
  const app = express();
  if (options.front) app.use(options.front);
  app.use(bus.expressMiddleware());
  const server = await startServer(app, options.port);
  cleanups.push(() => bus.close(), () => server.close());
  return { bus, server, runs };
}

function sender(services: Record<string, string>, options: EventBusOptions = {}): EventBus {
  const bus = createEventBus({
    service: 'orders',
    secret: SECRET,
    services,
    logger: quietLogger(),
    shutdownTimeoutMs: 200,
    ...options,
    retry: { retries: 1, baseDelayMs: 20, maxDelayMs: 50, ...options.retry },
    redelivery: { baseDelayMs: 200, maxDelayMs: 1000, probeMaxDelayMs: 300, ...options.redelivery },
  });
  bus.declareEvent(TYPE, Object.keys(services));
  cleanups.push(() => bus.close());
  return bus;
}

const countOf = (ids: string[]) => {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
};

const STRICT = {
  type: 'object',
  required: ['amount', 'currency'],
  properties: { amount: { type: 'number' }, currency: { type: 'string' } },
} as const;
const LENIENT = { type: 'object', required: ['amount'], properties: { amount: { type: 'number' } } } as const;

describe('dead letters and replay', () => {
  it('a 400 dead-letters the event at once; once the receiver is fixed, replayDeadLetters delivers it', async () => {
    const broken = await receiver({ schema: STRICT });
    const port = broken.server.port;
    const orders = sender({ billing: broken.server.url });

    const receipt = await orders.emit(TYPE, { amount: 12 });

    await waitFor(async () => (await orders.deadLetters()).length === 1, { ...WAIT, what: 'the dead letter' });
    expect((await orders.deadLetters())[0]).toMatchObject({ eventId: receipt.id, status: 400, attempts: 1, reason: 'refused' });
    expect(await orders.outboxStats()).toMatchObject({ pending: 0, deadLetters: 1 });
    expect(broken.runs).toEqual([]);

    // The receiver is fixed and redeployed on the same address.
    await broken.bus.close();
    await broken.server.close();
    const fixed = await receiver({ port, schema: LENIENT });

    expect(await orders.replayDeadLetters({ eventId: receipt.id })).toBe(1);
    await waitFor(() => fixed.runs.length === 1, { ...WAIT, what: 'the replayed delivery' });
    expect(fixed.runs).toEqual([receipt.id]);
    await waitFor(async () => (await orders.outboxStats()).pending === 0, { ...WAIT, what: 'an empty outbox' });
    expect(await orders.outboxStats()).toMatchObject({ pending: 0, deadLetters: 0 });
  });

  it('replayDeadLetters({ outbox: path }, "all") on the outbox file is picked up by the running service', async () => {
    const dir = tempDir('replay');
    cleanups.push(() => dir.remove());
    const outboxPath = dir.file('outbox.db');
    const broken = await receiver({ schema: STRICT });
    const port = broken.server.port;
    const orders = sender({ billing: broken.server.url }, { outbox: { path: outboxPath, pollIntervalMs: 100 } });

    const receipts = [await orders.emit(TYPE, { amount: 1 }), await orders.emit(TYPE, { amount: 2 })];

    await waitFor(async () => (await listDeadLetters({ outbox: outboxPath })).length === 2, { ...WAIT, what: 'two dead letters in the file' });
    expect((await listDeadLetters({ outbox: outboxPath })).map((d) => [d.eventId, d.status, d.attempts]).sort()).toEqual(
      receipts.map((r) => [r.id, 400, 1]).sort(),
    );
    expect(await inspectOutbox({ outbox: outboxPath })).toMatchObject({ durable: true, pending: 0, deadLetters: 2 });

    await broken.bus.close();
    await broken.server.close();
    const fixed = await receiver({ port, schema: LENIENT });

    expect(await replayDeadLetters({ outbox: outboxPath }, 'all')).toBe(2);
    await waitFor(() => fixed.runs.length === 2, { ...WAIT, timeoutMs: 5_000, what: 'the replayed deliveries' });
    expect(fixed.runs.sort()).toEqual(receipts.map((r) => r.id).sort());
    await waitFor(async () => (await inspectOutbox({ outbox: outboxPath })).pending === 0, { ...WAIT, what: 'an empty outbox' });
    expect(await inspectOutbox({ outbox: outboxPath })).toMatchObject({ pending: 0, deadLetters: 0 });
    expect(await orders.deadLetters()).toEqual([]);
  });

  it.each([
    ['in-memory', () => ({})],
    ['SQLite', () => {
      const dir = tempDir('discard');
      cleanups.push(() => dir.remove());
      return { outbox: { path: dir.file('outbox.db') } };
    }],
  ] as const)('discardDeadLetters deletes dead letters for good (%s outbox: the bus, by id and by filter)', async (_name, options) => {
    const broken = await receiver({ schema: STRICT });
    const orders = sender({ billing: broken.server.url }, options());
    const receipts = [await orders.emit(TYPE, { amount: 1 }), await orders.emit(TYPE, { amount: 2 }), await orders.emit(TYPE, { amount: 3 })];
    await waitFor(async () => (await orders.deadLetters()).length === 3, { ...WAIT, what: 'three dead letters' });

    const [first] = await orders.deadLetters({ eventId: receipts[0]!.id });
    expect(await orders.discardDeadLetters([first!.id])).toBe(1);
    expect(await orders.discardDeadLetters([first!.id])).toBe(0); // gone for good
    expect(await orders.discardDeadLetters({ target: 'nobody' })).toBe(0);
    expect((await orders.deadLetters()).map((d) => d.eventId).sort()).toEqual([receipts[1]!.id, receipts[2]!.id].sort());
    expect(await orders.discardDeadLetters({ target: 'billing', type: TYPE })).toBe(2);
    expect(await orders.outboxStats()).toMatchObject({ pending: 0, deadLetters: 0 });
    expect(await orders.replayDeadLetters('all')).toBe(0);
    expect(broken.runs).toEqual([]);
  });

  it('discardDeadLetters({ outbox: path }, …) deletes them from the file beside the running service', async () => {
    const dir = tempDir('discard-file');
    cleanups.push(() => dir.remove());
    const outboxPath = dir.file('outbox.db');
    const broken = await receiver({ schema: STRICT });
    const orders = sender({ billing: broken.server.url }, { outbox: { path: outboxPath, pollIntervalMs: 100 } });
    const receipts = [await orders.emit(TYPE, { amount: 1 }), await orders.emit(TYPE, { amount: 2 })];
    await waitFor(async () => (await listDeadLetters({ outbox: outboxPath })).length === 2, { ...WAIT, what: 'two dead letters in the file' });

    const [first] = await listDeadLetters({ outbox: outboxPath }, { eventId: receipts[0]!.id });
    expect(await discardDeadLetters({ outbox: outboxPath }, [first!.id])).toBe(1);
    expect((await orders.deadLetters()).map((d) => d.eventId)).toEqual([receipts[1]!.id]);
    expect(await discardDeadLetters({ outbox: outboxPath }, 'all')).toBe(1);
    expect(await inspectOutbox({ outbox: outboxPath })).toMatchObject({ pending: 0, deadLetters: 0 });
  });
});

describe('redelivery and recovery', () => {
  // A redelivery base delay of 30 s: an event that waited for its scheduled retry (15–30 s with
  // jitter) would time these tests out. Only the recovery release can deliver it in time.
  const SLOW_SCHEDULE = { redelivery: { baseDelayMs: 30_000, maxDelayMs: 60_000, probeMaxDelayMs: 300 } };

  it('a receiver answering 5xx for a while then 200: every event delivered once, the backlog drains at once', async () => {
    let failing = true;
    const billing = await receiver({ fail: () => failing });
    const orders = sender({ billing: billing.server.url }, SLOW_SCHEDULE);

    const ids: string[] = [];
    for (let i = 0; i < 40; i += 1) ids.push((await orders.emit(TYPE, { amount: i })).id);
    await sleep(300);
    for (let i = 40; i < 60; i += 1) ids.push((await orders.emit(TYPE, { amount: i })).id);
    await sleep(500);
    expect(billing.runs).toEqual([]);
    failing = false;

    await waitFor(() => new Set(billing.runs).size === ids.length, { ...WAIT, timeoutMs: 8_000, what: 'every event at the receiver' });
    await waitFor(async () => (await orders.outboxStats()).pending === 0, { ...WAIT, what: 'an empty outbox' });
    const counts = countOf(billing.runs);
    expect(ids.filter((id) => counts.get(id) !== 1)).toEqual([]);
    expect(await orders.deadLetters()).toEqual([]);
  });

  it('releases a delivery that started before the outage was noticed but failed after it', async () => {
    // The first request hangs 400 ms then answers 503; the next answers 503 at once: the target is
    // marked down by the second while the first is still in flight. The target is back as soon as
    // the first is answered, and a new event is emitted then: the probe delivers it, and the two
    // failed ones must be released by the recovery rather than wait 15–30 s for their schedule.
    let down = true;
    let seen = 0;
    let later: Promise<{ id: string }> | undefined;
    const front: Front = (_req, res, next) => {
      if (!down) return next();
      seen += 1;
      if (seen > 1) {
        res.statusCode = 503;
        res.end();
        return;
      }
      setTimeout(() => {
        down = false;
        res.statusCode = 503;
        res.end();
        later = orders.emit(TYPE, { amount: 3 });
      }, 400);
    };
    const billing = await receiver({ front });
    const orders = sender({ billing: billing.server.url }, { ...SLOW_SCHEDULE, retry: { retries: 0 } });

    const slow = await orders.emit(TYPE, { amount: 1 });
    await sleep(50);
    const fast = await orders.emit(TYPE, { amount: 2 });

    await waitFor(() => billing.runs.length === 3, { ...WAIT, timeoutMs: 8_000, what: 'all three events' });
    expect(billing.runs.sort()).toEqual([slow.id, fast.id, (await later!).id].sort());
  });

  it('a target that is down (hanging or refusing) does not hold up deliveries to another', async () => {
    const healthy = await receiver();
    const hanging = await startServer(() => {
      /* accepts, never answers */
    });
    cleanups.push(() => hanging.close());
    const refusing = await startServer((_req, res) => res.end());
    await refusing.close();
    const orders = sender(
      { billing: healthy.server.url, archive: hanging.url, audit: refusing.url },
      { timeoutMs: 30_000 },
    );

    const ids: string[] = [];
    for (let i = 0; i < 50; i += 1) ids.push((await orders.emit(TYPE, { amount: i })).id);

    await waitFor(() => healthy.runs.length === 50, { ...WAIT, timeoutMs: 8_000, what: 'every event at the healthy target' });
    expect(healthy.runs.sort()).toEqual(ids.sort());
    await waitFor(async () => ((await orders.outboxStats()).targets.billing?.pending ?? 0) === 0, { ...WAIT, what: 'no pending delivery to billing' });
    const stats = await orders.outboxStats();
    expect(stats.targets.archive?.pending).toBe(50);
    expect(stats.targets.audit?.pending).toBe(50);
  });
});
