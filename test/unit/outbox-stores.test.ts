import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import winston from 'winston';
import { OutboxFullError, OutboxUnavailableError } from '../../src/errors/index.js';
import type { NewDelivery, OutboxRecord, OutboxStore } from '../../src/send/outbox-store.js';
import { MemoryOutbox } from '../../src/backends/memory/outbox.js';
import { SqliteOutbox } from '../../src/backends/sqlite/outbox.js';
import { complete, kill, outboxStoreContract, reschedule, settleManyContract } from '../helpers/outbox-contract.js';

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

// The contract every outbox store keeps (PostgreSQL runs it too: test/postgres/outbox-settle.test.ts).
describe.each<[string, () => OutboxStore]>([
  ['MemoryOutbox', () => new MemoryOutbox(10_000, 1000, silent())],
  ['SqliteOutbox', () => new SqliteOutbox(tempFile())],
])('%s (the outbox store contract)', (_name, open) => {
  outboxStoreContract(open);
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

    await complete(store, claimed[0]!); // a delivered record frees its place
    await store.add([delivery(4)]);
    expect((await store.stats()).pending).toBe(3);
  });

  test('dead letters beyond maxDeadLetters are evicted oldest first, each with an error log line (no payload)', async () => {
    const logger = silent();
    const error = jest.spyOn(logger, 'error');
    const store = new MemoryOutbox(100, 2, logger);
    await store.add([delivery(1), delivery(2), delivery(3)]);
    for (const r of await store.claim('payments', T + 10, 10)) await kill(store, r, 'refused');

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
    await complete(store, first!);
    await kill(store, second!, 'refused');
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
    await reschedule(first, tried(r1!, T + 10), T + 5000);
    await kill(first, tried(r2!, T + 10, 410), 'refused');
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
      await kill(service, r1!, 'expired');
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

  test("a replay by an operator handle is claimable even behind the service's last claim (records due later than the replay)", async () => {
    const file = tempFile();
    const service = new SqliteOutbox(file);
    try {
      const later = Date.now() + 60_000;
      await service.add([delivery(1), delivery(2, 'payments', later)]);
      const [r1, r2] = await service.claim('payments', later, 10);
      expect(r2).toMatchObject({ eventId: 'evt-2' });
      await kill(service, r1!, 'expired');
      expect(await service.deadLetters()).toHaveLength(1);

      const operator = new SqliteOutbox(file, { resetLeases: false });
      expect(await operator.replay('all')).toBe(1); // due now: before evt-2, the last record the service claimed
      await operator.close();

      expect(ids(await service.claim('payments', later, 10))).toEqual(['evt-1']);
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
        await complete(store, done!);
        await reschedule(store, tried(retried!, T + 20), T + 30);
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
        await kill(store, (await store.claim('payments', T + 10, 10))[0]!, 'refused');
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
