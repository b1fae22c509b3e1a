import type { Statement } from 'better-sqlite3';
import type {
  DeadLetter,
  DeadLetterFilter,
  NewDelivery,
  OutboxRecord,
  OutboxStats,
  OutboxStore,
} from '../send/outbox-store.js';
import { type Database, openDatabase } from './sqlite.js';

const COLUMNS = `id, event_id, type, source, target, body, created_at, attempts, next_attempt_at,
  last_attempt_at, last_status, last_error`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
  body TEXT NOT NULL, created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
  last_attempt_at INTEGER, last_status INTEGER, last_error TEXT,
  leased INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (target, leased, next_attempt_at, id);
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
  body TEXT NOT NULL, created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL,
  last_attempt_at INTEGER, last_status INTEGER, last_error TEXT,
  dead_at INTEGER NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_event ON dead_letters (event_id);
`;

interface Row {
  id: number;
  event_id: string;
  type: string;
  source: string;
  target: string;
  body: string;
  created_at: number;
  attempts: number;
  next_attempt_at: number;
  last_attempt_at: number | null;
  last_status: number | null;
  last_error: string | null;
  dead_at?: number;
  reason?: string;
}

/**
 * The durable outbox, in SQLite. `add` is a group commit: every delivery added in one turn of
 * the event loop goes in one transaction, and each caller resolves once it is committed.
 * Completions and reschedules ride in the same batched transactions. One process per file:
 * leases are reset when the file is opened, so a restart after a crash resumes everything.
 */
export class SqliteOutbox implements OutboxStore {
  readonly durable = true;
  private readonly db: Database;
  private readonly insert: Statement;
  private readonly claimDue: Statement;
  private readonly claimFirst: Statement;
  private readonly deleteOne: Statement;
  private readonly update: Statement;
  private readonly minDue: Statement;
  private readonly runWrites: (writes: Array<() => void>) => void;
  private writes: Array<() => void> = [];
  private waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  private flushScheduled = false;

  /**
   * @param options.resetLeases Forget leases left by a crashed process (the owning service does
   *   this at start); operator tools opening the file beside a running service do not.
   */
  constructor(path: string, options: { resetLeases?: boolean; variable?: string } = {}) {
    this.db = openDatabase(path, options.variable ?? 'EVENTS_OUTBOX_PATH');
    this.db.exec(SCHEMA);
    if (options.resetLeases ?? true) this.db.exec('UPDATE outbox SET leased = 0 WHERE leased = 1');
    this.insert = this.db.prepare(
      `INSERT INTO outbox (event_id, type, source, target, body, created_at, next_attempt_at)
       VALUES (@eventId, @type, @source, @target, @body, @createdAt, @createdAt)`,
    );
    this.claimDue = this.db.prepare(
      `UPDATE outbox SET leased = 1 WHERE id IN (
         SELECT id FROM outbox WHERE target = ? AND leased = 0 AND next_attempt_at <= ?
         ORDER BY next_attempt_at, id LIMIT ?)
       RETURNING ${COLUMNS}`,
    );
    this.claimFirst = this.db.prepare(
      `UPDATE outbox SET leased = 1 WHERE id IN (
         SELECT id FROM outbox WHERE target = ? AND leased = 0 ORDER BY next_attempt_at, id LIMIT 1)
       RETURNING ${COLUMNS}`,
    );
    this.deleteOne = this.db.prepare('DELETE FROM outbox WHERE id = ?');
    this.minDue = this.db.prepare('SELECT MIN(next_attempt_at) AS due FROM outbox WHERE target = ? AND leased = 0');
    this.runWrites = this.db.transaction((writes: Array<() => void>) => {
      for (const write of writes) write();
    });
    this.update = this.db.prepare(
      `UPDATE outbox SET leased = 0, attempts = @attempts, next_attempt_at = @nextAttemptAt,
         last_attempt_at = @lastAttemptAt, last_status = @lastStatus, last_error = @lastError WHERE id = @id`,
    );
  }

  add(deliveries: readonly NewDelivery[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.writes.push(() => {
        for (const delivery of deliveries) this.insert.run(delivery);
      });
      this.waiters.push({ resolve, reject });
      this.scheduleFlush();
    });
  }

  claim(target: string, now: number, limit: number): OutboxRecord[] {
    this.flushNow(); // reads see every earlier complete/reschedule/kill, as the interface promises
    return (this.claimDue.all(target, now, limit) as Row[]).map(toRecord).sort(byDue);
  }

  claimProbe(target: string): OutboxRecord | undefined {
    this.flushNow();
    const row = this.claimFirst.get(target) as Row | undefined;
    return row && toRecord(row);
  }

  complete(id: number): void {
    this.defer(() => this.deleteOne.run(id));
  }

  reschedule(record: OutboxRecord, nextAttemptAt: number): void {
    record.nextAttemptAt = nextAttemptAt;
    const params = {
      id: record.id,
      attempts: record.attempts,
      nextAttemptAt,
      lastAttemptAt: record.lastAttemptAt ?? null,
      lastStatus: record.lastStatus ?? null,
      lastError: record.lastError ?? null,
    };
    this.defer(() => this.update.run(params));
  }

  kill(record: OutboxRecord, reason: DeadLetter['reason']): void {
    const deadAt = Date.now();
    this.defer(() => {
      this.db
        .prepare(
          `INSERT OR REPLACE INTO dead_letters (${COLUMNS}, dead_at, reason)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          record.id,
          record.eventId,
          record.type,
          record.source,
          record.target,
          record.body,
          record.createdAt,
          record.attempts,
          record.nextAttemptAt,
          record.lastAttemptAt ?? null,
          record.lastStatus ?? null,
          record.lastError ?? null,
          deadAt,
          reason,
        );
      this.deleteOne.run(record.id);
    });
  }

  release(target: string, since: number, now: number): void {
    this.flushNow();
    this.db
      .prepare('UPDATE outbox SET next_attempt_at = ? WHERE target = ? AND leased = 0 AND last_attempt_at >= ?')
      .run(now, target, since);
  }

  nextDueAt(target: string): number | undefined {
    this.flushNow();
    const row = this.minDue.get(target) as { due: number | null };
    return row.due ?? undefined;
  }

  targets(): string[] {
    this.flushNow();
    return (this.db.prepare('SELECT DISTINCT target FROM outbox').all() as { target: string }[]).map((r) => r.target);
  }

  stats(): OutboxStats {
    this.flushNow();
    const stats: OutboxStats = { durable: true, pending: 0, deadLetters: 0, targets: {} };
    const pending = this.db
      .prepare('SELECT target, COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox GROUP BY target')
      .all() as { target: string; n: number; oldest: number }[];
    for (const row of pending) {
      stats.pending += row.n;
      stats.targets[row.target] = { pending: row.n, deadLetters: 0, oldestCreatedAt: row.oldest };
    }
    const dead = this.db.prepare('SELECT target, COUNT(*) AS n FROM dead_letters GROUP BY target').all() as {
      target: string;
      n: number;
    }[];
    for (const row of dead) {
      stats.deadLetters += row.n;
      (stats.targets[row.target] ??= { pending: 0, deadLetters: 0 }).deadLetters = row.n;
    }
    return stats;
  }

  deadLetters(filter?: DeadLetterFilter): DeadLetter[] {
    this.flushNow();
    const { where, params } = whereOf(filter);
    return (this.db.prepare(`SELECT * FROM dead_letters ${where} ORDER BY id`).all(...params) as Row[]).map(toDeadLetter);
  }

  replay(filter: DeadLetterFilter | 'all', now: number): OutboxRecord[] {
    this.flushNow();
    const { where, params } = whereOf(filter === 'all' ? undefined : filter);
    return this.db.transaction(() => {
      const rows = this.db.prepare(`DELETE FROM dead_letters ${where} RETURNING ${COLUMNS}`).all(...params) as Row[];
      const insert = this.db.prepare(
        `INSERT INTO outbox (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const row of rows) {
        insert.run(row.id, row.event_id, row.type, row.source, row.target, row.body, now, row.attempts, now,
          row.last_attempt_at, row.last_status, row.last_error);
      }
      return rows.map((row) => ({ ...toRecord(row), createdAt: now, nextAttemptAt: now }));
    })();
  }

  pendingRecords(): OutboxRecord[] {
    this.flushNow();
    return (this.db.prepare(`SELECT ${COLUMNS} FROM outbox ORDER BY id`).all() as Row[]).map(toRecord);
  }

  async close(): Promise<void> {
    this.flushNow();
    if (this.db.open) this.db.close();
  }

  private defer(write: () => void): void {
    this.writes.push(write);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flushNow());
  }

  /** Runs every buffered write in one transaction, then settles the callers waiting on it. */
  private flushNow(): void {
    this.flushScheduled = false;
    if (this.writes.length === 0) return;
    if (!this.db.open) {
      // After close, a late write is dropped: its record stays leased on disk and is redelivered on reopen.
      const waiters = this.waiters;
      this.writes = [];
      this.waiters = [];
      for (const waiter of waiters) waiter.reject(new Error('the outbox is closed'));
      return;
    }
    const writes = this.writes;
    const waiters = this.waiters;
    this.writes = [];
    this.waiters = [];
    try {
      this.runWrites(writes);
    } catch (error) {
      for (const waiter of waiters) waiter.reject(error);
      return;
    }
    for (const waiter of waiters) waiter.resolve();
  }
}

function whereOf(filter: DeadLetterFilter | undefined): { where: string; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  if (filter?.ids) {
    clauses.push(`id IN (${filter.ids.map(() => '?').join(', ') || 'NULL'})`);
    params.push(...filter.ids);
  }
  if (filter?.eventId !== undefined) {
    clauses.push('event_id = ?');
    params.push(filter.eventId);
  }
  if (filter?.target !== undefined) {
    clauses.push('target = ?');
    params.push(filter.target);
  }
  return { where: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
}

function toRecord(row: Row): OutboxRecord {
  return {
    id: row.id,
    eventId: row.event_id,
    type: row.type,
    source: row.source,
    target: row.target,
    body: row.body,
    createdAt: row.created_at,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    ...(row.last_attempt_at !== null ? { lastAttemptAt: row.last_attempt_at } : {}),
    ...(row.last_status !== null ? { lastStatus: row.last_status } : {}),
    ...(row.last_error !== null ? { lastError: row.last_error } : {}),
  };
}

function toDeadLetter(row: Row): DeadLetter {
  return { ...toRecord(row), deadAt: row.dead_at!, reason: row.reason as DeadLetter['reason'] };
}

function byDue(a: OutboxRecord, b: OutboxRecord): number {
  return a.nextAttemptAt - b.nextAttemptAt || a.id - b.id;
}
