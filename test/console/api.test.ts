/**
 * The console's server side (issue 17), over real servers: served only with an operator token,
 * sign-in and the session cookie, CSRF, slow-down, Bearer tokens, the overview, dead letters paged
 * server-side, the payload with `console.redact`, replay and discard. The page itself is tested in
 * a real browser by the UI's tests.
 */
import express from 'express';
import Koa from 'koa';
import { createEventBus, type EventBus, type EventBusOptions } from '../../src/index.js';
import { SqliteOutbox } from '../../src/backends/sqlite/outbox.js';
import { closeAfterEach } from '../helpers/cleanups.js';
import { type ClientResponse, request } from '../helpers/http-client.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { type Reply, startRecordingServer } from '../helpers/recording-server.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const open = closeAfterEach();
const TOKEN = 'ops-token-for-tests';

function bus(options: EventBusOptions = {}): EventBus {
  const b = createEventBus({
    service: 'users',
    secret: newSecret(),
    logger: quietLogger(),
    env: {},
    retry: { retries: 0 },
    shutdownTimeoutMs: 200,
    console: { token: TOKEN },
    ...options,
  });
  open.unshift(b);
  return b;
}

async function serve(b: EventBus, mount: 'express' | 'koa' | 'node:http' = 'express'): Promise<TestServer> {
  let server: TestServer;
  if (mount === 'koa') {
    const app = new Koa();
    app.use(b.koaMiddleware());
    server = await startServer(app.callback());
  } else if (mount === 'node:http') {
    server = await startServer(b.nodeHandler());
  } else {
    const app = express();
    app.use(b.expressMiddleware());
    server = await startServer(app);
  }
  open.push(server);
  return server;
}

