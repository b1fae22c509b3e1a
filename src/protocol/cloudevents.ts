import { randomUUID } from 'node:crypto';
import { newEventId } from './event-id.js';
import { isoTime } from './iso-time.js';
import { ProtocolError } from './protocol-error.js';
import { parseJson } from './safe-json.js';

/** CloudEvents 1.0 (https://github.com/cloudevents/spec): build, serialise and parse. Pure, no I/O. */

export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json; charset=utf-8';
export const BATCH_CONTENT_TYPE = 'application/cloudevents-batch+json; charset=utf-8';
export const JSON_CONTENT_TYPE = 'application/json';

/**
 * A CloudEvents batch of serialised events, as the bytes signed and sent: their bodies joined
 * into a JSON array, byte for byte, each encoded straight into one buffer (no joined string of the
 * whole batch to encode again: docs/benchmarks.md, "Less garbage per event").
 */
export function batchBuffer(bodies: readonly string[]): Buffer {
  let size = 2 + Math.max(bodies.length - 1, 0);
  for (const body of bodies) size += Buffer.byteLength(body);
  const buffer = Buffer.allocUnsafe(size);
  let at = 0;
  buffer[at++] = 0x5b; // [
  for (let i = 0; i < bodies.length; i++) {
    if (i > 0) buffer[at++] = 0x2c; // ,
    at += buffer.write(bodies[i]!, at);
  }
  buffer[at] = 0x5d; // ]
  return buffer;
}

/** The `webhook-id` of one send of a batch (a batch has no event id of its own): fresh for every send. */
export function batchId(): string {
  return `batch_${randomUUID()}`;
}

/** A CloudEvent as it travels, with JSON `data`. */
export interface CloudEvent<Data = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time?: string;
  datacontenttype?: string;
  dataschema?: string;
  subject?: string;
  data?: Data;
  /** Extension attributes, lower-case names. */
  [extension: string]: unknown;
}

/** A new event; `extensions` (lower-case names) are serialised before `data`. */
export function createEvent<Data>(source: string, type: string, data: Data, extensions?: Record<string, string>): CloudEvent<Data> {
  const now = Date.now();
  return {
    specversion: '1.0',
    id: newEventId(now),
    source,
    type,
    time: isoTime(now),
    datacontenttype: JSON_CONTENT_TYPE,
    ...extensions,
    data,
  };
}

/** Structured mode body: the whole event as JSON. */
export function toStructuredBody(event: CloudEvent): string {
  return JSON.stringify(event);
}

/**
 * A structured body of ours addressed to one target: the extension attribute `recipient` (the
 * target's service name) added first, inside the signed bytes, so that a captured delivery cannot
 * be run by another service that shares the secret.
 */
export function addressedTo(body: string, recipient: string): string {
  return `{"recipient":${JSON.stringify(recipient)},${body.slice(1)}`;
}

/**
 * The event's body for each of `recipients`, addressed to it (`addressedTo`), or as is for
 * `anyone` (subscribers through a broker share one message, which names no recipient). One
 * recipient, the usual case, is serialised addressed in one go, the same bytes: the body
 * serialised and then copied behind the recipient cost two more copies of it, about a sixth of
 * the sender's garbage per event (docs/benchmarks.md, "Less garbage per event").
 */
export function addressedBodies(event: CloudEvent, recipients: readonly string[], anyone: string): string[] {
  const [only] = recipients;
  if (recipients.length === 1 && only !== anyone) return [toStructuredBody({ recipient: only, ...event })];
  const body = toStructuredBody(event);
  return recipients.map((recipient) => (recipient === anyone ? body : addressedTo(body, recipient)));
}

export type Headers = Readonly<Record<string, string | string[] | undefined>>;

export type ContentMode = 'structured' | 'batch';

/**
 * Why binary mode is refused: its `ce-*` headers are outside the Standard Webhooks signature
 * (which covers webhook-id, webhook-timestamp and the body), so they could choose the event's
 * id (its dedupe key), type (the handler that runs) and source without the sender's key.
 */
export const BINARY_MODE_REFUSED =
  'binary mode (ce-* headers) is not accepted: the ce-* headers are outside the webhook signature, so they cannot ' +
  'choose the event id, type or source. Send structured mode (content-type application/cloudevents+json, the whole ' +
  'event in the signed body) or a batch (application/cloudevents-batch+json)';

/**
 * What the sender meant by its content type. Only modes whose every attribute is in the signed
 * body are read: structured and batch. Refuses (415/400) everything else, binary mode included.
 */
