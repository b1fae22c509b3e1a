import { randomUUID } from 'node:crypto';
import type { ChannelModel, ConsumeMessage, MessageProperties } from 'amqplib';
import type { Logger } from 'winston';
import type { AmqpBroker } from './config.js';
import { type Availability, AvailabilityState } from '../../observe/availability.js';
import { InFlight } from '../../receive/in-flight.js';
import type { BrokerConsumerOptions } from '../broker-link.js';
import type { Verdict } from '../../receive/verdict.js';
import { deadLetterLogFields, logClaims, stringAttribute } from '../broker-common.js';
import { batchSteps, type BrokerStep, brokerStep } from '../broker-verdict.js';
import type { AmqpConnection } from './connection.js';
import { envelopeOf, messageOf } from './envelope.js';
import { parseJson } from '../../protocol/safe-json.js';
import { queueMismatch } from './failures.js';
import { Publisher } from './publisher.js';
import { Acks } from './acks.js';
import { delayAtLeast, eventsExchange, HEADERS, routingKeyProblem, serviceTopology, type ServiceTopology } from './topology.js';

/** `broker.prefetch`: messages in the hands of this instance at once. */
export interface AmqpConsumerOptions extends BrokerConsumerOptions {
  connection: AmqpConnection;
  logger: Logger;
  broker: AmqpBroker;
}

/**
 * Consumes this service's queue, competing with the service's other instances. Each message goes
 * through the receive pipeline, and its verdict is settled as brokerStep says: acked; a retry
 * republished to the shortest wait queue at least as long as its wait (the attempt count in a
 * header), then acked; a dead letter republished to `<queue>.dlq` with the reason in headers, then
 * acked; given back (requeued) while stopping. A batch whose events part ways is settled event by
 * event (batchSteps). The republish is confirmed by the broker before the original is acked: a
 * crash in between yields a duplicate, which the inbox absorbs, never a loss.
 */
export class AmqpConsumer {
  private readonly topology: ServiceTopology;
  private publisher: Publisher | undefined;
  /** The acks of the current channel. */
  private acks: Acks | undefined;
  private consumerTag: string | undefined;
  private readonly inFlight = new InFlight();
  private stopping = false;
  private started: Promise<void> | undefined;
  /** Resolves `consuming`: once the first consumer is registered, or at stop. */
  private registered!: () => void;
  /** Rejects `consuming`: the queues cannot be declared as they are (no retry fixes that). */
  private refused!: (error: Error) => void;
  private readonly consuming = new Promise<void>((resolve, reject) => {
    this.registered = resolve;
    this.refused = reject;
  });
  private readonly setup = (model: ChannelModel): Promise<void> => this.consume(model);
  /** Down until the first consumer is registered, and again from when its channel closes. */
  private readonly state = new AvailabilityState(true);

  constructor(private readonly o: AmqpConsumerOptions) {
    const { prefix, deliveryLimit, retryDelaysMs } = o.broker;
    this.topology = serviceTopology(prefix, o.service, deliveryLimit, retryDelaysMs);
  }

  /** The queue it consumes. */
  get name(): string {
    return this.topology.main.name;
  }

  /** Consuming, or down since when; while the connection is down, why it is. */
  get availability(): Availability {
    const { downSince, lastError } = this.state;
    return { downSince, lastError: this.o.connection.isUp ? lastError : (this.o.connection.lastError ?? lastError) };
  }

  /** Starts consuming (once); resolves when the first consumer is registered on the broker. */
  start(): Promise<void> {
    this.started ??= (async () => {
      this.o.connection.onConnect(this.setup);
      this.o.connection.start();
      await this.consuming;
    })();
    return this.started;
  }

