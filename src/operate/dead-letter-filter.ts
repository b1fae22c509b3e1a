import type { DeadLetter, DeadLetterFilter, OutboxRecord, OutboxStats } from '../send/outbox-store.js';

export function matchesFilter(letter: DeadLetter, filter: DeadLetterFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.ids && !filter.ids.includes(letter.id)) return false;
  if (filter.eventId !== undefined && letter.eventId !== filter.eventId) return false;
  if (filter.target !== undefined && letter.target !== filter.target) return false;
  return true;
}

/** Outbox stats from pending records and dead letters (for stores that hold them in memory). */
export function summarize(durable: boolean, pending: Iterable<OutboxRecord>, dead: Iterable<DeadLetter>): OutboxStats {
  const stats: OutboxStats = { durable, pending: 0, deadLetters: 0, targets: {} };
  const of = (target: string) => (stats.targets[target] ??= { pending: 0, deadLetters: 0 });
  for (const record of pending) {
    stats.pending += 1;
    const t = of(record.target);
    t.pending += 1;
    if (t.oldestCreatedAt === undefined || record.createdAt < t.oldestCreatedAt) t.oldestCreatedAt = record.createdAt;
  }
  for (const letter of dead) {
    stats.deadLetters += 1;
    of(letter.target).deadLetters += 1;
  }
  return stats;
}
