import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'winston';
import type { Availability } from '../../observe/availability.js';
import type { PgPoolLike } from '../../config.js';
import { DEFAULTS } from '../../defaults.js';
import { OutboxUnavailableError } from '../../errors/index.js';
import type { DeadLetter, DeadLetterFilter, DeadLetterPage, DeadLetterSelection, OutboxStats, PageRequest } from '../../operate/operator.js';
import { type AddOptions, freshRecord, type NewDelivery, type OutboxRecord, type OutboxStore, type Settlement } from '../../send/outbox-store.js';
import type { TransactionClient } from '../../types.js';
import { type OutboxRow, toRecord } from '../outbox-rows.js';
import { databaseFrom, isUnavailable, type PostgresDatabase } from './database.js';
import { DueView, type DueRow } from './due-view.js';
import { KeptEmits } from './kept-emits.js';
import { OutboxOperator } from './outbox-operator.js';
import { EmitWrites, type KeptIds } from './outbox-writes.js';
import { DB_NOW, OUTBOX_CHANNEL } from './schema.js';
import { type Delivered, SettleGroups } from './settle-groups.js';

export { OUTBOX_CHANNEL } from './schema.js';

/**
 * In a statement's SELECT list: its transaction does not wait for its WAL flush. For a dispatcher's
 * settles, which a database crash can only undo: that redelivers (at least once, as ever) rather
 * than loses. Emits keep PostgreSQL's synchronous commit.
 */
const NO_FLUSH = `set_config('synchronous_commit', 'off', true)`;

/** Deletes the delivered rows `$1` (ids), its commit not waiting for the WAL flush. */
const deleteDeliveredSql = (s: string) => `WITH done AS (DELETE FROM ${s}.events_outbox WHERE id = ANY($1::bigint[])) SELECT ${NO_FLUSH}`;

export interface PostgresOutboxOptions {
  /** The service whose rows this outbox reads and writes. An operator's view may leave it out: every service's dead letters and stats. */
  service: string | undefined;
  /** With a URL or a pool (a shared database has its own). @default DEFAULTS.database.schema */
  schema?: string;
  logger?: Logger;
  /** Deliveries in flight per target, across every instance of the service. @default DEFAULTS.concurrency */
  concurrency?: number;
  /**
   * How many deliveries one request to `target` may carry: `batch.maxEvents` for a target sent
   * batches. The leases live on a target, across instances, are capped at `concurrency` times
   * this. @default 1 for every target
   */
  eventsPerRequest?: (target: string) => number;
  /** @default DEFAULTS.outbox.leaseMs */
  leaseMs?: number;
  /** How long `add` retries while the database cannot be reached before it rejects. @default DEFAULTS.outbox.writeWaitMs */
  writeWaitMs?: number;
  /** Create the tables on first use. Operator tools pass false (they never create tables). @default true */
  createTables?: boolean;
  /**
   * This instance's dispatcher sends its own emits (a bus's outbox): their rows are written leased
   * to it, up to a target's cap, and handed to its lane without a claim (see `kept`). @default false
   */
  sendsOwnEmits?: boolean;
}

