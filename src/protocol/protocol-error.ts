import { EventsError } from '../errors/events-error.js';

/** A request the receiver refuses: `status` and a `message` safe to show the sender. */
export class ProtocolError extends EventsError {
  override name = 'ProtocolError';
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
