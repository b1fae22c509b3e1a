import type { OutboxRecord } from './outbox-store.js';

/** The caps of one batch request (ResolvedConfig's `batch`). */
export interface BatchCaps {
  maxEvents: number;
  maxBytes: number;
}

/** How claimed records go out: one request each entry (a lone record is a structured send), and what did not fit. */
export interface RequestPlan {
  requests: OutboxRecord[][];
  /** Claimed but beyond the free request slots: handed back to the store untouched. */
  overflow: OutboxRecord[];
}

/** Bytes a batch body adds around `count` event bodies: `[`, `]` and a comma between each two. */
const framing = (count: number): number => count + 1;

/**
 * Spreads `records` (oldest first) over at most `slots` requests. What fits one per slot goes one
 * per slot: a lone event is sent at once in structured mode. Otherwise each request takes an even
 * share of what is left, within `maxEvents` and `maxBytes`: over every slot for a burst on an idle
 * lane (worked on in parallel, and an outage is noticed after as many requests), over as few
 * requests as carry them when `busy` (requests in flight, or a full batch due: 150 due make two
 * of 75, not sixteen of 9), because every request costs both sides far more than an event in it.
 * A record larger than `maxBytes` by itself goes alone (structured mode has no batch cap; the
 * receiver's body limit decides).
 */
export function planRequests(
  records: readonly OutboxRecord[],
  slots: number,
  caps: BatchCaps,
  sizes: readonly number[],
  busy = false,
): RequestPlan {
  if (records.length <= slots) return { requests: records.map((record) => [record]), overflow: [] };
  const used = busy ? Math.min(slots, Math.ceil(records.length / caps.maxEvents)) : slots;
  const requests: OutboxRecord[][] = [];
  let i = 0;
  while (i < records.length && requests.length < slots) {
    // An even share of what is left over the requests planned, so that they carry alike.
    const share = Math.min(caps.maxEvents, Math.ceil((records.length - i) / Math.max(1, used - requests.length)));
    const group = [records[i]!];
    let bytes = sizes[i]!;
    i += 1;
    while (i < records.length && group.length < share && bytes + sizes[i]! + framing(group.length + 1) <= caps.maxBytes) {
      bytes += sizes[i]!;
      group.push(records[i]!);
      i += 1;
    }
    requests.push(group);
  }
  return { requests, overflow: records.slice(i) };
}

/** Events per request that a batch of bodies of `averageBytes` holds within the caps (at least 1). */
export function eventsPerRequest(caps: BatchCaps, averageBytes: number): number {
  if (averageBytes <= 0) return caps.maxEvents;
  return Math.max(1, Math.min(caps.maxEvents, Math.floor(caps.maxBytes / (averageBytes + 1))));
}
