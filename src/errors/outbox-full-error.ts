import { EventsError } from './events-error.js';

/**
 * The in-memory outbox holds `limit` undelivered deliveries (or bytes) for `target` already, so
 * `emit` refuses the event, for every one of its targets, rather than drop anything. Other
 * targets keep their own bounds. Raise `outbox.maxPending` / `outbox.maxPendingBytes`, bring the
 * target back, or turn on the durable outbox (`EVENTS_OUTBOX_PATH`), whose backlog lives on disk.
 */
export class OutboxFullError extends EventsError {
  override name = 'OutboxFullError';

  constructor(
    readonly limit: number,
    /** The target whose backlog is full. */
    readonly target: string | undefined = undefined,
    /** Which bound was reached. */
    readonly unit: 'deliveries' | 'bytes' = 'deliveries',
  ) {
    const option = unit === 'bytes' ? 'outbox.maxPendingBytes' : 'outbox.maxPending';
    super(
      `The in-memory outbox is full for target "${target ?? '?'}" (${limit} undelivered ${unit === 'bytes' ? 'bytes' : 'deliveries'}): ` +
        `the event was not accepted. Check that "${target ?? '?'}" is up, raise ${option}, or set EVENTS_OUTBOX_PATH to keep the backlog on disk.`,
    );
  }
}
