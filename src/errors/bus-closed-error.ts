import { EventsError } from './events-error.js';

/** `emit` was called on a bus after `close()`. Nothing was sent. */
export class BusClosedError extends EventsError {
  override name = 'BusClosedError';

  constructor(service: string | undefined) {
    super(`The event bus${service ? ` of "${service}"` : ''} is closed: create a new bus to emit again.`);
  }
}
