// RabbitMQ: the real broker, a vhost per test file (test/helpers/broker.ts), a queue prefix per test.
import amqplib from 'amqplib';
import { BROKER_HOST, BROKER_PORT, createVhost, type TestVhost } from '../../helpers/broker.js';
import { startTcpProxy } from '../../helpers/tcp-proxy.js';
import { webhookHeaders } from '../../helpers/signing.js';
import type { Backend } from '../backend.js';
import { DEFAULTS } from '../../../src/defaults.js';
import { serviceTopology } from '../../../src/backends/amqp/topology.js';
import { brokerWorld, QUICK_BROKER } from './broker.js';

export function amqpBackend(): Backend {
  let vhost: TestVhost | undefined;
  let worlds = 0;
  return {
    name: 'RabbitMQ',
    features: { persistent: true, perKeyOrder: false, manyInstances: true, transactionalInbox: false, batches: true, handlerHoldsDelivery: false, deadLetters: 'receiver', subscriptions: true },
    beforeAll() {
      vhost = createVhost('scenarios');
    },
    afterAll() {
      vhost?.remove();
    },
    async world() {
      worlds += 1;
      const n = worlds;
      const url = vhost!.url;
      return brokerWorld({
        url,
        prefix: `s${n}.`,
        async senderLink() {
          const proxy = await startTcpProxy(BROKER_HOST, BROKER_PORT);
          const relayed = new URL(url);
          relayed.port = String(proxy.port);
          return { broker: { url: relayed.toString() }, cut: proxy.cut, restore: proxy.restore, close: proxy.close };
        },
        // Each service declares about 16 quorum queues; a file's worlds would otherwise pile up
        // hundreds in the vhost, past the broker's file descriptors.
        async remove(services) {
          const connection = await amqplib.connect(url);
          try {
            const channel = await connection.createChannel();
            for (const service of services) {
              const { main, deadLetters, waits } = serviceTopology(`s${n}.`, service, DEFAULTS.broker.deliveryLimit, QUICK_BROKER.retryDelaysMs);
              for (const queue of [main, deadLetters, ...waits.values()]) await channel.deleteQueue(queue.name);
            }
          } finally {
            await connection.close();
          }
        },
        async publish(queue, event, secret) {
          const connection = await amqplib.connect(url);
          try {
            const channel = await connection.createConfirmChannel();
            const body = JSON.stringify(event);
            channel.publish('', queue, Buffer.from(body), {
              contentType: 'application/cloudevents+json',
              persistent: true,
              headers: webhookHeaders(secret, String(event.id), body),
            });
            await channel.waitForConfirms();
          } finally {
            await connection.close();
          }
        },
      });
    },
  };
}
