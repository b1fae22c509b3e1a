import type { BatchOptions } from '../../src/config.js';
import { DEFAULTS } from '../../src/defaults.js';
import { planRequests } from '../../src/send/batches.js';
import type { NewDelivery, OutboxRecord, Settlement } from '../../src/send/outbox-store.js';
import type { MemoryOutbox } from '../../src/backends/memory/outbox.js';
import type { Delivery, DeliveryResult } from '../../src/send/transport.js';
import { type Answer, type ScriptedTransport, settle, setupDispatcher, T, until, useFakeClock } from '../helpers/dispatcher.js';

// The dispatcher's batching against a scripted transport, on a fake clock: how due deliveries are
// spread over requests, and how each event of a batch is settled from its own result. No network.

const DELIVERED: DeliveryResult = { outcome: 'delivered', status: 200, attempts: 1 };
const REFUSED: DeliveryResult = { outcome: 'refused', status: 422, error: 'rejected_by_handler: no', attempts: 1 };
const FAILED_500: DeliveryResult = { outcome: 'retry', status: 500, error: 'handler_failed', attempts: 1 };
const NOT_FOUND: DeliveryResult = { outcome: 'retry', status: 404, error: 'no_subscriber', attempts: 1 };
const UNREACHABLE: DeliveryResult = { outcome: 'retry', error: 'ECONNREFUSED', attempts: 1, targetDown: true };
const UNSUPPORTED: DeliveryResult = { outcome: 'retry', status: 415, error: 'HTTP 415', attempts: 1, batchUnsupported: true };
/** A 404 as the HTTP transport answers it: with the hint of its event type. */
const notFound = (delivery: Delivery): DeliveryResult => ({
  ...NOT_FOUND,
  hint: { key: `404 ${delivery.type}`, scope: 'type', message: `404 from payments: is the receiver subscribed to ${delivery.type}?` },
});

function delivery(n: number, createdAt = Date.now(), pad = 0): NewDelivery {
  return {
    eventId: `evt-${n}`,
    type: n % 2 === 0 ? 'order-paid' : 'order-placed',
    source: 'orders',
    target: 'payments',
    body: JSON.stringify({ specversion: '1.0', id: `evt-${n}`, source: 'orders', type: 'order-placed', data: { n, pad: 'x'.repeat(pad) } }),
    createdAt,
  };
}

const many = (count: number, from = 1) => Array.from({ length: count }, (_, i) => delivery(from + i));

/** Records every `settleMany` call on `store`, then settles with the store's own `settleMany`. */
function recordSettleMany(store: MemoryOutbox): Settlement[][] {
  const calls: Settlement[][] = [];
  const own = store.settleMany.bind(store);
  store.settleMany = async (settlements) => {
    calls.push([...settlements]);
    return own(settlements);
  };
  return calls;
}

function setup(
  options: {
    answer?: Answer;
    concurrency?: number;
    batch?: Omit<BatchOptions, 'enabled'>;
    targetBatch?: boolean;
    settleMany?: boolean;
  } = {},
) {
  /** What the lanes told the emit path: each settled delivery (first attempt or not), each time a lane found nothing more due. */
  const settled: boolean[] = [];
  const idle: number[] = [];
  const harness = setupDispatcher({
    answer: options.answer,
    concurrency: options.concurrency ?? 4,
    batch: options.batch ?? {},
    targetBatch: options.targetBatch ?? true,
    progress: {
      settled: (_record, firstAttempt) => settled.push(firstAttempt),
      idle: (_target, unsettled) => idle.push(unsettled),
    },
  });
  const settleManyCalls = options.settleMany ? recordSettleMany(harness.store) : [];
  return { ...harness, settled, idle, settleManyCalls };
}

useFakeClock();

