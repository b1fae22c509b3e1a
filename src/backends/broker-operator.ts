import { ConfigError } from '../errors/index.js';
import type { DeadLetterOperator } from '../operate/operator.js';
import { type BrokerLocation, brokerBackendFor } from './broker-link.js';

export type { BrokerLocation } from './broker-link.js';

/**
 * The dead-letter queues (RabbitMQ) or topics (Kafka) of a broker, behind the operator seam: the
 * backend serving the URL's scheme answers (see `amqp/dead-letters.ts`, `kafka/dead-letters.ts`).
 * Without `service`, every service's dead letters under the prefix.
 */
export function openBrokerOperator(location: BrokerLocation): DeadLetterOperator {
  const { service } = location;
  if (service !== undefined && (typeof service !== 'string' || service.trim() === '')) {
    throw new ConfigError('which service? pass its name (the service whose dead letters to see), or none for every service', {
      variable: 'EVENTS_SERVICE_NAME',
    });
  }
  return brokerBackendFor(location.broker).operator(location);
}
