import { brokerAttempt } from '../broker-common.js';
import { recordOf } from './envelope.js';
import type { KafkaOutgoingMessage } from './api.js';
import type { KafkaLink } from './link.js';
import { serviceTopic, typeTopic } from './topics.js';
import { type Delivery, type DeliveryResult, SUBSCRIBERS, type Transport } from '../../send/transport.js';

const EARLIER_UNDELIVERED = 'an earlier event with the same key is not delivered yet';

/**
 * Kafka: writes each delivery to its target service's topic (`<prefix><target>`), acks = all,
 * or, for SUBSCRIBERS, to its type's topic (`<prefix>events.<type>`), keyed by the event's partition key (else its id); `delivered` once every in-sync replica has it.
 * A batch from the dispatcher goes as one list of records, and the link puts what is sent while a
 * request is in flight, to every topic, in the next request; each delivery still gets its own result.
 * No cluster, a timeout or a refusal is `retry` with `targetDown`: the outbox keeps the delivery
 * and the dispatcher probes until the cluster is back. Per-key order: the dispatcher sends one
 * target's deliveries in outbox order, a send waits for the one before it with the same key, and
 * the link keeps one request in flight.
 */
export class KafkaTransport implements Transport {
  /** Per topic and key, whether the last send in line succeeded: a send waits for the one before it. */
  private readonly tails = new Map<string, Promise<boolean>>();

  constructor(private readonly link: KafkaLink) {}

  async send(delivery: Delivery): Promise<DeliveryResult> {
    return (await this.sendBatch([delivery]))[0]!;
  }

  /** Deliveries in one go (one target's, or any): one result each, in order. */
  async sendBatch(deliveries: readonly Delivery[]): Promise<DeliveryResult[]> {
    const startedAt = performance.now();
    const items = deliveries.map((delivery) => {
      const { name } = delivery.target;
      const topic = name === SUBSCRIBERS ? typeTopic(this.link.o.broker.prefix, delivery.type) : serviceTopic(this.link.o.broker.prefix, name);
      const record = recordOf(delivery);
      return { topic, record, line: `${topic}\0${String(record.key)}` };
    });
    // Same key, same partition: a send waits for the previous one with the key (taken before this
    // batch's own: two of one key in a batch go in order in one request), and fails when it failed,
    // so a retried earlier event is never overtaken by a later one (the outbox retries both).
    const previous = items.map((item) => this.tails.get(item.line));
    const errors = this.sendAfter(items, previous);
    items.forEach((item, i) => {
      const ok = errors.then((all) => all[i] === undefined);
      this.tails.set(item.line, ok);
      void ok.then(() => {
        if (this.tails.get(item.line) === ok) this.tails.delete(item.line);
      });
    });
    const settled = await errors;
    return deliveries.map((delivery, i) => brokerAttempt(this.link.o.logger, delivery, startedAt, settled[i]));
  }

  /** Sends the items whose previous send of their key succeeded; the error of each (undefined: delivered). */
  private async sendAfter(items: ReadonlyArray<{ topic: string; record: KafkaOutgoingMessage }>, previous: ReadonlyArray<Promise<boolean> | undefined>): Promise<Array<string | undefined>> {
    const waiting = previous.some((p) => p !== undefined);
    const blocked = waiting ? await Promise.all(previous.map(async (p) => (p ? !(await p) : false))) : undefined;
    const byTopic = new Map<string, KafkaOutgoingMessage[]>();
    items.forEach(({ topic, record }, i) => {
      if (blocked?.[i]) return;
      const list = byTopic.get(topic);
      if (list) list.push(record);
      else byTopic.set(topic, [record]);
    });
    const failed = new Map<string, string>();
    await Promise.all(
      [...byTopic].map(([topic, records]) =>
        this.link.send(topic, records).catch((error: unknown) => void failed.set(topic, (error as Error)?.message ?? String(error))),
      ),
    );
    return items.map(({ topic }, i) => (blocked?.[i] ? EARLIER_UNDELIVERED : failed.get(topic)));
  }

  /** Any type: its topic name is made to fit (typeTopic). */
  toSubscribers(): true {
    return true;
  }

  async close(): Promise<void> {
    // The link (shared with the consumer) is closed by the bus.
  }
}
