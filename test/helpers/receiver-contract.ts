import { randomBytes } from 'node:crypto';
import { createEventBus, type EventBus, type EventBusOptions, type MiddlewareOptions, type ReceivedEvent } from '../../src/index.js';
import { request, type ClientResponse } from './http-client.js';
import { createCapturingLogger, type CapturingLogger } from './logger.js';
import type { Mount } from './mounts.js';
import { openRawRequest } from './raw-http.js';
import type { TestServer } from './server.js';
import { resultsOf, signedBatch } from './signed-batch.js';
import { newSecret, signedStructured, STRUCTURED, structuredEvent, webhookHeaders, type SignedRequest } from './signing.js';

const UserCreated = {
  type: 'object',
  properties: { user_id: { type: 'string' }, email: { type: 'string', format: 'email' } },
  required: ['user_id', 'email'],
  additionalProperties: false,
} as const;

interface Fixture {
  secret: string;
  bus: EventBus;
  server: TestServer;
  log: CapturingLogger;
  calls: Array<{ data: unknown; event: ReceivedEvent }>;
  url: string;
}

/** The receiver's contract (statuses, receipts, limits), run against a real app of one mount (test/helpers/mounts.ts). */
export function describeReceiverContract(mount: Mount): void {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((o) => o.close()));
  });

  async function setup(options: EventBusOptions = {}, middleware?: MiddlewareOptions): Promise<Fixture> {
    const secret = newSecret();
    const log = createCapturingLogger();
    const bus = createEventBus({ service: 'payments', secret, logger: log.logger, env: {}, ...options });
    open.push(bus);
    const calls: Fixture['calls'] = [];
    bus.subscribeTo('user-created', (data, event) => void calls.push({ data, event }), { schema: UserCreated });
    bus.subscribeTo('big-event', (data, event) => void calls.push({ data, event }));
    bus.subscribeTo('fails', () => {
      throw new Error('database is down');
    });
    const server = await mount.start(bus, middleware);
    open.push(server);
    return { secret, bus, server, log, calls, url: `${server.origin}${middleware?.path ?? '/events'}` };
  }

  const validEvent = () => structuredEvent('user-created', { user_id: 'u_1', email: 'ada@example.com' });
  const send = (url: string, req: SignedRequest): Promise<ClientResponse> => request(url, req);

  describe(`receiver status table (${mount.name})`, () => {
    it('accepts a valid signed event: 200, the handler runs once with (data, event)', async () => {
      const f = await setup();
      const event = validEvent();
      const res = await send(f.url, signedStructured(f.secret, event));
      expect(res.status).toBe(200);
      expect(f.calls).toHaveLength(1);
      const [call] = f.calls;
      expect(call!.data).toEqual({ user_id: 'u_1', email: 'ada@example.com' });
      expect(call!.event).toMatchObject({ id: event.id, type: 'user-created', source: 'users', time: event.time });
    });

    it('runs the handlers once for an event delivered twice (dedupe by id), answering 2xx both times', async () => {
      const f = await setup();
      const req = signedStructured(f.secret, validEvent());
      expect((await send(f.url, req)).status).toBe(200);
      expect((await send(f.url, req)).status).toBe(200);
      expect(f.calls).toHaveLength(1);
    });

    it('refuses binary mode (ce-* headers, JSON body) even when signed: 415 says why and what to send, no handler, logged with the webhook id', async () => {
      const f = await setup();
      const event = validEvent();
      const body = JSON.stringify(event.data);
      const res = await send(f.url, {
        body,
        headers: {
          'content-type': 'application/json',
          'ce-specversion': '1.0',
          'ce-id': String(event.id),
          'ce-source': 'users',
          'ce-type': 'user-created',
          'ce-time': String(event.time),
          ...webhookHeaders(f.secret, String(event.id), body),
        },
      });
      expect(res.status).toBe(415);
      expect(res.json).toMatchObject({ error: 'binary_mode_refused' });
      expect((res.json as { message: string }).message).toContain('application/cloudevents+json');
      expect(f.calls).toHaveLength(0);
      expect(f.log.withMessage('event refused').at(-1)).toMatchObject({ status: 415, webhookId: event.id });
    });

    it('accepts any one of several space-separated signatures, and any configured secret (rotation)', async () => {
      const old = newSecret();
      const f = await setup({ secret: [newSecret(), old] });
      const req = signedStructured(old, validEvent());
      const stranger = signedStructured(newSecret(), JSON.parse(req.body) as Record<string, unknown>);
      req.headers['webhook-signature'] = `${stranger.headers['webhook-signature']} ${req.headers['webhook-signature']}`;
      const res = await send(f.url, req);
      expect(res.status).toBe(200);
      expect(f.calls).toHaveLength(1);
    });

    const refusals: Array<{ name: string; status: number; change: (f: Fixture) => SignedRequest; says?: RegExp }> = [
      {
        name: 'no webhook-* headers at all',
        status: 401,
        change: (f) => {
          const req = signedStructured(f.secret, validEvent());
          delete req.headers['webhook-id'];
          delete req.headers['webhook-timestamp'];
          delete req.headers['webhook-signature'];
          return req;
        },
      },
      {
        name: 'no webhook-signature header',
        status: 401,
        change: (f) => {
          const req = signedStructured(f.secret, validEvent());
          delete req.headers['webhook-signature'];
          return req;
        },
      },
      {
        name: 'signed with another secret',
        status: 401,
        change: () => signedStructured(newSecret(), validEvent()),
      },
      {
        name: 'a signature of the right length that is wrong',
        status: 401,
        change: (f) => {
          const req = signedStructured(f.secret, validEvent());
          req.headers['webhook-signature'] = `v1,${randomBytes(32).toString('base64')}`;
          return req;
        },
      },
      {
        name: 'the right signature under another version (v2,)',
        status: 401,
        change: (f) => {
          const req = signedStructured(f.secret, validEvent());
          req.headers['webhook-signature'] = req.headers['webhook-signature']!.replace(/^v1,/, 'v2,');
          return req;
        },
      },
      {
        name: 'a timestamp 6 minutes old (correctly signed for it)',
        status: 401,
        change: (f) => {
          const event = validEvent();
          const body = JSON.stringify(event);
          return { body, headers: { 'content-type': STRUCTURED, ...webhookHeaders(f.secret, String(event.id), body, new Date(Date.now() - 6 * 60_000)) } };
        },
      },
      {
        name: 'a timestamp 6 minutes ahead (correctly signed for it)',
        status: 401,
        change: (f) => {
          const event = validEvent();
          const body = JSON.stringify(event);
          return { body, headers: { 'content-type': STRUCTURED, ...webhookHeaders(f.secret, String(event.id), body, new Date(Date.now() + 6 * 60_000)) } };
        },
      },
      {
        name: 'the body changed after signing',
        status: 401,
        change: (f) => {
          const req = signedStructured(f.secret, validEvent());
          return { ...req, body: req.body.replace('u_1', 'u_2') };
        },
      },
      {
        name: 'whitespace added to the body after signing (the exact bytes are signed)',
        status: 401,
        change: (f) => {
          const req = signedStructured(f.secret, validEvent());
          return { ...req, body: `${req.body} ` };
        },
      },
      {
        name: 'a different webhook-id than the one signed',
        status: 401,
        change: (f) => {
          const req = signedStructured(f.secret, validEvent());
          return { ...req, headers: { ...req.headers, 'webhook-id': 'another-id' } };
        },
      },
      {
        name: 'content-type text/plain',
        status: 415,
        change: (f) => {
          const req = signedStructured(f.secret, validEvent());
          return { ...req, headers: { ...req.headers, 'content-type': 'text/plain' } };
        },
      },
      {
        name: 'no content-type',
        status: 415,
        change: (f) => {
          const req = signedStructured(f.secret, validEvent());
          delete req.headers['content-type'];
          return req;
        },
      },
      {
        name: 'malformed JSON (signed)',
        status: 400,
        says: /JSON/,
        change: (f) => {
          const body = JSON.stringify(validEvent()).slice(0, -1);
          return { body, headers: { 'content-type': STRUCTURED, ...webhookHeaders(f.secret, 'evt-1', body) } };
        },
      },
      {
        name: 'a body that is not a CloudEvent (no specversion, signed)',
        status: 400,
        says: /specversion/,
        change: (f) => {
          const { specversion: _dropped, ...event } = validEvent();
          return signedStructured(f.secret, event);
        },
      },
      {
        name: 'schema-invalid data (signed)',
        status: 400,
        says: /email/,
        change: (f) => signedStructured(f.secret, structuredEvent('user-created', { user_id: 'u_1', email: 'not an email' })),
      },
      {
        name: 'schema-invalid data: a required field missing (signed)',
        status: 400,
        says: /email/,
        change: (f) => signedStructured(f.secret, structuredEvent('user-created', { user_id: 'u_1' })),
      },
      {
        name: 'a type nobody here subscribes to (signed)',
        status: 404,
        says: /user-renamed/,
        change: (f) => signedStructured(f.secret, structuredEvent('user-renamed', { user_id: 'u_1' })),
      },
    ];

    it.each(refusals)('refuses $name with $status, without reaching a handler or echoing the secret', async ({ change, status, says }) => {
      const f = await setup();
      const res = await send(f.url, change(f));
      expect(res.status).toBe(status);
      expect(f.calls).toHaveLength(0);
      expect(res.json).toEqual(expect.objectContaining({ error: expect.any(String), message: expect.any(String) }));
      if (says) expect((res.json as { message: string }).message).toMatch(says);
      expectNoSecret(res.text, f.secret);
      expect(f.log.withMessage('event refused')).toEqual([expect.objectContaining({ level: 'warn', status })]);
    });

    it('answers 413 for a body over a configured bodyLimitBytes, without reaching a handler', async () => {
      const f = await setup({ bodyLimitBytes: 1024 });
      const small = signedStructured(f.secret, structuredEvent('big-event', { blob: 'x'.repeat(500) }));
      expect((await send(f.url, small)).status).toBe(200);
      const big = signedStructured(f.secret, structuredEvent('big-event', { blob: 'x'.repeat(1100) }));
      const res = await send(f.url, big);
      expect(res.status).toBe(413);
      expect(f.calls).toHaveLength(1);
      expectNoSecret(res.text, f.secret);
    });

    it('answers 413 for a body over the default limit of 1 MiB, and accepts one just under it', async () => {
      const f = await setup();
      const under = signedStructured(f.secret, structuredEvent('big-event', { blob: 'x'.repeat(1024 * 1024 - 400) }));
      expect(Buffer.byteLength(under.body)).toBeLessThanOrEqual(1024 * 1024);
      expect((await send(f.url, under)).status).toBe(200);
      const over = signedStructured(f.secret, structuredEvent('big-event', { blob: 'x'.repeat(1024 * 1024) }));
      const res = await send(f.url, over);
      expect(res.status).toBe(413);
      expect(f.calls).toHaveLength(1);
    });

    it('answers 413 for a body over the limit sent without content-length (chunked)', async () => {
      const f = await setup({ bodyLimitBytes: 1024 });
      const big = signedStructured(f.secret, structuredEvent('big-event', { blob: 'x'.repeat(4000) }));
      const res = await request(f.url, { headers: { ...big.headers, 'transfer-encoding': 'chunked' }, body: big.body });
      expect(res.status).toBe(413);
      expect(f.calls).toHaveLength(0);
    });

    it('answers 5xx when a handler throws, so that the sender retries; the error is logged, not echoed', async () => {
      const f = await setup();
      const res = await send(f.url, signedStructured(f.secret, structuredEvent('fails', { n: 1 })));
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(res.status).toBeLessThan(600);
      expect(res.text).not.toContain('database is down');
      expect(f.log.withMessage('handler failed')).toEqual([expect.objectContaining({ level: 'error', error: 'database is down', type: 'fails' })]);
    });

    it('runs every handler of a type; a type whose handlers were all unsubscribed answers 404', async () => {
      const f = await setup();
      let second = 0;
      const unsubscribe = f.bus.subscribeTo('user-created', () => void (second += 1));
      expect((await send(f.url, signedStructured(f.secret, validEvent()))).status).toBe(200);
      expect([f.calls.length, second]).toEqual([1, 1]);
      unsubscribe();
      expect((await send(f.url, signedStructured(f.secret, validEvent()))).status).toBe(200);
      expect([f.calls.length, second]).toEqual([2, 1]);

      const off = f.bus.subscribeTo('order-placed', () => void (second += 1));
      off();
      expect((await send(f.url, signedStructured(f.secret, structuredEvent('order-placed', { id: 1 })))).status).toBe(404);
      expect(second).toBe(1);
    });

    it('answers a batch with one result per event, in order: delivered, duplicate, schema-invalid', async () => {
      const f = await setup();
      const first = validEvent();
      expect((await send(f.url, signedStructured(f.secret, first))).status).toBe(200);
      const fresh = validEvent();
      const invalid = structuredEvent('user-created', { user_id: 'u_1', email: 'not an email' });
      const res = await send(f.url, signedBatch(f.secret, [fresh, first, invalid]));
      expect(res.status).toBe(400);
      expect(resultsOf(res.json)).toEqual([
        { id: fresh.id, status: 200, receipt: 'delivered' },
        { id: first.id, status: 200, receipt: 'duplicate' },
        expect.objectContaining({ id: invalid.id, status: 400, error: expect.any(String) }),
      ]);
      expect(f.calls.map((call) => call.event.id)).toEqual([first.id, fresh.id]);
    });

    it('answers GET <path>/health: {"healthy": true}, the details only with the operator token', async () => {
      const f = await setup({ console: { token: 'operator-token-0123456789abcdef' } });
      const health = await request(`${f.url}/health`, { method: 'GET' });
      expect([health.status, health.json]).toEqual([200, { healthy: true }]);
      const details = await request(`${f.url}/health`, { method: 'GET', headers: { authorization: 'Bearer operator-token-0123456789abcdef' } });
      expect(details.status).toBe(200);
      expect(details.json).toMatchObject({ healthy: true, service: 'payments' });
    });

    it('answers 408 when the body does not arrive within bodyTimeoutMs, and closes the connection', async () => {
      const f = await setup({ bodyTimeoutMs: 300 });
      const req = signedStructured(f.secret, validEvent());
      const connection = await openRawRequest(f.server.port, new URL(f.url).pathname, { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) });
      connection.write(req.body.slice(0, 20)); // … and nothing more
      try {
        const answer = await connection.answer;
        expect(answer.status).toBe(408);
        expect(JSON.parse(answer.body)).toMatchObject({ error: 'body_timeout' });
      } finally {
        connection.destroy();
      }
      expect(f.calls).toHaveLength(0);
    });

    it('passes GET /events and POST /other on to the app', async () => {
      const f = await setup();
      const get = await request(f.url, { method: 'GET' });
      expect([get.status, get.text]).toEqual([299, 'app: GET /events']);
      const other = signedStructured(f.secret, validEvent());
      const post = await request(`${f.server.origin}/other`, { ...other, headers: { ...other.headers, 'content-type': 'application/json' } });
      expect([post.status, post.text]).toEqual([299, 'app: POST /other']);
      expect(f.calls).toHaveLength(0);
    });

    // A mount whose path comes only from the bus option (NestJS: the module takes none of its own) skips this row, saying so.
    const onConfiguredPath = 'answers on a configured path, and passes POST /events on to the app there';
    (mount.middlewareOptions === false
      ? (title: string, fn: () => Promise<void>) => it.skip(`${title} [skipped: ${mount.name} takes its path from the bus option only]`, fn)
      : it)(onConfiguredPath, async () => {
      const f = await setup({}, { path: '/hooks/events-in' });
      const ok = await send(f.url, signedStructured(f.secret, validEvent()));
      expect(ok.status).toBe(200);
      const elsewhere = await request(`${f.server.origin}/events`, signedStructured(f.secret, validEvent()));
      expect(elsewhere.status).toBe(404); // nothing in the app answers it
      expect(f.calls).toHaveLength(1);
    });

    it('takes its path from the bus option `path`', async () => {
      const f = await setup({ path: '/in' });
      const res = await send(`${f.server.origin}/in`, signedStructured(f.secret, validEvent()));
      expect(res.status).toBe(200);
      expect(f.calls).toHaveLength(1);
    });
  });
}

/** Neither the `whsec_` secret nor its key (base64 or hex) appears in `text`. */
export function expectNoSecret(text: string, secret: string): void {
  const base64 = secret.slice('whsec_'.length);
  expect(text).not.toContain(secret);
  expect(text).not.toContain(base64);
  expect(text).not.toContain(Buffer.from(base64, 'base64').toString('hex'));
}
