import { EventEmitter } from 'node:events';
import { createEventBus, type KafkaClientLike } from '../../src/index.js';
import type { KafkaConsumerLike } from '../../src/backends/kafka/api.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { newSecret } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A client with the KafkaJS API (the `broker.kafka.client` seam) whose consumers act as kafkajs
 * does: the first one's join fails with an error kafkajs does not retry, so it leaves the group,
 * emits CRASH with `restart: false` and stays stopped (the mock cluster's SyncGroup race answers
 * INVALID_REQUEST this way); the next ones join.
 */
function clientWhoseFirstJoinFails(): { client: KafkaClientLike; consumers: Array<{ disconnected: boolean }> } {
  const consumers: Array<{ disconnected: boolean }> = [];
  const client: KafkaClientLike = {
    producer: () => ({ connect: async () => undefined, disconnect: async () => undefined, send: async () => undefined }),
    admin: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      createTopics: async () => true,
      fetchOffsets: async () => [],
      fetchTopicOffsets: async () => [],
    }),
    consumer: () => {
      const events = new EventEmitter();
      const state = { disconnected: false };
      const n = consumers.push(state);
      const consumer: KafkaConsumerLike = {
        events: { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' },
        on: (event, listener) => events.on(event, listener as (...args: unknown[]) => void),
        connect: async () => undefined,
        subscribe: async () => undefined,
        run: async () => {
          if (n === 1) {
            state.disconnected = true;
            events.emit('consumer.crash', { payload: { error: new Error('The group member is not valid (INVALID_REQUEST)'), restart: false } });
          } else {
            events.emit('consumer.group_join', { payload: {} });
          }
        },
        commitOffsets: async () => undefined,
        stop: async () => undefined,
        disconnect: async () => {
          state.disconnected = true;
        },
      };
      return consumer;
    },
  };
  return { client, consumers };
}

describe('Kafka consumer stopped by its client', () => {
  it('a consumer the client will not restart (CRASH, restart: false) is replaced after the session timeout, and start() resolves once the new one joined', async () => {
    const { client, consumers } = clientWhoseFirstJoinFails();
    const capture = createCapturingLogger('warn');
    const bus = createEventBus({
      service: 'workers',
      secret: newSecret(),
      logger: capture.logger,
      inbox: { volatile: true },
      broker: { url: 'kafka://127.0.0.1:9092', kafka: { client, sessionTimeoutMs: 200 } },
    });
    bus.subscribeTo('user-created', () => undefined);
    try {
      let started = false;
      void bus.start().then(() => (started = true));
      await waitFor(() => started, { timeoutMs: 3_000, what: 'start() to resolve after the replacement joined' });
      expect(consumers).toHaveLength(2);
      expect(consumers[0]!.disconnected).toBe(true);
      expect(consumers[1]!.disconnected).toBe(false);
      const warned = capture.withMessage('kafka consumer stopped by an error its client does not retry; starting a new one from the last committed offset');
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatchObject({ topic: 'workers', error: 'The group member is not valid (INVALID_REQUEST)', inMs: 200 });
    } finally {
      await bus.close();
    }
    expect(consumers[1]!.disconnected).toBe(true);
  });
});
