import type * as OtelApi from '@opentelemetry/api';

export type Otel = typeof OtelApi;

let loaded: Otel | null | undefined;

/**
 * `@opentelemetry/api`, the optional peer, loaded on first use only; undefined when it is not
 * installed (tracing and metrics are then off, at no cost per event).
 */
export function loadOtel(): Otel | undefined {
  if (loaded === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require('@opentelemetry/api') as Otel;
    } catch {
      loaded = null;
    }
  }
  return loaded ?? undefined;
}
