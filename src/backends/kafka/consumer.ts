import type { Logger } from 'winston';
import type { KafkaBroker } from './config.js';
import { AvailabilityState } from '../../observe/availability.js';
import { InFlight } from '../../receive/in-flight.js';
import type { BrokerConsumerOptions } from '../broker-link.js';
import type { Verdict } from '../../receive/verdict.js';
import { deadLetterLogFields, logClaims } from '../broker-common.js';
import { brokerStep } from '../broker-verdict.js';
import type { KafkaBatchPayload, KafkaConsumerLike, KafkaIncomingMessage, KafkaTopicPartitionOffset } from './api.js';
import { kafkaMessageOf, senderHeaders } from './envelope.js';
import { KAFKA_GROUP, type KafkaLink } from './link.js';
import { deadLetterTopic, KAFKA_HEADERS, serviceTopic, typeTopic } from './topics.js';

/** `concurrency`: partitions this instance works on at once. */
export interface KafkaConsumerOptions extends BrokerConsumerOptions {
  link: KafkaLink;
  logger: Logger;
  broker: KafkaBroker;
}

/** How one record ended: settled (commit past it), or left for a later read (not committed). */
type Outcome = 'settled' | 'left';

/** Records settled in a batch before their commit goes out without waiting for the batch's end. */
const COMMIT_EVERY = 100;

/**
 * Consumes this service's topic in the consumer group `<prefix><service>`, from the earliest
 * offset when the group is new. Records of one partition are handled one after the other, each
 * through the receive pipeline, and offsets are committed (for the records settled together, see
 * onBatch) only past verdicts settled as brokerStep says, so a later success never commits past an
 * earlier failure: a retry waits in place (heartbeats going on, other partitions going on), a dead
 * letter is written to `<topic>.dlq` with the reason (acks = all) before the commit. A partition
 * revoked by a rebalance, or a bus closing, stops its loop before the next record, commits past
 * what it settled and nothing for work not done: the record is read again by its next owner.
 */
export class KafkaConsumer {
  private consumer: KafkaConsumerLike | undefined;
  private started: Promise<void> | undefined;
  private stopping = false;
  private readonly inFlight = new InFlight();
  private markStopped!: () => void;
  private readonly stopped = new Promise<void>((resolve) => (this.markStopped = resolve));
  /** Resolves `joined`: once this instance joined its group, or at stop. */
  private markJoined!: () => void;
  private readonly joined = new Promise<void>((resolve) => (this.markJoined = resolve));
  /** Consuming from when this instance joins its group; down before, and from a failed start or a crash. */
  readonly availability = new AvailabilityState(true);

  constructor(private readonly o: KafkaConsumerOptions) {}

  /** The topic it consumes. */
  get name(): string {
    return serviceTopic(this.o.broker.prefix, this.o.service);
  }

  /** Starts consuming (once); resolves when this instance has joined its group. */
  start(): Promise<void> {
    this.started ??= (async () => {
      await this.runUntilUp();
      await this.joined;
    })();
    return this.started;
  }