describe('Dispatcher batching: what goes in which request', () => {
  test('what fits in the free requests goes one event per request, in structured mode (no batch when idle)', async () => {
    const { transport, store, emit } = setup({ concurrency: 4 });
    await emit(delivery(1));
    await settle();
    await emit(...many(3, 2));
    await settle();
    expect(transport.requests.map((r) => r.batch)).toEqual([false, false, false, false]);
    expect(transport.shapes()).toEqual([['evt-1'], ['evt-2'], ['evt-3'], ['evt-4']]);
    expect((await store.stats()).pending).toBe(0);
  });

  test('more due than free requests: spread evenly over them as batches, oldest first, each event once', async () => {
    const { transport, store, emit } = setup({ concurrency: 2 });
    await emit(...many(10));
    await settle();
    expect(transport.requests.map((r) => r.batch)).toEqual([true, true]);
    expect(transport.shapes()).toEqual([
      ['evt-1', 'evt-2', 'evt-3', 'evt-4', 'evt-5'],
      ['evt-6', 'evt-7', 'evt-8', 'evt-9', 'evt-10'],
    ]);
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 0 });
  });

  test('events that queued up while every request was in flight go out together when one ends', async () => {
    const { transport, store, emit } = setup({ concurrency: 1 });
    transport.hold = true;
    await emit(delivery(1));
    await settle();
    await emit(...many(5, 2));
    await settle();
    expect(transport.shapes()).toEqual([['evt-1']]);
    transport.release();
    await settle();
    expect(transport.shapes()).toEqual([['evt-1'], ['evt-2', 'evt-3', 'evt-4', 'evt-5', 'evt-6']]);
    expect(transport.requests[1]!.batch).toBe(true);
    transport.release();
    await settle();
    expect((await store.stats()).pending).toBe(0);
  });

  test('a delivery that failed while the lane refilled is redelivered on time, though every request after it was delivered', async () => {
    // The failed one is due later; the pump after it claims what queued meanwhile and fills the
    // lane again, so it cannot look for the next due time then. The next request to end must.
    let failFirst = true;
    const { transport, store, emit } = setup({
      concurrency: 1,
      answer: (d) => (d.eventId === 'evt-1' && failFirst ? ((failFirst = false), FAILED_500) : DELIVERED),
    });
    transport.hold = true;
    await emit(delivery(1));
    await settle();
    await emit(...many(3, 2));
    await settle();
    transport.release(); // evt-1 fails: the lane takes evt-2…4 in one batch, full again
    await settle();
    expect(transport.shapes()).toEqual([['evt-1'], ['evt-2', 'evt-3', 'evt-4']]);
    transport.hold = false;
    transport.release(); // the batch is delivered, and nothing else is due now
    await settle();
    await until(60_000); // no emit kicks the lane: only its own timer can send evt-1 again
    expect(transport.shapes()).toEqual([['evt-1'], ['evt-2', 'evt-3', 'evt-4'], ['evt-1']]);
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 0 });
  });

  test('what queued while requests were in flight goes in as few requests as carry it, in even shares', async () => {
    const { transport, store, emit } = setup({ concurrency: 4, batch: { maxEvents: 4 } });
    transport.hold = true;
    await emit(delivery(1));
    await settle();
    // Ten due, three requests free, one in flight: three requests (4, 3, 3), not spread thinner.
    await emit(...many(10, 2));
    await settle();
    expect(transport.shapes()).toEqual([['evt-1'], ['evt-2', 'evt-3', 'evt-4', 'evt-5'], ['evt-6', 'evt-7', 'evt-8'], ['evt-9', 'evt-10', 'evt-11']]);
    transport.hold = false;
    transport.release();
    await settle();
    expect(transport.shapes().flat().sort()).toEqual(many(11).map((d) => d.eventId).sort());
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 0 });
  });

  test('a full batch or more due on an idle lane goes in as few requests as carry it', async () => {
    const { transport, store, emit } = setup({ concurrency: 4, batch: { maxEvents: 4 } });
    await emit(...many(10));
    await settle();
    expect(transport.shapes()).toEqual([
      ['evt-1', 'evt-2', 'evt-3', 'evt-4'],
      ['evt-5', 'evt-6', 'evt-7'],
      ['evt-8', 'evt-9', 'evt-10'],
    ]);
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 0 });
  });

  test('a request carries at most batch.maxEvents; the lane claims only what its free requests carry', async () => {
    const { transport, store, emit } = setup({ concurrency: 1, batch: { maxEvents: 3 } });
    const claim = jest.spyOn(store, 'claim');
    await emit(...many(7));
    await settle();
    await settle();
    expect(transport.shapes()).toEqual([['evt-1', 'evt-2', 'evt-3'], ['evt-4', 'evt-5', 'evt-6'], ['evt-7']]);
    expect(transport.requests.map((r) => r.batch)).toEqual([true, true, false]);
    expect(claim.mock.calls.map((call) => call[2])).toEqual(expect.arrayContaining([3]));
    expect(Math.max(...claim.mock.calls.map((call) => call[2]))).toBe(3);
    expect((await store.stats()).pending).toBe(0);
  });

  test('a request stays within batch.maxBytes; what did not fit goes back to the store uncharged and is sent next', async () => {
    // ~1 KiB bodies, 2.5 KiB per request: two per batch, however many the lane claimed.
    const { transport, store, emit } = setup({ concurrency: 1, batch: { maxBytes: 2_500 } });
    await emit(...Array.from({ length: 5 }, (_, i) => delivery(i + 1, T, 1_000)));
    await settle();
    await settle();
    for (const request of transport.requests) {
      const bytes = request.deliveries.reduce((sum, d) => sum + Buffer.byteLength(d.body) + 1, 1);
      expect(bytes).toBeLessThanOrEqual(2_500);
    }
    expect(transport.shapes().flat().sort()).toEqual(['evt-1', 'evt-2', 'evt-3', 'evt-4', 'evt-5']);
    expect(transport.requests.every((r) => r.deliveries.every((d) => d.previousAttempts === 0))).toBe(true);
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 0 });
  });

  test('an event larger than batch.maxBytes by itself goes alone, in structured mode', async () => {
    const { transport, emit } = setup({ concurrency: 1, batch: { maxBytes: 2_000 } });
    transport.hold = true;
    await emit(delivery(1));
    await settle();
    await emit(delivery(2), delivery(3, T, 3_000), delivery(4));
    await settle();
    transport.release();
    for (let i = 0; i < 5; i++) {
      await settle();
      transport.release();
    }
    expect(transport.shapes()).toEqual([['evt-1'], ['evt-2'], ['evt-3'], ['evt-4']]);
    expect(transport.requests.map((r) => r.batch)).toEqual([false, false, false, false]);
  });

  test('a target with batch: false, or a transport without sendBatch, gets one event per request', async () => {
    const { transport, emit } = setup({ concurrency: 2, targetBatch: false });
    await emit(...many(6));
    await settle();
    expect(transport.requests).toHaveLength(6);
    expect(transport.requests.every((r) => !r.batch)).toBe(true);

    const plain = setup({ concurrency: 2 });
    (plain.transport as Partial<ScriptedTransport>).sendBatch = undefined;
    await plain.emit(...many(6));
    await settle();
    expect(plain.transport.requests).toHaveLength(6);
  });

  test('batch.lingerMs waits that long for more before sending what is due; stop() sends it without waiting', async () => {
    const { transport, dispatcher, emit } = setup({ concurrency: 1, batch: { lingerMs: 50 } });
    await emit(delivery(1));
    await until(20);
    await emit(delivery(2), delivery(3));
    await until(49);
    expect(transport.requests).toHaveLength(0);
    await until(60);
    expect(transport.shapes()).toEqual([['evt-1', 'evt-2', 'evt-3']]);

    await emit(delivery(4));
    await settle();
    const stopping = dispatcher.stop(Date.now() + 1_000);
    await until(200);
    await stopping;
    expect(transport.shapes()).toEqual([['evt-1', 'evt-2', 'evt-3'], ['evt-4']]);
  });

  test('probes of a target that is down stay one event; when it answers, the backlog goes out in batches', async () => {
    let up = false;
    const { transport, store, dispatcher, emit } = setup({ concurrency: 2, answer: () => (up ? DELIVERED : UNREACHABLE) });
    await emit(...many(10));
    await settle();
    expect(transport.requests).toHaveLength(2);
    expect(dispatcher.downSince()).toEqual({ payments: expect.any(Number) });

    await until(3_000);
    const probes = transport.requests.slice(2);
    expect(probes.length).toBeGreaterThan(0);
    expect(probes.every((r) => !r.batch && r.deliveries.length === 1)).toBe(true);

    up = true;
    const before = transport.requests.length;
    await until(40_000);
    const after = transport.requests.slice(before);
    expect(after.some((r) => r.batch)).toBe(true);
    expect(after.flatMap((r) => r.deliveries.map((d) => d.eventId)).sort()).toEqual(many(10).map((d) => d.eventId).sort());
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 0 });
  });
});

