export { EventsError } from './events-error.js';
export { ConfigError } from './config-error.js';
export { UndeclaredEventError } from './undeclared-event-error.js';
export { ValidationError } from './validation-error.js';
export { BusClosedError } from './bus-closed-error.js';
export { OutboxFullError } from './outbox-full-error.js';
export { NonRetryableError } from './non-retryable-error.js';
export { RetryLaterError } from './retry-later-error.js';