  /** Stops taking records, waits (until `deadline`) for those in hand, then leaves the group. */
  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.markStopped();
    this.markJoined();
    await this.inFlight.settled(deadline);
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect().catch(() => undefined);
  }

  /**
   * Runs a consumer, retrying with backoff until one runs or the bus closes. The first failure is
   * a warning, the retries are debug, and the start after failures says so once (info).
   */
  private async runUntilUp(): Promise<void> {
    let failures = 0;
    const since = Date.now();
    while (!this.stopping) {
      try {
        await this.run();
        if (failures > 0) this.o.logger.info('kafka consumer started', { topic: this.name, downMs: Date.now() - since });
        return;
      } catch (error) {
        failures += 1;
        this.availability.down(error);
        const level = failures === 1 ? 'warn' : 'debug';
        if (this.o.logger.isLevelEnabled(level)) {
          this.o.logger.log(level, 'kafka consumer could not start; retrying', { topic: this.name, error: (error as Error)?.message ?? String(error) });
        }
        const consumer = this.consumer;
        this.consumer = undefined;
        await consumer?.disconnect().catch(() => undefined);
        await this.pause(Math.min(this.o.broker.reconnectMaxDelayMs, this.o.broker.reconnectBaseDelayMs * 2 ** failures));
      }
    }
  }

  /**
   * Replaces a consumer the client stopped for good. kafkajs restarts itself only after errors it
   * deems retriable; after any other (e.g. INVALID_REQUEST answered to a SyncGroup that reaches
   * librdkafka's mock coordinator after the leader's) it disconnects and stays stopped, and this
   * instance would take no records again while looking alive. The new consumer joins once the
   * session timeout has passed: kafkajs leaves the group only when the crashed one was consuming,
   * so the old member may still be there, and joining beside it would cost a second rebalance
   * (mid-stream) when it times out.
   */
  private async replaceCrashed(crashed: KafkaConsumerLike, error: string | undefined): Promise<void> {
    if (this.stopping || this.consumer !== crashed) return;
    this.o.logger.warn('kafka consumer stopped by an error its client does not retry; starting a new one from the last committed offset', {
      topic: this.name,
      error,
      inMs: this.o.broker.kafka.sessionTimeoutMs,
    });
    this.consumer = undefined;
    await crashed.disconnect().catch(() => undefined);
    await this.pause(this.o.broker.kafka.sessionTimeoutMs);
    await this.runUntilUp();
  }

  private async run(): Promise<void> {
    const { link, broker, service } = this.o;
    const subscribed = this.o.types().map((type) => typeTopic(broker.prefix, type));
    await link.ensureService(service, subscribed);
    // A bus closing meanwhile (stop() found no consumer to disconnect) must not leave one running.
    if (this.stopping) return;
    const consumer = link.client.consumer({
      groupId: serviceTopic(broker.prefix, service),
      allowAutoTopicCreation: broker.kafka.createTopics,
      sessionTimeout: broker.kafka.sessionTimeoutMs,
      heartbeatInterval: KAFKA_GROUP.heartbeatInterval,
      maxWaitTimeInMs: KAFKA_GROUP.maxWaitTimeInMs,
      retry: { initialRetryTime: broker.reconnectBaseDelayMs, maxRetryTime: broker.reconnectMaxDelayMs, retries: 1_000_000 },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN ?? 'consumer.group_join', (event: { payload?: { memberAssignment?: Record<string, number[]> } }) => {
      void this.pinStart(consumer, subscribed, event?.payload?.memberAssignment ?? {}).finally(() => {
        this.availability.up();
        this.markJoined();
      });
    });
    consumer.on(consumer.events.CRASH ?? 'consumer.crash', (event: { payload?: { error?: Error; restart?: boolean } }) => {
      const error = event?.payload?.error?.message;
      this.availability.down(error ?? 'the consumer crashed');
      if (event?.payload?.restart === false) {
        void this.replaceCrashed(consumer, error);
        return;
      }
      this.o.logger.warn('kafka consumer crashed; it restarts from the last committed offset', { topic: this.name, error });
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [this.name], fromBeginning: true });
    if (subscribed.length > 0) await consumer.subscribe({ topics: subscribed, fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(1, this.o.concurrency),
      // Tracked whole: a stop waits for the commit of what its records settled.
      eachBatch: (payload) => this.inFlight.track(this.onBatch(consumer, payload)),
    });
  }

  /**
   * A type's topic the group reads for the first time (no committed offset) starts at its end, as
   * kafkajs does: that end is committed at once, so what is emitted from now on waits for this
   * service even if it stops before reading anything (an uncommitted group would start at the end again).
   */
  private async pinStart(consumer: KafkaConsumerLike, topics: readonly string[], assignment: Record<string, number[]>): Promise<void> {
    const mine = topics.filter((topic) => (assignment[topic]?.length ?? 0) > 0);
    if (mine.length === 0 || this.stopping) return;
    const admin = this.o.link.client.admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      const fresh: KafkaTopicPartitionOffset[] = [];
      for (const { topic, partitions } of await admin.fetchOffsets({ groupId: this.name, topics: mine })) {
        const unset = partitions.filter((p) => Number(p.offset) < 0 && assignment[topic]!.includes(p.partition));
        if (unset.length === 0) continue;
        const ends = await admin.fetchTopicOffsets(topic);
        for (const { partition } of unset) fresh.push({ topic, partition, offset: ends.find((e) => e.partition === partition)?.high ?? '0' });
      }
      if (fresh.length > 0) await consumer.commitOffsets(fresh);
    } catch (error) {
      this.o.logger.warn('kafka: where a new subscription starts could not be committed; it starts at the end of its topic when next joined', {
        topics: mine,
        error: (error as Error)?.message ?? String(error),
      });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /**
   * Handles a fetched batch of one partition record by record, and commits past the records
   * settled together: at the end of the batch, every COMMIT_EVERY records, before a retry waits in
   * place, and when the group rebalances (the pipeline has recorded them in the inbox by then, so a
   * record handled and not committed, read again after a crash, is a duplicate there). One commit
   * round trip per batch rather than one per record.
   */
  private async onBatch(consumer: KafkaConsumerLike, payload: KafkaBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat } = payload;
    const owned = (): boolean => !this.stopping && payload.isRunning() && !payload.isStale();
    /** The last record settled and not committed yet. */
    let settled: string | undefined;
    let uncommitted = 0;
    /** Commits past `settled` while the partition is still this instance's (a closing bus commits too); false when refused. */
    const commit = async (): Promise<boolean> => {
      const last = settled;
      if (last === undefined) return true;
      settled = undefined;
      uncommitted = 0;
      if (!payload.isRunning() || payload.isStale()) return false;
      try {
        await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
      } catch (error) {
        // A rebalance took the partition: its next owner reads the records again (the inbox absorbs them).
        if (this.o.logger.isDebugEnabled()) this.o.logger.debug('kafka commit refused', { topic: batch.topic, error: (error as Error)?.message });
        return false;
      }
      resolveOffset(last);
      return true;
    };
    try {
      for (const message of batch.messages) {
        if (!owned()) break;
        const outcome = await this.handle(batch.topic, message, heartbeat, owned, commit);
        if (outcome === 'left') break;
        settled = message.offset;
        if (++uncommitted >= COMMIT_EVERY && !(await commit())) return;
        // Throttled by the client to the heartbeat interval; a rebalance is noticed here (it throws
        // REBALANCE_IN_PROGRESS, which the client handles by rejoining), not only after the batch.
        await heartbeat();
      }
    } finally {
      await commit();
    }
  }

  private async handle(
    topic: string,
    message: KafkaIncomingMessage,
    heartbeat: () => Promise<void>,
    owned: () => boolean,
    commitSettled: () => Promise<boolean>,
  ): Promise<Outcome> {
    for (let attempt = 1; ; attempt += 1) {
      let verdict: Verdict | Verdict[];
      try {
        verdict = await this.o.pipeline.receive(kafkaMessageOf(message), { checkTimestamp: false });
      } catch (error) {
        verdict = { kind: 'retry', reason: 'receiver_failed', message: (error as Error)?.message ?? String(error) };
      }
      const step = brokerStep(verdict, attempt, this.o.broker);
      switch (step.step) {
        case 'ack':
          return 'settled';
        case 'give-back':
          return 'left';
        case 'dead-letter':
          await this.deadLetter(message, step.reason, step.message, attempt);
          return 'settled';
        case 'retry':
          this.o.logger.warn('event will be retried from the broker', {
            ...logClaims(message.value, step.reason),
            topic,
            attempt,
            retryInMs: step.afterMs,
            reason: step.reason,
          });
          // What was settled before this record is not held back by its wait.
          if (!(await commitSettled())) return 'left';
          if (!(await this.wait(step.afterMs, heartbeat, owned))) return 'left';
      }
    }
  }

  /** Waits `ms`, heartbeating; false when the partition was revoked or the bus is closing meanwhile. */
  private async wait(ms: number, heartbeat: () => Promise<void>, owned: () => boolean): Promise<boolean> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (!owned()) return false;
      await this.pause(Math.min(KAFKA_GROUP.heartbeatInterval, until - Date.now()));
      // A refused heartbeat (a rebalance took the partition): leave the record to its next owner.
      if (!(await heartbeat().then(() => true, () => false))) return false;
    }
    return owned();
  }

  private async deadLetter(message: KafkaIncomingMessage, code: string, why: string, attempts: number): Promise<void> {
    const headers = Object.assign(senderHeaders(message), {
      [KAFKA_HEADERS.deadReason]: code,
      [KAFKA_HEADERS.deadError]: why.slice(0, 1000),
      [KAFKA_HEADERS.deadAt]: new Date().toISOString(),
      [KAFKA_HEADERS.attempts]: String(attempts),
    });
    const dlq = deadLetterTopic(this.o.broker.prefix, this.o.service);
    await this.o.link.send(dlq, [{ key: message.key, value: message.value, headers }]);
    this.o.logger.error('event dead-lettered', {
      ...deadLetterLogFields(message.value, code, this.o.service),
      topic: dlq,
      reason: code,
      error: why,
    });
  }

  /** Waits `ms`, or less when the consumer stops meanwhile. */
  private async pause(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, ms))), this.stopped]);
    clearTimeout(timer);
  }
}
