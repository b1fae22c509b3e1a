import type { Logger } from 'winston';
import type { AmqpConnection } from './connection.js';
import { envelopeOf } from './envelope.js';
import { queueMismatch } from './failures.js';
import { Publisher } from './publisher.js';
import { deadLetterQueue, mainQueue, type QueueSpec } from './topology.js';
import type { Delivery, DeliveryResult, Transport } from '../../send/transport.js';

export interface AmqpTransportOptions {
  connection: AmqpConnection;
  logger: Logger;
  /** Queue name prefix (see topology.ts). */
  prefix: string;
  /** `x-delivery-limit` of services' queues. */
  deliveryLimit: number;
  /** How long the first send waits for the first connection, in ms. */
  timeoutMs: number;
}

/**
 * RabbitMQ: publishes one delivery to its target service's queue, persistent and `mandatory`,
 * on a confirm channel; `delivered` only once the broker confirmed it. Before the first publish
 * to a target, declares that target's queue and dead-letter queue (once per channel), so an event
 * published before the target's consumers ever started is kept. A negative confirm, a returned
 * (unroutable) message, a closed channel or no connection is `retry` with `targetDown`: the
 * outbox keeps the delivery and the dispatcher probes until the broker is back.
 */
export class AmqpTransport implements Transport {
  private publisher: Publisher | undefined;
  private opening: Promise<Publisher | undefined> | undefined;
  private readonly queues = new Map<string, QueueSpec[]>();
  private closed = false;

  constructor(private readonly o: AmqpTransportOptions) {}

  async send(delivery: Delivery): Promise<DeliveryResult> {
    const startedAt = performance.now();
    const publisher = await this.open();
    if (!publisher) return this.failed(delivery, startedAt, 'not connected to the broker');
    const specs = this.topologyOf(delivery.target.name);
    try {
      await publisher.declare(specs);
      const outcome = await publisher.publish(specs[0]!.name, Buffer.from(delivery.body), envelopeOf(delivery));
      if (outcome === 'returned') {
        return this.failed(delivery, startedAt, `unroutable: the broker has no queue "${specs[0]!.name}"`);
      }
    } catch (error) {
      return this.failed(delivery, startedAt, queueMismatch(error)?.message ?? (error as Error)?.message ?? String(error));
    }
    if (this.o.logger.isDebugEnabled()) {
      this.o.logger.debug('delivery attempt', { ...fields(delivery), attempt: delivery.previousAttempts + 1, durationMs: elapsed(startedAt) });
    }
    return { outcome: 'delivered', attempts: 1 };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.publisher?.close();
    this.publisher = undefined;
  }

  /** Every try at debug, as over HTTP: the outage is logged once by the connection and by the dispatcher. */
  private failed(delivery: Delivery, startedAt: number, error: string): DeliveryResult {
    if (this.o.logger.isDebugEnabled()) {
      this.o.logger.debug('delivery attempt failed', { ...fields(delivery), attempt: delivery.previousAttempts + 1, durationMs: elapsed(startedAt), error });
    }
    return { outcome: 'retry', error, attempts: 1, targetDown: true };
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
      const main = mainQueue(this.o.prefix, target, this.o.deliveryLimit);
      specs = [main, deadLetterQueue(main.name)];
      this.queues.set(target, specs);
    }
    return specs;
  }
}

function fields(delivery: Delivery): Record<string, unknown> {
  return { eventId: delivery.eventId, type: delivery.type, source: delivery.source, target: delivery.target.name };
}

function elapsed(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 10) / 10;
}