describe('Dispatcher batching: each event settled from its own result', () => {
  test('a mixed batch: the delivered event completes, the refused one is a dead letter at once, the failed one is redelivered alone', async () => {
    const answers: Record<string, DeliveryResult> = { 'evt-2': REFUSED, 'evt-3': FAILED_500 };
    let firstTry = true;
    const { transport, store, logger, emit, settled } = setup({
      concurrency: 1,
      answer: (d) => (firstTry ? (answers[d.eventId] ?? DELIVERED) : DELIVERED),
    });
    transport.hold = true;
    await emit(delivery(9));
    await settle();
    await emit(...many(3));
    await settle();
    transport.release();
    await settle();
    transport.release();
    await settle();
    firstTry = false;
    transport.hold = false;

    expect(transport.shapes()).toEqual([['evt-9'], ['evt-1', 'evt-2', 'evt-3']]);
    expect(await store.deadLetters()).toEqual([expect.objectContaining({ eventId: 'evt-2', reason: 'refused', attempts: 1, status: 422 })]);
    expect(await store.pendingRecords()).toEqual([expect.objectContaining({ eventId: 'evt-3', attempts: 1, lastStatus: 500 })]);
    expect(await store.nextDueAt('payments')).toBeGreaterThanOrEqual((await store.pendingRecords())[0]!.lastAttemptAt! + DEFAULTS.redelivery.baseDelayMs);
    expect(await store.nextDueAt('payments')).toBeLessThanOrEqual(Date.now() + DEFAULTS.redelivery.baseDelayMs);
    expect(logger.info).toHaveBeenCalledWith('event delivered', expect.objectContaining({ eventId: 'evt-1', status: 200 }));
    expect(logger.error).toHaveBeenCalledWith('delivery refused; dead-lettered', expect.objectContaining({ eventId: 'evt-2', status: 422 }));
    expect(logger.log).toHaveBeenCalledWith('warn', 'delivery failed; will redeliver', expect.objectContaining({ eventId: 'evt-3', status: 500 }));

    await until(DEFAULTS.redelivery.baseDelayMs + 100);
    expect(transport.shapes()[2]).toEqual(['evt-3']);
    expect(transport.requests[2]!.deliveries[0]!.previousAttempts).toBe(1);
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 1 });
    expect(settled).toEqual([true, true, true, true, false]); // evt-9, the batch of three, evt-3 again
  });

  test('the outcomes of a batch are recorded in one settleMany call when the store has it', async () => {
    const answers: Record<string, DeliveryResult> = { 'evt-2': REFUSED, 'evt-3': FAILED_500 };
    const { store, settled: progress, settleManyCalls: settled, emit } = setup({
      concurrency: 1,
      settleMany: true,
      answer: (d) => answers[d.eventId] ?? DELIVERED,
    });
    await emit(...many(4));
    await settle();
    expect(settled).toHaveLength(1);
    expect(settled[0]!.map((s) => [s.record.eventId, s.kind])).toEqual([
      ['evt-1', 'complete'],
      ['evt-2', 'kill'],
      ['evt-3', 'reschedule'],
      ['evt-4', 'complete'],
    ]);
    expect(progress).toEqual([true, true, true, true]);
    expect(await store.stats()).toMatchObject({ pending: 1, deadLetters: 1 });
  });

  test('a batch whose every event failed counts once towards marking the target down, not once per event', async () => {
    const { transport, dispatcher, logger, emit } = setup({ concurrency: 2, answer: notFound });
    await emit(...many(20));
    await settle();
    expect(transport.requests.map((r) => r.deliveries.length)).toEqual([10, 10]);
    // Two requests failed (three in a row mark it down): the target is still up.
    expect(dispatcher.downSince()).toEqual({});
    expect(logger.warn).not.toHaveBeenCalledWith(expect.stringContaining('target down'), expect.anything());
    // The 404 hint is said once for each event type, not once per event.
    expect(logger.warn.mock.calls.filter(([message]) => String(message).startsWith('404 from payments'))).toHaveLength(2);

    // The same events failing again are not news about the target …
    await until(DEFAULTS.redelivery.baseDelayMs + 100);
    expect(transport.requests.map((r) => r.deliveries.length)).toEqual([10, 10, 10, 10]);
    expect(dispatcher.downSince()).toEqual({});
    // … a third request with a delivery not failed before is.
    await emit(delivery(21));
    await settle();
    expect(dispatcher.downSince()).toEqual({ payments: expect.any(Number) });
  });

  test('a batch that failed with a network error marks the target down once', async () => {
    const { dispatcher, logger, emit } = setup({ concurrency: 2, answer: () => UNREACHABLE });
    await emit(...many(20));
    await settle();
    expect(dispatcher.downSince()).toEqual({ payments: expect.any(Number) });
    expect(logger.warn.mock.calls.filter(([message]) => String(message).includes('target down'))).toHaveLength(1);
  });

  test('a 2xx that is not a receipt is delivered for every event of the batch, with one warning; a receipt again says so once', async () => {
    const hint = { key: 'not-a-receipt', scope: 'target', message: '200 from payments is not an events receipt', over: 'receipts again' } as const;
    let receipts = false;
    const { store, logger, emit } = setup({ concurrency: 1, answer: () => (receipts ? DELIVERED : { ...DELIVERED, hint }) });
    await emit(...many(5));
    await settle();
    expect((await store.stats()).pending).toBe(0);
    expect(logger.warn.mock.calls.filter(([message]) => String(message).includes('is not an events receipt'))).toHaveLength(1);
    expect(logger.info).not.toHaveBeenCalledWith('receipts again', expect.anything());

    receipts = true;
    await emit(...many(5, 6));
    await settle();
    expect(logger.info.mock.calls.filter(([message]) => message === 'receipts again')).toHaveLength(1);
  });

  test('with info off, no line is built for delivered events; failures still log at their levels', async () => {
    const answers: Record<string, DeliveryResult> = { 'evt-2': FAILED_500 };
    const { logger, store, emit } = setup({ concurrency: 1, answer: (d) => answers[d.eventId] ?? DELIVERED });
    logger.isInfoEnabled = () => false;
    logger.isDebugEnabled = () => false;
    logger.isLevelEnabled = (level: string) => level === 'warn' || level === 'error';
    await emit(...many(3));
    await settle();
    expect((await store.stats()).pending).toBe(1);
    expect(logger.info).not.toHaveBeenCalled();
    expect(logger.debug).not.toHaveBeenCalled();
    expect(logger.log).toHaveBeenCalledTimes(1);
    expect(logger.log).toHaveBeenCalledWith('warn', 'delivery failed; will redeliver', expect.objectContaining({ eventId: 'evt-2' }));
  });

  test('a transport that throws on a batch fails each of its events, to retry', async () => {
    const { transport, store, emit } = setup({ concurrency: 1 });
    transport.sendBatch = () => Promise.reject(new Error('socket hang up'));
    await emit(...many(3));
    await settle();
    expect(await store.pendingRecords()).toEqual(
      ['evt-1', 'evt-2', 'evt-3'].map((eventId) => expect.objectContaining({ eventId, attempts: 1, lastError: 'socket hang up' })),
    );
  });
});

