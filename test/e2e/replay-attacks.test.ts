import { randomUUID } from 'node:crypto';
import type { RequestListener } from 'node:http';
import express from 'express';
import Koa from 'koa';
import { createEventBus, type EventBus } from '../../src/index.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { openRawRequest, type RawAnswer } from '../helpers/raw-http.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret, signedStructured, structuredEvent, webhookHeaders, type SignedRequest } from '../helpers/signing.js';

/**
 * Issue 6 item 1: no unsigned byte steers an event. ONE captured signed request is replayed
 * within the signature window in every mutated form an attacker without the key can make; none
 * may run a handler a second time, or under another type, source or id.
 */

type Framework = 'express' | 'koa';
const apps: Record<Framework, (bus: EventBus) => RequestListener> = {
  express: (bus) => express().use(bus.expressMiddleware()),
  koa: (bus) => new Koa().use(bus.koaMiddleware()).callback(),
};

interface Call {
  handler: string;
  id: string;
  type: string;
  source: string;
}

type Headers = Record<string, string | string[]>;
interface Replay {
  headers: Headers;
  body: string;
}

/** Sends exactly these header lines (repeated ones included) and body over a fresh socket. */
async function sendRaw(server: TestServer, { headers, body }: Replay): Promise<RawAnswer> {
  const connection = await openRawRequest(server.port, '/events', { ...headers, 'content-length': String(Buffer.byteLength(body)) });
  connection.write(body);
  try {
    return await connection.answer;
  } finally {
    connection.destroy();
  }
}

const without = (headers: Headers, name: string): Headers => Object.fromEntries(Object.entries(headers).filter(([n]) => n !== name));

/** The mutations of a captured structured request, and the statuses each may get (2xx only where it is a harmless duplicate). */
function mutations(captured: SignedRequest): Array<[string, Replay, number[]]> {
  const h = captured.headers;
  const event = JSON.parse(captured.body) as Record<string, unknown>;
  const fresh = randomUUID();
  const binaryHeaders = {
    'ce-specversion': '1.0',
    'ce-id': fresh,
    'ce-source': 'admin',
    'ce-type': 'user-deleted',
  };
  const signatureValue = h['webhook-signature']!;
  return [
    ['re-sent as is (dedupe: 2xx, no rerun)', { headers: h, body: captured.body }, [200]],
    ['with a fresh ce-id header', { headers: { ...h, 'ce-id': fresh }, body: captured.body }, [200, 415]],
    ['with another ce-type header', { headers: { ...h, 'ce-type': 'user-deleted' }, body: captured.body }, [200, 415]],
    ['with another ce-source header', { headers: { ...h, 'ce-source': 'admin' }, body: captured.body }, [200, 415]],
    ['with every extra ce-* header', { headers: { ...h, ...binaryHeaders, 'ce-subject': 'x' }, body: captured.body }, [200, 415]],
    [
      'turned into binary mode (application/json + ce-* headers), same signed body',
      { headers: { ...h, 'content-type': 'application/json', ...binaryHeaders }, body: captured.body },
      [415],
    ],
    [
      'turned into binary mode carrying only the data',
      { headers: { ...h, 'content-type': 'application/json', ...binaryHeaders }, body: JSON.stringify(event.data) },
      [401],
    ],
    ['content type swapped to batch', { headers: { ...h, 'content-type': 'application/cloudevents-batch+json' }, body: captured.body }, [400]],
    ['content type swapped to application/json', { headers: { ...h, 'content-type': 'application/json' }, body: captured.body }, [400]],
    ['content type swapped to text/plain', { headers: { ...h, 'content-type': 'text/plain' }, body: captured.body }, [415]],
    ['content type removed', { headers: without(h, 'content-type'), body: captured.body }, [415]],
    [
      'content type duplicated: batch first, then structured',
      { headers: { ...h, 'content-type': ['application/cloudevents-batch+json', h['content-type']!] }, body: captured.body },
      [400, 415],
    ],
    ['webhook-signature header duplicated', { headers: { ...h, 'webhook-signature': [signatureValue, signatureValue] }, body: captured.body }, [200, 401]],
    ['webhook-id header duplicated with a fresh id', { headers: { ...h, 'webhook-id': [h['webhook-id']!, fresh] }, body: captured.body }, [401]],
    [
      'webhook-timestamp header duplicated with another time',
      { headers: { ...h, 'webhook-timestamp': [h['webhook-timestamp']!, String(Number(h['webhook-timestamp']) + 1)] }, body: captured.body },
      [401],
    ],
    ['a fresh webhook-id', { headers: { ...h, 'webhook-id': fresh }, body: captured.body }, [401]],
    ['another webhook-timestamp', { headers: { ...h, 'webhook-timestamp': String(Number(h['webhook-timestamp']) - 1) }, body: captured.body }, [401]],
    ['a fresh id in the body', { headers: h, body: JSON.stringify({ ...event, id: fresh }) }, [401]],
    ['another type in the body', { headers: h, body: JSON.stringify({ ...event, type: 'user-deleted' }) }, [401]],
    ['another source in the body', { headers: h, body: JSON.stringify({ ...event, source: 'admin' }) }, [401]],
    ['the body re-serialised with a space', { headers: h, body: `${captured.body} ` }, [401]],
    ['wrapped in a batch', { headers: { ...h, 'content-type': 'application/cloudevents-batch+json' }, body: `[${captured.body}]` }, [401]],
    ['the signature of another secret appended', { headers: { ...h, 'webhook-signature': `${signatureValue} v1,${Buffer.alloc(32).toString('base64')}` }, body: captured.body }, [200]],
  ];
}

