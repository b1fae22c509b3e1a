import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import winston from 'winston';
import { OutboxFullError, OutboxUnavailableError } from '../../src/errors/index.js';
import type { NewDelivery, OutboxRecord, OutboxStore } from '../../src/send/outbox-store.js';
import { MemoryOutbox } from '../../src/backends/memory/outbox.js';
import { SqliteOutbox } from '../../src/backends/sqlite/outbox.js';
import { settleManyContract } from '../helpers/outbox-contract.js';

const T = 1_700_000_000_000;

let dir: string;
let fileCounter = 0;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'events-outbox-test-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});
const tempFile = () => path.join(dir, `outbox-${++fileCounter}.db`);

function delivery(n: number, target = 'payments', createdAt = T + n): NewDelivery {
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

const ids = (records: readonly { eventId?: string }[]) => records.map((r) => r.eventId);

/** What the dispatcher does to a record after a failed try. */
function tried(record: OutboxRecord, at: number, status = 503): OutboxRecord {
  record.attempts += 1;
  record.lastAttemptAt = at;
  record.lastStatus = status;
  record.lastError = `HTTP ${status}`;
  return record;
}

const silent = () => winston.createLogger({ silent: true });

async function waitUntil(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const stores: Array<[string, () => MemoryOutbox | SqliteOutbox]> = [
  ['MemoryOutbox', () => new MemoryOutbox(1000, 1000, silent())],
  ['SqliteOutbox', () => new SqliteOutbox(tempFile())],
];

describe.each(stores)('%s (shared behaviour)', (_name, open) => {
  let store: MemoryOutbox | SqliteOutbox;
  beforeEach(() => {
    store = open();
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
    await store.reschedule(tried(record!, T + 10), T + 1000);

    expect(await store.claim('payments', T + 999, 10)).toEqual([]);
    expect(await store.nextDueAt('payments')).toBe(T + 1000);
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
    await store.reschedule(tried(r1!, T + 10), T + 3000);
    await store.reschedule(tried(r2!, T + 10), T + 1000);
    await store.reschedule(tried(r3!, T + 10), T + 2000);
    expect(await store.nextDueAt('payments')).toBe(T + 1000);
    expect(ids(await store.claim('payments', T + 2500, 10))).toEqual(['evt-2', 'evt-3']);
    expect(ids(await store.claim('payments', T + 3000, 10))).toEqual(['evt-1']);
  });

  test('nextDueAt is the earliest unleased record, undefined when all are leased or done', async () => {
    await store.add([delivery(1), delivery(2)]);
    expect(await store.nextDueAt('payments')).toBe(T + 1);
    const claimed = await store.claim('payments', T + 10, 10);
    expect(await store.nextDueAt('payments')).toBeUndefined();
    for (const r of claimed) await store.complete(r.id);
    expect(await store.nextDueAt('payments')).toBeUndefined();
  });

  test('the very next claim, in the same turn, sees every outcome and release recorded before it', async () => {
    await store.add([delivery(1), delivery(2), delivery(3)]);
    const [r1, r2, r3] = await store.claim('payments', T + 10, 10);
    await store.complete(r1!.id);
    await store.kill(r2!, 'refused');
    await store.reschedule(tried(r3!, T + 10), T + 20);
    expect(ids(await store.claim('payments', T + 20, 10))).toEqual(['evt-3']);
    await store.reschedule(tried(r3!, T + 30), T + 60_000);
    await store.release('payments', T + 30, T + 40);
    expect(ids(await store.claim('payments', T + 40, 10))).toEqual(['evt-3']);
    expect(await store.claim('payments', T + 40, 10)).toEqual([]);
  });

  test('claimProbe leases the record due soonest, due or not, and only once', async () => {
    await store.add([delivery(1), delivery(2)]);
    const [r1, r2] = await store.claim('payments', T + 10, 10);
    await store.reschedule(tried(r1!, T + 10), T + 60_000);
    await store.reschedule(tried(r2!, T + 10), T + 30_000);

    expect(await store.claim('payments', T + 10, 10)).toEqual([]);
    expect(await store.claimProbe('payments')).toMatchObject({ eventId: 'evt-2', attempts: 1 });
    expect(await store.claim('payments', T + 30_000, 10)).toEqual([]);
    expect(await store.claimProbe('payments')).toMatchObject({ eventId: 'evt-1' });
    expect(await store.claimProbe('payments')).toBeUndefined();
    expect(await store.claimProbe('nobody')).toBeUndefined();
  });

  test('complete removes a delivery for good', async () => {
    await store.add([delivery(1), delivery(2)]);
    const [r1] = await store.claim('payments', T + 10, 1);
    await store.complete(r1!.id);
    expect(ids(await store.pendingRecords())).toEqual(['evt-2']);
    expect((await store.stats()).pending).toBe(1);
    expect(await store.deadLetters()).toEqual([]);
  });

  test('kill makes a dead letter with its reason, out of the pending set', async () => {
    await store.add([delivery(1), delivery(2), delivery(3, 'orders')]);
    const [r1, r2] = await store.claim('payments', T + 10, 10);
    const [r3] = await store.claim('orders', T + 10, 10);
    const before = Date.now();
    await store.kill(tried(r1!, T + 10, 400), 'refused');
    await store.kill(tried(r2!, T + 10), 'expired');
    await store.kill(tried(r3!, T + 10, 404), 'refused');

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
    for (const r of claimed) await store.kill(tried(r, T + 10, 400), 'refused');

    const woken: string[] = [];
    store.onWork((target) => woken.push(target));
    const before = Date.now();
    expect(await store.replay({ eventId: 'evt-2' })).toBe(1);
    expect(woken).toEqual(['payments']);
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
    await store.kill(r1!, 'refused');
    expect(await store.replay({ target: 'orders' })).toBe(0);
    expect(await store.replay(['999999', 'not-an-id'])).toBe(0);
    expect(await store.deadLetters()).toHaveLength(1);
  });

  test('discard deletes the selected dead letters for good: by id, by filter, all', async () => {
    await store.add([delivery(1), delivery(2), delivery(3, 'orders'), delivery(4, 'orders')]);
    for (const target of ['payments', 'orders']) {
      for (const r of await store.claim(target, T + 10, 10)) await store.kill(tried(r, T + 10, 400), 'refused');
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

  test('release makes what failed since the outage began due now, and nothing else', async () => {
    await store.add([delivery(1), delivery(2), delivery(3), delivery(4, 'orders')]);
    const [r1, r2, r3] = await store.claim('payments', T + 10, 10);
    const [r4] = await store.claim('orders', T + 10, 10);
    await store.reschedule(tried(r1!, T + 100), T + 1e6); // failed during the outage
    await store.reschedule(tried(r2!, T + 200), T + 2e6); // failed during the outage
    await store.reschedule(tried(r3!, T + 50), T + 3e6); // failed before it
    await store.reschedule(tried(r4!, T + 100), T + 1e6); // another target

    await store.release('payments', T + 100, T + 300);

    expect(ids(await store.claim('payments', T + 300, 10)).sort()).toEqual(['evt-1', 'evt-2']);
    expect(await store.nextDueAt('payments')).toBe(T + 3e6);
    expect(await store.claim('orders', T + 300, 10)).toEqual([]);
    expect(await store.nextDueAt('orders')).toBe(T + 1e6);
  });

  test('stats count pending (leased included) and dead letters per target, with the oldest pending', async () => {
    expect(await store.stats()).toEqual({ durable: store.durable, pending: 0, deadLetters: 0, targets: {} });
    await store.add([delivery(1), delivery(2), delivery(3, 'orders', T + 50), delivery(4, 'orders', T + 40)]);
    const [r1] = await store.claim('payments', T + 100, 1);
    await store.kill(r1!, 'expired');
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
    for (const record of await store.claim('payments', T + 10, 10)) await store.reschedule(tried(record, T + HOUR), T + HOUR + 5_000);
    // The clock now reads T + 1 min: both retries were scheduled 5 s after a try an hour "ahead".
    expect(ids(await store.claim('payments', T + 60_000, 10))).toEqual(['evt-1', 'evt-2']);
  });

  test('a small step back (within the slack) changes nothing: a retry is still due at its time', async () => {
    await store.add([delivery(1)]);
    const [record] = await store.claim('payments', T + 10, 10);
    await store.reschedule(tried(record!, T + 1_000), T + 6_000);
    expect(await store.claim('payments', T + 500, 10)).toEqual([]);
    expect(ids(await store.claim('payments', T + 6_000, 10))).toEqual(['evt-1']);
  });
});

describe.each<[string, () => OutboxStore]>([
  ['MemoryOutbox', () => new MemoryOutbox(10_000, 1000, silent())],
  ['SqliteOutbox', () => new SqliteOutbox(tempFile())],
])('%s (settleMany and large claims: the contract shared with PostgreSQL)', (_name, open) => {
  settleManyContract(open);
});

describe('MemoryOutbox', () => {
  test('add beyond maxPending rejects with OutboxFullError and loses nothing already stored', async () => {
    const store = new MemoryOutbox(3, 10, silent());
    await store.add([delivery(1), delivery(2)]);

    const full = store.add([delivery(3), delivery(4)]);
    await expect(full).rejects.toThrow(OutboxFullError);
    await expect(full).rejects.toMatchObject({ limit: 3, message: expect.stringContaining('EVENTS_OUTBOX_PATH') });

    expect((await store.stats()).pending).toBe(2);
    expect(ids(await store.pendingRecords())).toEqual(['evt-1', 'evt-2']);

    await store.add([delivery(3)]); // exactly at the limit is fine
    await expect(store.add([delivery(4)])).rejects.toThrow(OutboxFullError);
    const claimed = await store.claim('payments', T + 100, 10);
    expect(ids(claimed)).toEqual(['evt-1', 'evt-2', 'evt-3']);

    await store.complete(claimed[0]!.id); // a delivered record frees its place
    await store.add([delivery(4)]);
    expect((await store.stats()).pending).toBe(3);
  });

  test('dead letters beyond maxDeadLetters are evicted oldest first, each with an error log line (no payload)', async () => {
    const logger = silent();
    const error = jest.spyOn(logger, 'error');
    const store = new MemoryOutbox(100, 2, logger);
    await store.add([delivery(1), delivery(2), delivery(3)]);
    for (const r of await store.claim('payments', T + 10, 10)) await store.kill(r, 'refused');

    expect(ids(await store.deadLetters())).toEqual(['evt-2', 'evt-3']);
    expect(error).toHaveBeenCalledTimes(1);
    expect(error).toHaveBeenCalledWith(
      expect.stringContaining('evicted'),
      expect.objectContaining({ eventId: 'evt-1', target: 'payments' }),
    );
    expect((error.mock.calls[0] as unknown[])[1]).not.toHaveProperty('body'); // payloads never above debug
  });

  test('is not durable', async () => {
    expect(new MemoryOutbox(1, 1, silent()).durable).toBe(false);
  });

  test('maxPending is per target: a full target refuses its events (naming it), a healthy target still accepts', async () => {
    const store = new MemoryOutbox(2, 10, silent());
    await store.add([delivery(1, 'dead'), delivery(2, 'dead')]);

    await store.add([delivery(3, 'healthy')]); // a full "dead" does not block "healthy"
    const both = store.add([delivery(4, 'dead'), delivery(4, 'healthy')]);
    await expect(both).rejects.toThrow(OutboxFullError);
    await expect(both).rejects.toMatchObject({ target: 'dead', unit: 'deliveries', limit: 2, message: expect.stringContaining('"dead"') });
    // Refused as a whole: nothing of event 4 was recorded, for any target.
    expect(ids(await store.pendingRecords()).sort()).toEqual(['evt-1', 'evt-2', 'evt-3']);
    await store.add([delivery(5, 'healthy')]);
    expect((await store.stats()).targets.healthy!.pending).toBe(2);
  });

  test('maxPendingBytes bounds the bytes each target holds; delivered or dead records free theirs', async () => {
    const big = (n: number, target: string): NewDelivery => ({ ...delivery(n, target), body: 'x'.repeat(1000) });
    const store = new MemoryOutbox(1000, 10, silent(), 2500);
    await store.add([big(1, 'dead'), big(2, 'dead')]);
    await expect(store.add([big(3, 'dead')])).rejects.toMatchObject({ name: 'OutboxFullError', target: 'dead', unit: 'bytes', limit: 2500 });
    await store.add([big(4, 'healthy'), big(5, 'healthy')]);

    const [first, second] = await store.claim('dead', T + 10, 10);
    await store.complete(first!.id);
    await store.kill(second!, 'refused');
    await store.add([big(6, 'dead'), big(7, 'dead')]);
    expect((await store.stats()).targets.dead!.pending).toBe(2);
  });
});

describe('SqliteOutbox', () => {
  test('is durable', async () => {
    const store = new SqliteOutbox(tempFile());
    expect(store.durable).toBe(true);
    await store.close();
  });

  test('a burst of 1000 add() calls in one tick all resolve once committed, and the rows are in the file', async () => {
    const file = tempFile();
    const store = new SqliteOutbox(file);
    const reader = new Database(file, { readonly: true });
    const count = () => (reader.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n;
    try {
      const settled: number[] = [];
      const adds = Array.from({ length: 1000 }, (_, i) =>
        store.add([delivery(i + 1)]).then(() => settled.push(count())),
      );
      expect(count()).toBe(0); // nothing is written synchronously: the burst waits for one group commit
      await Promise.all(adds);
      // Every caller resolved after the whole burst was visible to another connection, i.e. committed.
      expect(settled).toHaveLength(1000);
      expect(Math.min(...settled)).toBe(1000);
    } finally {
      reader.close();
      await store.close();
    }

    const reopened = new SqliteOutbox(file);
    try {
      const claimed = await reopened.claim('payments', T + 10_000, 5000);
      expect(claimed).toHaveLength(1000);
      expect(claimed[0]!.eventId).toBe('evt-1');
      expect(claimed[999]!.eventId).toBe('evt-1000');
    } finally {
      await reopened.close();
    }
  });

  test('a burst in one tick is one transaction: all of it commits or none of it', async () => {
    const file = tempFile();
    const store = new SqliteOutbox(file);
    try {
      const adds = Array.from({ length: 999 }, (_, i) => store.add([delivery(i + 1)]));
      // One delivery the database refuses (NOT NULL body) fails the burst it shares a commit with...
      adds.push(store.add([{ ...delivery(1000), body: null as unknown as string }]));
      const results = await Promise.allSettled(adds);
      expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1000);
      expect((await store.stats()).pending).toBe(0);

      // ...and the next tick's burst is a transaction of its own.
      await Promise.all([store.add([delivery(2001)]), store.add([delivery(2002)])]);
      expect(ids(await store.pendingRecords())).toEqual(['evt-2001', 'evt-2002']);
    } finally {
      await store.close();
    }
  });

  test('pending records, try history and dead letters survive close and reopen', async () => {
    const file = tempFile();
    const first = new SqliteOutbox(file);
    await first.add([delivery(1), delivery(2), delivery(3, 'orders')]);
    const [r1, r2] = await first.claim('payments', T + 10, 10);
    await first.reschedule(tried(r1!, T + 10), T + 5000);
    await first.kill(tried(r2!, T + 10, 410), 'refused');
    await first.close();

    const second = new SqliteOutbox(file);
    try {
      expect(await second.stats()).toMatchObject({ pending: 2, deadLetters: 1 });
      expect(await second.claim('payments', T + 4999, 10)).toEqual([]);
      expect(await second.claim('payments', T + 5000, 10)).toEqual([
        expect.objectContaining({ eventId: 'evt-1', attempts: 1, lastStatus: 503, lastError: 'HTTP 503', nextAttemptAt: T + 5000 }),
      ]);
      expect(await second.deadLetters()).toEqual([
        expect.objectContaining({ eventId: 'evt-2', reason: 'refused', status: 410, body: delivery(2).body }),
      ]);
      expect(ids(await second.claim('orders', T + 10, 10))).toEqual(['evt-3']);
    } finally {
      await second.close();
    }
  });

  test('leases die with the process: a claim writes nothing to the file, and a restart resumes what was claimed', async () => {
    const file = tempFile();
    const crashed = new SqliteOutbox(file);
    await crashed.add([delivery(1), delivery(2)]);
    expect(await crashed.claim('payments', T + 10, 10)).toHaveLength(2);
    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.prepare('SELECT COUNT(*) AS n FROM outbox WHERE leased = 0').get()).toEqual({ n: 2 });
    } finally {
      raw.close();
    }
    await crashed.close(); // never settled, as after a crash

    const restarted = new SqliteOutbox(file);
    try {
      expect(ids(await restarted.claim('payments', T + 10, 10))).toEqual(['evt-1', 'evt-2']);
    } finally {
      await restarted.close();
    }
  });

  test('leases an earlier version left in the file are reset when the owner opens it, but not with { resetLeases: false }', async () => {
    const file = tempFile();
    const first = new SqliteOutbox(file);
    await first.add([delivery(1)]);
    await first.close();
    const raw = new Database(file);
    raw.exec('UPDATE outbox SET leased = 1');
    raw.close();

    const operator = new SqliteOutbox(file, { resetLeases: false });
    expect(await operator.claim('payments', T + 10, 10)).toEqual([]);
    expect(await operator.nextDueAt('payments')).toBeUndefined();
    expect((await operator.stats()).pending).toBe(1);
    await operator.close();

    const restarted = new SqliteOutbox(file);
    try {
      expect(ids(await restarted.claim('payments', T + 10, 10))).toEqual(['evt-1']);
    } finally {
      await restarted.close();
    }
  });

  test('a replay by an operator handle beside the running service becomes claimable by the service', async () => {
    const file = tempFile();
    const service = new SqliteOutbox(file);
    try {
      await service.add([delivery(1)]);
      const [r1] = await service.claim('payments', T + 10, 10);
      await service.kill(r1!, 'expired');
      expect(await service.deadLetters()).toHaveLength(1);

      const operator = new SqliteOutbox(file, { resetLeases: false });
      expect(await operator.replay('all')).toBe(1);
      await operator.close();

      expect(await service.targets()).toEqual(['payments']);
      expect(ids(await service.claim('payments', Date.now(), 10))).toEqual(['evt-1']);
    } finally {
      await service.close();
    }
  });

  test('a file that is not a database, or a directory, is a ConfigError naming the path and the variable', async () => {
    const notADatabase = path.join(dir, 'not-a-database.db');
    fs.writeFileSync(notADatabase, 'this is not a SQLite file, but it is long enough to have a header of sorts. '.repeat(20));
    for (const file of [notADatabase, dir]) {
      let error: unknown;
      try {
        new SqliteOutbox(file);
      } catch (caught) {
        error = caught;
      }
      expect(error).toMatchObject({ name: 'ConfigError', variable: 'EVENTS_OUTBOX_PATH' });
      expect((error as Error).message).toContain(file);
      expect((error as Error).message).toContain('EVENTS_OUTBOX_PATH');
    }
  });

  test('one owner per file: a second owner fails at once naming the path; an operator handle works beside it; closing frees it', async () => {
    const file = tempFile();
    const owner = new SqliteOutbox(file);
    expect(() => new SqliteOutbox(file)).toThrow(
      expect.objectContaining({ name: 'ConfigError', variable: 'EVENTS_OUTBOX_PATH', message: expect.stringContaining(file) }),
    );
    const operator = new SqliteOutbox(file, { resetLeases: false });
    expect((await operator.stats()).pending).toBe(0);
    await operator.close();
    await owner.close();
    const next = new SqliteOutbox(file);
    await next.close();
  });

  describe('while another connection holds the write lock', () => {
    let file: string;
    let other: Database.Database;
    beforeEach(() => {
      file = tempFile();
    });
    afterEach(() => {
      if (other?.inTransaction) other.exec('COMMIT');
      if (other?.open) other.close();
    });
    const lockIt = () => {
      other = new Database(file);
      other.exec('BEGIN IMMEDIATE');
    };

    test('a completion that cannot be written stays queued and lands once the lock is gone (the record is not stuck leased)', async () => {
      const logs = { error: jest.fn(), info: jest.fn(), warn: jest.fn(), debug: jest.fn() };
      const store = new SqliteOutbox(file, { logger: logs as unknown as winston.Logger });
      try {
        await store.add([delivery(1), delivery(2)]);
        const [done, retried] = await store.claim('payments', T + 10, 10);
        lockIt();
        await store.complete(done!.id);
        await store.reschedule(tried(retried!, T + 20), T + 30);
        await new Promise((resolve) => setTimeout(resolve, 100)); // the flush ran and failed
        expect(logs.error).toHaveBeenCalledTimes(1);
        expect(logs.error.mock.calls[0]![1]).toMatchObject({ path: file, hint: expect.stringContaining('Another process holds a write lock') });
        // A claim writes nothing, so it still works; what is settled but not yet written stays leased.
        expect(await store.claim('payments', T + 100, 10)).toEqual([]);
        other.exec('COMMIT');
        await waitUntil(() => logs.info.mock.calls.length > 0);
        expect(logs.info).toHaveBeenCalledWith('outbox writable again; delivery resumes', { path: file });
        expect(logs.error).toHaveBeenCalledTimes(1); // one line per state change, not one per retry
        expect(ids(await store.pendingRecords())).toEqual(['evt-2']);
        expect(ids(await store.claim('payments', T + 100, 10))).toEqual(['evt-2']);
      } finally {
        await store.close();
      }
    });

    test('settleMany that cannot be written stays queued with the emits of its turn, its records leased, and lands with them', async () => {
      const store = new SqliteOutbox(file, { logger: silent() });
      try {
        await store.add([delivery(1), delivery(2), delivery(3)]);
        const [r1, r2, r3] = await store.claim('payments', T + 10, 10);
        lockIt();
        const emitted = store.add([delivery(4)]);
        await store.settleMany([
          { kind: 'complete', record: r1! },
          { kind: 'reschedule', record: tried(r2!, T + 20), nextAttemptAt: T + 30 },
          { kind: 'kill', record: tried(r3!, T + 20, 400), reason: 'refused' },
        ]);
        await new Promise((resolve) => setTimeout(resolve, 100)); // the flush ran and failed
        // Nothing of the turn is in the file yet, and nothing settled is handed out again.
        expect(ids(await store.pendingRecords())).toEqual(['evt-1', 'evt-2', 'evt-3']);
        expect(await store.claim('payments', T + 100, 10)).toEqual([]);
        other.exec('COMMIT');
        await emitted;
        expect(ids(await store.pendingRecords())).toEqual(['evt-2', 'evt-4']);
        expect(ids(await store.deadLetters())).toEqual(['evt-3']);
        expect(ids(await store.claim('payments', T + 100, 10))).toEqual(['evt-4', 'evt-2']); // due order
      } finally {
        await store.close();
      }
    });

    test('a replay that cannot write throws OutboxUnavailableError saying what to do, and the dead letter stays', async () => {
      const store = new SqliteOutbox(file);
      try {
        await store.add([delivery(1)]);
        await store.kill((await store.claim('payments', T + 10, 10))[0]!, 'refused');
        expect(await store.deadLetters()).toHaveLength(1);
        lockIt();
        await expect(store.replay('all')).rejects.toThrow(
          expect.objectContaining({ name: 'OutboxUnavailableError', message: expect.stringContaining('Another process holds a write lock') }),
        );
        other.exec('COMMIT');
        expect(await store.deadLetters()).toHaveLength(1);
      } finally {
        await store.close();
      }
    });

    test('add waits for the group commit, then rejects with OutboxUnavailableError past writeWaitMs and records nothing', async () => {
      const store = new SqliteOutbox(file, { writeWaitMs: 150 });
      try {
        lockIt();
        const refused = store.add([delivery(1)]);
        await expect(refused).rejects.toThrow(OutboxUnavailableError);
        await expect(refused).rejects.toMatchObject({ where: file, message: expect.stringContaining('locked') });
        const waiting = store.add([delivery(2)]);
        other.exec('COMMIT'); // freed within its wait: it is recorded
        await expect(waiting).resolves.toBeUndefined();
        expect(ids(await store.pendingRecords())).toEqual(['evt-2']);
      } finally {
        await store.close();
      }
    });
  });

  test('a file that cannot be opened is a ConfigError naming the variable', async () => {
    expect(() => new SqliteOutbox(path.join(dir, 'no-such-dir', 'outbox.db'))).toThrow(
      expect.objectContaining({ name: 'ConfigError', variable: 'EVENTS_OUTBOX_PATH' }),
    );
  });
});
