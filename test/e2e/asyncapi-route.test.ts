/**
 * `GET <path>/asyncapi.json`: the service's AsyncAPI document, served by every adapter from the
 * route table, to operators only: 200 with `Authorization: Bearer <operator token>`, 401 without
 * it or with a wrong one, 404 while no operator token is configured.
 */
import type { RequestListener } from 'node:http';
import express from 'express';
import Koa from 'koa';
import { createEventBus, type EventBus } from '../../src/index.js';
import { request } from '../helpers/http-client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';

const TOKEN = 'ops-3f9a1c7e';

const mounts: Record<string, (bus: EventBus) => RequestListener> = {
  express: (bus) => express().use(bus.expressMiddleware()),
  koa: (bus) => new Koa().use(bus.koaMiddleware()).callback(),
  'node:http': (bus) => {
    const handler = bus.nodeHandler();
    return (req, res) => handler(req, res, () => res.writeHead(299).end());
  },
};

describe.each(Object.keys(mounts))('the AsyncAPI document through %s', (mount) => {
  const started: Array<{ bus: EventBus; server: TestServer }> = [];
  const serve = async (options: Parameters<typeof createEventBus>[0]) => {
    const bus = createEventBus({ service: 'payments', secret: newSecret(), env: {}, ...options });
    bus.subscribeTo('user-created', async () => {}, { schema: { type: 'object', required: ['email'] } });
    const server = await startServer(mounts[mount]!(bus));
    started.push({ bus, server });
    return { bus, url: `${server.url}/asyncapi.json` };
  };
  afterAll(() => Promise.all(started.map(async ({ bus, server }) => (await server.close(), await bus.close()))));

  test('an operator gets it; anyone else gets 401', async () => {
    const { bus, url } = await serve({ console: { token: TOKEN } });
    const ok = await request(url, { method: 'GET', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toMatch(/^application\/json/);
    expect(ok.json).toEqual(bus.asyncapi());
    expect(ok.json).toMatchObject({ asyncapi: '3.0.0', info: { title: 'payments' }, channels: { 'user-created': { address: 'user-created' } } });

    for (const headers of [{}, { authorization: 'Bearer wrong-token' }, { authorization: `Basic ${TOKEN}` }] as Record<string, string>[]) {
      const refused = await request(url, { method: 'GET', headers });
      expect(refused.status).toBe(401);
      expect(refused.headers['www-authenticate']).toBe('Bearer');
      expect(refused.json).toEqual({ error: 'unauthorized', message: expect.stringContaining('Authorization: Bearer') });
      expect(refused.text).not.toContain('user-created');
    }
  });

  test('a named operator (console.tokens) gets it too', async () => {
    const { url } = await serve({ console: { tokens: { alice: 'alice-key-1' } } });
    expect((await request(url, { method: 'GET', headers: { authorization: 'Bearer alice-key-1' } })).status).toBe(200);
  });

  test('404 while no operator token is configured, even with a token', async () => {
    const { url } = await serve({});
    const res = await request(url, { method: 'GET', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(404);
    expect(res.json).toEqual({ error: 'not_found', message: expect.stringContaining('EVENTS_CONSOLE_TOKEN') });
  });

  test('the token from EVENTS_CONSOLE_TOKEN', async () => {
    const { url } = await serve({ env: { EVENTS_CONSOLE_TOKEN: TOKEN } });
    expect((await request(url, { method: 'GET', headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await request(url, { method: 'GET' })).status).toBe(401);
  });
});
