import { createHash } from 'node:crypto';
import type { ChannelModel, GetMessage } from 'amqplib';
import { DEFAULTS } from '../../defaults.js';
import { ConfigError } from '../../errors/index.js';
import {
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterList,
  type DeadLetterOperator,
  type DeadLetterPage,
  type DeadLetterSelection,
  matchesDeadLetter,
  type OutboxStats,
  type PageRequest,
  pageOf,
  selectionFilter,
  statsOf,
  type TargetCounts,
} from '../../operate/operator.js';
import { claimsOf, identityOfBody } from '../broker-common.js';
import type { BrokerLocation } from '../broker-link.js';
import { loadAmqplib } from './connection.js';
import { describeConnectFailure } from './failures.js';
import { Publisher } from './publisher.js';
import { registeredNames } from './registry.js';
import { deadLetterQueueName, HEADERS, queueName, registryQueue } from './topology.js';

/**
 * RabbitMQ's dead letters behind the operator seam: the messages of each service's `<queue>.dlq`
 * (one service's, or every service's in the registry under the prefix, see registry.ts).
 *
 * A queue is read to its end, however long, by fetching each message without acknowledging it;
 * what is not settled is given back (nack, requeue) in order on the same channel, where the next
 * read finds it (a closing channel also gives messages back, but the broker applies that later).
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
 * Identity (event id, type, source) comes from the body, never from a property or header, and
 * only as `unverified` unless the consumer dead-lettered it for a reason given after its
 * signature verified (claimsOf).
 */
export class AmqpDeadLetters implements DeadLetterOperator {
  private readonly prefix: string;
  private model: Promise<ChannelModel> | undefined;
  /** One channel for every read and settle: a message given back (nack) on it is back before its next read. */
  private publisher: Promise<Publisher> | undefined;
  private current: Publisher | undefined;
  /** Queues seen to exist. */
  private readonly existing = new Set<string>();

  constructor(private readonly location: BrokerLocation) {
    this.prefix = location.prefix ?? DEFAULTS.broker.prefix;
  }

  async stats(): Promise<OutboxStats> {
    const counts: TargetCounts[] = [];
    for (const service of await this.services()) {
      const count = await this.withLetters(service, undefined, 0, async (_publisher, _held, more) => more);
      if (count !== undefined) counts.push({ target: service, dead: count });
    }
    return statsOf(counts);
  }

  /** The first `filter.limit` matches in queue order (each service's queue read to its end), `more` counting the rest. */
  async deadLetters(filter?: DeadLetterFilter): Promise<DeadLetterList> {
    const limit = filter?.limit ?? DEFAULTS.broker.listLimit;
    const letters: DeadLetterList = [];
    let more = 0;
    for (const service of await this.services(filter?.target)) {
      await this.withLetters(service, filter, limit - letters.length, async (_publisher, held, left) => {
        letters.push(...held.map((h) => h.letter!));
        more += left;
      });
    }
    letters.sort((a, b) => (a.deadAt ?? 0) - (b.deadAt ?? 0));
    if (more > 0) letters.more = more;
    return letters;
  }

  /** A page of the first `DEFAULTS.operator.brokerReadWindow` messages of each queue (truncated when a queue holds more). */
  async deadLetterPage(filter: DeadLetterFilter | undefined, page: PageRequest): Promise<DeadLetterPage> {
    const letters: DeadLetter[] = [];
    let truncated = false;
    for (const service of await this.services(filter?.target)) {
      await this.withLetters(service, filter, Infinity, async (_publisher, held, _more, cut) => {
        letters.push(...held.map((h) => h.letter!));
        truncated ||= cut;
      }, DEFAULTS.operator.brokerReadWindow);
    }
    return pageOf(letters, filter, page, truncated);
  }

