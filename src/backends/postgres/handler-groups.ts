import type { PoolClient } from 'pg';
import { DEFAULTS } from '../../defaults.js';
import { TransactionStoreError } from '../../receive/transaction-store-error.js';
import type { HandlerContext } from '../../types.js';
import type { PostgresDatabase } from './database.js';

/** A handler to run in a group's transaction, and how to settle its caller. */
export interface GroupedHandler {
  source: string;
  id: string;
  /** The inbox rows (handler keys) its completion writes: its own, and the event's `done` when it is the last handler. */
  rows: readonly string[];
  /** Sort key of its claim: claims are taken in this order, so two groups never lock each other's rows crosswise. */
  order: string;
  run(context: HandlerContext): Promise<void>;
  resolve(outcome: 'ran' | 'done-already'): void;
  reject(error: unknown): void;
}

export interface HandlerGroupsOptions {
  db: PostgresDatabase;
  /** Inserts the rows of `handlers` (ON CONFLICT DO NOTHING), returning the handlers it claimed (their first row inserted). */
  claim(client: PoolClient, handlers: readonly GroupedHandler[]): Promise<ReadonlySet<GroupedHandler>>;
  /** Deletes the rows of `handlers` (a claim given back in the same transaction). */
  unclaim(client: PoolClient, handlers: readonly GroupedHandler[]): Promise<void>;
}

type Outcome = 'ran' | 'done-already' | { error: unknown };

/**
 * Handlers run in transactions shared by up to `recordGroup.maxCompletions` of them (one commit,
 * one fsync, for the group), each behind a savepoint (but a group of one), so that one that
 * throws rolls back alone.
 * A group takes its share of the handlers queued when it gets its connection (it never waits for
 * more), claims their rows in one statement (in a fixed order: no deadlock between groups), runs
 * them one after the other, and commits: a crash reruns at most a group's handlers, as with the
 * receiver's completion groups. Groups run side by side, one per queued handler while the
 * database has handler slots. Nothing is settled before the commit: `'ran'` means committed.
 */
export class HandlerGroups {
  private readonly queue: GroupedHandler[] = [];
  /** Groups waiting for a connection: each will take its share of the queue. */
  private starting = 0;
  /** Groups waiting or running. */
  private active = 0;
  private readonly max = DEFAULTS.receiver.recordGroup.maxCompletions;

  constructor(private readonly o: HandlerGroupsOptions) {}

  add(handler: GroupedHandler): void {
    this.queue.push(handler);
    this.pump();
  }

  /** Enough groups for the queue: one per handler while the database has slots (they run side by side), a group's worth each beyond. */
  private pump(): void {
    const { length } = this.queue;
    while (length > this.starting * this.max || (length > this.starting && this.active < this.o.db.slots)) {
      this.starting += 1;
      this.active += 1;
      void this.group().finally(() => {
        this.active -= 1;
        this.pump();
      });
    }
  }

  /** What a group takes once it has its connection: its share of the queue among the groups starting, sorted (claims in order). */
  private take(): GroupedHandler[] {
    const share = Math.min(this.max, Math.ceil(this.queue.length / this.starting));
    this.starting -= 1;
    return this.queue.splice(0, share).sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
  }

  private async group(): Promise<void> {
    let taken: GroupedHandler[] | undefined;
    const outcomes = new Map<GroupedHandler, Outcome>();
    try {
      await this.o.db.handlerTransaction(async (client) => {
        taken = this.take();
        if (taken.length > 0) await this.runGroup(client, taken, outcomes);
      });
    } catch (error) {
      if (taken === undefined) {
        // No connection (or no BEGIN): the handlers this group would have taken fail with the store.
        taken = this.take();
      }
      for (const handler of taken ?? []) {
        const outcome = outcomes.get(handler);
        handler.reject(typeof outcome === 'object' ? outcome.error : new TransactionStoreError(error));
      }
      return;
    }
    for (const handler of taken ?? []) {
      const outcome = outcomes.get(handler)!;
      if (typeof outcome === 'object') handler.reject(outcome.error);
      else handler.resolve(outcome);
    }
  }

  /**
   * Claims, then runs each claimed handler behind the savepoint `handler`, released before the
   * next one (which fails when the handler left the transaction aborted: it is then rolled back
   * alone, as if it had thrown).
   */
  private async runGroup(client: PoolClient, handlers: GroupedHandler[], outcomes: Map<GroupedHandler, Outcome>): Promise<void> {
    const claimed = await this.o.claim(client, handlers);
    const [only] = handlers;
    // (`getTransactionStatus` is pg ≥ 8.23's: older clients take the savepoint path.)
    if (handlers.length === 1 && claimed.has(only!) && typeof client.getTransactionStatus === 'function') {
      return this.runAlone(client, only!, outcomes);
    }
    let last: GroupedHandler | undefined;
    for (const handler of handlers) {
      if (!claimed.has(handler)) {
        outcomes.set(handler, 'done-already');
        continue;
      }
      await this.settleLast(client, last, outcomes, last === undefined ? 'SAVEPOINT handler' : 'RELEASE SAVEPOINT handler; SAVEPOINT handler');
      last = handler;
      try {
        await handler.run({ tx: client });
        outcomes.set(handler, 'ran');
      } catch (error) {
        outcomes.set(handler, { error });
        last = undefined;
        await client.query('ROLLBACK TO SAVEPOINT handler; RELEASE SAVEPOINT handler');
        await this.o.unclaim(client, [handler]);
      }
    }
    await this.settleLast(client, last, outcomes, 'RELEASE SAVEPOINT handler');
  }

  /**
   * A group of one handler needs no savepoint (two round trips fewer, the common case below
   * saturation): when it throws, or leaves the transaction aborted, the whole transaction rolls
   * back, its claim with it.
   */
  private async runAlone(client: PoolClient, handler: GroupedHandler, outcomes: Map<GroupedHandler, Outcome>): Promise<void> {
    try {
      await handler.run({ tx: client });
      if (client.getTransactionStatus() === 'E') {
        throw new Error('the handler left its transaction aborted (a statement in it failed, its error caught): it was rolled back');
      }
    } catch (error) {
      outcomes.set(handler, { error });
      throw error;
    }
    outcomes.set(handler, 'ran');
  }

  /**
   * Sends `sql` (beginning with the release of the previous handler's savepoint, when it ran):
   * if the transaction was left aborted by that handler, it is rolled back to its savepoint, fails
   * alone, and `sql` is sent again without that release.
   */
  private async settleLast(client: PoolClient, last: GroupedHandler | undefined, outcomes: Map<GroupedHandler, Outcome>, sql: string): Promise<void> {
    if (last === undefined) {
      if (sql.startsWith('SAVEPOINT')) await client.query(sql);
      return;
    }
    try {
      await client.query(sql);
    } catch (error) {
      if ((error as { code?: string })?.code !== '25P02') throw error; // in_failed_sql_transaction
      outcomes.set(last, { error });
      await client.query('ROLLBACK TO SAVEPOINT handler; RELEASE SAVEPOINT handler');
      await this.o.unclaim(client, [last]);
      const rest = sql.replace(/^RELEASE SAVEPOINT handler;?\s*/, '');
      if (rest) await client.query(rest);
    }
  }
}
