import type { SecretInput } from '../config.js';
import { ConfigError } from '../errors/index.js';
import { type CloudEvent, createEvent, STRUCTURED_CONTENT_TYPE, toStructuredBody } from '../protocol/cloudevents.js';
import { parseSecret, webhookHeaders } from '../protocol/signature.js';

export interface SignedRequestOptions {
  /** The receiving service's secret(s), `whsec_…` (several: one signature each, as during a rotation). */
  secret: SecretInput;
  /** The sending service, the CloudEvent `source`. @default 'test' */
  source?: string;
  /** The CloudEvent id (also `webhook-id`): reuse one to test dedupe. @default a random UUID */
  id?: string;
  /** The CloudEvent `time`. @default now */
  time?: Date | string;
  /** `webhook-timestamp`, Unix seconds: an old one tests the tolerance window. @default now */
  timestamp?: number;
}

/** The exact request a real sender makes: headers and body (a string, to send byte for byte). */
export interface SignedRequest<Data = unknown> {
  /** content-type, webhook-id, webhook-timestamp, webhook-signature. */
  headers: Record<string, string>;
  /** The structured CloudEvent, as signed: send it unchanged (`Buffer.from(body)` for `bus.handle`). */
  body: string;
  /** The CloudEvent in the body. */
  event: CloudEvent<Data>;
}

/**
 * Builds the headers and body a real sender would POST for `type` with `data` (CloudEvents
 * structured mode, Standard Webhooks `v1` signature), for tests of a mounted middleware or of
 * `bus.handle`. `data` is not validated: send an invalid payload to see the receiver's 400.
 *
 * @example
 * const req = signedRequest('user-created', { user_id: 'u1', email: 'ada@example.com' }, { secret, source: 'users' });
 * await request(app).post('/events').set(req.headers).send(req.body).expect(200);
 */
export function signedRequest<Data>(type: string, data: Data, options: SignedRequestOptions): SignedRequest<Data> {
  const keys = parseKeys(options.secret);
  const event = createEvent(options.source ?? 'test', type, data);
  if (options.id !== undefined) event.id = options.id;
  if (options.time !== undefined) event.time = typeof options.time === 'string' ? options.time : options.time.toISOString();
  const body = toStructuredBody(event);
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  return {
    headers: {
      'content-type': STRUCTURED_CONTENT_TYPE,
      ...webhookHeaders(keys, event.id, timestamp, body),
    },
    body,
    event,
  };
}

function parseKeys(secret: SecretInput): Buffer[] {
  const list = typeof secret === 'string' ? secret.split(/\s+/).filter(Boolean) : [...(secret ?? [])];
  if (list.length === 0) throw new ConfigError('signedRequest needs the receiving service\'s secret: { secret: "whsec_…" }');
  return list.map((value) => {
    try {
      return parseSecret(value);
    } catch (cause) {
      throw new ConfigError(`signedRequest: the secret is malformed: ${(cause as Error).message}`, { cause });
    }
  });
}
