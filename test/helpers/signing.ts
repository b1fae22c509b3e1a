import { randomBytes, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** A fresh `whsec_…` secret. */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

export const STRUCTURED = 'application/cloudevents+json; charset=utf-8';

/** A CloudEvent in structured mode, as our wire format describes it. */
export function structuredEvent(type: string, data: unknown, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source: 'users',
    type,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data,
    ...overrides,
  };
}

/** Standard Webhooks headers for `body`, signed by the reference `standardwebhooks` package. */
export function webhookHeaders(
  secret: string,
  id: string,
  body: string | Buffer,
  date: Date = new Date(),
): { 'webhook-id': string; 'webhook-timestamp': string; 'webhook-signature': string } {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(date.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, date, body),
  };
}

export interface SignedRequest {
  headers: Record<string, string>;
  body: string;
}

/** A valid structured-mode request: the event as JSON, signed with `secret`. */
export function signedStructured(secret: string, event: Record<string, unknown>, signedAt: Date = new Date()): SignedRequest {
  const body = JSON.stringify(event);
  return { body, headers: { 'content-type': STRUCTURED, ...webhookHeaders(secret, String(event.id), body, signedAt) } };
}

/** A signed structured-mode request for a new event, with its id: the same object can be posted twice. */
export function signedRequest(secret: string, source: string, type: string, data: unknown): SignedRequest & { id: string } {
  const event = structuredEvent(type, data, { source });
  return { id: String(event.id), ...signedStructured(secret, event) };
}
