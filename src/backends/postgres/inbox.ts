import type { Logger } from 'winston';
import type { Availability } from '../../observe/availability.js';
import { DEFAULTS } from '../../defaults.js';
import { eventKey as keyOf, type InboxMark, type InboxStore, splitEventKey } from '../../receive/inbox-store.js';
import { TransactionStoreError } from '../../receive/transaction-store-error.js';
import type { DatabasePool, HandlerContext } from '../../types.js';
import { DONE, handlerStates } from '../inbox-rows.js';
import { databaseFrom, type PostgresDatabase } from './database.js';
import { type GroupedHandler, HandlerGroups } from './handler-groups.js';
import { beginWith } from './prepared.js';

export interface PostgresInboxOptions {
  /** A `postgres://` URL or your pool (this inbox opens its own handle on it), or the bus's shared database. */
  database: string | DatabasePool | PostgresDatabase;
  /** This service's name: in every row, so services may share the table. */
  service: string;
  /** With a URL or a pool (a shared database has its own). @default DEFAULTS.database.schema */
  schema?: string;
  retentionMs: number;
  logger: Logger;
}

/**
 * The inbox in PostgreSQL, shared by every instance of a service. Handlers run in transactions
 * shared by a few of them (handler-groups.ts: one commit for up to 16), each behind a savepoint:
 * its row is claimed first (`INSERT … ON CONFLICT DO NOTHING`: an instance handling the same event
 * at the same time waits on that row's lock, then finds it committed and skips), then it runs with
 * `tx` = the transaction's client; one that throws rolls back alone, its claim given back. A crash
 * anywhere before the COMMIT rolls back the handlers' writes and their completions together.
 *
 * Handler transactions hold at most the pool's size minus one connection (see PostgresDatabase):
 * a handler that emits without `tx` finds a connection. The table is created on first use (the
 * database's setup, shared with the outbox). Every failure (server down, connection lost) rejects the
 * call: the receiver answers 503 and the sender retries. Ids older than `retentionMs` are deleted
 * by a timer that logs a failure and never throws.
 */
export class PostgresInbox implements InboxStore {
  readonly durable = true;
  private readonly db: PostgresDatabase;
  /** Whether its database answers (health). */
  readonly database: Availability;
  private readonly table: string;
  private readonly pruneTimer: NodeJS.Timeout;
  private pruneFailing = false;
  private closed = false;
  private readonly groups: HandlerGroups;
  /** The rows each grouped handler's claim inserted (a WeakMap: a settled handler is forgotten with it). */
  private readonly claimedRows = new WeakMap<GroupedHandler, readonly string[]>();

