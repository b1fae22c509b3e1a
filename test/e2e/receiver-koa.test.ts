import { randomUUID } from 'node:crypto';
import { bodyParser } from '@koa/bodyparser';
import Koa from 'koa';
import { createEventBus, type EventBus } from '../../src/index.js';
import { signedBinary } from '../helpers/binary.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret, signedStructured, STRUCTURED, structuredEvent, webhookHeaders } from '../helpers/signing.js';

describe('Koa: body parsers mounted before koaEventsMiddleware', () => {
  let bus: EventBus;
  let server: TestServer | undefined;
  let secret: string;
  let calls: unknown[];

  beforeEach(() => {
    secret = newSecret();
    calls = [];
    bus = createEventBus({ service: 'orders', secret, logger: createCapturingLogger().logger, env: {} });
    bus.subscribeTo('user-created', (data) => void calls.push(data));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await bus.close();
  });

  async function appWith(...middleware: Koa.Middleware[]): Promise<string> {
    const app = new Koa();
    for (const m of middleware) app.use(m);
    app.use(bus.koaMiddleware());
    app.use((ctx) => {
      ctx.status = 299;
      ctx.body = { passedOn: ctx.path, parsed: ctx.request.body ?? null };
    });
    server = await startServer(app.callback());
    return `${server.origin}/events`;
  }

  const data = { user_id: 'u_1', email: 'ada@example.com' };
  const binary = (body = JSON.stringify(data)) => signedBinary(secret, { id: randomUUID(), type: 'user-created' }, body);

  it('@koa/bodyparser first: structured mode works', async () => {
    const url = await appWith(bodyParser());
    const res = await request(url, signedStructured(secret, structuredEvent('user-created', data)));
    expect(res.status).toBe(200);
    expect(calls).toEqual([data]);
  });

  it('@koa/bodyparser parsing cloudevents+json first: verified over ctx.request.rawBody (the exact bytes)', async () => {
    const url = await appWith(bodyParser({ extendTypes: { json: ['application/cloudevents+json'] } }));
    // Spacing and key order that re-serialising would change: only the raw bytes verify.
    const id = randomUUID();
    const body = `{ "specversion":"1.0", "type" : "user-created","id":"${id}", "source":"users",\n "data": { "email" : "ada@example.com",  "user_id":"u_1" } }`;
    const res = await request(url, { body, headers: { 'content-type': STRUCTURED, ...webhookHeaders(secret, id, body) } });
    expect(res.status).toBe(200);
    expect(calls).toEqual([data]);
  });

  it('@koa/bodyparser first: a signed binary-mode request is refused (415), no handler', async () => {
    const url = await appWith(bodyParser());
    const res = await request(url, binary());
    expect(res.status).toBe(415);
    expect((res.json as { error: string }).error).toBe('binary_mode_refused');
    expect(calls).toEqual([]);
  });

  it('@koa/bodyparser first: a binary body changed after signing is refused (401)', async () => {
    const url = await appWith(bodyParser());
    const req = binary();
    const res = await request(url, { ...req, body: req.body.replace('u_1', 'u_9') });
    expect(res.status).toBe(401);
    expect(calls).toEqual([]);
  });

  it('@koa/bodyparser parsing application/cloudevents+json too: structured mode works', async () => {
    const url = await appWith(bodyParser({ extendTypes: { json: ['application/cloudevents+json'] } }));
    const res = await request(url, signedStructured(secret, structuredEvent('user-created', data)));
    expect(res.status).toBe(200);
    expect(calls).toEqual([data]);
  });

  it('a parser that consumed the body without keeping it: a clear configuration error (500), no handler', async () => {
    const url = await appWith(async (ctx, next) => {
      const chunks: Buffer[] = [];
      for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
      ctx.request.body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      await next();
    });
    const res = await request(url, binary(JSON.stringify(data)));
    expect(res.status).toBe(500);
    expect((res.json as { message: string }).message).toContain('@koa/bodyparser');
    expect(calls).toEqual([]);
  });

  it('passes other requests on to the app, with the body parser still working for them', async () => {
    const url = await appWith(bodyParser());
    const res = await request(url.replace('/events', '/users'), {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Ada' }),
    });
    expect(res.status).toBe(299);
    expect(res.json).toEqual({ passedOn: '/users', parsed: { name: 'Ada' } });
  });
});
