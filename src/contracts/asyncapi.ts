import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DEFAULTS } from '../defaults.js';
import { deepEqual, isObject, type Json } from './json-document.js';

/** A service's AsyncAPI 3.0 document (`bus.asyncapi()`): plain JSON. */
export interface AsyncApiDocument {
  asyncapi: '3.0.0';
  info: { title: string; version: string };
  defaultContentType: string;
  channels: Record<string, unknown>;
  operations: Record<string, unknown>;
  components: Record<string, unknown>;
  [key: string]: unknown;
}

/** What a service sends and receives, as its catalog holds it. */
export interface ServiceContract {
  service: string;
  version: string;
  sends: ReadonlyArray<{ type: string; targets?: readonly string[]; schema: unknown }>;
  receives: ReadonlyArray<{ type: string; handler: string; schema: unknown }>;
}

/** The envelope every event travels in, described once. */
const CLOUD_EVENT = {
  type: 'object',
  description: 'The CloudEvents 1.0 envelope (structured mode) every event travels in; a message payload is its `data`.',
  required: ['specversion', 'id', 'source', 'type', 'time', 'datacontenttype', 'data'],
  properties: {
    specversion: { const: '1.0' },
    id: { type: 'string', description: 'Unique per source: the receivers dedupe by source and id. Also the webhook-id header.' },
    source: { type: 'string', description: 'The emitting service (info.title of its document).' },
    type: { type: 'string', description: 'The event type: the channel address.' },
    time: { type: 'string', format: 'date-time' },
    datacontenttype: { const: 'application/json' },
    partitionkey: { type: 'string', description: 'emit(…, { key }): events with one key reach each receiver in order.' },
    traceparent: { type: 'string', description: 'W3C trace context (CloudEvents distributed tracing).' },
    tracestate: { type: 'string' },
    data: { description: 'The payload, as the message payload schema describes it.' },
  },
};

const TRAITS = {
  cloudEvents: {
    summary: 'A CloudEvents 1.0 event',
    description:
      'Sent in CloudEvents structured mode (application/cloudevents+json; several at once over HTTP as application/cloudevents-batch+json). ' +
      'The envelope is #/components/schemas/CloudEvent; the message payload is its data.',
    'x-envelope': { $ref: '#/components/schemas/CloudEvent' },
  },
  standardWebhooks: {
    summary: 'Signed with Standard Webhooks',
    description: 'HTTP request headers, and message headers on RabbitMQ and Kafka. A receiver verifies the signature before it reads anything else.',
    headers: {
      type: 'object',
      required: ['webhook-id', 'webhook-timestamp', 'webhook-signature'],
      properties: {
        'webhook-id': { type: 'string', description: 'The CloudEvent id.' },
        'webhook-timestamp': { type: 'string', pattern: '^[0-9]+$', description: 'Unix seconds; refused beyond ±5 minutes over HTTP.' },
        'webhook-signature': { type: 'string', description: 'Space-separated v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">, one per signing secret.' },
      },
    },
    correlationId: { location: '$message.header#/webhook-id' },
  },
};

/**
 * The AsyncAPI 3.0 document of a service: a channel per event type (address: the type), a
 * message per payload schema (the schema in `components.schemas`), the envelope and signature
 * headers as two message traits, an operation `send` per declared event (its targets in
 * `x-targets`) and `receive` per subscription (its handler name in `x-handler`).
 */
export function asyncApiDocument(contract: ServiceContract): AsyncApiDocument {
  const taken = new Set<string>(['CloudEvent']);
  const channels: Json = {};
  const operations: Json = {};
  const schemas: Json = { CloudEvent: CLOUD_EVENT };
  const types = [...new Set([...contract.sends, ...contract.receives].map((entry) => entry.type))].sort();
  for (const type of types) {
    const channel = uniqueId(type, taken);
    const messages: Json = {};
    const kinds: Array<{ schema: unknown; id: string }> = [];
    /** The message of a payload schema (one per distinct schema), as a reference. */
    const messageOf = (schema: unknown) => {
      let kind = kinds.find((k) => k.schema === schema || deepEqual(k.schema, schema));
      if (!kind) {
        kind = { schema, id: kinds.length === 0 ? channel : uniqueId(`${channel}-${kinds.length + 1}`, taken) };
        kinds.push(kind);
        if (schema !== undefined) schemas[kind.id] = payloadSchema(schema, `#/components/schemas/${kind.id}`);
        messages[kind.id] = {
          name: type,
          title: type,
          ...(schema === undefined ? {} : { payload: { $ref: `#/components/schemas/${kind.id}` } }),
          traits: [{ $ref: '#/components/messageTraits/cloudEvents' }, { $ref: '#/components/messageTraits/standardWebhooks' }],
        };
      }
      return { $ref: `#/channels/${channel}/messages/${kind.id}` };
    };
    const operation = (action: 'send' | 'receive', schema: unknown, extension: Json) => {
      operations[uniqueId(`${action}.${channel}`, taken)] = { action, channel: { $ref: `#/channels/${channel}` }, messages: [messageOf(schema)], ...extension };
    };
    for (const send of contract.sends.filter((s) => s.type === type)) {
      operation('send', send.schema, send.targets && send.targets.length > 0 ? { 'x-targets': [...send.targets] } : {});
    }
    for (const receive of contract.receives.filter((r) => r.type === type)) operation('receive', receive.schema, { 'x-handler': receive.handler });
    channels[channel] = { address: type, messages };
  }
  return {
    asyncapi: '3.0.0',
    info: { title: contract.service, version: contract.version },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { schemas, messageTraits: TRAITS },
  };
}

/** The version of the nearest package.json from `from` (the working directory), else DEFAULTS.asyncapi.version. */
export function packageVersion(from = process.cwd()): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const { version } = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
        if (typeof version === 'string' && version !== '') return version;
      } catch {
        // not JSON: no version from it
      }
      return DEFAULTS.asyncapi.version;
    }
    if (dirname(dir) === dir) return DEFAULTS.asyncapi.version;
  }
}

/** A JSON copy of a payload schema (TypeBox's symbols dropped), its local `$ref`s rebased to where it now lives. */
function payloadSchema(schema: unknown, at: string): unknown {
  const rebase = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rebase);
    if (!isObject(value)) return value;
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, key === '$ref' && typeof item === 'string' && item.startsWith('#') ? `${at}${item.slice(1)}` : rebase(item)]),
    );
  };
  return rebase(JSON.parse(JSON.stringify(schema)));
}

/** An id AsyncAPI accepts (letters, digits, `.`, `-`, `_`), not taken yet. */
function uniqueId(name: string, taken: Set<string>): string {
  const base = name.replace(/[^A-Za-z0-9._-]/g, '_') || '_';
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}_${n}`;
  taken.add(id);
  return id;
}
