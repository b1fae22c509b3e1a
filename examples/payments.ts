import express from 'express';
import { createEventBus, type EventBusOptions } from '../src/index.js';
import { UserCreated, UserDeleted } from './schemas.js';

/** The payments service's bus and handlers: two for user-created, one for user-deleted. */
export function createPaymentsBus(options: EventBusOptions) {
  const bus = createEventBus({ service: 'payments', ...options });
  const customers = new Map<string, { email: string }>();
  const welcomeCredits: string[] = [];
  const received: string[] = [];

  bus.subscribeTo(
    'user-created',
    async (data, event) => {
      customers.set(data.user_id, { email: data.email });
      received.push(`${event.type} ${data.user_id} → customer created`);
    },
    { schema: UserCreated, name: 'create-customer' },
  );
  bus.subscribeTo(
    'user-created',
    async (data) => {
      welcomeCredits.push(data.user_id);
      received.push(`user-created ${data.user_id} → welcome credit granted`);
    },
    { schema: UserCreated, name: 'welcome-credit' },
  );
  bus.subscribeTo(
    'user-deleted',
    async (data) => {
      customers.delete(data.user_id);
      received.push(`user-deleted ${data.user_id} → customer removed`);
    },
    { schema: UserDeleted },
  );

  return { bus, received, customers };
}

/** The payments service on Express (examples/payments-fastify.ts: the same on Fastify). */
export function createPaymentsService(options: EventBusOptions) {
  const service = createPaymentsBus(options);
  const app = express();
  app.use(service.bus.expressMiddleware()); // POST /events: signed, validated, deduped
  app.use(express.json());
  app.get('/customers', (_req, res) => {
    res.json([...service.customers.entries()].map(([id, c]) => ({ id, ...c })));
  });
  return { app, ...service };
}
