/**
 * The web-standard fetch handler with no server at all (a test builds a `Request` and reads the
 * `Response`) and under Hono as the README mounts it; `bus.flush()` for runtimes that freeze after
 * the response. The receiver contract runs through it over HTTP in receiver-contract-all.test.ts.
 */
import { Hono } from 'hono';
import { createEventBus, type EventBus, type EventBusOptions } from '../../src/index.js';
import { closeAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { startRecordingServer } from '../helpers/recording-server.js';
import { newSecret, signedStructured, structuredEvent, type SignedRequest } from '../helpers/signing.js';

const open = closeAfterEach();
const data = { user_id: 'u_1', email: 'ada@example.com' };

function receiving(options: EventBusOptions = {}): { bus: EventBus; secret: string; calls: unknown[] } {
  const secret = newSecret();
  const calls: unknown[] = [];
  const bus = createEventBus({ service: 'payments', secret, logger: createCapturingLogger('warn').logger, env: {}, ...options });
  open.push(bus);
  bus.subscribeTo('user-created', (received) => void calls.push(received));
  return { bus, secret, calls };
}

const requestOf = ({ headers, body }: SignedRequest, url = 'http://payments.internal/events'): Request =>
  new Request(url, { method: 'POST', headers, body });

/** A body stream that sends `first` and then nothing, counting how often it was asked for more. */
function stalledBody(first: string): { stream: ReadableStream<Uint8Array>; pulls: () => number } {
  let pulls = 0;
  let sent = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls += 1;
      if (!sent) controller.enqueue(new TextEncoder().encode(first));
      sent = true;
      return new Promise(() => undefined); // … and nothing more
    },
  });
  return { stream, pulls: () => pulls };
}

describe('fetchHandler with no server: a Request in, a Response out', () => {
  test('a signed event: 200 and the receipt; the handler runs once, and a second delivery is absorbed', async () => {
    const { bus, secret, calls } = receiving();
    const handle = bus.fetchHandler();
    const signed = signedStructured(secret, structuredEvent('user-created', data));
    const res = await handle(requestOf(signed));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual({ status: 'delivered', id: JSON.parse(signed.body).id });
    const again = await handle(requestOf(signed));
    expect([again.status, await again.json()]).toEqual([200, { status: 'duplicate', id: JSON.parse(signed.body).id }]);
    expect(calls).toEqual([data]);
  });

  test('an unsigned request is refused (401) from its headers, without reading its body', async () => {
    const { bus, calls } = receiving();
    const { stream, pulls } = stalledBody('{"specversion":"1.0"');
    const res = await bus.fetchHandler()(
      new Request('http://payments.internal/events', { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: stream, duplex: 'half' } as RequestInit),
    );
    expect(res.status).toBe(401);
    expect(res.headers.get('connection')).toBe('close');
    expect(pulls()).toBeLessThanOrEqual(1); // the runtime may prime the stream once; we never read it
    expect(calls).toEqual([]);
  });

  test('a body that stops arriving: 408 after bodyTimeoutMs; one over the limit without a declared length: 413', async () => {
    const { bus, secret, calls } = receiving({ bodyTimeoutMs: 200, bodyLimitBytes: 1024 });
    const handle = bus.fetchHandler();
    const signed = signedStructured(secret, structuredEvent('user-created', data));
    const { stream } = stalledBody(signed.body.slice(0, 20));
    const slow = await handle(new Request('http://payments.internal/events', { method: 'POST', headers: signed.headers, body: stream, duplex: 'half' } as RequestInit));
    expect([slow.status, await slow.json()]).toMatchObject([408, { error: 'body_timeout' }]);

    const big = signedStructured(secret, structuredEvent('user-created', { ...data, pad: 'x'.repeat(4000) }));
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < big.body.length; i += 500) controller.enqueue(new TextEncoder().encode(big.body.slice(i, i + 500)));
        controller.close();
      },
    });
    const tooLarge = await handle(new Request('http://payments.internal/events', { method: 'POST', headers: big.headers, body: chunks, duplex: 'half' } as RequestInit));
    expect(tooLarge.status).toBe(413);
    expect(calls).toEqual([]);
  });

  test('the route table below the path (GET and HEAD health), 405 on the events path, 404 elsewhere', async () => {
    const { bus } = receiving();
    const handle = bus.fetchHandler();
    const health = await handle(new Request('http://payments.internal/events/health'));
    expect([health.status, await health.json()]).toEqual([200, { healthy: true }]);
    const head = await handle(new Request('http://payments.internal/events/health', { method: 'HEAD' }));
    expect([head.status, await head.text()]).toEqual([200, '']);
    const get = await handle(new Request('http://payments.internal/events'));
    expect([get.status, get.headers.get('allow')]).toEqual([405, 'POST']);
    const elsewhere = await handle(new Request('http://payments.internal/users', { method: 'POST' }));
    expect(elsewhere.status).toBe(404);
  });

  test('a body already read by the app: 500 saying how to fix it (a signed request), never a verification over nothing', async () => {
    const { bus, secret, calls } = receiving();
    const req = requestOf(signedStructured(secret, structuredEvent('user-created', data)));
    await req.text();
    const res = await bus.fetchHandler()(req);
    expect(res.status).toBe(500);
    expect(((await res.json()) as { message: string }).message).toContain('request.clone()');
    expect(calls).toEqual([]);
  });
});

