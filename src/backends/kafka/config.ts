import { type BrokerOptions, givenOrDefault, type ResolvedBroker } from '../../config.js';
import { DEFAULTS } from '../../defaults.js';
import { ConfigError } from '../../errors/index.js';
import type { KafkaClientLike } from './api.js';

/** Kafka settings (see README "Kafka"). SSL and SASL pass through to the client as given. */
export interface KafkaOptions {
  /**
   * Your own client with the KafkaJS API (`new Kafka({ … })` of kafkajs, or the KafkaJS-compatible
   * API of `@confluentinc/kafka-javascript`); then `ssl`, `sasl` and the URL's hosts are not used.
   * @default a kafkajs client built from the URL (optional peer `kafkajs`)
   */
  client?: KafkaClientLike;
  /** TLS, passed to kafkajs as is (`true`, or tls.connect options). `kafkas://` sets it to `true`. @default false */
  ssl?: boolean | Record<string, unknown>;
  /** SASL, passed to kafkajs as is, e.g. `{ mechanism: 'scram-sha-512', username, password }`. @default none */
  sasl?: Record<string, unknown>;
  /**
   * Create missing topics (a service's topic and its `.dlq`) at setup, and let the cluster
   * auto-create them; `false` for production clusters where topics are provisioned. @default true
   */
  createTopics?: boolean;
  /** Partitions of a topic the library creates. @default 6 */
  partitions?: number;
  /** Consumer group session timeout: an instance that died loses its partitions to the others after this long. @default 10000 */
  sessionTimeoutMs?: number;
}

/** A `kafka://` (or `kafkas://`) broker, resolved. */
export interface KafkaBroker extends ResolvedBroker {
  kind: 'kafka';
  /** Bootstrap brokers (`host:port`) from the URL, and the settings. */
  kafka: {
    brokers: string[];
    client?: KafkaClientLike;
    ssl: boolean | Record<string, unknown>;
    sasl?: Record<string, unknown>;
    createTopics: boolean;
    partitions: number;
    sessionTimeoutMs: number;
  };
}

/** The Kafka part of the broker options (`broker.kafka.*`), over the common part config.ts resolved. */
export function resolveKafkaBroker(common: ResolvedBroker, given: BrokerOptions | undefined): KafkaBroker {
  const d = DEFAULTS.broker.kafka;
  const k = given?.kafka;
  return {
    ...common,
    kind: 'kafka',
    kafka: {
      brokers: kafkaBrokersOf(common.url),
      ...(k?.client !== undefined ? { client: k.client } : {}),
      // kafkas:// takes the bus's `tls` (as read now: no rotation); broker.kafka.ssl wins.
      ssl: k?.ssl ?? (common.url.trim().toLowerCase().startsWith('kafkas://') && ((common.tls?.current() as Record<string, unknown> | undefined) ?? true)),
      ...(k?.sasl !== undefined ? { sasl: k.sasl } : {}),
      createTopics: k?.createTopics ?? d.createTopics,
      ...givenOrDefault('broker.kafka.', d, k, ['partitions', 'sessionTimeoutMs']),
    },
  };
}

/** `kafka://h1:9092,h2:9092` (or `kafkas://`, TLS) → its `host:port` list. */
export function kafkaBrokersOf(url: string): string[] {
  const hosts = url.trim().replace(/^kafkas?:\/\//i, '').replace(/\/+$/, '').split(',').map((h) => h.trim());
  if (hosts.length === 0 || hosts.some((h) => !/^[A-Za-z0-9.\-_]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/.test(h))) {
    throw new ConfigError('EVENTS_BROKER_URL: a Kafka URL lists host:port pairs, e.g. kafka://host1:9092,host2:9092', {
      variable: 'EVENTS_BROKER_URL',
    });
  }
  return hosts;
}
