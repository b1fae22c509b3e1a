import { DEFAULTS } from '../../defaults.js';
import { ConfigError } from '../../errors/index.js';
import {
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterOperator,
  type DeadLetterSelection,
  type DeadLetterPage,
  matchesDeadLetter,
  type OutboxStats,
  type PageRequest,
  pageOf,
  selectionFilter,
  statsOf,
} from '../../operate/operator.js';
import { claimsOf, identityOfBody } from '../broker-common.js';
import type { BrokerLocation } from '../broker-link.js';
import type { KafkaClientLike, KafkaIncomingMessage, KafkaProducerLike } from './api.js';
import { loadKafkajs } from './client.js';
import { kafkaBrokersOf } from './config.js';
import { headerText, senderHeaders } from './envelope.js';
import { deadLetterTopic, KAFKA_HEADERS, serviceTopic } from './topics.js';

/**
 * Kafka's dead letters behind the operator seam: the records of `<prefix><service>.dlq` (one
 * service's, or every such topic the cluster lists under the prefix), read from the start by a
 * throwaway consumer group (nothing committed for the services) up to the end offsets taken first.
 *
 * A dead letter's id is `<topic>/<partition>/<offset>` of its record: the cluster assigns it. A
 * topic cannot drop a record, so `replay` writes the event back to the service's topic and then a
 * marker to the `.dlq` (no value, header `events-replayed: <id>`), and `discard` writes only a
 * marker (`events-discarded: <id>`); listing leaves out every letter a marker names. A sender
 * cannot forge a marker: the consumer drops `events-*` headers when it dead-letters a record.
 * (Markers of an older release name an event id instead: they hide the letters before them with
 * that event id.) Identity (event id, type, source) comes from the record's value, never from its
 * `ce_*` headers, and only as `unverified` unless its signature verified (claimsOf).
 */
export class KafkaDeadLetters implements DeadLetterOperator {
  private readonly prefix: string;
  private client: KafkaClientLike | undefined;
  private producer: Promise<KafkaProducerLike> | undefined;

  constructor(private readonly location: BrokerLocation) {
    this.prefix = location.prefix ?? DEFAULTS.broker.prefix;
  }

  async stats(): Promise<OutboxStats> {
    const topics = await this.topics();
    const dead = (await this.read(topics)).map(({ letter }) => ({ target: letter.target, dead: 1 }));
    return statsOf([...topics.map((topic) => ({ target: this.serviceOf(topic) })), ...dead]);
  }

  async deadLetters(filter?: DeadLetterFilter): Promise<DeadLetter[]> {
    const letters = (await this.read(await this.topics(filter?.target))).map((l) => l.letter);
    return letters.filter((l) => matchesDeadLetter(l, filter)).sort((a, b) => (a.deadAt ?? 0) - (b.deadAt ?? 0));
  }

  /** A page, from the topics read to their end (the markers that settle letters can be anywhere after them). */
  async deadLetterPage(filter: DeadLetterFilter | undefined, page: PageRequest): Promise<DeadLetterPage> {
    return pageOf((await this.read(await this.topics(filter?.target))).map((l) => l.letter), filter, page);
  }

  replay(selection: DeadLetterSelection): Promise<number> {
    return this.settle(selection, KAFKA_HEADERS.replayed, async (producer, { message, letter }) => {
      const replayed = { key: message.key, value: message.value, headers: senderHeaders(message) };
      await producer.send({ topic: serviceTopic(this.prefix, letter.target), acks: -1, messages: [replayed] });
    });
  }

  discard(selection: DeadLetterSelection): Promise<number> {
    return this.settle(selection, KAFKA_HEADERS.discarded, async () => undefined);
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.then((p) => p.disconnect()).catch(() => undefined);
  }

  /** Runs `action` on each selected letter, then writes its marker; resolves with how many. */
  private async settle(selection: DeadLetterSelection, marker: string, action: (producer: KafkaProducerLike, letter: Letter) => Promise<void>): Promise<number> {
    const filter = selectionFilter(selection);
    const selected = (await this.read(await this.topics(filter.target))).filter((l) => matchesDeadLetter(l.letter, filter));
    if (selected.length === 0) return 0;
    const producer = await this.openProducer();
    for (const letter of selected) {
      await action(producer, letter);
      await producer.send({ topic: letter.topic, acks: -1, messages: [{ key: letter.message.key, value: null, headers: { [marker]: letter.letter.id } }] });
    }
    return selected.length;
  }

  private serviceOf(topic: string): string {
    return topic.slice(this.prefix.length, -'.dlq'.length);
  }

