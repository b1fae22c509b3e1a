import type { RequestListener } from 'node:http';
import { bodyParser } from '@koa/bodyparser';
import { CloudEvent, HTTP } from 'cloudevents';
import express from 'express';
import Koa from 'koa';
import { Webhook } from 'standardwebhooks';
import { createEventBus, type EventBus, type ReceivedEvent } from '../../src/index.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { headersOf, startRecordingServer, type RecordingServer } from '../helpers/recording-server.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret, webhookHeaders } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function track<T extends { close(): Promise<void> }>(thing: T | Promise<T>): Promise<T> {
  const resolved = await thing;
  open.push(resolved);
  return resolved;
}

describe('our receiver accepts what the reference libraries produce and sign', () => {
  const apps: Record<string, (bus: EventBus) => RequestListener> = {
    express: (bus) => express().use(bus.expressMiddleware()),
    'express with express.json({ verify }) first': (bus) =>
      express()
        .use(express.json({ verify: (req, _res, buf) => void ((req as unknown as { rawBody: Buffer }).rawBody = buf) }))
        .use(bus.expressMiddleware()),
    koa: (bus) => new Koa().use(bus.koaMiddleware()).callback(),
    'koa with @koa/bodyparser first': (bus) => new Koa().use(bodyParser()).use(bus.koaMiddleware()).callback(),
  };

  const modes = {
    structured: (ce: CloudEvent<unknown>) => HTTP.structured(ce),
    // A batch of one: the cloudevents package serialises each event; the array is the body.
    batch: (ce: CloudEvent<unknown>) => ({
      headers: { 'content-type': 'application/cloudevents-batch+json; charset=utf-8' },
      body: `[${String(HTTP.structured(ce).body)}]`,
    }),
  };

  describe.each(Object.keys(apps))('%s', (appName) => {
    let secret: string;
    let server: TestServer;
    let received: Array<{ data: unknown; event: ReceivedEvent }>;

    beforeEach(async () => {
      secret = newSecret();
      received = [];
      const bus = await track(createEventBus({ service: 'payments', secret, logger: createCapturingLogger().logger, env: {} }));
      bus.subscribeTo('com.example.user-created', (data, event) => void received.push({ data, event }), {
        schema: { type: 'object', required: ['user_id'] },
      });
      server = await track(startServer(apps[appName]!(bus)));
    });

    it.each(Object.keys(modes))('a cloudevents %s message signed by standardwebhooks → 200, the handler ran', async (mode) => {
      const ce = new CloudEvent({
        type: 'com.example.user-created',
        source: 'https://users.example.com',
        data: { user_id: 'u_42', email: 'grace@example.com' },
      });
      const message = modes[mode as keyof typeof modes](ce);
      const body = String(message.body);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(message.headers)) headers[name] = String(value);
      const res = await request(`${server.origin}/events`, {
        body,
        headers: { ...headers, ...webhookHeaders(secret, ce.id, body) },
      });
      expect(res.status).toBe(200);
      expect(received).toHaveLength(1);
      expect(received[0]!.data).toEqual({ user_id: 'u_42', email: 'grace@example.com' });
      expect(received[0]!.event).toMatchObject({
        id: ce.id,
        type: 'com.example.user-created',
        source: 'https://users.example.com',
        specversion: '1.0',
      });
      expect(Date.parse(received[0]!.event.time!)).toBe(Date.parse(ce.time!));
    });

    it('a cloudevents binary message signed by standardwebhooks → 415 (ce-* headers are unsigned), no handler', async () => {
      const ce = new CloudEvent({ type: 'com.example.user-created', source: 'users', data: { user_id: 'u_42' } });
      const message = HTTP.binary(ce);
      const body = String(message.body);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(message.headers)) headers[name] = String(value);
      const res = await request(`${server.origin}/events`, { body, headers: { ...headers, ...webhookHeaders(secret, ce.id, body) } });
      expect(res.status).toBe(415);
      expect(res.json).toMatchObject({ error: 'binary_mode_refused' });
      expect(received).toHaveLength(0);
    });

    it('the same message signed by standardwebhooks with another secret → 401, no handler', async () => {
      const ce = new CloudEvent({ type: 'com.example.user-created', source: 'users', data: { user_id: 'u_42' } });
      const message = HTTP.structured(ce);
      const body = String(message.body);
      const res = await request(`${server.origin}/events`, {
        body,
        headers: { 'content-type': String(message.headers['content-type']), ...webhookHeaders(newSecret(), ce.id, body) },
      });
      expect(res.status).toBe(401);
      expect(received).toHaveLength(0);
    });
  });
});

