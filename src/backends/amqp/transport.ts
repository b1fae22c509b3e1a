import type { BrokerOpenOptions } from '../broker-link.js';
import type { AmqpBroker } from './config.js';
import { brokerAttempt } from '../broker-common.js';
import type { AmqpConnection } from './connection.js';
import { batchEnvelopeOf, envelopeOf } from './envelope.js';
import { queueMismatch } from './failures.js';
import { Publisher, type PublishOutcome } from './publisher.js';
import { deadLetterQueue, eventsExchange, mainQueue, type QueueSpec, routingKeyProblem } from './topology.js';
import { batchBuffer } from '../../protocol/cloudevents.js';
import { type Delivery, type DeliveryResult, SUBSCRIBERS, type Transport } from '../../send/transport.js';

/** The bus's broker options (its `timeoutMs`: how long the first send waits for the first connection) and the connection. */
export interface AmqpTransportOptions extends BrokerOpenOptions<AmqpBroker> {
  connection: AmqpConnection;
}

/**
 * RabbitMQ: publishes each delivery to its target service's queue, persistent and `mandatory`,
 * on a confirm channel (a lane's batch as one message, a CloudEvents batch); `delivered` only once
 * the broker confirmed it. Before the first publish to a target, declares that target's queue and
 * dead-letter queue (once per channel), so an event published before the target's consumers ever
 * started is kept. A negative confirm, a returned
 * (unroutable) message, a closed channel or no connection is `retry` with `targetDown`: the
 * outbox keeps the delivery and the dispatcher probes until the broker is back. A delivery to
 * SUBSCRIBERS goes to the system's topic exchange instead, routing key = its type.
 */
export class AmqpTransport implements Transport {
  private publisher: Publisher | undefined;
  private opening: Promise<Publisher | undefined> | undefined;
  private readonly queues = new Map<string, QueueSpec[]>();
  private closed = false;

  constructor(private readonly o: AmqpTransportOptions) {}

  send(delivery: Delivery): Promise<DeliveryResult> {
    return this.sendBatch([delivery]).then((results) => results[0]!);
  }

  /**
   * Publishes the deliveries (one target's, as a lane batches them) as one message, a CloudEvents
   * batch signed once, and awaits its confirm: every delivery's result is that confirm's. Through
   * the topic exchange (SUBSCRIBERS), one message per event type, the routing key. A lone event
   * goes in structured mode.
   */
  async sendBatch(deliveries: readonly Delivery[]): Promise<DeliveryResult[]> {
    const startedAt = performance.now();
    const publisher = await this.open();
    if (!publisher) return deliveries.map((delivery) => brokerAttempt(this.o.logger, delivery, startedAt, 'not connected to the broker'));
    // To the target's queue, or (SUBSCRIBERS) to every queue bound to the type on the topic exchange.
    const target = deliveries[0]!.target.name;
    const specs = target === SUBSCRIBERS ? undefined : this.topologyOf(target);
    const exchange = specs ? '' : eventsExchange(this.o.broker.prefix);
    try {
      if (specs) await publisher.declare(specs);
      else await publisher.declareExchange(exchange);
    } catch (error) {
      const why = queueMismatch(error)?.message ?? (error as Error)?.message ?? String(error);
      return deliveries.map((delivery) => brokerAttempt(this.o.logger, delivery, startedAt, why));
    }
    if (specs) return this.publishTogether(publisher, deliveries, startedAt, exchange, specs[0]!.name);
    const results = new Map<Delivery, DeliveryResult>();
    await Promise.all(
      [...byType(deliveries)].map(async ([type, group]) => {
        const settled = await this.publishTogether(publisher, group, startedAt, exchange, type);
        group.forEach((delivery, i) => results.set(delivery, settled[i]!));
      }),
    );
    return deliveries.map((delivery) => results.get(delivery)!);
  }

  toSubscribers(type: string): true | string {
    return routingKeyProblem(type) ?? true;
  }

  /** One publish of `deliveries` (a batch, or a lone event in structured mode), settled from its confirm. */
  private async publishTogether(publisher: Publisher, deliveries: readonly Delivery[], startedAt: number, exchange: string, routingKey: string): Promise<DeliveryResult[]> {
    let outcome: PublishOutcome;
    try {
      if (deliveries.length === 1) {
        outcome = await publisher.publish(routingKey, Buffer.from(deliveries[0]!.body), envelopeOf(deliveries[0]!), exchange);
      } else {
        const body = batchBuffer(deliveries.map((delivery) => delivery.body));
        outcome = await publisher.publish(routingKey, body, batchEnvelopeOf(deliveries, body), exchange);
      }
    } catch (error) {
      const why = (error as Error)?.message ?? String(error);
      return deliveries.map((delivery) => brokerAttempt(this.o.logger, delivery, startedAt, why));
    }
    return deliveries.map((delivery) => this.resultOf(outcome, delivery, startedAt, exchange, routingKey));
  }

  /**
   * A delivery's result from its message's confirm. Returned from a queue: unroutable, retried.
   * Returned from the exchange (`mandatory` only for the broker to tell): no service subscribes,
   * dropped by design, said at debug and counted, never retried.
   */
  private resultOf(outcome: PublishOutcome, delivery: Delivery, startedAt: number, exchange: string, routingKey: string): DeliveryResult {
    if (outcome === 'confirmed') return brokerAttempt(this.o.logger, delivery, startedAt);
    if (exchange === '') return brokerAttempt(this.o.logger, delivery, startedAt, `unroutable: the broker has no queue "${routingKey}"`);
    if (this.o.logger.isDebugEnabled()) {
      this.o.logger.debug('no service subscribes to this event type: dropped', { eventId: delivery.eventId, type: delivery.type, exchange });
    }
    return { ...brokerAttempt(this.o.logger, delivery, startedAt), unrouted: true };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.publisher?.close();
    this.publisher = undefined;
  }

  /** The publishing channel: the current one, or a new one on the current connection (undefined when there is none). */
  private async open(): Promise<Publisher | undefined> {
    if (this.closed) return undefined;
    if (this.publisher?.usable) return this.publisher;
    this.opening ??= (async () => {
      try {
        const model = await this.o.connection.ready(this.o.timeoutMs);
        if (!model || this.closed) return undefined;
        this.publisher = new Publisher(await model.createConfirmChannel(), { retireOnNack: true });
        return this.publisher;
      } catch {
        return undefined;
      } finally {
        this.opening = undefined;
      }
    })();
    return this.opening;
  }

  private topologyOf(target: string): QueueSpec[] {
    let specs = this.queues.get(target);
    if (!specs) {
      const main = mainQueue(this.o.broker.prefix, target, this.o.broker.deliveryLimit);
      specs = [main, deadLetterQueue(main.name)];
      this.queues.set(target, specs);
    }
    return specs;
  }
}

/** Deliveries grouped by event type, in order. */
function byType(deliveries: readonly Delivery[]): Map<string, Delivery[]> {
  const groups = new Map<string, Delivery[]>();
  for (const delivery of deliveries) {
    const group = groups.get(delivery.type);
    if (group) group.push(delivery);
    else groups.set(delivery.type, [delivery]);
  }
  return groups;
}
