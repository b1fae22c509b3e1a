import { EventsError } from './events-error.js';

/**
 * Throw this from a handler to ask the sender to come back later: the receiver answers 503
 * with `Retry-After: <seconds>`, and the sender waits at least that long before the next try.
 *
 * @example
 * subscribeTo('user-created', async (data) => {
 *   if (await rateLimited()) throw new RetryLaterError(30, 'rate limited by the CRM');
 * });
 */
export class RetryLaterError extends EventsError {
  override name = 'RetryLaterError';
  readonly retryAfterSeconds: number;

  constructor(retryAfterSeconds: number, message = `retry after ${retryAfterSeconds} s`, options?: { cause?: unknown }) {
    super(message, options);
    if (!Number.isFinite(retryAfterSeconds) || retryAfterSeconds < 0) {
      throw new RangeError('RetryLaterError needs a non-negative number of seconds');
    }
    this.retryAfterSeconds = Math.ceil(retryAfterSeconds);
  }
}