  /** The given service's dead-letter topic, or every `<prefix>….dlq` topic of the cluster (only `target`'s, when given). */
  private async topics(target?: string): Promise<string[]> {
    const { service } = this.location;
    if (service !== undefined) return target === undefined || target === service ? [deadLetterTopic(this.prefix, service)] : [];
    if (target !== undefined) return [deadLetterTopic(this.prefix, target)];
    const admin = this.kafka().admin();
    await admin.connect();
    try {
      const topics = await admin.listTopics!();
      return topics.filter((t) => t.startsWith(this.prefix) && t.endsWith('.dlq') && t.length > this.prefix.length + 4).sort();
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Every dead letter of `topics` not replayed or discarded since. */
  private async read(topics: string[]): Promise<Letter[]> {
    if (topics.length === 0) return [];
    const ends = new Map<string, bigint>();
    const admin = this.kafka().admin();
    await admin.connect();
    try {
      for (const topic of topics) {
        const offsets = await admin.fetchTopicOffsets(topic).catch((cause: unknown) => {
          if (this.location.service === undefined) return [];
          throw new ConfigError(`the cluster has no dead-letter topic "${topic}": check the service name and the prefix`, { variable: 'EVENTS_BROKER_PREFIX', cause });
        });
        for (const o of offsets) if (BigInt(o.high) > BigInt(o.low)) ends.set(`${topic}/${o.partition}`, BigInt(o.high));
      }
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    const records: Array<{ topic: string; partition: number; message: KafkaIncomingMessage }> = [];
    if (ends.size > 0) {
      const consumer = this.kafka().consumer({ groupId: `events-library-operator-${process.pid}-${Date.now()}`, maxWaitTimeInMs: 200 });
      await consumer.connect();
      try {
        await consumer.subscribe({ topics: [...new Set([...ends.keys()].map((k) => k.slice(0, k.lastIndexOf('/'))))], fromBeginning: true });
        const pending = new Set(ends.keys());
        let done: () => void = () => undefined;
        const finished = new Promise<void>((resolve) => (done = resolve));
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: true,
          eachBatch: async ({ batch }) => {
            const key = `${batch.topic}/${batch.partition}`;
            const end = ends.get(key) ?? 0n;
            for (const message of batch.messages) {
              if (BigInt(message.offset) < end) records.push({ topic: batch.topic, partition: batch.partition, message });
              if (BigInt(message.offset) + 1n >= end) pending.delete(key);
            }
            if (pending.size === 0) done();
          },
        });
        await finished;
      } finally {
        await consumer.disconnect().catch(() => undefined);
      }
    }
    const settled = new Set<string>();
    let letters: Letter[] = [];
    for (const { topic, partition, message } of records) {
      const marked = headerText(message, KAFKA_HEADERS.replayed) ?? headerText(message, KAFKA_HEADERS.discarded);
      if (marked !== undefined && message.value === null) {
        if (/^.+\/\d+\/\d+$/.test(marked)) settled.add(marked);
        else letters = letters.filter((l) => l.letter.eventId !== marked); // an older release's marker: an event id
        continue;
      }
      letters.push({ topic, message, letter: describe(topic, partition, message, this.serviceOf(topic)) });
    }
    return letters.filter((l) => !settled.has(l.letter.id));
  }

  private kafka(): KafkaClientLike {
    if (!this.client) {
      const kafkajs = loadKafkajs();
      this.client = new kafkajs.Kafka({
        clientId: 'events-library operator',
        brokers: kafkaBrokersOf(this.location.broker),
        ssl: this.location.broker.trim().toLowerCase().startsWith('kafkas://'),
        logLevel: kafkajs.logLevel.NOTHING,
        retry: { retries: 2 },
      });
    }
    return this.client;
  }

  private openProducer(): Promise<KafkaProducerLike> {
    this.producer ??= (async () => {
      const producer = this.kafka().producer({ allowAutoTopicCreation: false });
      await producer.connect();
      return producer;
    })();
    return this.producer;
  }
}

interface Letter {
  /** The `.dlq` topic it is in. */
  topic: string;
  message: KafkaIncomingMessage;
  letter: DeadLetter;
}

function describe(topic: string, partition: number, message: KafkaIncomingMessage, service: string): DeadLetter {
  const body = message.value?.toString('utf8') ?? '';
  const identity = identityOfBody(body);
  const deadAt = Date.parse(headerText(message, KAFKA_HEADERS.deadAt) ?? '');
  const attempts = Number(headerText(message, KAFKA_HEADERS.attempts));
  // The consumer's reason (it drops a sender's events-* headers): says whether the signature verified.
  const reason = headerText(message, KAFKA_HEADERS.deadReason);
  return {
    id: `${topic}/${partition}/${message.offset}`,
    kept: 'queue',
    ...claimsOf(identity, reason),
    target: service,
    reason: reason ?? 'unknown',
    error: headerText(message, KAFKA_HEADERS.deadError),
    attempts: Number.isFinite(attempts) && attempts > 0 ? attempts : undefined,
    createdAt: identity.time,
    deadAt: Number.isNaN(deadAt) ? undefined : deadAt,
    body,
  };
}
