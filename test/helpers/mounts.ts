import http, { type RequestListener } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import express from 'express';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import type { EventBus, MiddlewareOptions } from '../../src/index.js';
import { startNest } from './nest-mounts.js';
import { startServer, type TestServer } from './server.js';

/**
 * One way to mount the receiver: a real app of a framework, served on 127.0.0.1, with the bus's
 * receiver mounted first (at `options.path`) and then the app's own routes: `GET /events` and
 * `POST /other` (a JSON body) answer `app: <method> <path>` with status 299, proving they passed
 * through. Add a row to MOUNTS to run every table of receiver behaviour through a new adapter.
 */
export interface Mount {
  name: string;
  start(bus: EventBus, options?: MiddlewareOptions): Promise<TestServer>;
  /** false: the mount takes its path from the bus option `path` only (the NestJS module), not from MiddlewareOptions. */
  middlewareOptions?: false;
}

const appAnswer = (method: string, path: string) => `app: ${method} ${path}`;

function expressApp(bus: EventBus, options?: MiddlewareOptions): RequestListener {
  const app = express();
  app.use(bus.expressMiddleware(options));
  app.get('/events', (_req, res) => void res.status(299).send(appAnswer('GET', '/events')));
  app.post('/other', (_req, res) => void res.status(299).send(appAnswer('POST', '/other')));
  return app;
}

function koaApp(bus: EventBus, options?: MiddlewareOptions): RequestListener {
  const app = new Koa();
  app.use(bus.koaMiddleware(options));
  app.use(async (ctx) => {
    if ((ctx.method === 'GET' && ctx.path === '/events') || (ctx.method === 'POST' && ctx.path === '/other')) {
      ctx.status = 299;
      ctx.body = appAnswer(ctx.method, ctx.path);
    }
  });
  return app.callback();
}

function nodeApp(bus: EventBus, options?: MiddlewareOptions): RequestListener {
  const handler = bus.nodeHandler(options);
  return (req, res) =>
    handler(req, res, () => {
      const path = (req.url ?? '/').split('?')[0]!;
      const app = (req.method === 'GET' && path === '/events') || (req.method === 'POST' && path === '/other');
      res.statusCode = app ? 299 : 404;
      res.end(app ? appAnswer(req.method!, path) : 'not found');
    });
}

/** A Fastify app with `more` (the app's own routes, hooks and handlers), then the plugin registered, served through startServer (its handler taken from serverFactory). */
export async function startFastify(
  bus: EventBus,
  options?: MiddlewareOptions,
  more?: (app: FastifyInstance) => void,
  fastifyOptions: Omit<FastifyServerOptions, 'serverFactory'> = {},
): Promise<TestServer> {
  let listener: RequestListener | undefined;
  const app = Fastify({
    ...fastifyOptions,
    serverFactory: (handler) => {
      listener = handler;
      return http.createServer(handler);
    },
  });
  more?.(app); // first, as a Fastify app sets its hooks and handlers before the plugins that inherit them
  await app.register(bus.fastifyPlugin(options));
  app.get('/events', async (_request, reply) => reply.code(299).send(appAnswer('GET', '/events')));
  app.post('/other', async (_request, reply) => reply.code(299).send(appAnswer('POST', '/other')));
  await app.ready();
  const server = await startServer(listener!);
  return {
    ...server,
    close: async () => {
      await server.close();
      await app.close();
    },
  };
}

/** A Hono app handing what its own routes do not answer to the fetch handler, served by @hono/node-server's listener. */
function honoApp(bus: EventBus, options?: MiddlewareOptions): RequestListener {
  const handle = bus.fetchHandler(options);
  const app = new Hono();
  app.get('/events', () => new Response(appAnswer('GET', '/events'), { status: 299 }));
  app.post('/other', () => new Response(appAnswer('POST', '/other'), { status: 299 }));
  app.all('*', (c) => handle(c.req.raw));
  return getRequestListener(app.fetch);
}

export const MOUNTS: Mount[] = [
  { name: 'express', start: (bus, options) => startServer(expressApp(bus, options)) },
  { name: 'koa', start: (bus, options) => startServer(koaApp(bus, options)) },
  { name: 'node:http', start: (bus, options) => startServer(nodeApp(bus, options)) },
  { name: 'fastify', start: (bus, options) => startFastify(bus, options) },
  { name: 'fetch (hono)', start: (bus, options) => startServer(honoApp(bus, options)) },
  { name: 'nestjs (express)', start: (bus) => startNest(bus, 'express'), middlewareOptions: false },
  { name: 'nestjs (fastify)', start: (bus) => startNest(bus, 'fastify'), middlewareOptions: false },
];

/** The mount of that name (throws for an unknown one, so a typo fails the test). */
export function mount(name: string): Mount {
  const found = MOUNTS.find((m) => m.name === name);
  if (!found) throw new Error(`no mount named ${name}: ${MOUNTS.map((m) => m.name).join(', ')}`);
  return found;
}
