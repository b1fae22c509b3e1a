import { createHash } from 'node:crypto';
import type { ChannelModel, ConfirmChannel, GetMessage } from 'amqplib';
import { DEFAULTS } from '../../defaults.js';
import { ConfigError } from '../../errors/index.js';
import {
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterOperator,
  type DeadLetterSelection,
  matchesDeadLetter,
  type OutboxStats,
  selectionFilter,
} from '../../operate/operator.js';
import { identityOfBody } from '../broker-common.js';
import type { BrokerLocation } from '../broker-link.js';
import { loadAmqplib } from './connection.js';
import { Publisher } from './publisher.js';
import { registeredServices } from './registry.js';
import { deadLetterQueueName, HEADERS, queueName } from './topology.js';

// Interim: src/broker-cli.ts imports these from here (see broker-operator.ts).
export {
  type BrokerAdminOptions,
  type BrokerDeadLetter,
  type BrokerReplaySelection,
  listBrokerDeadLetters,
  replayBrokerDeadLetters,
} from '../broker-operator.js';

/**
 * RabbitMQ's dead letters behind the operator seam: the messages of each service's `<queue>.dlq`
 * (one service's, or every service's in the registry under the prefix, see registry.ts).
 *
 * A queue is read to its end (the message count at the start of the read, however large) by
 * fetching each message without acknowledging it; closing the channel returns them in order.
 * `replay` republishes the selected ones to the service's queue (attempts reset, confirmed by the
 * broker) and then acks them; `discard` acks them. Neither touches the rest.
 *
 * Ids, which no sender can choose:
 * - a message the consumer dead-lettered carries the random UUID the consumer assigned in
 *   `events-dead-letter-id` (over any header of that name the sender set);
 * - a message the broker dead-lettered itself (`x-delivery-limit`: it kept killing its consumer)
 *   arrives with the sender's headers intact, so that header is never read from a message with
 *   `x-death`. Its id is `x` and a SHA-256 of what the broker recorded when it dead-lettered it
 *   (`x-death`: queue, reason, count, time) with the message id and the body;
 * - a letter dead-lettered by an older release (neither) gets the same kind of derived id, from its
 *   `events-dead-at` and body.
 * Two letters deriving the same id (the same message dead-lettered twice) are told apart by a
 * `~2`, `~3`, … suffix in queue order.
 *
 * Identity (event id, type, source) comes from the body, the signed event (the operator has no
 * secret to verify it), else from the message properties, never from a header.
 */
export class AmqpDeadLetters implements DeadLetterOperator {
  private readonly prefix: string;
  private model: Promise<ChannelModel> | undefined;

  constructor(private readonly location: BrokerLocation) {
    this.prefix = location.prefix ?? DEFAULTS.broker.prefix;
    const { service } = location;
    if (service !== undefined && (typeof service !== 'string' || service.trim() === '')) {
      throw new ConfigError('which service? pass its name (the service whose queue the dead letters came from), or none for every service', {
        variable: 'EVENTS_SERVICE_NAME',
      });
    }
  }

  async stats(): Promise<OutboxStats> {
    const stats: OutboxStats = { durable: true, pending: 0, deadLetters: 0, targets: {} };
    for (const service of await this.services()) {
      const count = await this.probe(service);
      if (count === undefined) continue;
      stats.deadLetters += count;
      stats.targets[service] = { pending: 0, deadLetters: count };
    }
    return stats;
  }

