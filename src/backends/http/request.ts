import { randomUUID } from 'node:crypto';
import { signatureHeader } from '../../protocol/signature.js';
import type { Delivery } from '../../send/transport.js';

/** What every HTTP client sends, the same way: bodies, signing headers, answer caps, log fields. */

/** A target's answer is read up to this many bytes (an app's HTML error page is cut, not buffered). */
export const ANSWER_CAP_BYTES = 64 * 1024;
/** A batch's answer holds one result per event: its cap grows with the batch. */
const BATCH_ANSWER_BYTES_PER_EVENT = 1024;

export function answerCapBytes(count: number): number {
  return Math.max(ANSWER_CAP_BYTES, BATCH_ANSWER_BYTES_PER_EVENT * count);
}

/** A CloudEvents batch: the stored structured bodies, byte for byte, as one JSON array. */
export function batchBody(deliveries: readonly Delivery[]): string {
  return `[${deliveries.map((delivery) => delivery.body).join(',')}]`;
}

/** A batch request's `webhook-id`: fresh per try (its events keep their own ids inside). */
export function batchWebhookId(): string {
  return `batch_${randomUUID()}`;
}

/** Standard Webhooks headers for one try: signed now, so a retry carries a fresh timestamp. */
export function webhookHeaders(keys: readonly Buffer[], id: string, body: string): Record<string, string> {
  const timestamp = Math.floor(Date.now() / 1000);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatureHeader(keys, id, timestamp, body),
  };
}

/** The W3C trace context headers of a delivery, when it has one (single sends only). */
export function traceHeaders(delivery: Delivery, headers: Record<string, string>): Record<string, string> {
  if (delivery.traceparent !== undefined) headers.traceparent = delivery.traceparent;
  if (delivery.tracestate !== undefined) headers.tracestate = delivery.tracestate;
  return headers;
}

/** One request on its way: a single delivery, or a batch (events to `first`'s target). */
export interface RequestInFlight {
  readonly first: Delivery;
  /** The ids of the events it carries, in order (a batch's `results` must match them). */
  readonly eventIds: readonly string[];
  readonly batch: boolean;
  /** The current try's `webhook-id`. */
  webhookId: string;
}

/** The fields of a try's debug line. */
export function logFields(request: RequestInFlight): Record<string, unknown> {
  const { first } = request;
  if (request.batch) return { batch: request.webhookId, events: request.eventIds.length, target: first.target.name };
  return { eventId: first.eventId, type: first.type, source: first.source, target: first.target.name };
}

/** A single send's attempt counts its earlier sends; a batch's events each have their own count, so a batch counts its tries. */
export function attemptOf(request: RequestInFlight, tries: number): number {
  return request.batch ? tries : request.first.previousAttempts + tries;
}

export function eventIdsOf(deliveries: readonly Delivery[]): string[] {
  return deliveries.map((delivery) => delivery.eventId);
}
