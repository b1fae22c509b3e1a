import Fastify from 'fastify';
import type { EventBusOptions } from '../src/index.js';
import { createPaymentsBus } from './payments.js';

/**
 * The payments service on Fastify: the same bus and handlers as examples/payments.ts. The plugin
 * answers POST /events (signed, validated, deduped) and GET /events/health in its own
 * encapsulation context, so the app's own routes keep Fastify's parsers.
 */
export function createPaymentsFastifyService(options: EventBusOptions) {
  const service = createPaymentsBus(options);
  const app = Fastify();
  void app.register(service.bus.fastifyPlugin());
  app.get('/customers', async () => [...service.customers.entries()].map(([id, c]) => ({ id, ...c })));
  return { app, ...service };
}
