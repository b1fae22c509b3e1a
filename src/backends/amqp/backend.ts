import type { BrokerBackend } from '../broker-link.js';
import { type AmqpBroker, resolveAmqpBroker } from './config.js';
import { AmqpConnection } from './connection.js';
import { AmqpConsumer } from './consumer.js';
import { AmqpDeadLetters } from './dead-letters.js';
import { registerService } from './registry.js';
import { AmqpTransport } from './transport.js';

/** RabbitMQ (`amqp://`, `amqps://`): one connection per bus, shared by the transport and the consumer. */
export const amqpBackend: BrokerBackend<AmqpBroker> = {
  kind: 'amqp',
  schemes: ['amqp', 'amqps'],
  resolve: resolveAmqpBroker,
  open(options) {
    const { broker, logger, timeoutMs } = options;
    const connection = new AmqpConnection(options);
    return {
      transport: new AmqpTransport({ ...options, connection }),
      consumer(options) {
        // Before the consumer's own setup, on every connection: the operator finds the service by it.
        connection.onConnect((model) => registerService(model, broker.prefix, options.service, logger, timeoutMs));
        return new AmqpConsumer({ ...options, connection, broker, logger });
      },
      close: () => connection.close(),
    };
  },
  operator: (location) => new AmqpDeadLetters(location),
};