describe('the reference libraries verify and parse what we send', () => {
  let target: RecordingServer;
  beforeEach(async () => {
    target = await track(startRecordingServer());
  });

  it('exact wire format: structured CloudEvent, Standard Webhooks headers, verified by standardwebhooks, parsed by cloudevents', async () => {
    const secret = newSecret();
    const bus = await track(
      createEventBus({ service: 'users', secret, services: { payments: target.url }, logger: createCapturingLogger().logger, env: {} }),
    );
    bus.declareEvent('user-created', ['payments']);
    const before = Math.floor(Date.now() / 1000);
    const receipt = await bus.emit('user-created', { user_id: 'u_1', email: 'ada@example.com', tags: ['a', 'é'] });
    const [sent] = await waitFor(() => target.requests.length === 1 && target.requests, { what: 'the delivery' });
    const after = Math.floor(Date.now() / 1000);

    expect(sent!.method).toBe('POST');
    expect(sent!.url).toBe('/events');
    expect(sent!.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');

    const body = JSON.parse(sent!.body) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['data', 'datacontenttype', 'id', 'recipient', 'source', 'specversion', 'time', 'type']);
    expect(body).toEqual({
      recipient: 'payments', // the target, signed with the rest (issue 16 item 21)
      specversion: '1.0',
      id: receipt.id,
      source: 'users',
      type: 'user-created',
      time: receipt.time,
      datacontenttype: 'application/json',
      data: { user_id: 'u_1', email: 'ada@example.com', tags: ['a', 'é'] },
    });
    expect(new Date(String(body.time)).toISOString()).toBe(body.time);

    expect(sent!.headers['webhook-id']).toBe(receipt.id);
    const timestamp = String(sent!.headers['webhook-timestamp']);
    expect(timestamp).toMatch(/^\d+$/);
    expect(Number(timestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(timestamp)).toBeLessThanOrEqual(after);
    const signature = String(sent!.headers['webhook-signature']);
    expect(signature).toMatch(/^v1,[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(signature.slice(3), 'base64')).toHaveLength(32);

    const headers = headersOf(sent!);
    expect(new Webhook(secret).verify(sent!.rawBody, headers)).toEqual(body);
    expect(() => new Webhook(newSecret()).verify(sent!.rawBody, headers)).toThrow();

    const event = HTTP.toEvent({ headers, body: sent!.body }) as CloudEvent<unknown>;
    expect(event).toBeInstanceOf(CloudEvent);
    expect(event.id).toBe(receipt.id);
    expect(event.type).toBe('user-created');
    expect(event.source).toBe('users');
    expect(event.specversion).toBe('1.0');
    expect(event.datacontenttype).toBe('application/json');
    expect(event.recipient).toBe('payments');
    expect(event.data).toEqual({ user_id: 'u_1', email: 'ada@example.com', tags: ['a', 'é'] });
  });

  it('signs with every secret of a target during a rotation, and uses the target secret over our own', async () => {
    const own = newSecret();
    const [a, b] = [newSecret(), newSecret()];
    const bus = await track(
      createEventBus({
        service: 'users',
        secret: own,
        services: { payments: { url: target.url, secret: [a, b] } },
        logger: createCapturingLogger().logger,
        env: {},
      }),
    );
    bus.declareEvent('user-created', ['payments']);
    await bus.emit('user-created', { user_id: 'u_1' });
    const [sent] = await waitFor(() => target.requests.length === 1 && target.requests);
    const headers = headersOf(sent!);
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(() => new Webhook(a).verify(sent!.rawBody, headers)).not.toThrow();
    expect(() => new Webhook(b).verify(sent!.rawBody, headers)).not.toThrow();
    expect(() => new Webhook(own).verify(sent!.rawBody, headers)).toThrow();
  });
});
