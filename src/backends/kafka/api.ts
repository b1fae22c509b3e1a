/**
 * The part of the KafkaJS API the library uses, declared here so that the public types need no
 * Kafka package: a kafkajs `Kafka` instance fits, and so does the KafkaJS-compatible API of
 * `@confluentinc/kafka-javascript` (its `KafkaJS.Kafka` class).
 */

export type KafkaHeaderValue = Buffer | string | undefined;

export interface KafkaOutgoingMessage {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, Buffer | string>;
}

export interface KafkaProducerLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  send(record: { topic: string; acks?: number; timeout?: number; messages: KafkaOutgoingMessage[] }): Promise<unknown>;
  /** Records to several topics in one call (one request per broker); without it, one `send` per topic. */
  sendBatch?(batch: { acks?: number; timeout?: number; topicMessages: Array<{ topic: string; messages: KafkaOutgoingMessage[] }> }): Promise<unknown>;
}

export interface KafkaIncomingMessage {
  key: Buffer | null;
  value: Buffer | null;
  offset: string;
  timestamp: string;
  headers?: Record<string, KafkaHeaderValue | KafkaHeaderValue[]>;
}

export interface KafkaBatchPayload {
  batch: { topic: string; partition: number; messages: KafkaIncomingMessage[] };
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

export interface KafkaTopicPartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

export interface KafkaConsumerLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  subscribe(subscription: { topics: string[]; fromBeginning?: boolean }): Promise<void>;
  run(config: {
    autoCommit?: boolean;
    eachBatchAutoResolve?: boolean;
    partitionsConsumedConcurrently?: number;
    eachBatch: (payload: KafkaBatchPayload) => Promise<void>;
  }): Promise<void>;
  commitOffsets(offsets: KafkaTopicPartitionOffset[]): Promise<void>;
  stop(): Promise<void>;
  on(event: string, listener: (...args: never[]) => void): unknown;
  events: Record<string, string>;
}

export interface KafkaAdminLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  createTopics(options: { topics: Array<{ topic: string; numPartitions?: number }>; waitForLeaders?: boolean; timeout?: number }): Promise<boolean>;
  fetchOffsets(options: { groupId: string; topics: string[] }): Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>>;
  fetchTopicOffsets(topic: string): Promise<Array<{ partition: number; offset: string; high: string; low: string }>>;
  /** Used by the dead-letter operator only, which brings its own kafkajs client. */
  listTopics?(): Promise<string[]>;
}

export interface KafkaClientLike {
  producer(config?: Record<string, unknown>): KafkaProducerLike;
  consumer(config: { groupId: string } & Record<string, unknown>): KafkaConsumerLike;
  admin(config?: Record<string, unknown>): KafkaAdminLike;
}
