// Health sees the PostgreSQL database (issue 16, item 12, health side): a call that fails to reach
// it, or times out, marks it down since then; a success marks it up; health turns 503 once it has
// been down longer than health.targetDownMs. The database is reached through a TCP proxy on
// 127.0.0.1 that the test stops (connections refused), holds (bytes no longer forwarded) and restarts.
import net from 'node:net';
import { Pool } from 'pg';
import { createEventBus, type EventBus, type EventBusOptions } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { quietLogger } from '../helpers/logger.js';
import { createTestSchema, describePostgres, PG_URL } from '../helpers/postgres.js';
import { newSecret } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

const cleanups = cleanupAfterEach();

/** A TCP proxy to the test database: `stop()` refuses connections, `hold()` stops forwarding on open ones, `start()` again on the same port. */
async function databaseProxy(): Promise<{ url: string; port: number; start(): Promise<void>; stop(): Promise<void>; hold(): void }> {
  const target = new URL(PG_URL);
  const sockets = new Set<net.Socket>();
  let held = false;
  let server: net.Server | undefined;
  let port = 0;
  const start = async (): Promise<void> => {
    held = false;
    server = net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 5432), target.hostname);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => sockets.delete(socket));
      }
      client.on('data', (chunk) => void (held || upstream.write(chunk)));
      upstream.on('data', (chunk) => void (held || client.write(chunk)));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server!.address() as net.AddressInfo).port;
  };
  const stop = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  };
  await start();
  const url = new URL(PG_URL);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return { url: url.toString(), port, start, stop, hold: () => void (held = true) };
}

describePostgres('database health', () => {
  async function setUp(database: (url: string) => EventBusOptions['database']): Promise<{ bus: EventBus; proxy: Awaited<ReturnType<typeof databaseProxy>> }> {
    const schema = await createTestSchema('dbhealth');
    const proxy = await databaseProxy();
    cleanups.push(() => schema.drop(), () => proxy.stop());
    const bus = createEventBus({
      service: 'users',
      secret: newSecret(),
      services: { payments: 'http://127.0.0.1:9/events' },
      logger: quietLogger(),
      env: {},
      database: database(proxy.url),
      databaseSchema: schema.schema,
      outbox: { pollIntervalMs: 50 },
      health: { targetDownMs: 300 },
      shutdownTimeoutMs: 200,
    });
    cleanups.push(() => bus.close());
    bus.declareEvent('user-created', ['payments']);
    await bus.emit('user-created', { n: 1 });
    return { bus, proxy };
  }

  it('refused: down since the first failed call, unhealthy past targetDownMs with the error; up again at the first success', async () => {
    const { bus, proxy } = await setUp((url) => url);
    expect((await bus.health()).database).toEqual({ state: 'up' });

    await proxy.stop();
    const down = await waitFor(async () => {
      const status = await bus.health();
      return !status.healthy && status.problems.some((problem) => problem.startsWith('the database')) && status;
    }, { what: 'the database down past targetDownMs', timeoutMs: 10_000 });
    expect(down.database).toMatchObject({ state: 'down' });
    expect(down.database!.downForMs).toBeGreaterThan(300);
    expect(down.database!.lastError).toEqual(expect.any(String));
    expect(down.problems).toContainEqual(expect.stringMatching(/^the database has been failing for \d+ s \(.+\)$/));

    await proxy.start();
    const up = await waitFor(async () => {
      const status = await bus.health();
      return status.healthy && status.database?.state === 'up' && status;
    }, { what: 'the database up again', timeoutMs: 10_000 });
    expect(up.problems).toEqual([]);
  });

  it('hung (connections open, nothing forwarded): a call that times out marks it down', async () => {
    let pool: Pool | undefined;
    const { bus, proxy } = await setUp((url) => (pool = new Pool({ connectionString: url, max: 4, query_timeout: 200, connectionTimeoutMillis: 200 })));
    cleanups.push(() => pool!.end().catch(() => undefined));
    expect((await bus.health()).database).toEqual({ state: 'up' });

    proxy.hold();
    const down = await waitFor(async () => {
      const status = await bus.health();
      return !status.healthy && status.problems.some((problem) => problem.startsWith('the database')) && status;
    }, { what: 'the database down past targetDownMs', timeoutMs: 10_000 });
    expect(down.database).toMatchObject({ state: 'down', lastError: expect.stringMatching(/timeout/i) });
  });
});
