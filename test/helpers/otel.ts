import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, type ReadableSpan, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';

/** A finished span as the tests compare them, in this process or printed by a child process. */
export interface SpanRecord {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  attributes: Record<string, unknown>;
  status: number;
}

export function toRecord(span: ReadableSpan): SpanRecord {
  return {
    name: span.name,
    kind: span.kind,
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    attributes: { ...span.attributes },
    status: span.status.code,
  };
}

/** Registers a global tracer provider exporting every span to `exporter` as it ends, and the async context manager. */
export function registerTracing(exporter: SpanExporter): BasicTracerProvider {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  return provider;
}

/** A span exporter for child processes: one `span {json}` line on stdout per finished span. */
export const stdoutExporter: SpanExporter = {
  export(spans, done) {
    for (const span of spans) process.stdout.write(`span ${JSON.stringify(toRecord(span))}\n`);
    done({ code: 0 });
  },
  shutdown: () => Promise.resolve(),
};

/** The spans a child printed. */
export function spansIn(stdout: string): SpanRecord[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('span '))
    .map((line) => JSON.parse(line.slice(5)) as SpanRecord);
}
