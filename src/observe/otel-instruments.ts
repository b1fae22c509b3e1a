import type { Attributes, Context, Counter, Histogram, ObservableGauge, ObservableResult, Span, Tracer, TracerProvider } from '@opentelemetry/api';
import type { CloudEvent } from '../protocol/cloudevents.js';
import type { OutboxRecord } from '../send/outbox-store.js';
import type { DeliveryResult } from '../send/transport.js';
import type { Otel } from './otel-api.js';
import type { GaugeSources, OpenSpan } from './instrument-types.js';
import { cleanTracestate, formatTraceparent, parseTraceparent, type TraceContext } from './trace-context.js';

const SCOPE = 'events-library';
/** Histogram buckets in seconds: handler runs (ms to a minute) … */
const RUN_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** … and latencies from emit, which an outage stretches to hours (redelivery horizon: days). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400];
const SYSTEM = 'events-library';
const DELIVERED = { 'events.outcome': 'delivered' } as const;
const UNROUTED = { 'events.outcome': 'unrouted' } as const;

/**
 * Spans (OpenTelemetry messaging conventions: `publish` at emit, `send` per delivery attempt,
 * `process` per handler) and metrics, on `@opentelemetry/api`. Exists only when the API is
 * installed and not turned off; each method is one event's work, and nothing at all while no SDK
 * is registered: spans only while a tracer provider is (checked at each call, so an SDK started
 * after the bus is used), metrics only when a meter provider was when the bus was created (the
 * API's meters, unlike its tracers, do not follow a provider registered later).
 */
export class OtelInstruments {
  private readonly tracer: Tracer;
  private readonly emittedCount: Counter;
  private readonly deliveries: Counter;
  private readonly deliveryLatency: Histogram;
  private readonly handlerLatency: Histogram;
  private readonly handlerDuration: Histogram;
  private readonly handlerFailures: Counter;
  private readonly backlogGauge: ObservableGauge;
  private readonly upGauge: ObservableGauge;
  private readonly observeBacklog: (result: ObservableResult) => Promise<void>;
  private readonly observeUp: (result: ObservableResult) => void;
  /** A meter provider was registered: the counters and histograms record. */
  private readonly metricsOn: boolean;
  /** What the API's tracer provider delegates to while no SDK registered one. */
  private readonly noTracerProvider: TracerProvider;

  constructor(
    private readonly api: Otel,
    private readonly service: string | undefined,
    sources: GaugeSources,
  ) {
    this.tracer = api.trace.getTracer(SCOPE);
    const meter = api.metrics.getMeter(SCOPE);
    this.emittedCount = meter.createCounter('events.emitted', { description: 'Events emitted (recorded in the outbox)' });
    this.deliveries = meter.createCounter('events.deliveries', {
      description: 'Delivery outcomes per target: delivered, retried (back to the outbox), dead_lettered, unrouted (no subscriber: dropped)',
    });
    const seconds = (name: string, description: string, buckets: number[]): Histogram =>
      meter.createHistogram(name, { description, unit: 's', advice: { explicitBucketBoundaries: buckets } });
    this.deliveryLatency = seconds('events.delivery.latency', 'From emit to the target acknowledging the event', LATENCY_BUCKETS);
    this.handlerLatency = seconds('events.handler.latency', "From emit (the event's time) to a handler starting at this service", LATENCY_BUCKETS);
    this.handlerDuration = seconds('events.handler.duration', 'Handler run time', RUN_BUCKETS);
    this.handlerFailures = meter.createCounter('events.handler.failures', { description: 'Handler runs that threw' });
    this.backlogGauge = meter.createObservableGauge('events.outbox.backlog', {
      description: 'Deliveries waiting in the outbox, per target',
    });
    this.upGauge = meter.createObservableGauge('events.target.up', { description: '1 while a target answers, 0 while it is down' });
    this.observeBacklog = async (result) => {
      let backlog: Record<string, number>;
      try {
        backlog = await sources.backlog();
      } catch {
        return; // an unreadable outbox: no value rather than a wrong one (health says why)
      }
      for (const [target, pending] of Object.entries(backlog)) result.observe(pending, this.attrs({ 'events.target': target }));
    };
    this.observeUp = (result) => {
      for (const [target, down] of Object.entries(sources.targetsDown())) {
        result.observe(down ? 0 : 1, this.attrs({ 'events.target': target }));
      }
    };
    this.backlogGauge.addCallback(this.observeBacklog);
    this.upGauge.addCallback(this.observeUp);
    this.metricsOn = this.deliveries !== api.createNoopMeter().createCounter('events.deliveries');
    this.noTracerProvider = new api.ProxyTracerProvider().getDelegate();
  }

  /** A tracer provider is registered (the API's own proxy delegates to a real one). */
  private tracing(): boolean {
    const provider = this.api.trace.getTracerProvider();
    return !(provider instanceof this.api.ProxyTracerProvider) || provider.getDelegate() !== this.noTracerProvider;
  }

  /** Starts the `publish` span of an emit, a child of the active context; its context goes with the event. */
  publish(event: CloudEvent, targets: readonly string[]): OpenSpan | undefined {
    if (!this.tracing()) return undefined;
    const span = this.start('publish', event.type, this.api.context.active(), event.id, event.type, event.source);
    if (span.isRecording()) span.setAttribute('events.targets', [...targets]);
    return { span, ...this.contextOf(span) };
  }

  published(open: OpenSpan | undefined, type: string, error?: unknown): void {
    if (error === undefined && this.metricsOn) this.emittedCount.add(1, this.attrs({ 'cloudevents.event_type': type }));
    if (open) this.end(open.span as Span, error);
  }

