// Kafka: librdkafka's mock cluster through kcat (test/helpers/kafka.ts), one per test file, a topic prefix per test.
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
