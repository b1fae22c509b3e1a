import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULTS } from '../../defaults.js';
import { OutboxUnavailableError } from '../../errors/index.js';
import type { NewDelivery } from '../../send/outbox-store.js';
import type { TransactionClient } from '../../types.js';
import { isUnavailable, type PostgresDatabase, refusedByServer, within } from './database.js';
import { OUTBOX_CHANNEL } from './schema.js';
import type { SettleGroups } from './settle-groups.js';
import { connectionBy, endBackend, transactionCommitted } from './unanswered-statement.js';

/** The fields of a delivery the INSERT of `add` takes, in the order of its `unnest` ($2…$9). */
const INSERTED = ['eventId', 'type', 'source', 'target', 'body', 'createdAt', 'traceparent', 'tracestate'] as const;

/** The rows of a group INSERT leased to this instance: id by `<event id>\u0000<target>`; undefined when none (or not learnt). */
export type KeptIds = Map<string, number> | undefined;

export interface EmitWritesOptions {
  db: PostgresDatabase;
  service: string;
  /** This instance, in `lease_owner`. */
  owner: string;
  leaseMs: number;
  writeWaitMs: number;
  /** The group INSERT is `events_add`, which leases to this instance what the targets' caps leave. */
  sendsOwnEmits: boolean;
  /** The leases a target's cap allows across instances (concurrency times its events per request). */
  cap(target: string): number;
  /** The outbox's delivered rows waiting for their DELETE: still leased, so added to the caps (`counting`). */
  delivered: SettleGroups;
  /** Where the outbox is, for messages. */
  where: string;
  /** The tables exist (the outbox's `ensureReady`). */
  ready(): Promise<void>;
  /** Whether the outbox is closed (a failed try is not tried again). */
  closed(): boolean;
  /** A failure the outbox logs once per change. */
  failed(error: unknown): void;
  /** An error of `add` as it rejects: unreachable database → OutboxUnavailableError; anything else as it is. */
  unavailable(error: unknown): unknown;
  /** A write the outbox's `close` waits for. */
  track<T>(promise: Promise<T>): Promise<T>;
  /** A group INSERT committed: `kept`, the rows leased to this instance; the others' targets are to be woken. */
  recorded(deliveries: readonly NewDelivery[], kept: KeptIds): void;
}

interface Waiter {
  deliveries: readonly NewDelivery[];
  /** When it was queued: its answer is due `writeWaitMs` later. */
  at: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * An emit's way into the PostgreSQL outbox's table: in the caller's transaction, or the group
 * commit of every delivery added in one turn of the event loop (one INSERT, or `events_add`),
 * retried while the database is unreachable, and, when an INSERT goes unanswered, found out
 * whether it committed (unanswered-statement.ts), so that a refusal means "not recorded".
 * The outbox delegates its `add` here and keeps what follows a commit (`recorded`).
 */
export class EmitWrites {
  private queue: Waiter[] = [];
  private flushScheduled = false;
  /** The group INSERT in flight: one at a time; emits queued meanwhile go in the next. */
  private writing: Promise<void> | undefined;
  private readonly s: string;
  private readonly schema: string;

  constructor(private readonly o: EmitWritesOptions) {
    this.s = o.db.s;
    this.schema = o.db.schema;
  }

  /** Whether emits wait for this turn's group INSERT. */
  get waiting(): boolean {
    return this.queue.length > 0;
  }