describe.each(Object.keys(apps) as Framework[])('replaying one captured signed request (%s)', (framework) => {
  let secret: string;
  let server: TestServer;
  let bus: EventBus;
  const calls: Call[] = [];
  let captured: SignedRequest;
  let original: Call;

  beforeAll(async () => {
    secret = newSecret();
    bus = createEventBus({ service: 'payments', secret, logger: createCapturingLogger().logger, env: {} });
    for (const type of ['user-created', 'user-deleted']) {
      bus.subscribeTo(type, (_data, event) => void calls.push({ handler: type, id: event.id, type: event.type, source: event.source }));
    }
    server = await startServer(apps[framework](bus));
    const event = structuredEvent('user-created', { user_id: 'u_1' }, { source: 'users' });
    captured = signedStructured(secret, event);
    original = { handler: 'user-created', id: String(event.id), type: 'user-created', source: 'users' };
    const first = await sendRaw(server, captured);
    expect(first.status).toBe(200);
    expect(calls).toEqual([original]);
  });
  afterAll(async () => {
    await server.close();
    await bus.close();
  });

  // The mutations are built from the captured request, which exists only after beforeAll: index them.
  const names = mutations(signedStructured(newSecret(), structuredEvent('user-created', {}))).map(([name]) => name);
  it.each(names.map((name, index) => [name, index] as const))('%s: no second run, nothing under another type, source or id', async (_name, index) => {
    const [, replay, allowed] = mutations(captured)[index]!;
    try {
      const answer = await sendRaw(server, replay);
      expect(calls).toEqual([original]);
      expect(allowed).toContain(answer.status);
      if (answer.status === 200) expect(JSON.parse(answer.body)).toMatchObject({ status: 'duplicate', id: original.id });
    } finally {
      calls.splice(0, calls.length, original); // each mutation is judged on its own
    }
  });

  it('a captured binary-mode request (as another CloudEvents peer would send it) runs nothing, as is or with fresh ce-id, ce-type or ce-source', async () => {
    const id = randomUUID();
    const body = JSON.stringify({ user_id: 'u_bin' });
    const binary = {
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': id,
        'ce-source': 'users',
        'ce-type': 'user-created',
        ...webhookHeaders(secret, id, body),
      },
      body,
    };
    const replays: Replay[] = [
      binary,
      { ...binary, headers: { ...binary.headers, 'ce-id': randomUUID() } },
      { ...binary, headers: { ...binary.headers, 'ce-type': 'user-deleted' } },
      { ...binary, headers: { ...binary.headers, 'ce-source': 'admin' } },
      { ...binary, headers: { ...binary.headers, 'content-type': 'application/cloudevents+json' } },
    ];
    for (const replay of replays) {
      const answer = await sendRaw(server, replay);
      expect(answer.status).toBeGreaterThanOrEqual(400);
    }
    expect(calls).toEqual([original]);
  });

  it('a captured batch: re-sent runs nothing again; its members cut out, or sent as structured, are refused', async () => {
    const a = structuredEvent('user-created', { user_id: 'u_a' });
    const b = structuredEvent('user-created', { user_id: 'u_b' });
    const body = JSON.stringify([a, b]);
    const batch = { headers: { 'content-type': 'application/cloudevents-batch+json', ...webhookHeaders(secret, randomUUID(), body) }, body };
    calls.length = 0;
    expect((await sendRaw(server, batch)).status).toBe(200);
    expect(calls.map((c) => c.id)).toEqual([a.id, b.id]);
    expect((await sendRaw(server, batch)).status).toBe(200);
    expect((await sendRaw(server, { headers: { ...batch.headers, 'content-type': 'application/cloudevents+json' }, body })).status).toBe(400);
    expect((await sendRaw(server, { headers: batch.headers, body: JSON.stringify([b]) })).status).toBe(401);
    expect((await sendRaw(server, { headers: { ...batch.headers, 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(b) })).status).toBe(401);
    expect(calls.map((c) => c.id)).toEqual([a.id, b.id]);
    calls.length = 0;
    calls.push(original);
  });
});