  async deadLetters(filter?: DeadLetterFilter): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
    for (const service of await this.services(filter?.target)) {
      letters.push(...(await this.withLetters(service, async (_channel, held) => held.map((h) => h.letter))));
    }
    return letters.filter((l) => matchesDeadLetter(l, filter)).sort((a, b) => (a.deadAt ?? 0) - (b.deadAt ?? 0));
  }

  replay(selection: DeadLetterSelection): Promise<number> {
    return this.settle(selection, async (channel, { message, letter }) => {
      const queue = queueName(this.prefix, letter.target);
      const headers: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(message.properties.headers ?? {})) {
        if (!name.startsWith('x-') && !name.startsWith('events-')) headers[name] = value;
      }
      const { contentType, messageId, type, appId, timestamp } = message.properties;
      const outcome = await new Publisher(channel).publish(queue, message.content, { contentType, messageId, type, appId, timestamp, headers });
      if (outcome === 'returned') throw new Error(`the broker has no queue "${queue}": has the service ever run with this prefix?`);
      channel.ack(message);
    });
  }

  discard(selection: DeadLetterSelection): Promise<number> {
    return this.settle(selection, async (channel, { message }) => channel.ack(message));
  }

  async close(): Promise<void> {
    const model = this.model;
    this.model = undefined;
    await model?.then((m) => m.close()).catch(() => undefined);
  }

  /** Runs `action` on each selected letter (its own channel per queue: what is not acked goes back); resolves with how many. */
  private async settle(selection: DeadLetterSelection, action: (channel: ConfirmChannel, held: Held) => Promise<void>): Promise<number> {
    const filter = selectionFilter(selection);
    let count = 0;
    for (const service of await this.services(filter.target)) {
      await this.withLetters(service, async (channel, held) => {
        for (const h of held) {
          if (!matchesDeadLetter(h.letter, filter)) continue;
          await action(channel, h);
          count += 1;
        }
      });
    }
    return count;
  }

  /** The given service, or every service in the registry under the prefix (only `target`, when given). */
  private async services(target?: string): Promise<string[]> {
    const services = this.location.service !== undefined ? [this.location.service] : await registeredServices(await this.connect(), this.prefix);
    return target === undefined ? services : services.filter((s) => s === target);
  }

  /** Messages in the service's dead-letter queue; undefined when there is none (an error when that service was asked for). */
  private async probe(service: string): Promise<number | undefined> {
    const dlq = deadLetterQueueName(queueName(this.prefix, service));
    const channel = await (await this.connect()).createChannel();
    channel.on('error', () => undefined);
    try {
      const { messageCount } = await channel.checkQueue(dlq);
      await channel.close().catch(() => undefined);
      return messageCount;
    } catch (cause) {
      // The broker closed the channel with its refusal.
      if (this.location.service === undefined) return undefined;
      throw new ConfigError(`the broker has no dead-letter queue "${dlq}": check the service name and the prefix`, {
        variable: 'EVENTS_BROKER_PREFIX',
        cause,
      });
    }
  }

  /** Fetches every message of the service's dead-letter queue unacknowledged, runs `run`, and closes the channel (returning the rest). */
  private async withLetters<T>(service: string, run: (channel: ConfirmChannel, held: Held[]) => Promise<T[] | void>): Promise<T[]> {
    const count = await this.probe(service);
    if (count === undefined || count === 0) return [];
    const dlq = deadLetterQueueName(queueName(this.prefix, service));
    const channel = await (await this.connect()).createConfirmChannel();
    channel.on('error', () => undefined);
    try {
      const held: Held[] = [];
      const ids = new Map<string, number>();
      while (held.length < count) {
        const message = await channel.get(dlq, { noAck: false });
        if (message === false) break;
        held.push({ message, letter: describe(message, service, ids) });
      }
      return (await run(channel, held)) ?? [];
    } finally {
      // The channel closes before the connection does: a quorum queue can lose acks sent just
      // before a connection closes. Closing returns what was fetched and not acked.
      await channel.close().catch(() => undefined);
    }
  }

  private connect(): Promise<ChannelModel> {
    if (!this.model) {
      const opening = loadAmqplib().connect(this.location.broker, { clientProperties: { connection_name: 'events-library operator' } });
      this.model = opening.then((model) => {
        model.on('error', () => undefined);
        return model;
      });
      this.model.catch(() => {
        if (this.model === opening) this.model = undefined;
      });
    }
    return this.model;
  }
}

interface Held {
  message: GetMessage;
  letter: DeadLetter;
}

function describe(message: GetMessage, service: string, ids: Map<string, number>): DeadLetter {
  const { properties, content } = message;
  const headers = properties.headers ?? {};
  const deaths: unknown = headers['x-death'];
  // Dead-lettered by the broker: every header besides x-death is the sender's.
  const byBroker = deaths !== undefined;
  const own = (name: string): string | undefined => (byBroker ? undefined : text(headers[name]));
  const body = content.toString('utf8');
  let id = own(HEADERS.deadLetterId);
  if (id === undefined || id === '') {
    const hash = createHash('sha256').update(JSON.stringify([deaths ?? null, own(HEADERS.deadAt) ?? null, properties.messageId ?? null]));
    id = `x${hash.update(content).digest('hex').slice(0, 32)}`;
  }
  const seen = (ids.get(id) ?? 0) + 1;
  ids.set(id, seen);
  if (seen > 1) id = `${id}~${seen}`;
  const identity = identityOfBody(body);
  const deadAt = byBroker ? deathTime(deaths) : Date.parse(own(HEADERS.deadAt) ?? '');
  const attempts = Number(own(HEADERS.attempts));
  return {
    id,
    kept: 'queue',
    eventId: identity.eventId ?? text(properties.messageId),
    type: identity.type ?? text(properties.type),
    source: identity.source ?? text(properties.appId),
    target: service,
    // The broker's own reason, e.g. `delivery_limit`.
    reason: (byBroker ? text(lastDeath(deaths)?.reason) : own(HEADERS.deadReason)) ?? 'unknown',
    error: own(HEADERS.deadError),
    attempts: Number.isFinite(attempts) && attempts > 0 ? attempts : undefined,
    createdAt: identity.time,
    deadAt: deadAt === undefined || Number.isNaN(deadAt) ? undefined : deadAt,
    body,
  };
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : typeof value === 'number' ? String(value) : undefined;
}

/** The broker's latest dead-lettering of the message (`x-death` lists the latest first). */
function lastDeath(deaths: unknown): { reason?: unknown; time?: unknown } | undefined {
  const last: unknown = Array.isArray(deaths) ? deaths[0] : undefined;
  return last !== null && typeof last === 'object' ? last : undefined;
}

/** ms since epoch of that dead-lettering (`time` in seconds, as amqplib decodes an AMQP timestamp). */
function deathTime(deaths: unknown): number | undefined {
  const time = lastDeath(deaths)?.time;
  const seconds = typeof time === 'number' ? time : (time as { value?: unknown } | undefined)?.value;
  return typeof seconds === 'number' ? seconds * 1000 : undefined;
}
