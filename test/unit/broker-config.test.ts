import { createEventBus } from '../../src/bus.js';
import { resolveConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors/index.js';
import {
  deadLetterQueue,
  delayAtLeast,
  mainQueue,
  serviceTopology,
  waitQueue,
} from '../../src/backends/amqp/topology.js';
import { retryDelay } from '../../src/backends/broker-common.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { waitFor } from '../helpers/wait.js';
import { newSecret } from '../helpers/signing.js';

/** Nothing here connects: the broker connection starts on the first send or consume. */
const BROKER = 'amqp://guest:guest@127.0.0.1:1/none';

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('choosing the broker', () => {
  it('EVENTS_BROKER_URL selects RabbitMQ; without it HTTP push stays the default', () => {
    expect(resolveConfig({ env: {} }).broker).toBeUndefined();
    const broker = resolveConfig({ env: { EVENTS_BROKER_URL: BROKER, EVENTS_BROKER_PREFIX: 'ci.' } }).broker;
    expect(broker).toMatchObject({ url: BROKER, prefix: 'ci.', maxAttempts: 10 });
    expect(resolveConfig({ env: { EVENTS_BROKER_URL: 'amqp://x' }, broker: BROKER }).broker?.url).toBe(BROKER);
  });

  it('refuses a broker URL that is not amqp:// or amqps://, naming the variable and never echoing credentials', () => {
    const error = configError(() => resolveConfig({ env: { EVENTS_BROKER_URL: 'http://user:hunter2@host:5672' } }));
    expect(error.variable).toBe('EVENTS_BROKER_URL');
    expect(error.message).toContain('amqp://');
    expect(error.message).not.toContain('hunter2');
    expect(configError(() => resolveConfig({ broker: 'not a url' })).variable).toBe('EVENTS_BROKER_URL');
    expect(configError(() => resolveConfig({ broker: { url: BROKER, prefix: 'has space' } })).variable).toBe('EVENTS_BROKER_PREFIX');
    configError(() => resolveConfig({ broker: { url: BROKER, retryDelaysMs: [] } }));
    configError(() => resolveConfig({ broker: { url: BROKER, maxAttempts: 0 } }));
  });

  it("a RabbitMQ consumer's prefetch: broker.prefetch, else an explicit concurrency, else 100", () => {
    const prefetch = (options: Parameters<typeof resolveConfig>[0]) => (resolveConfig(options).broker as { prefetch?: number }).prefetch;
    expect(prefetch({ broker: BROKER })).toBe(100);
    expect(prefetch({ broker: BROKER, concurrency: 1 })).toBe(1);
    expect(prefetch({ broker: { url: BROKER, prefetch: 250 }, concurrency: 1 })).toBe(250);
    expect(configError(() => resolveConfig({ broker: { url: BROKER, prefetch: 0 } })).message).toMatch(/broker\.prefetch/);
  });

  it('with a broker, declareEvent needs no target URL (HTTP push does)', async () => {
    const secret = newSecret();
    const http = createEventBus({ service: 'users', secret, env: {}, logger: quietLogger() });
    expect(configError(() => http.declareEvent('user-created', ['payments'])).variable).toBe('EVENTS_SERVICE_PAYMENTS_URL');
    await http.close();

    const viaBroker = createEventBus({ service: 'users', secret, env: {}, broker: BROKER, logger: quietLogger() });
    expect(() => viaBroker.declareEvent('user-created', ['payments', 'orders'])).not.toThrow();
    await viaBroker.close();
  });

  it('with a broker, a target still needs a signing secret, and subscribing needs this service name and secret', async () => {
    const noSecret = createEventBus({ service: 'users', env: {}, broker: BROKER, logger: quietLogger() });
    expect(configError(() => noSecret.declareEvent('user-created', ['payments'])).variable).toBe('EVENTS_SERVICE_PAYMENTS_SECRET');
    expect(configError(() => noSecret.subscribeTo('user-created', () => undefined)).variable).toBe('EVENTS_SECRET');
    await noSecret.close();
    const noName = createEventBus({ secret: newSecret(), env: {}, broker: BROKER, logger: quietLogger() });
    expect(configError(() => noName.subscribeTo('user-created', () => undefined)).variable).toBe('EVENTS_SERVICE_NAME');
    await noName.close();
  });

  it('consuming with the in-memory inbox: start() throws a ConfigError naming the durable inboxes and the volatile choice (issue 16 item 15)', async () => {
    for (const url of [BROKER, 'kafka://127.0.0.1:1']) {
      const bus = createEventBus({ service: 'payments', secret: newSecret(), env: {}, broker: url, logger: quietLogger() });
      bus.subscribeTo('user-created', () => undefined);
      const error = await bus.start().then(() => undefined, (thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(ConfigError);
      const { message, variable } = error as ConfigError;
      expect(variable).toBe('EVENTS_INBOX_PATH');
      for (const choice of ['EVENTS_INBOX_PATH', 'EVENTS_DATABASE_URL', 'inbox: { volatile: true }', 'EVENTS_INBOX_VOLATILE=true']) expect(message).toContain(choice);
      await bus.close();
    }
    // Started by subscribeTo alone (no start() call): the same error, logged.
    const capture = createCapturingLogger('error');
    const auto = createEventBus({ service: 'payments', secret: newSecret(), env: {}, broker: BROKER, logger: capture.logger });
    auto.subscribeTo('user-created', () => undefined);
    await waitFor(() => capture.withMessage('broker consumer did not start').length === 1, { what: 'the error logged' });
    expect(capture.records[0]!.error).toContain('EVENTS_INBOX_VOLATILE=true');
    await auto.close();

    expect(resolveConfig({ env: {} }).inbox.volatile).toBe(false);
    expect(resolveConfig({ env: { EVENTS_INBOX_VOLATILE: 'true' } }).inbox.volatile).toBe(true);
    expect(resolveConfig({ env: { EVENTS_INBOX_VOLATILE: 'true' }, inbox: { volatile: false } }).inbox.volatile).toBe(false);
    expect(configError(() => resolveConfig({ env: { EVENTS_INBOX_VOLATILE: 'maybe' } })).variable).toBe('EVENTS_INBOX_VOLATILE');
  });

  it('names the install command when the optional peer amqplib is missing', () => {
    jest.isolateModules(() => {
      jest.doMock('amqplib', () => {
        throw Object.assign(new Error("Cannot find module 'amqplib'"), { code: 'MODULE_NOT_FOUND' });
      });
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { createEventBus: create } = require('../../src/bus.js') as { createEventBus: typeof createEventBus };
      // The isolated registry has its own ConfigError class: compare by name.
      let error: ConfigError | undefined;
      try {
        create({ service: 'users', env: {}, broker: BROKER, logger: quietLogger() });
      } catch (thrown) {
        error = thrown as ConfigError;
      }
      expect(error?.name).toBe('ConfigError');
      expect(error!.message).toContain('npm install amqplib');
      expect(error!.variable).toBe('EVENTS_BROKER_URL');
    });
    jest.dontMock('amqplib');
  });
});

describe('topology (one place for queue names and arguments)', () => {
  it('gives each service a durable quorum queue, a dead-letter queue and TTL wait queues that dead-letter back', () => {
    expect(mainQueue('t.', 'payments', 20)).toEqual({
      name: 't.payments',
      arguments: {
        'x-queue-type': 'quorum',
        'x-delivery-limit': 20,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 't.payments.dlq',
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      },
    });
    expect(deadLetterQueue('t.payments')).toEqual({ name: 't.payments.dlq', arguments: { 'x-queue-type': 'quorum' } });
    expect(waitQueue('t.payments', 5000)).toMatchObject({
      name: 't.payments.wait.5000ms',
      arguments: { 'x-message-ttl': 5000, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 't.payments' },
    });
    expect([...serviceTopology('', 'orders', 20, [100, 200], [150, 200]).waits.keys()]).toEqual([100, 150, 200]);
    // By default RetryLaterError gets fine tiers besides the retry schedule.
    expect([...serviceTopology('', 'orders', 20, [1_000, 5_000]).waits.keys()]).toEqual(
      expect.arrayContaining([1_000, 2_000, 3_000, 5_000, 10_000, 3_600_000]),
    );
  });

  it('grows retry delays along the schedule, the last repeating; RetryLaterError(n) takes the shortest wait of at least n s', () => {
    const schedule = [1_000, 5_000, 30_000];
    expect([1, 2, 3, 4, 9].map((attempt) => retryDelay(schedule, attempt))).toEqual([1_000, 5_000, 30_000, 30_000, 30_000]);
    expect(delayAtLeast(schedule, 0)).toBe(1_000);
    expect(delayAtLeast(schedule, 2_000)).toBe(5_000);
    expect(delayAtLeast(schedule, 5_000)).toBe(5_000);
    expect(delayAtLeast(schedule, 3_600_000)).toBe(30_000);
  });
});
