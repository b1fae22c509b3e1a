import { EventsError } from './events-error.js';

/** `emit` was called for a type that no `declareEvent` call declared. Nothing was sent. */
export class UndeclaredEventError extends EventsError {
  override name = 'UndeclaredEventError';

  constructor(readonly type: string) {
    super(
      `Event type "${type}" is not declared: call declareEvent(${JSON.stringify(type)}, [targetServices]) before emitting it.`,
    );
  }
}
