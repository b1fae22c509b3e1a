import { EventsError } from './events-error.js';

/**
 * The durable outbox cannot record the event now: its file is locked by another process, the
 * disk is full, the file is damaged, or it was deleted or replaced while the service ran. Nothing
 * was recorded, so nothing will be sent: the caller may retry later (answer 503, for instance).
 * Delivery of what was recorded before resumes by itself once the store recovers.
 */
export class OutboxUnavailableError extends EventsError {
  override name = 'OutboxUnavailableError';
  /** The outbox file. */
  readonly path: string;

  /**
   * @param reason What is wrong with the file.
   * @param options.hint What an operator should do about it.
   */
  constructor(path: string, reason: string, options?: { cause?: unknown; hint?: string }) {
    super(
      `The outbox ${path} cannot record events (${reason}): the event was not accepted; emit it again later.` +
        (options?.hint ? ` ${options.hint}` : ''),
      options,
    );
    this.path = path;
  }
}
