/**
 * Base class of every error this library throws. `name` is a constant per class, so
 * `err.name === 'ConfigError'` works across package copies where `instanceof` may not.
 */
export class EventsError extends Error {
  override name = 'EventsError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
