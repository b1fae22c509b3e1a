import {
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterOperator,
  type DeadLetterPage,
  type DeadLetterSelection,
  type OutboxStats,
  type PageRequest,
  pageFrom,
  selectionFilter,
  statsOf,
  type TargetCounts,
} from '../../operate/operator.js';
import type { OutboxRecord } from '../../send/outbox-store.js';
import { COLUMNS, filterConditions, type OutboxRow, targetCountsSql, toDeadLetter, toRecord } from '../outbox-rows.js';
import type { PostgresDatabase } from './database.js';
import { OUTBOX_CHANNEL } from './schema.js';

/** The rows of the operator's service ($1), or every service's ($1 null). */
const SCOPE = '($1::text IS NULL OR service = $1)';

export interface OutboxOperatorOptions {
  db: PostgresDatabase;
  /** The service whose pending rows `targets` and `pendingRecords` read. */
  service: string;
  /** The service of the operator calls (stats, dead letters, replay, discard); null: every service's. */
  scope: string | null;
  /** The tables exist (the outbox's `ensureReady`). */
  ready(): Promise<void>;
  /** Writes the delivered rows waiting for their DELETE (they are not pending any more). */
  settled(): Promise<void>;
  /** Runs a call as the dispatcher's are run: a failure logged once per change. */
  guard<T>(run: () => Promise<T>): Promise<T>;
  /** An error of `replay`/`discard` as it rejects: unreachable database → OutboxUnavailableError. */
  unavailable(error: unknown): unknown;
  /** Dead letters of `targets` replayed: due now (their NOTIFY wakes every instance; this one need not wait for it). */
  replayed(targets: ReadonlySet<string>): void;
}

/**
 * The PostgreSQL outbox's operator side (the CLI's, the console's and the bus's calls): stats,
 * pending rows and targets, dead letters read by filter or page, replayed or discarded. The
 * outbox delegates to it; plain statements, not prepared (they are rare).
 */
export class OutboxOperator implements Omit<DeadLetterOperator, 'close'> {
  private readonly s: string;
  private readonly schema: string;

  constructor(private readonly o: OutboxOperatorOptions) {
    this.s = o.db.s;
    this.schema = o.db.schema;
  }

  async targets(): Promise<string[]> {
    await this.o.settled(); // a target whose rows are all delivered has nothing pending
    return this.o.guard(async () => {
      await this.o.ready();
      const result = await this.o.db.pool.query<{ target: string }>(
        `SELECT DISTINCT target FROM ${this.s}.events_outbox WHERE service = $1`,
        [this.o.service],
      );
      return result.rows.map((r) => r.target);
    });
  }

  async stats(): Promise<OutboxStats> {
    await this.o.settled(); // delivered rows are not pending
    await this.o.ready();
    const sql = targetCountsSql(`${this.s}.events_outbox`, `${this.s}.events_dead_letters`, SCOPE);
    return statsOf((await this.o.db.pool.query<TargetCounts>(sql, [this.o.scope])).rows);
  }

  async deadLetters(filter?: DeadLetterFilter): Promise<DeadLetter[]> {
    await this.o.ready();
    const { where, params } = this.whereOf(filter);
    const result = await this.o.db.pool.query<OutboxRow>(
      `SELECT ${COLUMNS}, dead_at, reason FROM ${this.s}.events_dead_letters ${where} ORDER BY dead_at, id`,
      params,
    );
    return result.rows.map(toDeadLetter);
  }

  async deadLetterPage(filter: DeadLetterFilter | undefined, page: PageRequest): Promise<DeadLetterPage> {
    await this.o.ready();
    const { where, params } = this.whereOf(filter, page.cursor);
    const result = await this.o.db.pool.query<OutboxRow>(
      `SELECT ${COLUMNS}, dead_at, reason FROM ${this.s}.events_dead_letters ${where} ORDER BY dead_at, id LIMIT $${params.length + 1}`,
      [...params, page.limit + 1],
    );
    return pageFrom(result.rows.map(toDeadLetter), page.limit);
  }

  async replay(selection: DeadLetterSelection): Promise<number> {
    await this.o.ready();
    const { where, params } = this.whereOf(selectionFilter(selection));
    const n = params.length;
    try {
      const result = await this.o.db.pool.query<{ target: string }>(
        `WITH d AS (DELETE FROM ${this.s}.events_dead_letters ${where} RETURNING *),
         ins AS (INSERT INTO ${this.s}.events_outbox (id, service, event_id, type, source, target, body, created_at, attempts,
             next_attempt_at, last_attempt_at, last_status, last_error, traceparent, tracestate)
           SELECT id, service, event_id, type, source, target, body, $${n + 1}, attempts, $${n + 1}, last_attempt_at, last_status,
             last_error, traceparent, tracestate FROM d
           RETURNING service, target),
         woken AS (SELECT pg_notify('${OUTBOX_CHANNEL}', $${n + 2} || service || E'\\t' || target)
           FROM (SELECT DISTINCT service, target FROM ins) t)
         SELECT ins.target, (SELECT count(*) FROM woken) AS woken FROM ins`,
        [...params, Date.now(), `${this.schema}\t`],
      );
      // The NOTIFY wakes every instance; this one at once, without waiting for it.
      this.o.replayed(new Set(result.rows.map((row) => row.target)));
      return result.rows.length;
    } catch (error) {
      throw this.o.unavailable(error);
    }
  }

  async discard(selection: DeadLetterSelection): Promise<number> {
    await this.o.ready();
    const { where, params } = this.whereOf(selectionFilter(selection));
    try {
      return (await this.o.db.pool.query(`DELETE FROM ${this.s}.events_dead_letters ${where}`, params)).rowCount ?? 0;
    } catch (error) {
      throw this.o.unavailable(error);
    }
  }

  async pendingRecords(): Promise<OutboxRecord[]> {
    await this.o.settled();
    await this.o.ready();
    const result = await this.o.db.pool.query<OutboxRow>(
      `SELECT ${COLUMNS} FROM ${this.s}.events_outbox WHERE service = $1 ORDER BY id`,
      [this.o.service],
    );
    return result.rows.map(toRecord);
  }

  /** A filter's conditions (and, for a page, those after its cursor). */
  private whereOf(filter: DeadLetterFilter | undefined, cursor?: string): { where: string; params: unknown[] } {
    const params: unknown[] = [this.o.scope];
    const bind = (value: unknown) => `$${params.push(value)}`;
    const conditions = filterConditions(filter, cursor, bind, (ids) => `id = ANY(${bind(ids)}::bigint[])`);
    return { where: `WHERE ${[SCOPE, ...conditions].join(' AND ')}`, params };
  }
}
