import { Kafka, logLevel } from 'kafkajs';
import { main } from '../../src/cli.js';
import { openBrokerOperator } from '../../src/backends/broker-link.js';
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
      inbox: { volatile: true },
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
  it('the operator finds every service\'s dead-letter topic without a service, replays and discards by topic/partition/offset; a forged marker or id header is ignored', async () => {
    const users = bus('users').declareEvent('refused', ['ka', 'kb']);
    let fixed = false;
    const handled: string[] = [];
    for (const name of ['ka', 'kb']) {
      const b = bus(name);
      b.subscribeTo('refused', (_d, event) => {
        if (!fixed) throw new NonRetryableError('not now');
        handled.push(`${name}:${event.id}`);
      });
      await b.start();
    }
    const first = await users.emit('refused', { n: 1 }, { key: 'k' });
    const second = await users.emit('refused', { n: 2 }, { key: 'k' });
    await Promise.all([readTopic(`${prefix}ka.dlq`, 2), readTopic(`${prefix}kb.dlq`, 2)]);

    const operator = openBrokerOperator({ broker: cluster.url, prefix });
    cleanups.push(() => operator.close());
    const letters = await operator.deadLetters();
    expect(letters.map((l) => l.target).sort()).toEqual(['ka', 'ka', 'kb', 'kb']);
    for (const l of letters) expect(l.id).toMatch(new RegExp(`^${prefix.replace('.', '\\.')}${l.target}\\.dlq/\\d+/\\d+$`));
    expect(letters.filter((l) => l.target === 'ka').map((l) => l.eventId)).toEqual([first.id, second.id]);
    expect(letters[0]).toMatchObject({ kept: 'queue', type: 'refused', source: 'users', reason: 'rejected_by_handler', error: 'not now', attempts: 1 });
    // Paged from the topics read to their end, oldest first.
    const paged: string[] = [];
    for (let cursor: string | undefined, n = 0; (n === 0 || cursor !== undefined) && n < 5; n++) {
      const page = await operator.deadLetterPage({ target: 'ka' }, { limit: 1, cursor });
      paged.push(...page.items.map((l) => l.eventId!));
      cursor = page.next;
    }
    expect(paged).toEqual([first.id, second.id]);
    const victim = letters.find((l) => l.target === 'ka' && l.eventId === first.id)!;

    // A record shaped like a marker naming that letter, with a chosen id header, sent to ka's topic:
    // the consumer dead-letters it without its events-* headers, so it is a letter, not a marker.
    const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    await producer.send({
      topic: `${prefix}ka`,
      acks: -1,
      messages: [{ key: 'k', value: null, headers: { 'events-replayed': victim.id, 'events-discarded': victim.id, 'events-dead-letter-id': 'chosen' } }],
    });
    await readTopic(`${prefix}ka.dlq`, 3);
    const ka = await operator.deadLetters({ target: 'ka' });
    expect(ka.map((l) => l.id)).toContain(victim.id);
    expect(ka.map((l) => l.id)).not.toContain('chosen');
    const forged = ka.find((l) => l.eventId === undefined)!;
    expect(forged).toMatchObject({ target: 'ka', body: '' });

    fixed = true;
    expect(await operator.replay([victim.id])).toBe(1);
    await waitFor(() => handled.length === 1, { timeoutMs: 15_000, what: 'the replayed event handled' });
    expect(handled).toEqual([`ka:${first.id}`]);
    expect(await operator.discard([forged.id, victim.id])).toBe(1);
    expect((await operator.deadLetters({ target: 'ka' })).map((l) => l.eventId)).toEqual([second.id]);
    expect(await operator.discard({ target: 'kb' })).toBe(2);
    expect(await operator.stats()).toEqual({ durable: true, pending: 0, deadLetters: 1, targets: { ka: { pending: 0, deadLetters: 1 }, kb: { pending: 0, deadLetters: 0 } } });
    expect(handled).toEqual([`ka:${first.id}`]);
  });
  it('junk carrying a real event\'s id in ce_id (and in its unsigned body) hides nothing: listed as unverified, the event by its signed id; replay --all runs the event (issue 16 item 17)', async () => {
    const capture = createCapturingLogger('error');
    const users = bus('users').declareEvent('refused', ['kj']);
    let fixed = false;
    const handled: string[] = [];
    const kj = bus('kj', { logger: capture.logger });
    kj.subscribeTo('refused', (_d, event) => {
      if (!fixed) throw new NonRetryableError('not now');
      handled.push(event.id);
    });
    await kj.start();
    const real = await users.emit('refused', { n: 1 }, { key: 'k' });
    await readTopic(`${prefix}kj.dlq`, 1);
    // Junk on the same key: the real event's id in the CloudEvents binding headers and in a body nobody signed.
    const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    const junk = JSON.stringify({ specversion: '1.0', id: real.id, source: 'users', type: 'refused', data: { forged: true } });
    await producer.send({
      topic: `${prefix}kj`,
      acks: -1,
      messages: [{ key: 'k', value: junk, headers: { ce_id: real.id, ce_type: 'refused', ce_source: 'users', ce_specversion: '1.0', 'content-type': 'application/cloudevents+json' } }],
    });
    await readTopic(`${prefix}kj.dlq`, 2);

    const operator = openBrokerOperator({ broker: cluster.url, prefix, service: 'kj' });
    cleanups.push(() => operator.close());
    const letters = await operator.deadLetters();
    expect(letters.map((l) => [l.eventId, l.reason, l.unverified?.eventId])).toEqual([
      [real.id, 'rejected_by_handler', undefined],
      [undefined, 'invalid_signature', real.id],
    ]);
    expect((await operator.deadLetters({ eventId: real.id })).map((l) => l.id)).toEqual([letters[0]!.id]);
    const [junkLine] = capture.withMessage('event dead-lettered').filter((r) => r.reason === 'invalid_signature');
    expect(junkLine).not.toHaveProperty('eventId');
    expect(junkLine).toMatchObject({ unverified: { eventId: real.id, type: 'refused', source: 'users' } });

    let out = '';
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (out += t) };
    const where = ['--broker', cluster.url, '--service', 'kj', '--prefix', prefix];
    expect(await main(['dead-letters', ...where], {}, io)).toBe(0);
    expect(out).toContain(`${real.id} (unverified)`);

    fixed = true;
    out = '';
    expect(await main(['replay', '--all', ...where], {}, io)).toBe(0);
    expect(out).toBe('replayed 2 dead letters to the queue of kj\n');
    await waitFor(() => handled.length === 1, { timeoutMs: 15_000, what: 'the replayed event handled' });
    expect(handled).toEqual([real.id]);
    // The junk is refused again; the event is not.
    await waitFor(async () => (await operator.deadLetters()).length === 1, { timeoutMs: 15_000, what: 'the junk dead-lettered again' });
    expect((await operator.deadLetters())[0]).toMatchObject({ eventId: undefined, reason: 'invalid_signature', unverified: { eventId: real.id } });
    expect(handled).toEqual([real.id]);
  });
});
