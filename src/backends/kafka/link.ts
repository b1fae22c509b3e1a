import type { KafkaBroker } from './config.js';
import { DEFAULTS } from '../../defaults.js';
import type { BrokerOpenOptions } from '../broker-link.js';
import type { KafkaClientLike, KafkaOutgoingMessage, KafkaProducerLike } from './api.js';
import { kafkaClientFor } from './client.js';
import { ProduceQueue, type TopicMessages } from './produce-queue.js';
import { deadLetterTopic, serviceTopic } from './topics.js';

/**
 * One Kafka client for a bus: the producer shared by the transport and the consumer (dead letters),
 * connected on first use and dropped after a failed send (the next send connects again), and the
 * creation of a service's topics. Nothing waits here longer than the produce request in flight
 * (what is sent meanwhile goes in the next one): while the cluster is unreachable, sends fail and
 * the outbox keeps the events.
 */
export class KafkaLink {
  readonly client: KafkaClientLike;
  private producer: Promise<KafkaProducerLike> | undefined;
  private readonly created = new Map<string, Promise<void>>();
  private closed = false;
  private downSince: number | undefined;
  private readonly queue = new ProduceQueue({ produce: (topicMessages) => this.produce(topicMessages), maxBytes: DEFAULTS.broker.kafka.maxRequestBytes });

  constructor(readonly o: BrokerOpenOptions<KafkaBroker>) {
    this.client = kafkaClientFor(o.broker, o.logger, o.name, o.timeoutMs);
  }

  /**
   * Sends records to `topic` with acks = all; throws when the cluster did not take them all. The
   * records sent while a request is in flight go together in the next one (produce-queue.ts).
   */
  send(topic: string, messages: KafkaOutgoingMessage[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the bus is closing'));
    return this.queue.send(topic, messages);
  }

  /** One produce request, acks = all, through the producer (connected on first use, dropped after a failure). */
  private async produce(topicMessages: TopicMessages[]): Promise<void> {
    if (this.closed) throw new Error('the bus is closing');
    const opening = (this.producer ??= this.connectProducer());
    try {
      const producer = await opening;
      await this.ensureTopics(topicMessages.map((t) => t.topic));
      const { timeoutMs: timeout } = this.o;
      if (topicMessages.length === 1) await producer.send({ topic: topicMessages[0]!.topic, acks: -1, timeout, messages: topicMessages[0]!.messages });
      else if (producer.sendBatch) await producer.sendBatch({ acks: -1, timeout, topicMessages });
      else await Promise.all(topicMessages.map(({ topic, messages }) => producer.send({ topic, acks: -1, timeout, messages })));
      this.up();
    } catch (error) {
      if (this.producer === opening) {
        this.producer = undefined;
        void opening.then((p) => p.disconnect()).catch(() => undefined);
      }
      this.down(error as Error);
      throw error;
    }
  }

  /**
   * Creates a service's topic and its dead-letter topic (and `others`) when `createTopics` is on. A cluster that
   * refuses (librdkafka's mock cluster has no controller; a cluster where the user may not create)
   * is tolerated: auto-creation, or the topics provisioned, are then relied on.
   */
  async ensureService(service: string, others: readonly string[]): Promise<void> {
    const { prefix } = this.o.broker;
    await this.ensureTopics([serviceTopic(prefix, service), deadLetterTopic(prefix, service), ...others]);
  }

  private async ensureTopics(topics: string[]): Promise<void> {
    if (!this.o.broker.kafka.createTopics) return;
    const missing = topics.filter((t) => !this.created.has(t));
    if (missing.length === 0) {
      await Promise.all(topics.map((t) => this.created.get(t)));
      return;
    }
    const creating = (async () => {
      const admin = this.client.admin({ retry: { retries: 0 } });
      try {
        await admin.connect();
        await admin.createTopics({
          topics: missing.map((topic) => ({ topic, numPartitions: this.o.broker.kafka.partitions })),
          waitForLeaders: true,
          timeout: this.o.timeoutMs,
        });
      } catch (error) {
        if (this.o.logger.isDebugEnabled()) {
          this.o.logger.debug('kafka topics not created (relying on auto-creation)', { topics: missing, error: (error as Error)?.message });
        }
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    })();
    for (const topic of missing) this.created.set(topic, creating);
    await creating;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue.failPending(new Error('the bus is closing'));
    const producer = this.producer;
    this.producer = undefined;
    await producer?.then((p) => p.disconnect()).catch(() => undefined);
  }

  private async connectProducer(): Promise<KafkaProducerLike> {
    const producer = this.client.producer({
      allowAutoTopicCreation: this.o.broker.kafka.createTopics,
      // librdkafka's mock cluster refuses idempotence with kafkajs; per-key order holds with one
      // request in flight (the queue sends one at a time, and this keeps the client's retries in order).
      idempotent: false,
      maxInFlightRequests: 1,
      retry: { retries: 2, initialRetryTime: this.o.broker.reconnectBaseDelayMs, maxRetryTime: this.o.broker.reconnectMaxDelayMs },
    });
    await producer.connect();
    return producer;
  }

  private up(): void {
    if (this.downSince === undefined) return;
    this.o.logger.info('kafka cluster reachable again', { downMs: Date.now() - this.downSince });
    this.downSince = undefined;
  }

  private down(error: Error): void {
    if (this.downSince !== undefined || this.closed) return;
    this.downSince = Date.now();
    this.o.logger.warn('kafka cluster unreachable; the outbox keeps the events', { error: error?.message ?? String(error) });
  }
}

/** Consumer group settings from the defaults. */
export const KAFKA_GROUP = {
  heartbeatInterval: DEFAULTS.broker.kafka.heartbeatIntervalMs,
  maxWaitTimeInMs: DEFAULTS.broker.kafka.fetchMaxWaitMs,
};