describe('Dispatcher batching: a peer that does not read batches', () => {
  test('its events are sent again at once one by one, uncharged; batching to it stops for good, said once', async () => {
    const { transport, store, logger, emit, settled, idle } = setup({ concurrency: 2, answer: (_d, batch) => (batch ? UNSUPPORTED : DELIVERED) });
    await emit(...many(6));
    await settle();
    await settle();
    await settle();
    expect(transport.requests.slice(0, 2).map((r) => [r.batch, r.deliveries.length])).toEqual([
      [true, 3],
      [true, 3],
    ]);
    const resent = transport.requests.slice(2);
    expect(resent.every((r) => !r.batch && r.deliveries.length === 1)).toBe(true);
    expect(resent.map((r) => r.deliveries[0]!.eventId).sort()).toEqual(many(6).map((d) => d.eventId).sort());
    expect(resent.every((r) => r.deliveries[0]!.previousAttempts === 0)).toBe(true);
    expect(resent.every((r) => r.at - T < 20)).toBe(true);
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 0 });
    // The emit path's backpressure hears of each event once, when it settled after its first real try.
    expect(settled).toEqual([true, true, true, true, true, true]);
    expect(idle.at(-1)).toBe(0);

    const before = transport.requests.length;
    await emit(...many(8, 100));
    await settle();
    await settle();
    expect(transport.requests.slice(before).every((r) => !r.batch)).toBe(true);
    expect(transport.requests).toHaveLength(before + 8);

    const warnings = logger.warn.mock.calls.filter(([message]) => String(message).includes('does not accept CloudEvents batches'));
    expect(warnings).toEqual([
      [
        'payments does not accept CloudEvents batches; sending one event per request — set services.payments.batch=false (or EVENTS_SERVICE_PAYMENTS_BATCH=false) to skip the probe',
        expect.objectContaining({ target: 'payments', status: 415 }),
      ],
    ]);
    expect(logger.log).not.toHaveBeenCalledWith('warn', 'delivery failed; will redeliver', expect.anything());
  });
});

