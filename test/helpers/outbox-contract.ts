// The outbox store contract, the same for every outbox store: the memory and SQLite stores
// (test/unit/outbox-stores.test.ts) and PostgreSQL (test/postgres/outbox-settle.test.ts). Every
// call is awaited, so stores that answer at once and stores that answer with promises run the
// same tests. `open` gives a fresh, empty store (for PostgreSQL: a service of its own).
import type { DeadLetterFilter } from '../../src/operate/operator.js';
import type { DeathReason, NewDelivery, OutboxRecord, OutboxStore } from '../../src/send/outbox-store.js';

export const T = 1_700_000_000_000;

export function delivery(n: number, target = 'payments', createdAt = T + n): NewDelivery {
  const eventId = `evt-${n}`;
  return {
    eventId,
    type: 'user-created',
    source: 'users',
    target,
    body: JSON.stringify({ specversion: '1.0', id: eventId, source: 'users', type: 'user-created', data: { n } }),
    createdAt,
  };
}

export const ids = (records: readonly { eventId?: string }[]) => records.map((r) => r.eventId);

/** What the dispatcher does to a record after a failed try. */
export function tried(record: OutboxRecord, at: number, status = 503): OutboxRecord {
  record.attempts += 1;
  record.lastAttemptAt = at;
  record.lastStatus = status;
  record.lastError = `HTTP ${status}`;
  return record;
}

/** The dispatcher's outcome of a failed try: due again at `nextAttemptAt` (through the one write every store has). */
export function reschedule(store: OutboxStore, record: OutboxRecord, nextAttemptAt: number): Promise<void> {
  return store.settleMany([{ kind: 'reschedule', record, nextAttemptAt }]);
}

/** The dispatcher's outcome of a delivery: the record leaves the outbox. */
export function complete(store: OutboxStore, record: OutboxRecord): Promise<void> {
  return store.settleMany([{ kind: 'complete', record }]);
}

/** The dispatcher's outcome of a last try: the record becomes a dead letter. */
export function kill(store: OutboxStore, record: OutboxRecord, reason: DeathReason): Promise<void> {
  return store.settleMany([{ kind: 'kill', record, reason }]);
}