  /** Starts the `send` span of one delivery attempt, a child of the context stored with the delivery. */
  send(record: OutboxRecord): OpenSpan | undefined {
    if (!this.tracing()) return undefined;
    const parent = this.restore(record.traceparent, record.tracestate) ?? this.api.ROOT_CONTEXT;
    const span = this.start('send', record.target, parent, record.eventId, record.type, record.source);
    if (span.isRecording()) span.setAttributes({ 'events.target': record.target, 'events.attempt': record.attempts + 1 });
    // Without a recording span, pass on what the emit stored (a receiver may still trace).
    const own = this.contextOf(span);
    return { span, ...(own.traceparent ? own : { traceparent: record.traceparent, tracestate: record.tracestate }) };
  }

  sent(open: OpenSpan, result: DeliveryResult): void {
    const span = open.span as Span;
    if (span.isRecording()) {
      if (result.status !== undefined) span.setAttribute('http.response.status_code', result.status);
      span.setAttribute('events.outcome', result.outcome);
    }
    this.end(span, result.outcome === 'delivered' ? undefined : (result.error ?? result.outcome));
  }

  /** `unrouted`: taken by the broker while no service subscribes to its type (dropped by design). */
  delivered(record: OutboxRecord, unrouted: boolean): void {
    if (!this.metricsOn) return;
    const attrs = this.attrs({ 'events.target': record.target, 'cloudevents.event_type': record.type });
    this.deliveries.add(1, Object.assign({}, attrs, unrouted ? UNROUTED : DELIVERED));
    if (!unrouted) this.deliveryLatency.record(Math.max(0, Date.now() - record.createdAt) / 1000, attrs);
  }

  outcome(record: OutboxRecord, outcome: 'retried' | 'dead_lettered'): void {
    if (!this.metricsOn) return;
    this.deliveries.add(1, this.attrs({ 'events.target': record.target, 'cloudevents.event_type': record.type, 'events.outcome': outcome }));
  }

  /** Runs one handler inside its `process` span, a child of the context the event carries (signed, in its body). */
  process<T>(event: CloudEvent, handler: string, run: () => T | Promise<T>): T | Promise<T> {
    return this.metricsOn || this.tracing() ? this.observe(event, handler, run) : run();
  }

  private async observe<T>(event: CloudEvent, handler: string, run: () => T | Promise<T>): Promise<T> {
    const parent = this.restore(event.traceparent, event.tracestate) ?? this.api.context.active();
    const attrs = this.attrs({ 'cloudevents.event_type': event.type, 'events.handler': handler });
    const sentAt = typeof event.time === 'string' ? Date.parse(event.time) : NaN;
    if (!Number.isNaN(sentAt)) this.handlerLatency.record(Math.max(0, Date.now() - sentAt) / 1000, attrs);
    const span = this.start('process', event.type, parent, event.id, event.type, event.source);
    if (span.isRecording()) span.setAttribute('events.handler', handler);
    const startedAt = performance.now();
    try {
      const value = await this.api.context.with(this.api.trace.setSpan(parent, span), run);
      this.end(span);
      return value;
    } catch (error) {
      this.handlerFailures.add(1, attrs);
      this.end(span, error);
      throw error;
    } finally {
      this.handlerDuration.record((performance.now() - startedAt) / 1000, attrs);
    }
  }

  close(): void {
    this.backlogGauge.removeCallback(this.observeBacklog);
    this.upGauge.removeCallback(this.observeUp);
  }

  private end(span: Span, error?: unknown): void {
    if (error !== undefined) {
      if (error instanceof Error) span.recordException(error);
      span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    span.end();
  }

  private contextOf(span: Span): Partial<TraceContext> {
    const context = span.spanContext();
    if (!this.api.trace.isSpanContextValid(context)) return {};
    const tracestate = context.traceState?.serialize();
    return {
      traceparent: formatTraceparent(context.traceId, context.spanId, context.traceFlags),
      ...(tracestate ? { tracestate } : {}),
    };
  }

  private restore(traceparent: unknown, tracestate: unknown): Context | undefined {
    const parsed = parseTraceparent(traceparent);
    if (!parsed) return undefined;
    const state = cleanTracestate(tracestate);
    return this.api.trace.setSpanContext(this.api.ROOT_CONTEXT, {
      ...parsed,
      isRemote: true,
      ...(state ? { traceState: this.api.createTraceState(state) } : {}),
    });
  }

  /**
   * Starts the `<operation> <destination>` span of one event, a child of `parent`. Attributes only
   * on a span that records (no SDK, or not sampled: no per-event objects); callers add their own likewise.
   */
  private start(operation: 'publish' | 'send' | 'process', destination: string, parent: Context, id: string, type: string, source: string): Span {
    const kind = operation === 'process' ? this.api.SpanKind.CONSUMER : this.api.SpanKind.PRODUCER;
    const span = this.tracer.startSpan(`${operation} ${destination}`, { kind }, parent);
    if (span.isRecording()) {
      span.setAttributes({
        'messaging.system': SYSTEM,
        'messaging.message.id': id,
        'cloudevents.event_id': id,
        'cloudevents.event_type': type,
        'cloudevents.event_source': source,
        'messaging.operation.name': operation,
        'messaging.operation.type': operation === 'publish' ? 'create' : operation,
        'messaging.destination.name': destination,
      });
    }
    return span;
  }

  private attrs(extra: Attributes): Attributes {
    return this.service === undefined ? extra : { 'events.service': this.service, ...extra };
  }
}
