// Re-declaring an event on a running bus moves its deliveries to the new URL: the dispatcher uses
// the directory as declareEvent last resolved it, not what it saw first.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import winston from 'winston';
import { createEventBus } from '../../src/index.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

async function countingServer(): Promise<{ url: string; hits: () => number; close: () => void }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits += 1;
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/events`, hits: () => hits, close: () => server.close() };
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
}

it('sends to the URL of the latest declareEvent', async () => {
  const first = await countingServer();
  const second = await countingServer();
  // Plain 204 sinks, not events receivers: no receipt to require.
  const env: Record<string, string> = { EVENTS_SERVICE_PAYMENTS_URL: first.url, EVENTS_SERVICE_PAYMENTS_RECEIPT: 'false' };
  const logger = winston.createLogger({ level: 'error', silent: true });
  const bus = createEventBus({ service: 'users', secret: SECRET, env, logger });
  try {
    bus.declareEvent('user-created', ['payments']);
    await bus.emit('user-created', { n: 1 });
    await until(() => first.hits() === 1);

    env.EVENTS_SERVICE_PAYMENTS_URL = second.url;
    bus.declareEvent('user-created', ['payments']);
    await bus.emit('user-created', { n: 2 });
    await until(() => second.hits() === 1);

    expect([first.hits(), second.hits()]).toEqual([1, 1]);
  } finally {
    await bus.close();
    first.close();
    second.close();
  }
});