test('under Hono, mounted as the README shows it (app.request: no server either)', async () => {
  const { bus, secret, calls } = receiving();
  const handle = bus.fetchHandler();
  const app = new Hono();
  app.all('/events', (c) => handle(c.req.raw));
  app.all('/events/*', (c) => handle(c.req.raw));
  const signed = signedStructured(secret, structuredEvent('user-created', data));
  const res = await app.request('/events', { method: 'POST', headers: signed.headers, body: signed.body });
  expect(res.status).toBe(200);
  expect((await app.request('/events/health')).status).toBe(200);
  expect(calls).toEqual([data]);
});

describe('bus.flush(): what is pending has been tried once when it resolves', () => {
  function sending(url: string, options: EventBusOptions = {}): EventBus {
    const bus = createEventBus({
      service: 'users',
      secret: newSecret(),
      services: { payments: url },
      logger: createCapturingLogger('warn').logger,
      env: {},
      retry: { retries: 0 },
      redelivery: { baseDelayMs: 60_000 },
      shutdownTimeoutMs: 1_000,
      ...options,
    });
    bus.declareEvent('user-created', ['payments']);
    return bus;
  }

  test('every event emitted (more than the concurrency) is delivered by the time flush resolves', async () => {
    const target = await startRecordingServer();
    const bus = sending(target.url, { concurrency: 1, batch: { enabled: false } });
    open.push(bus, target);
    for (let i = 0; i < 10; i++) await bus.emit('user-created', { ...data, n: i });
    await bus.flush();
    expect(target.requests).toHaveLength(10);
    expect(await bus.outboxStats()).toMatchObject({ pending: 0 });
  });

  test('a target that fails: flush resolves once each delivery was tried, leaving it pending for its retry', async () => {
    const target = await startRecordingServer({ then: { status: 503 } });
    const bus = sending(target.url);
    open.push(bus, target);
    await bus.emit('user-created', data);
    await bus.flush();
    expect(target.requests).toHaveLength(1);
    expect(await bus.outboxStats()).toMatchObject({ targets: { payments: { pending: 1 } } });
  });

  test('a target that never answers: flush resolves at its timeout', async () => {
    const target = await startRecordingServer({ then: 'hang' });
    const bus = sending(target.url, { timeoutMs: 60_000 });
    open.push(bus, target);
    await bus.emit('user-created', data);
    await bus.flush(200);
    expect(target.requests).toHaveLength(1);
  });
});
