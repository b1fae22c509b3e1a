import type { Logger } from 'winston';
import type { OutboxRecord } from './outbox-store.js';

/** Events recorded in callers' transactions remembered until their first dispatch; the oldest is forgotten past this (rolled back, or sent by another instance). */
const REMEMBERED = 10_000;

/**
 * The log lines of `emit(…, { tx })`. Its event is recorded in the caller's transaction, which may
 * still roll back: that is said at debug, and `event emitted` (info) only once the event has been
 * committed and this process dispatches it (the first request carrying one of its deliveries). A
 * rolled-back event is never dispatched, so it leaves no `event emitted` line.
 */
export class TransactionEmits {
  private readonly waiting = new Map<string, Record<string, unknown>>();

  constructor(private readonly logger: Logger) {}

  recorded(fields: { eventId: string; type: string; source: string; targets: string[] }): void {
    this.logger.debug("event recorded in the caller's transaction; emitted once it commits", fields);
    if (!this.logger.isInfoEnabled()) return;
    this.waiting.set(fields.eventId, fields);
    if (this.waiting.size > REMEMBERED) this.waiting.delete(this.waiting.keys().next().value!);
  }

  /** Deliveries are being sent: the events among them recorded in a transaction were committed. */
  dispatched(records: readonly OutboxRecord[]): void {
    if (this.waiting.size === 0) return;
    for (const { eventId } of records) {
      const fields = this.waiting.get(eventId);
      if (fields === undefined) continue;
      this.waiting.delete(eventId);
      this.logger.info('event emitted', fields);
    }
  }
}
