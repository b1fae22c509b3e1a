import type { OutboxRecord } from '../../send/outbox-store.js';

/**
 * An instance's own emits, written leased to it (`events_add`), that its lane has not taken yet:
 * per target, oldest first. A claim takes them without a round trip; their leases are renewed
 * with the instance's others until they are settled.
 */
export class KeptEmits {
  private readonly byTarget = new Map<string, OutboxRecord[]>();

  add(record: OutboxRecord): void {
    let queue = this.byTarget.get(record.target);
    if (queue === undefined) this.byTarget.set(record.target, (queue = []));
    queue.push(record);
  }

  /** The oldest `limit` of `target`, taken. */
  take(target: string, limit: number): OutboxRecord[] {
    const queue = this.byTarget.get(target);
    if (queue === undefined) return [];
    const taken = queue.splice(0, limit);
    if (queue.length === 0) this.byTarget.delete(target);
    return taken;
  }

  /** Records taken and not sent after all: first in line again. */
  putBack(target: string, records: readonly OutboxRecord[]): void {
    if (records.length > 0) this.byTarget.set(target, [...records, ...(this.byTarget.get(target) ?? [])]);
  }

  /** The oldest of `target`, left in place. */
  first(target: string): OutboxRecord | undefined {
    return this.byTarget.get(target)?.[0];
  }
}
