import type { Logger } from 'winston';
import type { ResolvedBroker } from '../config.js';
import type { ReceivePipeline } from '../receive/pipeline.js';
import { AmqpTransport } from './amqp/transport.js';
import { KafkaTransport } from './kafka/transport.js';
import type { Transport } from '../send/transport.js';
import { AmqpConnection } from './amqp/connection.js';
import { AmqpConsumer } from './amqp/consumer.js';
import { KafkaConsumer } from './kafka/consumer.js';
import { KafkaLink } from './kafka/link.js';

/** This service's consumer on a broker. */
export interface BrokerConsumer {
  /** Starts consuming (once); resolves when the broker has registered it. */
  start(): Promise<void>;
  /** Stops taking messages and waits (until `deadline`, ms since epoch) for those in hand. */
  stop(deadline: number): Promise<void>;
}

export interface BrokerConsumerOptions {
  /** The bus's receive pipeline: the consumer calls it without the timestamp window and settles each message by its verdict. */
  pipeline: ReceivePipeline;
  service: string;
  concurrency: number;
}

/** A bus's link to its broker (RabbitMQ or Kafka, by the URL's scheme): its transport, its consumer, one connection. */
export interface BrokerLink {
  readonly transport: Transport;
  consumer(options: BrokerConsumerOptions): BrokerConsumer;
  /** Closes the connection (after the consumer stopped and the transport closed). */
  close(): Promise<void>;
}

export function openBroker(broker: ResolvedBroker, logger: Logger, name: string, timeoutMs: number): BrokerLink {
  if (broker.kind === 'kafka') {
    const link = new KafkaLink({ broker, logger, name, timeoutMs });
    return {
      transport: new KafkaTransport({ link, logger, prefix: broker.prefix }),
      consumer: (o) => new KafkaConsumer({ ...o, link, broker, logger }),
      close: () => link.close(),
    };
  }
  const connection = new AmqpConnection({ broker, logger, name, timeoutMs });
  return {
    transport: new AmqpTransport({ connection, logger, prefix: broker.prefix, deliveryLimit: broker.deliveryLimit, timeoutMs }),
    consumer: (o) => new AmqpConsumer({ ...o, connection, broker, logger }),
    close: () => connection.close(),
  };
}
