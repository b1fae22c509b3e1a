import { kafkaBrokersOf } from '../../config.js';
import { DEFAULTS } from '../../defaults.js';
import { ConfigError } from '../../errors/index.js';
import type { BrokerAdminOptions, BrokerDeadLetter, BrokerReplaySelection } from '../amqp/dead-letters.js';
import type { KafkaClientLike, KafkaIncomingMessage } from './api.js';
import { loadKafkajs } from './client.js';
import { headerText } from './envelope.js';
import { deadLetterTopic, KAFKA_HEADERS, serviceTopic } from './topics.js';

/**
 * Dead letters on Kafka: the records of `<prefix><service>.dlq`, read from the start by a
 * throwaway consumer group (nothing committed for the service). A topic cannot drop a record, so a
 * replay writes the event back to the service's topic and then a marker record (no value, header
 * `events-replayed`, same key) to the `.dlq`: listing leaves out what a later marker replayed.
 */

interface Letter {
  message: KafkaIncomingMessage;
  letter: BrokerDeadLetter;
}

export async function listKafkaDeadLetters(options: BrokerAdminOptions): Promise<BrokerDeadLetter[]> {
  return (await readLetters(clientFor(options), options)).map((l) => l.letter);
}

export async function replayKafkaDeadLetters(options: BrokerAdminOptions, selection: BrokerReplaySelection): Promise<number> {
  const client = clientFor(options);
  const letters = await readLetters(client, options);
  const wanted = selection === 'all' ? undefined : new Set(selection.eventIds);
  const prefix = options.prefix ?? DEFAULTS.broker.prefix;
  const producer = client.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  let count = 0;
  try {
    for (const { message, letter } of letters) {
      if (wanted && (letter.eventId === undefined || !wanted.has(letter.eventId))) continue;
      const headers: Record<string, Buffer | string> = {};
      for (const [name, value] of Object.entries(message.headers ?? {})) {
        const first = Array.isArray(value) ? value[0] : value;
        if (first !== undefined && !name.startsWith('events-')) headers[name] = first;
      }
      await producer.send({ topic: serviceTopic(prefix, options.service), acks: -1, messages: [{ key: message.key, value: message.value, headers }] });
      await producer.send({
        topic: deadLetterTopic(prefix, options.service),
        acks: -1,
        messages: [{ key: message.key, value: null, headers: { [KAFKA_HEADERS.replayed]: letter.eventId ?? '' } }],
      });
      count += 1;
    }
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
  return count;
}

function clientFor(options: BrokerAdminOptions): KafkaClientLike {
  if (typeof options.service !== 'string' || options.service.trim() === '') {
    throw new ConfigError('which service? pass its name (the service whose topic the dead letters came from)', { variable: 'EVENTS_SERVICE_NAME' });
  }
  const brokers = kafkaBrokersOf(options.broker)!;
  const kafkajs = loadKafkajs();
  return new kafkajs.Kafka({
    clientId: 'events-library admin',
    brokers,
    ssl: options.broker.toLowerCase().startsWith('kafkas://'),
    logLevel: kafkajs.logLevel.NOTHING,
    retry: { retries: 2 },
  });
}

/** Every dead letter not replayed since, oldest first per partition. */
async function readLetters(client: KafkaClientLike, options: BrokerAdminOptions): Promise<Letter[]> {
  const prefix = options.prefix ?? DEFAULTS.broker.prefix;
  const topic = deadLetterTopic(prefix, options.service);
  const admin = client.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic).catch((cause: unknown) => {
      throw new ConfigError(`the cluster has no dead-letter topic "${topic}": check the service name and the prefix`, { variable: 'EVENTS_BROKER_PREFIX', cause });
    });
    ends = new Map(offsets.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  const limit = options.limit ?? 10_000;
  const seen: Array<{ partition: number; message: KafkaIncomingMessage }> = [];
  if (ends.size > 0) {
    const consumer = client.consumer({ groupId: `events-library-admin-${process.pid}-${Date.now()}`, maxWaitTimeInMs: 200 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const pending = new Set(ends.keys());
      let done: () => void = () => undefined;
      const finished = new Promise<void>((resolve) => (done = resolve));
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: true,
        eachBatch: async ({ batch }) => {
          for (const message of batch.messages) {
            if (BigInt(message.offset) < (ends.get(batch.partition) ?? 0n)) seen.push({ partition: batch.partition, message });
            if (BigInt(message.offset) + 1n >= (ends.get(batch.partition) ?? 0n)) pending.delete(batch.partition);
          }
          if (pending.size === 0) done();
        },
      });
      await finished;
    } finally {
      await consumer.disconnect().catch(() => undefined);
    }
  }
  const letters = new Map<string, Letter>();
  const order: Letter[] = [];
  for (const { message } of seen) {
    const replayed = headerText(message, KAFKA_HEADERS.replayed);
    if (replayed !== undefined && message.value === null) {
      letters.delete(replayed);
      continue;
    }
    const letter = describe(message, serviceTopic(prefix, options.service));
    const entry = { message, letter };
    letters.set(letter.eventId ?? `${order.length}`, entry);
    order.push(entry);
  }
  return order.filter((l) => letters.get(l.letter.eventId ?? '') === l).slice(0, limit);
}

function describe(message: KafkaIncomingMessage, queue: string): BrokerDeadLetter {
  const deadAt = Date.parse(headerText(message, KAFKA_HEADERS.deadAt) ?? '');
  const attempts = Number(headerText(message, KAFKA_HEADERS.attempts));
  return {
    eventId: headerText(message, 'ce_id'),
    type: headerText(message, 'ce_type'),
    source: headerText(message, 'ce_source'),
    queue,
    reason: headerText(message, KAFKA_HEADERS.deadReason),
    error: headerText(message, KAFKA_HEADERS.deadError),
    deadAt: Number.isNaN(deadAt) ? undefined : deadAt,
    attempts: Number.isFinite(attempts) ? attempts : undefined,
    body: message.value?.toString('utf8') ?? '',
  };
}
