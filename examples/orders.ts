import Koa from 'koa';
import { bodyParser } from '@koa/bodyparser';
import { createEventBus, type EventBusOptions } from '../src/index.js';
import { UserCreated } from './schemas.js';

/** The orders service: a Koa app that opens an (empty) order history for each new user. */
export function createOrdersService(options: EventBusOptions) {
  const bus = createEventBus({ service: 'orders', ...options });
  const histories = new Map<string, string[]>();
  const received: string[] = [];

  bus.subscribeTo(
    'user-created',
    (data, event) => {
      histories.set(data.user_id, []);
      received.push(`${event.type} ${data.user_id} from ${event.source} → order history opened`);
    },
    { schema: UserCreated },
  );

  const app = new Koa();
  app.use(bodyParser()); // a body parser before the middleware is fine: it keeps the raw bytes
  app.use(bus.koaMiddleware());
  return { app, bus, received, histories };
}