/**
 * The outbox in PostgreSQL, shared by every instance of a service (rows carry the service name, so
 * services may share a database too).
 *
 * - `add` without a transaction is a group commit: every delivery added in one turn of the event
 *   loop goes in one INSERT statement, without NOTIFY (PostgreSQL serialises the commits of
 *   notifying transactions: they could not share a WAL flush). With `sendsOwnEmits` (a bus), the
 *   INSERT (`events_add`) leases to this instance what its targets' caps leave, and the lane takes
 *   those rows from memory (`kept`), without a claim. Once it commits, the targets of the rows left
 *   to any instance are queued for one NOTIFY on the database's LISTEN connection, carrying every
 *   target queued meanwhile, which wakes the other instances; this one is woken by the bus, and
 *   skips its own NOTIFY. An emit it refuses is not recorded, ever (see outbox-writes.ts).
 * - With `{ tx }` the INSERT runs on the caller's client, in the caller's transaction, with a
 *   `pg_notify` per target in the same statement: PostgreSQL delivers it only at the caller's
 *   commit, and it wakes every instance LISTENing, this one included (the poll is the fallback).
 * - Claims are leases in the rows (`leased_until`, `lease_owner`), taken with
 *   `FOR UPDATE SKIP LOCKED` by one call of `events_claim` (schema.ts) and renewed every third of `leaseMs` while the delivery runs. A row
 *   whose lease ran out (its instance died) is claimed again by any instance.
 * - Per target, one row of `events_targets` is locked by every claim: the deliveries in flight
 *   across instances never exceed `concurrency` (times `eventsPerRequest`, for a target sent
 *   batches; the live leases are counted through a partial index, not by reading the target's
 *   whole backlog), and a target one instance found down is probed
 *   by one delivery at a time, whichever instance sends it, until a delivery succeeds.
 * - A delivered row is deleted a few ms later, with the others delivered meanwhile, in one
 *   statement (settle-groups.ts); it stays leased to this instance until then (see `settleMany`).
 */
export class PostgresOutbox implements OutboxStore {
  readonly durable = true;
  readonly acceptsTransaction = true;
  readonly service: string;
  /** The service of the operator calls (stats, dead letters, replay, discard); null: every service's. */
  private readonly scope: string | null;
  readonly schema: string;
  /** This instance, in `lease_owner`. */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly s: string;
  private readonly db: PostgresDatabase;
  /** Whether its database answers (health). */
  readonly database: Availability;
  private readonly logger: Logger | undefined;
  private readonly concurrency: number;
  private readonly eventsPerRequest: (target: string) => number;
  private readonly leaseMs: number;
  private readonly writeWaitMs: number;
  private readonly createTables: boolean;
  /** Deliveries this instance holds a lease on (id → target): renewed by the heartbeat. */
  private readonly held = new Map<string, string>();
  /** Targets this instance found marked down (by any instance): the first success here marks them up for all. */
  private readonly downSeen = new Set<string>();
  private readonly heartbeat: NodeJS.Timeout;
  /** This instance's emits written leased to it (with `sendsOwnEmits`), until its lane takes them. */
  private readonly kept = new KeptEmits();
  private readonly sendsOwnEmits: boolean;
  /** What the database last said about each target's unleased rows, standing in for a read. */
  private readonly seen = new DueView();
  /** Targets whose last claim got less than asked because of other instances (busy or down): look again soon. */
  private readonly busy = new Set<string>();
  private unlisten: (() => void) | undefined;
  /** Why the database cannot be used, as last logged (undefined: it works). */
  private fault: string | undefined;
  private closed = false;
  /** The dispatcher's wake-up, set by onWork: a replay here wakes this instance at once. */
  private wake: ((target: string) => void) | undefined;
  /** The latest created/tried time this instance wrote: beyond `now + slack`, the wall clock stepped back. */
  private maxStamp = -Infinity;
  private readonly writes = new Set<Promise<unknown>>();
  /** Delivered rows on their way out, deleted in groups (see `settleMany`). */
  private readonly delivered: SettleGroups;
  /** Whether a group's DELETE failed since the last one written (said once, at warn). */
  private deleteFailing = false;
  /** An emit's INSERT: in the caller's transaction, or this turn's group commit. */
  private readonly emits: EmitWrites;
  /** Stats, pending rows, dead letters read, replayed, discarded: the operator's calls. */
  private readonly operator: OutboxOperator;

