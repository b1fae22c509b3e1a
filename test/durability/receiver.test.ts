// Idempotent receivers and handler-chosen outcomes, over real Express servers on 127.0.0.1.
import express from 'express';
import type { ServerResponse } from 'node:http';
import { createEventBus, type EventBus, NonRetryableError, RetryLaterError } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { post } from '../helpers/http-client.js';
import { quietLogger } from '../helpers/logger.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret, signedRequest } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { sleep, waitFor } from '../helpers/wait.js';

const SECRET = newSecret();
const TYPE = 'order-placed';
/** How long, and how often, these tests poll. */
const WAIT = { timeoutMs: 10_000, intervalMs: 20 };

const cleanups = cleanupAfterEach();

interface Tapped {
  at: number;
  status: number;
  retryAfter: string | undefined;
}

/** A receiving service: a bus behind Express, with every answer recorded. */
async function receiver(
  subscribe: (bus: EventBus) => void,
  options: { inboxPath?: string } = {},
): Promise<{ bus: EventBus; server: TestServer; answers: Tapped[] }> {
  const bus = createEventBus({
    service: 'payments',
    secret: SECRET,
    logger: quietLogger(),
    ...(options.inboxPath ? { inbox: { path: options.inboxPath } } : {}),
  });
  subscribe(bus);
  const answers: Tapped[] = [];
  const app = express();
  app.use((req, res: ServerResponse, next) => {
    const at = Date.now();
    res.on('finish', () => {
      const retryAfter = res.getHeader('retry-after');
      answers.push({ at, status: res.statusCode, retryAfter: retryAfter === undefined ? undefined : String(retryAfter) });
    });
    next();
  });
  app.use(bus.expressMiddleware());
  const server = await startServer(app);
  cleanups.push(() => bus.close(), () => server.close());
  return { bus, server, answers };
}

/** A sending service with one declared event to `payments` at `url`, retries kept short. */
function sender(url: string): EventBus {
  const bus = createEventBus({
    service: 'users',
    secret: SECRET,
    services: { payments: url },
    logger: quietLogger(),
    retry: { retries: 2, baseDelayMs: 20, maxDelayMs: 100 },
    redelivery: { baseDelayMs: 200, maxDelayMs: 1000, probeMaxDelayMs: 500 },
  });
  bus.declareEvent(TYPE, ['payments']);
  cleanups.push(() => bus.close());
  return bus;
}

describe('duplicate delivery', () => {
  it('answers 2xx to the same signed request twice and runs the handler once', async () => {
    const seen: string[] = [];
    const { server } = await receiver((bus) => bus.subscribeTo(TYPE, (_data, event) => void seen.push(event.id)));
    const request = signedRequest(SECRET, 'users', TYPE, { order: 1 });

    const first = await post(server.url, request);
    const second = await post(server.url, request);

    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ status: 'duplicate', id: request.id });
    expect(seen).toEqual([request.id]);
  });

  it('runs the handler once when the same request arrives twice concurrently', async () => {
    let runs = 0;
    const { server } = await receiver((bus) =>
      bus.subscribeTo(TYPE, async () => {
        runs += 1;
        await sleep(50);
      }),
    );
    const request = signedRequest(SECRET, 'users', TYPE, { order: 2 });

    const answers = await Promise.all([post(server.url, request), post(server.url, request)]);

    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(runs).toBe(1);
  });
});

describe('partial failure', () => {
  it('answers 500 when one handler fails, and a retry reruns only that handler', async () => {
    const runs = { a: 0, b: 0 };
    const { server } = await receiver((bus) => {
      bus.subscribeTo(TYPE, () => void (runs.a += 1), { name: 'a' });
      bus.subscribeTo(
        TYPE,
        () => {
          runs.b += 1;
          if (runs.b === 1) throw new Error('database unavailable');
        },
        { name: 'b' },
      );
    });
    const request = signedRequest(SECRET, 'users', TYPE, { order: 3 });

    expect((await post(server.url, request)).status).toBe(500);
    expect(runs).toEqual({ a: 1, b: 1 });
    expect((await post(server.url, request)).status).toBe(200);
    expect(runs).toEqual({ a: 1, b: 2 });
    expect((await post(server.url, request)).status).toBe(200);
    expect(runs).toEqual({ a: 1, b: 2 });
  });
});

