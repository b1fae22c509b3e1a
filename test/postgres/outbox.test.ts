import type { Pool } from 'pg';
import { ConfigError, createEventBus, discardDeadLetters, inspectOutbox, listDeadLetters, OutboxUnavailableError, replayDeadLetters } from '../../src/index.js';
import type { EventBus } from '../../src/bus.js';
import { PostgresOutbox } from '../../src/backends/postgres/outbox.js';
import { DEFAULTS } from '../../src/defaults.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { type CapturingLogger, createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { DATABASE_URL, describePostgres, freshSchema } from '../helpers/postgres.js';
import { type RecordingServer, startRecordingServer } from '../helpers/recording-server.js';
import { newSecret } from '../helpers/signing.js';
import { sleep, waitFor } from '../helpers/wait.js';

const SECRET = newSecret();
const WAIT = { timeoutMs: 10_000 };

describePostgres('PostgreSQL outbox (one process)', () => {
  const cleanups = cleanupAfterEach();
  let schema: string;
  let pool: Pool;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    ({ schema, pool, drop } = await freshSchema('outbox'));
  });
  afterAll(async () => drop());

  async function target(status = 200): Promise<RecordingServer> {
    const server = await startRecordingServer({ then: { status } });
    cleanups.push(() => server.close());
    return server;
  }

  /** A bus on the test schema whose poll is far away: a delivery within the wait came from NOTIFY (or emit's own wake-up). */
  function bus(url: string, service = 'users', options: Parameters<typeof createEventBus>[0] = {}): EventBus {
    const b = createEventBus({
      service,
      secret: SECRET,
      services: { payments: url },
      database: DATABASE_URL,
      databaseSchema: schema,
      logger: quietLogger(),
      outbox: { pollIntervalMs: 60_000 },
      redelivery: { baseDelayMs: 50, maxDelayMs: 200, probeMaxDelayMs: 200 },
      retry: { retries: 0 },
      ...options,
    });
    b.declareEvent('user-created', ['payments']);
    cleanups.push(() => b.close());
    return b;
  }

  const idsOf = (server: RecordingServer) => server.requests.map((r) => (JSON.parse(r.body) as { id: string }).id);

  /** The `event emitted` lines, by event id. */
  const emittedLines = (log: CapturingLogger) => log.withMessage('event emitted').map((r) => r.eventId);
  const RECORDED_IN_TX = "event recorded in the caller's transaction; emitted once it commits";

  it('an emit in a transaction that rolls back is never delivered nor stored, and never logged as emitted', async () => {
    const server = await target();
    const log = createCapturingLogger('debug');
    const users = bus(server.url, 'users', { logger: log.logger });
    const client = await pool.connect();
    cleanups.push(() => client.release());
    await client.query('BEGIN');
    await client.query('CREATE TABLE IF NOT EXISTS "' + schema + '".users_rb (id int)');
    const rolledBack = await users.emit('user-created', { n: 1 }, { tx: client });
    await client.query('ROLLBACK');
    // A later event, outside any transaction, is delivered: the dispatcher ran, and never saw the first.
    const marker = await users.emit('user-created', { n: 2 });
    await waitFor(() => idsOf(server).includes(marker.id), { ...WAIT, what: 'the marker event' });
    await sleep(100);
    expect(idsOf(server)).toEqual([marker.id]);
    const rows = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".events_outbox WHERE event_id = $1`, [rolledBack.id]);
    expect(rows.rows[0].n).toBe(0);
    expect(log.withMessage(RECORDED_IN_TX)).toEqual([expect.objectContaining({ level: 'debug', eventId: rolledBack.id, targets: ['payments'] })]);
    expect(emittedLines(log)).toEqual([marker.id]);
  });

  it('an emit in a transaction is delivered exactly once, only after COMMIT, woken by NOTIFY (the poll is a minute away); `event emitted` is logged then, once', async () => {
    const server = await target();
    const log = createCapturingLogger('info');
    const users = bus(server.url, 'users', { logger: log.logger });
    const client = await pool.connect();
    cleanups.push(() => client.release());
    await client.query('BEGIN');
    const inTx = await users.emit('user-created', { n: 1 }, { tx: client });
    // Not visible before the commit: an event emitted after it, outside the transaction, arrives alone.
    const marker = await users.emit('user-created', { n: 2 });
    await waitFor(() => idsOf(server).includes(marker.id), { ...WAIT, what: 'the marker event' });
    expect(idsOf(server)).not.toContain(inTx.id);
    expect(emittedLines(log)).toEqual([marker.id]);
    await client.query('COMMIT');
    await waitFor(() => idsOf(server).includes(inTx.id), { ...WAIT, what: 'the committed event (NOTIFY)' });
    await waitFor(async () => (await users.outboxStats()).pending === 0, { ...WAIT, what: 'an empty outbox' });
    expect(idsOf(server).filter((id) => id === inTx.id)).toHaveLength(1);
    expect(emittedLines(log)).toEqual([marker.id, inTx.id]);
    expect(log.withMessage('event emitted')[1]).toMatchObject({ level: 'info', eventId: inTx.id, type: 'user-created', source: 'users', targets: ['payments'] });
    expect(log.withMessage(RECORDED_IN_TX)).toEqual([]); // debug only
  });

  it('a commit in one of two bus instances is delivered at once and exactly once (LISTEN/NOTIFY, claims)', async () => {
    const server = await target();
    const listening = bus(server.url);
    await listening.outboxStats(); // the tables exist; its LISTEN connection is set up at start
    await sleep(200);
    // Another instance of the same service commits; both instances LISTEN and poll only every
    // minute: the event is delivered at once, and once.
    const other = bus(server.url);
    const client = await pool.connect();
    cleanups.push(() => client.release());
    await client.query('BEGIN');
    const receipt = await other.emit('user-created', { n: 1 }, { tx: client });
    await client.query('COMMIT');
    await waitFor(() => idsOf(server).includes(receipt.id), { ...WAIT, what: 'the committed event' });
    expect(idsOf(server).filter((id) => id === receipt.id)).toHaveLength(1);
  });

  it('an emit without a transaction in another instance wakes this one by NOTIFY, sent after its commit; the sender skips its own NOTIFY', async () => {
    const server = await target();
    const listening = bus(server.url, 'users-woken', { services: { payments: server.url, orders: server.url } });
    await listening.outboxStats(); // the tables exist; its LISTEN connection is set up at start
    // Another instance that only records (no dispatcher): its emit is delivered by this one, woken by
    // the NOTIFY the other sends on its LISTEN connection once its INSERT commits (the poll is a minute away).
    const other = new PostgresOutbox(DATABASE_URL, { service: 'users-woken', schema });
    cleanups.push(() => other.close());
    const woken: string[] = [];
    other.onWork((target) => woken.push(target));
    // (Its NOTIFY waits for its own LISTEN connection, if that is not up yet; this one's must be.)
    const listenQuery = `SELECT 1 FROM pg_stat_activity WHERE application_name = 'events-library users-woken' AND query = 'LISTEN events_outbox'`;
    await waitFor(async () => (await pool.query(listenQuery)).rows.length > 0, { ...WAIT, what: 'the LISTEN connection' });
    await other.add([{ eventId: 'evt-woken', type: 'user-created', source: 'users-woken', target: 'payments', body: '{"id":"evt-woken"}', createdAt: Date.now() }]);
    await waitFor(() => idsOf(server).includes('evt-woken'), { ...WAIT, what: 'the other instance’s event (NOTIFY)' });
    // Its own NOTIFY skipped: one for a target no instance sends to (so nothing else notifies it)...
    await other.add([{ eventId: 'evt-own', type: 'user-created', source: 'users-woken', target: 'audit', body: '{"id":"evt-own"}', createdAt: Date.now() }]);
    await sleep(2 * DEFAULTS.database.notifyGapMs); // its NOTIFY goes at most that long after the last
    // ...and then a commit of the caller's transaction, which notifies from that transaction: the sender
    // hears it after its own earlier NOTIFY, had that not been skipped (notifications arrive in commit order).
    const client = await pool.connect();
    cleanups.push(() => client.release());
    await client.query('BEGIN');
    await other.add([{ eventId: 'evt-tx', type: 'user-created', source: 'users-woken', target: 'orders', body: '{"id":"evt-tx"}', createdAt: Date.now() }], { tx: client });
    await client.query('COMMIT');
    await waitFor(() => woken.includes('orders'), { ...WAIT, what: 'the NOTIFY of the committed transaction' });
    // ('payments' may be heard too: the listening instance notifies it if its lane found the target down, then back.)
    expect(woken).not.toContain('audit');
  });

  it('bus.flush() resolves once the delivered events are out of the table too (their rows are deleted in groups)', async () => {
    const server = await target();
    const users = bus(server.url, 'users-flush');
    await Promise.all([1, 2, 3].map((n) => users.emit('user-created', { n })));
    await users.flush();
    expect(server.requests).toHaveLength(3);
    const left = await pool.query(`SELECT 1 FROM "${schema}".events_outbox WHERE service = 'users-flush'`);
    expect(left.rows).toEqual([]);
  });

  it('rows carry the service name: two services sharing the schema see only their own', async () => {
    const server = await target(503);
    const users = bus(server.url, 'users-a');
    const orders = bus(server.url, 'orders-a');
    await users.emit('user-created', { n: 1 });
    await users.emit('user-created', { n: 2 });
    await orders.emit('user-created', { n: 3 });
    expect((await users.outboxStats()).pending).toBe(2);
    expect((await orders.outboxStats()).pending).toBe(1);
  });

  it('a dead letter is listed and replayed by the exported functions (another process): its NOTIFY wakes the service', async () => {
    let status = 400;
    const server = await startRecordingServer({ then: () => ({ status }) });
    cleanups.push(() => server.close());
    const users = bus(server.url, 'users-dead');
    const receipt = await users.emit('user-created', { n: 1 });
    // Listing and replaying on the bus is a scenario of every backend (test/scenarios/suite.ts); here, from outside.
    const where = { database: DATABASE_URL, service: 'users-dead', schema };
    await waitFor(async () => (await listDeadLetters(where)).length === 1, { ...WAIT, what: 'the dead letter' });
    const [letter] = await listDeadLetters(where);
    expect(letter).toMatchObject({ eventId: receipt.id, reason: 'refused', status: 400, target: 'payments' });
    expect(await inspectOutbox(where)).toMatchObject({ pending: 0, deadLetters: 1 });

    status = 200;
    // Replayed from "another process" (the exported function): its NOTIFY wakes the service.
    expect(await replayDeadLetters(where, { eventId: receipt.id })).toBe(1);
    await waitFor(() => server.requests.some((r) => r.status === 200), { ...WAIT, what: 'the replayed delivery' });
    await waitFor(async () => (await users.outboxStats()).pending === 0, { ...WAIT, what: 'an empty outbox' });
    expect(await users.outboxStats()).toMatchObject({ pending: 0, deadLetters: 0 });
  });

  it('dead letters are discarded for good, by the bus (by id) and by the exported function (by filter); replay then finds nothing', async () => {
    const server = await target(400);
    const users = bus(server.url, 'users-discard');
    const receipts = await Promise.all([1, 2, 3].map((n) => users.emit('user-created', { n })));
    await waitFor(async () => (await users.deadLetters()).length === 3, { ...WAIT, what: 'three dead letters' });
    const [first] = await users.deadLetters({ eventId: receipts[0]!.id });
    expect(await users.discardDeadLetters([first!.id, 'no-such-id'])).toBe(1);
    expect((await users.deadLetters()).map((d) => d.eventId).sort()).toEqual([receipts[1]!.id, receipts[2]!.id].sort());

    const where = { database: DATABASE_URL, service: 'users-discard', schema };
    expect(await discardDeadLetters({ ...where, service: 'someone-else' }, 'all')).toBe(0); // another service's rows stay
    expect(await discardDeadLetters(where, { target: 'payments' })).toBe(2);
    expect(await inspectOutbox(where)).toMatchObject({ pending: 0, deadLetters: 0 });
    expect(await users.replayDeadLetters('all')).toBe(0);
    const rows = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".events_dead_letters WHERE service = 'users-discard'`);
    expect(rows.rows).toEqual([{ n: 0 }]);
  });

  it('a target down then back: probed, then every failed delivery drains; the shared down mark is cleared', async () => {
    const server = await startRecordingServer({ replies: Array.from({ length: 6 }, () => ({ status: 503 })), then: { status: 200 } });
    cleanups.push(() => server.close());
    const users = bus(server.url, 'users-down');
    const receipts = await Promise.all([1, 2, 3, 4, 5].map((n) => users.emit('user-created', { n })));
    const delivered = () => server.requests.filter((q) => q.status === 200).map((q) => (JSON.parse(q.body) as { id: string }).id);
    await waitFor(() => receipts.every((r) => delivered().includes(r.id)), {
      ...WAIT,
      what: 'every event delivered after the outage',
    });
    await waitFor(async () => (await users.outboxStats()).pending === 0, { ...WAIT, what: 'an empty outbox' });
    const state = await pool.query(`SELECT down FROM "${schema}".events_targets WHERE service = 'users-down'`);
    expect(state.rows).toEqual([{ down: false }]);
    expect(server.requests.filter((q) => q.status === 503).length).toBe(6);
  });

  it('emit rejects with OutboxUnavailableError when the database refuses connections', async () => {
    const users = createEventBus({
      service: 'users',
      secret: SECRET,
      services: { payments: 'http://127.0.0.1:9/events' },
      database: 'postgres://postgres@127.0.0.1:1/test',
      databaseSchema: schema,
      logger: quietLogger(),
      outbox: { writeWaitMs: 200 },
    });
    cleanups.push(() => users.close());
    users.declareEvent('user-created', ['payments']);
    await expect(users.emit('user-created', { n: 1 })).rejects.toBeInstanceOf(OutboxUnavailableError);
    await expect(users.emit('user-created', { n: 2 })).rejects.toMatchObject({ where: expect.stringContaining('127.0.0.1:1') });
  });

  it('emit(…, { tx }) without the PostgreSQL outbox is a ConfigError naming EVENTS_DATABASE_URL', async () => {
    const memory = createEventBus({ service: 'users', secret: SECRET, services: { payments: 'http://127.0.0.1:9/events' }, logger: quietLogger() });
    cleanups.push(() => memory.close());
    memory.declareEvent('user-created', ['payments']);
    const client = await pool.connect();
    cleanups.push(() => client.release());
    await expect(memory.emit('user-created', { n: 1 }, { tx: client })).rejects.toMatchObject({
      name: 'ConfigError',
      variable: 'EVENTS_DATABASE_URL',
    });
  });

  it('EVENTS_DATABASE_URL selects the PostgreSQL outbox; a bad schema name is a ConfigError', async () => {
    const server = await target();
    const env = { EVENTS_DATABASE_URL: DATABASE_URL, EVENTS_DATABASE_SCHEMA: schema, EVENTS_SERVICE_NAME: 'users-env' };
    const users = createEventBus({ env, secret: SECRET, services: { payments: server.url }, logger: quietLogger() });
    cleanups.push(() => users.close());
    users.declareEvent('user-created', ['payments']);
    const receipt = await users.emit('user-created', { n: 1 });
    await waitFor(() => idsOf(server).includes(receipt.id), { ...WAIT, what: 'the delivery' });
    expect((await users.outboxStats()).durable).toBe(true);
    expect(() => createEventBus({ env: { ...env, EVENTS_DATABASE_SCHEMA: 'x"; drop' }, logger: quietLogger() })).toThrow(ConfigError);
  });
});
