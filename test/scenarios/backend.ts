// What the scenario suite (suite.ts) needs from a backend: its features, and a constructor of
// isolated "worlds" (one per test) in which it builds sender and receiver buses through the public
// `createEventBus` options only, and tears them down. Modelled on Watermill's
// `pubsub/tests/test_pubsub.go`: one `TestPubSub(t, features, constructor)` for every pub/sub.
import type { Pool } from 'pg';
import type { EventBus, EventBusOptions } from '../../src/index.js';

/** What a backend can do; the suite skips (with the reason) the scenarios that need what it cannot. */
export interface Features {
  /** The sender's outbox and the receiver's inbox survive a restart of their process (SQLite, PostgreSQL, a broker's queues). */
  persistent: boolean;
  /** Events emitted with the same `key` are handled in emit order (Kafka partitions). */
  perKeyOrder: boolean;
  /** Several instances of one service share its events, each handled once by one of them (competing consumers). */
  manyInstances: boolean;
  /** A handler's writes through `{ tx }` commit with its inbox mark (PostgreSQL). */
  transactionalInbox: boolean;
  /** The sender sends several events per request or message (HTTP batches, RabbitMQ batch messages). */
  batches: boolean;
  /**
   * A delivery ends only once the receiver has handled it (HTTP push), so a stalled handler stalls
   * the sender's deliveries without failing them (a broker takes the message at once).
   */
  handlerHoldsDelivery: boolean;
  /**
   * Which bus keeps the dead letters an operator lists and replays: the sender's (HTTP: its outbox
   * keeps what the target refused) or the receiver's (a broker: the service's dead-letter queue).
   */
  deadLetters: 'sender' | 'receiver';
  /** `declareEvent(type, { schema })` without targets reaches every service subscribed to `type` (a broker; HTTP needs addresses). */
  subscriptions: boolean;
}

/** A receiving service (one instance) as the scenario started it. */
export interface RunningService {
  bus: EventBus;
  /** Closes the bus (waiting for its handlers in flight), then whatever served it; the service can be started again. */
  stop(): Promise<void>;
}

export interface ReceiverSpec {
  /** Subscribes the handlers; called again on each restart. */
  subscribe(bus: EventBus): void;
  /** Events handled at once by this instance (a broker consumer's prefetch). */
  concurrency?: number;
  /** Extra bus options (logger, …). */
  options?: Partial<EventBusOptions>;
}

export interface SenderSpec {
  /** The services the sender's events are declared to (HTTP needs their addresses up front). */
  targets: readonly string[];
  /** Extra bus options (batch, concurrency, …). */
  options?: Partial<EventBusOptions>;
}

/** One test's isolated world: its own queue/topic prefix, schema or directory. */
export interface World {
  /** The `users` service, which emits. Restarting it = `close()` its bus, then call `sender` again (a durable outbox resumes). */
  sender(spec: SenderSpec): Promise<EventBus>;
  /** Starts an instance of `service` (on HTTP: on the same address each time). */
  receiver(service: string, spec: ReceiverSpec): Promise<RunningService>;
  /**
   * Puts a signed structured CloudEvent straight onto `service`'s intake, as its transport would (a
   * redelivery): HTTP POSTs it to the service, a broker publishes it to the service's queue or topic.
   * Resolves once it is taken (HTTP: answered; a broker: confirmed).
   */
  deliverRaw(service: string, event: Record<string, unknown>, key?: string): Promise<void>;
  /**
   * Cuts the sender off from where it delivers until `end()`: HTTP stops the running receivers
   * (and starts them again, same address and spec); a broker refuses the sender's connections
   * (a TCP relay on RabbitMQ, the client's sockets on Kafka) while the receivers stay connected.
   */
  outage(): Promise<{ end(): Promise<void> }>;
  /** The database the handlers' `{ tx }` writes to (transactionalInbox only). */
  database?: { pool: Pool; schema: string };
  /** Stops everything still running and removes what the world created. */
  close(): Promise<void>;
}

export interface Backend {
  name: string;
  features: Features;
  /** Once per test file (a vhost, a mock cluster). */
  beforeAll?(): Promise<void> | void;
  afterAll?(): Promise<void> | void;
  /** A fresh world for one test. */
  world(): Promise<World>;
}
