import type { BrokerBackend } from '../broker-link.js';
import { type KafkaBroker, resolveKafkaBroker } from './config.js';
import { KafkaConsumer } from './consumer.js';
import { KafkaDeadLetters } from './dead-letters.js';
import { KafkaLink } from './link.js';
import { KafkaTransport } from './transport.js';

/** Kafka (`kafka://`, `kafkas://`): one client per bus, its producer shared by the transport and the consumer. */
export const kafkaBackend: BrokerBackend<KafkaBroker> = {
  kind: 'kafka',
  schemes: ['kafka', 'kafkas'],
  resolve: resolveKafkaBroker,
  open(options) {
    const link = new KafkaLink(options);
    return {
      transport: new KafkaTransport(link),
      consumer: (consumer) => new KafkaConsumer({ ...consumer, ...options, link }),
      close: () => link.close(),
    };
  },
  operator: (location) => new KafkaDeadLetters(location),
};
