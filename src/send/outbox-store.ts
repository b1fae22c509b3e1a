/** The outbox: every delivery (one event × one target) from `emit` until delivered or dead. */

export interface NewDelivery {
  eventId: string;
  type: string;
  source: string;
  /** Target service name. */
  target: string;
  /** The structured CloudEvent, as sent. */
  body: string;
  /** ms since epoch. */
  createdAt: number;
  /** W3C trace context of the emit (its `publish` span), carried to every attempt, also after a restart. */
  traceparent?: string;
  tracestate?: string;
}

export interface OutboxRecord extends NewDelivery {
  /** Delivery id, unique within the store. */
  id: number;
  /** HTTP tries made so far. */
  attempts: number;
  nextAttemptAt: number;
  lastAttemptAt?: number;
  lastStatus?: number;
  lastError?: string;
}

export interface DeadLetter extends OutboxRecord {
  deadAt: number;
  /** Why it died: `refused` (a status never retried) or `expired` (past the redelivery horizon). */
  reason: 'refused' | 'expired';
}

export interface OutboxStats {
  durable: boolean;
  pending: number;
  deadLetters: number;
  targets: Record<string, { pending: number; deadLetters: number; oldestCreatedAt?: number }>;
}

export interface DeadLetterFilter {
  ids?: readonly number[];
  eventId?: string;
  target?: string;
}

/** One delivery's outcome, as `settleMany` records it (the same as `complete`, `reschedule` or `kill`). */
export type Settlement =
  | { kind: 'complete'; record: OutboxRecord }
  | { kind: 'reschedule'; record: OutboxRecord; nextAttemptAt: number }
  | { kind: 'kill'; record: OutboxRecord; reason: DeadLetter['reason'] };

/** A value, or a promise of it: the memory and SQLite stores answer at once, the PostgreSQL store asynchronously. */
export type Awaitable<T> = T | Promise<T>;

/**
 * What `emit` passes to `add` besides the deliveries: the caller's transaction, for a store that
 * can write in it (PostgreSQL: a `pg` client inside BEGIN … COMMIT). Stores that cannot refuse it.
 */
export interface AddOptions {
  tx?: unknown;
}

/**
 * One interface, three stores: in memory (default), SQLite and PostgreSQL (durable). The
 * dispatcher awaits every call: the memory and SQLite stores return plain values, PostgreSQL
 * returns promises.
 */
export interface OutboxStore {
  readonly durable: boolean;
  /** Whether `add` takes the caller's transaction (`emit(…, { tx })`): PostgreSQL only. */
  readonly transactional?: boolean;
  /** Records deliveries; resolves once they are stored (for SQLite: committed, in a group commit; with `tx`: written in that transaction). */
  add(deliveries: readonly NewDelivery[], options?: AddOptions): Promise<void>;
  /** Leases up to `limit` records of `target` due at `now`, oldest first; leased records are not claimed again. */
  claim(target: string, now: number, limit: number): Awaitable<OutboxRecord[]>;
  /** Leases the one record of `target` that is due soonest, due or not (a probe of a target that is down). */
  claimProbe(target: string): Awaitable<OutboxRecord | undefined>;
  complete(id: number): Awaitable<void>;
  /**
   * Records many outcomes at once (a batch's, or every delivery that ended in one turn): in one
   * transaction where the store has them. Optional: without it the dispatcher calls `complete`,
   * `reschedule` and `kill` one by one.
   */
  settleMany?(settlements: readonly Settlement[]): Awaitable<void>;
  /** Ends a lease: due again at `nextAttemptAt`. */
  reschedule(record: OutboxRecord, nextAttemptAt: number): Awaitable<void>;
  /** Ends a lease: the record becomes a dead letter. */
  kill(record: OutboxRecord, reason: DeadLetter['reason']): Awaitable<void>;
  /** Makes every waiting record of `target` last tried at or after `since` due now (a target came back). */
  release(target: string, since: number, now: number): Awaitable<void>;
  /**
   * A lane judged `target` down (shared stores tell the other instances, so that one probe at a
   * time reaches it across processes). Optional: a store of one process has nothing to share.
   */
  markDown?(target: string): Awaitable<void>;
  /** When the next unleased record of `target` is due. */
  nextDueAt(target: string): Awaitable<number | undefined>;
  /** Targets with pending records. */
  targets(): Awaitable<string[]>;
  stats(): Awaitable<OutboxStats>;
  deadLetters(filter?: DeadLetterFilter): Awaitable<DeadLetter[]>;
  /** Moves matching dead letters back to pending, due now, with a fresh horizon. Returns how many. */
  replay(filter: DeadLetterFilter | 'all', now: number): Awaitable<OutboxRecord[]>;
  /** Every pending record, leased ones included: what an in-memory outbox loses at shutdown. */
  pendingRecords(): Awaitable<OutboxRecord[]>;
  /**
   * Calls `wake(target)` when another process (or a committed transaction) added deliveries for
   * `target`: PostgreSQL's LISTEN/NOTIFY. Optional: the others are woken by `emit` itself and the poll.
   */
  onWork?(wake: (target: string) => void): void;
  close(): Promise<void>;
}