describe('Dispatcher batching: a peer whose body limit is smaller than batch.maxBytes', () => {
  test('a 413 for a batch: its events go again at once, uncharged, in batches under half its size; batching goes on', async () => {
    const { transport, store, logger, emit } = setup({ concurrency: 1 });
    const LIMIT = 1_000; // what the peer takes: five of these ~200-byte events, not eight
    const sizeOf = (deliveries: readonly Delivery[]) => deliveries.reduce((sum, d) => sum + Buffer.byteLength(d.body) + 1, 1);
    const accept = transport.sendBatch.bind(transport);
    transport.sendBatch = async (deliveries) => {
      if (sizeOf(deliveries) <= LIMIT) return accept(deliveries);
      transport.requests.push({ at: Date.now(), batch: true, deliveries });
      const batchTooLarge = sizeOf(deliveries);
      return deliveries.map((): DeliveryResult => ({ outcome: 'retry', status: 413, error: 'HTTP 413', attempts: 1, batchUnsupported: true, batchTooLarge }));
    };
    const padded = (count: number, from: number) => Array.from({ length: count }, (_, i) => delivery(from + i, T, 100));
    await emit(...padded(8, 1));
    for (let i = 0; i < 6; i++) await settle();

    const tooLarge = transport.requests.filter((r) => sizeOf(r.deliveries) > LIMIT);
    const taken = transport.requests.filter((r) => sizeOf(r.deliveries) <= LIMIT);
    expect(tooLarge.length).toBeGreaterThan(0);
    // Each event delivered once, none charged an attempt for the 413s, and still in batches.
    expect(taken.flatMap((r) => r.deliveries.map((d) => d.eventId)).sort()).toEqual(padded(8, 1).map((d) => d.eventId).sort());
    expect(taken.every((r) => r.deliveries.every((d) => d.previousAttempts === 0))).toBe(true);
    expect(taken.some((r) => r.batch && r.deliveries.length > 1)).toBe(true);
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 0 });
    expect(logger.warn).toHaveBeenCalledWith(expect.stringMatching(/^payments refused a batch of \d+ bytes as too large \(413\); sending batches of at most \d+ bytes$/), expect.objectContaining({ status: 413 }));
    expect(logger.warn).not.toHaveBeenCalledWith(expect.stringContaining('does not accept CloudEvents batches'), expect.anything());

    // Later batches stay under the smaller size: no more 413s.
    const before = transport.requests.length;
    await emit(...padded(8, 9));
    for (let i = 0; i < 6; i++) await settle();
    const later = transport.requests.slice(before);
    expect(later.every((r) => sizeOf(r.deliveries) <= LIMIT)).toBe(true);
    expect(later.some((r) => r.batch)).toBe(true);
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 0 });
  });
});

