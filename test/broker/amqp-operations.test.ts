// RabbitMQ operations (issue 16): connection failures that name their cause, a queue declared with
// other arguments, a deleted dead-letter queue, and dead-letter queues longer than a page.
import amqplib from 'amqplib';
import { main } from '../../src/cli.js';
import { ConfigError, createEventBus, type EventBus, type EventBusOptions, listDeadLetters, NonRetryableError, replayDeadLetters } from '../../src/index.js';
import { BROKER_HOST, BROKER_PORT, createVhost, describeWithBroker, takeBrokerTurns, type TestVhost } from '../helpers/broker.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const secret = newSecret();

describeWithBroker('RabbitMQ operations (real broker)', () => {
  takeBrokerTurns();
  let vhost: TestVhost;
  const cleanups = cleanupAfterEach();
  const dir = tempDir('amqp-operations');
  let tests = 0;
  let prefix = '';

  beforeAll(() => {
    vhost = createVhost('ops');
  });
  afterAll(() => {
    vhost?.remove();
    dir.remove();
  });
  beforeEach(() => {
    tests += 1;
    prefix = `o${tests}.`;
  });

  function bus(service: string, extra: Partial<EventBusOptions> = {}, url = vhost.url): EventBus {
    const b = createEventBus({
      service,
      secret,
      logger: quietLogger(),
      inbox: { path: dir.file(`${prefix}${service}-inbox.db`) },
      ...extra,
      broker: { url, prefix, retryDelaysMs: [50], reconnectBaseDelayMs: 20, reconnectMaxDelayMs: 200, ...(extra.broker as object | undefined) },
    });
    cleanups.push(() => b.close());
    return b;
  }

  async function withChannel<T>(use: (channel: amqplib.Channel) => Promise<T>): Promise<T> {
    const connection = await amqplib.connect(vhost.url);
    try {
      const channel = await connection.createChannel();
      return await use(channel);
    } finally {
      await connection.close();
    }
  }

  const base = `amqp://guest:guest@${BROKER_HOST}:${BROKER_PORT}`;

  it.each([
    ['a vhost that does not exist', `${base}/no-such-vhost`, 'has no virtual host "no-such-vhost"'],
    ['a wrong password', `amqp://guest:wrong@${BROKER_HOST}:${BROKER_PORT}/`, 'refused the credentials of user "guest"'],
  ])('%s: the cause and EVENTS_BROKER_URL named, an error each time the backoff grows (service and CLI)', async (_what, url, cause) => {
    const log = createCapturingLogger('debug');
    const payments = bus('payments', { logger: log.logger }, url);
    payments.subscribeTo('user-created', () => undefined);
    void payments.start().catch(() => undefined);
    const refusals = () => log.withMessage('broker refused the connection; retrying');
    await waitFor(() => refusals().length >= 3, { timeoutMs: 20_000, what: 'three logged refusals' });
    for (const r of refusals()) {
      expect(r.level).toBe('error');
      expect(String(r.error)).toContain(cause);
      expect(String(r.error)).toContain('EVENTS_BROKER_URL');
      expect(String(r.error)).not.toContain('wrong');
    }
    // The 1st, 2nd, 4th… failure in a row: as the backoff grows.
    expect(refusals().slice(0, 3).map((r) => (r as unknown as { failures: number }).failures)).toEqual([1, 2, 4]);
    expect(log.withMessage('broker unreachable; retrying')).toEqual([]);

    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['dead-letters', '--broker', url, '--service', 'payments'], {}, { out: (t) => out.push(t), err: (t) => err.push(t) });
    expect(code).toBe(2);
    expect(err.join('')).toContain(cause);
    expect(err.join('')).toContain('EVENTS_BROKER_URL');
  });

  it('a broker that does not answer: one warning naming the address and EVENTS_BROKER_URL, its retries silent', async () => {
    const log = createCapturingLogger('debug');
    const users = bus('users', { logger: log.logger, timeoutMs: 500 }, 'amqp://guest:guest@127.0.0.1:9/');
    users.declareEvent('user-created', ['payments']);
    await users.emit('user-created', {});
    await waitFor(() => log.withMessage('delivery attempt failed').length >= 3, { timeoutMs: 20_000, what: 'three failed tries' });
    const lines = log.withMessage('broker unreachable; retrying');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', error: expect.stringContaining('127.0.0.1:9 is unreachable (ECONNREFUSED)') });
    expect(String(lines[0]!.error)).toContain('EVENTS_BROKER_URL');
  });

  it('a deleted <queue>.dlq: a poison event is dead-lettered into it declared again, after maxAttempts runs, never dropped', async () => {
    let runs = 0;
    const log = createCapturingLogger('debug');
    const payments = bus('payments', { logger: log.logger, broker: { url: vhost.url, maxAttempts: 2 } });
    payments.subscribeTo('user-created', () => {
      runs += 1;
      throw new Error('poison');
    });
    let pinged = false;
    payments.subscribeTo('ping', () => void (pinged = true));
    await payments.start();
    // The sender declares its target's queues before its first publish: delete after that one.
    const users = bus('users').declareEvent('user-created', ['payments']).declareEvent('ping', ['payments']);
    await users.emit('ping', {});
    await waitFor(() => pinged, { what: 'the first event' });
    await withChannel((channel) => channel.deleteQueue(`${prefix}payments.dlq`));
    const { id } = await users.emit('user-created', {});
    await waitFor(async () => (await vhost.messageCount(`${prefix}payments.dlq`)) === 1, { timeoutMs: 20_000, what: 'the dead letter' });
    expect(await payments.deadLetters()).toEqual([expect.objectContaining({ eventId: id, reason: 'handler_failed' })]);
    expect(runs).toBe(2);
    expect(log.withMessage('could not settle a broker message; it will be redelivered')).toEqual([]);
    expect(log.withMessage('a queue of this service was deleted; declaring it again')).toHaveLength(1);
  });

  it('a dead-letter queue longer than the listing limit: the listing says how many more, a filter and replay by id reach past it', async () => {
    let refuse = true;
    const handled: string[] = [];
    const payments = bus('payments');
    payments.subscribeTo('user-created', (_data, event) => {
      if (refuse) throw new NonRetryableError('not yet');
      handled.push(event.id);
    });
    await payments.start();
    // Junk dead-lettered first (oldest), then the real refused event behind it.
    await withChannel(async (channel) => {
      for (let n = 0; n < 7; n += 1) channel.sendToQueue(`${prefix}payments.dlq`, Buffer.from(`junk ${n}`), { headers: { 'events-dead-reason': 'malformed_json' } });
      await channel.checkQueue(`${prefix}payments.dlq`);
    });
    const users = bus('users').declareEvent('user-created', ['payments']);
    const { id } = await users.emit('user-created', {});
    await waitFor(async () => (await vhost.messageCount(`${prefix}payments.dlq`)) === 8, { timeoutMs: 20_000, what: 'eight dead letters' });
    const location = { broker: vhost.url, prefix, service: 'payments' };

    const page = await listDeadLetters(location, { limit: 5 });
    expect(page).toHaveLength(5);
    expect(page.more).toBe(3);
    expect(page.map((l) => l.eventId)).not.toContain(id);
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
    expect(await main(['dead-letters', '--broker', vhost.url, '--prefix', prefix, '--service', 'payments', '--limit', '5'], {}, io)).toBe(0);
    expect(err.join('')).toContain('3 more dead letters not listed');

    const [real] = await listDeadLetters(location, { eventId: id, limit: 5 });
    expect(real).toMatchObject({ eventId: id });
    refuse = false;
    expect(await replayDeadLetters(location, [real!.id])).toBe(1);
    await waitFor(() => handled.includes(id), { what: 'the replayed event handled' });
    const rest = await listDeadLetters(location);
    expect(rest).toHaveLength(7);
    expect(rest.more).toBeUndefined();
  });

  it('a queue declared with other arguments: start() fails saying what differs and what to do, no endless retry', async () => {
    await withChannel((channel) => channel.assertQueue(`${prefix}payments`, { durable: true }));
    cleanups.push(() => withChannel((channel) => channel.deleteQueue(`${prefix}payments`)));
    const log = createCapturingLogger('debug');
    const payments = bus('payments', { logger: log.logger });
    payments.subscribeTo('user-created', () => undefined);
    const failure = await payments.start().then(() => undefined, (error: unknown) => error);
    expect(failure).toBeInstanceOf(ConfigError);
    const message = (failure as Error).message;
    expect(message).toMatch(new RegExp(`inequivalent arg 'x-[a-z-]+' for queue '${prefix.replace('.', '\\.')}payments'`));
    expect(message).toContain(`delete the queue "${prefix}payments"`);
    expect(message).toContain('EVENTS_BROKER_PREFIX');
    expect(log.withMessage('broker unreachable; retrying')).toEqual([]);
  });
});
