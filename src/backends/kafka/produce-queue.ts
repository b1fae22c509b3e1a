import type { KafkaOutgoingMessage } from './api.js';

/** The records of one topic in one produce request. */
export interface TopicMessages {
  topic: string;
  messages: KafkaOutgoingMessage[];
}

export interface ProduceQueueOptions {
  /** One produce request (acks = all); throws when the cluster did not take every record of it. */
  produce(topicMessages: TopicMessages[]): Promise<void>;
  /** Most record bytes (keys, values, headers) in one request; an entry larger than this goes alone. */
  maxBytes: number;
}

interface Entry extends TopicMessages {
  bytes: number;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * The records to produce, sent in as few requests as carry them (group commit): one request in
 * flight at a time, and what is sent meanwhile, to any topic, goes together in the next one, so a
 * dispatcher with many deliveries in flight pays one round trip for all of them instead of one
 * each. A lone record waits for nothing but the end of the current I/O turn. Order: entries go out
 * in the order they came, so records of one topic and key keep their order (the transport never
 * has two sends of one key in flight). Each entry settles with its own request: a request that
 * carried several topics and failed is sent again one topic at a time, so a topic the cluster
 * refuses fails only its own entries (those of the others may then be written twice: the
 * receivers' inboxes absorb it, as after any retried send).
 */
export class ProduceQueue {
  private queue: Entry[] = [];
  private flushing = false;

  constructor(private readonly o: ProduceQueueOptions) {}

  /** Resolves once the request carrying `messages` was taken by the cluster. */
  send(topic: string, messages: KafkaOutgoingMessage[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let bytes = 0;
      for (const message of messages) bytes += recordBytes(message);
      this.queue.push({ topic, messages, bytes, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /** Fails every entry not yet sent (the link is closing). */
  failPending(error: Error): void {
    const pending = this.queue;
    this.queue = [];
    for (const entry of pending) entry.reject(error);
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      // The sends started in this I/O turn (a dispatcher starts its requests together) join the first request.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.queue.length > 0) await this.request(this.take());
    } finally {
      this.flushing = false;
    }
  }

  /** The oldest entries that fit in one request (at least one). */
  private take(): Entry[] {
    let bytes = this.queue[0]!.bytes;
    let count = 1;
    while (count < this.queue.length && bytes + this.queue[count]!.bytes <= this.o.maxBytes) bytes += this.queue[count++]!.bytes;
    return this.queue.splice(0, count);
  }

  private async request(entries: Entry[]): Promise<void> {
    const byTopic = group(entries);
    try {
      await this.o.produce(byTopic);
    } catch (error) {
      if (byTopic.length === 1) {
        for (const entry of entries) entry.reject(error);
        return;
      }
      // Which topic failed is not known: each on its own, settled by its own answer.
      await Promise.all(
        byTopic.map(async (one) => {
          const own = entries.filter((entry) => entry.topic === one.topic);
          try {
            await this.o.produce([one]);
          } catch (failure) {
            for (const entry of own) entry.reject(failure);
            return;
          }
          for (const entry of own) entry.resolve();
        }),
      );
      return;
    }
    for (const entry of entries) entry.resolve();
  }
}

/** The entries' records per topic, topics in order of first appearance, records in entry order. */
function group(entries: readonly Entry[]): TopicMessages[] {
  const byTopic = new Map<string, KafkaOutgoingMessage[]>();
  for (const { topic, messages } of entries) {
    const list = byTopic.get(topic);
    if (list) list.push(...messages);
    else byTopic.set(topic, [...messages]);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

/** A record's key, value and header bytes (what counts towards a broker's `message.max.bytes`, but for framing). */
function recordBytes({ key, value, headers }: KafkaOutgoingMessage): number {
  let bytes = byteLength(key) + byteLength(value);
  if (headers) for (const name in headers) bytes += name.length + byteLength(headers[name]);
  return bytes;
}

function byteLength(value: Buffer | string | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}
