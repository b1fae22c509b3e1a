import { EventsError } from './events-error.js';

/**
 * The durable outbox cannot record the event now: its file is locked by another process, the
 * disk is full, the file is damaged, or it was deleted or replaced while the service ran; or its
 * database cannot be reached. Nothing was recorded, so nothing will be sent: the caller may retry
 * later (answer 503, for instance) — unless `unknownEventIds` is set: the database stopped
 * answering after the write was sent, and whether it was recorded could not be found out.
 * Delivery of what was recorded before resumes by itself once the store recovers.
 */
export class OutboxUnavailableError extends EventsError {
  override name = 'OutboxUnavailableError';
  /** Where the outbox is: its file, or its database (URL without password, schema, service). */
  readonly where: string;
  /** Set when whether the events were recorded is unknown: their ids (they may still be delivered). */
  readonly unknownEventIds: readonly string[] | undefined;

  /**
   * @param where The outbox file, or its database.
   * @param reason What is wrong with it.
   * @param options.hint What an operator should do about it.
   * @param options.unknownEventIds The events whose recording is unknown (not: not recorded).
   */
  constructor(where: string, reason: string, options?: { cause?: unknown; hint?: string; unknownEventIds?: readonly string[] }) {
    const ids = options?.unknownEventIds;
    super(
      (ids === undefined
        ? `The outbox ${where} cannot record events (${reason}): the event was not accepted; emit it again later.`
        : `The outbox ${where} stopped answering while recording events ${ids.join(', ')} (${reason}): whether they were recorded is unknown. ` +
          'They may still be delivered: emitting them again may deliver them twice.') + (options?.hint ? ` ${options.hint}` : ''),
      options,
    );
    this.where = where;
    this.unknownEventIds = ids;
  }
}
