import { brokerAttempt } from '../broker-common.js';
import { recordOf } from './envelope.js';
import type { KafkaLink } from './link.js';
import { serviceTopic, typeTopic } from './topics.js';
import { type Delivery, type DeliveryResult, SUBSCRIBERS, type Transport } from '../../send/transport.js';

/**
 * Kafka: writes one delivery to its target service's topic (`<prefix><target>`), acks = all,
 * or, for SUBSCRIBERS, to its type's topic (`<prefix>events.<type>`), keyed by the event's partition key (else its id); `delivered` once every in-sync replica has it.
 * No cluster, a timeout or a refusal is `retry` with `targetDown`: the outbox keeps the delivery
 * and the dispatcher probes until the cluster is back. Per-key order: the dispatcher sends one
 * target's deliveries in outbox order, and the producer keeps one request in flight.
 */
export class KafkaTransport implements Transport {
  /** Per topic and key, whether the last send in line succeeded: a send waits for the one before it. */
  private readonly tails = new Map<string, Promise<boolean>>();

  constructor(private readonly link: KafkaLink) {}

  async send(delivery: Delivery): Promise<DeliveryResult> {
    const startedAt = performance.now();
    const { name } = delivery.target;
    const topic = name === SUBSCRIBERS ? typeTopic(this.link.o.broker.prefix, delivery.type) : serviceTopic(this.link.o.broker.prefix, name);
    const record = recordOf(delivery);
    // Same key, same partition: a send waits for the previous one with the key, and fails when it
    // failed, so a retried earlier event is never overtaken by a later one (the outbox retries both).
    const line = `${topic}\0${String(record.key)}`;
    const previous = this.tails.get(line);
    const sending = (async () => {
      if (previous && !(await previous)) throw new Error('an earlier event with the same key is not delivered yet');
      await this.link.send(topic, [record]);
    })();
    const ok = sending.then(
      () => true,
      () => false,
    );
    this.tails.set(line, ok);
    void ok.then(() => {
      if (this.tails.get(line) === ok) this.tails.delete(line);
    });
    try {
      await sending;
    } catch (error) {
      return brokerAttempt(this.link.o.logger, delivery, startedAt, (error as Error)?.message ?? String(error));
    }
    return brokerAttempt(this.link.o.logger, delivery, startedAt);
  }

  /** Any type: its topic name is made to fit (typeTopic). */
  toSubscribers(): true {
    return true;
  }

  async close(): Promise<void> {
    // The link (shared with the consumer) is closed by the bus.
  }
}
