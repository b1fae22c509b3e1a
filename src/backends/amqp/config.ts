import type { BrokerOptions, ResolvedBroker } from '../../config.js';
import { positive } from '../../config.js';
import { DEFAULTS } from '../../defaults.js';
import { ConfigError } from '../../errors/index.js';

/** An `amqp://` (or `amqps://`) broker, resolved. */
export interface AmqpBroker extends ResolvedBroker {
  kind: 'amqp';
  /** `x-delivery-limit` of services' queues. */
  deliveryLimit: number;
  /** Unacked messages a consumer holds at once. */
  prefetch: number;
}

/** The RabbitMQ part of the broker options, over the common part config.ts resolved. */
export function resolveAmqpBroker(common: ResolvedBroker, given: BrokerOptions | undefined): AmqpBroker {
  try {
    new URL(common.url);
  } catch (cause) {
    throw new ConfigError('EVENTS_BROKER_URL is not a valid amqp:// URL (expected e.g. amqp://user:pass@host:5672/vhost)', {
      variable: 'EVENTS_BROKER_URL',
      cause,
    });
  }
  const prefetch = positive('broker.prefetch', given?.prefetch ?? DEFAULTS.broker.prefetch);
  return { ...common, kind: 'amqp', deliveryLimit: DEFAULTS.broker.deliveryLimit, prefetch };
}
