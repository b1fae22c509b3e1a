import { randomUUID } from 'node:crypto';
import express from 'express';
import { createEventBus, type EventBus } from '../../src/index.js';
import { signedBinary } from '../helpers/binary.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { expectNoSecret } from '../helpers/receiver-contract.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret, signedStructured, STRUCTURED, structuredEvent, webhookHeaders } from '../helpers/signing.js';

describe('Express: body parsers mounted before eventsMiddleware', () => {
  let bus: EventBus;
  let server: TestServer | undefined;
  let secret: string;
  let calls: unknown[];

  beforeEach(() => {
    secret = newSecret();
    calls = [];
    bus = createEventBus({ service: 'payments', secret, logger: createCapturingLogger().logger, env: {} });
    bus.subscribeTo('user-created', (data) => void calls.push(data));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await bus.close();
  });

  async function appWith(...parsers: express.RequestHandler[]): Promise<string> {
    const app = express();
    for (const parser of parsers) app.use(parser);
    app.use(bus.expressMiddleware());
    server = await startServer(app);
    return `${server.origin}/events`;
  }

  const data = { user_id: 'u_1', email: 'ada@example.com' };
  const binary = (body = JSON.stringify(data)) => signedBinary(secret, { id: randomUUID(), type: 'user-created' }, body);
  /** A structured event with spacing and key order that re-serialising would change: only the raw bytes verify. */
  const oddlySpaced = () => {
    const id = randomUUID();
    const body = `{ "specversion":"1.0", "type" : "user-created","id":"${id}", "source":"users",\n "data": { "email" : "ada@example.com",  "user_id":"u_1" } }`;
    return { body, headers: { 'content-type': STRUCTURED, ...webhookHeaders(secret, id, body) } };
  };
  const keepRaw = express.json({
    type: ['application/json', 'application/cloudevents+json'],
    verify: (req, _res, buf) => {
      (req as unknown as { rawBody: Buffer }).rawBody = buf;
    },
  });

  it('express.json() first: structured mode still works (express.json leaves application/cloudevents+json unread)', async () => {
    const url = await appWith(express.json());
    const res = await request(url, signedStructured(secret, structuredEvent('user-created', data)));
    expect(res.status).toBe(200);
    expect(calls).toEqual([data]);
  });

  it('express.json({ type: cloudevents, verify }) keeping req.rawBody first: structured mode works, verified over the exact bytes', async () => {
    const url = await appWith(keepRaw);
    const res = await request(url, oddlySpaced());
    expect(res.status).toBe(200);
    expect(calls).toEqual([data]);
  });

  it('express.json({ type: cloudevents, verify }) first: a body changed after signing is still refused (401)', async () => {
    const url = await appWith(keepRaw);
    const req = oddlySpaced();
    const res = await request(url, { ...req, body: req.body.replace('u_1', 'u_9') });
    expect(res.status).toBe(401);
    expect(calls).toEqual([]);
  });

  it('plain express.json() first: an application/json request answers a clear configuration error (500) saying how to fix it', async () => {
    const url = await appWith(express.json());
    // The body is exactly what JSON.stringify(req.body) gives back: verifying a re-serialised body would pass.
    const res = await request(url, binary(JSON.stringify(data)));
    expect(res.status).toBe(500);
    const message = (res.json as { message: string }).message;
    expect(message).toMatch(/before/);
    expect(message).toContain('express.json({ verify');
    expect(calls).toEqual([]);
    expectNoSecret(res.text, secret);
  });

  it('express.json({ type: cloudevents }) without verify first: structured mode answers the same configuration error', async () => {
    const url = await appWith(express.json({ type: ['application/json', 'application/cloudevents+json'] }));
    const res = await request(url, signedStructured(secret, structuredEvent('user-created', data)));
    expect(res.status).toBe(500);
    expect((res.json as { message: string }).message).toContain('rawBody');
    expect(calls).toEqual([]);
  });

  it('express.raw({ type: "*/*" }) first: the Buffer it keeps is verified (structured 200; binary mode still refused, 415)', async () => {
    const url = await appWith(express.raw({ type: '*/*' }));
    expect((await request(url, signedStructured(secret, structuredEvent('user-created', data)))).status).toBe(200);
    expect((await request(url, oddlySpaced())).status).toBe(200);
    expect((await request(url, binary())).status).toBe(415);
    expect(calls).toEqual([data, data]);
  });

  it('works mounted under a prefix with app.use("/hooks", …)', async () => {
    const app = express();
    app.use('/hooks', bus.expressMiddleware());
    server = await startServer(app);
    const res = await request(`${server.origin}/hooks/events`, signedStructured(secret, structuredEvent('user-created', data)));
    expect(res.status).toBe(200);
    expect(calls).toEqual([data]);
  });
});