export function detectMode(headers: Headers): ContentMode {
  const media = mediaType(singleHeader(headers, 'content-type'));
  if (media === 'application/cloudevents+json') return 'structured';
  if (media === 'application/cloudevents-batch+json') return 'batch';
  if (Object.keys(headers).some((name) => name.toLowerCase().startsWith('ce-'))) {
    throw new ProtocolError(415, 'binary_mode_refused', BINARY_MODE_REFUSED);
  }
  if (media !== undefined && isJsonMedia(media)) {
    throw new ProtocolError(
      400,
      'not_a_cloudevent',
      'a JSON body is not a CloudEvent: send application/cloudevents+json (the whole event in the body) or application/cloudevents-batch+json',
    );
  }
  throw new ProtocolError(
    415,
    'unsupported_media_type',
    `content type ${media ?? '(none)'} is not supported: send application/cloudevents+json`,
  );
}

/** The event of a structured-mode body. Throws ProtocolError (400/415) for anything malformed. */
export function parseStructured(body: Buffer): CloudEvent {
  return checkEnvelope(parseJson(body.toString('utf8'), 'the body'));
}

/** An item of a batch: its CloudEvent, or why it is not one and its id when it had a string one. */
/**
 * One event's entry in a receiver's answer to a batch (`{ results: [...] }`, one per event, in
 * the batch's order): `status` is always the number, the receipt or the error beside it.
 */
export interface BatchResult {
  id?: string;
  status: number;
  receipt?: 'delivered' | 'duplicate';
  error?: string;
  message?: string;
  /** Seconds, when this event asks to be retried later. */
  retryAfter?: number;
}

export type BatchItem = { event: CloudEvent; invalid?: undefined } | { event?: undefined; invalid: ProtocolError; id: string | undefined };

/**
 * The items of a batch body, each a CloudEvent or why it is not one, so one malformed item is
 * refused alone. Throws ProtocolError (400) when the body is not a JSON array.
 */
export function parseBatch(body: Buffer): BatchItem[] {
  const list = parseJson(body.toString('utf8'), 'the body');
  if (!Array.isArray(list)) throw new ProtocolError(400, 'malformed_event', 'a batch body must be a JSON array of CloudEvents');
  return list.map((item: unknown, index): BatchItem => {
    try {
      return { event: checkEnvelope(item, `event ${index} of the batch`) };
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      const id = (item as { id?: unknown } | null)?.id;
      return { invalid: error, id: typeof id === 'string' && id.length > 0 ? id : undefined };
    }
  });
}

const REQUIRED = ['id', 'source', 'type'] as const;

function checkEnvelope(value: unknown, what = 'the event'): CloudEvent {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProtocolError(400, 'malformed_event', `${what} must be a JSON object`);
  }
  const event = value as Record<string, unknown>;
  if (event.specversion !== '1.0') {
    throw new ProtocolError(
      400,
      'malformed_event',
      `${what} has specversion ${JSON.stringify(event.specversion) ?? '(missing)'}: only "1.0" is supported`,
    );
  }
  for (const name of REQUIRED) {
    if (typeof event[name] !== 'string' || (event[name] as string).length === 0) {
      throw new ProtocolError(400, 'malformed_event', `${what} lacks the required attribute "${name}" (a non-empty string)`);
    }
  }
  if (event.time !== undefined && (typeof event.time !== 'string' || Number.isNaN(Date.parse(event.time)))) {
    throw new ProtocolError(400, 'malformed_event', `${what} has a "time" that is not an RFC 3339 timestamp`);
  }
  if ('data_base64' in event) {
    throw new ProtocolError(415, 'unsupported_media_type', `${what} carries data_base64: only JSON data is supported`);
  }
  const dct = event.datacontenttype;
  if (dct !== undefined && (typeof dct !== 'string' || !isJsonMedia(mediaType(dct) ?? ''))) {
    throw new ProtocolError(415, 'unsupported_media_type', `${what} has datacontenttype ${String(dct)}: only JSON data is supported`);
  }
  return event as CloudEvent;
}

/**
 * A header that must appear once: several different values (a duplicated header, as a
 * framework or a broker may hand it over in an array) are ambiguous and read as absent.
 */
export function singleHeader(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  if (!Array.isArray(value)) return value;
  return value.every((v) => v === value[0]) ? value[0] : undefined;
}

function mediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const media = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return media === '' ? undefined : media;
}

function isJsonMedia(media: string): boolean {
  return media === 'application/json' || media === 'text/json' || media.endsWith('+json');
}
