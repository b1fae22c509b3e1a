import type { ConfirmChannel, Message, Options } from 'amqplib';
import type { QueueSpec } from './topology.js';

/** Set on every publish (copied with Object.assign: a spread of `options` with keys added after it is slow in V8; see freshRecord). */
const MANDATORY_PERSISTENT = { mandatory: true, persistent: true } as const;

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
  /** Set after a negative confirm when `retireOnNack`: no new publishes; closes once its confirms are in. */
  retiring = false;
  private inFlight = 0;
  private readonly declared = new Map<string, Promise<unknown>>();
  /** Queues whose declaration the broker confirmed on this channel: the common case skips the promises. */
  private readonly ready = new Set<string>();
  private readonly exchanges = new Set<string>();
  /** `<exchange>\0<routing key>\0<messageId>` of messages returned and not yet confirmed: RabbitMQ sends the return before the ack. */
  private readonly returned = new Set<string>();

  /**
   * `retireOnNack`: after a negative confirm, take no more publishes on this channel (RabbitMQ 3.10
   * keeps rejecting a channel's publishes to a quorum queue that once overflowed, even after it
   * drained; a new channel is accepted).
   */
  constructor(
    readonly channel: ConfirmChannel,
    private readonly options: { retireOnNack?: boolean } = {},
  ) {
    channel.on('return', (message: Message) => {
      const { exchange, routingKey } = message.fields;
      this.returned.add(returnKey(exchange, routingKey, message.properties.messageId as string | undefined));
      if (exchange !== '') return; // no queue bound to the routing key (see AmqpTransport)
      // The queue is gone (deleted behind our back): declare it again before the next publish.
      this.ready.delete(routingKey);
      this.declared.delete(routingKey);
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

  /** Declares the durable topic exchange `name` once on this channel. */
  async declareExchange(name: string): Promise<void> {
    if (this.exchanges.has(name)) return;
    await this.channel.assertExchange(name, 'topic', { durable: true });
    this.exchanges.add(name);
  }

  /** Whether new publishes may go on this channel. */
  get usable(): boolean {
    return !this.closed && !this.retiring;
  }

  /**
   * Publishes to `queue` through the default exchange (or with routing key `queue` to `exchange`);
   * resolves once the broker has confirmed it: `returned` when no queue took it.
   */
  publish(queue: string, content: Buffer, options: Options.Publish & { messageId?: string }, exchange = ''): Promise<PublishOutcome> {
    const key = returnKey(exchange, queue, options.messageId);
    return new Promise((resolve, reject) => {
      try {
        this.channel.publish(exchange, queue, content, Object.assign({}, options, MANDATORY_PERSISTENT), (error: unknown) => {
          this.inFlight -= 1;
          const wasReturned = this.returned.delete(key);
          if (error && this.options.retireOnNack && !this.closed) this.retiring = true;
          if (this.retiring && this.inFlight === 0) void this.close();
          if (error) reject(error instanceof Error ? error : new Error(`broker refused the message (${String(error)})`));
          else resolve(wasReturned ? 'returned' : 'confirmed');
        });
        this.inFlight += 1;
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

function returnKey(exchange: string, routingKey: string, messageId: string | undefined): string {
  return `${exchange}\0${routingKey}\0${messageId ?? ''}`;
}
