import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { type DataPoint, type Histogram, MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import express from 'express';
import { createEventBus, type EventBus, type EventBusOptions } from '../../src/index.js';
import { request } from '../helpers/http-client.js';
import { quietLogger } from '../helpers/logger.js';
import { startRecordingServer } from '../helpers/recording-server.js';
import { startServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

/** Collects on demand: what a user's exporter would see at its next export. */
class TestReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

// The documented recipe: the Prometheus exporter as a reader, its handler mounted on the app's own server.
const reader = new TestReader();
const prometheus = new PrometheusExporter({ preventServerStart: true });
const provider = new MeterProvider({ readers: [reader, prometheus] });
metrics.setGlobalMeterProvider(provider);

const open: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  for (const o of open.splice(0)) await o.close();
  await provider.shutdown();
});

function bus(options: EventBusOptions): EventBus {
  const b = createEventBus({ logger: quietLogger(), env: {}, retry: { retries: 0 }, shutdownTimeoutMs: 200, ...options });
  open.unshift(b);
  return b;
}

async function collect(): Promise<Map<string, MetricData>> {
  const { resourceMetrics } = await reader.collect();
  const byName = new Map<string, MetricData>();
  for (const scope of resourceMetrics.scopeMetrics) for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
  return byName;
}

/** Value of the point whose attributes include `attrs` (0 when there is none). */
function valueOf(metric: MetricData | undefined, attrs: Record<string, unknown>): unknown {
  const point = (metric?.dataPoints as DataPoint<unknown>[] | undefined)?.find((p) =>
    Object.entries(attrs).every(([k, v]) => p.attributes[k] === v),
  );
  return point?.value ?? 0;
}

function countOf(metric: MetricData | undefined, attrs: Record<string, unknown>): number {
  const value = valueOf(metric, attrs);
  return value === 0 ? 0 : (value as Histogram).count;
}

describe('metrics', () => {
  it('counts emits, deliveries by outcome, handler runs and failures, with latency histograms and backlog/up gauges, after a known sequence', async () => {
    const secret = newSecret();
    const accepting = await startRecordingServer({ then: { status: 200 } });
    const refusing = await startRecordingServer({ then: { status: 400 } });
    const unavailable = await startRecordingServer({ then: { status: 503, headers: { 'retry-after': '3600' } } });
    open.push(accepting, refusing, unavailable);
    // orders: a real receiving service whose handler fails on its first run.
    const orders = bus({ service: 'orders', secret });
    let runs = 0;
    orders.subscribeTo('order-placed', () => {
      runs += 1;
      if (runs === 1) throw new Error('first run fails');
    }, { name: 'reserve-stock' });
    const app = express();
    app.use(orders.expressMiddleware());
    app.get('/metrics', (req, res) => prometheus.getMetricsRequestHandler(req, res));
    const server = await startServer(app);
    open.push(server);

    const shop = bus({
      service: 'shop',
      secret,
      services: { audit: accepting.url, legacy: refusing.url, orders: server.url, billing: unavailable.url },
      redelivery: { baseDelayMs: 50 },
    });
    shop.declareEvent('order-placed', ['audit', 'legacy', 'orders', 'billing']);
    // Both emits before the dispatcher's next turn: each target gets both at once.
    await Promise.all([shop.emit('order-placed', { n: 1 }), shop.emit('order-placed', { n: 2 })]);
    const pending = async (target: string) => (await shop.outboxStats()).targets[target]?.pending ?? 0;
    await waitFor(async () => (await pending('orders')) === 0 && (await pending('audit')) === 0 && (await shop.deadLetters()).length === 2 && runs === 3, {
      what: 'the sequence to settle',
    });

    const m = await collect();
    const shopAttrs = { 'events.service': 'shop' };
    expect(valueOf(m.get('events.emitted'), { ...shopAttrs, 'cloudevents.event_type': 'order-placed' })).toBe(2);
    const deliveries = m.get('events.deliveries');
    const outcome = (target: string, o: string) => valueOf(deliveries, { ...shopAttrs, 'events.target': target, 'events.outcome': o });
    expect(outcome('audit', 'delivered')).toBe(2);
    expect(outcome('legacy', 'dead_lettered')).toBe(2);
    expect(outcome('orders', 'retried')).toBe(1);
    expect(outcome('orders', 'delivered')).toBe(2);
    expect(outcome('billing', 'retried')).toBe(2);
    expect(outcome('billing', 'delivered')).toBe(0);
    expect(countOf(m.get('events.delivery.latency'), { 'events.target': 'audit' })).toBe(2);
    expect(countOf(m.get('events.delivery.latency'), { 'events.target': 'orders' })).toBe(2);
    expect(countOf(m.get('events.delivery.latency'), { 'events.target': 'billing' })).toBe(0);
    expect(m.get('events.delivery.latency')!.descriptor.unit).toBe('s');

    const handler = { 'events.service': 'orders', 'events.handler': 'reserve-stock' };
    expect(countOf(m.get('events.handler.duration'), handler)).toBe(3);
    expect(countOf(m.get('events.handler.latency'), handler)).toBe(3);
    expect(valueOf(m.get('events.handler.failures'), handler)).toBe(1);

    expect(valueOf(m.get('events.outbox.backlog'), { ...shopAttrs, 'events.target': 'billing' })).toBe(2);
    expect(valueOf(m.get('events.outbox.backlog'), { ...shopAttrs, 'events.target': 'audit' })).toBe(0);
    expect(valueOf(m.get('events.target.up'), { ...shopAttrs, 'events.target': 'billing' })).toBe(0);
    expect(valueOf(m.get('events.target.up'), { ...shopAttrs, 'events.target': 'audit' })).toBe(1);

    // The Prometheus recipe, scraped once over HTTP.
    const scrape = await request(`${server.origin}/metrics`, { method: 'GET' });
    expect(scrape.status).toBe(200);
    expect(scrape.text).toMatch(/^events_emitted_total\{[^}]*events_service="shop"[^}]*\} 2$/m);
    expect(scrape.text).toMatch(/^events_deliveries_total\{[^}]*events_target="orders"[^}]*events_outcome="delivered"[^}]*\} 2$/m);
    expect(scrape.text).toMatch(/^events_delivery_latency_count\{[^}]*events_target="audit"[^}]*\} 2$/m);
    expect(scrape.text).toMatch(/^events_handler_duration_bucket\{[^}]*events_handler="reserve-stock"[^}]*le="60"[^}]*\} 3$/m);
    expect(scrape.text).toMatch(/^events_outbox_backlog\{[^}]*events_target="billing"[^}]*\} 2$/m);
    expect(scrape.text).toMatch(/^events_target_up\{[^}]*events_target="billing"[^}]*\} 0$/m);
  });
});
