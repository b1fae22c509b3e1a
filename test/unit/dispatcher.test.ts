import type { RedeliveryOptions, ResolvedTarget } from '../../src/config.js';
import { DEFAULTS } from '../../src/defaults.js';
import { ConfigError } from '../../src/errors/index.js';
import type { NewDelivery, OutboxStore } from '../../src/send/outbox-store.js';
import type { DeliveryResult } from '../../src/send/transport.js';
import { type Answer, HOP, KEY, settle, setupDispatcher, T, until, useFakeClock } from '../helpers/dispatcher.js';

// The dispatcher against a scripted transport, on a fake clock: which deliveries are sent when,
// and what becomes of each outcome. No network.

const DELIVERED: DeliveryResult = { outcome: 'delivered', status: 204, attempts: 1 };
const FAILED_500: DeliveryResult = { outcome: 'retry', status: 500, error: 'HTTP 500', attempts: 1 };
const UNREACHABLE: DeliveryResult = { outcome: 'retry', error: 'ECONNREFUSED', attempts: 1, targetDown: true };

function delivery(n: number, target = 'payments', createdAt = Date.now()): NewDelivery {
  return {
    eventId: `evt-${n}`,
    type: 'order-placed',
    source: 'orders',
    target,
    body: JSON.stringify({ specversion: '1.0', id: `evt-${n}`, source: 'orders', type: 'order-placed', data: { n } }),
    createdAt,
  };
}

function setup(
  answer: Answer,
  options: { concurrency?: number; redelivery?: Partial<RedeliveryOptions>; resolveTarget?: (name: string) => ResolvedTarget } = {},
) {
  return setupDispatcher({ answer, ...options });
}

useFakeClock();

