import { setTimeout as sleep } from 'node:timers/promises';
import type http from 'node:http';
import { randomUUID } from 'node:crypto';
import { Client, Pool, type PoolClient } from 'pg';
import { migrate, PostgresDatabase } from '../../src/backends/postgres/database.js';
import { DEFAULTS } from '../../src/defaults.js';
import { createEventBus, type EventBus, type ReceiverResponse } from '../../src/index.js';
import { runScript } from '../helpers/child.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { quietLogger } from '../helpers/logger.js';
import { createTestSchema, describePostgres, PG_URL } from '../helpers/postgres.js';
import { startRecordingServer } from '../helpers/recording-server.js';
import { startServer } from '../helpers/server.js';
import { newSecret, type SignedRequest, signedRequest, structuredEvent } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';
import { schemaOf01 } from './support/schema-0.1.js';

// One database per bus: one pool shared by the outbox and the inbox, one LISTEN connection, one
// setup under one lock, a versioned schema that `migrate` upgrades from the previous release.

describePostgres('PostgreSQL: one database per bus', () => {
  let db: { schema: string; pool: Pool; drop(): Promise<void> };
  const secret = newSecret();
  const cleanups = cleanupAfterEach();

  beforeAll(async () => {
    db = await createTestSchema('database');
    await db.pool.query(`CREATE TABLE "${db.schema}".effects (event_id text NOT NULL, handler text NOT NULL)`);
  });
  afterAll(async () => {
    await db.drop();
  });

  const service = () => `svc_${randomUUID().slice(0, 8)}`;
  const deliver = (bus: EventBus, request: SignedRequest): Promise<ReceiverResponse> =>
    bus.handle({ headers: request.headers, body: Buffer.from(request.body) });
  const count = async (sql: string, params: unknown[] = []): Promise<number> =>
    Number((await db.pool.query<{ n: string }>(sql, params)).rows[0]!.n);
  const effects = (handler: string) => count(`SELECT count(*) AS n FROM "${db.schema}".effects WHERE handler = $1`, [handler]);

  function bus(options: Parameters<typeof createEventBus>[0]): EventBus {
    const created = createEventBus({ secret, database: PG_URL, databaseSchema: db.schema, logger: quietLogger(), env: {}, ...options });
    cleanups.push(() => created.close());
    return created;
  }

  test('NOTIFYs go one statement at a time, at most one per notifyGapMs: the payloads queued meanwhile travel together, each once', async () => {
    const settings = DEFAULTS.database as { notifyGapMs: number };
    const gap = settings.notifyGapMs;
    settings.notifyGapMs = 400; // long enough that a loaded machine keeps to the order below
    cleanups.push(() => void (settings.notifyGapMs = gap));
    const hearing = new Client(PG_URL);
    await hearing.connect();
    cleanups.push(() => hearing.end());
    const heard: string[] = [];
    hearing.on('notification', (message) => heard.push(message.payload ?? ''));
    await hearing.query('LISTEN notify_gap');

    const database = new PostgresDatabase(PG_URL, { schema: db.schema, logger: quietLogger() }).use();
    cleanups.push(() => database.release());
    database.listen('unheard', () => {});
    const listener = () => (database as unknown as { listener?: { client: PoolClient } }).listener;
    await waitFor(() => listener() !== undefined, { what: 'the LISTEN connection' });
    const statements: unknown[] = [];
    const query = listener()!.client.query.bind(listener()!.client) as (...args: unknown[]) => Promise<unknown>;
    (listener()!.client as { query: unknown }).query = (text: string, values: unknown[]) => (statements.push(values[1]), query(text, values));

    database.notify('notify_gap', 'a');
    await waitFor(() => heard.includes('a'), { what: 'the first NOTIFY, sent at once' });
    database.notify('notify_gap', 'b');
    await sleep(20);
    database.notify('notify_gap', 'c');
    database.notify('notify_gap', 'b');
    await waitFor(() => heard.length === 3, { what: 'the second NOTIFY' });
    expect(statements).toEqual([['a'], ['b', 'c']]);
    expect(heard).toEqual(['a', 'b', 'c']);
  });

  test('handlers that emit while every connection is busy all finish (pool of 2, many handlers at once)', async () => {
    const audit = await startRecordingServer();
    cleanups.push(() => audit.close());
    const name = service();
    const busy = bus({ service: name, databasePoolSize: 2, services: { audit: audit.url } });
    busy.declareEvent('followed', ['audit']);
    busy.subscribeTo('payment.made', async (_data, event, { tx }) => {
      await tx!.query(`INSERT INTO "${db.schema}".effects (event_id, handler) VALUES ($1, $2)`, [event.id, name]);
      await busy.emit('followed', { in: 'tx' }, { tx }); // on the handler's own client
      await busy.emit('followed', { in: 'own' }); // on another connection, while the handler holds one
    }, { name: 'follow' });

    const requests = Array.from({ length: 12 }, (_, i) => signedRequest(secret, 'users', 'payment.made', { i }));
    const answers = await Promise.all(requests.map((r) => deliver(busy, r)));
    expect(answers.map((a) => a.status)).toEqual(requests.map(() => 200));
    expect(await effects(name)).toBe(12);
    await waitFor(() => audit.requests.length >= 24, { timeoutMs: 20_000, what: 'the 24 follow-up events' });
  });

  test('a bus sending and receiving thousands of events holds at most its pool size plus one listening connection', async () => {
    const name = service();
    const poolSize = 4;
    let handler: http.RequestListener = (_req, res) => res.end();
    const server = await startServer((req, res) => handler(req, res));
    cleanups.push(() => server.close());
    const loop = bus({ service: name, databasePoolSize: poolSize, services: { [name]: server.url } });
    handler = loop.nodeHandler();
    loop.declareEvent('tick', [name]);
    loop.subscribeTo('tick', async (_data, event, { tx }) => {
      await tx!.query(`INSERT INTO "${db.schema}".effects (event_id, handler) VALUES ($1, $2)`, [event.id, name]);
    }, { name: 'count' });

    // Every connection of the bus carries its service in application_name: count them while it runs.
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const n = await count(`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1`, [`events-library ${name}`]);
        most = Math.max(most, n);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const total = 2_000;
    for (let sent = 0; sent < total; sent += 250) {
      await Promise.all(Array.from({ length: 250 }, (_, i) => loop.emit('tick', { n: sent + i })));
    }
    await waitFor(() => effects(name).then((n) => n === total), { timeoutMs: 120_000, intervalMs: 100, what: `${total} events handled` });
    sampling = false;
    await sampler;

    expect(await count(`SELECT count(DISTINCT event_id) AS n FROM "${db.schema}".effects WHERE handler = $1`, [name])).toBe(total);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(poolSize + 1);
  });

  test('your pg.Pool is used and never ended; LISTEN is one connection beside it', async () => {
    const name = service();
    const yours = new Pool({ connectionString: PG_URL, max: 3, application_name: `events-library ${name}` });
    cleanups.push(() => yours.end());
    const audit = await startRecordingServer();
    cleanups.push(() => audit.close());
    // The poll is a minute away: only NOTIFY, on the LISTEN connection, wakes the dispatcher after the commit.
    const b = bus({ service: name, database: yours, outbox: { pollIntervalMs: 60_000 }, services: { audit: audit.url } });
    b.declareEvent('followed', ['audit']);
    const client = await yours.connect();
    await client.query('BEGIN');
    const receipt = await b.emit('followed', {}, { tx: client });
    await client.query('COMMIT');
    client.release();
    await waitFor(() => audit.requests.some((r) => (JSON.parse(r.body) as { id?: string }).id === receipt.id), {
      timeoutMs: 10_000,
      what: 'the committed event',
    });
    expect(await count(`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1`, [`events-library ${name}`])).toBeLessThanOrEqual(4);
    await b.close();
    expect((await yours.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
  });

  test('a connection lost while a handler holds its transaction never crashes the process: rolled back, run again', async () => {
    const name = service();
    const receiver = bus({ service: name });
    let runs = 0;
    receiver.subscribeTo('payment.made', async (_data, event, { tx }) => {
      runs += 1;
      await tx!.query(`INSERT INTO "${db.schema}".effects (event_id, handler) VALUES ($1, $2)`, [event.id, name]);
      if (runs > 1) return;
      // Idle in its transaction when the server ends the connection: the client learns it with no query running.
      const ended = new Promise((resolve) => (tx as unknown as PoolClient).once('end', resolve));
      await db.pool.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'`,
        [`events-library ${name}`],
      );
      await ended;
      await tx!.query(`INSERT INTO "${db.schema}".effects (event_id, handler) VALUES ($1, $2)`, [event.id, name]);
    }, { name: 'fragile' });
    const request = signedRequest(secret, 'users', 'payment.made', {});

    expect((await deliver(receiver, request)).status).toBeGreaterThanOrEqual(500);
    expect(await effects(name)).toBe(0);
    expect((await deliver(receiver, request)).status).toBe(200);
    expect(runs).toBe(2);
    expect(await effects(name)).toBe(1);
  });

  test('buses and migrations starting together on a schema that does not exist yet: one lock, no race, the current version', async () => {
    const schema = `${db.schema}_fresh`;
    cleanups.push(() => db.pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    const audit = await startRecordingServer();
    cleanups.push(() => audit.close());
    const name = service();
    const buses = Array.from({ length: 4 }, () => {
      const b = bus({ service: name, databaseSchema: schema, services: { audit: audit.url } });
      b.declareEvent('followed', ['audit']);
      b.subscribeTo('payment.made', () => {});
      return b;
    });
    // Each bus's first emit and first receipt, and `events-library migrate --apply` run by hand, at once.
    const [results, migrations] = await Promise.all([
      Promise.all(
        buses.flatMap((b) => [b.emit('followed', {}).then(() => 200), deliver(b, signedRequest(secret, 'users', 'payment.made', {})).then((a) => a.status)]),
      ),
      Promise.all(Array.from({ length: 3 }, () => migrate(PG_URL, schema))),
    ]);
    expect(results).toEqual(buses.flatMap(() => [200, 200]));
    expect(migrations.map((m) => m.to)).toEqual([4, 4, 4]);
    expect(await count(`SELECT max(version) AS n FROM "${schema}".events_library_schema`)).toBe(4);
  });

  test('migrate upgrades the previous release\'s tables (0.1), keeping their rows; a bus then runs on them', async () => {
    const schema = `${db.schema}_old`;
    cleanups.push(() => db.pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    await db.pool.query(schemaOf01(`"${schema}"`));
    const name = service();
    // A delivery still pending, and an event the inbox already processed, both left by 0.1.
    const now = Date.now();
    await db.pool.query(
      `INSERT INTO "${schema}".events_outbox (service, event_id, type, source, target, body, created_at, next_attempt_at)
       VALUES ($1, 'left-by-0.1', 'followed', $1, 'audit', $2, $3, $3)`,
      [name, JSON.stringify(structuredEvent('followed', {}, { id: 'left-by-0.1', source: name })), now],
    );
    const processed = signedRequest(secret, 'users', 'payment.made', {});
    await db.pool.query(`INSERT INTO "${schema}".events_inbox (service, source, event_id, handler) VALUES ($1, 'users', $2, '*')`, [
      name,
      processed.id,
    ]);

    const migrated = await runScript(['src/cli.ts', 'migrate', '--apply'], { EVENTS_DATABASE_URL: PG_URL, EVENTS_DATABASE_SCHEMA: schema });
    expect(migrated).toMatchObject({ code: 0 });
    expect(migrated.stdout).toContain('version 0 → 4');
    expect(await count(`SELECT max(version) AS n FROM "${schema}".events_library_schema`)).toBe(4);
    expect(await count(`SELECT count(*) AS n FROM pg_indexes WHERE schemaname = $1 AND indexname = 'events_dead_letters_dead_at'`, [schema])).toBe(1);
    const again = await runScript(['src/cli.ts', 'migrate', '--apply'], { EVENTS_DATABASE_URL: PG_URL, EVENTS_DATABASE_SCHEMA: schema });
    expect(again.stdout).toContain('version 4 → 4');

    const audit = await startRecordingServer();
    cleanups.push(() => audit.close());
    const upgraded = bus({ service: name, databaseSchema: schema, services: { audit: { url: audit.url, batch: false } } });
    upgraded.declareEvent('followed', ['audit']);
    let runs = 0;
    upgraded.subscribeTo('payment.made', () => {
      runs += 1;
    });
    const fresh = await upgraded.emit('followed', {});
    await waitFor(() => audit.requests.length >= 2, { timeoutMs: 10_000, what: 'the old and the new delivery' });
    expect(audit.requests.map((r) => (JSON.parse(r.body) as { id: string }).id).sort()).toEqual(['left-by-0.1', fresh.id].sort());
    expect((await deliver(upgraded, processed)).body).toMatchObject({ status: 'duplicate' });
    expect(runs).toBe(0);
  });
});
