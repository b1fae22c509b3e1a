import type { FromSchema, JSONSchema as SchemaOf } from 'json-schema-to-ts';
import type { CloudEvent } from './protocol/cloudevents.js';

/**
 * A JSON Schema (draft 7 / 2019-09 as ajv reads it). Written `as const` (or passed straight to
 * `declareEvent`), it also gives the static type of the payload. A TypeBox schema works too.
 */
export type JSONSchema = SchemaOf;

/** The payload type a schema describes: TypeBox's `static`, else json-schema-to-ts, else `unknown`. */
export type DataOf<S> = [S] extends [never]
  ? unknown
  : S extends { static: infer T }
    ? T
    : SchemaOf extends S // the wide JSONSchema type says nothing about the data (and is too large to expand)
      ? unknown
      : S extends SchemaOf
        ? FromSchema<S>
        : unknown;

/**
 * Event types known to the type checker, by declaration merging: map each type to its schema.
 * Module-level `emit` and `subscribeTo` then check payloads against it.
 *
 * @example
 * declare module 'events-library' {
 *   interface EventRegistry { 'user-created': typeof UserCreated }
 * }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface EventRegistry {}

/**
 * The event types `emit` takes under the event map `Events`: any string while the type checker
 * knows no event (an untyped bus, an empty EventRegistry), otherwise exactly the declared ones,
 * so `emit('user-deleted', …)` on a bus that never declared it is a compile error.
 */
export type EmittableType<Events> = [keyof Events] extends [never] ? string : Extract<keyof Events, string>;

/** Payload of event type `T` under the event map `Events`; `unknown` for a type it does not know. */
export type PayloadOf<Events, T extends string> = T extends keyof Events ? DataOf<Events[T]> : unknown;

/** What a handler receives besides `data`: the whole CloudEvent (`id`, `type`, `source`, `time`, …). */
export interface ReceivedEvent<Data = unknown> extends CloudEvent<Data> {
  data: Data;
}

/**
 * A database client inside an open transaction: with the PostgreSQL inbox, a `pg` `PoolClient`
 * between `BEGIN` and `COMMIT` (typed structurally, so the core needs no `pg` types; cast it to
 * `PoolClient` for the rest of its API).
 */
export interface TransactionClient {
  query<Row extends Record<string, unknown> = Record<string, unknown>>(
    text: string,
    values?: readonly unknown[],
  ): Promise<{ rows: Row[]; rowCount: number | null }>;
}

/**
 * A PostgreSQL pool as the library uses it: a `pg` `Pool` fits (typed structurally, so the core
 * needs no `pg` types).
 */
export interface DatabasePool {
  connect(): Promise<TransactionClient & { release(error?: Error | boolean): void }>;
  query: TransactionClient['query'];
}

/** What a handler receives besides `data` and `event`. */
export interface HandlerContext {
  /**
   * Present only with the PostgreSQL inbox: the client of the transaction that also records this
   * handler's completion. Writes made through it commit together with the "done" mark, or not at
   * all (exactly-once effects); writes made elsewhere keep the at-least-once behaviour. Do not
   * COMMIT or ROLLBACK it yourself: throw to roll back.
   */
  tx?: TransactionClient;
}

export type EventHandler<Data = unknown> = (
  data: Data,
  event: ReceivedEvent<Data>,
  context: HandlerContext,
) => void | Promise<void>;

export interface DeclareOptions<S extends JSONSchema = JSONSchema> {
  /** Validates every payload before it is sent; `emit` rejects with ValidationError otherwise. */
  schema?: S;
}

export interface SubscribeOptions<S extends JSONSchema = JSONSchema> {
  /** Validates incoming data before any handler runs; the receiver answers 400 otherwise. */
  schema?: S;
  /**
   * A stable name for this handler, under which the inbox records that it completed.
   * @default `<type>#<n>`, n counting subscriptions to that type in registration order
   */
  name?: string;
}

/** Options of one `emit`. */
export interface EmitOptions {
  /**
   * Your open transaction: a `pg` client (or anything with `query(text, values)`, as `pg`'s
   * `PoolClient` and `Client`) between `BEGIN` and `COMMIT`. The event is written by that
   * transaction, exists only if it commits, and is delivered after the commit. Needs the PostgreSQL
   * outbox (`EVENTS_DATABASE_URL` or the `database` option); other outboxes throw ConfigError.
   */
  tx?: TransactionClient;
  /**
   * Events with the same key reach each target in the order they were emitted (Kafka: the record
   * key, so the same partition). Carried in the signed event as the CloudEvents `partitionkey`
   * extension. @default the event id (no order between events)
   */
  key?: string;
}

/** Returned by `emit` once the event is validated and recorded for delivery to every target. */
export interface EmitReceipt {
  /** The CloudEvent id that goes on the wire (and in `webhook-id`). */
  id: string;
  type: string;
  source: string;
  time: string;
  /** The target services the event will be delivered to. */
  targets: string[];
}

export type Unsubscribe = () => void;
