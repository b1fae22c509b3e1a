import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createEventBus, type EventBus } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { describeWithKafka, startMockCluster } from '../helpers/kafka.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const secret = newSecret();

describeWithKafka('Kafka faults (librdkafka mock cluster)', () => {
  const cleanups = cleanupAfterEach();
  const dir = tempDir('kafka-faults');
  afterAll(() => dir.remove());
  jest.setTimeout(90_000);

  function bus(service: string, url: string, extra: Parameters<typeof createEventBus>[0] = {}): EventBus {
    const b = createEventBus({ service, secret, logger: quietLogger(), inbox: { volatile: true }, ...extra, broker: { url, prefix: 'f.', retryDelaysMs: [100] } });
    cleanups.push(() => b.close());
    return b;
  }

  // Every election of this two-member group on librdkafka's mock cluster is a race: a follower's
  // SyncGroup that reaches the coordinator after the leader's is answered INVALID_REQUEST, which
  // kafkajs does not retry. The library then replaces the stopped consumer, and the group settles
  // one rebalance later (see KafkaConsumer.replaceCrashed); a 6 s session timeout (the smallest a
  // real broker allows by default) keeps those rebalances, and the kill's detection, short.
  it('a consumer instance SIGKILLed mid-stream: its partitions move to the other instance, 0 events lost', async () => {
    const cluster = await startMockCluster();
    cleanups.push(() => cluster.stop());
    const log = dir.file('handled.log');
    writeFileSync(log, '');
    const children: ChildProcess[] = [];
    cleanups.push(() => children.forEach((c) => c.kill('SIGKILL')));
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < 2; i += 1) {
      const child = spawn(process.execPath, ['-r', 'tsx/cjs', path.join(__dirname, '../fixtures/amqp-instance.ts')], {
        cwd: path.resolve(__dirname, '../..'),
        env: {
          ...process.env,
          EVENTS_BROKER_URL: cluster.url,
          EVENTS_BROKER_PREFIX: 'f.',
          EVENTS_SERVICE_NAME: 'workers',
          EVENTS_SECRET: secret,
          EVENTS_LOG_LEVEL: 'error',
          // One inbox per instance: two processes creating one SQLite file at the same moment can
          // find it locked past the store's 20 ms busy timeout and refuse to start. Redeliveries
          // to the survivor may then run again (at least once is what this test asserts).
          EVENTS_INBOX_PATH: dir.file(`inbox-${i}.db`),
          FIXTURE_LOG: log,
          FIXTURE_HANDLER_MS: '10',
          FIXTURE_KAFKA_SESSION_TIMEOUT_MS: '6000',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      ready.push(
        new Promise((resolve, reject) => {
          let out = '';
          child.stdout!.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            if (out.includes('ready')) resolve();
          });
          // An instance that dies before it consumes fails the test now, not at the test's timeout.
          child.once('exit', (code, signal) => reject(new Error(`instance ${i} exited before it was ready (${signal ?? code})`)));
        }),
      );
    }
    await Promise.all(ready);
    const users = bus('users', cluster.url, { concurrency: 16 }).declareEvent('user-created', ['workers']);
    const ids = new Set<string>();
    const emits = Array.from({ length: 300 }, (_, n) => users.emit('user-created', { n }).then((r) => ids.add(r.id)));
    await Promise.all(emits);
    const lines = (): string[][] => readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
    // Kill the first instance once both are handling (mid-stream).
    const victim = children[0]!;
    await waitFor(() => new Set(lines().map(([, pid]) => pid)).size === 2 || lines().length >= 60, { timeoutMs: 20_000, what: 'both instances busy' });
    victim.kill('SIGKILL');
    const handledBeforeKill = lines().length;
    expect(handledBeforeKill).toBeLessThan(300);
    await waitFor(() => new Set(lines().map(([id]) => id)).size >= 300, { timeoutMs: 45_000, what: 'every event handled after the kill' });
    expect(new Set(lines().map(([id]) => id))).toEqual(ids);
    const survivor = String(children[1]!.pid);
    expect(lines().slice(handledBeforeKill).some(([, pid]) => pid === survivor)).toBe(true);
  });

  it('a second instance joining mid-stream (a rebalance) loses nothing', async () => {
    const cluster = await startMockCluster();
    cleanups.push(() => cluster.stop());
    const handled: string[] = [];
    const subscribe = (b: EventBus) =>
      b.subscribeTo('user-created', async (_d, event) => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        handled.push(event.id);
      });
    const first = bus('workers', cluster.url, { concurrency: 6 });
    subscribe(first);
    await first.start();
    const users = bus('users', cluster.url, { concurrency: 16 }).declareEvent('user-created', ['workers']);
    const ids = await Promise.all(Array.from({ length: 200 }, async (_, n) => (await users.emit('user-created', { n })).id));
    await waitFor(() => handled.length >= 20, { timeoutMs: 20_000, what: 'the first instance busy' });
    const second = bus('workers', cluster.url, { concurrency: 6 });
    subscribe(second);
    expect(handled.length).toBeLessThan(200); // it joins mid-stream
    await second.start();
    await waitFor(() => new Set(handled).size >= 200, { timeoutMs: 45_000, what: 'every event after the rebalance' });
    expect([...new Set(handled)].sort()).toEqual([...ids].sort());
  });

  it('no cluster reachable while emitting: the outbox keeps the events, all delivered once a cluster is up', async () => {
    // A fixed bootstrap address, refused until the cluster starts: a TCP relay to it opens later.
    const port = await freePort();
    const capture = createCapturingLogger('debug');
    const users = bus('users', `kafka://127.0.0.1:${port}`, {
      logger: capture.logger,
      timeoutMs: 1_000,
      redelivery: { baseDelayMs: 100, probeMaxDelayMs: 500 },
    }).declareEvent('user-created', ['keeper']);
    const ids: string[] = [];
    for (let n = 0; n < 30; n += 1) ids.push((await users.emit('user-created', { n })).id);
    await waitFor(() => capture.withMessage('delivery attempt failed').length > 0, { timeoutMs: 20_000, what: 'a failed attempt' });
    expect((await users.outboxStats()).pending).toBe(30);
    expect(capture.withMessage('kafka cluster unreachable; the outbox keeps the events')).toHaveLength(1);

    const cluster = await startMockCluster();
    cleanups.push(() => cluster.stop());
    const relay = await relayTo(port, cluster.bootstrap.split(',')[0]!);
    cleanups.push(() => relay.close());
    const received: string[] = [];
    const keeper = bus('keeper', cluster.url);
    keeper.subscribeTo('user-created', (_d, event) => void received.push(event.id));
    await waitFor(async () => (await users.outboxStats()).pending === 0, { timeoutMs: 30_000, what: 'the outbox to drain' });
    await waitFor(() => new Set(received).size === 30, { timeoutMs: 30_000, what: 'every event received' });
    expect([...new Set(received)].sort()).toEqual([...ids].sort());
  });

  it('a consumer that cannot reach the cluster: one warning as it starts failing, its retries at debug', async () => {
    const capture = createCapturingLogger('debug');
    const keeper = createEventBus({
      service: 'keeper',
      secret,
      logger: capture.logger,
      timeoutMs: 500,
      inbox: { path: dir.file('keeper-inbox.db') },
      broker: { url: 'kafka://127.0.0.1:9', prefix: 'f.', reconnectBaseDelayMs: 20, reconnectMaxDelayMs: 100 },
    });
    cleanups.push(() => keeper.close());
    keeper.subscribeTo('user-created', () => undefined);
    void keeper.start().catch(() => undefined);
    const tries = () => capture.withMessage('kafka consumer could not start; retrying');
    await waitFor(() => tries().length >= 4, { timeoutMs: 30_000, what: 'four failed starts' });
    expect(tries().map((r) => r.level)).toEqual(['warn', ...tries().slice(1).map(() => 'debug')]);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Listens on 127.0.0.1:`port` and pipes every connection to `target` (`host:port`). */
function relayTo(port: number, target: string): Promise<{ close(): Promise<void> }> {
  const [host, targetPort] = target.split(':');
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const upstream = net.connect(Number(targetPort), host);
    sockets.add(socket).add(upstream);
    socket.pipe(upstream).pipe(socket);
    const end = (): void => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () =>
      resolve({
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      }),
    );
  });
}
