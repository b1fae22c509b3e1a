import express from 'express';
import Koa from 'koa';
import { createEventBus, type EventBus, type EventBusOptions, type HealthStatus } from '../../src/index.js';
import { closeAfterEach } from '../helpers/cleanups.js';
import { request } from '../helpers/http-client.js';
import { quietLogger } from '../helpers/logger.js';
import { type Reply, startRecordingServer } from '../helpers/recording-server.js';
import { startServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

const open = closeAfterEach();
const TOKEN = 'ops-token-for-tests';

function bus(services: Record<string, string>, options: EventBusOptions = {}): EventBus {
  const b = createEventBus({
    service: 'users',
    secret: newSecret(),
    services,
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

/** GET <path>/health as an operator (the details), or with `authorization` as given. */
async function health(url: string, authorization: string | undefined = `Bearer ${TOKEN}`): Promise<{ status: number; body: HealthStatus }> {
  const answer = await request(url, { method: 'GET', headers: authorization === undefined ? {} : { authorization } });
  return { status: answer.status, body: answer.json as HealthStatus };
}

describe('health', () => {
  it('GET /events/health answers 503 while a target is down past the threshold, and 200 once it is back', async () => {
    let reply: Reply = { status: 503 };
    const payments = await startRecordingServer({ then: () => reply });
    open.push(payments);
    const users = bus({ payments: payments.url }, { health: { targetDownMs: 150 } });
    users.declareEvent('user-created', ['payments']);
    const app = express();
    app.use(users.expressMiddleware());
    const server = await startServer(app);
    open.push(server);
    const url = `${server.url}/health`;

    const before = await health(url);
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ healthy: true, service: 'users', shuttingDown: false, outbox: { reachable: true, durable: false }, targetsDown: [] });

    await users.emit('user-created', { id: 1 });
    // Down (a 503 counts the whole target down), but not yet for longer than the threshold: still 200.
    await waitFor(async () => (await users.health()).targetsDown.length === 1, { what: 'target down' });
    const early = await users.health();
    if (early.targets.payments!.downForMs! < 150) expect(early.healthy).toBe(true);

    const down = await waitFor(async () => {
      const h = await health(url);
      return h.status === 503 && h.body.targets.payments?.backlog === 1 && h;
    }, { what: '503 from the health endpoint', timeoutMs: 8_000 });
    expect(down.body.healthy).toBe(false);
    expect(down.body.targetsDown).toEqual(['payments']);
    expect(down.body.targets.payments).toMatchObject({ backlog: 1, down: true, deadLetters: 0 });
    expect(down.body.targets.payments!.downForMs).toBeGreaterThan(150);
    expect(down.body.targets.payments!.oldestPendingAgeMs).toBeGreaterThan(0);
    expect(down.body.problems).toEqual([expect.stringMatching(/^target payments has been down for \d+ s$/)]);

    reply = { status: 200 };
    const back = await waitFor(async () => {
      const h = await health(url);
      return h.status === 200 && h.body.targets.payments?.backlog === 0 && h;
    }, { what: '200 after the target is back', timeoutMs: 8_000 });
    expect(back.body).toMatchObject({ healthy: true, targetsDown: [], problems: [] });
    expect(back.body.targets.payments).toMatchObject({ backlog: 0, down: false });
  });

  it('answers 503 while shutting down and when a delivery waits past maxPendingAgeMs; Koa serves it too', async () => {
    const payments = await startRecordingServer({ then: 'hang' });
    open.push(payments);
    const users = bus({ payments: payments.url }, { health: { maxPendingAgeMs: 100, targetDownMs: 0 }, timeoutMs: 60_000 });
    users.declareEvent('user-created', ['payments']);
    const app = new Koa();
    app.use(users.koaMiddleware());
    const server = await startServer(app.callback());
    open.push(server);
    const url = `${server.url}/health`;
    expect((await health(url)).status).toBe(200);
    await users.emit('user-created', { id: 1 });
    const stale = await waitFor(async () => {
      const h = await health(url);
      return h.status === 503 && h;
    }, { what: 'a stale delivery' });
    expect(stale.body.problems).toEqual([expect.stringMatching(/^a delivery to payments has waited \d+ s$/)]);

    const closing = users.close();
    expect(await users.health()).toMatchObject({ healthy: false, shuttingDown: true });
    expect((await users.health()).problems).toContain('shutting down');
    await closing;
  });

  it('without the operator token answers only { healthy } (a wrong token too); the token, or a named one, gets the details', async () => {
    let reply: Reply = { status: 503 };
    const payments = await startRecordingServer({ then: () => reply });
    open.push(payments);
    const users = bus({ payments: payments.url }, { health: { targetDownMs: 100 }, console: { token: TOKEN, tokens: { alice: 'alice-token' } } });
    users.declareEvent('user-created', ['payments']);
    const server = await startServer(users.nodeHandler());
    open.push(server);
    const url = `${server.url}/health`;

    for (const authorization of [undefined, 'Bearer wrong-token', `Basic ${TOKEN}`, TOKEN]) {
      const anonymous = await request(url, { method: 'GET', headers: authorization === undefined ? {} : { authorization } });
      expect(anonymous.status).toBe(200);
      expect(anonymous.text).toBe('{"healthy":true}');
      expect(anonymous.headers['cache-control']).toBe('no-store');
    }
    for (const authorization of [`Bearer ${TOKEN}`, 'Bearer alice-token']) {
      const details = await health(url, authorization);
      expect(details.status).toBe(200);
      expect(details.body).toMatchObject({ healthy: true, service: 'users', targets: { payments: { backlog: 0 } }, consumers: {} });
    }

    await users.emit('user-created', { id: 1 });
    const down = await waitFor(async () => {
      const answer = await request(url, { method: 'GET' });
      return answer.status === 503 && answer;
    }, { what: '503 without the token' });
    expect(down.json).toEqual({ healthy: false });
    reply = { status: 200 };
  });

  it('is opt-out: with health.endpoint false the path falls through to the app', async () => {
    const users = bus({}, { health: { endpoint: false } });
    const app = express();
    app.use(users.expressMiddleware());
    app.get('/events/health', (_req, res) => void res.status(418).send('mine'));
    const server = await startServer(app);
    open.push(server);
    const answer = await request(`${server.url}/health`, { method: 'GET' });
    expect(answer.status).toBe(418);
    expect((await users.health()).healthy).toBe(true);
  });
});
