import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { PostgresDatabase } from '../../src/backends/postgres/database.js';
import { PostgresOutbox } from '../../src/backends/postgres/outbox.js';
import type { NewDelivery } from '../../src/send/outbox-store.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { quietLogger } from '../helpers/logger.js';
import { createTestSchema, describePostgres, PG_URL } from '../helpers/postgres.js';

// The stores' frequent statements run as named prepared statements (parsed and planned once per
// connection); `databasePreparedStatements: false` turns that off for poolers that cannot keep them.

describePostgres('PostgreSQL: prepared statements', () => {
  let db: { schema: string; pool: Pool; drop(): Promise<void> };
  const cleanups = cleanupAfterEach();

  beforeAll(async () => {
    db = await createTestSchema('prepared');
  });
  afterAll(async () => {
    await db.drop();
  });

  /** A pool that records each statement's text and whether it came prepared (named). */
  function recordingPool(): { pool: Pool; named: Map<string, boolean> } {
    const pool = new Pool({ connectionString: PG_URL, max: 2 });
    const named = new Map<string, boolean>();
    const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
    (pool as { query: unknown }).query = (statement: string | { text: string; name?: string }, ...rest: unknown[]) => {
      if (typeof statement === 'string') named.set(statement, false);
      else named.set(statement.text, statement.name !== undefined);
      return query(statement, ...rest);
    };
    cleanups.push(() => pool.end());
    return { pool, named };
  }

  const delivery = (n: number): NewDelivery => ({
    eventId: `evt-${n}`,
    type: 'order.placed',
    source: 'orders',
    target: 'payments',
    body: `{"specversion":"1.0","id":"evt-${n}","data":{}}`,
    createdAt: Date.now(),
  });

  async function claimAndSettle(preparedStatements: boolean): Promise<Map<string, boolean>> {
    const { pool, named } = recordingPool();
    const database = new PostgresDatabase(pool, { schema: db.schema, logger: quietLogger(), preparedStatements });
    const outbox = new PostgresOutbox(database, { service: `svc_${randomUUID().slice(0, 8)}`, schema: db.schema, eventsPerRequest: () => 10 });
    cleanups.push(() => outbox.close());
    await outbox.add([delivery(1), delivery(2)]);
    const claimed = await outbox.claim('payments', Date.now() + 1000, 10);
    expect(claimed).toHaveLength(2);
    await outbox.settleMany([{ kind: 'reschedule', record: claimed[0]!, nextAttemptAt: Date.now() + 60_000 }, { kind: 'complete', record: claimed[1]! }]);
    return named;
  }

  const claimOf = (named: Map<string, boolean>) => [...named].find(([text]) => text.includes('.events_claim('));
  const settleOf = (named: Map<string, boolean>) => [...named].find(([text]) => text.includes('again AS (UPDATE'));

  test('by default the claim and the settle are prepared; with preparedStatements: false nothing is', async () => {
    const on = await claimAndSettle(true);
    expect(claimOf(on)?.[1]).toBe(true);
    expect(settleOf(on)?.[1]).toBe(true);
    const off = await claimAndSettle(false);
    expect(claimOf(off)?.[1]).toBe(false);
    expect(settleOf(off)?.[1]).toBe(false);
    expect([...off.values()]).not.toContain(true);
  });

  test('a prepared statement whose result changed under it (a schema upgrade) runs again unprepared, and stays unprepared', async () => {
    // One connection, so the second call meets the plan the first one prepared.
    const { pool } = recordingPool();
    const single = new Pool({ connectionString: PG_URL, max: 1 });
    cleanups.push(() => single.end());
    const database = new PostgresDatabase(single, { schema: db.schema, logger: quietLogger() });
    const table = `"${db.schema}".upgraded_${randomUUID().slice(0, 8)}`;
    await pool.query(`CREATE TABLE ${table} (a int)`);
    await pool.query(`INSERT INTO ${table} VALUES (1)`);
    const text = `SELECT * FROM ${table} WHERE a = $1`;
    expect((await database.run(text, [1])).rows).toEqual([{ a: 1 }]);

    await pool.query(`ALTER TABLE ${table} ADD COLUMN b int DEFAULT 2`);
    // PostgreSQL refuses the prepared plan on that connection (0A000); the call is run again unprepared.
    expect((await database.run(text, [1])).rows).toEqual([{ a: 1, b: 2 }]);

    // Inside a transaction nothing is run again; the text simply goes unprepared from now on.
    const client = await single.connect();
    cleanups.push(() => client.release());
    const seen: Array<string | { name?: string }> = [];
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    (client as { query: unknown }).query = (statement: string | { name?: string }, ...rest: unknown[]) => (seen.push(statement), query(statement, ...rest));
    await client.query('BEGIN');
    expect((await database.run(text, [1], client, true)).rows).toEqual([{ a: 1, b: 2 }]);
    await client.query('COMMIT');
    expect(seen.filter((s) => typeof s === 'object' && s.name !== undefined)).toEqual([]);
  });
});
