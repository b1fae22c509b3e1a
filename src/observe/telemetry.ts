import type { Logger } from 'winston';
import type { ResolvedConfig } from '../config.js';
import type { CloudEvent } from '../protocol/cloudevents.js';
import { type DeathReason, type OutboxRecord, outboxDeadLetter, whatAndWhere } from '../send/outbox-store.js';
import type { DeliveryResult } from '../send/transport.js';
import { callHook, type Hooks } from './hooks.js';
import { loadOtel } from './otel-api.js';
import type { GaugeSources, OpenSpan } from './instrument-types.js';
import { OtelInstruments } from './otel-instruments.js';

export type { OpenSpan } from './instrument-types.js';

/** The configuration's logger, service and `openTelemetry`, the user's hooks, and what the gauges read. */
export interface TelemetryOptions extends Pick<ResolvedConfig, 'logger' | 'service' | 'openTelemetry'> {
  hooks: Hooks;
  sources: GaugeSources;
  /** Told of each delivery's outcome (the console's figures per target). */
  activity?: { delivered(target: string): void; failed(record: OutboxRecord): void };
}

/**
 * What the bus, the dispatcher and the receiver report, in one-line calls: spans and metrics
 * (when `@opentelemetry/api` is installed) and the user's hooks. With neither, every call is a
 * check of an undefined field.
 */
export class Telemetry {
  private readonly otel: OtelInstruments | undefined;

  constructor(private readonly o: TelemetryOptions) {
    const api = o.openTelemetry ? loadOtel() : undefined;
    this.otel = api && new OtelInstruments(api, o.service, o.sources);
  }

  /** Reports nothing but to no hook: no OpenTelemetry, no hooks (tests of the parts alone). */
  static off(logger: Logger): Telemetry {
    return new Telemetry({ logger, service: undefined, openTelemetry: false, hooks: {}, sources: { backlog: async () => ({}), targetsDown: () => ({}) } });
  }

  /** The `publish` span of an emit; its trace context goes into the event. Undefined when tracing is off. */
  publish(event: CloudEvent, targets: readonly string[]): OpenSpan | undefined {
    return this.otel?.publish(event, targets);
  }

  published(open: OpenSpan | undefined, type: string, error?: unknown): void {
    this.otel?.published(open, type, error);
  }

  /** The `send` span of one delivery attempt, and the trace context for the transport's headers. */
  send(record: OutboxRecord): OpenSpan | undefined {
    return this.otel?.send(record);
  }

  sent(open: OpenSpan | undefined, result: DeliveryResult): void {
    if (open) this.otel!.sent(open, result);
  }

  delivered(record: OutboxRecord, result: DeliveryResult): void {
    this.otel?.delivered(record, result.unrouted === true);
    this.o.activity?.delivered(record.target);
    if (this.o.hooks.onDelivered) {
      callHook(this.o.logger, 'onDelivered', this.o.hooks.onDelivered, {
        ...whatAndWhere(record),
        attempts: record.attempts,
        status: result.status,
        latencyMs: Math.max(0, Date.now() - record.createdAt),
      });
    }
  }

  retried(record: OutboxRecord): void {
    this.otel?.outcome(record, 'retried');
    this.o.activity?.failed(record);
  }

  deadLettered(record: OutboxRecord, reason: DeathReason): void {
    this.otel?.outcome(record, 'dead_lettered');
    this.o.activity?.failed(record);
    if (this.o.hooks.onDeadLetter) {
      callHook(this.o.logger, 'onDeadLetter', this.o.hooks.onDeadLetter, outboxDeadLetter(record, reason, Date.now()));
    }
  }

  /** Runs one handler: inside its `process` span, timed, when OpenTelemetry is on; as is otherwise. */
  process<T>(event: CloudEvent, handler: string, run: () => T | Promise<T>): T | Promise<T> {
    return this.otel ? this.otel.process(event, handler, run) : run();
  }

  close(): void {
    this.otel?.close();
  }
}
