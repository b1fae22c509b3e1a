import { EventsError } from './events-error.js';

/**
 * Throw this from a handler to say "this event can never succeed here": the receiver answers
 * 422 with this message, and the sender dead-letters the event at once instead of retrying.
 *
 * @example
 * subscribeTo('user-created', async (data) => {
 *   if (!isSupportedCountry(data.country)) throw new NonRetryableError('unsupported country');
 * });
 */
export class NonRetryableError extends EventsError {
  override name = 'NonRetryableError';
  /** The receiver's HTTP status. @default 422 */
  readonly status: number;

  constructor(message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options);
    const status = options?.status ?? 422;
    if (!Number.isInteger(status) || status < 400 || status > 499 || status === 408 || status === 429) {
      throw new RangeError('NonRetryableError status must be a 4xx that senders never retry (not 408 or 429)');
    }
    this.status = status;
  }
}