describe('durable inbox', () => {
  it('remembers processed events and completed handlers across a restart on the same file', async () => {
    const dir = tempDir('inbox');
    cleanups.push(() => dir.remove());
    const inboxPath = dir.file('inbox.db');
    const runs = { a: 0, b: 0 };
    const subscribe = (failB: boolean) => (bus: EventBus) => {
      bus.subscribeTo(TYPE, () => void (runs.a += 1), { name: 'a' });
      bus.subscribeTo(
        TYPE,
        () => {
          runs.b += 1;
          if (failB) throw new Error('not yet');
        },
        { name: 'b' },
      );
    };
    const done = signedRequest(SECRET, 'users', TYPE, { order: 4 });
    const partial = signedRequest(SECRET, 'users', TYPE, { order: 5 });

    const first = await receiver(subscribe(false), { inboxPath });
    expect((await post(first.server.url, done)).status).toBe(200);
    expect(runs).toEqual({ a: 1, b: 1 });
    await first.bus.close();
    await first.server.close();

    const second = await receiver(subscribe(true), { inboxPath });
    expect((await post(second.server.url, partial)).status).toBe(500);
    expect(runs).toEqual({ a: 2, b: 2 });
    await second.bus.close();
    await second.server.close();

    const third = await receiver(subscribe(false), { inboxPath });
    const again = await post(third.server.url, done);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'duplicate' });
    expect(runs).toEqual({ a: 2, b: 2 });
    expect((await post(third.server.url, partial)).status).toBe(200);
    expect(runs).toEqual({ a: 2, b: 3 });
  });
});

describe('handlers choose the outcome', () => {
  it('NonRetryableError answers 422 and the sender dead-letters the event after one attempt', async () => {
    let runs = 0;
    const { server, answers } = await receiver((bus) =>
      bus.subscribeTo(TYPE, () => {
        runs += 1;
        throw new NonRetryableError('unsupported country');
      }),
    );
    const users = sender(server.url);

    const receipt = await users.emit(TYPE, { order: 6 });

    const [letter] = await waitFor(
      async () => ((await users.deadLetters()).length > 0 ? users.deadLetters() : undefined),
      { ...WAIT, what: 'a dead letter' },
    );
    expect(letter).toMatchObject({ eventId: receipt.id, target: 'payments', status: 422, attempts: 1, reason: 'refused' });
    expect(answers.map((a) => a.status)).toEqual([422]);
    expect(runs).toBe(1);
    expect(await users.outboxStats()).toMatchObject({ pending: 0, deadLetters: 1 });
  });

  it('RetryLaterError(1) answers 503 with Retry-After: 1, and the sender tries again no sooner', async () => {
    const runs: number[] = [];
    const { server, answers } = await receiver((bus) =>
      bus.subscribeTo(TYPE, () => {
        runs.push(Date.now());
        if (runs.length === 1) throw new RetryLaterError(1, 'rate limited');
      }),
    );
    const users = sender(server.url);

    await users.emit(TYPE, { order: 7 });

    await waitFor(() => answers.some((a) => a.status === 200), { ...WAIT, what: 'the delivery' });
    expect(answers.map((a) => [a.status, a.retryAfter])).toEqual([
      [503, '1'],
      [200, undefined],
    ]);
    // Retry-After is honoured: the second try came at least a second after the first answer.
    expect(answers[1]!.at - answers[0]!.at).toBeGreaterThanOrEqual(950);
    expect(runs).toHaveLength(2);
    await waitFor(async () => (await users.outboxStats()).pending === 0, { ...WAIT, what: 'an empty outbox' });
    expect(await users.deadLetters()).toEqual([]);
  });
});
