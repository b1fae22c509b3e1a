import { randomUUID } from 'node:crypto';

let stampedAt = Number.NaN;
let stamp = '';

/**
 * A new event id: a UUIDv7 (RFC 9562), 48 bits of Unix milliseconds, then 74 random bits (those of
 * a `randomUUID()`, its version digit replaced). Ids sort by the millisecond they were made in, so
 * a durable inbox keyed by source and id inserts a sender's recent events next to each other: a
 * few B-tree pages for many events rather than one random page each. SQLite's inbox spends about a
 * third of the CPU per event it spent on random UUIDs (docs/benchmarks.md, "Time-ordered event
 * ids"). Within a millisecond the order is random; nothing relies on it.
 */
export function newEventId(now: number = Date.now()): string {
  if (now !== stampedAt) {
    stampedAt = now;
    const hex = now.toString(16).padStart(12, '0');
    stamp = `${hex.slice(0, 8)}-${hex.slice(8)}-7`;
  }
  // A v4 UUID is xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx: keep what follows its version digit.
  return stamp + randomUUID().slice(15);
}
