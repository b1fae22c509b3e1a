import type { TraceContext } from './trace-context.js';

// The types the rest of the library shares with the OpenTelemetry adapter. They live apart from
// otel-instruments.ts so that no published declaration imports `@opentelemetry/api`, an optional peer.

/** What the gauges read at each collection. */
export interface GaugeSources {
  /** Pending deliveries per target; rejects when the outbox cannot be read (nothing is reported then). */
  backlog(): Promise<Record<string, number>>;
  /** Targets the dispatcher knows, and whether each is down. */
  targetsDown(): Record<string, boolean>;
}

/** An open span (opaque outside the adapter: its type belongs to the optional peer) and the trace context to carry onward. */
export interface OpenSpan extends Partial<TraceContext> {
  readonly span: object;
}
