import type { Logger } from 'winston';
import { OutboxFullError } from '../errors/index.js';
import type {
  DeadLetter,
  DeadLetterFilter,
  NewDelivery,
  OutboxRecord,
  OutboxStats,
  OutboxStore,
} from '../send/outbox-store.js';
import { matchesFilter, summarize } from './dead-letter-filter.js';
import { MinHeap } from './min-heap.js';

interface Lane {
  /** Due records, oldest first; `head` skips those already taken. */
  ready: OutboxRecord[];
  head: number;
  /** Records waiting for their next attempt. */
  waiting: MinHeap<OutboxRecord>;
}

/**
 * The default outbox: bounded, in this process's memory. When `maxPending` deliveries are
 * undelivered, `add` rejects with OutboxFullError, so `emit` fails loudly rather than drop.
 * Dead letters beyond `maxDeadLetters` are evicted oldest first, each with an error log line.
 * Nothing here survives the process: set EVENTS_OUTBOX_PATH for that.
 */
export class MemoryOutbox implements OutboxStore {
  readonly durable = false;
  private readonly records = new Map<number, OutboxRecord>();
  private readonly lanes = new Map<string, Lane>();
  private dead: DeadLetter[] = [];
  private nextId = 1;

  constructor(
    private readonly maxPending: number,
    private readonly maxDeadLetters: number,
    private readonly logger: Logger,
  ) {}

  async add(deliveries: readonly NewDelivery[]): Promise<void> {
    if (this.records.size + deliveries.length > this.maxPending) throw new OutboxFullError(this.maxPending);
    for (const delivery of deliveries) {
      const record: OutboxRecord = { ...delivery, id: this.nextId++, attempts: 0, nextAttemptAt: delivery.createdAt };
      this.records.set(record.id, record);
      this.lane(record.target).ready.push(record);
    }
  }

  claim(target: string, now: number, limit: number): OutboxRecord[] {
    const lane = this.lanes.get(target);
    if (!lane) return [];
    while (lane.waiting.size > 0 && lane.waiting.peek()!.nextAttemptAt <= now) lane.ready.push(lane.waiting.pop()!);
    const end = Math.min(lane.ready.length, lane.head + limit);
    const taken = lane.ready.slice(lane.head, end);
    lane.head = end;
    if (lane.head > 1024 && lane.head * 2 > lane.ready.length) {
      lane.ready = lane.ready.slice(lane.head);
      lane.head = 0;
    }
    return taken;
  }

  claimProbe(target: string): OutboxRecord | undefined {
    const lane = this.lanes.get(target);
    if (!lane) return undefined;
    if (lane.head < lane.ready.length) return lane.ready[lane.head++];
    return lane.waiting.pop();
  }

  complete(id: number): void {
    this.records.delete(id);
  }

  reschedule(record: OutboxRecord, nextAttemptAt: number): void {
    record.nextAttemptAt = nextAttemptAt;
    this.lane(record.target).waiting.push(record);
  }

  kill(record: OutboxRecord, reason: DeadLetter['reason']): void {
    this.records.delete(record.id);
    this.dead.push({ ...record, deadAt: Date.now(), reason });
    if (this.dead.length > this.maxDeadLetters) {
      const evicted = this.dead.shift()!;
      this.logger.error('dead letter evicted from the in-memory outbox', {
        eventId: evicted.eventId,
        type: evicted.type,
        target: evicted.target,
        hint: 'set EVENTS_OUTBOX_PATH to keep dead letters on disk',
      });
      // Payloads never above debug.
      if (this.logger.isDebugEnabled()) this.logger.debug('evicted dead letter body', { eventId: evicted.eventId, body: evicted.body });
    }
  }

  release(target: string, since: number, now: number): void {
    const lane = this.lanes.get(target);
    if (!lane) return;
    for (const record of lane.waiting.extract((r) => (r.lastAttemptAt ?? 0) >= since)) {
      record.nextAttemptAt = now;
      lane.ready.push(record);
    }
  }

  nextDueAt(target: string): number | undefined {
    const lane = this.lanes.get(target);
    if (!lane) return undefined;
    if (lane.head < lane.ready.length) return lane.ready[lane.head]!.nextAttemptAt;
    return lane.waiting.peek()?.nextAttemptAt;
  }

  targets(): string[] {
    return [...this.lanes.keys()];
  }

  stats(): OutboxStats {
    return summarize(false, this.records.values(), this.dead);
  }

  deadLetters(filter?: DeadLetterFilter): DeadLetter[] {
    return this.dead.filter((d) => matchesFilter(d, filter));
  }

  replay(filter: DeadLetterFilter | 'all', now: number): OutboxRecord[] {
    const revived: OutboxRecord[] = [];
    this.dead = this.dead.filter((letter) => {
      if (filter !== 'all' && !matchesFilter(letter, filter)) return true;
      const { deadAt: _deadAt, reason: _reason, ...rest } = letter;
      const record: OutboxRecord = { ...rest, createdAt: now, nextAttemptAt: now };
      this.records.set(record.id, record);
      this.lane(record.target).ready.push(record);
      revived.push(record);
      return false;
    });
    return revived;
  }

  pendingRecords(): OutboxRecord[] {
    return [...this.records.values()];
  }

  async close(): Promise<void> {}

  private lane(target: string): Lane {
    let lane = this.lanes.get(target);
    if (!lane) {
      lane = { ready: [], head: 0, waiting: new MinHeap((r) => r.nextAttemptAt) };
      this.lanes.set(target, lane);
    }
    return lane;
  }
}
