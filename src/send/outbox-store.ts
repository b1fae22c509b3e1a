import type { Availability } from '../observe/availability.js';
import type { DeadLetter, DeadLetterOperator } from '../operate/operator.js';

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

/** A record's event id, type and source, and its target: what every line or report about it names first. */
export function whatAndWhere({ eventId, type, source, target }: NewDelivery): Pick<NewDelivery, 'eventId' | 'type' | 'source' | 'target'> {
  return { eventId, type, source, target };
}

/**
 * A new delivery as a record due at its creation, never tried. Fields copied one by one: on
 * Node 20, `{ ...delivery, id, attempts, nextAttemptAt }` took about 6 µs per record (V8 adds
 * properties to an object literal's spread copy on a slow path), a fifth of the sender's CPU per
 * event at saturation.
 */
export function freshRecord(d: NewDelivery, id: number): OutboxRecord {
  const record: OutboxRecord = {
    eventId: d.eventId,
    type: d.type,
    source: d.source,
    target: d.target,
    body: d.body,
    createdAt: d.createdAt,
    id,
    attempts: 0,
    nextAttemptAt: d.createdAt,
  };
  if (d.traceparent !== undefined) record.traceparent = d.traceparent;
  if (d.tracestate !== undefined) record.tracestate = d.tracestate;
  return record;
}

/** Why a delivery became a dead letter: `refused` (a status never retried) or `expired` (past the redelivery horizon). */
export type DeathReason = 'refused' | 'expired';

/** A dead outbox record as the operator seam shows it: its row id as text, `kept: 'outbox'`. */
export function outboxDeadLetter(record: OutboxRecord, reason: DeathReason, deadAt: number): DeadLetter {
  return {
    id: String(record.id),
    kept: 'outbox',
    ...whatAndWhere(record),
    reason,
    ...(record.lastError !== undefined ? { error: record.lastError } : {}),
    ...(record.lastStatus !== undefined ? { status: record.lastStatus } : {}),
    attempts: record.attempts,
    createdAt: record.createdAt,
    deadAt,
    body: record.body,
  };
}

/** One delivery's outcome, as `settleMany` records it: delivered, due again at `nextAttemptAt`, or a dead letter. */
export type Settlement =
  | { kind: 'complete'; record: OutboxRecord }
  | { kind: 'reschedule'; record: OutboxRecord; nextAttemptAt: number }
  | { kind: 'kill'; record: OutboxRecord; reason: DeathReason };

/**
 * What `emit` passes to `add` besides the deliveries: the caller's transaction, for a store that
 * can write in it (PostgreSQL: a `pg` client inside BEGIN … COMMIT). Stores that cannot refuse it.
 */
export interface AddOptions {
  tx?: unknown;
}

/**
 * One interface, three stores: in memory (default), SQLite and PostgreSQL (durable). Every call
 * returns a promise. A store is also its own operator (DeadLetterOperator: stats, dead letters,
 * replay, discard; dead-letter ids are its record ids as text).
 */
export interface OutboxStore extends DeadLetterOperator {
  readonly durable: boolean;
  /** A store on a database server (PostgreSQL): whether its calls succeed, for health. */
  readonly database?: Availability;
  /** Whether `add` writes in the caller's transaction (`emit(…, { tx })`); a store without it refuses `tx`. */
  readonly acceptsTransaction: boolean;
  /** Records deliveries; resolves once they are stored (for SQLite: committed, in a group commit; with `tx`: written in that transaction). */
  add(deliveries: readonly NewDelivery[], options?: AddOptions): Promise<void>;
  /** Leases up to `limit` records of `target` due at `now`, oldest first; leased records are not claimed again. */
  claim(target: string, now: number, limit: number): Promise<OutboxRecord[]>;
  /** Leases the one record of `target` that is due soonest, due or not (a probe of a target that is down). */
  claimProbe(target: string): Promise<OutboxRecord | undefined>;
  /** Ends the leases of any number of records by their outcomes, in one transaction where the store has them. */
  settleMany(settlements: readonly Settlement[]): Promise<void>;
  /**
   * Writes the outcomes `settleMany` accepted and has not written yet (the PostgreSQL outbox deletes
   * delivered rows in groups, a few ms later); resolves once they are written or failed. Optional:
   * a store that writes each outcome before `settleMany` resolves has nothing to write.
   */
  flushSettles?(): Promise<void>;
  /** Makes every waiting record of `target` last tried at or after `since` due now (a target came back). */
  release(target: string, since: number, now: number): Promise<void>;
  /**
   * A lane judged `target` down (shared stores tell the other instances, so that one probe at a
   * time reaches it across processes). Optional: a store of one process has nothing to share.
   */
  markDown?(target: string): Promise<void>;
  /** When the next unleased record of `target` is due. */
  nextDueAt(target: string): Promise<number | undefined>;
  /** Targets with pending records. */
  targets(): Promise<string[]>;
  /**
   * (DeadLetterOperator) `replay` moves the selected dead letters back to pending, due now, with a
   * fresh horizon, and calls the `onWork` callback for their targets; `discard` deletes them.
   */
  /** Every pending record, leased ones included: what an in-memory outbox loses at shutdown. */
  pendingRecords(): Promise<OutboxRecord[]>;
  /**
   * Calls `wake(target)` when deliveries for `target` became due outside the dispatcher: a replay,
   * and for PostgreSQL another process or a committed transaction (LISTEN/NOTIFY). `emit` wakes
   * the dispatcher itself, and the poll is the fallback.
   */
  onWork(wake: (target: string) => void): void;
  /** Releases the store; by `deadline` (ms since epoch), if given, even when its backend does not answer. */
  close(deadline?: number): Promise<void>;
}

/** Dead-letter ids as record ids: decimal text only (another backend's id matches no record). */
export function recordIds(ids: readonly (string | number)[]): number[] {
  return ids.map(String).filter((id) => /^\d{1,15}$/.test(id)).map(Number);
}
