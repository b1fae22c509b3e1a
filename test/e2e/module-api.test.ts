import { getRequestListener } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { Webhook } from 'standardwebhooks';
// Imported before any EVENTS_* variable is set: the package loads without configuration.
import {
  close,
  ConfigError,
  declareEvent,
  emit,
  eventsFetchHandler,
  eventsMiddleware,
  fastifyEventsPlugin,
  koaEventsMiddleware,
  subscribeTo,
  type ReceivedEvent,
} from '../../src/index.js';
import { jsonLines, runFixture } from '../helpers/child.js';
import { headersOf, startRecordingServer } from '../helpers/recording-server.js';
import { startServer } from '../helpers/server.js';
import { newSecret, signedStructured, structuredEvent } from '../helpers/signing.js';
import { request } from '../helpers/http-client.js';
import { waitFor } from '../helpers/wait.js';

const saved = { ...process.env };
const open: Array<{ close(): Promise<void> }> = [];

/** Replaces every EVENTS_* variable with `vars` (the rest of process.env is left alone). */
function setEnv(vars: Record<string, string>): void {
  for (const name of Object.keys(process.env)) if (name.startsWith('EVENTS_')) delete process.env[name];
  Object.assign(process.env, vars);
}

beforeEach(() => setEnv({}));
afterEach(async () => {
  await close();
  for (const o of open.splice(0)) await o.close();
});
afterAll(() => {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
});

