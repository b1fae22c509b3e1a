/**
 * Kafka layout: one topic per receiving service, `<prefix><service>`, read by the consumer group
 * `<prefix><service>` (the service's instances share its partitions). An emitter writes one record
 * per declared target to that target's topic (through the outbox), so each target gets each event
 * once, and a target that has never started still finds everything in its topic: its group starts
 * from the earliest offset. Failures past the attempt limit go to `<topic>.dlq`, with the reason in
 * headers; replay appends them to the service's topic again and a marker to the `.dlq` (see dead-letters.ts).
 */

export function serviceTopic(prefix: string, service: string): string {
  return `${prefix}${service}`;
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
