import type { RequestListener } from 'node:http';
import { createEventBus, type EventBus, NonRetryableError, RetryLaterError } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { appWith } from '../helpers/receiver-contract.js';
import { startServer } from '../helpers/server.js';
import { resultsOf, signedBatch, signedBatchBody } from '../helpers/signed-batch.js';
import { newSecret, signedStructured, structuredEvent } from '../helpers/signing.js';

const UserCreated = {
  type: 'object',
  properties: { user_id: { type: 'string' } },
  required: ['user_id'],
  additionalProperties: false,
} as const;

type Kind = 'node' | 'express' | 'koa';

describe.each<Kind>(['node', 'express', 'koa'])('receiving a CloudEvents batch (%s)', (kind) => {
  const cleanups = cleanupAfterEach();

  async function setup(): Promise<{ bus: EventBus; url: string; secret: string; calls: Map<string, number> }> {
    const secret = newSecret();
    const bus = createEventBus({ service: 'payments', secret, logger: createCapturingLogger('warn').logger, env: {} });
    cleanups.push(() => bus.close());
    const calls = new Map<string, number>();
    const count = (id: string) => calls.set(id, (calls.get(id) ?? 0) + 1);
    bus.subscribeTo('user-created', (_data, event) => void count(event.id), { schema: UserCreated });
    bus.subscribeTo('refused', (_data, event) => {
      count(event.id);
      throw new NonRetryableError('this account is closed');
    });
    bus.subscribeTo('fails', (_data, event) => {
      count(event.id);
      throw new Error('database is down');
    });
    bus.subscribeTo('later', (_data, event) => {
      count(event.id);
      throw new RetryLaterError(7, 'rate limited');
    });
    const listener: RequestListener = kind === 'node' ? bus.nodeHandler() : appWith(kind, bus);
    const server = await startServer(listener);
    cleanups.push(() => server.close());
    return { bus, url: server.url, secret, calls };
  }

  const user = (overrides: Record<string, unknown> = {}) => structuredEvent('user-created', { user_id: 'u_1' }, overrides);

  test('mixed outcomes: one result per event in order, status always the number, the worst status and the longest Retry-After on the response', async () => {
    const { url, secret, calls } = await setup();
    const events = [
      user(),
      structuredEvent('user-created', { user_id: 5 }),
      structuredEvent('nobody-listens', {}),
      structuredEvent('refused', {}),
      structuredEvent('fails', {}),
      structuredEvent('later', {}),
      user(),
    ];
    const res = await request(url, signedBatch(secret, events));

    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('7');
    const results = resultsOf(res.json);
    expect(results.map((r) => r.id)).toEqual(events.map((e) => e.id));
    expect(results.map((r) => r.status)).toEqual([200, 400, 404, 422, 500, 503, 200]);
    expect(results[0]).toEqual({ id: events[0]!.id, status: 200, receipt: 'delivered' });
    expect(results[1]).toMatchObject({ status: 400, error: 'invalid_data' });
    expect(results[2]).toMatchObject({ status: 404, error: 'no_subscriber' });
    expect(results[3]).toEqual({ id: events[3]!.id, status: 422, error: 'rejected_by_handler', message: 'this account is closed' });
    expect(results[4]).toMatchObject({ status: 500, error: 'handler_failed' });
    expect(results[5]).toMatchObject({ status: 503, error: 'retry_later', retryAfter: 7 });
    expect(results[6]).toEqual({ id: events[6]!.id, status: 200, receipt: 'delivered' });
    // The handlers that were reached ran once each; the invalid and unrouted events reached none.
    expect([...calls.keys()].sort()).toEqual([events[0], events[3], events[4], events[5], events[6]].map((e) => e!.id).sort());
    expect([...calls.values()].every((n) => n === 1)).toBe(true);
  });

  test('all delivered: 200, a delivered receipt per event, no Retry-After', async () => {
    const { url, secret, calls } = await setup();
    const events = [user(), user(), user()];
    const res = await request(url, signedBatch(secret, events));
    expect(res.status).toBe(200);
    expect(res.headers['retry-after']).toBeUndefined();
    expect(resultsOf(res.json)).toEqual(events.map((e) => ({ id: e.id, status: 200, receipt: 'delivered' })));
    expect(calls.size).toBe(3);
  });

  test('the same id twice in one batch runs the handler once: the second is a duplicate', async () => {
    const { url, secret, calls } = await setup();
    const event = user();
    const res = await request(url, signedBatch(secret, [event, user(), event]));
    expect(res.status).toBe(200);
    const results = resultsOf(res.json);
    expect(results.map((r) => r.receipt)).toEqual(['delivered', 'delivered', 'duplicate']);
    expect(results[2]).toEqual({ id: event.id, status: 200, receipt: 'duplicate' });
    expect(calls.get(String(event.id))).toBe(1);
  });

  test('the same failing id twice in one batch runs the handler once, and both items carry its failure', async () => {
    const { url, secret, calls } = await setup();
    const event = structuredEvent('fails', {});
    const res = await request(url, signedBatch(secret, [event, event]));
    expect(res.status).toBe(500);
    expect(resultsOf(res.json).map((r) => [r.status, r.error])).toEqual([
      [500, 'handler_failed'],
      [500, 'handler_failed'],
    ]);
    expect(calls.get(String(event.id))).toBe(1);
  });

  test('an id already processed (by a single request) comes back in a batch as a duplicate receipt', async () => {
    const { url, secret, calls } = await setup();
    const seen = user();
    expect((await request(url, signedStructured(secret, seen))).status).toBe(200);
    const fresh = user();
    const res = await request(url, signedBatch(secret, [seen, fresh]));
    expect(res.status).toBe(200);
    expect(resultsOf(res.json)).toEqual([
      { id: seen.id, status: 200, receipt: 'duplicate' },
      { id: fresh.id, status: 200, receipt: 'delivered' },
    ]);
    expect(calls.get(String(seen.id))).toBe(1);
  });

  test('a malformed item is refused alone (400, with its id when it had one) while the others are delivered', async () => {
    const { url, secret, calls } = await setup();
    const good = user();
    const noType = { specversion: '1.0', id: 'no-type-1', source: 'users', data: {} };
    const res = await request(url, signedBatch(secret, [good, noType, 42]));
    expect(res.status).toBe(400);
    const results = resultsOf(res.json);
    expect(results[0]).toEqual({ id: good.id, status: 200, receipt: 'delivered' });
    expect(results[1]).toMatchObject({ id: 'no-type-1', status: 400, error: 'malformed_event' });
    expect(results[1]!.message).toContain('"type"');
    expect(results[2]).toMatchObject({ status: 400, error: 'malformed_event' });
    expect(results[2]!.id).toBeUndefined();
    expect(calls.size).toBe(1);
  });

  test('request-level refusals answer as for a single event, without results', async () => {
    const { url, secret, calls } = await setup();
    const forged = signedBatch(secret, [user()]);
    const [notArray, badSignature] = await Promise.all([
      request(url, signedBatchBody(secret, JSON.stringify(user()))),
      request(url, { ...forged, body: forged.body.replace('u_1', 'u_2') }),
    ]);
    expect(notArray.status).toBe(400);
    expect(notArray.json).toEqual({ error: 'malformed_event', message: 'a batch body must be a JSON array of CloudEvents' });
    expect(badSignature.status).toBe(401);
    expect((badSignature.json as Record<string, unknown>).results).toBeUndefined();
    expect(calls.size).toBe(0);
  });
});
