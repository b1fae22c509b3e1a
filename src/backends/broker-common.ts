import type { Logger } from 'winston';
import { secretVariable } from '../config.js';
import type { DeadLetter } from '../operate/operator.js';
import { parseJson } from '../protocol/safe-json.js';
import { webhookHeaders } from '../protocol/signature.js';
import type { Delivery, DeliveryResult } from '../send/transport.js';

/** What the RabbitMQ and Kafka backends share: trace headers, the retry schedule, a dead letter's identity. */

/**
 * What a broker message's headers are made of: a delivery (signed with its target's keys), or an
 * event a consumer republishes alone after splitting a verified batch (signed with its own keys).
 */
export type SignedEvent = Pick<Delivery, 'eventId' | 'type' | 'source' | 'body' | 'traceparent' | 'tracestate'> & {
  target: { keys: readonly Buffer[] };
};

/**
 * The headers of one broker message of `delivery`, signed at `timestamp` (seconds): the
 * CloudEvents binding's attribute headers (`prefix`: `cloudEvents_` on AMQP, `ce_` on Kafka), so
 * that a plain consumer can route and filter on them, the Standard Webhooks headers, and the
 * attempt's W3C trace context both plain (`traceparent`/`tracestate`, what OpenTelemetry's
 * messaging instrumentations read) and prefixed. Informational but for the signature: the receiver
 * decides on the signed body, and restores the trace context from the event's signed attributes.
 */
export function signedHeaders(delivery: SignedEvent, prefix: string, timestamp: number): Record<string, string> {
  const time = attributeOf(delivery.body, 'time');
  const headers: Record<string, string> = {
    [`${prefix}specversion`]: '1.0',
    [`${prefix}id`]: delivery.eventId,
    [`${prefix}type`]: delivery.type,
    [`${prefix}source`]: delivery.source,
    ...(time !== undefined ? { [`${prefix}time`]: time } : {}),
    ...webhookHeaders(delivery.target.keys, delivery.eventId, timestamp, delivery.body),
  };
  if (delivery.traceparent !== undefined) headers.traceparent = headers[`${prefix}traceparent`] = delivery.traceparent;
  if (delivery.tracestate !== undefined) headers.tracestate = headers[`${prefix}tracestate`] = delivery.tracestate;
  return headers;
}

/**
 * A string attribute of a body we serialised (createEvent puts attributes before `data`), found
 * without parsing the whole body (a JSON.parse per publish showed in profiles); undefined when
 * absent or only inside `data`.
 */
export function attributeOf(body: string, name: string): string | undefined {
  const marker = `"${name}":"`;
  const at = body.indexOf(marker);
  if (at < 0) return undefined;
  const data = body.indexOf('"data":');
  if (data >= 0 && data < at) return undefined;
  const start = at + marker.length;
  let end = start;
  while (end < body.length && body[end] !== '"') end += body[end] === '\\' ? 2 : 1;
  return JSON.parse(body.slice(at + marker.length - 1, end + 1)) as string;
}

/**
 * One broker send of `delivery` (started at `startedAt`, a `performance.now()`), said at debug
 * (every try, as over HTTP: the outage is logged once by the connection and by the dispatcher)
 * and answered: `delivered`, or, given the `error`, `retry` with `targetDown` (no broker, a
 * refusal: the outbox keeps the delivery and the dispatcher probes until the broker is back).
 */
export function brokerAttempt(logger: Logger, delivery: Delivery, startedAt: number, error?: string): DeliveryResult {
  if (logger.isDebugEnabled()) {
    logger.debug(error === undefined ? 'delivery attempt' : 'delivery attempt failed', {
      eventId: delivery.eventId,
      type: delivery.type,
      source: delivery.source,
      target: delivery.target.name,
      attempt: delivery.previousAttempts + 1,
      durationMs: Math.round((performance.now() - startedAt) * 10) / 10,
      ...(error === undefined ? {} : { error }),
    });
  }
  return error === undefined ? { outcome: 'delivered', attempts: 1 } : { outcome: 'retry', error, attempts: 1, targetDown: true };
}

