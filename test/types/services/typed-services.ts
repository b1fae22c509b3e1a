/**
 * Type tests for typed service names: a program whose ServiceRegistry lists its services (its own
 * program, since the registry types every declareEvent of it). Compiled by `npm run typecheck`.
 */
import { createEventBus, declareEvent, defineServices, type ServiceName } from '../../../src/index.js';

export const Services = defineServices(['payments', 'orders'] as const);
declare module '../../../src/index.js' {
  interface ServiceRegistry {
    services: typeof Services;
  }
}

// The constants read like the seed's Service.PAYMENT, and are the names themselves.
const payments: 'payments' = Services.payments;
// @ts-expect-error: no such service
void Services.paymnts;

// Module-level declareEvent and every bus take only the registered names.
declareEvent('user-created', [Services.payments, Services.orders]);
declareEvent('user-created', ['payments']);
// @ts-expect-error: a misspelt target service
declareEvent('user-created', ['paymnts']);
const bus = createEventBus({ service: 'users' }).declareEvent('user-deleted', [payments, 'orders']);
// @ts-expect-error: the same on a bus
bus.declareEvent('user-updated', ['payments', 'billing']);
const name: ServiceName = 'orders';
// @ts-expect-error: ServiceName is the registered names
const other: ServiceName = 'billing';
void [name, other];

// Without `as const`, the names are still kept as literals.
const inferred: { readonly a: 'a'; readonly b: 'b' } = defineServices(['a', 'b']);
void inferred;
