import type { ConfirmChannel, GetMessage } from 'amqplib';
import { DEFAULTS } from '../../defaults.js';
import { ConfigError } from '../../errors/index.js';
import { loadAmqplib } from './connection.js';
import { listKafkaDeadLetters, replayKafkaDeadLetters } from '../kafka/dead-letters.js';
import { Publisher } from './publisher.js';
import { deadLetterQueueName, HEADERS, queueName } from './topology.js';

/** Which service's dead-letter queue, on which broker. */
export interface BrokerAdminOptions {
  /** The broker URL. @example 'amqp://guest:guest@127.0.0.1:5672' */
  broker: string;
  /** The service whose queue's dead letters these are (the receiving service). */
  service: string;
  /** The queue name prefix the service runs with (`EVENTS_BROKER_PREFIX`). @default '' */
  prefix?: string;
  /** Dead letters read at most. @default 10000 */
  limit?: number;
}

/** A dead letter in a service's `<queue>.dlq`. */
export interface BrokerDeadLetter {
  /** The CloudEvent id (the message id). */
  eventId: string | undefined;
  type: string | undefined;
  source: string | undefined;
  /** The receiving service's queue it came from. */
  queue: string;
  /** Short reason: `handler_failed`, `rejected_by_handler`, `invalid_signature`, `malformed_json`, … */
  reason: string | undefined;
  error: string | undefined;
  /** ms since epoch. */
  deadAt: number | undefined;
  /** Handler attempts made. */
  attempts: number | undefined;
  /** The message body (the signed structured CloudEvent). */
  body: string;
}

/** Event ids to replay, or every dead letter. */
export type BrokerReplaySelection = 'all' | { eventIds: readonly string[] };

const LIMIT = 10_000;

/** Kafka (`kafka://…`, `kafkas://…`): the same commands on the service's `.dlq` topic (see kafka-admin.ts). */
function isKafka(url: string): boolean {
  return /^kafkas?:\/\//i.test(url.trim());
}

/**
 * Lists the dead letters of a service's queue on the broker (oldest first), leaving them there:
 * they are fetched unacknowledged and returned to the queue when the channel closes.
 *
 * @example await listBrokerDeadLetters({ broker: process.env.EVENTS_BROKER_URL!, service: 'payments' })
 */
export async function listBrokerDeadLetters(options: BrokerAdminOptions): Promise<BrokerDeadLetter[]> {
  if (isKafka(options.broker)) return listKafkaDeadLetters(options);
  return withDeadLetterQueue(options, async (channel, dlq) => {
    const letters: BrokerDeadLetter[] = [];
    for (const message of await fetchAll(channel, dlq, options.limit ?? LIMIT)) letters.push(describe(message, options));
    return letters;
  });
}

/**
 * Moves dead letters back to the service's queue (with their attempt count reset), where its
 * running instances consume them; returns how many. Each is republished, confirmed by the broker,
 * then removed from the dead-letter queue. The signature still verifies: broker receipt has no
 * timestamp window.
 *
 * @example await replayBrokerDeadLetters({ broker, service: 'payments' }, { eventIds: ['5c1f…'] })
 */
export async function replayBrokerDeadLetters(options: BrokerAdminOptions, selection: BrokerReplaySelection = 'all'): Promise<number> {
  if (isKafka(options.broker)) return replayKafkaDeadLetters(options, selection);
  const queue = queueName(options.prefix ?? DEFAULTS.broker.prefix, options.service);
  return withDeadLetterQueue(options, async (channel, dlq) => {
    const publisher = new Publisher(channel);
    const wanted = selection === 'all' ? undefined : new Set(selection.eventIds);
    let count = 0;
    for (const message of await fetchAll(channel, dlq, options.limit ?? LIMIT)) {
      const eventId = message.properties.messageId as string | undefined;
      if (wanted && (eventId === undefined || !wanted.has(eventId))) continue;
      const headers: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(message.properties.headers ?? {})) {
        if (!name.startsWith('x-') && !name.startsWith('events-')) headers[name] = value;
      }
      const { contentType, messageId, type, appId, timestamp } = message.properties;
      const outcome = await publisher.publish(queue, message.content, { contentType, messageId, type, appId, timestamp, headers });
      if (outcome === 'returned') throw new Error(`the broker has no queue "${queue}": has the service ever run with this prefix?`);
      channel.ack(message);
      count += 1;
    }
    return count;
  });
}

async function withDeadLetterQueue<T>(options: BrokerAdminOptions, run: (channel: ConfirmChannel, dlq: string) => Promise<T>): Promise<T> {
  if (typeof options.service !== 'string' || options.service.trim() === '') {
    throw new ConfigError('which service? pass its name (the service whose queue the dead letters came from)', {
      variable: 'EVENTS_SERVICE_NAME',
    });
  }
  const amqp = loadAmqplib();
  const dlq = deadLetterQueueName(queueName(options.prefix ?? DEFAULTS.broker.prefix, options.service));
  const connection = await amqp.connect(options.broker, { clientProperties: { connection_name: 'events-library admin' } });
  try {
    connection.on('error', () => undefined);
    const probe = await connection.createChannel();
    probe.on('error', () => undefined);
    try {
      await probe.checkQueue(dlq);
    } catch (cause) {
      throw new ConfigError(`the broker has no dead-letter queue "${dlq}": check the service name and the prefix`, {
        variable: 'EVENTS_BROKER_PREFIX',
        cause,
      });
    }
    await probe.close().catch(() => undefined);
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => undefined);
    const result = await run(channel, dlq);
    // Close the channel first: acks sent just before a connection closes can be lost by a quorum
    // queue. The channel's close also returns what was fetched and not acked to the queue.
    await channel.close();
    return result;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Every message of `queue` (up to `limit`), fetched without acknowledging. */
async function fetchAll(channel: ConfirmChannel, queue: string, limit: number): Promise<GetMessage[]> {
  const messages: GetMessage[] = [];
  while (messages.length < limit) {
    const message = await channel.get(queue, { noAck: false });
    if (message === false) break;
    messages.push(message);
  }
  return messages;
}

function describe(message: GetMessage, options: BrokerAdminOptions): BrokerDeadLetter {
  const headers = message.properties.headers ?? {};
  const text = (name: string): string | undefined => {
    const value: unknown = headers[name];
    return typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
  };
  const deadAt = Date.parse(text(HEADERS.deadAt) ?? '');
  const attempts = Number(headers[HEADERS.attempts]);
  return {
    eventId: message.properties.messageId as string | undefined,
    type: message.properties.type as string | undefined,
    source: message.properties.appId as string | undefined,
    queue: text(HEADERS.deadQueue) ?? queueName(options.prefix ?? DEFAULTS.broker.prefix, options.service),
    // Dead-lettered by the broker itself (x-delivery-limit): its own reason, e.g. `delivery_limit`.
    reason: text(HEADERS.deadReason) ?? text('x-first-death-reason'),
    error: text(HEADERS.deadError),
    deadAt: Number.isNaN(deadAt) ? undefined : deadAt,
    attempts: Number.isFinite(attempts) ? attempts : undefined,
    body: message.content.toString('utf8'),
  };
}
