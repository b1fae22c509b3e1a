import type { InboxStore } from '../receive/inbox-store.js';

/**
 * The default inbox: the last `maxEntries` event ids, in memory. It forgets on restart and
 * forgets the oldest ids first, so a redelivery after either runs the handlers again.
 */
export class MemoryInbox implements InboxStore {
  readonly durable = false;
  private readonly entries = new Map<string, true | Set<string>>();

  constructor(private readonly maxEntries: number) {}

  completed(eventKey: string): true | ReadonlySet<string> | undefined {
    return this.entries.get(eventKey);
  }

  markHandler(eventKey: string, handlerKey: string): void {
    const entry = this.entries.get(eventKey);
    if (entry === true) return;
    if (entry) entry.add(handlerKey);
    else this.set(eventKey, new Set([handlerKey]));
  }

  markDone(eventKey: string): void {
    this.entries.delete(eventKey);
    this.set(eventKey, true);
  }

  async close(): Promise<void> {}

  private set(eventKey: string, value: true | Set<string>): void {
    this.entries.set(eventKey, value);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }
}