  /** Stops taking messages, and waits (until `deadline`) for those in hand to be settled. */
  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.registered();
    this.o.connection.offConnect(this.setup);
    const { publisher, consumerTag } = this;
    if (publisher && !publisher.closed && consumerTag !== undefined) {
      await publisher.channel.cancel(consumerTag).catch(() => undefined);
    }
    await this.inFlight.settled(deadline);
    this.acks?.flush();
    // Close the channel before the connection: a quorum queue can lose acks sent just before the
    // connection closes (the message comes back: a duplicate). Unacked messages return to the queue.
    await publisher?.close();
  }

  private async consume(model: ChannelModel): Promise<void> {
    if (this.stopping) return;
    const publisher = new Publisher(await model.createConfirmChannel());
    const { main, deadLetters, waits } = this.topology;
    try {
      await publisher.declare([deadLetters, main, ...waits.values()]);
    } catch (error) {
      const mismatch = queueMismatch(error);
      if (!mismatch) throw error;
      // A queue declared with other arguments: start() fails with what differs and what to do.
      this.o.connection.offConnect(this.setup);
      this.refused(mismatch);
      return;
    }
    // Events declared without targets: the queue bound to each type subscribed to (until the queue is deleted).
    const exchange = eventsExchange(this.o.broker.prefix);
    await publisher.declareExchange(exchange);
    const types = this.o.types().filter((type) => routingKeyProblem(type) === undefined);
    await Promise.all(types.map((type) => publisher.channel.bindQueue(main.name, exchange, type)));
    await publisher.channel.prefetch(this.o.broker.prefetch);
    publisher.channel.on('close', () => {
      if (this.publisher !== publisher) return;
      this.publisher = undefined;
      this.consumerTag = undefined;
      this.state.down('consumer channel closed');
      // The channel closed with the connection still up (a channel error): start over on a new connection.
      if (!this.stopping) this.o.connection.reset(model, 'consumer channel closed');
    });
    this.publisher = publisher;
    const acks = (this.acks = new Acks(publisher.channel));
    const { consumerTag } = await publisher.channel.consume(main.name, (message) => {
      if (message === null) {
        this.state.down(`the broker cancelled the consumer of ${main.name}`);
        // The broker cancelled the consumer (the queue was deleted): re-declare and re-consume.
        if (!this.stopping) this.o.connection.reset(model, `the broker cancelled the consumer of ${main.name}`);
        return;
      }
      acks.received(message);
      void this.inFlight.track(this.onMessage(publisher, acks, message));
    });
    this.consumerTag = consumerTag;
    this.state.up();
    this.registered();
  }

  private async onMessage(publisher: Publisher, acks: Acks, message: ConsumeMessage): Promise<void> {
    if (this.stopping) {
      requeue(publisher, acks, message);
      return;
    }
    try {
      const { content, properties } = message;
      const verdict = await this.o.pipeline.receive(messageOf(content, properties.contentType as string | undefined, properties.headers), {
        checkTimestamp: false,
      });
      await this.settle(publisher, acks, message, verdict);
    } catch (error) {
      // The channel went away with the connection (logged once by the connection): the broker redelivers.
      if (publisher.closed) return;
      this.o.logger.error('could not settle a broker message; it will be redelivered', {
        ...logClaims(message.content, undefined),
        queue: this.name,
        error: (error as Error)?.message ?? String(error),
      });
      requeue(publisher, acks, message);
    }
  }

  private async settle(publisher: Publisher, acks: Acks, message: ConsumeMessage, verdict: Verdict | Verdict[]): Promise<void> {
    const attempt = attemptsOf(message) + 1;
    const steps = Array.isArray(verdict) ? batchSteps(verdict, attempt, this.o.broker) : brokerStep(verdict, attempt, this.o.broker);
    if (Array.isArray(steps)) {
      // A batch whose events part ways: each one to retry or dead-letter goes on alone.
      const events = eventsOfBatch(message.content);
      await Promise.all(
        steps.map((step, i) => (step.step === 'retry' || step.step === 'dead-letter' ? this.forward(publisher, this.alone(events[i]), step, attempt) : undefined)),
      );
      acks.ack(message);
      return;
    }
    switch (steps.step) {
      case 'ack':
        acks.ack(message);
        return;
      case 'give-back':
        requeue(publisher, acks, message);
        return;
      default:
        await this.forward(publisher, copyOf(message), steps, attempt);
        acks.ack(message);
    }
  }

  /**
   * Republishes `copy` to the shortest wait queue at least as long as the step's wait (retry), or
   * to `<queue>.dlq` with the reason in headers (dead letter), and says so. A dead-letter queue
   * deleted behind the consumer's back (the publish comes back unroutable) is declared again and
   * the publish repeated: the original is acked only once the dead-letter queue holds the copy,
   * and the queue is there again for the broker's own delivery limit, which would otherwise drop
   * what it dead-letters into a missing queue.
   */
  private async forward(publisher: Publisher, copy: Copy, step: Extract<BrokerStep, { step: 'retry' | 'dead-letter' }>, attempt: number): Promise<void> {
    if (step.step === 'retry') {
      const delay = delayAtLeast(this.topology.waits.keys(), step.afterMs);
      await this.republish(publisher, copy, this.topology.waits.get(delay)!.name, { [HEADERS.attempts]: attempt });
      this.o.logger.warn('event will be retried from the broker', {
        ...logClaims(copy.content, step.reason),
        queue: this.name,
        attempt,
        retryInMs: delay,
        reason: step.reason,
      });
      return;
    }
    const queue = this.topology.deadLetters.name;
    await this.republish(publisher, copy, queue, {
      [HEADERS.deadReason]: step.reason,
      [HEADERS.deadError]: step.message.slice(0, 1000),
      [HEADERS.deadAt]: new Date().toISOString(),
      [HEADERS.deadQueue]: this.name,
      [HEADERS.attempts]: attempt,
      [HEADERS.deadLetterId]: randomUUID(),
    });
    this.o.logger.error('event dead-lettered', {
      ...deadLetterLogFields(copy.content, step.reason, this.o.service),
      queue,
      reason: step.reason,
      error: step.message,
    });
  }

  /**
   * One event of a verified batch, as a message of its own: the structured event, signed with this
   * service's keys (what its pipeline verifies when the event comes back from a wait queue, or is
   * replayed from the dead-letter queue). A batch's signature covers only the whole batch.
   */
  private alone(event: unknown): Copy {
    const body = JSON.stringify(event);
    const attribute = (name: string) => stringAttribute(event, name);
    const { headers, ...properties } = envelopeOf({
      eventId: attribute('id') || randomUUID(), // an empty id would not verify
      type: attribute('type') ?? '',
      source: attribute('source') ?? '',
      body,
      traceparent: attribute('traceparent') || undefined,
      tracestate: attribute('tracestate') || undefined,
      target: { keys: this.o.keys },
    });
    return { content: Buffer.from(body), properties, headers };
  }

  /** Republishes `copy` to `queue` (one of this service's), declaring the queue again once if it was deleted. */
  private async republish(publisher: Publisher, copy: Copy, queue: string, extra: Record<string, string | number>): Promise<void> {
    const publish = () => publisher.publish(queue, copy.content, { ...copy.properties, headers: { ...copy.headers, ...extra } });
    if ((await publish()) === 'returned') {
      const { deadLetters, waits } = this.topology;
      const spec = [deadLetters, ...waits.values()].find((q) => q.name === queue);
      if (spec) {
        this.o.logger.warn('a queue of this service was deleted; declaring it again', { queue });
        await publisher.declare([spec]);
        if ((await publish()) === 'confirmed') return;
      }
      throw new Error(`the broker has no queue "${queue}"`);
    }
  }
}

