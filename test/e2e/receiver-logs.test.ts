import type { RequestListener } from 'node:http';
import express from 'express';
import Koa from 'koa';
import { createEventBus, type EventBus } from '../../src/index.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger, type CapturingLogger } from '../helpers/logger.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret, signedStructured, structuredEvent, webhookHeaders } from '../helpers/signing.js';

/**
 * Issue 6 item 15 (receiver side): refusals of authenticated requests say which event they
 * refused; payloads never appear above debug; a 500 for a consumed raw body is logged here too.
 */

type Framework = 'express' | 'koa';

/** Express or Koa with the events middleware, after `consume` when given (a parser that eats the raw bytes). */
function appFor(framework: Framework, bus: EventBus, consume = false): RequestListener {
  if (framework === 'express') {
    const app = express();
    if (consume) app.use(express.json({ type: ['application/json', 'application/cloudevents+json'] }));
    return app.use(bus.expressMiddleware());
  }
  const app = new Koa();
  if (consume) {
    app.use(async (ctx, next) => {
      const chunks: Buffer[] = [];
      for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
      ctx.request.body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      await next();
    });
  }
  return app.use(bus.koaMiddleware()).callback();
}

const PERSONAL = 'grace.hopper@example.com';
const Schema = { type: 'object', required: ['user_id'], properties: { user_id: { type: 'string' }, email: { type: 'string' } } } as const;

describe.each(['express', 'koa'] as Framework[])('receiver log lines (%s)', (framework) => {
  let secret: string;
  let log: CapturingLogger;
  let bus: EventBus;
  let server: TestServer;

  async function setup(consume = false): Promise<void> {
    secret = newSecret();
    log = createCapturingLogger('debug');
    bus = createEventBus({ service: 'payments', secret, logger: log.logger, env: {} });
    bus.subscribeTo('user-created', () => undefined, { schema: Schema });
    bus.subscribeTo('user-failing', () => {
      throw new Error('database is down');
    });
    server = await startServer(appFor(framework, bus, consume));
  }
  afterEach(async () => {
    await server.close();
    await bus.close();
  });

  /** Every line above debug, as written. */
  const aboveDebug = () => log.lines.filter((line) => !line.includes('"level":"debug"'));

  it('an authenticated event nobody here subscribes to (404): the refusal line names its id, type and source', async () => {
    await setup();
    const event = structuredEvent('user-renamed', { user_id: 'u_1', email: PERSONAL }, { source: 'users' });
    expect((await request(server.url, signedStructured(secret, event))).status).toBe(404);
    expect(log.withMessage('event refused')).toEqual([
      expect.objectContaining({ level: 'warn', status: 404, reason: 'no_subscriber', eventId: event.id, type: 'user-renamed', source: 'users' }),
    ]);
    expect(aboveDebug().join('\n')).not.toContain(PERSONAL);
  });

  it('authenticated data failing the schema (400): the refusal line names the event, never the payload', async () => {
    await setup();
    const event = structuredEvent('user-created', { user_id: 42, email: PERSONAL }, { source: 'users' });
    expect((await request(server.url, signedStructured(secret, event))).status).toBe(400);
    expect(log.withMessage('event refused')).toEqual([
      expect.objectContaining({ status: 400, reason: 'invalid_data', eventId: event.id, type: 'user-created', source: 'users' }),
    ]);
    expect(aboveDebug().join('\n')).not.toContain(PERSONAL);
  });

  it('an authenticated request that is not a readable event (415/400): the refusal line carries its webhook-id', async () => {
    await setup();
    const body = JSON.stringify({ email: PERSONAL });
    const res = await request(server.url, { body, headers: { 'content-type': 'text/plain', ...webhookHeaders(secret, 'msg_123', body) } });
    expect(res.status).toBe(415);
    expect(log.withMessage('event refused')).toEqual([expect.objectContaining({ status: 415, webhookId: 'msg_123' })]);
    expect(aboveDebug().join('\n')).not.toContain(PERSONAL);
  });

  it('delivered, duplicate and failing events: the payload appears only at debug', async () => {
    await setup();
    const ok = signedStructured(secret, structuredEvent('user-created', { user_id: 'u_1', email: PERSONAL }));
    expect((await request(server.url, ok)).status).toBe(200);
    expect((await request(server.url, ok)).status).toBe(200);
    const failing = signedStructured(secret, structuredEvent('user-failing', { email: PERSONAL }));
    expect((await request(server.url, failing)).status).toBe(500);
    expect(log.records.some((r) => r.level === 'debug' && JSON.stringify(r).includes(PERSONAL))).toBe(true);
    expect(aboveDebug().join('\n')).not.toContain(PERSONAL);
  });

  it('a body parser consumed the raw bytes: besides the 500, the receiver logs why at error level, with the fix', async () => {
    await setup(true);
    const res = await request(server.url, signedStructured(secret, structuredEvent('user-created', { user_id: 'u_1', email: PERSONAL })));
    expect(res.status).toBe(500);
    const errors = log.records.filter((r) => r.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ status: 500, reason: 'raw_body_unavailable' });
    expect(String(errors[0]!.error)).toMatch(/before the body parser/);
    expect(log.lines.join('\n')).not.toContain(secret.slice(6));
  });

  it('an unsigned request behind that same parser is refused as unsigned (401), with no error line to flood the logs', async () => {
    await setup(true);
    const res = await request(server.url, {
      body: JSON.stringify(structuredEvent('user-created', { user_id: 'u_1' })),
      headers: { 'content-type': 'application/cloudevents+json' },
    });
    expect(res.status).toBe(401);
    expect(log.records.filter((r) => r.level === 'error')).toEqual([]);
  });
});
