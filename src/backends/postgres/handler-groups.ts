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
  /**
   * Begins the transaction on `client` and inserts the rows of `handlers` in it (ON CONFLICT DO
   * NOTHING), in one round trip; returns the handlers it claimed (their first row inserted).
   */
  claim(client: PoolClient, handlers: readonly GroupedHandler[]): Promise<ReadonlySet<GroupedHandler>>;
  /** Deletes the rows of `handlers` (a claim given back in the same transaction). */
  unclaim(client: PoolClient, handlers: readonly GroupedHandler[]): Promise<void>;
}

type Outcome = 'ran' | 'done-already' | { error: unknown };

/**
 * Handlers run in transactions shared by up to `recordGroup.maxCompletions` of them (one commit,
 * one fsync, for the group), each behind a savepoint taken at its first query (a group of one
 * needs none), so that one that throws rolls back alone.
 * A group takes its share of the handlers queued when it gets its connection (it never waits for
 * more), begins its transaction with the claim of their rows (one round trip; in a fixed order:
 * no deadlock between groups), runs
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
    /** The handlers called (a store failure after that may have cut one short: its writes rolled back). */
    const started = new Set<GroupedHandler>();
    try {
      await this.o.db.handlerTransaction(async (client) => {
        taken = this.take();
        if (taken.length > 0) await this.runGroup(client, taken, outcomes, started);
      });
    } catch (error) {
      if (taken === undefined) {
        // No connection: the handlers this group would have taken fail with the store.
        taken = this.take();
      }
      for (const handler of taken ?? []) {
        const outcome = outcomes.get(handler);
        handler.reject(typeof outcome === 'object' ? outcome.error : new TransactionStoreError(error, started.has(handler)));
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
   * Claims, then runs each claimed handler; the savepoint `handler` is taken just before its first
   * query, so a handler that never uses `tx` costs no round trip. One that throws, or leaves the
   * transaction aborted, is rolled back to its savepoint and its claim given back: it fails alone.
   */
  private async runGroup(client: PoolClient, handlers: GroupedHandler[], outcomes: Map<GroupedHandler, Outcome>, started: Set<GroupedHandler>): Promise<void> {
    const claimed = await this.o.claim(client, handlers);
    const [only] = handlers;
    if (handlers.length === 1 && claimed.has(only!)) return this.runAlone(client, only!, outcomes, started);
    for (const handler of handlers) {
      if (!claimed.has(handler)) {
        outcomes.set(handler, 'done-already');
        continue;
      }
      const savepoint = savepointOnFirstQuery(client);
      let failure: { error: unknown } | undefined;
      started.add(handler);
      try {
        await handler.run({ tx: savepoint.tx });
        if (savepoint.taken && (await leftAborted(client))) failure = { error: new Error(ABORTED) };
      } catch (error) {
        failure = { error };
      }
      outcomes.set(handler, failure ?? 'ran');
      if (failure === undefined) continue;
      if (savepoint.taken) await client.query('ROLLBACK TO SAVEPOINT handler');
      await this.o.unclaim(client, [handler]);
    }
  }

  /**
   * A group of one handler needs no savepoint (the common case below saturation): when it throws,
   * or leaves the transaction aborted, the whole transaction rolls back, its claim with it.
   */
  private async runAlone(client: PoolClient, handler: GroupedHandler, outcomes: Map<GroupedHandler, Outcome>, started: Set<GroupedHandler>): Promise<void> {
    started.add(handler);
    try {
      await handler.run({ tx: client });
      if (await leftAborted(client)) throw new Error(ABORTED);
    } catch (error) {
      outcomes.set(handler, { error });
      throw error;
    }
    outcomes.set(handler, 'ran');
  }
}

const ABORTED = 'the handler left its transaction aborted (a statement in it failed, its error caught): it was rolled back';

/**
 * `client` as one handler's `tx`: its first query takes the savepoint `handler` first (queued
 * ahead of it on the connection, not awaited: if it fails, so does that query).
 */
function savepointOnFirstQuery(client: PoolClient): { tx: PoolClient; readonly taken: boolean } {
  const state = { tx: client, taken: false };
  const query = (...args: unknown[]): unknown => {
    if (!state.taken) {
      state.taken = true;
      client.query('SAVEPOINT handler').catch(() => undefined);
    }
    return (client.query as (...args: unknown[]) => unknown)(...args);
  };
  state.tx = new Proxy(client, { get: (target, key) => (key === 'query' ? query : Reflect.get(target, key)) });
  return state;
}

/**
 * Whether a statement failed in the transaction (its error caught). pg tells without a round trip
 * once it has read the server's ready message, which follows the error (possibly in a later read:
 * until then the connection is busy, and its 'drain' comes with it).
 */
async function leftAborted(client: PoolClient): Promise<boolean> {
  const pg = client as PoolClient & { readyForQuery?: unknown };
  if (typeof pg.getTransactionStatus === 'function' && typeof pg.readyForQuery === 'boolean') {
    if (!pg.readyForQuery) {
      await new Promise<void>((resolve) => {
        const ready = () => {
          pg.off('drain', ready).off('end', ready);
          resolve();
        };
        pg.on('drain', ready).on('end', ready);
      });
    }
    return pg.getTransactionStatus() === 'E';
  }
  return client.query('SELECT 1').then(
    () => false,
    (error: { code?: string }) => (error?.code === '25P02' ? true : Promise.reject(error)), // in_failed_sql_transaction
  );
}
