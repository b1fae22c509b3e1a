import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { startScript } from '../helpers/child.js';
import { createTestSchema, describePostgres, PG_URL } from '../helpers/postgres.js';
import { newSecret } from '../helpers/signing.js';
import { sleep, waitFor } from '../helpers/wait.js';

// The server ends the service's connections (pg_terminate_backend from another connection) while
// it emits and while its handlers hold their transactions, over and over, in its own process:
// the process lives, an emit either resolves or rejects with OutboxUnavailableError, and every
// event whose emit resolved is handled exactly once.

const EVENTS = 600;

describePostgres('PostgreSQL: connections lost under load', () => {
  let db: { schema: string; pool: Pool; drop(): Promise<void> };

  beforeAll(async () => {
    db = await createTestSchema('lost');
    await db.pool.query(`CREATE TABLE "${db.schema}".effects (event_id text NOT NULL)`);
  });
  afterAll(() => db.drop());

  test('backends terminated mid-emit and mid-transaction (outbox and inbox): the process lives, nothing is lost', async () => {
    const service = `lost_${randomUUID().slice(0, 8)}`;
    const running = startScript(
      ['test/postgres/support/loop-service.ts'],
      { PG_URL, PG_SCHEMA: db.schema, PG_SERVICE: service, PG_EFFECTS: `"${db.schema}".effects`, PG_SECRET: newSecret(), PG_N: String(EVENTS) },
      { killAfterMs: 110_000 },
    );
    let stdout = '';
    running.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    await running.line(/^started$/);

    // Every connection of the service ended, again and again, until it has emitted everything and
    // connections were caught both inside a transaction and inside a statement (on a fast machine
    // the emits end first: the handlers' transactions go on, for at most 10 s more).
    let emitting = true;
    let emittedAt = Infinity;
    const done = running.line(/^emitted-all$/).finally(() => {
      emitting = false;
      emittedAt = Date.now();
    });
    const ended: Record<string, number> = {};
    const caughtBoth = () => (ended['idle in transaction'] ?? 0) > 0 && (ended.active ?? 0) > 0;
    while (emitting || (!caughtBoth() && Date.now() - emittedAt < 10_000)) {
      const { rows } = await db.pool.query<{ state: string | null }>(
        `SELECT state, pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
        [`events-library ${service}`],
      );
      for (const { state } of rows) ended[state ?? 'none'] = (ended[state ?? 'none'] ?? 0) + 1;
      await sleep(caughtBoth() ? 100 : 25);
    }
    await done;
    // Ended inside a transaction and inside a statement: the cases that crashed the process.
    expect(ended['idle in transaction']).toBeGreaterThan(0);
    expect(ended.active).toBeGreaterThan(0);

    const lines = stdout.split('\n');
    const emitted = lines.filter((l) => l.startsWith('emitted ') && l !== 'emitted-all').map((l) => l.slice('emitted '.length));
    const refused = lines.filter((l) => l.startsWith('refused '));
    expect(emitted.length + refused.length).toBe(EVENTS);
    expect(refused.filter((l) => !l.startsWith('refused OutboxUnavailableError '))).toEqual([]);
    expect(emitted.length).toBeGreaterThan(0);

    // Every event whose emit resolved is handled, once (the inbox's transaction books it with its mark).
    const booked = async () => (await db.pool.query<{ event_id: string }>(`SELECT event_id FROM "${db.schema}".effects`)).rows.map((r) => r.event_id);
    await waitFor(async () => new Set(await booked()).size >= emitted.length, { timeoutMs: 60_000, intervalMs: 200, what: 'every emitted event handled' });
    const effects = await booked();
    expect(new Set(effects)).toEqual(new Set(emitted));
    expect(effects.length).toBe(emitted.length);

    running.child.kill('SIGTERM');
    const result = await running.result;
    expect({ code: result.code, stderr: /Unhandled|uncaught/i.test(result.stderr) ? result.stderr : '' }).toEqual({ code: 0, stderr: '' });
  }, 120_000);
});
