import type { ResolvedTarget } from '../config.js';

/** One event on its way to one target service. */
export interface Delivery {
  eventId: string;
  type: string;
  source: string;
  target: ResolvedTarget;
  /** The CloudEvent in structured mode, serialised once at emit. */
  body: string;
  /** Tries made before this one (by earlier sends of the same delivery). */
  previousAttempts: number;
  /** W3C trace context of this attempt, for the transport's own headers (HTTP: `traceparent`, `tracestate`). */
  traceparent?: string;
  tracestate?: string;
}

export interface DeliveryResult {
  /**
   * delivered: 2xx · refused: never retry (400, 410, 413, 415, 422, or a handler's NonRetryableError) ·
   * retry: redeliver later (network errors, timeouts, 408, 429, 5xx, and every other 4xx).
   */
  outcome: 'delivered' | 'retry' | 'refused';
  /** Last HTTP status, if the target answered. */
  status?: number;
  /** Why it failed: a network error code, or a short summary of the target's answer. */
  error?: string;
  /** The target's `Retry-After`, when it asked for more time than the transport waits in place. */
  retryAfterMs?: number;
  /** The failure concerns the whole target (unreachable, 429, 502–504), not this one event. */
  targetDown?: boolean;
  /**
   * On a 2xx: whether the answer was an events endpoint's receipt (`{ status: 'delivered' | 'duplicate', id }`).
   * `false` for a plain 2xx (a Standard Webhooks receiver, or an app's fallback route): still delivered, but said.
   */
  receipt?: boolean;
  /** Tries this send made (1 + immediate retries). */
  attempts: number;
  /**
   * Batch sends only: the target refused the batch as a whole because it does not read batch
   * mode (415, or 400/410/413/422 without per-event results). The event was not processed; the
   * dispatcher sends it again on its own, in structured mode, and stops batching to that target.
   */
  batchUnsupported?: boolean;
}

/**
 * Carries deliveries to targets. HTTP push is the default; a broker transport implements the
 * same two methods. `send` never throws for a delivery failure: it answers with a result.
 */
export interface Transport {
  send(delivery: Delivery): Promise<DeliveryResult>;
  /**
   * Optional: several deliveries to one target in one request (HTTP: a CloudEvents batch, signed
   * once over the exact body). Answers one result per delivery, in the same order, settled one by
   * one from the target's per-event answer. Called only with 2 or more deliveries to the same
   * target whose `target.batch` is true. Never throws for a delivery failure.
   */
  sendBatch?(deliveries: readonly Delivery[]): Promise<DeliveryResult[]>;
  close(): Promise<void>;
}
