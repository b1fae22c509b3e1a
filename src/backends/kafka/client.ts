import type { Logger } from 'winston';
import type { KafkaBroker } from './config.js';
import { loadPeer } from '../../optional-peer.js';
import type { KafkaClientLike } from './api.js';

interface KafkajsModule {
  Kafka: new (config: Record<string, unknown>) => KafkaClientLike;
  logLevel: { NOTHING: number; ERROR: number; WARN: number; INFO: number; DEBUG: number };
}

/** Loads kafkajs, the optional peer dependency, only when a Kafka broker is configured without a client. */
export function loadKafkajs(): KafkajsModule {
  const message = 'EVENTS_BROKER_URL is a kafka:// URL, but the optional peer dependency kafkajs is not installed: run npm install kafkajs@^2 (or pass broker.kafka.client)';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return loadPeer(() => require('kafkajs'), 'EVENTS_BROKER_URL', message);
}

/**
 * The client: the user's own (`broker.kafka.client`), or a kafkajs client for the URL's hosts with
 * the given TLS and SASL settings. kafkajs' own log lines go to the bus's logger at debug: the
 * library logs outages itself, once each.
 */
export function kafkaClientFor(broker: KafkaBroker, logger: Logger, clientId: string, timeoutMs: number): KafkaClientLike {
  if (broker.kafka.client) return broker.kafka.client;
  const kafkajs = loadKafkajs();
  return new kafkajs.Kafka({
    clientId,
    brokers: broker.kafka.brokers,
    ssl: broker.kafka.ssl,
    ...(broker.kafka.sasl ? { sasl: broker.kafka.sasl } : {}),
    connectionTimeout: timeoutMs,
    requestTimeout: Math.max(timeoutMs, 5_000),
    retry: { initialRetryTime: broker.reconnectBaseDelayMs, maxRetryTime: broker.reconnectMaxDelayMs, retries: 3 },
    logLevel: kafkajs.logLevel.ERROR,
    logCreator: () => (entry: { namespace: string; log: { message: string } }) => {
      if (logger.isDebugEnabled()) logger.debug('kafka client', { namespace: entry.namespace, message: entry.log.message });
    },
  });
}
