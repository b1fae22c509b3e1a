import { Kafka, logLevel } from 'kafkajs';
import { main } from '../../src/cli.js';
import { createEventBus, type EventBus, NonRetryableError } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { describeWithKafka, type MockCluster, startMockCluster } from '../helpers/kafka.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { newSecret } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

const secret = newSecret();

describeWithKafka('Kafka transport (librdkafka mock cluster)', () => {
  let cluster: MockCluster;
  const cleanups = cleanupAfterEach();
  let prefixCounter = 0;
  let prefix = '';

  beforeAll(async () => {
    cluster = await startMockCluster();
  });
  afterAll(() => cluster?.stop());
  jest.setTimeout(180_000);
  beforeEach(() => {
    prefixCounter += 1;
    prefix = `t${prefixCounter}.`;
  });

  function bus(service: string, extra: Parameters<typeof createEventBus>[0] = {}): EventBus {
    const b = createEventBus({
      service,
      secret,
      logger: quietLogger(),
      ...extra,
      broker: { url: cluster.url, prefix, retryDelaysMs: [100, 200], ...(extra.broker as object | undefined) },
    });
    cleanups.push(() => b.close());
    return b;
  }

  /** Every record of `topic` so far, read by a throwaway group. */
  async function readTopic(topic: string, count: number): Promise<Array<{ key: string; value: string; headers: Record<string, string> }>> {
    const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `reader-${Math.random()}` });
    const out: Array<{ key: string; value: string; headers: Record<string, string> }> = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
          out.push({ key: String(message.key), value: String(message.value), headers });
        },
      });
      await waitFor(() => out.length >= count, { timeoutMs: 15_000, what: `${count} records in ${topic}` });
    } finally {
      await consumer.disconnect();
    }
    return out;
  }

  it('a record carries the ce_* headers, the key and a signature', async () => {
    const users = bus('users').declareEvent('user-created', ['late']);
    const { id } = await users.emit('user-created', { n: 1 }, { key: 'user-42' });
    await waitFor(async () => (await users.outboxStats()).pending === 0, { what: 'the publish to be acknowledged' });
    const [record] = await readTopic(`${prefix}late`, 1);
    expect(record!.key).toBe('user-42');
    expect(JSON.parse(record!.value)).toMatchObject({ id, type: 'user-created', source: 'users', partitionkey: 'user-42', data: { n: 1 } });
    expect(record!.headers).toMatchObject({ ce_id: id, ce_type: 'user-created', ce_source: 'users', ce_specversion: '1.0', 'webhook-id': id });
    expect(record!.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
    expect(record!.headers['webhook-signature']).toMatch(/^v1,/);
  });

  it('retries a failing handler, then dead-letters it with the reason; other events go on; a NonRetryableError at once; the CLI lists and replays them', async () => {
    const capture = createCapturingLogger('info');
    const users = bus('users').declareEvent('always-fails', ['picky']).declareEvent('refused', ['picky']).declareEvent('fine', ['picky']);
    const picky = bus('picky', { logger: capture.logger, broker: { url: cluster.url, maxAttempts: 3 } });
    let failing = 0;
    let fixed = false;
    const fine: number[] = [];
    picky.subscribeTo('always-fails', () => {
      failing += 1;
      if (!fixed) throw new Error('boom');
    });
    picky.subscribeTo('refused', () => {
      throw new NonRetryableError('unsupported country');
    });
    picky.subscribeTo('fine', (data) => void fine.push((data as { n: number }).n));
    await picky.start();
    const bad = await users.emit('always-fails', { n: 0 }, { key: 'k' });
    const refused = await users.emit('refused', { n: 0 }, { key: 'k' });
    const after = await users.emit('fine', { n: 1 }, { key: 'k' });
    await waitFor(() => fine.length === 1, { timeoutMs: 20_000, what: 'the event after the failing one' });
    expect(failing).toBe(3);
    const letters = await readTopic(`${prefix}picky.dlq`, 2);
    expect(letters.map((l) => [JSON.parse(l.value).id, l.headers['events-dead-reason']])).toEqual([
      [bad.id, 'handler_failed'],
      [refused.id, 'rejected_by_handler'],
    ]);
    expect(letters[0]!.headers['events-dead-error']).toContain('gave up after 3 attempts');
    expect(letters[0]!.headers['events-attempts']).toBe('3');
    expect(capture.withMessage('event received').map((r) => (r as unknown as { eventId: string }).eventId)).toEqual([after.id]);

    // The same CLI as for RabbitMQ: list, replay one (the handler is fixed), list again.
    const cli = async (...args: string[]): Promise<{ code: number; out: string }> => {
      let out = '';
      const code = await main([...args, '--broker', cluster.url, '--service', 'picky', '--prefix', prefix], {}, {
        out: (t) => (out += t),
        err: (t) => (out += t),
      });
      return { code, out };
    };
    const listed = await cli('dead-letters', '--json');
    expect(listed.code).toBe(0);
    const listedLetters = JSON.parse(listed.out) as Array<{ id: string; eventId: string; reason: string }>;
    expect(listedLetters.map((l) => [l.eventId, l.reason])).toEqual([
      [bad.id, 'handler_failed'],
      [refused.id, 'rejected_by_handler'],
    ]);
    fixed = true;
    expect(await cli('replay', listedLetters[0]!.id)).toEqual({ code: 0, out: 'replayed 1 dead letter to the queue of picky\n' });
    await waitFor(() => capture.withMessage('event received').length === 2, { timeoutMs: 15_000, what: 'the replayed event handled' });
    expect(failing).toBe(4);
    const after2 = JSON.parse((await cli('dead-letters', '--json')).out) as Array<{ eventId: string }>;
    expect(after2.map((l) => l.eventId)).toEqual([refused.id]);
  });
});
