import type { ErrorObject } from 'ajv';
import { EventsError } from './events-error.js';

/**
 * A payload does not match the schema declared for its event type. On `emit` it rejects and
 * nothing is sent; on receipt the receiver answers 400. `errors` are ajv's, untouched.
 */
export class ValidationError extends EventsError {
  override name = 'ValidationError';
  readonly type: string;
  readonly errors: ErrorObject[];

  constructor(type: string, errors: ErrorObject[], summary: string) {
    super(`Payload of "${type}" does not match its schema: ${summary}`);
    this.type = type;
    this.errors = errors;
  }
}