/** What every outbox store does: claims and leases, outcomes, dead letters, replay, release, stats, clock steps. */
export function outboxStoreContract(open: () => Promise<OutboxStore> | OutboxStore): void {
  let store: OutboxStore;
  beforeEach(async () => {
    store = await open();
  });
  afterEach(async () => {
    await store.close();
  });

  test('add → claim returns due records of that target, oldest first, with their fields', async () => {
    await store.add([delivery(1), delivery(2)]);
    await store.add([delivery(3), delivery(4, 'orders')]);
    const claimed = await store.claim('payments', T + 100, 10);
    expect(ids(claimed)).toEqual(['evt-1', 'evt-2', 'evt-3']);
    expect(claimed[0]).toMatchObject({ ...delivery(1), attempts: 0, nextAttemptAt: T + 1 });
    expect(new Set(claimed.map((r) => r.id)).size).toBe(3);
    expect(ids(await store.claim('orders', T + 100, 10))).toEqual(['evt-4']);
  });

  test("a record carries its emit's trace context, and none when the emit had none", async () => {
    const traced = { ...delivery(1), traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=x' };
    await store.add([traced, delivery(2)]);
    const [first, second] = await store.claim('payments', T + 100, 10);
    expect(first).toMatchObject({ traceparent: traced.traceparent, tracestate: 'vendor=x' });
    expect(second!.traceparent).toBeUndefined();
    expect(second!.tracestate).toBeUndefined();
  });

  test('claimed records are leased: a second claim does not return them', async () => {
    await store.add([delivery(1), delivery(2)]);
    expect(await store.claim('payments', T + 100, 10)).toHaveLength(2);
    expect(await store.claim('payments', T + 100, 10)).toEqual([]);
    expect(await store.claimProbe('payments')).toBeUndefined();
  });

  test('claim takes at most `limit`, the oldest', async () => {
    await store.add([delivery(1), delivery(2), delivery(3)]);
    expect(ids(await store.claim('payments', T + 100, 2))).toEqual(['evt-1', 'evt-2']);
    expect(ids(await store.claim('payments', T + 100, 2))).toEqual(['evt-3']);
  });

  test('claim of an unknown target is empty', async () => {
    expect(await store.claim('nobody', T, 10)).toEqual([]);
    expect(await store.nextDueAt('nobody')).toBeUndefined();
  });

  test('a record rescheduled to the future is not claimable until then, and keeps its try history', async () => {
    await store.add([delivery(1)]);
    const [record] = await store.claim('payments', T + 10, 10);
    await reschedule(store, tried(record!, T + 10), T + 1000);

    // nextDueAt first: after a claim that found nothing, a shared store (PostgreSQL) answers "look again soon".
    expect(await store.nextDueAt('payments')).toBe(T + 1000);
    expect(await store.claim('payments', T + 999, 10)).toEqual([]);
    const [again] = await store.claim('payments', T + 1000, 10);
    expect(again).toMatchObject({
      eventId: 'evt-1',
      attempts: 1,
      nextAttemptAt: T + 1000,
      lastAttemptAt: T + 10,
      lastStatus: 503,
      lastError: 'HTTP 503',
    });
  });

  test('rescheduled records come back in due order', async () => {
    await store.add([delivery(1), delivery(2), delivery(3)]);
    const [r1, r2, r3] = await store.claim('payments', T + 10, 10);
    await reschedule(store, tried(r1!, T + 10), T + 3000);
    await reschedule(store, tried(r2!, T + 10), T + 1000);
    await reschedule(store, tried(r3!, T + 10), T + 2000);
    expect(await store.nextDueAt('payments')).toBe(T + 1000);
    expect(ids(await store.claim('payments', T + 2500, 10))).toEqual(['evt-2', 'evt-3']);
    expect(ids(await store.claim('payments', T + 3000, 10))).toEqual(['evt-1']);
  });

  test('nextDueAt is the earliest unleased record, undefined when all are leased or done', async () => {
    await store.add([delivery(1), delivery(2)]);
    expect(await store.nextDueAt('payments')).toBe(T + 1);
    const claimed = await store.claim('payments', T + 10, 10);
    expect(await store.nextDueAt('payments')).toBeUndefined();
    for (const r of claimed) await complete(store, r);
    expect(await store.nextDueAt('payments')).toBeUndefined();
  });

  test('after a claim that took fewer than asked, nextDueAt is the earliest record it left, and sees what was written since', async () => {
    await store.add([delivery(1), delivery(2), delivery(3)]);
    const [r1, r2, r3] = await store.claim('payments', T + 10, 10);
    await reschedule(store, tried(r1!, T + 10), T + 5000);
    await reschedule(store, tried(r2!, T + 10), T + 2000);
    await complete(store, r3!);
    const [again] = await store.claim('payments', T + 2000, 10);
    expect(again).toMatchObject({ eventId: 'evt-2' });
    expect(await store.nextDueAt('payments')).toBe(T + 5000);
    await reschedule(store, tried(again!, T + 2000), T + 3000);
    expect(await store.nextDueAt('payments')).toBe(T + 3000);
  });

  test('the very next claim, in the same turn, sees every outcome and release recorded before it', async () => {
    await store.add([delivery(1), delivery(2), delivery(3)]);
    const [r1, r2, r3] = await store.claim('payments', T + 10, 10);
    await complete(store, r1!);
    await kill(store, r2!, 'refused');
    await reschedule(store, tried(r3!, T + 10), T + 20);
    expect(ids(await store.claim('payments', T + 20, 10))).toEqual(['evt-3']);
    await reschedule(store, tried(r3!, T + 30), T + 60_000);
    await store.release('payments', T + 30, T + 40);
    expect(ids(await store.claim('payments', T + 40, 10))).toEqual(['evt-3']);
    expect(await store.claim('payments', T + 40, 10)).toEqual([]);
  });

  test('a record that becomes due before the last one claimed is claimed too: created earlier, or a retry due at once', async () => {
    await store.add([delivery(1), delivery(2), delivery(3)]);
    const [r1] = await store.claim('payments', T + 10, 2);
    expect(ids(await store.claim('payments', T + 10, 10))).toEqual(['evt-3']);
    await store.add([delivery(4, 'payments', T - 5)]); // stamped before every record claimed so far
    expect(ids(await store.claim('payments', T + 10, 10))).toEqual(['evt-4']);
    await reschedule(store, tried(r1!, T + 10), T + 1); // due again before the last claimed record's time
    expect(ids(await store.claim('payments', T + 10, 10))).toEqual(['evt-1']);
    expect(await store.claim('payments', T + 10, 10)).toEqual([]);
  });

  test('claimProbe leases the record due soonest, due or not, and only once', async () => {
    await store.add([delivery(1), delivery(2)]);
    const [r1, r2] = await store.claim('payments', T + 10, 10);
    await reschedule(store, tried(r1!, T + 10), T + 60_000);
    await reschedule(store, tried(r2!, T + 10), T + 30_000);

    expect(await store.claim('payments', T + 10, 10)).toEqual([]);
    const probe = await store.claimProbe('payments');
    expect(probe).toMatchObject({ eventId: 'evt-2', attempts: 1 });
    expect(await store.claim('payments', T + 30_000, 10)).toEqual([]); // leased by the probe
    // One probe of a target at a time (a shared store refuses a second while one is out): settle it first.
    await complete(store, probe!);
    expect(await store.claimProbe('payments')).toMatchObject({ eventId: 'evt-1' });
    expect(await store.claimProbe('payments')).toBeUndefined();
    expect(await store.claimProbe('nobody')).toBeUndefined();
  });

  test('complete removes a delivery for good', async () => {
    await store.add([delivery(1), delivery(2)]);
    const [r1] = await store.claim('payments', T + 10, 1);
    await complete(store, r1!);
    expect(ids(await store.pendingRecords())).toEqual(['evt-2']);
    expect((await store.stats()).pending).toBe(1);
    expect(await store.deadLetters()).toEqual([]);
  });

  test('kill makes a dead letter with its reason, out of the pending set', async () => {
    await store.add([delivery(1), delivery(2), delivery(3, 'orders')]);
    const [r1, r2] = await store.claim('payments', T + 10, 10);
    const [r3] = await store.claim('orders', T + 10, 10);
    const before = Date.now();
    await kill(store, tried(r1!, T + 10, 400), 'refused');
    await kill(store, tried(r2!, T + 10), 'expired');
    await kill(store, tried(r3!, T + 10, 404), 'refused');

    const dead = await store.deadLetters();
    expect(dead.map((d) => [d.eventId, d.reason])).toEqual([
      ['evt-1', 'refused'],
      ['evt-2', 'expired'],
      ['evt-3', 'refused'],
    ]);
    const { createdAt: _c, ...fields } = delivery(1);
    expect(dead[0]).toMatchObject({ ...fields, id: String(r1!.id), kept: 'outbox', attempts: 1, status: 400, error: 'HTTP 400' });
    expect(dead[0]!.deadAt).toBeGreaterThanOrEqual(before);
    expect(await store.claim('payments', T + 1e9, 10)).toEqual([]);
    expect(await store.pendingRecords()).toEqual([]);

    expect(ids(await store.deadLetters({ target: 'orders' }))).toEqual(['evt-3']);
    expect(ids(await store.deadLetters({ eventId: 'evt-2' }))).toEqual(['evt-2']);
    expect(ids(await store.deadLetters({ ids: [r1!.id, r3!.id] }))).toEqual(['evt-1', 'evt-3']);
    expect(ids(await store.deadLetters({ ids: [] }))).toEqual([]);
    expect(ids(await store.deadLetters({ target: 'payments', eventId: 'evt-3' }))).toEqual([]);
  });

  test('replay puts matching dead letters back, due now with a fresh horizon, and keeps the others dead', async () => {
    await store.add([delivery(1), delivery(2), delivery(3)]);
    const claimed = await store.claim('payments', T + 10, 10);
    for (const r of claimed) await kill(store, tried(r, T + 10, 400), 'refused');

    const woken: string[] = [];
    store.onWork((target) => woken.push(target));
    const before = Date.now();
    expect(await store.replay({ eventId: 'evt-2' })).toBe(1);
    // Woken at once; a store whose replay also notifies every instance (PostgreSQL) may wake it again.
    expect([...new Set(woken)]).toEqual(['payments']);
    expect(ids(await store.deadLetters())).toEqual(['evt-1', 'evt-3']);
    expect(await store.stats()).toMatchObject({ pending: 1, deadLetters: 2 });

    const [again] = await store.claim('payments', Date.now(), 10);
    expect(again).toMatchObject({ eventId: 'evt-2', target: 'payments', attempts: 1 });
    expect(again!.createdAt).toBeGreaterThanOrEqual(before); // a fresh horizon
    expect(await store.replay('all')).toBe(2);
    expect(await store.deadLetters()).toEqual([]);
    expect(ids(await store.claim('payments', Date.now(), 10)).sort()).toEqual(['evt-1', 'evt-3']);
  });

  test('replay of nothing matching returns nothing', async () => {
    await store.add([delivery(1)]);
    const [r1] = await store.claim('payments', T + 10, 1);
    await kill(store, r1!, 'refused');
    expect(await store.replay({ target: 'orders' })).toBe(0);
    expect(await store.replay(['999999', 'not-an-id'])).toBe(0);
    expect(await store.deadLetters()).toHaveLength(1);
  });

  test('discard deletes the selected dead letters for good: by id, by filter, all', async () => {
    await store.add([delivery(1), delivery(2), delivery(3, 'orders'), delivery(4, 'orders')]);
    for (const target of ['payments', 'orders']) {
      for (const r of await store.claim(target, T + 10, 10)) await kill(store, tried(r, T + 10, 400), 'refused');
    }
    const [first] = await store.deadLetters({ eventId: 'evt-1' });
    expect(await store.discard([first!.id, '999999'])).toBe(1);
    expect(ids(await store.deadLetters())).toEqual(['evt-2', 'evt-3', 'evt-4']);
    expect(await store.discard({ target: 'orders', type: 'user-created' })).toBe(2);
    expect(await store.discard({ type: 'no-such-type' })).toBe(0);
    expect(ids(await store.deadLetters())).toEqual(['evt-2']);
    expect(await store.discard('all')).toBe(1);
    expect(await store.stats()).toMatchObject({ pending: 0, deadLetters: 0 });
    expect(await store.replay('all')).toBe(0); // gone for good
    expect(await store.pendingRecords()).toEqual([]);
  });

  test('dead letters page server-side, oldest first, by target, type and time; a cursor survives a discard', async () => {
    await store.add([1, 2, 3, 4, 5, 6, 7].map((n) => delivery(n, n % 3 === 0 ? 'orders' : 'payments')));
    for (const target of ['payments', 'orders']) {
      for (const r of await store.claim(target, T + 10, 10)) await kill(store, tried(r, T + 10, 400), 'refused');
    }
    const all = await store.deadLetters();
    const order = [...all].sort((a, b) => (a.deadAt ?? 0) - (b.deadAt ?? 0) || Number(a.id) - Number(b.id)).map((d) => d.eventId);
    const walk = async (filter?: DeadLetterFilter, limit = 3) => {
      const seen: Array<string | undefined> = [];
      let cursor: string | undefined;
      do {
        const page = await store.deadLetterPage(filter, { limit, cursor });
        expect(page.items.length).toBeLessThanOrEqual(limit);
        expect(page.truncated).toBeUndefined();
        seen.push(...ids(page.items));
        if (seen.length > 20) throw new Error('the cursor does not advance');
        cursor = page.next;
      } while (cursor !== undefined);
      return seen;
    };
    expect(await walk()).toEqual(order);
    expect(await walk(undefined, 7)).toEqual(order);
    expect(await walk({ target: 'orders' }, 1)).toEqual(['evt-3', 'evt-6']);
    expect(await walk({ type: 'no-such-type' })).toEqual([]);
    const first = await store.deadLetterPage(undefined, { limit: 2 });
    expect(first.items[0]).toMatchObject({ kept: 'outbox', reason: 'refused', status: 400, body: expect.any(String) });
    // The letter the cursor names is gone: the next page starts after where it was.
    await store.discard([first.items[1]!.id]);
    expect(ids((await store.deadLetterPage(undefined, { limit: 10, cursor: first.next })).items)).toEqual(order.slice(2));
    // By time of death: since (inclusive), until (exclusive).
    const third = all.find((d) => d.eventId === order[2])!;
    const since = ids((await store.deadLetterPage({ since: third.deadAt }, { limit: 10 })).items);
    expect(since).toEqual(order.filter((id) => all.find((d) => d.eventId === id)!.deadAt! >= third.deadAt! && id !== order[1]));
    expect((await store.deadLetterPage({ until: 0 }, { limit: 10 })).items).toEqual([]);
    expect((await store.deadLetterPage({ since: Date.now() + 60_000 }, { limit: 10 })).items).toEqual([]);
  });

  test('release makes what failed since the outage began due now, and nothing else', async () => {
    await store.add([delivery(1), delivery(2), delivery(3), delivery(4, 'orders')]);
    const [r1, r2, r3] = await store.claim('payments', T + 10, 10);
    const [r4] = await store.claim('orders', T + 10, 10);
    await reschedule(store, tried(r1!, T + 100), T + 1e6); // failed during the outage
    await reschedule(store, tried(r2!, T + 200), T + 2e6); // failed during the outage
    await reschedule(store, tried(r3!, T + 50), T + 3e6); // failed before it
    await reschedule(store, tried(r4!, T + 100), T + 1e6); // another target

    await store.release('payments', T + 100, T + 300);

    expect(ids(await store.claim('payments', T + 300, 10)).sort()).toEqual(['evt-1', 'evt-2']);
    expect(await store.nextDueAt('payments')).toBe(T + 3e6);
    expect(await store.nextDueAt('orders')).toBe(T + 1e6);
    expect(await store.claim('orders', T + 300, 10)).toEqual([]);
  });

  test('stats count pending (leased included) and dead letters per target, with the oldest pending', async () => {
    expect(await store.stats()).toEqual({ durable: store.durable, pending: 0, deadLetters: 0, targets: {} });
    await store.add([delivery(1), delivery(2), delivery(3, 'orders', T + 50), delivery(4, 'orders', T + 40)]);
    const [r1] = await store.claim('payments', T + 100, 1);
    await kill(store, r1!, 'expired');
    await store.claim('orders', T + 100, 1);

    expect(await store.stats()).toEqual({
      durable: store.durable,
      pending: 3,
      deadLetters: 1,
      targets: {
        payments: { pending: 1, deadLetters: 1, oldestCreatedAt: T + 2 },
        orders: { pending: 2, deadLetters: 0, oldestCreatedAt: T + 40 },
      },
    });
  });

  test('targets lists every target with pending deliveries', async () => {
    await store.add([delivery(1), delivery(2, 'orders')]);
    expect((await store.targets()).sort()).toEqual(['orders', 'payments']);
  });

  test('pendingRecords lists what is not yet delivered', async () => {
    await store.add([delivery(1), delivery(2, 'orders')]);
    expect(ids(await store.pendingRecords()).sort()).toEqual(['evt-1', 'evt-2']);
  });

  test('after the wall clock stepped back an hour, a delivery tried "in the future" is due now, not in an hour', async () => {
    const HOUR = 60 * 60 * 1000;
    await store.add([delivery(1), delivery(2)]);
    for (const record of await store.claim('payments', T + 10, 10)) await reschedule(store, tried(record, T + HOUR), T + HOUR + 5_000);
    // The clock now reads T + 1 min: both retries were scheduled 5 s after a try an hour "ahead".
    expect(ids(await store.claim('payments', T + 60_000, 10))).toEqual(['evt-1', 'evt-2']);
  });

  test('a small step back (within the slack) changes nothing: a retry is still due at its time', async () => {
    await store.add([delivery(1)]);
    const [record] = await store.claim('payments', T + 10, 10);
    await reschedule(store, tried(record!, T + 1_000), T + 6_000);
    expect(await store.claim('payments', T + 500, 10)).toEqual([]);
    expect(ids(await store.claim('payments', T + 6_000, 10))).toEqual(['evt-1']);
  });
}

/** `open` gives a fresh, empty store; each test closes it. */
export function settleManyContract(open: () => Promise<OutboxStore> | OutboxStore): void {
  let store: OutboxStore;
  beforeEach(async () => {
    store = await open();
  });
  afterEach(async () => {
    await store.close();
  });

  test('settleMany records each outcome as complete, reschedule and kill would, in one call', async () => {
    await store.add([delivery(1), delivery(2), delivery(3), delivery(4), delivery(5, 'orders')]);
    const [r1, r2, r3, r4] = await store.claim('payments', T + 10, 10);
    await store.settleMany!([
      { kind: 'complete', record: r1! },
      { kind: 'reschedule', record: tried(r2!, T + 20), nextAttemptAt: T + 1000 },
      { kind: 'kill', record: tried(r3!, T + 20, 422), reason: 'refused' },
      { kind: 'kill', record: tried(r4!, T + 20), reason: 'expired' },
    ]);

    expect(ids(await store.pendingRecords())).toEqual(['evt-2', 'evt-5']);
    const dead = await store.deadLetters();
    expect(dead.map((d) => [d.eventId, d.reason, d.attempts, d.status])).toEqual([
      ['evt-3', 'refused', 1, 422],
      ['evt-4', 'expired', 1, 503],
    ]);
    expect(dead[0]).toMatchObject({ id: String(r3!.id), kept: 'outbox', eventId: 'evt-3', body: delivery(3).body, error: 'HTTP 422' });
    expect(await store.claim('payments', T + 999, 10)).toEqual([]);
    const [again] = await store.claim('payments', T + 1000, 10);
    expect(again).toMatchObject({ eventId: 'evt-2', attempts: 1, nextAttemptAt: T + 1000, lastAttemptAt: T + 20, lastStatus: 503 });
    const stats = await store.stats();
    expect(stats).toMatchObject({ pending: 2, deadLetters: 2 });
    expect(stats.targets.payments).toMatchObject({ pending: 1, deadLetters: 2 });
    expect(await store.replay({ eventId: 'evt-3' })).toBe(1);
    expect(ids(await store.claim('payments', Date.now(), 10))).toEqual(['evt-3']);
  });

  test('settleMany of nothing changes nothing; an outcome alone is recorded too', async () => {
    await store.add([delivery(1), delivery(2)]);
    await store.settleMany!([]);
    const [r1, r2] = await store.claim('payments', T + 10, 10);
    await store.settleMany!([{ kind: 'complete', record: r1! }]);
    await complete(store, r2!);
    expect(await store.pendingRecords()).toEqual([]);
    expect((await store.stats()).pending).toBe(0);
  });

  test('a claim of thousands takes them all, oldest first, leased; settled in one call they are gone', async () => {
    const many = Array.from({ length: 3000 }, (_, i) => delivery(i + 1));
    await store.add(many);
    const first = await store.claim('payments', T + 10_000, 2500);
    expect(first).toHaveLength(2500);
    expect(ids(first)).toEqual(ids(many.slice(0, 2500)));
    const rest = await store.claim('payments', T + 10_000, 2500);
    expect(ids(rest)).toEqual(ids(many.slice(2500)));
    expect(await store.claim('payments', T + 10_000, 2500)).toEqual([]);
    expect(await store.nextDueAt('payments')).toBeUndefined();

    await store.settleMany!([...first, ...rest].map((record) => ({ kind: 'complete' as const, record })));
    expect(await store.pendingRecords()).toEqual([]);
    expect((await store.stats()).pending).toBe(0);
  });
}
