import { EventsError } from './events-error.js';

/**
 * The in-memory outbox holds `limit` undelivered deliveries already, so `emit` refuses the event
 * rather than drop anything. Raise `outbox.maxPending`, or turn on the durable outbox
 * (`EVENTS_OUTBOX_PATH`), whose backlog lives on disk.
 */
export class OutboxFullError extends EventsError {
  override name = 'OutboxFullError';
  readonly limit: number;

  constructor(limit: number) {
    super(
      `The in-memory outbox is full (${limit} undelivered deliveries): the event was not accepted. ` +
        'Raise outbox.maxPending or set EVENTS_OUTBOX_PATH to keep the backlog on disk.',
    );
    this.limit = limit;
  }
}