/** A signed-in client of one server: its cookie and CSRF token, sending a same-origin Origin. */
async function signIn(server: TestServer, token = TOKEN) {
  const res = await request(`${server.url}/console/api/session`, { headers: { 'content-type': 'application/json', origin: server.origin }, body: JSON.stringify({ token }) });
  expect(res.status).toBe(200);
  const cookie = String(res.headers['set-cookie']).split(';')[0]!;
  const { csrf, operator } = res.json as { csrf: string; operator: string };
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    request(`${server.url}/console/api${path}`, {
      method,
      headers: { cookie, 'x-csrf-token': csrf, origin: server.origin, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  return { cookie, csrf, operator, res, call };
}

const bearer = (server: TestServer, method: string, path: string, body?: unknown, token = TOKEN): Promise<ClientResponse> =>
  request(`${server.url}/console/api${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

describe('the console is served only with an operator token', () => {
  it.each(['express', 'koa', 'node:http'] as const)('without a token every console path is 404 (%s)', async (mount) => {
    const server = await serve(bus({ console: undefined }), mount);
    for (const path of ['/console', '/console/app.js', '/console/api/overview', '/console/api/session']) {
      expect((await request(`${server.url}${path}`, { method: 'GET' })).status).toBe(404);
    }
    expect((await request(`${server.url}/console/api/session`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'x' }) })).status).toBe(404);
  });

  it.each(['express', 'koa', 'node:http'] as const)('with one, the page, script and style carry the security headers, and the page no data (%s)', async (mount) => {
    const b = bus({ services: { payments: 'http://127.0.0.1:9/events' } });
    b.declareEvent('user-created', ['payments'], {});
    const server = await serve(b, mount);
    for (const [path, type] of [['/console', 'text/html'], ['/console/app.js', 'text/javascript'], ['/console/app.css', 'text/css']] as const) {
      const res = await request(`${server.url}${path}`, { method: 'GET' });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toContain(type);
      expect(res.headers['content-security-policy']).toBe("default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.text).not.toMatch(/users|payments|user-created/);
    }
    const api = await request(`${server.url}/console/api/overview`, { method: 'GET' });
    expect(api.status).toBe(401);
    expect(api.json).toEqual({ error: 'unauthorized', message: expect.any(String) });
    expect(api.headers['content-security-policy']).toBeDefined();
  }, 15_000);
});

describe('sign-in and the session', () => {
  it('a right token opens a session: an HttpOnly, SameSite=Strict cookie scoped to the console, and a CSRF token', async () => {
    const server = await serve(bus());
    const { res, operator, csrf, call } = await signIn(server);
    expect(operator).toBe('operator');
    expect(csrf).toMatch(/^[\w-]{43}$/);
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/^events_console=operator\.\d+\.[\w-]{43}; /);
    expect(cookie).toContain('; HttpOnly');
    expect(cookie).toContain('; SameSite=Strict');
    expect(cookie).toContain('; Path=/events/console');
    expect(cookie).not.toContain('Secure');
    expect((await call('GET', '/session')).json).toEqual({ operator: 'operator', csrf });
    expect((await call('GET', '/overview')).status).toBe(200);

    const out = await call('DELETE', '/session');
    expect(out.status).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/^events_console=; .*Max-Age=0/);
  });

  it('behind https (x-forwarded-proto) the cookie is Secure; mounted under a prefix, its Path is the prefixed console', async () => {
    const b = bus();
    const app = express();
    app.use('/api', b.expressMiddleware());
    const server = await startServer(app);
    open.push(server);
    const res = await request(`${server.origin}/api/events/console/api/session`, {
      headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' },
      body: JSON.stringify({ token: TOKEN }),
    });
    expect(res.status).toBe(200);
    expect(String(res.headers['set-cookie'])).toContain('; Path=/api/events/console');
    expect(String(res.headers['set-cookie'])).toMatch(/; Secure$/);
  });

  it('a wrong token, a forged or foreign cookie, no credentials: 401', async () => {
    const server = await serve(bus());
    const wrong = await request(`${server.url}/console/api/session`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'nope' }) });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expect(wrong.json).toMatchObject({ error: 'unauthorized' });
    const { cookie } = await signIn(server);
    const forged = cookie.replace(/\.(\d+)\./, (_m, t: string) => `.${Number(t) + 1}.`);
    for (const c of [forged, 'events_console=operator.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '']) {
      const res = await request(`${server.url}/console/api/overview`, { method: 'GET', headers: { cookie: c } });
      expect(res.status).toBe(401);
    }
    expect((await bearer(server, 'GET', '/overview', undefined, 'nope')).status).toBe(401);
  });

  it('the cookie holds on another instance with the same token, and dies when the token changes', async () => {
    const first = await serve(bus());
    const { cookie } = await signIn(first);
    const sameToken = await serve(bus());
    const newToken = await serve(bus({ console: { token: 'a-new-token' } }));
    expect((await request(`${sameToken.url}/console/api/session`, { method: 'GET', headers: { cookie } })).status).toBe(200);
    expect((await request(`${newToken.url}/console/api/session`, { method: 'GET', headers: { cookie } })).status).toBe(401);
  });

  it('named operators sign in as themselves', async () => {
    const server = await serve(bus({ console: { tokens: { alice: 'alice-token', 'bob.ops': 'bob-token' } } }));
    expect((await signIn(server, 'alice-token')).operator).toBe('alice');
    const bob = await signIn(server, 'bob-token');
    expect(bob.operator).toBe('bob.ops');
    expect((await bob.call('GET', '/session')).json).toMatchObject({ operator: 'bob.ops' });
  });

  it('failed sign-ins from one address are slowed down: 429 with Retry-After, even for the right token, until it passes', async () => {
    const server = await serve(bus());
    const attempt = (token: string) => request(`${server.url}/console/api/session`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    for (let i = 0; i < 5; i++) expect((await attempt(`wrong-${i}`)).status).toBe(401);
    const slowed = await attempt(TOKEN);
    expect(slowed.status).toBe(429);
    expect(Number(slowed.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(slowed.json).toMatchObject({ error: 'too_many_attempts' });
    expect((await bearer(server, 'GET', '/overview')).status).toBe(429);
    await waitFor(async () => (await attempt(TOKEN)).status === 200, { what: 'the slow-down to pass', timeoutMs: 5_000 });
  });
});

describe('CSRF', () => {
  it('a state change with the cookie needs the CSRF token and an Origin of this host; a Bearer request needs neither', async () => {
    const server = await serve(bus());
    const { call } = await signIn(server);
    const replay = { all: true };
    const noToken = await call('POST', '/replay', replay, { 'x-csrf-token': '' });
    expect(noToken.status).toBe(403);
    expect(noToken.json).toMatchObject({ error: 'csrf_failed' });
    expect((await call('POST', '/replay', replay, { 'x-csrf-token': 'A'.repeat(43) })).status).toBe(403);
    const crossOrigin = await call('POST', '/replay', replay, { origin: 'https://evil.example' });
    expect(crossOrigin.status).toBe(403);
    expect(crossOrigin.json).toMatchObject({ error: 'csrf_failed' });
    expect((await call('POST', '/discard', replay, { origin: 'null' })).status).toBe(403);
    expect((await call('DELETE', '/session', undefined, { origin: 'https://evil.example' })).status).toBe(403);
    const viaReferer = await call('POST', '/replay', replay, { origin: '', referer: `${server.origin}/events/console` });
    expect(viaReferer.json).toEqual({ replayed: 0 });
    expect((await call('POST', '/replay', replay)).json).toEqual({ replayed: 0 });
    expect((await bearer(server, 'POST', '/replay', replay)).json).toEqual({ replayed: 0 });
    // Sign-in from another site's page is refused too.
    const foreign = await request(`${server.url}/console/api/session`, {
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: JSON.stringify({ token: TOKEN }),
    });
    expect(foreign.status).toBe(403);
  });
});

describe('what the console shows, and its actions', () => {
  it('a target that is down: its backlog, since when, the last error with the variable to check; delivered per minute', async () => {
    let reply: Reply = { status: 200 };
    const payments = await startRecordingServer({ then: () => reply });
    open.push(payments);
    const b = bus({ services: { payments: payments.url } });
    b.declareEvent('user-created', ['payments']);
    const server = await serve(b);
    await b.emit('user-created', { id: 0 });
    await waitFor(async () => payments.requests.length === 1, { what: 'a delivery' });
    reply = { status: 401 };
    for (let i = 1; i <= 4; i++) await b.emit('user-created', { id: i });
    const overview = await waitFor(async () => {
      const res = await bearer(server, 'GET', '/overview');
      const target = (res.json as { targets: Array<Record<string, unknown>> }).targets[0]!;
      return target.state === 'down' && (target.backlog as number) >= 1 ? res.json : undefined;
    }, { what: 'payments down with a backlog', timeoutMs: 10_000 });
    expect(overview).toMatchObject({
      service: 'users',
      standalone: false,
      consumers: {},
      targets: [
        {
          name: 'payments',
          state: 'down',
          downSince: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
          oldestPendingAgeMs: expect.any(Number),
          deadLetters: 0,
          lastError: { status: 401, message: expect.any(String), variable: 'EVENTS_SERVICE_PAYMENTS_SECRET' },
        },
      ],
    });
    const perMinute = (overview as { targets: Array<{ deliveredPerMinute: number[] }> }).targets[0]!.deliveredPerMinute;
    expect(perMinute).toHaveLength(15);
    expect(perMinute.reduce((a, b) => a + b, 0)).toBe(1);
  }, 20_000);

  it('a refused event is a dead letter: listed, its payload masked as console.redact says, replayed once the target accepts, discarded', async () => {
    let reply: Reply = { status: 400, body: '{"error":"invalid_data","message":"<script>alert(1)</script>"}' };
    const payments = await startRecordingServer({ then: () => reply });
    open.push(payments);
    const capture = createCapturingLogger('info');
    const b = bus({ services: { payments: payments.url }, logger: capture.logger, console: { tokens: { alice: 'alice-token' }, redact: ['email'] } });
    b.declareEvent('user-created', ['payments']);
    const server = await serve(b);
    const { call } = await signIn(server, 'alice-token');
    const receipts = [
      await b.emit('user-created', { id: 1, email: 'a@example.com', profile: { email: 'b@example.com', emails: [{ email: 'c@example.com' }] } }),
      await b.emit('user-created', { id: 2, email: 'd@example.com' }),
    ];
    const page = await waitFor(async () => {
      const res = await call('GET', '/dead-letters?target=payments');
      return (res.json as { items: unknown[] }).items.length === 2 ? (res.json as { items: Array<Record<string, unknown>>; next?: string }) : undefined;
    }, { what: 'two dead letters' });
    expect(page.next).toBeUndefined();
    expect(page.items[0]).toEqual({
      id: expect.any(String),
      eventId: receipts[0]!.id,
      type: 'user-created',
      target: 'payments',
      reason: 'refused',
      attempts: 1,
      lastStatus: 400,
      error: expect.stringContaining('<script>'),
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect((await call('GET', '/dead-letters?type=other-type')).json).toEqual({ items: [] });
    expect((await call('GET', '/dead-letters?since=2999-01-01T00:00:00Z')).json).toEqual({ items: [] });

    const [first, second] = page.items as Array<{ id: string }>;
    const detail = await call('GET', `/dead-letters/${encodeURIComponent(first!.id)}`);
    expect(detail.status).toBe(200);
    expect(detail.json).toMatchObject({ id: first!.id, payload: { id: 1, email: '•••', profile: { email: '•••', emails: [{ email: '•••' }] } } });
    expect(detail.text).not.toContain('example.com');
    expect((await call('GET', '/dead-letters/999999')).status).toBe(404);

    reply = { status: 200 };
    expect((await call('POST', '/replay', { ids: [first!.id] })).json).toEqual({ replayed: 1 });
    await waitFor(async () => payments.requests.some((r) => r.status === 200 && r.headers['webhook-id'] === receipts[0]!.id), { what: 'the replayed event delivered' });
    expect((await call('POST', '/discard', { filter: { target: 'payments' } })).json).toEqual({ discarded: 1 });
    expect((await call('GET', '/dead-letters')).json).toEqual({ items: [] });
    expect(payments.requests.filter((r) => r.headers['webhook-id'] === receipts[1]!.id && r.status === 200)).toEqual([]);
    expect(second).toBeDefined();

    expect(capture.withMessage('console: dead letters replayed')).toEqual([
      expect.objectContaining({ level: 'info', operator: 'alice', selection: [first!.id], count: 1 }),
    ]);
    expect(capture.withMessage('console: dead letters discarded')).toEqual([
      expect.objectContaining({ operator: 'alice', selection: { target: 'payments' }, count: 1 }),
    ]);
  }, 20_000);

  it('a selection or query that makes no sense is 400, saying what to send', async () => {
    const server = await serve(bus());
    for (const body of [{}, { ids: [] }, { filter: {} }, { filter: { reason: 'x' } }, { all: 'yes' }, { ids: ['1'], all: true }, [1]]) {
      const res = await bearer(server, 'POST', '/replay', body);
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ error: 'invalid_selection', message: expect.any(String) });
    }
    for (const query of ['limit=0', 'limit=501', 'limit=x', 'since=yesterday', 'cursor=%20']) {
      const res = await bearer(server, 'GET', `/dead-letters?${query}`);
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ error: 'invalid_query' });
    }
    const polluted = await request(`${server.url}/console/api/replay`, {
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' },
      body: '{"__proto__":{"all":true}}',
    });
    expect(polluted.status).toBe(400);
  });

  it('with 10,000 dead letters, a request returns one page, and the cursor the next', async () => {
    const dir = tempDir('console-paging');
    open.push({ close: async () => dir.remove() });
    const path = dir.file('outbox.db');
    const store = new SqliteOutbox(path);
    const deliveries = Array.from({ length: 10_000 }, (_, n) => ({
      eventId: `evt-${n}`,
      type: 'user-created',
      source: 'users',
      target: 'payments',
      body: JSON.stringify({ specversion: '1.0', id: `evt-${n}`, data: { n } }),
      createdAt: Date.now(),
    }));
    await store.add(deliveries);
    const claimed = await store.claim('payments', Date.now() + 1, 10_000);
    await store.settleMany!(claimed.map((record) => ({ kind: 'kill' as const, record, reason: 'refused' as const })));
    await store.close();

    const server = await serve(bus({ outbox: { path } }));
    const overview = await bearer(server, 'GET', '/overview');
    expect(overview.json).toMatchObject({ targets: [{ name: 'payments', backlog: 0, deadLetters: 10_000 }] });
    const first = await bearer(server, 'GET', '/dead-letters');
    const body = first.json as { items: Array<{ eventId: string }>; next: string };
    expect(body.items).toHaveLength(50);
    expect(body.next).toEqual(expect.any(String));
    const second = (await bearer(server, 'GET', `/dead-letters?limit=100&cursor=${encodeURIComponent(body.next)}`)).json as { items: Array<{ eventId: string }> };
    expect(second.items).toHaveLength(100);
    expect(new Set([...body.items, ...second.items].map((i) => i.eventId)).size).toBe(150);
  }, 30_000);
});
