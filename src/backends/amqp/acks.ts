import type { Channel, ConsumeMessage } from 'amqplib';

/**
 * The acks of one consumer channel, sent together: the acks decided during one turn of the event
 * loop go out at its end, as one `multiple` ack up to the highest tag below every message still in
 * hand, and single acks above it. RabbitMQ then handles one frame for many messages. A message
 * settled otherwise (requeued) leaves the hand at once, so `multiple` never covers it; the channel's
 * delivery tags grow with each delivery, which makes "below every message still in hand" safe.
 */
export class Acks {
  /** Delivery tags received and not settled yet, in delivery (= ascending) order. */
  private readonly inHand = new Set<number>();
  private ready: ConsumeMessage[] = [];
  private scheduled = false;

  constructor(private readonly channel: Channel) {}

  received(message: ConsumeMessage): void {
    this.inHand.add(message.fields.deliveryTag);
  }

  /** Acks `message` at the end of this turn of the event loop (or at `flush`). */
  ack(message: ConsumeMessage): void {
    this.inHand.delete(message.fields.deliveryTag);
    this.ready.push(message);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Requeues `message` now. */
  requeue(message: ConsumeMessage): void {
    this.inHand.delete(message.fields.deliveryTag);
    this.channel.nack(message, false, true);
  }

  /** Sends the acks decided so far. */
  flush(): void {
    this.scheduled = false;
    if (this.ready.length === 0) return;
    const ready = this.ready.sort((a, b) => a.fields.deliveryTag - b.fields.deliveryTag);
    this.ready = [];
    const lowestInHand = this.inHand.values().next().value ?? Infinity;
    let below = 0;
    while (below < ready.length && ready[below]!.fields.deliveryTag < lowestInHand) below += 1;
    try {
      if (below > 0) this.channel.ack(ready[below - 1]!, true);
      for (let i = below; i < ready.length; i++) this.channel.ack(ready[i]!);
    } catch {
      // The channel closed meanwhile: the broker returns its unacked messages to the queue (the inbox absorbs the duplicates).
    }
  }
}
