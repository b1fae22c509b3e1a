/**
 * The operator seam: one interface for every place dead letters and backlogs live (the in-memory,
 * SQLite and PostgreSQL outboxes, and a broker's dead-letter queues). The bus, the standalone
 * operator functions, the CLI and the console all go through it. Every method returns a promise.
 */

/** Where an operator function works: an outbox file, a database, or a broker. */
export type OperatorLocation =
  | {
      /** The SQLite outbox file (a service's `EVENTS_OUTBOX_PATH`). */
      outbox: string;
    }
  | {
      /** A postgres://… URL (a service's `EVENTS_DATABASE_URL`). */
      database: string;
      /** @default 'public' */
      schema?: string;
      /** Only this service's outbox rows. @default every service's */
      service?: string;
    }
  | {
      /** An amqp://… or kafka://… URL (a service's `EVENTS_BROKER_URL`). */
      broker: string;
      /** The queue or topic prefix the services run with (`EVENTS_BROKER_PREFIX`). @default '' */
      prefix?: string;
      /** Only this receiving service's dead-letter queue or topic. @default every service's found under the prefix */
      service?: string;
    };

/** A delivery or message that will not be tried again until an operator replays it. */
export interface DeadLetter {
  /**
   * Opaque, made unique by its backend; no sender can choose it. Pass it back to
   * `replayDeadLetters` / `discardDeadLetters` (or the CLI's `replay` / `discard`).
   */
  id: string;
  /** Where it is kept: `outbox` (the sender could not deliver it) or `queue` (a broker receiver could not handle it). */
  kept: 'outbox' | 'queue';
  /** The CloudEvent id, when the event's signature verified (or it comes from this service's own outbox). */
  eventId: string | undefined;
  type: string | undefined;
  /** The emitting service (the CloudEvents `source`). */
  source: string | undefined;
  /**
   * A broker message whose signature did not verify (or not known to have: the broker
   * dead-lettered it itself): the id, type and source its body claims, which anyone able to
   * publish could have chosen. `eventId`, `type` and `source` are undefined then, and filters never match these.
   */
  unverified?: { eventId?: string; type?: string; source?: string };
  /** The service it was for. */
  target: string;
  /**
   * Why it died: `refused` or `expired` (an outbox), or the receiver's reason
   * (`handler_failed`, `rejected_by_handler`, `invalid_signature`, `delivery_limit`, …).
   */
  reason: string;
  /** The last error or status message. */
  error?: string;
  /** The last HTTP status, for an outbox delivery. */
  status?: number;
  /** Attempts made. */
  attempts: number | undefined;
  /** ms since epoch. */
  createdAt: number | undefined;
  /** ms since epoch. */
  deadAt: number | undefined;
  /** The event as it was sent (the structured CloudEvent). */
  body: string;
}

/** Which dead letters: every given field must match. */
export interface DeadLetterFilter {
  /** Dead-letter ids, as listed (numbers are taken as their decimal text). */
  ids?: readonly (string | number)[];
  eventId?: string;
  /** The receiving service. */
  target?: string;
  type?: string;
  /**
   * Listing only: at most this many (a broker's dead-letter queue can hold millions); what matched
   * beyond it is counted in the list's `more`. @default every one (RabbitMQ: 10000)
   */
  limit?: number;
  /** Dead at or after this time (ms since epoch). */
  since?: number;
  /** Dead before this time (ms since epoch). */
  until?: number;
}

/** Which page of dead letters: at most `limit`, after `cursor` (a page's `next`). */
export interface PageRequest {
  limit: number;
  cursor?: string | undefined;
}

/** One page of dead letters, oldest first (by the time they died, then id). */
export interface DeadLetterPage {
  items: DeadLetter[];
  /** The cursor of the next page; absent on the last. */
  next?: string;
  /** Only part of what the backend holds could be read (a broker queue past its read window): more exist than are paged. */
  truncated?: boolean;
}

/** Dead letters as listed; `more`: how many more matched but were left out by `limit` (absent when none). */
export type DeadLetterList = DeadLetter[] & { more?: number };

/** Dead letters to replay or discard: a list of ids, a filter, or `'all'`. */
export type DeadLetterSelection = readonly (string | number)[] | DeadLetterFilter | 'all';

/** Pending deliveries and dead letters, per target. */
export interface OutboxStats {
  durable: boolean;
  pending: number;
  deadLetters: number;
  targets: Record<string, { pending: number; deadLetters: number; oldestCreatedAt?: number }>;
}

/** Counts of one target, in any number of rows: pending deliveries, dead letters, the oldest pending one's creation. */
export interface TargetCounts {
  target: string;
  pending?: number | string;
  dead?: number | string;
  oldest?: number | string | null;
}