describe('Dispatcher', () => {
  test('delivers each pending delivery once, to the resolved target, and completes it', async () => {
    const { transport, store, emit } = setup(() => DELIVERED);
    await emit(delivery(1), delivery(2), delivery(3, 'orders'));
    await settle();

    expect(transport.eventIds().sort()).toEqual(['evt-1', 'evt-2', 'evt-3']);
    const first = transport.sent.find((s) => s.delivery.eventId === 'evt-1')!.delivery;
    expect(first).toEqual({
      eventId: 'evt-1',
      type: 'order-placed',
      source: 'orders',
      target: { name: 'payments', url: 'http://127.0.0.1:1/payments', keys: [KEY], batch: false, receipt: true },
      body: delivery(1).body,
      previousAttempts: 0,
    });
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 0 });

    await until(24 * 60 * 60 * 1000);
    expect(transport.sent).toHaveLength(3);
  });

  test('a request that ends delivered, with nothing left due, costs no further claim; one that fails pumps again', async () => {
    let answer: DeliveryResult = DELIVERED;
    const { transport, store, emit } = setup(() => answer);
    const claim = jest.spyOn(store, 'claim');
    await emit(delivery(1));
    await settle();
    expect(transport.eventIds()).toEqual(['evt-1']);
    expect(claim).toHaveBeenCalledTimes(1);

    answer = FAILED_500;
    await emit(delivery(2));
    await settle();
    expect(claim).toHaveBeenCalledTimes(3); // the emit's, and the one that looks again after the failure
    answer = DELIVERED;
    await until(60_000);
    expect(transport.eventIds()).toEqual(['evt-1', 'evt-2', 'evt-2']);
    expect(await store.stats()).toMatchObject({ pending: 0 });
  });

  test('a refused delivery is dead-lettered at once and never retried; the payload is logged at debug only', async () => {
    const { transport, store, logger, emit } = setup(() => ({ outcome: 'refused', status: 400, error: 'HTTP 400: bad', attempts: 1 }));
    await emit(delivery(1));
    await settle();

    expect(await store.deadLetters()).toEqual([
      expect.objectContaining({ eventId: 'evt-1', reason: 'refused', attempts: 1, status: 400, error: 'HTTP 400: bad' }),
    ]);
    expect(logger.error).toHaveBeenCalledWith(
      expect.stringContaining('refused'),
      expect.objectContaining({ eventId: 'evt-1', target: 'payments', status: 400 }),
    );
    expect(logger.error).not.toHaveBeenCalledWith(expect.anything(), expect.objectContaining({ data: expect.anything() }));
    expect(logger.debug).toHaveBeenCalledWith('dead letter data', expect.objectContaining({ eventId: 'evt-1', data: { n: 1 } }));
    await until(7 * 24 * 60 * 60 * 1000);
    expect(transport.sent).toHaveLength(1);
  });

  test('a failed delivery is redelivered after the base delay, counting every try', async () => {
    const answers = [{ ...FAILED_500, attempts: 4 }, DELIVERED];
    const { transport, store, emit } = setup(() => answers.shift()!);
    await emit(delivery(1));
    await settle();
    expect(await store.nextDueAt('payments')).toBe(T + DEFAULTS.redelivery.baseDelayMs);

    await until(DEFAULTS.redelivery.baseDelayMs - 1);
    expect(transport.sent).toHaveLength(1);
    await until(DEFAULTS.redelivery.baseDelayMs);
    expect(transport.sent).toHaveLength(2);
    expect(transport.sent[1]!.delivery.previousAttempts).toBe(4);
    expect((await store.stats()).pending).toBe(0);
  });

  test('the wait grows with the time since emit (about doubling), capped at maxDelayMs', async () => {
    const { transport, emit } = setup(() => FAILED_500, { redelivery: { baseDelayMs: 5_000, maxDelayMs: 15_000 } });
    await emit(delivery(1));
    await until(60_000);
    expect(transport.sent.map((s) => s.at - T)).toEqual([0, 5_000, 10_000, 20_000, 35_000, 50_000]);
  });

  test('jitter keeps each wait between half and all of its nominal value', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0);
    const { store, emit } = setup(() => FAILED_500);
    await emit(delivery(1));
    await settle();
    expect(await store.nextDueAt('payments')).toBe(T + DEFAULTS.redelivery.baseDelayMs / 2);
  });

  test('a Retry-After longer than the backoff is honoured', async () => {
    const answers = [{ ...FAILED_500, status: 503, retryAfterMs: 120_000 }, DELIVERED];
    const { transport, store, emit } = setup(() => answers.shift()!);
    await emit(delivery(1));
    await settle();
    expect(await store.nextDueAt('payments')).toBe(T + 120_000);
    await until(119_999);
    expect(transport.sent).toHaveLength(1);
    await until(120_000);
    expect(transport.sent).toHaveLength(2);
  });

  test('a delivery still failing past the redelivery horizon becomes an expired dead letter, logged as an error', async () => {
    const { transport, store, logger, emit } = setup(() => FAILED_500, {
      redelivery: { baseDelayMs: 5_000, horizonMs: 60_000 },
    });
    await emit(delivery(1));
    await until(24 * 60 * 60 * 1000);

    // Tries at 0, 5 s, 10 s, 20 s, 40 s; the next wait (40 s) would end past the 60 s horizon.
    expect(transport.sent.map((s) => s.at - T)).toEqual([0, 5_000, 10_000, 20_000, 40_000]);
    expect(await store.deadLetters()).toEqual([expect.objectContaining({ eventId: 'evt-1', reason: 'expired', attempts: 5 })]);
    expect((await store.stats()).pending).toBe(0);
    expect(logger.error).toHaveBeenCalledWith(expect.stringContaining('expired'), expect.objectContaining({ eventId: 'evt-1', status: 500 }));
  });

  test('a transport that throws is a failed try to retry, not a crash', async () => {
    const answers: Array<() => DeliveryResult> = [
      () => {
        throw new Error('socket hang up');
      },
      () => DELIVERED,
    ];
    const { transport, store, emit } = setup(() => answers.shift()!());
    await emit(delivery(1));
    await settle();
    expect(await store.pendingRecords()).toEqual([expect.objectContaining({ attempts: 1, lastError: 'socket hang up' })]);
    await until(DEFAULTS.redelivery.baseDelayMs);
    expect(transport.sent).toHaveLength(2);
    expect((await store.stats()).pending).toBe(0);
  });

  test('a target that is down is probed one delivery at a time; when it answers, the whole backlog is sent at once', async () => {
    let up = false;
    const { transport, store, emit } = setup(() => (up ? DELIVERED : UNREACHABLE), {
      redelivery: { probeMaxDelayMs: 4_000 },
    });
    await emit(...Array.from({ length: 10 }, (_, i) => delivery(i + 1)));
    await settle();
    expect(transport.sent).toHaveLength(10); // the first round went out before anything was known

    await until(60_000);
    const probes = transport.sent.slice(10).map((s) => s.at);
    // Every record was due again after 5 s, yet only single probes went out, never two at one instant,
    // spaced out but never more than probeMaxDelayMs apart.
    expect(probes.length).toBeGreaterThan(3);
    expect(probes.length).toBeLessThan(30);
    expect(new Set(probes).size).toBe(probes.length);
    for (let i = 1; i < probes.length; i++) {
      expect(probes[i]! - probes[i - 1]!).toBeGreaterThan(0);
      expect(probes[i]! - probes[i - 1]!).toBeLessThanOrEqual(4_000 + HOP);
    }

    up = true;
    const before = transport.sent.length;
    await until(64_000);
    const delivered = transport.sent.slice(before);
    expect(delivered.map((s) => s.delivery.eventId).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `evt-${i + 1}`).sort(),
    );
    expect(new Set(delivered.map((s) => s.at)).size).toBeLessThanOrEqual(2); // the probe, then everything else together
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 0 });
  });

  test('one target being down does not hold back another', async () => {
    const { transport, store, emit } = setup((d) => (d.target.name === 'payments' ? UNREACHABLE : DELIVERED));
    await emit(delivery(1, 'payments'), delivery(2, 'orders'), delivery(3, 'payments'));
    await settle();
    await emit(delivery(4, 'orders')); // while payments is down and waiting to be probed
    await settle();

    const toOrders = transport.sent.filter((s) => s.delivery.target.name === 'orders');
    expect(toOrders.map((s) => s.delivery.eventId)).toEqual(['evt-2', 'evt-4']);
    expect(Math.max(...toOrders.map((s) => s.at))).toBeLessThan(T + 100);
    expect((await store.stats()).targets.payments?.pending).toBe(2);
    expect((await store.stats()).targets.orders?.pending ?? 0).toBe(0);
  });

  test('at most `concurrency` deliveries are in flight per target', async () => {
    const pending: Array<(result: DeliveryResult) => void> = [];
    const { transport, dispatcher, store, emit } = setup(() => new Promise((resolve) => pending.push(resolve)), {
      concurrency: 2,
    });
    await emit(...Array.from({ length: 5 }, (_, i) => delivery(i + 1)), delivery(6, 'orders'));
    await settle();
    expect(transport.eventIds().sort()).toEqual(['evt-1', 'evt-2', 'evt-6']);
    expect(dispatcher.inFlight()).toBe(3);

    pending.shift()!(DELIVERED);
    await settle();
    expect(transport.eventIds()).toContain('evt-3');
    expect(transport.sent).toHaveLength(4);

    while (pending.length > 0) {
      pending.shift()!(DELIVERED);
      await settle();
    }
    expect(transport.sent).toHaveLength(6);
    expect((await store.stats()).pending).toBe(0);
  });

  test('a target that cannot be resolved keeps its deliveries and logs why', async () => {
    const { transport, store, logger, emit } = setup(() => DELIVERED, {
      resolveTarget: (name) => {
        throw new ConfigError(`No URL for target service "${name}": set EVENTS_SERVICE_PAYMENTS_URL`);
      },
    });
    await emit(delivery(1));
    await settle();
    expect(transport.sent).toEqual([]);
    expect((await store.stats()).pending).toBe(1);
    expect(logger.error).toHaveBeenCalledWith(
      expect.stringContaining('not configured'),
      expect.objectContaining({ target: 'payments', error: expect.stringContaining('EVENTS_SERVICE_PAYMENTS_URL') }),
    );
  });

  test('stop() waits for what is in flight and sends nothing new', async () => {
    const pending: Array<(result: DeliveryResult) => void> = [];
    const { transport, dispatcher, store, emit } = setup(() => new Promise((resolve) => pending.push(resolve)));
    await emit(delivery(1));
    await settle();
    expect(transport.sent).toHaveLength(1);

    let stopped = false;
    const stopping = dispatcher.stop(T + 5_000).then(() => {
      stopped = true;
    });
    await emit(delivery(2));
    await until(100);
    expect(stopped).toBe(false);
    pending.shift()!(DELIVERED);
    await until(200);
    await stopping;
    expect(stopped).toBe(true);
    expect(transport.eventIds()).toEqual(['evt-1']);
    expect((await store.stats()).pending).toBe(1);
  });

  test('stop() gives up at its deadline on a request still in flight; a second stop() awaits it once it is answered', async () => {
    const pending: Array<(result: DeliveryResult) => void> = [];
    const { dispatcher, store, emit } = setup(() => new Promise((resolve) => pending.push(resolve)));
    await emit(delivery(1));
    await settle();

    let stopped = false;
    const stopping = dispatcher.stop(T + 1_000).then(() => (stopped = true));
    await until(999);
    expect(stopped).toBe(false);
    await until(1_001);
    await stopping;
    expect(stopped).toBe(true);
    expect((await store.stats()).pending).toBe(1);

    // The bus closes the transport (which answers what it aborted), then awaits the outcomes again.
    const again = dispatcher.stop(T + 5_000);
    pending.shift()!(FAILED_500);
    await settle();
    await again;
    expect(Date.now()).toBeLessThan(T + 5_000);
    expect(await store.stats()).toMatchObject({ pending: 1, deadLetters: 0 });
    expect((await store.pendingRecords())[0]).toMatchObject({ attempts: 1, lastStatus: 500 });
  });

  test('stop() while a pump is claiming from a slow store awaits the pass and the requests it starts', async () => {
    const pending: Array<(result: DeliveryResult) => void> = [];
    const { dispatcher, store, transport, emit } = setup(() => new Promise((resolve) => pending.push(resolve)));
    const claim = store.claim.bind(store);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const outbox: OutboxStore = store; // a shared store answers later
    jest.spyOn(outbox, 'claim').mockImplementation(async (target, now, limit) => {
      await gate;
      return claim(target, now, limit);
    });
    await emit(delivery(1));
    await settle(); // the pump waits in claim()

    let stopped = false;
    const stopping = dispatcher.stop(T + 5_000).then(() => (stopped = true));
    await settle();
    open();
    await settle();
    expect(transport.eventIds()).toEqual(['evt-1']);
    expect(stopped).toBe(false);
    pending.shift()!(DELIVERED);
    await settle();
    await stopping;
    expect(Date.now()).toBeLessThan(T + 5_000);
    expect((await store.stats()).pending).toBe(0);
  });

  test('a store that throws (disk full, locked) never throws out of a timer: the lane backs off, growing, and delivers once it works', async () => {
    const { transport, store, dispatcher, emit } = setup(() => DELIVERED);
    const claim = store.claim.bind(store);
    const resumeTargets = store.targets.bind(store);
    let failing = true;
    const claims: number[] = [];
    const diskFull = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    jest.spyOn(store, 'claim').mockImplementation(async (target, now, limit) => {
      claims.push(Date.now());
      if (failing) throw diskFull();
      return claim(target, now, limit);
    });
    jest.spyOn(store, 'targets').mockImplementation(async () => {
      if (failing) throw diskFull();
      return resumeTargets();
    });
    await emit(delivery(1));
    dispatcher.resume(); // the bus's poll calls this from a timer too
    await until(3_000);
    expect(transport.sent).toEqual([]);
    const gaps = claims.slice(1).map((at, i) => at - claims[i]!);
    expect(gaps.length).toBeGreaterThan(3);
    expect(gaps[1]!).toBeGreaterThan(gaps[0]!); // growing …
    expect(Math.max(...gaps)).toBeLessThanOrEqual(DEFAULTS.storeRetry.maxDelayMs + HOP); // … and capped

    failing = false;
    await until(3_000 + DEFAULTS.storeRetry.maxDelayMs + 10);
    expect(transport.eventIds()).toEqual(['evt-1']);
    expect((await store.stats()).pending).toBe(0);
  });
});
