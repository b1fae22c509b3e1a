// Kafka: librdkafka's mock cluster through kcat (test/helpers/kafka.ts), one per test file, a topic prefix per test.
import net from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { type MockCluster, startMockCluster } from '../../helpers/kafka.js';
import { webhookHeaders } from '../../helpers/signing.js';
import type { Backend } from '../backend.js';
import { brokerWorld } from './broker.js';

export function kafkaBackend(): Backend {
  let cluster: MockCluster | undefined;
  let worlds = 0;
  return {
    name: 'Kafka',
    features: { persistent: true, perKeyOrder: true, manyInstances: true, transactionalInbox: false, batches: false, handlerHoldsDelivery: false, deadLetters: 'receiver', subscriptions: true },
    async beforeAll() {
      cluster = await startMockCluster();
    },
    async afterAll() {
      await cluster?.stop();
    },
    async world() {
      worlds += 1;
      const { url, bootstrap } = cluster!;
      return brokerWorld({
        url,
        prefix: `s${worlds}.`,
        // The smallest session timeout a real broker allows by default keeps the group's rebalances short.
        broker: { kafka: { sessionTimeoutMs: 6_000 } },
        // The sender's own kafkajs client, whose sockets an outage refuses (the mock cluster's brokers
        // are announced by address, so a relay in front of the bootstrap would be bypassed).
        async senderLink() {
          let cut = false;
          const sockets = new Set<net.Socket>();
          const socketFactory = ({ host, port, onConnect }: { host: string; port: number; onConnect: () => void }) => {
            const socket = cut ? net.connect(1, '127.0.0.1') : net.connect({ host, port }, onConnect);
            sockets.add(socket);
            socket.once('close', () => sockets.delete(socket));
            return socket;
          };
          const client = new Kafka({ clientId: 'users', brokers: bootstrap.split(','), socketFactory, logLevel: logLevel.NOTHING, connectionTimeout: 1_000, requestTimeout: 2_000, retry: { retries: 5, initialRetryTime: 50, maxRetryTime: 200 } });
          return {
            broker: { kafka: { sessionTimeoutMs: 6_000, client } },
            cut: async () => {
              cut = true;
              // With an error, so that the client fails what it has in flight at once (a plain destroy leaves it waiting for its request timeout).
              for (const socket of sockets) socket.destroy(new Error('outage'));
            },
            restore: async () => void (cut = false),
            close: async () => undefined,
          };
        },
        async publish(topic, event, secret, key) {
          const producer = new Kafka({ brokers: bootstrap.split(','), logLevel: logLevel.NOTHING }).producer();
          await producer.connect();
          try {
            const value = JSON.stringify(event);
            await producer.send({
              topic,
              messages: [{ key: key ?? String(event.id), value, headers: { 'content-type': 'application/cloudevents+json', ...webhookHeaders(secret, String(event.id), value) } }],
            });
          } finally {
            await producer.disconnect();
          }
        },
      });
    },
  };
}