describe('planRequests', () => {
  const records = (sizes: number[]): OutboxRecord[] =>
    sizes.map((_, i) => ({ ...delivery(i + 1), id: i + 1, attempts: 0, nextAttemptAt: T }));

  test('one per slot when it fits; else even shares within maxEvents (over every slot when idle, the fewest requests when busy), the rest over', async () => {
    const caps = { maxEvents: 4, maxBytes: 1_000_000 };
    const ids = (plan: ReturnType<typeof planRequests>) => ({
      requests: plan.requests.map((r) => r.map((x) => x.id)),
      overflow: plan.overflow.map((x) => x.id),
    });
    expect(ids(planRequests(records([1, 1, 1]), 3, caps, [1, 1, 1]))).toEqual({ requests: [[1], [2], [3]], overflow: [] });
    expect(ids(planRequests(records([1, 1, 1, 1, 1]), 2, caps, [1, 1, 1, 1, 1]))).toEqual({ requests: [[1, 2, 3], [4, 5]], overflow: [] });
    const ten = Array.from({ length: 10 }, () => 1);
    expect(ids(planRequests(records(ten), 2, caps, ten))).toEqual({ requests: [[1, 2, 3, 4], [5, 6, 7, 8]], overflow: [9, 10] });
    expect(ids(planRequests(records(ten), 8, caps, ten))).toEqual({
      requests: [[1, 2], [3, 4], [5], [6], [7], [8], [9], [10]],
      overflow: [],
    });
    // Busy: ten over eight free slots take three requests (4, 3, 3); five over four take two.
    expect(ids(planRequests(records(ten), 8, caps, ten, true))).toEqual({ requests: [[1, 2, 3, 4], [5, 6, 7], [8, 9, 10]], overflow: [] });
    expect(ids(planRequests(records([1, 1, 1, 1, 1]), 4, caps, [1, 1, 1, 1, 1], true))).toEqual({ requests: [[1, 2, 3], [4, 5]], overflow: [] });
    expect(ids(planRequests(records(ten), 2, caps, ten, true))).toEqual({ requests: [[1, 2, 3, 4], [5, 6, 7, 8]], overflow: [9, 10] });
  });

  test('bytes: a group closes before maxBytes (with the brackets and commas); an oversized record goes alone', async () => {
    const caps = { maxEvents: 10, maxBytes: 100 };
    const sizes = [40, 40, 40, 200, 10, 10];
    const plan = planRequests(records(sizes), 4, caps, sizes);
    expect(plan.requests.map((r) => r.map((x) => x.id))).toEqual([[1, 2], [3], [4], [5, 6]]);
    expect(plan.overflow).toEqual([]);
  });
});
