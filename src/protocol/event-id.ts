import { randomFillSync } from 'node:crypto';

let stampedAt = Number.NaN;
let stamp = '';

/** Random bytes for this many ids, drawn from the CSPRNG at once. */
const IDS_PER_DRAW = 256;
/** Each id takes 10 random bytes (80 bits, 74 of them used). */
const BYTES_PER_ID = 10;
const randomPool = Buffer.alloc(IDS_PER_DRAW * BYTES_PER_ID);
let poolOffset = randomPool.length;

/** The variant nibble (binary 10xx, RFC 9562) from a random hex digit's low two bits. */
const VARIANT: Readonly<Record<string, string>> = Object.fromEntries([...'0123456789abcdef'].map((digit, i) => [digit, '89ab'[i % 4]!]));

/**
 * A new event id: a UUIDv7 (RFC 9562), 48 bits of Unix milliseconds, then 74 random bits from the
 * CSPRNG. Ids sort by the millisecond they were made in, so a durable inbox keyed by source and id
 * inserts a sender's recent events next to each other: a few B-tree pages for many events rather
 * than one random page each. SQLite's inbox spends about a third of the CPU per event it spent on
 * random UUIDs (docs/benchmarks.md, "Time-ordered event ids"). Within a millisecond the order is
 * random; nothing relies on it. Formatted from one hex string of pooled random bytes: a
 * `randomUUID()` built its text from a dozen intermediate strings (docs/benchmarks.md, "Less
 * garbage per event").
 */
export function newEventId(now: number = Date.now()): string {
  if (now !== stampedAt) {
    stampedAt = now;
    const hex = now.toString(16).padStart(12, '0');
    stamp = `${hex.slice(0, 8)}-${hex.slice(8)}-7`;
  }
  if (poolOffset === randomPool.length) {
    randomFillSync(randomPool);
    poolOffset = 0;
  }
  const random = randomPool.toString('hex', poolOffset, (poolOffset += BYTES_PER_ID));
  // 7xxx-Vxxx-xxxxxxxxxxxx: 12 random bits, the variant and 2 random bits, 60 random bits.
  return `${stamp}${random.slice(0, 3)}-${VARIANT[random[3]!]}${random.slice(4, 7)}-${random.slice(7, 19)}`;
}