  constructor(private readonly o: PostgresInboxOptions) {
    this.db = databaseFrom(o.database, { schema: o.schema, logger: o.logger });
    this.database = this.db.availability;
    this.table = `${this.db.s}.events_inbox`;
    this.groups = new HandlerGroups({
      db: this.db,
      // An event recorded done claims nothing (`done` alone: all its handlers completed, as the
      // previous release recorded them). A scalar subquery, so that each row is one index lookup
      // (as NOT EXISTS, the planner may scan every `done` of the service); a `done` row itself
      // needs none: when the event's `done` exists, its own INSERT conflicts.
      claim: async (client, handlers) => {
        // BEGIN and the claim in one round trip (the claim's values written in as literals).
        const { rows } = await beginWith<{ source: string; event_id: string; handler: string }>(
          client,
          `INSERT INTO ${this.table} (service, source, event_id, handler)
           SELECT $1::text, u.* FROM unnest($2::text[], $3::text[], $4::text[]) AS u(source, event_id, handler)
           WHERE u.handler = '${DONE}' OR (SELECT d.handler FROM ${this.table} d
             WHERE d.service = $1::text AND d.source = u.source AND d.event_id = u.event_id AND d.handler = '${DONE}') IS NULL
           ON CONFLICT DO NOTHING RETURNING source, event_id, handler`,
          this.rowsOf(handlers),
        );
        const inserted = new Set(rows.map((row) => `${keyOf(row.source, row.event_id)}\u0000${row.handler}`));
        // What this claim inserted, per handler: a give-back deletes only that, never a row another
        // instance committed (an event's `done` written by an instance with other handlers).
        for (const h of handlers) this.claimedRows.set(h, h.rows.filter((row) => inserted.has(`${keyOf(h.source, h.id)}\u0000${row}`)));
        return new Set(handlers.filter((h) => inserted.has(`${keyOf(h.source, h.id)}\u0000${h.rows[0]}`)));
      },
      unclaim: async (client, handlers) => {
        const rows = handlers.flatMap((h) => (this.claimedRows.get(h) ?? []).map((handler) => [h.source, h.id, handler] as const));
        if (rows.length === 0) return;
        await client.query(
          `DELETE FROM ${this.table} WHERE service = $1 AND (source, event_id, handler) IN (SELECT * FROM unnest($2::text[], $3::text[], $4::text[]))`,
          [this.o.service, rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])],
        );
      },
    });
    this.pruneTimer = setInterval(() => void this.prune(), DEFAULTS.database.inboxPruneIntervalMs).unref();
  }

  /** One query for every key (a request's events): the keys travel as two arrays. */
  async completed(eventKeys: readonly string[]): Promise<ReadonlyMap<string, true | ReadonlySet<string>>> {
    await this.db.ready();
    const keys = eventKeys.map((key) => splitEventKey(key));
    const { rows } = await this.db.run<{ source: string; event_id: string; handler: string }>(
      `SELECT source, event_id, handler FROM ${this.table}
       WHERE service = $1 AND (source, event_id) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
      [this.o.service, keys.map((k) => k.source), keys.map((k) => k.id)],
    );
    return handlerStates(rows.map((row) => [keyOf(row.source, row.event_id), row.handler]));
  }

  /** Every mark in one statement (so in one implicit transaction). */
  async mark(marks: readonly InboxMark[]): Promise<void> {
    await this.db.ready();
    const keys = marks.map((mark) => splitEventKey(mark.eventKey));
    const handlers = marks.map((mark) => mark.handlerKey ?? DONE);
    await this.db.run(
      `INSERT INTO ${this.table} (service, source, event_id, handler)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`,
      [this.o.service, keys.map((k) => k.source), keys.map((k) => k.id), handlers],
    );
  }

  async runInTransaction(
    eventKey: string,
    handlerKey: string,
    run: (context: HandlerContext) => Promise<void>,
    last = false,
  ): Promise<'ran' | 'done-already'> {
    try {
      await this.db.ready();
    } catch (error) {
      throw new TransactionStoreError(error, false);
    }
    return new Promise((resolve, reject) => {
      const { source, id } = splitEventKey(eventKey);
      const rows = last ? [handlerKey, DONE] : [handlerKey];
      this.groups.add({ source, id, rows, order: `${eventKey}\u0000${handlerKey}`, run, resolve, reject });
    });
  }

  /** Ids older than the retention are deleted; nothing younger is forgotten, restarts included. */
  forgetsBefore(): number {
    return Date.now() - this.o.retentionMs;
  }

  async close(deadline?: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.closeBy(deadline);
    clearInterval(this.pruneTimer);
    await this.db.release();
  }

  /** Deletes this service's ids past retention. Runs from a timer: logs a failure (once until it works again), never throws. */
  async prune(): Promise<void> {
    if (this.closed) return;
    try {
      await this.db.ready();
      await this.db.pool.query(`DELETE FROM ${this.table} WHERE service = $1 AND done_at < now() - make_interval(secs => $2)`, [
        this.o.service,
        this.o.retentionMs / 1000,
      ]);
      if (this.pruneFailing) this.o.logger.info('inbox prune works again', { store: 'postgres' });
      this.pruneFailing = false;
    } catch (error) {
      if (!this.pruneFailing) {
        this.o.logger.error('inbox prune failed; retrying at the next one', {
          store: 'postgres',
          error: (error as Error)?.message ?? String(error),
          code: (error as { code?: unknown })?.code,
        });
      }
      this.pruneFailing = true;
    }
  }

  /** The rows of `handlers`, as the parameters of an `unnest` of (source, event_id, handler). */
  private rowsOf(handlers: readonly GroupedHandler[]): unknown[] {
    const rows = handlers.flatMap((h) => h.rows.map((handler) => [h.source, h.id, handler] as const));
    return [this.o.service, rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])];
  }
}
