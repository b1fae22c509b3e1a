import type { Logger } from 'winston';
import type { BrokerOptions, ResolvedBroker } from '../config.js';
import { ConfigError } from '../errors/index.js';
import type { Availability } from '../observe/availability.js';
import type { DeadLetterOperator, OperatorLocation } from '../operate/operator.js';
import type { ReceivePipeline } from '../receive/pipeline.js';
import type { Transport } from '../send/transport.js';
import { amqpBackend } from './amqp/backend.js';
import { kafkaBackend } from './kafka/backend.js';

/** This service's consumer on a broker. */
export interface BrokerConsumer {
  /** The queue or topic it consumes. */
  readonly name: string;
  /** Consuming now, or down since when (before its first registration too) and why: for health. */
  readonly availability: Availability;
  /** Starts consuming (once); resolves when the broker has registered it. */
  start(): Promise<void>;
  /** Stops taking messages and waits (until `deadline`, ms since epoch) for those in hand. */
  stop(deadline: number): Promise<void>;
}

export interface BrokerConsumerOptions {
  /** The bus's receive pipeline: the consumer calls it without the timestamp window and settles each message by its verdict. */
  pipeline: ReceivePipeline;
  service: string;
  /** This service's keys: a consumer that settles the events of a verified batch one by one signs each it republishes alone with them. */
  keys: readonly Buffer[];
  concurrency: number;
  /** The event types this service subscribes to, read as the consumer sets up: what reaches it without being addressed to it. */
  types: () => readonly string[];
}

/** What a bus opens its broker link with. */
export interface BrokerOpenOptions<B extends ResolvedBroker = ResolvedBroker> {
  broker: B;
  logger: Logger;
  /** The connection's or client's name on the broker (the service name). */
  name: string;
  /** Connect and send timeout, in ms. */
  timeoutMs: number;
}

/** A bus's link to its broker: its transport, its consumer, one connection. */
export interface BrokerLink {
  readonly transport: Transport;
  consumer(options: BrokerConsumerOptions): BrokerConsumer;
  /** Closes the connection (after the consumer stopped and the transport closed). */
  close(): Promise<void>;
}

/** A broker's dead letters, for the operator functions: its URL, the services' prefix, and (optionally) one receiving service. */
export type BrokerLocation = Extract<OperatorLocation, { broker: string }>;

/**
 * A broker backend, registered below: the URL schemes it serves, how it resolves its own options,
 * and how it opens a bus's link and an operator on its dead letters.
 */
export interface BrokerBackend<B extends ResolvedBroker = ResolvedBroker> {
  /** `ResolvedBroker.kind` of the brokers it resolves. */
  readonly kind: B['kind'];
  /** URL schemes, lower case, without `://`. */
  readonly schemes: readonly string[];
  /** Its options over the common ones (config.ts resolved those); throws ConfigError. */
  resolve(common: ResolvedBroker, given: BrokerOptions | undefined): B;
  open(options: BrokerOpenOptions<B>): BrokerLink;
  operator(location: BrokerLocation): DeadLetterOperator;
}

/** Every broker backend (a function: the backends' modules import this one's types). */
function backends(): readonly BrokerBackend[] {
  return [amqpBackend, kafkaBackend];
}

/** The backend serving this URL's scheme; a ConfigError (never echoing the URL) for any other. */
export function brokerBackendFor(url: string): BrokerBackend {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url.trim())?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new ConfigError('EVENTS_BROKER_URL is not a valid URL (expected e.g. amqp://user:pass@host:5672/vhost or kafka://host1:9092,host2:9092)', {
      variable: 'EVENTS_BROKER_URL',
    });
  }
  const backend = backends().find((b) => b.schemes.includes(scheme));
  if (!backend) {
    const known = backends().flatMap((b) => b.schemes.map((s) => `${s}://`));
    throw new ConfigError(`EVENTS_BROKER_URL must be an ${known.slice(0, -1).join(', ')} or ${known.at(-1)!} URL, not ${scheme}://…`, {
      variable: 'EVENTS_BROKER_URL',
    });
  }
  return backend;
}

export function openBroker(options: BrokerOpenOptions): BrokerLink {
  return brokerBackendFor(options.broker.url).open(options);
}

/**
 * The dead-letter queues (RabbitMQ) or topics (Kafka) of a broker, behind the operator seam: the
 * backend serving the URL's scheme answers. Without `service`, every service's under the prefix.
 */
export function openBrokerOperator(location: BrokerLocation): DeadLetterOperator {
  if (typeof location.broker !== 'string' || location.broker.trim() === '') {
    throw new ConfigError('no broker given: set EVENTS_BROKER_URL or pass broker (an amqp://… or kafka://… URL)', { variable: 'EVENTS_BROKER_URL' });
  }
  const { service } = location;
  if (service !== undefined && (typeof service !== 'string' || service.trim() === '')) {
    throw new ConfigError('which service? pass its name (the service whose dead letters to see), or none for every service', {
      variable: 'EVENTS_SERVICE_NAME',
    });
  }
  return brokerBackendFor(location.broker).operator(location);
}
