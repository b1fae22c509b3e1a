/**
 * Kafka layout: one topic per receiving service, `<prefix><service>`, read by the consumer group
 * `<prefix><service>` (the service's instances share its partitions). An emitter writes one record
 * per declared target to that target's topic (through the outbox), so each target gets each event
 * once, and a target that has never started still finds everything in its topic: its group starts
 * from the earliest offset. Failures past the attempt limit go to `<topic>.dlq`, with the reason in
 * headers; replay appends them to the service's topic again and a marker to the `.dlq` (see dead-letters.ts).
 * An event declared without targets goes to its type's topic instead (typeTopic), which the group
 * of every service subscribed to the type reads from where it first subscribed.
 */
import { createHash } from 'node:crypto';

/** Longest topic name Kafka takes. */
const MAX_TOPIC = 249;

export function serviceTopic(prefix: string, service: string): string {
  return `${prefix}${service}`;
}

/**
 * The topic of the events of `type` declared without targets: `<prefix>events.<type>`. A type with
 * characters Kafka refuses in a topic name (anything but letters, digits, `.`, `_` and `-`), or too
 * long a name, has them replaced by `_`, cut to fit, and `.` + 8 hex digits of the type's SHA-256
 * appended: two types never share a topic.
 */
export function typeTopic(prefix: string, type: string): string {
  const plain = `${prefix}events.${type}`;
  if (/^[A-Za-z0-9._-]+$/.test(type) && plain.length <= MAX_TOPIC) return plain;
  const hash = createHash('sha256').update(type).digest('hex').slice(0, 8);
  return `${prefix}events.${type.replace(/[^A-Za-z0-9._-]/g, '_')}`.slice(0, MAX_TOPIC - hash.length - 1) + `.${hash}`;
}

export function deadLetterTopic(prefix: string, service: string): string {
  return `${serviceTopic(prefix, service)}.dlq`;
}

/** Headers the library adds to a dead letter (and to a replay marker). */
export const KAFKA_HEADERS = {
  deadReason: 'events-dead-reason',
  deadError: 'events-dead-error',
  deadAt: 'events-dead-at',
  attempts: 'events-attempts',
  /** On a record in the `.dlq` with no value: the dead letter with this id (`<topic>/<partition>/<offset>`) was replayed. */
  replayed: 'events-replayed',
  /** The same for a dead letter discarded. */
  discarded: 'events-discarded',
} as const;
