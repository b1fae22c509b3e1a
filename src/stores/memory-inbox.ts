import type { InboxMark, InboxStore } from '../receive/inbox-store.js';

interface Entry {
  handlers: true | Set<string>;
  /** When the event was first recorded (ms since epoch). */
  at: number;
}

/**
 * The default inbox: the last `maxEntries` event ids, in memory. It forgets on restart and
 * forgets the oldest ids first, so a redelivery after either runs the handlers again. It knows
 * what it may have forgotten (`forgetsBefore`): the receiver refuses a request signed before that,
 * so a captured request replayed after a restart or an eviction cannot run its handlers again
 * (a real sender signs every try afresh, so its retry passes).
 */
export class MemoryInbox implements InboxStore {
  readonly durable = false;
  private readonly entries = new Map<string, Entry>();
  /**
   * Requests signed at or before this (ms) may replay a forgotten id. At start: every earlier
   * second (webhook-timestamp is in seconds, so a request signed in the second the process started
   * passes rather than being refused for a race no sender can see); after an eviction: up to the
   * moment the evicted event was first recorded.
   */
  private forgotten = Math.floor(Date.now() / 1000) * 1000 - 1;

  constructor(private readonly maxEntries: number) {}

  completed(eventKey: string): true | ReadonlySet<string> | undefined {
    return this.entries.get(eventKey)?.handlers;
  }

  markHandler(eventKey: string, handlerKey: string): void {
    const entry = this.entries.get(eventKey);
    if (entry?.handlers === true) return;
    if (entry) entry.handlers.add(handlerKey);
    else this.set(eventKey, { handlers: new Set([handlerKey]), at: Date.now() });
  }

  markDone(eventKey: string): void {
    const at = this.entries.get(eventKey)?.at ?? Date.now();
    this.entries.delete(eventKey);
    this.set(eventKey, { handlers: true, at });
  }

  completedMany(eventKeys: readonly string[]): ReadonlyMap<string, true | ReadonlySet<string>> {
    const states = new Map<string, true | ReadonlySet<string>>();
    for (const key of eventKeys) {
      const entry = this.entries.get(key);
      if (entry) states.set(key, entry.handlers);
    }
    return states;
  }

  /** A handler's mark is skipped when its event is marked done in the same call: `done` replaces it. */
  markMany(marks: readonly InboxMark[]): void {
    const done = new Set<string>();
    for (const { eventKey, handlerKey } of marks) if (handlerKey === undefined) done.add(eventKey);
    for (const { eventKey, handlerKey } of marks) {
      if (handlerKey === undefined) this.markDone(eventKey);
      else if (!done.has(eventKey)) this.markHandler(eventKey, handlerKey);
    }
  }

  forgetsBefore(): number {
    return this.forgotten;
  }

  async close(): Promise<void> {}

  private set(eventKey: string, entry: Entry): void {
    this.entries.set(eventKey, entry);
    if (this.entries.size > this.maxEntries) {
      const [oldest, evicted] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      this.forgotten = Math.max(this.forgotten, evicted.at);
    }
  }
}