/** Stats from counts: a target's rows add up (numbers as text too, as PostgreSQL returns them). */
export function statsOf(rows: Iterable<TargetCounts>, durable = true): OutboxStats {
  const stats: OutboxStats = { durable, pending: 0, deadLetters: 0, targets: {} };
  for (const row of rows) {
    const pending = Number(row.pending ?? 0);
    const dead = Number(row.dead ?? 0);
    const into = (stats.targets[row.target] ??= { pending: 0, deadLetters: 0 });
    into.pending += pending;
    into.deadLetters += dead;
    stats.pending += pending;
    stats.deadLetters += dead;
    const oldest = Math.min(into.oldestCreatedAt ?? Infinity, Number(row.oldest ?? Infinity));
    if (oldest < Infinity) into.oldestCreatedAt = oldest;
  }
  return stats;
}

/** What every backend that keeps dead letters answers. */
export interface DeadLetterOperator {
  /** Pending and dead counts per target. */
  stats(): Promise<OutboxStats>;
  /** Dead letters, oldest first; all, or those matching `filter` (see its `limit`). */
  deadLetters(filter?: DeadLetterFilter): Promise<DeadLetterList>;
  /** One page of the dead letters matching `filter`, oldest first, read server-side (an outbox reads only that page). */
  deadLetterPage(filter: DeadLetterFilter | undefined, page: PageRequest): Promise<DeadLetterPage>;
  /** Puts the selected dead letters back to be delivered (due now, attempts reset); resolves with how many. */
  replay(selection: DeadLetterSelection): Promise<number>;
  /** Deletes the selected dead letters for good; resolves with how many. */
  discard(selection: DeadLetterSelection): Promise<number>;
  /** Releases what the operator opened (never a pool or connection passed in). */
  close(): Promise<void>;
}

/** A selection as a filter (`'all'` matches everything). */
export function selectionFilter(selection: DeadLetterSelection): DeadLetterFilter {
  if (selection === 'all') return {};
  if (Array.isArray(selection)) return { ids: selection as readonly (string | number)[] };
  if (typeof selection !== 'object' || selection === null) {
    throw new TypeError('which dead letters? pass a list of ids, a filter such as { target: "payments" }, or "all"');
  }
  return selection as DeadLetterFilter;
}

/** Whether a dead letter matches a filter. */
export function matchesDeadLetter(letter: DeadLetter, filter: DeadLetterFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.ids && !filter.ids.some((id) => String(id) === letter.id)) return false;
  if (filter.eventId !== undefined && letter.eventId !== filter.eventId) return false;
  if (filter.target !== undefined && letter.target !== filter.target) return false;
  if (filter.type !== undefined && letter.type !== filter.type) return false;
  if (filter.since !== undefined && (letter.deadAt ?? 0) < filter.since) return false;
  if (filter.until !== undefined && (letter.deadAt ?? 0) >= filter.until) return false;
  return true;
}

/** Where a page ends: the last letter's time of death and id (`<deadAt>.<id>`). */
export function cursorOf(letter: Pick<DeadLetter, 'deadAt' | 'id'>): string {
  return `${letter.deadAt ?? 0}.${letter.id}`;
}

/** A cursor's time of death and id; undefined for none or a malformed one (the first page). */
export function parseCursor(cursor: string | undefined): { deadAt: number; id: string } | undefined {
  const match = /^(\d{1,16})\.(.+)$/s.exec(cursor ?? '');
  return match ? { deadAt: Number(match[1]), id: match[2]! } : undefined;
}

/** The order of pages: by time of death, then id (shorter first, so decimal ids go in numeric order). */
export function byDeath(a: Pick<DeadLetter, 'deadAt' | 'id'>, b: Pick<DeadLetter, 'deadAt' | 'id'>): number {
  return (a.deadAt ?? 0) - (b.deadAt ?? 0) || a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** A page of letters held in memory (the memory outbox, broker queues read into memory). */
export function pageOf(letters: readonly DeadLetter[], filter: DeadLetterFilter | undefined, page: PageRequest, truncated = false): DeadLetterPage {
  const after = parseCursor(page.cursor);
  const sorted = letters.filter((l) => matchesDeadLetter(l, filter) && (!after || byDeath(l, after) > 0)).sort(byDeath);
  return pageFrom(sorted, page.limit, truncated);
}

/** The first `limit` of letters in page order (a store reads one more, to know whether a next page exists). */
export function pageFrom(letters: readonly DeadLetter[], limit: number, truncated = false): DeadLetterPage {
  const items = letters.slice(0, limit);
  return {
    items,
    ...(letters.length > limit && items.length > 0 ? { next: cursorOf(items[items.length - 1]!) } : {}),
    ...(truncated ? { truncated } : {}),
  };
}
