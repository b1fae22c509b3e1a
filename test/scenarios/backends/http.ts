// HTTP push × {memory, SQLite, PostgreSQL}: the sender's outbox and the receiver's inbox of the
// same kind; each receiving service behind a real server on 127.0.0.1 (node:http, or Express for
// SQLite), on one port per service for the whole test so that a restarted service is found again.
import express from 'express';
import { createEventBus, type EventBus, type EventBusOptions } from '../../../src/index.js';
import { request } from '../../helpers/http-client.js';
import { quietLogger } from '../../helpers/logger.js';
import { createTestSchema, PG_URL } from '../../helpers/postgres.js';
import { freePort, startServer } from '../../helpers/server.js';
import { newSecret, signedStructured } from '../../helpers/signing.js';
import { tempDir } from '../../helpers/temp-dir.js';
import type { Backend, Features, ReceiverSpec, RunningService, World } from '../backend.js';

export type HttpStore = 'memory' | 'sqlite' | 'postgres';

const FEATURES: Record<HttpStore, Features> = {
  memory: { persistent: false, perKeyOrder: false, manyInstances: false, transactionalInbox: false, batches: true, handlerHoldsDelivery: true, deadLetters: 'sender', subscriptions: false },
  sqlite: { persistent: true, perKeyOrder: false, manyInstances: false, transactionalInbox: false, batches: true, handlerHoldsDelivery: true, deadLetters: 'sender', subscriptions: false },
  postgres: { persistent: true, perKeyOrder: false, manyInstances: false, transactionalInbox: true, batches: true, handlerHoldsDelivery: true, deadLetters: 'sender', subscriptions: false },
};

/** Short delays through public options: the scenarios wait for conditions, never for a fixed time. */
export const QUICK_SENDER: Partial<EventBusOptions> = {
  retry: { retries: 2, baseDelayMs: 10, maxDelayMs: 50 },
  redelivery: { baseDelayMs: 50, maxDelayMs: 200, probeMaxDelayMs: 100 },
  shutdownTimeoutMs: 1_000,
};

export function httpBackend(store: HttpStore): Backend {
  return {
    name: `HTTP + ${store}`,
    features: FEATURES[store],
    async world(): Promise<World> {
      const secret = newSecret();
      const dir = store === 'sqlite' ? tempDir('scenario') : undefined;
      const db = store === 'postgres' ? await createTestSchema('scenario') : undefined;
      const ports = new Map<string, Promise<number>>();
      const portOf = (service: string): Promise<number> => {
        if (!ports.has(service)) ports.set(service, freePort());
        return ports.get(service)!;
      };
      const urlOf = async (service: string) => `http://127.0.0.1:${await portOf(service)}/events`;
      // Closed at the end, senders first (they stop sending), then receivers; closing twice is fine.
      const senders: EventBus[] = [];
      const receivers: RunningService[] = [];
      /** The receivers not stopped yet, with what started them. */
      const live = new Map<RunningService, [string, ReceiverSpec]>();

      /** The options that put a bus's outbox (sender) or inbox (receiver) in this world's store. */
      const storeOptions = (role: 'sender' | 'receiver', service: string): Partial<EventBusOptions> => {
        if (store === 'sqlite') {
          return role === 'sender'
            ? { outbox: { path: dir!.file(`${service}-outbox.db`), pollIntervalMs: 100 } }
            : { inbox: { path: dir!.file(`${service}-inbox.db`) } };
        }
        if (store === 'postgres') return { database: PG_URL, databaseSchema: db!.schema, outbox: { pollIntervalMs: 100 } };
        return {};
      };

      const world: World = {
        database: db && { pool: db.pool, schema: db.schema },

        async sender({ targets, options }) {
          const services = Object.fromEntries(await Promise.all(targets.map(async (t) => [t, await urlOf(t)] as const)));
          const bus: EventBus = createEventBus({
            service: 'users',
            secret,
            services,
            logger: quietLogger(),
            env: {},
            ...QUICK_SENDER,
            ...storeOptions('sender', 'users'),
            ...options,
            outbox: { ...storeOptions('sender', 'users').outbox, ...options?.outbox },
          });
          senders.push(bus);
          return bus;
        },

        async receiver(service, spec): Promise<RunningService> {
          const { subscribe, options } = spec;
          const bus = createEventBus({ service, secret, logger: quietLogger(), env: {}, ...storeOptions('receiver', service), ...options });
          subscribe(bus);
          await bus.start();
          const listener = store === 'sqlite' ? express().use(bus.expressMiddleware()) : bus.nodeHandler();
          const server = await startServer(listener, await portOf(service));
          let stopped: Promise<void> | undefined;
          // The bus first: it answers what is in flight, then the server goes.
          const running: RunningService = {
            bus,
            stop: () => {
              live.delete(running);
              return (stopped ??= bus.close().then(() => server.close()));
            },
          };
          receivers.push(running);
          live.set(running, [service, spec]);
          return running;
        },

        async outage() {
          const down = [...live];
          for (const [running] of down) await running.stop();
          return { end: async () => void (await Promise.all(down.map(([, [service, spec]]) => world.receiver(service, spec)))) };
        },

        async deliverRaw(service, event) {
          const answer = await request(await urlOf(service), signedStructured(secret, event));
          if (answer.status >= 300) throw new Error(`${service} answered ${answer.status}: ${answer.text}`);
        },

        async close() {
          for (const bus of senders) await bus.close();
          for (const service of receivers) await service.stop();
          dir?.remove();
          await db?.drop();
        },
      };
      return world;
    },
  };
}
