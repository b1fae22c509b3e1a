/**
 * The route table: the library's routes below the events path (health today; the console and the
 * contract document later) are answered by every adapter from one table, alike: the same statuses,
 * JSON and text bodies, 405 with `Allow` for another method, JSON bodies read under a limit and
 * refused when malformed or carrying prototype keys, whether or not a body parser ran first.
 */
import type { RequestListener } from 'node:http';
import express from 'express';
import Koa from 'koa';
import bodyParser from '@koa/bodyparser';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { createEventBus, type EventBus } from '../../src/index.js';
import { ROUTE_BODY_LIMIT_BYTES } from '../../src/adapters/routes.js';
import { request } from '../helpers/http-client.js';
import { startFastify } from '../helpers/mounts.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';

type Mount = 'express' | 'express after express.json()' | 'koa' | 'koa after bodyparser' | 'node:http' | 'fastify' | 'fetch (hono)';

function listenerFor(mount: Mount, bus: EventBus): RequestListener {
  switch (mount) {
    case 'express':
    case 'express after express.json()': {
      const app = express();
      if (mount !== 'express') app.use(express.json());
      app.use(bus.expressMiddleware());
      app.use((_req, res) => res.status(299).send('app'));
      return app;
    }
    case 'koa':
    case 'koa after bodyparser': {
      const app = new Koa();
      if (mount !== 'koa') app.use(bodyParser());
      app.use(bus.koaMiddleware());
      app.use(async (ctx) => {
        ctx.status = 299;
        ctx.body = 'app';
      });
      return app.callback();
    }
    case 'node:http': {
      const handler = bus.nodeHandler();
      return (req, res) =>
        handler(req, res, () => {
          res.statusCode = 299;
          res.end('app');
        });
    }
    default: {
      // As the README shows it: the events path and everything below it go to the fetch handler, which answers them all.
      const handle = bus.fetchHandler();
      const app = new Hono();
      app.all('/events', (c) => handle(c.req.raw));
      app.all('/events/*', (c) => handle(c.req.raw));
      return getRequestListener(app.fetch);
    }
  }
}

function start(mount: Mount, bus: EventBus): Promise<TestServer> {
  if (mount !== 'fastify') return startServer(listenerFor(mount, bus));
  // What the plugin does not answer below the events path reaches the app's own not-found handler.
  return startFastify(bus, {}, (app) => app.setNotFoundHandler((_request, reply) => reply.code(299).send('app')));
}

const mounts: Mount[] = ['express', 'express after express.json()', 'koa', 'koa after bodyparser', 'node:http', 'fastify', 'fetch (hono)'];

describe.each(mounts)('the route table through %s', (mount) => {
  let bus: EventBus;
  let server: TestServer;
  const received: unknown[] = [];

  beforeAll(async () => {
    bus = createEventBus({ service: 'billing', secret: newSecret(), env: {} });
    bus.routes
      .add('GET', '/things', async (req) => ({ status: 200, headers: { 'x-route': 'things' }, body: { page: req.query.get('page'), path: req.path } }))
      .add('POST', '/things', async (req) => {
        received.push(await req.json());
        return { status: 201, headers: {}, body: { ok: true } };
      })
      .add('GET', '/page', async () => ({ status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: '<p>page</p>' }), { below: true });
    server = await start(mount, bus);
  });
  afterAll(async () => {
    await server.close();
    await bus.close();
  });

  test('a GET route answers JSON with its headers and sees the query', async () => {
    const res = await request(`${server.url}/things?page=2`, { method: 'GET' });
    expect(res.status).toBe(200);
    expect(res.headers['x-route']).toBe('things');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json).toEqual({ page: '2', path: '/things' });
  });

  test('a route marked below answers the paths under it, as text with its content type', async () => {
    const res = await request(`${server.url}/page/deeper/still`, { method: 'GET' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.text).toBe('<p>page</p>');
  });

  test('another method on a route path is 405 with Allow; a path with no route passes on to the app', async () => {
    const wrong = await request(`${server.url}/things`, { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('GET, POST');
    expect(wrong.json).toMatchObject({ error: 'method_not_allowed' });
    const elsewhere = await request(`${server.url}/nothing-here`, { method: 'GET' });
    // A fetch handler has no `next`: it answers 404 itself.
    expect(elsewhere.status).toBe(mount === 'fetch (hono)' ? 404 : 299);
  });

  test('health is a route of the table', async () => {
    const res = await request(`${server.url}/health`, { method: 'GET' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ healthy: true });
  });

  test('a JSON body reaches the route whether or not a body parser ran first', async () => {
    received.length = 0;
    const res = await request(`${server.url}/things`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ids: ['1', '2'] }) });
    expect(res.status).toBe(201);
    expect(received).toEqual([{ ids: ['1', '2'] }]);
  });

  test('a body with a prototype key, malformed JSON or over the limit is refused, and the route never sees it', async () => {
    received.length = 0;
    const polluted = await request(`${server.url}/things`, { headers: { 'content-type': 'text/plain' }, body: '{"__proto__":{"admin":true}}' });
    expect(polluted.status).toBe(400);
    expect(polluted.json).toMatchObject({ error: 'forbidden_key' });
    // As JSON, the app's own parser may read it first (koa's bodyparser refuses it itself): refused either way.
    const parsedFirst = await request(`${server.url}/things`, { headers: { 'content-type': 'application/json' }, body: '{"__proto__":{"admin":true}}' });
    expect(parsedFirst.status).toBe(400);
    const malformed = await request(`${server.url}/things`, { headers: { 'content-type': 'text/plain' }, body: '{"ids": [' });
    expect(malformed.status).toBe(400);
    expect(malformed.json).toMatchObject({ error: 'malformed_json' });
    const large = await request(`${server.url}/things`, { headers: { 'content-type': 'text/plain' }, body: `"${'x'.repeat(ROUTE_BODY_LIMIT_BYTES)}"` });
    expect(large.status).toBe(413);
    expect(received).toEqual([]);
  });
});
