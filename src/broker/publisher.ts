import type { ConfirmChannel, Message, Options } from 'amqplib';
import type { QueueSpec } from './topology.js';

/** How the broker answered one publish. */
export type PublishOutcome = 'confirmed' | 'returned';

/**
 * A confirm channel that publishes `mandatory` and tells a confirmed message from a returned
 * (unroutable) one, and declares queues once per channel. A negative confirm or a channel that
 * closes under a publish rejects. Used by the transport (to targets' queues) and by the consumer
 * (to its wait and dead-letter queues, before acking the original).
 */
export class Publisher {
  closed = false;
  private readonly declared = new Map<string, Promise<unknown>>();
  /** Queues whose declaration the broker confirmed on this channel: the common case skips the promises. */
  private readonly ready = new Set<string>();
  /** `<queue>\0<messageId>` of messages returned and not yet confirmed: RabbitMQ sends the return before the ack. */
  private readonly returned = new Set<string>();

  constructor(readonly channel: ConfirmChannel) {
    channel.on('return', (message: Message) => {
      this.returned.add(returnKey(message.fields.routingKey, message.properties.messageId as string | undefined));
    });
    channel.on('error', () => undefined); // a 'close' follows
    channel.on('close', () => {
      this.closed = true;
    });
  }

  /** Declares each queue once on this channel (idempotent on the broker too, when arguments match). */
  async declare(specs: readonly QueueSpec[]): Promise<void> {
    if (specs.every((spec) => this.ready.has(spec.name))) return;
    await Promise.all(
      specs.map((spec) => {
        let done = this.declared.get(spec.name);
        if (!done) {
          done = this.channel.assertQueue(spec.name, { durable: true, arguments: spec.arguments });
          done.then(
            () => this.ready.add(spec.name),
            () => this.declared.delete(spec.name),
          );
          this.declared.set(spec.name, done);
        }
        return done;
      }),
    );
  }

  /** Publishes to `queue` through the default exchange; resolves once the broker has confirmed it. */
  publish(queue: string, content: Buffer, options: Options.Publish & { messageId?: string }): Promise<PublishOutcome> {
    const key = returnKey(queue, options.messageId);
    return new Promise((resolve, reject) => {
      try {
        this.channel.publish('', queue, content, { ...options, mandatory: true, persistent: true }, (error: unknown) => {
          const wasReturned = this.returned.delete(key);
          if (error) reject(error instanceof Error ? error : new Error(`broker refused the message (${String(error)})`));
          else resolve(wasReturned ? 'returned' : 'confirmed');
        });
      } catch (error) {
        reject(error as Error); // the channel is already closed
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.channel.close().catch(() => undefined);
  }
}

function returnKey(queue: string, messageId: string | undefined): string {
  return `${queue}\0${messageId ?? ''}`;
}
