import { EventsError } from './events-error.js';

/**
 * The durable outbox cannot record the event now: its file is locked by another process, the
 * disk is full, the file is damaged, or it was deleted or replaced while the service ran; or its
 * database cannot be reached. Nothing was recorded, so nothing will be sent: the caller may retry
 * later (answer 503, for instance).
 * Delivery of what was recorded before resumes by itself once the store recovers.
 */
export class OutboxUnavailableError extends EventsError {
  override name = 'OutboxUnavailableError';
  /** Where the outbox is: its file, or its database (URL without password, schema, service). */
  readonly where: string;

  /**
   * @param where The outbox file, or its database.
   * @param reason What is wrong with it.
   * @param options.hint What an operator should do about it.
   */
  constructor(where: string, reason: string, options?: { cause?: unknown; hint?: string }) {
    super(
      `The outbox ${where} cannot record events (${reason}): the event was not accepted; emit it again later.` +
        (options?.hint ? ` ${options.hint}` : ''),
      options,
    );
    this.where = where;
  }
}