/** A message as this consumer republishes it: its body, its properties, its own headers. */
interface Copy {
  content: Buffer;
  properties: Record<string, unknown>;
  headers: Record<string, unknown>;
}

function copyOf(message: ConsumeMessage): Copy {
  return { content: message.content, properties: propertiesOf(message.properties), headers: ownHeaders(message.properties.headers) };
}

/** The events of a batch body the pipeline has verified and parsed already (so it parses). */
function eventsOfBatch(content: Buffer): unknown[] {
  return parseJson(content.toString('utf8'), 'the batch') as unknown[];
}

function requeue(publisher: Publisher, acks: Acks, message: ConsumeMessage): void {
  if (!publisher.closed) acks.requeue(message);
}

/** Failed handler attempts recorded on the message (0 on its first delivery). */
function attemptsOf(message: ConsumeMessage): number {
  const value = Number(message.properties.headers?.[HEADERS.attempts]);
  return Number.isInteger(value) && value > 0 ? value : 0;
}

/** The message's headers without the broker's own (`x-death`, `x-delivery-count`, …), which it sets again. */
function ownHeaders(headers: MessageProperties['headers']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers ?? {})) if (!name.startsWith('x-')) out[name] = value;
  return out;
}

function propertiesOf(p: MessageProperties): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of ['contentType', 'contentEncoding', 'messageId', 'type', 'appId', 'timestamp', 'correlationId'] as const) {
    if (p[name] !== undefined) out[name] = p[name];
  }
  return out;
}