  replay(selection: DeadLetterSelection): Promise<number> {
    return this.settle(selection, async (publisher, { message, letter }) => {
      const queue = queueName(this.prefix, letter!.target);
      const headers: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(message.properties.headers ?? {})) {
        if (!name.startsWith('x-') && !name.startsWith('events-')) headers[name] = value;
      }
      const { contentType, messageId, type, appId, timestamp } = message.properties;
      const outcome = await publisher.publish(queue, message.content, { contentType, messageId, type, appId, timestamp, headers });
      if (outcome === 'returned') throw new Error(`the broker has no queue "${queue}": has the service ever run with this prefix?`);
    });
  }

  discard(selection: DeadLetterSelection): Promise<number> {
    return this.settle(selection, async () => undefined);
  }

  async close(): Promise<void> {
    const { model, publisher } = this;
    this.model = this.publisher = this.current = undefined;
    // The channel closes before the connection: a quorum queue can lose acks sent just before a connection closes.
    await publisher?.then((p) => p.close()).catch(() => undefined);
    await model?.then((m) => m.close()).catch(() => undefined);
  }

  /** Runs `action` on each selected letter, then acks it; resolves with how many. */
  private async settle(selection: DeadLetterSelection, action: (publisher: Publisher, held: Held) => Promise<void>): Promise<number> {
    const filter = selectionFilter(selection);
    let count = 0;
    for (const service of await this.services(filter.target)) {
      await this.withLetters(service, filter, Infinity, async (publisher, held) => {
        for (const h of held) {
          await action(publisher, h);
          publisher.channel.ack(h.message);
          h.settled = true;
          count += 1;
        }
      });
    }
    return count;
  }

  /** The given service, or every service in the registry under the prefix (only `target`, when given). */
  private async services(target?: string): Promise<string[]> {
    let services = this.location.service !== undefined ? [this.location.service] : [];
    if (this.location.service === undefined && (await this.exists(registryQueue(this.prefix).name))) {
      services = await registeredNames((await this.open()).channel, this.prefix);
    }
    return target === undefined ? services : services.filter((s) => s === target);
  }

  /** Whether the queue exists; for the dead-letter queue of the one service asked for, an error when not. */
  private async exists(queue: string): Promise<boolean> {
    if (this.existing.has(queue)) return true;
    const channel = await (await this.connect()).createChannel();
    channel.on('error', () => undefined);
    try {
      await channel.checkQueue(queue);
      await channel.close().catch(() => undefined);
      this.existing.add(queue);
      return true;
    } catch (cause) {
      // The broker closed the channel with its refusal.
      if (this.location.service === undefined) return false;
      throw new ConfigError(`the broker has no dead-letter queue "${queue}": check the service name and the prefix`, {
        variable: 'EVENTS_BROKER_PREFIX',
        cause,
      });
    }
  }

  /**
   * Fetches every message of the service's dead-letter queue unacknowledged (however many, or the
   * first `maxRead`: `truncated` tells whether others are left), runs `run` with the first `keep`
   * that match `filter` and the count of the other matches (`more`), and gives back (nack, requeue,
   * in order) what `run` did not settle. Of the rest only the delivery tag is kept, so a queue of
   * millions costs no memory here. Undefined when the service has no dead-letter queue.
   */
  private async withLetters<T>(
    service: string,
    filter: DeadLetterFilter | undefined,
    keep: number,
    run: (publisher: Publisher, held: Held[], more: number, truncated: boolean) => Promise<T>,
    maxRead = Infinity,
  ): Promise<T | undefined> {
    const dlq = deadLetterQueueName(queueName(this.prefix, service));
    if (!(await this.exists(dlq))) return undefined;
    const publisher = await this.open();
    const taken: Held[] = [];
    const held: Held[] = [];
    let more = 0;
    try {
      const ids = new Map<string, number>();
      let truncated = false;
      for (;;) {
        const message = await publisher.channel.get(dlq, { noAck: false });
        if (message === false) break;
        const letter = describe(message, service, ids);
        const matches = matchesDeadLetter(letter, filter);
        if (matches && held.length < keep) {
          held.push({ message, letter, settled: false });
          taken.push(held[held.length - 1]!);
        } else {
          if (matches) more += 1;
          taken.push({ message: { fields: message.fields } as GetMessage, settled: false });
        }
        if (taken.length >= maxRead) {
          truncated = message.fields.messageCount > 0;
          break;
        }
      }
      return await run(publisher, held, more, truncated);
    } finally {
      for (const h of taken) if (!h.settled && !publisher.closed) publisher.channel.nack(h.message, false, true);
    }
  }

  /** The operator's channel (a new one after a channel error). */
  private open(): Promise<Publisher> {
    if (this.current?.closed) this.publisher = this.current = undefined;
    if (!this.publisher) {
      const opening = (async () => (this.current = new Publisher(await (await this.connect()).createConfirmChannel())))();
      opening.catch(() => {
        if (this.publisher === opening) this.publisher = undefined;
      });
      this.publisher = opening;
    }
    return this.publisher;
  }

  private connect(): Promise<ChannelModel> {
    if (!this.model) {
      const url = this.location.broker;
      const opening = loadAmqplib()
        .connect(url, { clientProperties: { connection_name: 'events-library operator' } })
        .then(
          (model) => model.on('error', () => undefined),
          (cause: unknown) => {
            const { message, permanent } = describeConnectFailure(cause, url);
            throw permanent ? new ConfigError(message, { variable: 'EVENTS_BROKER_URL', cause }) : new Error(message, { cause });
          },
        );
      // A failed connect is tried again on the next call.
      opening.catch(() => {
        if (this.model === opening) this.model = undefined;
      });
      this.model = opening;
    }
    return this.model;
  }
}

interface Held {
  message: GetMessage;
  /** Absent for a message read past what is kept (only its delivery tag is). */
  letter?: DeadLetter;
  settled: boolean;
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
  // The broker's own reason (e.g. `delivery_limit`) tells nothing of the signature: unverified.
  const reason = own(HEADERS.deadReason);
  return {
    id,
    kept: 'queue',
    ...claimsOf(identity, reason),
    target: service,
    reason: (byBroker ? text(lastDeath(deaths)?.reason) : reason) ?? 'unknown',
    error: own(HEADERS.deadError),
    attempts: Number.isFinite(attempts) && attempts > 0 ? attempts : undefined,
    deadAt: deadAt === undefined || Number.isNaN(deadAt) ? undefined : deadAt,
    createdAt: identity.time,
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
