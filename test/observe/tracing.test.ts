import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import express from 'express';
import { createEventBus, type EventBus, type EventBusOptions } from '../../src/index.js';
import { runFixture, startFixture } from '../helpers/child.js';
import { request } from '../helpers/http-client.js';
import { quietLogger } from '../helpers/logger.js';
import { registerTracing, type SpanRecord, spansIn, toRecord } from '../helpers/otel.js';
import { startRecordingServer } from '../helpers/recording-server.js';
import { freePort, startServer } from '../helpers/server.js';
import { newSecret, signedStructured, structuredEvent } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const exporter = new InMemorySpanExporter();
registerTracing(exporter);
const tracer = trace.getTracer('test');

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
  exporter.reset();
});

function finished(): SpanRecord[] {
  return exporter.getFinishedSpans().map(toRecord);
}

function only(spans: SpanRecord[], name: string): SpanRecord {
  const found = spans.filter((s) => s.name === name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0]!;
}

function bus(options: EventBusOptions): EventBus {
  const b = createEventBus({ logger: quietLogger(), env: {}, retry: { retries: 0 }, shutdownTimeoutMs: 200, ...options });
  open.unshift(b);
  return b;
}

describe('trace context end to end', () => {
  it('one trace from an Express request that emits, through an outbox redelivery after a sender restart, to a Koa handler in another process', async () => {
    const dir = tempDir('tracing');
    const outboxPath = dir.file('outbox.db');
    const secret = newSecret();
    const port = await freePort();
    const ordersUrl = `http://127.0.0.1:${port}/events`;

    // The sender's first run: a traced Express request emits while orders is not listening yet.
    const users = createEventBus({
      service: 'users',
      secret,
      services: { orders: ordersUrl },
      logger: quietLogger(),
      env: {},
      outbox: { path: outboxPath },
      retry: { retries: 0 },
      shutdownTimeoutMs: 200,
    });
    users.declareEvent('user-created', ['orders']);
    const app = express();
    app.post('/signup', (_req, res, next) => {
      void tracer.startActiveSpan('POST /signup', { kind: SpanKind.SERVER }, async (span) => {
        try {
          res.json(await users.emit('user-created', { id: 7 }));
        } catch (error) {
          next(error);
        } finally {
          span.end();
        }
      });
    });
    const server = await startServer(app);
    let receiver: ReturnType<typeof startFixture> | undefined;
    try {
      const answer = await request(`${server.origin}/signup`, { method: 'POST' });
      expect(answer.status).toBe(200);
      const eventId = (answer.json as { id: string }).id;
      await waitFor(() => finished().some((s) => s.name === 'send orders'), { what: 'the failed first attempt' });
      await waitFor(async () => (await users.outboxStats()).targets.orders?.pending === 1 && (await users.health()).targetsDown.length === 1, {
        what: 'the delivery back in the outbox',
      });
      await users.close();
      await server.close();

      const first = finished();
      const request_ = only(first, 'POST /signup');
      const publish = only(first, 'publish user-created');
      const failed = only(first, 'send orders');
      expect(publish).toMatchObject({ traceId: request_.traceId, parentSpanId: request_.spanId, kind: SpanKind.PRODUCER });
      expect(publish.attributes).toMatchObject({
        'messaging.operation.name': 'publish',
        'messaging.message.id': eventId,
        'cloudevents.event_id': eventId,
        'cloudevents.event_type': 'user-created',
        'cloudevents.event_source': 'users',
      });
      expect(failed).toMatchObject({ traceId: request_.traceId, parentSpanId: publish.spanId, status: SpanStatusCode.ERROR });
      expect(failed.attributes).toMatchObject({ 'events.target': 'orders', 'events.attempt': 1, 'messaging.operation.name': 'send' });

      // orders (Koa) in its own process; then the sender restarts, in its own process, on the same outbox file.
      receiver = startFixture('traced-service.ts', {
        TRACED_ROLE: 'receiver',
        TRACED_PORT: String(port),
        EVENTS_SERVICE_NAME: 'orders',
        EVENTS_SECRET: secret,
      });
      await receiver.line(/^listening/);
      const restarted = await runFixture('traced-service.ts', {
        TRACED_ROLE: 'sender',
        EVENTS_SERVICE_NAME: 'users',
        EVENTS_SECRET: secret,
        EVENTS_SERVICE_ORDERS_URL: ordersUrl,
        EVENTS_OUTBOX_PATH: outboxPath,
      });
      expect(restarted.stdout).toContain('drained\n');
      await receiver.line(/"name":"charge card"/);
      receiver.child.kill('SIGTERM');
      const orders = await receiver.result;

      const resent = only(spansIn(restarted.stdout), 'send orders');
      expect(resent).toMatchObject({ traceId: request_.traceId, parentSpanId: publish.spanId, status: SpanStatusCode.UNSET });
      expect(resent.attributes).toMatchObject({ 'events.attempt': 2, 'http.response.status_code': 200, 'cloudevents.event_id': eventId });

      const received = spansIn(orders.stdout);
      const process_ = only(received, 'process user-created');
      const charge = only(received, 'charge card');
      // The handler's spans are children of the emitting request's trace, restored from the signed event.
      expect(process_).toMatchObject({ traceId: request_.traceId, parentSpanId: publish.spanId, kind: SpanKind.CONSUMER });
      expect(process_.attributes).toMatchObject({ 'cloudevents.event_id': eventId, 'messaging.operation.name': 'process', 'events.handler': 'user-created#1' });
      expect(charge).toMatchObject({ traceId: request_.traceId, parentSpanId: process_.spanId });
      // The HTTP request carried the send attempt's context in its traceparent header.
      expect(orders.stdout).toContain(`header 00-${request_.traceId}-${resent.spanId}-01\n`);
    } finally {
      receiver?.child.kill('SIGKILL');
      await server.close();
      await users.close();
      dir.remove();
    }
  });

  it('puts traceparent in the signed event and the headers, and the receiver trusts only the signed one', async () => {
    const target = await startRecordingServer();
    open.push(target);
    const secret = newSecret();
    const users = bus({ service: 'users', secret, services: { orders: target.url } });
    users.declareEvent('user-created', ['orders']);
    const parentId = await tracer.startActiveSpan('request', async (span) => {
      await users.emit('user-created', { id: 1 });
      span.end();
      return span.spanContext();
    });
    await waitFor(() => target.requests.length === 1, { what: 'delivery' });
    const sent = JSON.parse(target.requests[0]!.body) as Record<string, string>;
    const publish = only(finished(), 'publish user-created');
    expect(sent.traceparent).toBe(`00-${parentId.traceId}-${publish.spanId}-01`);
    expect(target.requests[0]!.headers.traceparent).toMatch(new RegExp(`^00-${parentId.traceId}-[0-9a-f]{16}-01$`));

    // A receiver: the body's (signed) context is the parent; a forged header is ignored.
    const orders = bus({ service: 'orders', secret });
    let inside: string | undefined;
    orders.subscribeTo('user-created', () => void (inside = trace.getActiveSpan()?.spanContext().traceId));
    const signedTrace = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const signed = signedStructured(secret, structuredEvent('user-created', { id: 2 }, { traceparent: signedTrace, tracestate: 'vendor=1' }));
    const answer = await orders.handle({
      headers: { ...signed.headers, traceparent: '00-11111111111111111111111111111111-2222222222222222-01' },
      body: Buffer.from(signed.body),
    });
    expect(answer.status).toBe(200);
    const process_ = only(finished(), 'process user-created');
    expect(process_).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', parentSpanId: 'b7ad6b7169203331' });
    expect(inside).toBe('0af7651916cd43dd8448eb211c80319c');
  });

  it('with openTelemetry: false, emits no span and no trace context', async () => {
    const target = await startRecordingServer();
    open.push(target);
    const users = bus({ service: 'users', secret: newSecret(), services: { orders: target.url }, openTelemetry: false });
    users.declareEvent('user-created', ['orders']);
    await tracer.startActiveSpan('request', async (span) => {
      await users.emit('user-created', { id: 1 });
      span.end();
    });
    await waitFor(() => target.requests.length === 1, { what: 'delivery' });
    expect(JSON.parse(target.requests[0]!.body)).not.toHaveProperty('traceparent');
    expect(target.requests[0]!.headers.traceparent).toBeUndefined();
    expect(finished().map((s) => s.name)).toEqual(['request']);
  });
});

describe('without @opentelemetry/api', () => {
  it('delivers as before: no trace context in the event or the headers, and nothing of OpenTelemetry loaded', async () => {
    const result = await runFixture('without-otel.ts', { FIXTURE_SECRET: newSecret() });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('received ["data","datacontenttype","id","recipient","source","specversion","time","type"]\n');
    expect(result.stdout).toContain('header none\n');
    expect(result.stdout).toContain('otel loaded: false\n');
  });
});
