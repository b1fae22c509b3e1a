/**
 * The Fastify plugin inside a real Fastify app (the receiver contract runs through it in
 * receiver-contract-all.test.ts): its parsers stay in its own encapsulation context, and Fastify's
 * logger, hooks, error handler and prefixes work around it.
 */
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { createEventBus, type EventBus } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { startFastify } from '../helpers/mounts.js';
import { newSecret, signedStructured, structuredEvent } from '../helpers/signing.js';

const cleanups = cleanupAfterEach();

function busWith(secret: string, calls: unknown[]): EventBus {
  const bus = createEventBus({ service: 'payments', secret, logger: createCapturingLogger('warn').logger, env: {} });
  cleanups.push(() => bus.close());
  bus.subscribeTo('user-created', (data) => void calls.push(data));
  return bus;
}

const data = { user_id: 'u_1', email: 'ada@example.com' };

test("the plugin's parsers stay inside it: the app's own routes still get Fastify's 415 for CloudEvents, and its JSON parser for JSON", async () => {
  const secret = newSecret();
  const calls: unknown[] = [];
  const server = await startFastify(busWith(secret, calls), {}, (app) => {
    app.post('/mine', async (req) => ({ got: req.body }));
  });
  cleanups.push(() => server.close());
  const event = signedStructured(secret, structuredEvent('user-created', data));

  const own = await request(`${server.origin}/mine`, event);
  expect(own.status).toBe(415);
  expect(own.json).toMatchObject({ code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' });
  const json = await request(`${server.origin}/mine`, { headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  expect([json.status, json.json]).toEqual([200, { got: { a: 1 } }]);

  expect((await request(server.url, event)).status).toBe(200);
  expect(calls).toEqual([data]);
});

test('registered under a prefix: POST <prefix>/events and GET <prefix>/events/health', async () => {
  const secret = newSecret();
  const calls: unknown[] = [];
  const bus = busWith(secret, calls);
  const app = Fastify();
  await app.register(bus.fastifyPlugin(), { prefix: '/hooks' });
  const origin = await app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => app.close());

  const res = await request(`${origin}/hooks/events`, signedStructured(secret, structuredEvent('user-created', data)));
  expect(res.status).toBe(200);
  const health = await request(`${origin}/hooks/events/health`, { method: 'GET' });
  expect([health.status, health.json]).toEqual([200, { healthy: true }]);
  expect(calls).toEqual([data]);
});

test("Fastify's logger, hooks and error handler work around the plugin's routes", async () => {
  const secret = newSecret();
  const calls: unknown[] = [];
  const bus = busWith(secret, calls);
  bus.routes.add('GET', '/broken', async () => {
    throw new Error('route failed');
  });
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  const seen: string[] = [];
  const server = await startFastify(bus, {}, (app) => {
    app.addHook('onRequest', async (req) => void seen.push(`onRequest ${req.method} ${req.url}`));
    app.addHook('onResponse', async (req, reply) => void seen.push(`onResponse ${req.url} ${reply.statusCode}`));
    app.setErrorHandler(async (error, _req, reply) => reply.code(418).send({ handled: (error as Error).message }));
  }, { logger: { stream } });
  cleanups.push(() => server.close());

  expect((await request(server.url, signedStructured(secret, structuredEvent('user-created', data)))).status).toBe(200);
  const broken = await request(`${server.url}/broken`, { method: 'GET' });
  expect([broken.status, broken.json]).toEqual([418, { handled: 'route failed' }]);

  expect(seen).toEqual(['onRequest POST /events', 'onResponse /events 200', 'onRequest GET /events/broken', 'onResponse /events/broken 418']);
  expect(lines).toContainEqual(expect.objectContaining({ msg: 'request completed', res: { statusCode: 200 } }));
  expect(calls).toEqual([data]);
});

test('fastifyPlugin needs the secret to verify events: a ConfigError naming EVENTS_SECRET', () => {
  const bus = createEventBus({ service: 'payments', env: {} });
  cleanups.push(() => bus.close());
  expect(() => bus.fastifyPlugin()).toThrow(/EVENTS_SECRET/);
});
