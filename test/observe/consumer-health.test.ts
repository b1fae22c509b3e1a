// Health sees the broker consumer (issue 16, item 1): a receiver whose broker connection keeps
// failing (a vhost typo, an unreachable Kafka) is unhealthy once it has not been consuming for longer
// than health.targetDownMs, and says why; one that consumes is healthy and says so.
import { createEventBus, type EventBus, type EventBusOptions, type HealthStatus } from '../../src/index.js';
import { BROKER_HOST, BROKER_PORT, createVhost, describeWithBroker, type TestVhost } from '../helpers/broker.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { request } from '../helpers/http-client.js';
import { quietLogger } from '../helpers/logger.js';
import { startServer } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const cleanups = cleanupAfterEach();
const TOKEN = 'consumer-health-token';

/** A `payments` receiver on `broker`, with a durable inbox, subscribed (so it starts consuming by itself). */
function receiver(broker: string, options: Partial<EventBusOptions> = {}): EventBus {
  const dir = tempDir('consumer-health');
  const bus = createEventBus({
    service: 'payments',
    secret: newSecret(),
    logger: quietLogger(),
    env: {},
    inbox: { path: dir.file('inbox.db') },
    broker: { url: broker, reconnectBaseDelayMs: 20, reconnectMaxDelayMs: 200 },
    health: { targetDownMs: 300 },
    console: { token: TOKEN },
    shutdownTimeoutMs: 500,
    ...options,
  });
  cleanups.push(() => dir.remove(), () => bus.close());
  bus.subscribeTo('user-created', () => undefined);
  return bus;
}

/** Waits for health to turn 503 over HTTP because of the consumer, and answers the operator's view. */
async function unhealthy(bus: EventBus): Promise<HealthStatus> {
  const server = await startServer(bus.nodeHandler());
  cleanups.push(() => server.close());
  const answer = await waitFor(async () => {
    const got = await request(`${server.url}/health`, { method: 'GET', headers: { authorization: `Bearer ${TOKEN}` } });
    return got.status === 503 && got;
  }, { what: 'a 503 from the health endpoint', timeoutMs: 15_000 });
  const stranger = await request(`${server.url}/health`, { method: 'GET' });
  expect([stranger.status, stranger.text]).toEqual([503, '{"healthy":false}']);
  return answer.json as HealthStatus;
}

describe('consumer health: Kafka', () => {
  it('kafka://127.0.0.1:9 (nothing listens): the consumer is down, health 503 past targetDownMs, with the error', async () => {
    const bus = receiver('kafka://127.0.0.1:9');
    const status = await unhealthy(bus);
    expect(status.healthy).toBe(false);
    expect(status.consumers.payments).toMatchObject({ state: 'down', downForMs: expect.any(Number) });
    // Down from its creation; the error once its first start has failed.
    const failed = await waitFor(async () => (await bus.health()).consumers.payments?.lastError, { what: 'the error of a failed start' });
    expect(failed).toMatch(/ECONNREFUSED|connect/i);
    expect(status.consumers.payments!.downForMs).toBeGreaterThan(300);
    expect(status.problems).toEqual([expect.stringMatching(/^the consumer of payments has not been consuming for \d+ s/)]);
  });
});

describeWithBroker('consumer health: RabbitMQ', () => {
  let vhost: TestVhost;
  beforeAll(() => {
    vhost = createVhost('consumer-health');
  });
  afterAll(() => vhost.remove());

  it('a vhost typo: the consumer is down, health 503 past targetDownMs, naming what the broker said', async () => {
    const bus = receiver(`amqp://guest:guest@${BROKER_HOST}:${BROKER_PORT}/${vhost.name}-typo`);
    const status = await unhealthy(bus);
    expect(status.consumers.payments).toMatchObject({ state: 'down', lastError: expect.any(String) });
    expect(status.consumers.payments!.downForMs).toBeGreaterThan(300);
    expect(status.problems).toEqual([expect.stringMatching(/^the consumer of payments has not been consuming for \d+ s \(.+\)$/)]);
  });

  it('a consumer that consumes is healthy; dropped by the broker it is down, then consuming again', async () => {
    const bus = receiver(vhost.url, { broker: { url: vhost.url, prefix: 'ch.', reconnectBaseDelayMs: 20 } });
    await bus.start();
    expect(await bus.health()).toMatchObject({ healthy: true, consumers: { 'ch.payments': { state: 'consuming' } } });
    await vhost.dropConnections();
    // The drop is seen (it leaves its error), then the consumer is registered again.
    await waitFor(async () => (await bus.health()).consumers['ch.payments']?.lastError !== undefined, { what: 'the drop seen', timeoutMs: 10_000 });
    await waitFor(async () => (await bus.health()).consumers['ch.payments']?.state === 'consuming', { what: 'consuming again', timeoutMs: 10_000 });
    expect((await bus.health()).healthy).toBe(true);
  });
});
