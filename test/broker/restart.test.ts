// A broker restart (rabbitmqctl stop_app, then start_app) mid-stream: senders and consumers
// reconnect, re-declare and re-consume by themselves, and nothing is lost. It restarts the whole
// node, so the broker test files take turns (takeBrokerTurns).
import { serviceTopology } from '../../src/backends/amqp/topology.js';
import { createEventBus, DEFAULTS, type EventBus } from '../../src/index.js';
import amqplib from 'amqplib';
import { BROKER_HOST, BROKER_PORT, describeWithBroker, restartBroker, takeBrokerTurns } from '../helpers/broker.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const secret = newSecret();

describeWithBroker('RabbitMQ restart', () => {
  takeBrokerTurns();
  const cleanups = cleanupAfterEach();
  // The restart drops every connection of the node anyway: the default vhost, with a prefix of its own.
  const url = `amqp://guest:guest@${BROKER_HOST}:${BROKER_PORT}`;
  const prefix = `events-test-restart-${process.pid}.`;
  afterAll(async () => {
    const connection = await amqplib.connect(url);
    const channel = await connection.createChannel();
    const { main, deadLetters, waits } = serviceTopology(prefix, 'payments', DEFAULTS.broker.deliveryLimit, DEFAULTS.broker.retryDelaysMs);
    for (const queue of [main, deadLetters, ...waits.values()]) await channel.deleteQueue(queue.name);
    await connection.close();
  });

  it('survives stop_app/start_app mid-stream: 0 lost, the outage logged once and the recovery once', async () => {
    const dir = tempDir('amqp-restart');
    cleanups.push(() => dir.remove());
    const fast = { url, prefix, reconnectBaseDelayMs: 100, reconnectMaxDelayMs: 500 };
    const make = (service: string, extra: Parameters<typeof createEventBus>[0] = {}): EventBus => {
      const b = createEventBus({
        service,
        secret,
        logger: quietLogger(),
        broker: fast,
        redelivery: { probeMaxDelayMs: 500 },
        inbox: { volatile: true },
        ...extra,
      });
      cleanups.push(() => b.close());
      return b;
    };
    const senderLog = createCapturingLogger(process.env.EVENTS_TEST_LOG ? 'debug' : 'info');
    if (process.env.EVENTS_TEST_LOG) senderLog.logger.add(quietLogger().transports[0]!);
    const users = make('users', { logger: senderLog.logger, outbox: { path: dir.file('outbox.db') } }).declareEvent('user-created', ['payments']);
    const handled = new Set<string>();
    const consumerLog = createCapturingLogger('info');
    for (let i = 0; i < 2; i += 1) {
      const b = make('payments', i === 0 ? { logger: consumerLog.logger } : {});
      b.subscribeTo('user-created', (_d, event) => void handled.add(event.id));
      await b.start();
    }
    const broker = restartBroker();
    const ids: string[] = [];
    for (let n = 0; n < 100; n += 1) ids.push((await users.emit('user-created', { n })).id);
    await waitFor(() => handled.size >= 20, { what: 'some handled before the restart' });
    const stopping = broker.stop();
    try {
      // Emits keep resolving while the broker goes down and is down: the outbox holds them.
      for (let n = 100; n < 200; n += 1) {
        ids.push((await users.emit('user-created', { n })).id);
        if (n % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await stopping;
      for (let n = 200; n < 250; n += 1) ids.push((await users.emit('user-created', { n })).id);
    } finally {
      await stopping.catch(() => undefined);
      await broker.start();
    }
    await waitFor(() => ids.every((id) => handled.has(id)), { timeoutMs: 30_000, what: 'every event after the restart' });
    expect(await users.outboxStats()).toMatchObject({ pending: 0, deadLetters: 0 });
    for (const log of [senderLog, consumerLog]) {
      expect(log.withMessage('broker connection lost; reconnecting')).toHaveLength(1);
      expect(log.withMessage('broker connection restored')).toHaveLength(1);
    }
  }, 60_000);
});
