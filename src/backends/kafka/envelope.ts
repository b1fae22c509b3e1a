import { STRUCTURED_CONTENT_TYPE } from '../../protocol/cloudevents.js';
import { attributeOf, signedHeaders } from '../broker-common.js';
import type { ReceivedMessage } from '../../receive/pipeline.js';
import type { Delivery } from '../../send/transport.js';
import type { KafkaIncomingMessage, KafkaOutgoingMessage } from './api.js';

/**
 * A Kafka record of one delivery: the structured CloudEvent as the value, the CloudEvents Kafka
 * binding's `ce_*` headers and `content-type` (informational: a plain consumer can filter on them),
 * and the Standard Webhooks headers, signed now. The key is the event's `partitionkey` extension
 * (`emit(type, payload, { key })`) or else its id. On receipt only the signed value decides.
 */
export function recordOf(delivery: Delivery): KafkaOutgoingMessage {
  const key = attributeOf(delivery.body, 'partitionkey');
  return {
    key: key ?? delivery.eventId,
    value: delivery.body,
    headers: {
      'content-type': STRUCTURED_CONTENT_TYPE,
      ...signedHeaders(delivery, 'ce_', Math.floor(Date.now() / 1000)),
      ...(key !== undefined ? { ce_partitionkey: key } : {}),
    },
  };
}

const WEBHOOK_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type'] as const;

/** What the receive pipeline needs from a record: the exact value, the signature headers and the content type. */
export function kafkaMessageOf(message: KafkaIncomingMessage): ReceivedMessage {
  const headers: Record<string, string> = {};
  for (const name of WEBHOOK_HEADERS) {
    const value = headerText(message, name);
    if (value !== undefined) headers[name] = value;
  }
  return { headers, body: message.value ?? Buffer.alloc(0) };
}

export function headerText(message: KafkaIncomingMessage, name: string): string | undefined {
  let value = message.headers?.[name];
  if (Array.isArray(value)) value = value[0];
  return value === undefined ? undefined : Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/** A record's headers without the library's own `events-*` (a sender's copies must never pass for the consumer's). */
export function senderHeaders(message: KafkaIncomingMessage): Record<string, Buffer | string> {
  const headers: Record<string, Buffer | string> = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined && !name.startsWith('events-')) headers[name] = first;
  }
  return headers;
}
