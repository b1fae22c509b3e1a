import express from 'express';
import { createEventBus, type DataOf, type EventBusOptions, type ReceivedEvent } from '../src/index.js';
import { UserCreated, UserDeleted } from './schemas.js';

type User = DataOf<typeof UserCreated>;

/** The payments service's bus and its handlers as a class (two for user-created, one for user-deleted). */
export function createPaymentsBus(options: EventBusOptions) {
  const bus = createEventBus({ service: 'payments', ...options });

  // Each decorated method is subscribed when the class is constructed, `this` bound to the
  // instance, under the handler name `Payments.<method>` (the inbox key, the same on every run).
  class Payments {
    readonly customers = new Map<string, { email: string }>();
    readonly welcomeCredits: string[] = [];
    readonly received: string[] = [];

    @bus.subscribeTo('user-created', { schema: UserCreated })
    async createCustomer(data: User, event: ReceivedEvent<User>): Promise<void> {
      this.customers.set(data.user_id, { email: data.email });
      this.received.push(`${event.type} ${data.user_id} → customer created`);
    }

    @bus.subscribeTo('user-created', { schema: UserCreated })
    async grantWelcomeCredit(data: User): Promise<void> {
      this.welcomeCredits.push(data.user_id);
      this.received.push(`user-created ${data.user_id} → welcome credit granted`);
    }

    @bus.subscribeTo('user-deleted', { schema: UserDeleted })
    async removeCustomer(data: DataOf<typeof UserDeleted>): Promise<void> {
      this.customers.delete(data.user_id);
      this.received.push(`user-deleted ${data.user_id} → customer removed`);
    }
  }
  const { customers, received } = new Payments();
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
