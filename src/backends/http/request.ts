import { BATCH_CONTENT_TYPE, batchBuffer, batchId, STRUCTURED_CONTENT_TYPE } from '../../protocol/cloudevents.js';
import { webhookHeaders } from '../../protocol/signature.js';
import { redactUrl } from '../../config.js';
import type { Delivery } from '../../send/transport.js';

/** A target's answer is read up to this many bytes (an app's HTML error page is cut, not buffered). */
const ANSWER_CAP_BYTES = 64 * 1024;
/** A batch's answer holds one result per event: its cap grows with the batch. */
const BATCH_ANSWER_BYTES_PER_EVENT = 1024;

/**
 * One request on its way, as every HTTP client sends it: a single delivery (the structured
 * CloudEvent, with its trace context), or a CloudEvents batch (the stored bodies joined into a
 * JSON array, byte for byte; no trace headers: it carries many events' contexts) to `first`'s
 * target. Signed anew for every try, so a retry carries a fresh `webhook-timestamp`.
 */
export class RequestInFlight {
  readonly first: Delivery;
  /** The ids of the events it carries, in order (a batch's `results` must match them). */
  readonly eventIds: readonly string[];
  /** The exact bytes signed and sent, encoded once for both (a string was encoded by the HMAC and again by the client). */
  readonly body: Buffer;
  /** How much of the answer is read. */
  readonly cap: number;
  /** The current try's `webhook-id`: the event's id, or a fresh `batch_<uuid>` per try of a batch. */
  webhookId = '';

  constructor(
    readonly deliveries: readonly Delivery[],
    readonly batch: boolean,
  ) {
    this.first = deliveries[0]!;
    this.eventIds = deliveries.map((delivery) => delivery.eventId);
    this.body = batch ? batchBuffer(deliveries.map((delivery) => delivery.body)) : Buffer.from(this.first.body);
    this.cap = Math.max(ANSWER_CAP_BYTES, BATCH_ANSWER_BYTES_PER_EVENT * deliveries.length);
  }

  /** The next try's headers: content type, trace context (single sends), Standard Webhooks headers signed now. */
  headers(): Record<string, string> {
    this.webhookId = this.batch ? batchId() : this.first.eventId;
    const timestamp = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = { 'content-type': this.batch ? BATCH_CONTENT_TYPE : STRUCTURED_CONTENT_TYPE };
    const { traceparent, tracestate } = this.first;
    if (!this.batch && traceparent !== undefined) headers.traceparent = traceparent;
    if (!this.batch && tracestate !== undefined) headers.tracestate = tracestate;
    return Object.assign(headers, webhookHeaders(this.first.target.keys, this.webhookId, timestamp, this.body));
  }

  /** The fields of a try's debug line. */
  logFields(): Record<string, unknown> {
    const { first } = this;
    const url = redactUrl(first.target.url);
    if (this.batch) return { batch: this.webhookId, events: this.eventIds.length, target: first.target.name, url };
    return { eventId: first.eventId, type: first.type, source: first.source, target: first.target.name, url };
  }

  /** A single send's attempt counts its earlier sends; a batch's events each have their own count, so a batch counts its tries. */
  attempt(tries: number): number {
    return this.batch ? tries : this.first.previousAttempts + tries;
  }
}
