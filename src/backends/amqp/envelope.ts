import { BATCH_CONTENT_TYPE, batchId, STRUCTURED_CONTENT_TYPE } from '../../protocol/cloudevents.js';
import { webhookHeaders } from '../../protocol/signature.js';
import type { ReceivedMessage } from '../../receive/pipeline.js';
import type { Delivery } from '../../send/transport.js';
import { type SignedEvent, signedHeaders } from '../broker-common.js';

/**
 * The AMQP envelope: the structured CloudEvent as the body (`application/cloudevents+json`), the
 * CloudEvents AMQP binding's attribute headers (`cloudEvents_id`, …, `_` separator) so that a
 * plain AMQP consumer can route and filter on them, and the Standard Webhooks headers. On receipt
 * only the signed body decides anything: the `cloudEvents_*` headers are informational.
 * Several events due to one queue together go as one message: a CloudEvents batch
 * (`application/cloudevents-batch+json`, as over HTTP), signed once.
 */

export interface AmqpProperties {
  contentType: string;
  messageId: string;
  /** The event type (of every event, for a batch); absent from a batch of several types. */
  type?: string;
  appId: string;
  timestamp: number;
  persistent: true;
  mandatory: true;
  headers: Record<string, string | number>;
}

const WEBHOOK_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;

/** Properties and headers of one publish of `event`, signed now. */
export function envelopeOf(event: SignedEvent): AmqpProperties {
  const timestamp = Math.floor(Date.now() / 1000);
  return {
    contentType: STRUCTURED_CONTENT_TYPE,
    messageId: event.eventId,
    type: event.type,
    appId: event.source,
    timestamp,
    persistent: true,
    mandatory: true,
    headers: signedHeaders(event, 'cloudEvents_', timestamp),
  };
}

/**
 * Properties and headers of one publish of `deliveries` (one target's) as the batch `body`, signed
 * now over its exact bytes under a fresh `batch_<uuid>` id. No attribute headers: the CloudEvents
 * binding describes one event per message, and each event carries its own trace context.
 */
export function batchEnvelopeOf(deliveries: readonly Delivery[], body: Buffer): AmqpProperties {
  const first = deliveries[0]!;
  const id = batchId();
  const timestamp = Math.floor(Date.now() / 1000);
  const oneType = deliveries.every((delivery) => delivery.type === first.type);
  return {
    contentType: BATCH_CONTENT_TYPE,
    messageId: id,
    ...(oneType && { type: first.type }),
    appId: first.source,
    timestamp,
    persistent: true,
    mandatory: true,
    headers: webhookHeaders(first.target.keys, id, timestamp, body),
  };
}

/** What the receive pipeline needs from a message: the exact body, the signature headers and the content type. */
export function messageOf(content: Buffer, contentType: string | undefined, headers: Record<string, unknown> | undefined): ReceivedMessage {
  const out: Record<string, string> = {};
  for (const name of WEBHOOK_HEADERS) {
    const value = headers?.[name];
    if (typeof value === 'string') out[name] = value;
    else if (Buffer.isBuffer(value)) out[name] = value.toString('utf8');
  }
  if (contentType !== undefined) out['content-type'] = contentType;
  return { headers: out, body: content };
}
