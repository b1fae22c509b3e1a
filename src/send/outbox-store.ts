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

/** One interface, two stores: in memory (default) and SQLite (durable). Only `add` is asynchronous. */
export interface OutboxStore {
  readonly durable: boolean;
  /** Records deliveries; resolves once they are stored (for SQLite: committed, in a group commit). */
  add(deliveries: readonly NewDelivery[]): Promise<void>;
  /** Leases up to `limit` records of `target` due at `now`, oldest first; leased records are not claimed again. */
  claim(target: string, now: number, limit: number): OutboxRecord[];
  /** Leases the one record of `target` that is due soonest, due or not (a probe of a target that is down). */
  claimProbe(target: string): OutboxRecord | undefined;
  complete(id: number): void;
  /** Ends a lease: due again at `nextAttemptAt`. */
  reschedule(record: OutboxRecord, nextAttemptAt: number): void;
  /** Ends a lease: the record becomes a dead letter. */
  kill(record: OutboxRecord, reason: DeadLetter['reason']): void;
  /** Makes every waiting record of `target` last tried at or after `since` due now (a target came back). */
  release(target: string, since: number, now: number): void;
  /** When the next unleased record of `target` is due. */
  nextDueAt(target: string): number | undefined;
  /** Targets with pending records. */
  targets(): string[];
  stats(): OutboxStats;
  deadLetters(filter?: DeadLetterFilter): DeadLetter[];
  /** Moves matching dead letters back to pending, due now, with a fresh horizon. Returns how many. */
  replay(filter: DeadLetterFilter | 'all', now: number): OutboxRecord[];
  /** Every pending record, leased ones included: what an in-memory outbox loses at shutdown. */
  pendingRecords(): OutboxRecord[];
  close(): Promise<void>;
}
