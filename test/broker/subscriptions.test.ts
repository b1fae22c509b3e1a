// RabbitMQ specifics of events declared without targets (the shared behaviour is in
// test/scenarios/suite.ts): the system's topic exchange and the bindings, and an event nobody
// subscribes to, dropped by design: not retried, logged at debug, counted in metrics.
import { metrics } from '@opentelemetry/api';
import { type DataPoint, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import amqplib from 'amqplib';
import { ConfigError, createEventBus, type EventBus } from '../../src/index.js';
import { createVhost, describeWithBroker, takeBrokerTurns, type TestVhost } from '../helpers/broker.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { newSecret } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

/** Collects on demand. */
class TestReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const reader = new TestReader();
const provider = new MeterProvider({ readers: [reader] });
metrics.setGlobalMeterProvider(provider);
afterAll(() => provider.shutdown());

/** `events.deliveries` with this outcome and type. */
async function deliveries(outcome: string, type: string): Promise<number> {
  const { resourceMetrics } = await reader.collect();
  const points = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'events.deliveries')?.dataPoints ?? [];
  const point = (points as Array<DataPoint<number>>).find((p) => p.attributes['events.outcome'] === outcome && p.attributes['cloudevents.event_type'] === type);
  return point?.value ?? 0;
}

const secret = newSecret();

describeWithBroker('RabbitMQ: events declared without targets', () => {
  takeBrokerTurns();
  let vhost: TestVhost;
  const cleanups = cleanupAfterEach();

  beforeAll(() => {
    vhost = createVhost('subscriptions');
  });
  afterAll(() => vhost?.remove());

  function bus(service: string, extra: Parameters<typeof createEventBus>[0] = {}): EventBus {
    const b = createEventBus({ service, secret, logger: quietLogger(), env: {}, inbox: { volatile: true }, ...extra, broker: { url: vhost.url, prefix: 'p.' } });
    cleanups.push(() => b.close());
    return b;
  }

  it('an event nobody subscribes to is dropped by design: delivered from the outbox at once, logged at debug, counted as unrouted', async () => {
    const log = createCapturingLogger('debug');
    const users = bus('users', { logger: log.logger }).declareEvent('nobody-listens', { schema: { type: 'object' } });
    const { id } = await users.emit('nobody-listens', { n: 1 });
    await waitFor(async () => (await users.outboxStats()).pending === 0, { what: 'the outbox empty' });
    expect(log.withMessage('no service subscribes to this event type: dropped')).toEqual([
      expect.objectContaining({ eventId: id, type: 'nobody-listens', exchange: 'p.events', level: 'debug' }),
    ]);
    expect(log.withMessage('delivery attempt failed')).toEqual([]);
    expect(await deliveries('unrouted', 'nobody-listens')).toBe(1);
    expect(await deliveries('delivered', 'nobody-listens')).toBe(0);
  });

  it("one topic exchange per system (<prefix>events): a consumer binds its queue to the types it subscribes to, for good; a message's routing key is its type", async () => {
    const payments = bus('payments');
    payments.subscribeTo('user-created', () => undefined);
    payments.subscribeTo('user-deleted', () => undefined);
    await payments.start();
    await payments.close(); // the bindings stay: what is emitted now waits in its queue
    const connection = await amqplib.connect(vhost.url);
    cleanups.push(() => connection.close());
    const channel = await connection.createConfirmChannel();
    // Declared as a durable topic exchange already (another type or durability would close the channel).
    await channel.assertExchange('p.events', 'topic', { durable: true });
    const probe = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(probe.queue, 'p.events', 'user-created');
    const users = bus('users').declareEvent('user-created').declareEvent('user-deleted').declareEvent('user-updated');
    const { id } = await users.emit('user-created', { n: 1 });
    await users.emit('user-deleted', { n: 2 });
    await users.emit('user-updated', { n: 3 });
    await waitFor(async () => (await users.outboxStats()).pending === 0, { what: 'the outbox empty' });
    expect(await vhost.messageCount('p.payments')).toBe(2); // not user-updated, which it does not subscribe to
    const message = await waitFor(async () => (await channel.get(probe.queue, { noAck: true })) || false, { what: 'the copy in the probe queue' });
    expect(message.fields).toMatchObject({ exchange: 'p.events', routingKey: 'user-created' });
    expect(JSON.parse(message.content.toString())).toMatchObject({ id, type: 'user-created' });
    expect(JSON.parse(message.content.toString())).not.toHaveProperty('recipient');
  });

  it('events of several types due together: one batch message per type, each routed by its type to the queues bound to it', async () => {
    // Services of their own: the queue of the test above keeps its bindings and messages.
    const log = createCapturingLogger('warn');
    const billing = bus('billing', { logger: log.logger });
    const audit = bus('audit');
    const billed: string[] = [];
    const audited: string[] = [];
    billing.subscribeTo('order-paid', (_data, event) => void billed.push(event.id));
    audit.subscribeTo('order-paid', (_data, event) => void audited.push(event.id));
    audit.subscribeTo('order-refunded', (_data, event) => void audited.push(event.id));
    await Promise.all([billing.start(), audit.start()]);
    // One publish at a time, after a wait for more: the six events leave together.
    const users = bus('users', { concurrency: 1, batch: { lingerMs: 50 } }).declareEvent('order-paid').declareEvent('order-refunded');
    const emitted = await Promise.all([0, 1, 2, 3, 4, 5].map(async (n) => ({ n, id: (await users.emit(n % 2 ? 'order-refunded' : 'order-paid', { n })).id })));
    const paidIds = emitted.filter(({ n }) => n % 2 === 0).map(({ id }) => id);
    await waitFor(() => audited.length === 6 && billed.length === 3, { what: 'each subscriber handled its events' });
    expect(billed.sort()).toEqual(paidIds.sort());
    expect(log.withMessage('event refused')).toEqual([]); // no order-refunded reached billing
    expect(audited.sort()).toEqual(emitted.map(({ id }) => id).sort());
  });

  it('a type that cannot be a literal routing key is a ConfigError at declareEvent; with targets it is fine', () => {
    const users = bus('users');
    expect(() => users.declareEvent('order.*', { schema: { type: 'object' } })).toThrow(ConfigError);
    expect(() => users.declareEvent('order.*', { schema: { type: 'object' } })).toThrow(/"\*" and "#" are wildcards/);
    expect(() => users.declareEvent('order.*', ['payments'])).not.toThrow();
  });
});
