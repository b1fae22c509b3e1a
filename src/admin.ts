import type { DeadLetter, DeadLetterFilter, OutboxStats } from './send/outbox-store.js';
import { SqliteOutbox } from './stores/sqlite-outbox.js';

/**
 * Operations on a durable outbox file, for operators (the `events-library` command uses them).
 * They work beside a running service: a replayed dead letter is picked up by the service's
 * dispatcher within its poll interval. An in-memory outbox is reached through the bus instead
 * (`bus.outboxStats()`, `bus.deadLetters()`, `bus.replayDeadLetters()`).
 */
function withOutbox<T>(path: string, run: (outbox: SqliteOutbox) => T): T {
  const outbox = new SqliteOutbox(path, { resetLeases: false });
  try {
    return run(outbox);
  } finally {
    void outbox.close();
  }
}

/** Pending deliveries and dead letters per target, in the outbox file at `path`. */
export function inspectOutbox(path: string): OutboxStats {
  return withOutbox(path, (outbox) => outbox.stats());
}

export function listDeadLetters(path: string, filter?: DeadLetterFilter): DeadLetter[] {
  return withOutbox(path, (outbox) => outbox.deadLetters(filter));
}

/** Moves matching dead letters (all by default) back to pending, due now. Returns how many. */
export function replayDeadLetters(path: string, filter: DeadLetterFilter | 'all' = 'all'): number {
  return withOutbox(path, (outbox) => outbox.replay(filter, Date.now()).length);
}
