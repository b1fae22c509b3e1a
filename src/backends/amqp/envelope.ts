import { STRUCTURED_CONTENT_TYPE } from '../../protocol/cloudevents.js';
import type { ReceivedMessage } from '../../receive/pipeline.js';
import type { Delivery } from '../../send/transport.js';
import { signedHeaders } from '../broker-common.js';

/**
 * The AMQP envelope: the structured CloudEvent as the body (`application/cloudevents+json`), the
 * CloudEvents AMQP binding's attribute headers (`cloudEvents_id`, …, `_` separator) so that a
 * plain AMQP consumer can route and filter on them, and the Standard Webhooks headers. On receipt
 * only the signed body decides anything: the `cloudEvents_*` headers are informational.
 */

export interface AmqpProperties {
  contentType: string;
  messageId: string;
  type: string;
  appId: string;
  timestamp: number;
  persistent: true;
  mandatory: true;
  headers: Record<string, string | number>;
}

const WEBHOOK_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;

/** Properties and headers of one publish of `delivery`, signed now. */
export function envelopeOf(delivery: Delivery, extraHeaders: Record<string, string | number> = {}): AmqpProperties {
  const timestamp = Math.floor(Date.now() / 1000);
  return {
    contentType: STRUCTURED_CONTENT_TYPE,
    messageId: delivery.eventId,
    type: delivery.type,
    appId: delivery.source,
    timestamp,
    persistent: true,
    mandatory: true,
    headers: Object.assign(signedHeaders(delivery, 'cloudEvents_', timestamp), extraHeaders),
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
