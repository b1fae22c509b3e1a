import { EventsError } from './events-error.js';

/**
 * The serialised event is larger than receivers accept (`bodyLimitBytes`, 1 MiB by default), so
 * `emit` refuses it at once: nothing is recorded or sent. Raise `bodyLimitBytes` on the sender and
 * on every receiver of the type, or send a reference to the data (a URL, a storage key) instead.
 */
export class PayloadTooLargeError extends EventsError {
  override name = 'PayloadTooLargeError';

  constructor(
    readonly type: string,
    /** Size of the serialised event, in bytes. */
    readonly bytes: number,
    /** The limit it is over (`bodyLimitBytes`). */
    readonly limit: number,
  ) {
    super(
      `Event "${type}" is ${bytes} bytes serialised, over the ${limit}-byte limit receivers accept (bodyLimitBytes): ` +
        'nothing was sent. Send a reference to the data instead, or raise the bodyLimitBytes option on this service and on every receiver of this type.',
    );
  }
}