  /** `database`: a URL or a pool (this outbox opens its own handle on it), or the bus's shared database. */
  constructor(database: string | PgPoolLike | PostgresDatabase, options: PostgresOutboxOptions) {
    this.service = options.service ?? '';
    this.scope = options.service ?? null;
    this.db = databaseFrom(database, { schema: options.schema, logger: options.logger });
    this.database = this.db.availability;
    this.schema = this.db.schema;
    this.s = this.db.s;
    this.logger = options.logger;
    this.concurrency = options.concurrency ?? DEFAULTS.concurrency;
    this.eventsPerRequest = options.eventsPerRequest ?? (() => 1);
    this.leaseMs = options.leaseMs ?? DEFAULTS.outbox.leaseMs;
    this.writeWaitMs = options.writeWaitMs ?? DEFAULTS.outbox.writeWaitMs;
    this.createTables = options.createTables ?? true;
    this.sendsOwnEmits = options.sendsOwnEmits ?? false;
    this.heartbeat = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.leaseMs / 3))).unref();
    this.delivered = new SettleGroups({
      write: (ids) => this.track(this.deleteDelivered(ids)),
      maxIds: DEFAULTS.database.settleGroupMax,
      maxWaitMs: DEFAULTS.database.settleGroupMs,
      retries: isUnavailable,
      after: (ids, failure) => this.deleted(ids, failure),
    });
    this.emits = new EmitWrites({
      db: this.db,
      service: this.service,
      owner: this.owner,
      leaseMs: this.leaseMs,
      writeWaitMs: this.writeWaitMs,
      sendsOwnEmits: this.sendsOwnEmits,
      cap: (target) => this.capOf(target),
      delivered: this.delivered,
      where: this.where,
      ready: () => this.ensureReady(),
      closed: () => this.closed,
      failed: (error) => this.failed(error),
      unavailable: (error) => this.unavailable(error),
      track: (promise) => this.track(promise),
      recorded: (deliveries, kept) => this.recorded(deliveries, kept),
    });
    this.operator = new OutboxOperator({
      db: this.db,
      service: this.service,
      scope: this.scope,
      ready: () => this.ensureReady(),
      settled: () => this.delivered.flush(),
      guard: (run) => this.guard(run),
      unavailable: (error) => this.unavailable(error),
      replayed: (targets) => {
        this.seen.forget();
        for (const target of targets) this.wake?.(target);
      },
    });
  }

  /** Where the outbox is, for messages: the URL without password, the schema and the service. */
  get where(): string {
    return `${this.db.where} (schema ${this.schema}, ${this.scope === null ? 'every service' : `service ${this.scope}`})`;
  }

  /** The tables exist (the database's setup, once). Operator tools create none. */
  private ensureReady(): Promise<void> {
    return this.createTables ? this.db.ready() : Promise.resolve();
  }

  async add(deliveries: readonly NewDelivery[], options: AddOptions = {}): Promise<void> {
    for (const delivery of deliveries) this.stamp(delivery.createdAt);
    if (this.closed) throw new OutboxUnavailableError(this.where, 'the outbox is closed');
    if (deliveries.length === 0) return;
    await this.emits.add(deliveries, options.tx as TransactionClient | undefined);
  }

  /**
   * A group INSERT committed: the rows leased to this instance (`kept`) go to its lane without a
   * claim; the other rows' targets are woken in the other instances by one NOTIFY sent aside
   * (this one wakes itself: the bus's `notify`).
   */
  private recorded(deliveries: readonly NewDelivery[], kept: KeptIds): void {
    this.recovered();
    const notified = new Set<string>();
    for (const d of deliveries) {
      const id = kept?.get(`${d.eventId}\u0000${d.target}`);
      if (id === undefined) notified.add(d.target);
      else {
        this.kept.add(freshRecord(d, id));
        this.held.set(String(id), d.target);
      }
    }
    for (const target of notified) {
      this.seen.forget(target);
      this.db.notify(OUTBOX_CHANNEL, `${this.schema}\t${this.service}\t${target}`);
    }
  }

  /** The leases `target`'s cap allows across instances: concurrency times the events a request carries. */
  private capOf(target: string): number {
    return this.concurrency * this.eventsPerRequest(target);
  }

  /**
   * Kept emits first (no round trip); then, for what they leave of `limit`, the database's due rows,
   * unless what it last said (`seen`) shows none due.
   */
  async claim(target: string, now: number, limit: number): Promise<OutboxRecord[]> {
    if (this.maxStamp > now + DEFAULTS.outbox.clockStepSlackMs) await this.unstepClock(now);
    const taken = this.kept.take(target, limit);
    if (taken.length === limit || this.seen.noneDueBy(target, now)) return taken;
    try {
      return [...taken, ...(await this.claimWith(target, limit - taken.length, false, now, taken.length))];
    } catch (error) {
      this.kept.putBack(target, taken); // the next claim takes them
      throw error;
    }
  }

  /** A wall-clock step back: this service's deliveries created or tried "in the future" are due now, their times pulled back to now. */
  private async unstepClock(now: number): Promise<void> {
    const limit = now + DEFAULTS.outbox.clockStepSlackMs;
    const result = await this.guard(async () => {
      await this.ensureReady();
      return this.db.pool.query(
        `UPDATE ${this.s}.events_outbox SET next_attempt_at = $2, created_at = LEAST(created_at, $2),
           last_attempt_at = LEAST(last_attempt_at, $2)
         WHERE service = $1 AND (created_at > $3 OR last_attempt_at > $3)`,
        [this.service, now, limit],
      );
    });
    this.logger?.warn('wall clock stepped back; deliveries waiting on the old time are due now', {
      where: this.where,
      stepMs: this.maxStamp - now,
      deliveries: result.rowCount ?? 0,
    });
    this.maxStamp = now;
    this.seen.forget();
  }

  /** Remembers the latest time written, for the clock-step check. */
  private stamp(ms: number | undefined): void {
    if (ms !== undefined && ms > this.maxStamp) this.maxStamp = ms;
  }

  /** A kept emit when there is one (this instance holds its lease already), else the database's soonest. */
  async claimProbe(target: string): Promise<OutboxRecord | undefined> {
    const [kept] = this.kept.take(target, 1);
    return kept ?? (await this.claimWith(target, 1, true, Date.now()))[0];
  }

  /**
   * One call of `events_claim` (schema.ts): the target's row locked, the leases live on it across
   * instances counted, and what is due leased within the target's concurrency (a target that is
   * down: one delivery, only when none is in flight anywhere, at most every `busyRetryMs`; a probe:
   * the soonest, due or not), in one round trip. This instance's delivered rows of the target not
   * deleted yet are leased still: added to the cap (a probe's or a down target's cap is one, set by
   * the database: they are deleted first).
   */
  private async claimWith(target: string, limit: number, probe: boolean, now: number, kept = 0): Promise<OutboxRecord[]> {
    const exact = probe || this.downSeen.has(target);
    return this.delivered.counting([target], exact, (extra) => this.claimCounted(target, limit, probe, now, kept, extra(target)));
  }

  private async claimCounted(target: string, limit: number, probe: boolean, now: number, kept: number, delivered: number): Promise<OutboxRecord[]> {
    return this.guard(async () => {
      await this.ensureReady();
      const cap = this.capOf(target) + delivered;
      this.seen.forget(target);
      const result = await this.db.run<OutboxRow & { others: string | null; down: boolean } & DueRow>(
        `SELECT * FROM ${this.s}.events_claim($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [this.service, target, now, this.leaseMs, this.owner, limit, cap, probe, DEFAULTS.database.busyRetryMs],
      );
      const rows = result.rows.filter((row) => row.id !== null);
      const due = result.rows.find((row) => row.id === null);
      if (due !== undefined) this.seen.remember(target, due);
      const down = result.rows[0]?.down === true;
      const want = probe || down ? 1 : limit;
      if (down) this.downSeen.add(target);
      else this.downSeen.delete(target);
      // Fewer than asked while others hold the target (their claims, a probe): look again soon, not in a loop.
      // (Held back by this instance's own claims needs no polling: each one ending pumps again.)
      // Nothing leased: possibly held elsewhere or a down target's probe not due; nextDueAt decides.
      const others = Number(result.rows[0]?.others ?? 0);
      if (rows.length + kept === 0 || (others > 0 && rows.length < want)) this.busy.add(target);
      else this.busy.delete(target);
      const records = rows.map(toRecord).sort(byDue);
      for (const record of records) this.held.set(String(record.id), record.target);
      return records;
    });
  }

  private async markUp(target: string): Promise<void> {
    await this.write(
      `WITH t AS (UPDATE ${this.s}.events_targets SET down = false, probe_at = 0 WHERE service = $1 AND target = $2 AND down RETURNING 1)
       SELECT pg_notify('${OUTBOX_CHANNEL}', $3) FROM t`,
      [this.service, target, `${this.schema}\t${this.service}\t${target}`],
    );
  }

  /**
   * Deliveries only (the common case, a request's events all delivered): their rows join a group
   * deleted in one statement (`SettleGroups`: at most `database.settleGroupMax` ids,
   * `database.settleGroupMs` after the first), and this resolves once they are queued, not once
   * deleted. That is safe: until its DELETE a row stays leased to this instance (`held`, renewed by
   * the heartbeat), so no claim here or elsewhere takes it, and the caps count it out
   * (`SettleGroups.counting`); a crash before the DELETE only delivers it again after its lease
   * (receivers dedupe), as a crash before the WAL flush of a settle already does (NO_FLUSH). And
   * it spares the lane, which awaits this before its request counts as done, up to
   * `settleGroupMs` on every request. `close()` writes the group; so do the reads that would see
   * its rows (`stats`, `targets`, `pendingRecords`) and the bus's `flush()` (`flushSettles`).
   *
   * Any other outcome: every outcome in one statement, so one transaction and one round trip, the
   * open group's deliveries with them (the group is not written on its own): completions deleted,
   * reschedules and dead letters only while this instance holds the lease (past it, another
   * instance owns the row).
   */
  async settleMany(settlements: readonly Settlement[]): Promise<void> {
    if (settlements.length === 0) return;
    const done: number[] = [];
    const again: OutboxRecord[] = [];
    const dead: OutboxRecord[] = [];
    const reasons: string[] = [];
    for (const settlement of settlements) {
      this.stamp(settlement.record.lastAttemptAt);
      if (settlement.kind === 'complete') done.push(settlement.record.id);
      else if (settlement.kind === 'reschedule') {
        settlement.record.nextAttemptAt = settlement.nextAttemptAt;
        again.push(settlement.record);
      } else {
        dead.push(settlement.record);
        reasons.push(settlement.reason);
      }
    }
    const history = (records: OutboxRecord[]) => [
      records.map((r) => r.id),
      records.map((r) => r.attempts),
      records.map((r) => r.nextAttemptAt),
      records.map((r) => r.lastAttemptAt ?? null),
      records.map((r) => r.lastStatus ?? null),
      records.map((r) => r.lastError ?? null),
    ];
    const targets = new Map(settlements.map(({ record }) => [record.id, this.held.get(String(record.id))]));
    if (done.length === settlements.length && !this.delivered.stopping) {
      this.delivered.queue(settlements.map(({ record }): Delivered => [record.id, record.target]));
    } else if (done.length === settlements.length) {
      // Closing: written at once (a plain DELETE, cheaper to plan than the statement below).
      await this.write(deleteDeliveredSql(this.s), [done], done, true);
    } else {
      await this.delivered.carry((delivered) =>
        this.write(
          `WITH done AS (DELETE FROM ${this.s}.events_outbox WHERE id = ANY($1::bigint[]) RETURNING 1),
         again AS (UPDATE ${this.s}.events_outbox o SET leased_until = NULL, lease_owner = NULL, attempts = u.attempts,
             next_attempt_at = u.next_attempt_at, last_attempt_at = u.last_attempt_at, last_status = u.last_status,
             last_error = u.last_error
           FROM unnest($3::bigint[], $4::int[], $5::bigint[], $6::bigint[], $7::int[], $8::text[]) AS u(id, attempts, next_attempt_at, last_attempt_at, last_status, last_error)
           WHERE o.id = u.id AND o.lease_owner = $2 RETURNING 1),
         gone AS (DELETE FROM ${this.s}.events_outbox WHERE id = ANY($9::bigint[]) AND lease_owner = $2
           RETURNING id, service, event_id, type, source, target, body, created_at, traceparent, tracestate),
         buried AS (INSERT INTO ${this.s}.events_dead_letters (id, service, event_id, type, source, target, body, created_at,
             traceparent, tracestate, attempts, next_attempt_at, last_attempt_at, last_status, last_error, dead_at, reason)
           SELECT d.id, d.service, d.event_id, d.type, d.source, d.target, d.body, d.created_at, d.traceparent, d.tracestate,
             k.attempts, k.next_attempt_at, k.last_attempt_at, k.last_status, k.last_error, $16, k.reason
           FROM gone d JOIN unnest($9::bigint[], $10::int[], $11::bigint[], $12::bigint[], $13::int[], $14::text[], $15::text[])
             AS k(id, attempts, next_attempt_at, last_attempt_at, last_status, last_error, reason) ON k.id = d.id
           ON CONFLICT (id) DO UPDATE SET attempts = EXCLUDED.attempts, last_attempt_at = EXCLUDED.last_attempt_at,
             last_status = EXCLUDED.last_status, last_error = EXCLUDED.last_error, dead_at = EXCLUDED.dead_at, reason = EXCLUDED.reason
           RETURNING 1)
         SELECT (SELECT count(*) FROM done) AS done, (SELECT count(*) FROM again) AS again, (SELECT count(*) FROM buried) AS buried,
           ${NO_FLUSH}`,
          [[...delivered, ...done], this.owner, ...history(again), ...history(dead), reasons, Date.now()],
          [...targets.keys()],
        ),
      );
    }
    const up = new Set<string>();
    for (const settlement of settlements) {
      const target = targets.get(settlement.record.id);
      if (settlement.kind === 'complete' && target !== undefined && this.downSeen.delete(target)) up.add(target);
    }
    // A success is news to every instance: the target is up (whoever marked it down, even a dead instance).
    for (const target of up) await this.markUp(target);
  }

  /** Writes the delivered rows waiting for their DELETE now; resolves once written or failed (the bus's `flush()`). */
  flushSettles(): Promise<void> {
    return this.delivered.flush();
  }

  /** One group of delivered rows deleted (SettleGroups), its commit not waiting for the WAL flush. */
  private async deleteDelivered(ids: readonly number[]): Promise<void> {
    await this.ensureReady();
    await this.db.run(deleteDeliveredSql(this.s), [ids]);
  }

  /**
   * After a group's DELETE: its rows are held here no more, unless it is tried again (the database
   * could not be reached: they stay leased here, renewed, until it answers) or the outbox closes
   * (`close` hands them back). A failure is said once, at warn, until a group is written again.
   */
  private deleted(ids: readonly number[], failure: { error: unknown; retryInMs: number | undefined } | undefined): void {
    if (failure === undefined || (failure.retryInMs === undefined && !this.delivered.stopping)) {
      for (const id of ids) this.held.delete(String(id));
    }
    if (failure === undefined) {
      this.recovered();
      if (!this.deleteFailing) return;
      this.deleteFailing = false;
      this.logger?.info('delivered events are removed from the outbox again', { database: this.where });
      return;
    }
    if (this.deleteFailing) return;
    this.deleteFailing = true;
    const { error, retryInMs } = failure;
    this.logger?.warn(
      retryInMs === undefined
        ? 'could not remove delivered events from the outbox; they will be delivered again once their lease ends (receivers dedupe)'
        : 'could not remove delivered events from the outbox yet; retrying, they stay leased to this instance',
      {
        database: this.where,
        deliveries: ids.length,
        error: (error as Error)?.message ?? String(error),
        ...(retryInMs !== undefined && { retryInMs }),
        hint: 'Check that PostgreSQL runs and accepts connections at EVENTS_DATABASE_URL.',
      },
    );
  }

  async release(target: string, since: number, now: number): Promise<void> {
    await this.write(
      `WITH r AS (UPDATE ${this.s}.events_outbox SET next_attempt_at = $3
         WHERE service = $1 AND target = $2 AND leased_until IS NULL AND last_attempt_at >= $4 RETURNING 1),
       t AS (UPDATE ${this.s}.events_targets SET down = false, probe_at = 0 WHERE service = $1 AND target = $2 RETURNING 1)
       SELECT pg_notify('${OUTBOX_CHANNEL}', $5), (SELECT count(*) FROM r), (SELECT count(*) FROM t)`,
      [this.service, target, now, since, `${this.schema}\t${this.service}\t${target}`],
    );
  }

  async markDown(target: string): Promise<void> {
    const kept = this.kept.take(target, Infinity);
    for (const record of kept) this.held.delete(String(record.id));
    // Its kept emits go back to the outbox, for whichever instance probes the target.
    if (kept.length > 0) {
      await this.write(`UPDATE ${this.s}.events_outbox SET leased_until = NULL, lease_owner = NULL WHERE id = ANY($1::bigint[]) AND lease_owner = $2`, [
        kept.map((record) => record.id),
        this.owner,
      ]);
    }
    await this.write(
      `INSERT INTO ${this.s}.events_targets (service, target, down, probe_at) VALUES ($1, $2, true, $3)
       ON CONFLICT (service, target) DO UPDATE SET down = true, probe_at = EXCLUDED.probe_at`,
      [this.service, target, Date.now() + DEFAULTS.database.busyRetryMs],
    );
  }

  /**
   * A kept emit: due now. Else what the database last said (`seen`: a claim that leased fewer than
   * asked answers it, with no round trip of its own), or one query.
   */
  async nextDueAt(target: string): Promise<number | undefined> {
    const first = this.kept.first(target);
    if (first !== undefined) return first.nextAttemptAt;
    const seen = this.seen.fresh(target) ?? this.seen.remember(target, await this.guard(() => this.queryNextDue(target)));
    const times = [seen.due, seen.leaseEnd].filter((time): time is number => time !== undefined);
    if (times.length === 0) return undefined;
    const next = Math.min(...times);
    // Held up by other instances (their concurrency, a probe elsewhere): look again soon, not in a loop.
    return this.busy.has(target) ? Math.max(next, Date.now() + DEFAULTS.database.busyRetryMs) : next;
  }

  private async queryNextDue(target: string): Promise<DueRow> {
    await this.ensureReady();
    const result = await this.db.run<DueRow>(
      `SELECT MIN(next_attempt_at) FILTER (WHERE leased_until IS NULL OR leased_until <= ${DB_NOW}) AS next_due,
         MIN(leased_until) FILTER (WHERE leased_until > ${DB_NOW} AND lease_owner <> $3) AS lease_end,
         ${DB_NOW} AS db_now
       FROM ${this.s}.events_outbox WHERE service = $1 AND target = $2`,
      [this.service, target, this.owner],
    );
    return result.rows[0]!;
  }

  targets(): Promise<string[]> {
    return this.operator.targets();
  }

  stats(): Promise<OutboxStats> {
    return this.operator.stats();
  }

  deadLetters(filter?: DeadLetterFilter): Promise<DeadLetter[]> {
    return this.operator.deadLetters(filter);
  }

  deadLetterPage(filter: DeadLetterFilter | undefined, page: PageRequest): Promise<DeadLetterPage> {
    return this.operator.deadLetterPage(filter, page);
  }

  replay(selection: DeadLetterSelection): Promise<number> {
    return this.operator.replay(selection);
  }

  discard(selection: DeadLetterSelection): Promise<number> {
    return this.operator.discard(selection);
  }

  pendingRecords(): Promise<OutboxRecord[]> {
    return this.operator.pendingRecords();
  }

  /**
   * A committed emit in another instance, a commit of the caller's transaction, a replay wake its
   * target's lane: NOTIFY, on the database's LISTEN connection (an emit of this instance without
   * `tx` is woken by the bus instead).
   */
  onWork(wake: (target: string) => void): void {
    const prefix = `${this.schema}\t${this.service}\t`;
    this.wake = wake;
    this.unlisten?.();
    this.unlisten = this.db.listen(OUTBOX_CHANNEL, (payload) => {
      if (!payload.startsWith(prefix)) return;
      const target = payload.slice(prefix.length);
      this.seen.forget(target);
      wake(target);
    });
  }

  /** Extends the leases of the deliveries this instance has in flight. */
  private async renew(): Promise<void> {
    if (this.held.size === 0 || this.closed) return;
    const ids = [...this.held.keys()];
    try {
      await this.db.pool.query(
        `UPDATE ${this.s}.events_outbox SET leased_until = ${DB_NOW} + $1 WHERE lease_owner = $2 AND id = ANY($3::bigint[])`,
        [this.leaseMs, this.owner, ids],
      );
    } catch (error) {
      this.failed(error);
    }
  }

  async close(deadline?: number): Promise<void> {
    if (this.closed) return;
    this.db.closeBy(deadline);
    // Emits queued this turn are written first; then the delivered rows waiting for their DELETE (one try).
    if (this.emits.waiting) await this.emits.flush();
    this.delivered.stop();
    await this.delivered.flush();
    await Promise.allSettled([...this.writes]);
    // Deliveries still claimed here are not in flight any more (the bus closes the store last):
    // hand them back now rather than after the lease, so that a restart or another instance goes on at once.
    if (this.held.size > 0) {
      await this.db.pool
        .query(`UPDATE ${this.s}.events_outbox SET leased_until = NULL, lease_owner = NULL WHERE lease_owner = $1`, [this.owner])
        .catch(() => undefined);
    }
    this.closed = true;
    clearInterval(this.heartbeat);
    this.unlisten?.();
    await this.db.release();
  }

  /**
   * A dispatcher's write (complete, reschedule, dead letter, target state): one statement, its own
   * transaction. The frequent ones (settles) select NO_FLUSH. The deliveries it `settles` are held
   * here no more, written or not: a failed write leaves their leases to run out (renewing them
   * would keep them here, undelivered, for as long as the process lives).
   */
  private async write(text: string, params: unknown[], settles: readonly number[] = [], onlyDeletes = false): Promise<void> {
    // Rows made due, or not due any more: what the database said before is out of date. (Deleting
    // delivered rows, leased here, changes nothing another claim could take.)
    if (!onlyDeletes) this.seen.forget();
    try {
      await this.track(
        this.guard(async () => {
          await this.ensureReady();
          await this.db.run(text, params);
        }),
      );
    } finally {
      for (const id of settles) this.held.delete(String(id));
    }
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.writes.add(promise);
    void promise.then(
      () => this.writes.delete(promise),
      () => this.writes.delete(promise),
    );
    return promise;
  }

  /** Runs a dispatcher's call: a failure is logged once per change (the dispatcher retries), a success after one logs the recovery. */
  private async guard<T>(run: () => Promise<T>): Promise<T> {
    try {
      const value = await run();
      this.recovered();
      return value;
    } catch (error) {
      this.failed(error);
      throw error;
    }
  }

  private failed(error: unknown): void {
    const reason = (error as Error)?.message ?? String(error);
    if (this.fault !== undefined || this.closed) return;
    this.fault = reason;
    this.logger?.error('outbox database call failed; retrying in the background', {
      database: this.where,
      error: reason,
      hint: 'Check that PostgreSQL runs and accepts connections at EVENTS_DATABASE_URL; delivery resumes by itself.',
    });
  }

  private recovered(): void {
    if (this.fault === undefined) return;
    this.fault = undefined;
    this.logger?.info('outbox database reachable again; delivery resumes', { database: this.where });
  }

  /** An error of `add`/`replay`: unreachable database → OutboxUnavailableError; anything else as it is. */
  private unavailable(error: unknown): unknown {
    if (!isUnavailable(error)) return error;
    return new OutboxUnavailableError(this.where, (error as Error)?.message ?? String(error), {
      cause: error,
      hint: 'Check that PostgreSQL runs and accepts connections at EVENTS_DATABASE_URL.',
    });
  }
}

function byDue(a: OutboxRecord, b: OutboxRecord): number {
  return a.nextAttemptAt - b.nextAttemptAt || a.id - b.id;
}

