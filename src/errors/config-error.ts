import { EventsError } from './events-error.js';

/**
 * A configuration mistake: a missing or malformed service name, URL or secret. Raised at once
 * (at `createEventBus`, `declareEvent`, the first `emit` or when mounting the middleware),
 * never later on the network path. `variable` names the environment variable that fixes it.
 */
export class ConfigError extends EventsError {
  override name = 'ConfigError';
  readonly variable: string | undefined;

  constructor(message: string, options?: { variable?: string; cause?: unknown }) {
    super(message, options);
    this.variable = options?.variable;
  }
}
