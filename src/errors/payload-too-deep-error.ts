import { EventsError } from './events-error.js';

/**
 * The payload nests objects and arrays deeper than `maxPayloadDepth` levels (or refers to itself),
 * so `emit` refuses it at once: nothing is recorded or sent. Flatten the payload, or raise the
 * `maxPayloadDepth` option (on the sender only: receivers parse any depth JSON.parse takes).
 */
export class PayloadTooDeepError extends EventsError {
  override name = 'PayloadTooDeepError';

  constructor(
    readonly type: string,
    /** The limit it is over (`maxPayloadDepth`). */
    readonly limit: number,
  ) {
    super(
      `Payload of "${type}" is nested deeper than ${limit} levels (or refers to itself): nothing was sent. ` +
        'Flatten it, or raise the maxPayloadDepth option.',
    );
  }
}
