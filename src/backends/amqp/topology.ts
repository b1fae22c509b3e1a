/**
 * The RabbitMQ topology, built in this one place: a queue declared twice with different arguments
 * closes the channel (PRECONDITION_FAILED), so senders and consumers take names and arguments from here.
 *
 * For a service `S` (queue names prefixed with the `prefix` option):
 * - `S`: durable quorum queue, every instance of S competing on it; messages arrive through the
 *   default exchange, routed by queue name. `x-delivery-limit` dead-letters (at least once) a
 *   message that keeps killing its consumer to `S.dlq`.
 * - `S.wait.<ms>`: one durable quorum queue per retry delay, `x-message-ttl` = that delay,
 *   dead-lettering back to `S` (RabbitMQ here has no delayed-message plugin).
 * - `S.dlq`: durable quorum queue of dead letters, each with `events-dead-reason` headers.
 * - `events` (prefixed): the system's durable topic exchange of events declared without targets,
 *   routing key = the event type; S's consumer binds `S` to it for each type S subscribes to.
 * - `events-library.services` (prefixed): durable classic queue, the registry of services, one
 *   message per service name (see registry.ts).
 */

import { DEFAULTS } from '../../defaults.js';

export type QueueArguments = Record<string, string | number>;

export interface QueueSpec {
  name: string;
  arguments: QueueArguments;
}

export interface ServiceTopology {
  main: QueueSpec;
  deadLetters: QueueSpec;
  /** Wait queues by delay in ms. */
  waits: Map<number, QueueSpec>;
}

/** The queue that receives service `service`'s events. */
export function queueName(prefix: string, service: string): string {
  return `${prefix}${service}`;
}

export function deadLetterQueueName(queue: string): string {
  return `${queue}.dlq`;
}

/** The topic exchange through which an event declared without targets reaches every queue bound to its type. */
export function eventsExchange(prefix: string): string {
  return `${prefix}events`;
}

/** Why `type` cannot be a literal routing key of the topic exchange (undefined when it can). */
export function routingKeyProblem(type: string): string | undefined {
  if (/[*#]/.test(type)) return 'RabbitMQ routes it by its type through a topic exchange, where "*" and "#" are wildcards: rename the type';
  if (Buffer.byteLength(type) > 255) return 'RabbitMQ routes it by its type, and a routing key holds at most 255 bytes: shorten the type';
  return undefined;
}

/** Dead-lettering that RabbitMQ guarantees at least once (quorum queues, 3.10+; needs `reject-publish`). */
const AT_LEAST_ONCE: QueueArguments = {
  'x-dead-letter-strategy': 'at-least-once',
  'x-overflow': 'reject-publish',
};

export function mainQueue(prefix: string, service: string, deliveryLimit: number): QueueSpec {
  const name = queueName(prefix, service);
  return {
    name,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': deliveryLimit,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': deadLetterQueueName(name),
      ...AT_LEAST_ONCE,
    },
  };
}

export function deadLetterQueue(queue: string): QueueSpec {
  return { name: deadLetterQueueName(queue), arguments: { 'x-queue-type': 'quorum' } };
}

export function waitQueue(queue: string, delayMs: number): QueueSpec {
  return {
    name: `${queue}.wait.${delayMs}ms`,
    arguments: {
      'x-queue-type': 'quorum',
      'x-message-ttl': delayMs,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': queue,
      ...AT_LEAST_ONCE,
    },
  };
}

/**
 * The registry of the services consuming under `prefix`: AMQP 0-9-1 cannot list queues, so each
 * service's consumer records its name here (see registry.ts) and an operator reads it to find
 * every dead-letter queue. A durable classic queue: a quorum queue holds files open (a broker has
 * a few hundred descriptors), and a name recorded again on the next start is all a loss costs.
 * A service named `events-library.services` would collide with it.
 */
export function registryQueue(prefix: string): QueueSpec {
  return { name: `${prefix}events-library.services`, arguments: { 'x-queue-type': 'classic' } };
}

/**
 * Everything a service's consumer declares (a sender declares `main` and `deadLetters` of its
 * targets): one wait queue per delay of the retry schedule and of the `RetryLaterError` tiers.
 */
export function serviceTopology(
  prefix: string,
  service: string,
  deliveryLimit: number,
  retryDelaysMs: readonly number[],
  retryLaterDelaysMs: readonly number[] = DEFAULTS.broker.retryLaterDelaysMs,
): ServiceTopology {
  const main = mainQueue(prefix, service, deliveryLimit);
  const waits = new Map<number, QueueSpec>();
  for (const delay of [...retryDelaysMs, ...retryLaterDelaysMs].sort((a, b) => a - b)) waits.set(delay, waitQueue(main.name, delay));
  return { main, deadLetters: deadLetterQueue(main.name), waits };
}

/** The shortest wait at least `ms` long among `delays` (the longest when none is). */
export function delayAtLeast(delays: Iterable<number>, ms: number): number {
  const sorted = [...delays].sort((a, b) => a - b);
  return sorted.find((d) => d >= ms) ?? sorted[sorted.length - 1]!;
}

/** Message headers the library sets besides the CloudEvents and Standard Webhooks ones. */
export const HEADERS = {
  /** Handler attempts that failed so far. */
  attempts: 'events-attempts',
  /** Why a message is in the dead-letter queue: a short code (`invalid_signature`, `handler_failed`, …). */
  deadReason: 'events-dead-reason',
  /** The longer explanation. */
  deadError: 'events-dead-error',
  /** When it was dead-lettered (ISO 8601). */
  deadAt: 'events-dead-at',
  /** The queue it was dead-lettered from. */
  deadQueue: 'events-dead-queue',
  /**
   * The dead letter's id, a random UUID the consumer assigns as it dead-letters (over any such
   * header the sender set). Read only from messages without `x-death` (see dead-letters.ts).
   */
  deadLetterId: 'events-dead-letter-id',
} as const;