/** The wait before retry number `attempt` (1-based): the schedule's entry, the last one repeating. */
export function retryDelay(retryDelaysMs: readonly number[], attempt: number): number {
  return retryDelaysMs[Math.min(attempt, retryDelaysMs.length) - 1]!;
}

/** A dead letter's CloudEvent attributes, as its body (the signed structured event) states them. */
export interface BodyIdentity {
  eventId: string | undefined;
  type: string | undefined;
  source: string | undefined;
  /** ms since epoch (the event's `time`). */
  time: number | undefined;
}

/**
 * Reads the identity of a dead letter from its body, never from a header: the body is what was
 * signed (an operator holds no secret to verify it, but a header is not even covered by the
 * signature). Undefined fields for a body that is not a JSON object (a `malformed_json` letter).
 */
export function identityOfBody(body: string): BodyIdentity {
  let event: unknown;
  try {
    event = parseJson(body, 'the dead letter');
  } catch {
    event = undefined;
  }
  const field = (name: string) => stringAttribute(event, name);
  const time = Date.parse(field('time') ?? '');
  return { eventId: field('id'), type: field('type'), source: field('source'), time: Number.isNaN(time) ? undefined : time };
}

/** A string attribute of a parsed event (any JSON value): undefined when it is not an object or the attribute not a string. */
export function stringAttribute(event: unknown, name: string): string | undefined {
  const value = event !== null && typeof event === 'object' ? (event as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** Reasons a consumer gives before a message's signature verified, or without knowing whether it did. */
const BEFORE_VERIFICATION: ReadonlySet<string> = new Set(['invalid_signature', 'receiver_failed', 'unknown']);

/** The event id, type and source a dead letter or log line may state: as such once verified, else only as the sender's claim. */
export type Claims = Pick<DeadLetter, 'eventId' | 'type' | 'source' | 'unverified'>;

/**
 * What an operator view or log line says of a message, from its body's identity: its event id, type and
 * source when the consumer settled it for a reason given after its signature verified (`reason`),
 * else the same only under `unverified` (anyone able to publish chose them: a forged id must not
 * pass for a real event's). `reason` undefined: not known to be verified.
 */
export function claimsOf({ eventId, type, source }: BodyIdentity, reason: string | undefined): Claims {
  if (reason !== undefined && !BEFORE_VERIFICATION.has(reason)) return { eventId, type, source };
  const claimed = Object.fromEntries(Object.entries({ eventId, type, source }).filter(([, v]) => v !== undefined));
  return { eventId: undefined, type: undefined, source: undefined, ...(Object.keys(claimed).length > 0 ? { unverified: claimed } : {}) };
}

/** A log line's fields for a message settled for `reason` (undefined: not known to be verified): claimsOf its body. */
export function logClaims(body: Buffer | null, reason: string | undefined): Record<string, unknown> {
  const { unverified, ...claims } = claimsOf(identityOfBody(body?.toString('utf8') ?? ''), reason);
  return unverified ? { unverified } : claims;
}

/**
 * The fields of a consumer's `event dead-lettered` line: the claims as above and, for a bad
 * signature, what to check (the broker never tells the sender, which logged its publish as delivered).
 */
export function deadLetterLogFields(body: Buffer | null, reason: string, service: string): Record<string, unknown> {
  const fields = logClaims(body, reason);
  if (reason !== 'invalid_signature') return fields;
  const source = (fields.unverified as Claims['unverified'])?.source;
  const from = typeof source === 'string' ? `"${source.slice(0, 100)}" (as the message claims)` : 'its sender';
  fields.hint =
    `no signature matches this service's secret: check that EVENTS_SECRET here (${service}) holds the secret ${from} signs with for ${service} ` +
    `(there: ${secretVariable(service)}, else EVENTS_SECRET); once they match, replay the dead letters (npx events-library replay --all --service ${service})`;
  return fields;
}
