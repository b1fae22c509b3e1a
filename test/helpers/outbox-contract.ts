// Contract tests of `settleMany` and of large claims, the same for every outbox store: the
// memory and SQLite stores (test/unit/outbox-stores.test.ts) and PostgreSQL
// (test/postgres/outbox-settle.test.ts). Every call is awaited, so stores that answer at once and
// stores that answer with promises run the same tests.
import type { NewDelivery, OutboxRecord, OutboxStore } from '../../src/send/outbox-store.js';

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

  test('settleMany of nothing changes nothing; one outcome is the same as its single call', async () => {
    await store.add([delivery(1), delivery(2)]);
    await store.settleMany!([]);
    const [r1, r2] = await store.claim('payments', T + 10, 10);
    await store.settleMany!([{ kind: 'complete', record: r1! }]);
    await store.complete(r2!.id);
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
