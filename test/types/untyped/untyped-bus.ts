/**
 * Type tests for a program that declares no event to the type checker (no EventRegistry entries,
 * no chained declareEvent): its own program, since a registry merged anywhere types every bus.
 * Compiled by `npm run typecheck`; nothing here runs.
 */
import { createEventBus, emit, subscribeTo, type ReceivedEvent } from '../../../src/index.js';

// The untyped default takes any type and any payload (validated at run time, if a schema is declared).
const plain = createEventBus({ service: 'users' });
plain.declareEvent('account-opened', ['payments']);
plain.emit('account-opened', { account_id: 'a1' });
plain.emit('anything', 42);
emit('whatever', { x: 1 });

// Data is unknown until a schema says otherwise.
plain.subscribeTo('anything', (data: unknown, event: ReceivedEvent<unknown>) => void [data, event.id]);
subscribeTo('anything', (data) => {
  // @ts-expect-error: data is unknown
  void data.field;
});

// Once a declaration is chained, the bus is typed: only declared types.
const typed = createEventBus({ service: 'users' }).declareEvent('account-opened', ['payments']);
typed.emit('account-opened', { account_id: 'a1' });
// @ts-expect-error: 'account-closed' was never declared on this bus
typed.emit('account-closed', { account_id: 'a1' });
