// A broker world, the same for RabbitMQ and Kafka: every bus on the broker URL with a queue/topic
// prefix of the test's own, the sender's outbox and each service's inbox in SQLite files of the
// test's own directory (so that a restarted sender resumes, and a restarted receiver dedupes).
import { createEventBus, type EventBus, type EventBusOptions } from '../../../src/index.js';
import { quietLogger } from '../../helpers/logger.js';
import { newSecret } from '../../helpers/signing.js';
import { tempDir } from '../../helpers/temp-dir.js';
import type { RunningService, World } from '../backend.js';

/** Short waits through public options: a failure waits 50 ms, then 100 ms; `RetryLaterError(1)` the 1 s queue. */
export const QUICK_BROKER = { retryDelaysMs: [50, 100, 1_000], reconnectBaseDelayMs: 50 };

export interface BrokerWorldOptions {
  url: string;
  prefix: string;
  /** Extra `broker` options (kafka settings). */
  broker?: Record<string, unknown>;
  /** The sender's own way to the broker, which `outage()` cuts (the receivers connect straight). */
  senderLink(): Promise<SenderLink>;
  /** Optional: removes what the world's receiving services left on the broker (RabbitMQ: their quorum queues, which hold the broker's few file descriptors). */
  remove?(services: readonly string[]): Promise<void>;
  /** Publishes a signed event to `<prefix><service>` as the sender's transport would. */
  publish(queue: string, event: Record<string, unknown>, secret: string, key?: string): Promise<void>;
}

/** How a world's sender reaches the broker: extra `broker` options, and a switch that cuts it off. */
export interface SenderLink {
  broker: Record<string, unknown>;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export function brokerWorld(o: BrokerWorldOptions): World {
  const secret = newSecret();
  const dir = tempDir('scenario-broker');
  const senders: EventBus[] = [];
  const receivers: RunningService[] = [];
  let link: Promise<SenderLink> | undefined;
  const bus = (service: string, extra: Partial<EventBusOptions>, store: Partial<EventBusOptions>): EventBus =>
    createEventBus({
      service,
      secret,
      logger: quietLogger(),
      env: {},
      shutdownTimeoutMs: 2_000,
      ...store,
      ...extra,
      broker: { url: o.url, prefix: o.prefix, ...QUICK_BROKER, ...o.broker, ...(extra.broker as object | undefined) },
    });

  return {
    async sender({ options = {} }) {
      const { broker } = await (link ??= o.senderLink());
      const extra = { ...options, broker: { ...broker, ...(options.broker as object | undefined) } as unknown as EventBusOptions['broker'] };
      const sender = bus('users', extra, { outbox: { path: dir.file('users-outbox.db'), pollIntervalMs: 100 } });
      senders.push(sender);
      return sender;
    },

    async receiver(service, { subscribe, concurrency, options = {} }) {
      const receiver = bus(service, { ...(concurrency ? { concurrency } : {}), ...options }, { inbox: { path: dir.file(`${service}-inbox.db`) } });
      subscribe(receiver);
      await receiver.start();
      const running = { bus: receiver, stop: () => receiver.close() };
      receivers.push(running);
      return running;
    },

    async outage() {
      const cutting = await (link ??= o.senderLink());
      await cutting.cut();
      return { end: () => cutting.restore() };
    },

    deliverRaw: (service, event, key) => o.publish(`${o.prefix}${service}`, event, secret, key),

    async close() {
      for (const sender of senders) await sender.close();
      for (const receiver of receivers) await receiver.stop();
      await (await link)?.close();
      await o.remove?.([...new Set(receivers.map((r) => r.bus.service!))]);
      dir.remove();
    },
  };
}
