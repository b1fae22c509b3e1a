/** Child of bench/slow-clients.ts: an Express app with eventsMiddleware(), answering RSS on request. */
import express from 'express';
import { createEventBus } from '../src/index.js';
import { discardLogger, SECRET } from './lib.js';

const bus = createEventBus({ service: 'payments', secret: SECRET, logger: discardLogger('error'), env: {} });
bus.subscribeTo('user-created', () => undefined);
const server = express().use(bus.expressMiddleware()).listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
});
server.maxConnections = 100_000;
process.on('message', () => {
  global.gc?.();
  process.send!({ rssMb: Math.round(process.memoryUsage().rss / 1e6) });
});
