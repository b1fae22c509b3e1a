import { STRUCTURED_CONTENT_TYPE } from '../../protocol/cloudevents.js';
import { signatureHeader } from '../../protocol/signature.js';
import type { ReceivedMessage } from '../../receive/pipeline.js';
import type { Delivery } from '../../send/transport.js';
import { traceHeaders } from '../broker-common.js';

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
  const nowMs = Date.now();
  const timestamp = Math.floor(nowMs / 1000);
  const time = timeOf(delivery.body);
  return {
    contentType: STRUCTURED_CONTENT_TYPE,
    messageId: delivery.eventId,
    type: delivery.type,
    appId: delivery.source,
    timestamp,
    persistent: true,
    mandatory: true,
    headers: {
      cloudEvents_specversion: '1.0',
      cloudEvents_id: delivery.eventId,
      cloudEvents_type: delivery.type,
      cloudEvents_source: delivery.source,
      ...(time !== undefined ? { cloudEvents_time: time } : {}),
      'webhook-id': delivery.eventId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatureHeader(delivery.target.keys, delivery.eventId, timestamp, delivery.body),
      ...traceHeaders(delivery, 'cloudEvents_'),
      ...extraHeaders,
    },
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

/**
 * The CloudEvent `time` of a body we serialised (createEvent puts it before `data`), found without
 * parsing the whole body (a JSON.parse per publish showed in profiles); used for a header only.
 */
function timeOf(body: string): string | undefined {
  const at = body.indexOf('"time":"');
  if (at < 0) return undefined;
  const data = body.indexOf('"data":');
  if (data >= 0 && data < at) return undefined;
  const end = body.indexOf('"', at + 8);
  return end < 0 ? undefined : body.slice(at + 8, end);
}