  /** In the caller's transaction `tx`, or queued for this turn's group INSERT (`flush`). */
  async add(deliveries: readonly NewDelivery[], tx: TransactionClient | undefined): Promise<void> {
    if (tx !== undefined) {
      try {
        await within(this.o.ready(), this.o.writeWaitMs, () => this.late());
        await tx.query(...this.insertStatement(deliveries, true));
      } catch (error) {
        throw this.o.unavailable(error);
      }
      return;
    }
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ deliveries, at: Date.now(), resolve, reject });
      this.schedule();
    });
  }

  /** The next group INSERT at the end of this turn, or once the one in flight ends (`flush` waits for it). */
  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => void this.o.track(this.flush()));
  }

  /**
   * Writes what is queued, after the group INSERT in flight: one INSERT at a time, so that at
   * everyday rates each emit is written at once, and under load the emits that came during a
   * commit share the next (with `events_add`, INSERTs side by side would only wait in turn for the
   * targets' row locks, each holding them through its commit's WAL flush).
   */
  async flush(): Promise<void> {
    await this.afterWriting();
    this.flushScheduled = false;
    const batch = this.take();
    if (batch.length === 0) return;
    if (this.queue.length > 0) this.schedule(); // beyond the group's bound: the next INSERT
    const writing = this.write(batch);
    this.writing = writing;
    try {
      await writing;
    } finally {
      this.writing = undefined;
    }
  }

  /** The oldest emits queued, up to `emitGroupMax` deliveries (at least one emit). */
  private take(): Waiter[] {
    let end = 0;
    for (let count = 0; end < this.queue.length && (end === 0 || count + this.queue[end]!.deliveries.length <= DEFAULTS.database.emitGroupMax); end++) {
      count += this.queue[end]!.deliveries.length;
    }
    return this.queue.splice(0, end);
  }

  /**
   * Waits for the group INSERT in flight. An emit queued meanwhile whose `writeWaitMs` runs out
   * first is refused then: never sent, so not recorded (as when no connection came in time).
   */
  private async afterWriting(): Promise<void> {
    while (this.writing !== undefined) {
      const ended = this.writing.then(
        () => false,
        () => false,
      );
      const first = this.queue[0];
      if (first === undefined) {
        await ended;
        continue;
      }
      let timer: NodeJS.Timeout | undefined;
      const due = new Promise<true>((resolve) => (timer = setTimeout(() => resolve(true), first.at + this.o.writeWaitMs - Date.now())));
      const late = await Promise.race([ended, due]);
      clearTimeout(timer);
      if (!late) continue;
      const now = Date.now();
      const refused = this.queue.filter((w) => w.at + this.o.writeWaitMs <= now);
      this.queue = this.queue.filter((w) => w.at + this.o.writeWaitMs > now);
      for (const waiter of refused) waiter.reject(this.o.unavailable(this.late()));
    }
  }

  /**
   * One INSERT of `batch` (its own transaction), retried while the database is unreachable,
   * answered within `writeWaitMs` of the first emit's call; once it commits, the outbox is told
   * (`recorded`: its targets are woken in the other instances by one NOTIFY sent aside; this one
   * wakes itself: the bus's `notify`). A refusal means the deliveries are not recorded, and never
   * will be: a connection that comes after the deadline goes back unused, and a statement sent
   * but not answered in time is found out (`committed`). When that cannot be found out, the emit
   * rejects saying so.
   */
  private async write(batch: readonly Waiter[]): Promise<void> {
    const deliveries = batch.flatMap((w) => w.deliveries);
    let kept: KeptIds;
    try {
      kept = await this.insert(deliveries, batch[0]!.at + this.o.writeWaitMs);
    } catch (error) {
      for (const waiter of batch) waiter.reject(this.refusal(error, waiter.deliveries));
      return;
    }
    this.o.recorded(deliveries, kept);
    for (const waiter of batch) waiter.resolve();
  }

  /**
   * The group INSERT. With `sendsOwnEmits`, `events_add` counts the leases live on the targets,
   * this instance's delivered rows waiting for their DELETE among them: those are added to the caps.
   */
  private insert(deliveries: readonly NewDelivery[], deadline: number): Promise<KeptIds> {
    if (!this.o.sendsOwnEmits) return this.insertTried(this.insertStatement(deliveries, false), deliveries, deadline);
    const targets = [...new Set(deliveries.map((d) => d.target))].sort();
    return this.o.delivered.counting(targets, false, (extra) => this.insertTried(this.addStatement(deliveries, targets, extra), deliveries, deadline));
  }

  /** `insertOnce`, tried again while the database is unreachable and the deadline allows (the last try was not recorded). */
  private async insertTried(statement: [string, unknown[]], deliveries: readonly NewDelivery[], deadline: number): Promise<KeptIds> {
    let wait: number = DEFAULTS.storeRetry.baseDelayMs;
    for (;;) {
      try {
        return await this.insertOnce(statement, deliveries, deadline);
      } catch (error) {
        if (error instanceof Undecided || !isUnavailable(error) || Date.now() + wait > deadline || this.o.closed()) throw error;
        this.o.failed(error);
        await sleep(wait);
        wait = Math.min(DEFAULTS.storeRetry.maxDelayMs, wait * 2);
      }
    }
  }

  /**
   * One try: a connection taken by the deadline (one that comes later goes back unused, the
   * statement never sent), the INSERT on it. The server's refusal (an ERROR) rolled it back; no
   * answer by the deadline, or a connection lost, may have committed it: `committed` finds out.
   * Resolves when recorded, with the ids of the rows leased to this instance (by event id and
   * target; none when the commit was found out afterwards: their leases are given back); rejects
   * when not, or with Undecided.
   */
  private async insertOnce([text, values]: [string, unknown[]], deliveries: readonly NewDelivery[], deadline: number): Promise<KeptIds> {
    let broken: Error | undefined;
    const onError = (error: Error) => (broken ??= error);
    await within(this.o.ready(), deadline - Date.now(), () => this.late());
    const client = await connectionBy(this.o.db, onError, deadline, () => this.late());
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      client.off('error', onError);
      client.release(broken);
    };
    let answered = false;
    const answer = this.o.db.run<{ id: string; event_id: string; target: string; kept: boolean }>(text, values, client).then((result) => ((answered = true), result));
    try {
      const { rows } = await within(answer, deadline - Date.now(), () => this.late());
      return new Map(rows.filter((row) => row.kept).map((row) => [`${row.event_id}\u0000${row.target}`, Number(row.id)]));
    } catch (error) {
      if (refusedByServer(error)) throw error;
      broken ??= error as Error;
      answer.catch(() => {});
      const pid = (client as { processID?: number }).processID;
      if (!(await this.committed(pid, () => answered, release, deliveries, error))) throw error;
      if (this.o.sendsOwnEmits) await this.giveBack(deliveries);
      return undefined;
    } finally {
      release();
    }
  }

  /** Kept rows whose ids this instance never learnt (their INSERT's answer was lost): claimable by any instance now. */
  private async giveBack(deliveries: readonly NewDelivery[]): Promise<void> {
    await this.o.db.pool
      .query(
        `UPDATE ${this.s}.events_outbox SET leased_until = NULL, lease_owner = NULL
         WHERE service = $1 AND lease_owner = $2 AND event_id = ANY($3::text[])`,
        [this.o.service, this.o.owner, deliveries.map((d) => d.eventId)],
      )
      .catch((error: unknown) => this.o.failed(error)); // their leases run out instead
  }

  /**
   * Whether the INSERT of `deliveries`, sent on backend `pid` and not answered, committed: the
   * backend is ended (`endBackend`), then `discard` lets its connection go. Its transaction's
   * status decides or, when it had written nothing yet when it was ended (a lock wait, or done
   * before), whether its rows exist. Undecided when that cannot be found out within `writeWaitMs`.
   */
  private async committed(
    pid: number | undefined,
    answered: () => boolean,
    discard: () => void,
    deliveries: readonly NewDelivery[],
    failure: unknown,
  ): Promise<boolean> {
    let gaveUp = false;
    const findOut = async (): Promise<boolean> => {
      const xid = await endBackend(this.o.db, pid, () => gaveUp);
      discard();
      if (answered()) return true;
      if (xid !== null) return transactionCommitted(this.o.db, xid);
      const found = await this.o.db.pool.query(
        `SELECT 1 FROM ${this.s}.events_outbox o JOIN unnest($2::text[], $3::text[]) AS u(event_id, target)
           ON o.service = $1 AND o.event_id = u.event_id AND o.target = u.target
         UNION ALL
         SELECT 1 FROM ${this.s}.events_dead_letters d JOIN unnest($2::text[], $3::text[]) AS u(event_id, target)
           ON d.service = $1 AND d.event_id = u.event_id AND d.target = u.target
         LIMIT 1`,
        [this.o.service, deliveries.map((d) => d.eventId), deliveries.map((d) => d.target)],
      );
      return found.rows.length > 0;
    };
    const finding = findOut();
    try {
      return await within(finding, this.o.writeWaitMs, () => new Error(`no answer within outbox.writeWaitMs (${this.o.writeWaitMs} ms)`));
    } catch (error) {
      gaveUp = true;
      finding.catch(() => {});
      const reason = `${(failure as Error)?.message ?? String(failure)}; then whether it committed could not be found out: ${(error as Error)?.message ?? String(error)}`;
      throw new Undecided(reason, { cause: error });
    }
  }

  /**
   * An emit's group INSERT through `events_add` (schema.ts): what each target's cap leaves, across
   * instances, is leased to this instance, to send without a claim; the rest is written for anyone.
   * `extra(target)`: this instance's delivered rows of `target` not deleted yet, added to its cap.
   */
  private addStatement(deliveries: readonly NewDelivery[], targets: readonly string[], extra: (target: string) => number): [string, unknown[]] {
    return [
      `SELECT * FROM ${this.s}.events_add($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
        this.o.service,
        this.o.owner,
        this.o.leaseMs,
        ...INSERTED.map((key) => deliveries.map((d) => d[key] ?? null)),
        targets,
        targets.map((target) => this.o.cap(target) + extra(target)),
      ],
    ];
  }

  /** INSERT … SELECT FROM unnest(…); with `notify` (in the caller's transaction, which alone can wake the others, at its commit), one pg_notify per target in the same statement. */
  private insertStatement(deliveries: readonly NewDelivery[], notify: boolean): [string, unknown[]] {
    const values = [this.o.service, ...INSERTED.map((key) => deliveries.map((d) => d[key] ?? null))];
    const insert = `INSERT INTO ${this.s}.events_outbox
        (service, event_id, type, source, target, body, created_at, next_attempt_at, traceparent, tracestate)
      SELECT $1, u.event_id, u.type, u.source, u.target, u.body, u.created_at, u.created_at, u.traceparent, u.tracestate
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[])
        AS u(event_id, type, source, target, body, created_at, traceparent, tracestate)`;
    if (!notify) return [insert, values];
    return [
      `WITH ins AS (${insert} RETURNING target)
       SELECT pg_notify('${OUTBOX_CHANNEL}', $10 || t.target) FROM (SELECT DISTINCT target FROM ins) t`,
      [...values, `${this.schema}\t${this.o.service}\t`],
    ];
  }

  /** No answer within `writeWaitMs`: an error that `unavailable` turns into an OutboxUnavailableError. */
  private late(): Error {
    return Object.assign(new Error(`PostgreSQL did not answer within outbox.writeWaitMs (${this.o.writeWaitMs} ms)`), { code: 'ETIMEDOUT' });
  }

  /** A group INSERT's failure as `add` rejects with: undecided → OutboxUnavailableError naming the events whose outcome is unknown. */
  private refusal(error: unknown, deliveries: readonly NewDelivery[]): unknown {
    if (!(error instanceof Undecided)) return this.o.unavailable(error);
    return new OutboxUnavailableError(this.o.where, error.message, {
      cause: error.cause,
      unknownEventIds: [...new Set(deliveries.map((d) => d.eventId))],
      hint: 'Check that PostgreSQL runs and accepts connections at EVENTS_DATABASE_URL.',
    });
  }
}

/** A group INSERT sent but not answered, whose commit could not be found out. */
class Undecided extends Error {}
