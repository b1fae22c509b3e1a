import type { Statement } from 'better-sqlite3';
import type { Logger } from 'winston';
import { DEFAULTS } from '../../defaults.js';
import { OutboxUnavailableError } from '../../errors/index.js';
import {
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterPage,
  type DeadLetterSelection,
  type OutboxStats,
  type PageRequest,
  pageFrom,
  selectionFilter,
  statsOf,
  type TargetCounts,
} from '../../operate/operator.js';
import type { DeathReason, NewDelivery, OutboxRecord, OutboxStore, Settlement } from '../../send/outbox-store.js';
import { COLUMNS, filterConditions, type OutboxRow, recordOfColumns, targetCountsSql, toDeadLetter, toRecord, toRow } from '../outbox-rows.js';
import { checkpointInBackground } from './checkpointer.js';
import { type Database, type Fault, faultOf, lockExclusive, openDatabase, startupError, watchIdentity } from './database.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
  body TEXT NOT NULL, created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
  last_attempt_at INTEGER, last_status INTEGER, last_error TEXT,
  leased INTEGER NOT NULL DEFAULT 0, traceparent TEXT, tracestate TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (target, leased, next_attempt_at, id);
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
  body TEXT NOT NULL, created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL,
  last_attempt_at INTEGER, last_status INTEGER, last_error TEXT,
  dead_at INTEGER NOT NULL, reason TEXT NOT NULL, traceparent TEXT, tracestate TEXT
);
CREATE INDEX IF NOT EXISTS dead_letters_event ON dead_letters (event_id);
CREATE INDEX IF NOT EXISTS dead_letters_dead_at ON dead_letters (dead_at, id);
`;

export interface SqliteOutboxOptions {
  /**
   * The owning service (default): takes the file's exclusive lock, forgets leases an earlier
   * version left in the file, watches the file, retries failed writes in the background. Operator tools
   * opening the file beside a running service pass `false`: none of that, a patient busy timeout.
   */
  resetLeases?: boolean;
  /** Where faults and recoveries are logged (owner only). */
  logger?: Logger;
  /** How often the owner checks that its file is still the one at `path`. @default DEFAULTS.outbox.pollIntervalMs */
  pollIntervalMs?: number;
  /** How long `add` waits for a store that cannot write before it rejects. @default DEFAULTS.outbox.writeWaitMs */
  writeWaitMs?: number;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
  /** Rejected with OutboxUnavailableError if still not committed by then (ms since epoch). */
  deadline: number;
}

/** One buffered write; `waiter` is the `add` caller waiting on it (deferred writes have none). */
interface Pending {
  write: () => void;
  waiter?: Waiter;
}

/**
 * The durable outbox, in SQLite. `add` is a group commit: every delivery added in one turn of
 * the event loop goes in one transaction, and each caller resolves once it is committed.
 * Completions, reschedules and dead letters (`settleMany`) ride in the same
 * batched transactions; a claim writes nothing to the file.
 *
 * One owning process per file, enforced by an exclusive lock on `<path>-lock`; leases live in
 * the owner's connection, so a restart after a crash resumes everything.
 *
 * Nothing here throws out of a timer. When the file cannot take writes (disk full, locked by
 * another connection, damaged), buffered writes are kept, in order, and retried with growing
 * waits; one error line says what is wrong and what to do, one info line says when it recovered.
 * Meanwhile `add` waits up to `writeWaitMs`, then rejects with OutboxUnavailableError (its
 * deliveries are not recorded). If the file is deleted or replaced under the running service,
 * `add` rejects from then on and an error line says so.
 */
export class SqliteOutbox implements OutboxStore {
  readonly durable = true;
  readonly acceptsTransaction = false;
  private readonly db: Database;
  private readonly owner: boolean;
  private readonly logger: Logger | undefined;
  private readonly writeWaitMs: number;
  private readonly lock: { release(): void } | undefined;
  private readonly insert: Statement;
  private readonly selectDue: Statement;
  private readonly selectFirst: Statement;
  private readonly lease: Statement;
  private readonly leaseOne: Statement;
  private readonly unlease: Statement;
  private readonly deleteMany: Statement;
  private readonly unleaseMany: Statement;
  private readonly update: Statement;
  private readonly minDue: Statement;
  private readonly bury: Statement;
  private readonly releaseSince: Statement;
  private readonly unstepClock: Statement;
  private readonly runWrites: (writes: Pending[]) => void;
  private queue: Pending[] = [];
  /**
   * The earliest time at which a buffered write makes a record claimable (an add, a release, a
   * reschedule): a claim at or after it runs the buffer first. Completions and dead letters need
   * not: their records stay leased until written, so a claim skips them either way.
   */
  private opensAt = Infinity;
  private flushScheduled = false;
  /** Set while the file cannot take writes; cleared by the first write that succeeds. */
  private fault: Fault | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryTimerAt = Infinity;
  private retryDelayMs = 0;
  /** Set once the file at `path` is gone or another file: then `add` always rejects. */
  private lost: string | undefined;
  private readonly unwatch: (() => void) | undefined;
  /** Owner only: its WAL checkpoints run in the checkpointer thread. */
  private readonly stopCheckpoints: (() => void) | undefined;
  /** The latest created/tried time written: beyond `now + slack`, the wall clock stepped back. */
  private maxStamp = -Infinity;
  private wake: ((target: string) => void) | undefined;

  constructor(readonly path: string, options: SqliteOutboxOptions = {}) {
    this.owner = options.resetLeases ?? true;
    this.logger = options.logger;
    this.writeWaitMs = options.writeWaitMs ?? DEFAULTS.outbox.writeWaitMs;
    // The lock first: a second service fails here, before it touches the file.
    this.lock = this.owner ? lockExclusive(path, 'EVENTS_OUTBOX_PATH') : undefined;
    try {
      this.db = openDatabase(path, 'EVENTS_OUTBOX_PATH', {
        busyTimeoutMs: this.owner ? DEFAULTS.sqlite.busyTimeoutMs : DEFAULTS.sqlite.operatorBusyTimeoutMs,
      });
    } catch (error) {
      this.lock?.release();
      throw error;
    }
    try {
      this.db.exec(SCHEMA);
      addTraceColumns(this.db);
      // Leases live in this connection, not in the file: one process owns the file, and a restart
      // resumes every lease anyway. A claim then writes nothing to the file (no transaction, no
      // WAL frame), and a settlement ends its lease in the group commit that records it, so a
      // failed write keeps the record leased until it lands. In memory: no disk, even when full.
      this.db.pragma('temp_store = MEMORY');
      this.db.exec('CREATE TEMP TABLE IF NOT EXISTS outbox_leases (id INTEGER PRIMARY KEY)');
      this.insert = this.db.prepare(
        `INSERT INTO outbox (event_id, type, source, target, body, created_at, next_attempt_at, traceparent, tracestate)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      // `leased = 0`: a file left by an earlier version keeps leases in that column (reset on open by the owner).
      this.selectDue = this.db.prepare(
        `SELECT ${COLUMNS} FROM outbox WHERE target = ? AND leased = 0 AND next_attempt_at <= ? AND ${UNLEASED}
         ORDER BY next_attempt_at, id LIMIT ?`,
      ).raw(); // rows as arrays: recordOfColumns
      this.selectFirst = this.db.prepare(
        `SELECT ${COLUMNS} FROM outbox WHERE target = ? AND leased = 0 AND ${UNLEASED} ORDER BY next_attempt_at, id LIMIT 1`,
      );
      // However many were claimed: one statement, the ids as a JSON array.
      this.lease = this.db.prepare('INSERT INTO temp.outbox_leases (id) SELECT value FROM json_each(?)');
      this.leaseOne = this.db.prepare('INSERT INTO temp.outbox_leases (id) VALUES (?)');
      this.unlease = this.db.prepare('DELETE FROM temp.outbox_leases WHERE id = ?');
      this.deleteMany = this.db.prepare('DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))');
      this.unleaseMany = this.db.prepare('DELETE FROM temp.outbox_leases WHERE id IN (SELECT value FROM json_each(?))');
      this.minDue = this.db.prepare(
        `SELECT next_attempt_at AS due FROM outbox WHERE target = ? AND leased = 0 AND ${UNLEASED}
         ORDER BY next_attempt_at, id LIMIT 1`,
      );
      this.update = this.db.prepare(
        `UPDATE outbox SET attempts = @attempts, next_attempt_at = @next_attempt_at,
           last_attempt_at = @last_attempt_at, last_status = @last_status, last_error = @last_error WHERE id = @id`,
      );
      this.bury = this.db.prepare(
        `INSERT OR REPLACE INTO dead_letters (${COLUMNS}, dead_at, reason) VALUES (${NAMED_COLUMNS}, @dead_at, @reason)`,
      );
      this.releaseSince = this.db.prepare(
        `UPDATE outbox SET next_attempt_at = ? WHERE target = ? AND leased = 0 AND last_attempt_at >= ? AND ${UNLEASED}`,
      );
      // A wall-clock step back: whatever was created or tried "in the future" is due now, and its
      // times are pulled back to now so that backoff and horizon are measured from there.
      this.unstepClock = this.db.prepare(
        `UPDATE outbox SET next_attempt_at = @now, created_at = MIN(created_at, @now),
           last_attempt_at = MIN(last_attempt_at, @now)
         WHERE created_at > @limit OR last_attempt_at > @limit`,
      );
      const stamp = this.db
        .prepare('SELECT MAX(COALESCE(MAX(created_at), 0), COALESCE(MAX(last_attempt_at), 0)) AS m FROM outbox')
        .get() as { m: number };
      this.maxStamp = stamp.m;
      this.runWrites = this.db.transaction((writes: Pending[]) => {
        for (const pending of writes) pending.write();
      });
    } catch (cause) {
      this.db.close();
      this.lock?.release();
      throw startupError(path, 'EVENTS_OUTBOX_PATH', cause);
    }
    if (!this.owner) return;
    // A file that is full or locked still opens (reads work, emits are refused until it recovers):
    // resetting the leases an earlier version left in the file is then the first buffered write,
    // retried like the others.
    this.queue.push({ write: () => this.db.exec('UPDATE outbox SET leased = 0 WHERE leased = 1') });
    this.opensAt = -Infinity;
    this.flushNow();
    this.unwatch = watchIdentity(path, options.pollIntervalMs ?? DEFAULTS.outbox.pollIntervalMs, (reason) => this.fileLost(reason));
    this.stopCheckpoints = checkpointInBackground(this.db, path, (reason) =>
      this.logger?.warn('outbox WAL checkpoints run in its commits again (slower, pauses the event loop)', { path, error: reason }),
    );
  }

  add(deliveries: readonly NewDelivery[]): Promise<void> {
    if (this.lost !== undefined) return Promise.reject(new OutboxUnavailableError(this.path, this.lost));
    return new Promise((resolve, reject) => {
      this.queue.push({
        write: () => {
          for (const d of deliveries) {
            this.insert.run(d.eventId, d.type, d.source, d.target, d.body, d.createdAt, d.createdAt, d.traceparent ?? null, d.tracestate ?? null);
          }
        },
        waiter: { resolve, reject, deadline: Date.now() + this.writeWaitMs },
      });
      this.opensAt = -Infinity;
      for (const delivery of deliveries) if (delivery.createdAt > this.maxStamp) this.maxStamp = delivery.createdAt;
      // While the store fails, the retry timer flushes: it must try again before this emit's wait ends.
      if (this.fault !== undefined) this.retryAt(Date.now() + this.writeWaitMs);
      else this.scheduleFlush();
    });
  }

  async claim(target: string, now: number, limit: number): Promise<OutboxRecord[]> {
    return this.guard(() => {
      // Reads see every earlier add, complete, reschedule and kill, as the interface promises (see opensAt).
      if (this.opensAt <= now) this.sync();
      this.checkClock(now);
      const records = (this.selectDue.all(target, now, limit) as unknown[][]).map(recordOfColumns);
      if (records.length === 1) this.leaseOne.run(records[0]!.id);
      else if (records.length > 1) this.lease.run(JSON.stringify(records.map((record) => record.id)));
      return records;
    });
  }

  async claimProbe(target: string): Promise<OutboxRecord | undefined> {
    return this.guard(() => {
      if (this.opensAt < Infinity) this.sync();
      const row = this.selectFirst.get(target) as OutboxRow | undefined;
      if (!row) return undefined;
      this.leaseOne.run(row.id);
      return toRecord(row);
    });
  }

  /** Every outcome in one buffered write: the same group commit as the emits of this turn, no transaction of its own. */
  async settleMany(settlements: readonly Settlement[]): Promise<void> {
    if (settlements.length === 0) return;
    const deadAt = Date.now();
    let opensAt = Infinity;
    // What is written is taken now: a record may change before the flush.
    const again: OutboxRow[] = [];
    const dead: Array<OutboxRow & { dead_at: number; reason: DeathReason }> = [];
    const gone: number[] = [];
    for (const s of settlements) {
      if (s.kind === 'reschedule') {
        opensAt = Math.min(opensAt, s.nextAttemptAt);
        again.push(this.rescheduled(s.record, s.nextAttemptAt));
        continue;
      }
      if (s.kind === 'kill') dead.push({ ...toRow(s.record), dead_at: deadAt, reason: s.reason });
      gone.push(s.record.id);
    }
    const removed = JSON.stringify(gone);
    this.defer(() => {
      for (const row of dead) this.bury.run(row);
      // Completions and dead letters leave the outbox in two statements for all of them, the ids as one JSON array.
      if (gone.length > 0) {
        this.deleteMany.run(removed);
        this.unleaseMany.run(removed);
      }
      for (const row of again) {
        this.update.run(row);
        this.unlease.run(row.id);
      }
    }, opensAt);
  }

  private rescheduled(record: OutboxRecord, nextAttemptAt: number): OutboxRow {
    record.nextAttemptAt = nextAttemptAt;
    if (record.lastAttemptAt !== undefined && record.lastAttemptAt > this.maxStamp) this.maxStamp = record.lastAttemptAt;
    return toRow(record);
  }

  async release(target: string, since: number, now: number): Promise<void> {
    this.defer(() => this.releaseSince.run(now, target, since), -Infinity);
  }

  async nextDueAt(target: string): Promise<number | undefined> {
    return this.guard(() => {
      this.sync();
      this.checkClock(Date.now());
      const row = this.minDue.get(target) as { due: number } | undefined;
      return row?.due;
    });
  }

  async targets(): Promise<string[]> {
    return this.guard(() => {
      this.sync();
      return (this.db.prepare('SELECT DISTINCT target FROM outbox').all() as { target: string }[]).map((r) => r.target);
    });
  }

  async stats(): Promise<OutboxStats> {
    this.sync();
    return statsOf(this.db.prepare(targetCountsSql('outbox', 'dead_letters')).all() as TargetCounts[]);
  }

  async deadLetters(filter?: DeadLetterFilter): Promise<DeadLetter[]> {
    this.sync();
    const { where, params } = whereOf(filter);
    return (this.db.prepare(`SELECT * FROM dead_letters ${where} ORDER BY id`).all(...params) as OutboxRow[]).map(toDeadLetter);
  }

  async deadLetterPage(filter: DeadLetterFilter | undefined, page: PageRequest): Promise<DeadLetterPage> {
    this.sync();
    const { where, params } = whereOf(filter, page.cursor);
    const rows = this.db.prepare(`SELECT * FROM dead_letters ${where} ORDER BY dead_at, id LIMIT ?`).all(...params, page.limit + 1) as OutboxRow[];
    return pageFrom(rows.map(toDeadLetter), page.limit);
  }

  async replay(selection: DeadLetterSelection): Promise<number> {
    this.sync();
    const now = Date.now();
    const { where, params } = whereOf(selectionFilter(selection));
    const targets = this.unavailableIfFault(() => this.db.transaction(() => {
      const rows = this.db.prepare(`DELETE FROM dead_letters ${where} RETURNING ${COLUMNS}`).all(...params) as OutboxRow[];
      const insert = this.db.prepare(`INSERT INTO outbox (${COLUMNS}) VALUES (${NAMED_COLUMNS})`);
      for (const row of rows) insert.run({ ...row, created_at: now, next_attempt_at: now });
      return rows.map((row) => row.target);
    })());
    for (const target of new Set(targets)) this.wake?.(target);
    return targets.length;
  }

  async discard(selection: DeadLetterSelection): Promise<number> {
    this.sync();
    const { where, params } = whereOf(selectionFilter(selection));
    return this.unavailableIfFault(() => this.db.prepare(`DELETE FROM dead_letters ${where}`).run(...params).changes);
  }

  onWork(wake: (target: string) => void): void {
    this.wake = wake;
  }

  /** Runs an operator's write; a store fault (locked, full, …) becomes an OutboxUnavailableError saying what to do. */
  private unavailableIfFault<T>(run: () => T): T {
    try {
      return run();
    } catch (error) {
      const fault = faultOf(error);
      if (fault.kind === 'other') throw error;
      throw new OutboxUnavailableError(this.path, fault.reason, { cause: error, hint: fault.hint });
    }
  }

  async pendingRecords(): Promise<OutboxRecord[]> {
    this.sync();
    return (this.db.prepare(`SELECT ${COLUMNS} FROM outbox ORDER BY id`).all() as OutboxRow[]).map(toRecord);
  }

  async close(): Promise<void> {
    this.unwatch?.();
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.stopCheckpoints?.();
    if (this.db.open) {
      // A last try; what still fails stays as it is on disk (leased records are redelivered on reopen).
      this.flushNow();
      this.expireWaiters(Infinity, 'the outbox was closed');
      this.db.close();
    }
    this.lock?.release();
  }

  /** Runs the buffered writes before a read, unless the store is failing (the retry timer owns them then). */
  private sync(): void {
    if (this.fault === undefined) this.flushNow();
  }

  private guard<T>(run: () => T): T {
    try {
      return run();
    } catch (error) {
      if (this.db.open) this.failed(error);
      throw error;
    }
  }

  /** Buffers a write for the next group commit; `opensAt`: when it makes a record claimable, if it does. */
  private defer(write: () => void, opensAt = Infinity): void {
    this.queue.push({ write });
    if (opensAt < this.opensAt) this.opensAt = opensAt;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.fault !== undefined) return;
    this.flushScheduled = true;
    setImmediate(() => this.flushNow());
  }

  /** Runs every buffered write in one transaction, then settles the callers waiting on it. Never throws. */
  private flushNow(): void {
    this.flushScheduled = false;
    if (this.queue.length === 0) return;
    if (!this.db.open) {
      // After close, a late write is dropped: its record stays leased on disk and is redelivered on reopen.
      this.expireWaiters(Infinity, 'the outbox is closed');
      this.queue = [];
      return;
    }
    const batch = this.queue;
    const opensAt = this.opensAt;
    this.queue = [];
    this.opensAt = Infinity;
    try {
      this.runWrites(batch);
    } catch (error) {
      // Nothing of the batch was written (one transaction): keep all of it, in order, and retry.
      this.queue = batch.concat(this.queue);
      this.opensAt = Math.min(opensAt, this.opensAt);
      this.failed(error);
      return;
    }
    for (const pending of batch) pending.waiter?.resolve();
    this.recovered();
  }

  private failed(error: unknown): void {
    const fault = faultOf(error);
    if (this.fault?.kind !== fault.kind) {
      this.logger?.error('outbox cannot write; retrying in the background, emits are refused meanwhile', {
        path: this.path,
        error: fault.reason,
        hint: fault.hint,
      });
    }
    this.fault = fault;
    this.expireWaiters(Date.now(), fault.reason, error, fault.hint);
    this.scheduleRetry();
  }

  private recovered(): void {
    if (this.fault === undefined) return;
    this.logger?.info('outbox writable again; delivery resumes', { path: this.path });
    this.fault = undefined;
    this.retryDelayMs = 0;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** The next try: after a growing, capped wait, or sooner when an emit's wait ends sooner. */
  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || !this.db.open) return;
    const { baseDelayMs, maxDelayMs } = DEFAULTS.storeRetry;
    this.retryDelayMs = Math.min(maxDelayMs, Math.max(baseDelayMs, this.retryDelayMs * 2));
    let at = Date.now() + this.retryDelayMs;
    for (const pending of this.queue) if (pending.waiter) at = Math.min(at, pending.waiter.deadline);
    this.retryAt(at);
  }

  /** (Re)arms the retry timer to fire at `at` at the latest. */
  private retryAt(at: number): void {
    if (this.retryTimer !== undefined) {
      if (this.retryTimerAt <= at) return;
      clearTimeout(this.retryTimer);
    }
    this.retryTimerAt = at;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.db.open) return;
      // Nothing buffered: rewrite the header page (user_version, unchanged) to learn whether the
      // file takes writes again; it needs WAL space like any write, even in an empty outbox.
      if (this.queue.length === 0) {
        this.queue.push({
          write: () => this.db.pragma(`user_version = ${Number(this.db.pragma('user_version', { simple: true }))}`),
        });
      }
      this.flushNow();
    }, Math.max(0, at - Date.now()));
    // Emits waiting keep the process alive until they settle; background retries alone do not.
    if (!this.queue.some((pending) => pending.waiter)) this.retryTimer.unref();
  }

  /** Rejects the `add` callers whose deadline passed, and drops their writes: those deliveries are not recorded. */
  private expireWaiters(now: number, reason: string, cause?: unknown, hint?: string): void {
    if (!this.queue.some((p) => p.waiter && p.waiter.deadline <= now)) return;
    const kept: Pending[] = [];
    for (const pending of this.queue) {
      if (pending.waiter && pending.waiter.deadline <= now) {
        pending.waiter.reject(new OutboxUnavailableError(this.path, reason, { cause, hint }));
      } else {
        kept.push(pending);
      }
    }
    this.queue = kept;
  }

  /** The file at `path` is no longer the one this process opened: events recorded now would go nowhere. */
  private fileLost(reason: string): void {
    if (!this.db.open) return;
    this.lost = `${reason}; restart the service`;
    this.logger?.error('outbox file deleted or replaced: emits are refused until the service restarts', {
      path: this.path,
      error: reason,
      hint:
        'Deliveries already recorded are still sent from the open file while this process runs; what is pending at ' +
        'restart is lost with it. Restore the file or restart the service, and keep the outbox out of cleanup jobs.',
    });
  }

  /** A wall-clock step back: records created or tried "in the future" are due now. */
  private checkClock(now: number): void {
    const slack = DEFAULTS.outbox.clockStepSlackMs;
    if (this.maxStamp <= now + slack) return;
    this.sync(); // the retries scheduled on the old time, still buffered, are among those to move
    const changed = this.unstepClock.run({ now, limit: now + slack }).changes;
    this.logger?.warn('wall clock stepped back; deliveries waiting on the old time are due now', {
      path: this.path,
      stepMs: this.maxStamp - now,
      deliveries: changed,
    });
    this.maxStamp = now;
  }
}

/** COLUMNS as named parameters, bound from an OutboxRow. */
const NAMED_COLUMNS = COLUMNS.split(',')
  .map((column) => `@${column.trim()}`)
  .join(', ');

/** Not leased by this process (the leases of this connection, see the constructor). */
const UNLEASED = 'id NOT IN (SELECT id FROM temp.outbox_leases)';

/** A filter's conditions (and, for a page, those after its cursor). */
function whereOf(filter: DeadLetterFilter | undefined, cursor?: string): { where: string; params: unknown[] } {
  const params: unknown[] = [];
  const bind = (value: unknown) => {
    params.push(value);
    return '?';
  };
  const conditions = filterConditions(filter, cursor, bind, (ids) => `id IN (${ids.map(bind).join(', ') || 'NULL'})`);
  return { where: conditions.length ? `WHERE ${conditions.join(' AND ')}` : '', params };
}

/** Files made before trace context was stored get its two nullable columns. */
function addTraceColumns(db: Database): void {
  for (const table of ['outbox', 'dead_letters']) {
    const names = new Set((db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name));
    for (const column of ['traceparent', 'tracestate']) {
      if (!names.has(column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} TEXT`);
    }
  }
}
