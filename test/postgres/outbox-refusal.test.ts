// An emit the PostgreSQL outbox refuses (its group INSERT not answered within outbox.writeWaitMs)
// is not recorded, and never will be: nothing delivered, so emitting it again runs its handlers once.
// And the converse: an INSERT that committed but whose answer came too late is an emit that resolves.
import { Pool, type PoolClient, type QueryResult } from 'pg';
import { createEventBus, OutboxUnavailableError } from '../../src/index.js';
import type { EventBus } from '../../src/bus.js';
import type { DatabasePool } from '../../src/types.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { quietLogger } from '../helpers/logger.js';
import { DATABASE_URL, describePostgres, freshSchema } from '../helpers/postgres.js';
import { type RecordingServer, startRecordingServer } from '../helpers/recording-server.js';
import { newSecret } from '../helpers/signing.js';
import { gate, waitFor } from '../helpers/wait.js';

const SECRET = newSecret();
const WAIT = { timeoutMs: 10_000 };

describePostgres('PostgreSQL outbox: a refused emit is not recorded', () => {
  const cleanups = cleanupAfterEach();
  let schema: string;
  let pool: Pool;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    ({ schema, pool, drop } = await freshSchema('outbox_refusal'));
  });
  afterAll(async () => drop());

  async function target(): Promise<RecordingServer> {
    const server = await startRecordingServer();
    cleanups.push(() => server.close());
    return server;
  }

  function bus(url: string, service: string, database: string | DatabasePool = DATABASE_URL): EventBus {
    const b = createEventBus({
      service,
      secret: SECRET,
      services: { payments: url },
      database,
      databaseSchema: schema,
      logger: quietLogger(),
      // The poll is a minute away: only this instance's own wake-ups deliver, and what is recorded stays until then.
      outbox: { writeWaitMs: 1_000, pollIntervalMs: 60_000 },
      retry: { retries: 0 },
    });
    b.declareEvent('user-created', ['payments']);
    cleanups.push(() => b.close());
    return b;
  }

  const dataOf = (server: RecordingServer) => server.requests.map((r) => (JSON.parse(r.body) as { data: { n: number } }).data.n);
  const rowsOf = async (service: string) =>
    (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".events_outbox WHERE service = $1`, [service])).rows[0]!.n;
  /** The outbox INSERTs of this schema (an emit's goes through `events_add`) waiting for a lock. */
  const waitingInserts = async () =>
    (
      await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'
           AND (query LIKE '%INSERT INTO "' || $1 || '".events_outbox%' OR query LIKE '%"' || $1 || '".events_add(%')`,
        [schema],
      )
    ).rows[0]!.n;

  it('an INSERT held by a lock past writeWaitMs: the emit rejects, and the event is never recorded nor delivered', async () => {
    const server = await target();
    const users = bus(server.url, 'users-locked');
    await users.emit('user-created', { n: 0 }); // the tables exist
    await waitFor(() => dataOf(server).includes(0), { ...WAIT, what: 'the first event' });
    // Its row's DELETE goes a few ms after the delivery: taken before the lock, or the lock holds it, and the next emit waits for it instead.
    await waitFor(async () => (await rowsOf('users-locked')) === 0, { ...WAIT, what: "the first event's row deleted" });

    const locker = await pool.connect();
    cleanups.push(() => locker.release(true)); // closed: a test that fails before COMMIT leaves no lock behind
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE "${schema}".events_outbox IN ACCESS EXCLUSIVE MODE`);
    let settled = false;
    const refused = users.emit('user-created', { n: 1 }).then(
      () => 'recorded',
      (error: unknown) => error,
    );
    void refused.finally(() => (settled = true));
    await waitFor(async () => (await waitingInserts()) === 1, { ...WAIT, what: 'the INSERT waiting for the lock' });
    // Past the deadline the INSERT is ended (or, as it used to be, the emit rejected while it still waits).
    await waitFor(async () => settled || (await waitingInserts()) === 0, { ...WAIT, what: 'the INSERT ended' });
    await locker.query('COMMIT');

    const error = await refused;
    expect(error).toBeInstanceOf(OutboxUnavailableError);
    expect((error as OutboxUnavailableError).message).toContain('the event was not accepted; emit it again later');
    expect((error as OutboxUnavailableError).unknownEventIds).toBeUndefined();
    // Emitted again, it is delivered once; the refused emit never is.
    await users.emit('user-created', { n: 1 });
    await users.emit('user-created', { n: 2 });
    await waitFor(() => dataOf(server).includes(2), { ...WAIT, what: 'the last event' });
    await waitFor(async () => (await rowsOf('users-locked')) === 0, { ...WAIT, what: 'an empty outbox' });
    expect(dataOf(server).sort()).toEqual([0, 1, 2]);
  });

  it('an INSERT whose rows are written but whose commit is still running past writeWaitMs: the emit rejects, the rows roll back', async () => {
    const server = await target();
    const users = bus(server.url, 'users-slow');
    await users.emit('user-created', { n: 0 });
    await waitFor(() => dataOf(server).includes(0), { ...WAIT, what: 'the first event' });
    // A deferred trigger runs at commit: this service's next INSERT has its rows (and its xid), and commits 5 s later.
    await pool.query(`CREATE FUNCTION "${schema}".slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$`);
    await pool.query(
      `CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON "${schema}".events_outbox DEFERRABLE INITIALLY DEFERRED
       FOR EACH ROW WHEN (NEW.service = 'users-slow') EXECUTE FUNCTION "${schema}".slow_commit()`,
    );
    cleanups.push(async () => {
      await pool.query(`DROP TRIGGER IF EXISTS slow_commit ON "${schema}".events_outbox`);
    });
    const error = await users.emit('user-created', { n: 1 }).then(
      () => 'recorded',
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(OutboxUnavailableError);
    expect((error as OutboxUnavailableError).message).toContain('the event was not accepted; emit it again later');
    expect((error as OutboxUnavailableError).unknownEventIds).toBeUndefined();
    await pool.query(`DROP TRIGGER slow_commit ON "${schema}".events_outbox`);
    await users.emit('user-created', { n: 2 });
    await waitFor(() => dataOf(server).includes(2), { ...WAIT, what: 'the last event' });
    await waitFor(async () => (await rowsOf('users-slow')) === 0, { ...WAIT, what: 'an empty outbox' });
    expect(dataOf(server).sort()).toEqual([0, 2]);
  });

  it('an INSERT that committed but was answered after writeWaitMs: the emit resolves, and the event is delivered once', async () => {
    const server = await target();
    // A pool whose connections hold the answer of an outbox INSERT until `answers` opens: it has committed, its answer is late.
    const real = new Pool({ connectionString: DATABASE_URL, max: 4 });
    cleanups.push(() => real.end());
    const answers = gate();
    cleanups.push(() => answers.open());
    const late = new WeakSet<PoolClient>();
    const database: DatabasePool = {
      query: real.query.bind(real) as DatabasePool['query'],
      async connect() {
        const client = await real.connect();
        if (!late.has(client)) {
          late.add(client);
          const query = client.query.bind(client) as (...args: unknown[]) => Promise<QueryResult>;
          Object.assign(client, {
            query: async (...args: unknown[]) => {
              const result = await query(...args);
              if (typeof args[0] === 'string' && args[0].startsWith(`INSERT INTO "${schema}".events_outbox`)) await answers.wait();
              return result;
            },
          });
        }
        return client as unknown as Awaited<ReturnType<DatabasePool['connect']>>;
      },
    };
    const users = bus(server.url, 'users-late', database);
    const receipt = await users.emit('user-created', { n: 1 });
    answers.open();
    await waitFor(() => dataOf(server).includes(1), { ...WAIT, what: 'the event' });
    await waitFor(async () => (await rowsOf('users-late')) === 0, { ...WAIT, what: 'an empty outbox' });
    expect(server.requests.map((r) => (JSON.parse(r.body) as { id: string }).id)).toEqual([receipt.id]);
  });
});
