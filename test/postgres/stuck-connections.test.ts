import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { Pool } from 'pg';
import { createEventBus, OutboxUnavailableError } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { createTestSchema, describePostgres, PG_URL } from '../helpers/postgres.js';
import { startRecordingServer } from '../helpers/recording-server.js';
import { newSecret } from '../helpers/signing.js';
import { sleep, waitFor } from '../helpers/wait.js';

// A database that keeps its connections open but stops answering (a proxy that stops
// forwarding, a network that drops packets): every call ends on time, none hangs.

/** How long the proxy stops forwarding: well past `writeWaitMs` and the close deadline below. */
const STALL_MS = 6_000;

/** A TCP proxy in front of PostgreSQL that can stop forwarding (holding the bytes) and go on later. */
async function startProxy(): Promise<{ url: string; stall(): void; heal(): void; close(): Promise<void> }> {
  const { hostname, port } = new URL(PG_URL);
  let stalled = false;
  const held: Array<() => void> = [];
  const sockets = new Set<net.Socket>();
  const forward = (from: net.Socket, to: net.Socket) =>
    from.on('data', (chunk) => (stalled ? held.push(() => to.write(chunk)) : to.write(chunk)));
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port || 5432), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(PG_URL);
  url.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    url: url.toString(),
    stall: () => (stalled = true),
    heal: () => {
      stalled = false;
      for (const write of held.splice(0)) write();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describePostgres('PostgreSQL: a connection that stops answering', () => {
  let db: { schema: string; pool: Pool; drop(): Promise<void> };
  const cleanups = cleanupAfterEach();

  beforeAll(async () => {
    db = await createTestSchema('stuck');
  });
  afterAll(() => db.drop());

  test('emits settle within writeWaitMs, stuck connections are replaced, close() ends by its deadline', async () => {
    const proxy = await startProxy();
    cleanups.push(() => proxy.close());
    const audit = await startRecordingServer();
    cleanups.push(() => audit.close());
    const capture = createCapturingLogger('warn');
    const bus = createEventBus({
      service: `stuck_${randomUUID().slice(0, 8)}`,
      secret: newSecret(),
      services: { audit: audit.url },
      database: proxy.url,
      databaseSchema: db.schema,
      outbox: { writeWaitMs: 1_000 },
      shutdownTimeoutMs: 1_000,
      logger: capture.logger,
      env: {},
    });
    cleanups.push(() => bus.close());
    bus.declareEvent('noted', ['audit']);
    const ids = [(await bus.emit('noted', { n: 0 })).id];

    // The database stops answering: every emit settles while it still does not answer.
    proxy.stall();
    const emits: Array<Promise<{ id: string }>> = [];
    for (let turn = 0; turn < 5; turn++) {
      emits.push(...Array.from({ length: 10 }, (_, i) => bus.emit('noted', { n: turn * 10 + i })));
      await sleep(50);
    }
    const outcomes = await Promise.race([Promise.allSettled(emits), sleep(STALL_MS).then(() => 'still pending' as const)]);
    expect(outcomes).not.toBe('still pending');
    for (const outcome of outcomes as Array<PromiseSettledResult<{ id: string }>>) {
      if (outcome.status === 'fulfilled') ids.push(outcome.value.id);
      else {
        expect(outcome.reason).toBeInstanceOf(OutboxUnavailableError);
        expect((outcome.reason as Error).message).toMatch(/did not answer within outbox\.writeWaitMs \(1000 ms\)|Query read timeout/);
      }
    }
    await waitFor(() => capture.withMessage('a PostgreSQL connection did not answer in time; destroyed, the pool opens another').length > 0, {
      what: 'the warning about the destroyed connection',
    });

    // It answers again: the pool has replaced what it destroyed, emits resolve, everything recorded is delivered.
    proxy.heal();
    for (let i = 0; i < 10; i++) ids.push((await bus.emit('noted', { after: i })).id);
    await waitFor(() => ids.every((id) => audit.requests.some((r) => r.body.includes(id))), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: 'every recorded event delivered',
    });

    // It stops answering again: close() still ends, by its deadline (plus the settle time), not when the database answers.
    proxy.stall();
    await bus.emit('noted', { last: true }).catch(() => undefined);
    const closed = await Promise.race([bus.close().then(() => 'closed'), sleep(STALL_MS).then(() => 'still closing')]);
    expect(closed).toBe('closed');
    proxy.heal();
  }, 60_000);
});
