// Backpressure (outbox.highWaterMark): a storm of emits never starves delivery, and the outbox
// stays bounded, from a real sender bus to a real Express receiver on 127.0.0.1.
import express from 'express';
import { createEventBus, type EventBus, type EventBusOptions, OutboxFullError } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { freePort, startServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { sleep, waitFor } from '../helpers/wait.js';

const SECRET = newSecret();
const TYPE = 'stock-moved';
/** The sender's high-water mark, and its emit loops (each awaits its emit, as request handlers would). */
const MARK = 200;
const EMITTERS = 16;
/** Each emitter may record one event past the mark before it waits (emit records first, then waits). */
const BOUND = MARK + EMITTERS;
/** A storm lasts this long, and at least STORM_EMITS emits: cycles of filling to the mark and draining to half of it. */
const STORM_MS = 2_000;
const STORM_EMITS = 3 * MARK;

const cleanups = cleanupAfterEach();

/** A receiver slower than the emitters: few deliveries in flight, each handler yielding once. */
async function receiver(): Promise<{ url: string; runs: string[] }> {
  const bus = createEventBus({ service: 'warehouse', secret: SECRET, logger: quietLogger() });
  const runs: string[] = [];
  bus.subscribeTo(TYPE, async (_data, event) => {
    runs.push(event.id);
    await sleep(1);
  });
  const app = express();
  app.use(bus.expressMiddleware());
  const server = await startServer(app);
  cleanups.push(() => bus.close(), () => server.close());
  return { url: server.url, runs };
}

function sender(url: string, outbox: EventBusOptions['outbox'], logger = quietLogger()): EventBus {
  const bus = createEventBus({
    service: 'shop',
    secret: SECRET,
    services: { warehouse: url },
    logger,
    concurrency: 4,
    retry: { retries: 0 },
    shutdownTimeoutMs: 200,
    outbox,
  });
  bus.declareEvent(TYPE, ['warehouse']);
  cleanups.push(() => bus.close());
  return bus;
}

interface Storm {
  ids: string[];
  /** Largest outbox pending count seen, every 5 ms and at the end. */
  peak: number;
  /** Events the receiver had handled when `midway` emits had resolved, and when all had. */
  handledMidway: number;
  handledAtEnd: number;
}

/**
 * EMITTERS loops emitting as fast as they can for `ms`, and until `atLeast` emits resolved; a
 * loop that gets OutboxFullError stops. The outbox is sampled from a timer, not from the loops: the SQLite
 * outbox's stats() commits the writes it buffered, which would resolve the emits waiting on that
 * commit at once, and the loops would never yield.
 */
async function storm(bus: EventBus, runs: readonly string[], ms: number, atLeast = 0): Promise<Storm & { refused: number }> {
  const ids: string[] = [];
  const endAt = Date.now() + ms;
  const midway = Math.floor(atLeast / 2);
  let peak = 0;
  let refused = 0;
  let handledMidway = 0;
  const sample = async () => {
    peak = Math.max(peak, (await bus.outboxStats()).pending);
  };
  const sampler = setInterval(() => void sample(), 5);
  try {
    await Promise.all(
      Array.from({ length: EMITTERS }, async () => {
        while (Date.now() < endAt || ids.length < atLeast) {
          try {
            ids.push((await bus.emit(TYPE, { seq: ids.length })).id);
          } catch (error) {
            if (!(error instanceof OutboxFullError)) throw error;
            refused += 1;
            return;
          }
          if (ids.length === midway) handledMidway = runs.length;
        }
      }),
    );
  } finally {
    clearInterval(sampler);
  }
  await sample();
  return { ids, peak, refused, handledMidway, handledAtEnd: runs.length };
}

describe.each([
  ['in-memory', () => ({})],
  ['SQLite', () => {
    const dir = tempDir('storm');
    cleanups.push(() => dir.remove());
    return { path: dir.file('outbox.db') };
  }],
] as const)('an emit storm to a live target, %s outbox', (_name, outbox) => {
  it('keeps the outbox under the high-water mark, delivers during the storm, and delivers every event exactly once', async () => {
    const { url, runs } = await receiver();
    const bus = sender(url, { ...outbox(), highWaterMark: MARK });
    // The target is up: its lane is delivering (a durable outbox starts by probing what it holds).
    await bus.emit(TYPE, { seq: -1 });
    await waitFor(() => runs.length === 1, { what: 'the first event delivered' });
    runs.length = 0;

    const { ids, peak, refused, handledMidway, handledAtEnd } = await storm(bus, runs, STORM_MS, STORM_EMITS);

    expect(refused).toBe(0);
    expect(ids.length).toBeGreaterThanOrEqual(STORM_EMITS);
    expect(peak).toBeGreaterThan(MARK); // the emitters outran delivery: backpressure was needed
    expect(peak).toBeLessThanOrEqual(BOUND);
    // Delivery ran all through the storm, not after it: all but what the outbox may hold was handled.
    expect(handledMidway).toBeGreaterThanOrEqual(STORM_EMITS / 2 - BOUND);
    expect(handledAtEnd).toBeGreaterThanOrEqual(ids.length - BOUND);

    await waitFor(async () => runs.length >= ids.length && (await bus.outboxStats()).pending === 0, { timeoutMs: 10_000, what: 'every event delivered' });
    expect(runs).toHaveLength(ids.length);
    expect(new Set(runs)).toEqual(new Set(ids));
  }, 20_000);
});

it('without a high-water mark, the same storm grows the outbox past that bound (the test above can fail)', async () => {
  const { url, runs } = await receiver();
  const bus = sender(url, { highWaterMark: 0 });
  const { peak } = await storm(bus, runs, 0, 5 * BOUND);
  expect(peak).toBeGreaterThan(BOUND);
});

it('a storm to a target that is down never waits: the outbox fills to maxPending, then OutboxFullError', async () => {
  const bus = sender(`http://127.0.0.1:${await freePort()}/events`, { highWaterMark: 20, maxPending: 500 });
  const { ids, refused, peak } = await storm(bus, [], 0, Infinity);

  expect(ids).toHaveLength(500);
  expect(refused).toBe(EMITTERS);
  expect(peak).toBe(500);
  expect((await bus.health()).targetsDown).toEqual(['warehouse']);
});

it('a target that hangs without failing holds each emit for outbox.maxBlockMs at most, and a warning says so once', async () => {
  const server = await startServer(() => {}); // takes every request, never answers
  cleanups.push(() => server.close());
  const { logger, withMessage } = createCapturingLogger('info');
  const bus = sender(server.url, { highWaterMark: 20, maxBlockMs: 50 }, logger);

  // Many times the mark: without the cap these emits would wait for the requests' 10 s timeouts (and their retries).
  let emitted = 0;
  await Promise.all(
    Array.from({ length: EMITTERS }, async () => {
      while (emitted < 200) {
        await bus.emit(TYPE, { seq: emitted });
        emitted += 1;
      }
    }),
  );

  expect((await bus.outboxStats()).pending).toBeGreaterThanOrEqual(200);
  const warnings = withMessage("emit waited outbox.maxBlockMs for a target's backlog to drain; until it does, emits to it resolve after that wait");
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatchObject({ level: 'warn', target: 'warehouse', highWaterMark: 20, maxBlockMs: 50 });
  expect((await bus.health()).targetsDown).toEqual([]);
}, 15_000);