describe('module-level API configured only through the environment', () => {
  it('sends to an Express, a Koa, a Fastify and a fetch-handler (Hono) service found through EVENTS_SERVICE_<NAME>_URL, signed with EVENTS_SECRET', async () => {
    // One process plays each service in turn (the default bus is one service): it emits to itself
    // through each framework's module-level adapter, as `payments` (Express), `order-service` (Koa:
    // its variable is EVENTS_SERVICE_ORDER_SERVICE_URL), `billing` (Fastify), then `edge` (Hono).
    // Each delivery names its recipient, which is the process's own service name each time.
    const secret = newSecret();
    const received: Array<{ data: unknown; event: ReceivedEvent }> = [];
    const fastify = async () => {
      const app = Fastify();
      await app.register(fastifyEventsPlugin());
      return { origin: await app.listen({ port: 0, host: '127.0.0.1' }), close: () => app.close() };
    };
    const hono = () => {
      const handle = eventsFetchHandler();
      return startServer(getRequestListener(new Hono().all('/events', (c) => handle(c.req.raw)).fetch));
    };
    const phases = [
      { service: 'payments', variable: 'EVENTS_SERVICE_PAYMENTS_URL', start: () => startServer(express().use(eventsMiddleware())), type: 'to-payments', n: 1 },
      { service: 'order-service', variable: 'EVENTS_SERVICE_ORDER_SERVICE_URL', start: () => startServer(new Koa().use(koaEventsMiddleware()).callback()), type: 'to-orders', n: 2 },
      { service: 'billing', variable: 'EVENTS_SERVICE_BILLING_URL', start: fastify, type: 'to-billing', n: 3 },
      { service: 'edge', variable: 'EVENTS_SERVICE_EDGE_URL', start: hono, type: 'to-edge', n: 4 },
    ];
    for (const phase of phases) {
      setEnv({ EVENTS_SERVICE_NAME: phase.service, EVENTS_SECRET: secret, EVENTS_LOG_LEVEL: 'error' });
      const server = await phase.start();
      open.push(server);
      process.env[phase.variable] = `${server.origin}/events`;
      received.length = 0;
      subscribeTo(phase.type, (data, event) => void received.push({ data, event }));
      declareEvent(phase.type, [phase.service]);
      const receipt = await emit(phase.type, { n: phase.n });
      await waitFor(() => received.length === 1, { what: `the ${phase.service} handler` });
      expect(received[0]).toMatchObject({ data: { n: phase.n }, event: { id: receipt.id, source: phase.service, type: phase.type } });
      await close(); // the next phase builds a fresh default bus from the environment
    }
  });

  it('a declared target without a URL is a ConfigError naming the exact variable to set', () => {
    setEnv({ EVENTS_SERVICE_NAME: 'users', EVENTS_SECRET: newSecret() });
    expect(() => declareEvent('invoice-paid', ['billing-api'])).toThrow(ConfigError);
    expect(() => declareEvent('invoice-paid', ['billing-api'])).toThrow(/EVENTS_SERVICE_BILLING_API_URL/);
  });

  it('a malformed EVENTS_SECRET is refused clearly, without echoing it', () => {
    setEnv({ EVENTS_SERVICE_NAME: 'users', EVENTS_SECRET: 'whsec_not base64!!', EVENTS_SERVICE_PAYMENTS_URL: 'http://127.0.0.1:1/events' });
    let error: unknown;
    try {
      declareEvent('x', ['payments']);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('EVENTS_SECRET');
    expect((error as Error).message).not.toContain('not base64!!');
  });

  it('EVENTS_SERVICE_<NAME>_SECRET signs for that target; EVENTS_SECRET (space-separated) verifies incoming events with any entry', async () => {
    const [own, rotated, theirs] = [newSecret(), newSecret(), newSecret()];
    const sink = await startRecordingServer();
    open.push(sink);
    setEnv({
      EVENTS_SERVICE_NAME: 'users',
      EVENTS_SECRET: `${own} ${rotated}`,
      EVENTS_SERVICE_AUDIT_URL: sink.url,
      EVENTS_SERVICE_AUDIT_SECRET: theirs,
      EVENTS_LOG_LEVEL: 'error',
    });
    declareEvent('to-audit', ['audit']);
    await emit('to-audit', { n: 1 });
    const [sent] = await waitFor(() => sink.requests.length === 1 && sink.requests);
    expect(() => new Webhook(theirs).verify(sent!.rawBody, headersOf(sent!))).not.toThrow();
    expect(() => new Webhook(own).verify(sent!.rawBody, headersOf(sent!))).toThrow();

    let runs = 0;
    subscribeTo('ping', () => void (runs += 1));
    const app = await startServer(express().use(eventsMiddleware()));
    open.push(app);
    for (const key of [own, rotated]) {
      expect((await request(`${app.origin}/events`, signedStructured(key, structuredEvent('ping', {})))).status).toBe(200);
    }
    expect((await request(`${app.origin}/events`, signedStructured(theirs, structuredEvent('ping', {})))).status).toBe(401);
    expect(runs).toBe(2);
  });

  it('after close(), the next use builds a fresh default bus from the environment as it is then', async () => {
    const sink = await startRecordingServer();
    open.push(sink);
    setEnv({ EVENTS_SERVICE_NAME: 'users', EVENTS_SECRET: newSecret(), EVENTS_SERVICE_SINK_URL: sink.url, EVENTS_LOG_LEVEL: 'error' });
    declareEvent('ping', ['sink']);
    await emit('ping', {});
    await waitFor(() => sink.requests.length === 1);
    await close();

    process.env.EVENTS_SERVICE_NAME = 'users-v2';
    await expect(emit('ping', {})).rejects.toThrow(/ping/); // the fresh bus has no declarations yet
    declareEvent('ping', ['sink']);
    await emit('ping', {});
    await waitFor(() => sink.requests.length === 2);
    expect(JSON.parse(sink.requests[1]!.body)).toMatchObject({ source: 'users-v2' });
  });
});

describe('close() lets a process exit by itself', () => {
  const env = (url: string, extra: Record<string, string> = {}) => ({
    EVENTS_SERVICE_NAME: 'users',
    EVENTS_SECRET: newSecret(),
    EVENTS_SERVICE_SINK_SERVICE_URL: url,
    EVENTS_LOG_LEVEL: 'info',
    ...extra,
  });

  it('emits to a live (slow) server, waits for the delivery in close(), and exits 0', async () => {
    const sink = await startRecordingServer({ then: { status: 200, delayMs: 300 } });
    open.push(sink);
    const result = await runFixture('emit-and-close.ts', env(sink.url, { FIXTURE_EVENTS: '2' }));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(sink.requests.map((r) => r.status)).toEqual([200, 200]);
    const lines = jsonLines(result.stdout);
    expect(lines.filter((l) => l.message === 'event emitted')).toHaveLength(2);
    expect(lines.filter((l) => l.message === 'event delivered' && l.status === 200)).toHaveLength(2);
    expect(result.stdout).toMatch(/closed \d+/);
  });

  it('a target that never answers: close() gives up at its bound, logs the undelivered event, and the process exits 0', async () => {
    const sink = await startRecordingServer({ then: 'hang' });
    open.push(sink);
    const result = await runFixture('emit-and-close.ts', env(sink.url));
    expect(result.code).toBe(0);
    expect(sink.requests).toHaveLength(1);
    expect(sink.requests[0]!.status).toBeUndefined();
    const undelivered = jsonLines(result.stdout).filter((l) => l.level === 'error' && String(l.message).startsWith('undelivered at shutdown'));
    expect(undelivered).toEqual([expect.objectContaining({ type: 'ping', target: 'sink-service' })]);
  });

  it('EVENTS_LOG_LEVEL sets the level of the default logger (JSON lines on stdout)', async () => {
    const sink = await startRecordingServer();
    open.push(sink);
    const debug = await runFixture('emit-and-close.ts', env(sink.url, { EVENTS_LOG_LEVEL: 'debug' }));
    expect(debug.code).toBe(0);
    expect(jsonLines(debug.stdout).map((l) => `${l.level} ${l.message}`)).toEqual(
      expect.arrayContaining(['info event emitted', 'debug event data']),
    );
    const warn = await runFixture('emit-and-close.ts', env(sink.url, { EVENTS_LOG_LEVEL: 'warn' }));
    expect(warn.code).toBe(0);
    expect(jsonLines(warn.stdout)).toEqual([]);
    expect(sink.requests).toHaveLength(2);
  });
});
