/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) strings, as the CloudEvents
 * distributed-tracing extension and the HTTP headers carry them. Pure: no OpenTelemetry needed.
 */

export interface TraceContext {
  /** `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>` */
  traceparent: string;
  tracestate?: string;
}

export interface ParsedTraceparent {
  traceId: string;
  spanId: string;
  traceFlags: number;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
/** The spec's limit for a `tracestate` value. */
const MAX_TRACESTATE = 512;

export function formatTraceparent(traceId: string, spanId: string, traceFlags: number): string {
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** The ids of a valid `traceparent`; undefined for anything malformed (it is then ignored, never an error). */
export function parseTraceparent(value: unknown): ParsedTraceparent | undefined {
  if (typeof value !== 'string' || value.length > 256) return undefined;
  const match = TRACEPARENT.exec(value);
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId: traceId!, spanId: spanId!, traceFlags: parseInt(flags!, 16) };
}

/** A `tracestate` worth passing on: a string within the spec's length, else undefined. */
export function cleanTracestate(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_TRACESTATE ? value : undefined;
}
