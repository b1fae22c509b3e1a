import { createEventBus, type DeadLetter } from '../../src/index.js';
import { runScript } from '../helpers/child.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { quietLogger } from '../helpers/logger.js';
import { DATABASE_URL, describePostgres, freshSchema } from '../helpers/postgres.js';
import { startRecordingServer } from '../helpers/recording-server.js';
import { newSecret } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

const cli = (args: string[], env: Record<string, string> = {}) => runScript(['src/cli.ts', ...args], env);

describePostgres('events-library CLI on the PostgreSQL outbox', () => {
  const cleanups = cleanupAfterEach();

  it('migrate prints the SQL; migrate --apply creates the tables in the schema', async () => {
    const printed = await cli(['migrate', '--schema', 'billing_events']);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toContain('CREATE SCHEMA IF NOT EXISTS "billing_events";');
    expect(printed.stdout).toContain('CREATE TABLE IF NOT EXISTS "billing_events".events_outbox');
    expect(printed.stdout).toContain('CREATE TABLE IF NOT EXISTS "billing_events".events_inbox');
    expect(printed.stdout).toContain('INSERT INTO "billing_events".events_library_schema');

    const { schema, pool, drop } = await freshSchema('migrate');
    cleanups.push(drop);
    const applied = await cli(['migrate', '--apply'], { EVENTS_DATABASE_URL: DATABASE_URL, EVENTS_DATABASE_SCHEMA: schema });
    expect(applied).toMatchObject({ code: 0 });
    const tables = await pool.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [schema]);
    expect(tables.rows.map((r: { table_name: string }) => r.table_name)).toEqual(['events_dead_letters', 'events_inbox', 'events_library_schema', 'events_outbox', 'events_targets']);
    expect((await cli(['migrate', '--apply'])).code).toBe(2); // no database given
  });

  it('status, dead-letters and replay work on a service\'s rows (--database, or EVENTS_DATABASE_URL)', async () => {
    const { schema, drop } = await freshSchema('cli');
    cleanups.push(drop);
    let status = 400;
    const server = await startRecordingServer({ then: () => ({ status }) });
    cleanups.push(() => server.close());
    const bus = createEventBus({
      service: 'users',
      secret: newSecret(),
      services: { payments: server.url },
      database: DATABASE_URL,
      databaseSchema: schema,
      logger: quietLogger(),
      outbox: { pollIntervalMs: 200 },
    });
    cleanups.push(() => bus.close());
    bus.declareEvent('user-created', ['payments']);
    const receipt = await bus.emit('user-created', { n: 1 });
    await waitFor(async () => (await bus.deadLetters()).length === 1, { timeoutMs: 10_000, what: 'the dead letter' });

    const where = ['--database', DATABASE_URL, '--schema', schema, '--service', 'users'];
    const shown = await cli(['status', '--json', ...where]);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ pending: 0, deadLetters: 1, targets: { payments: { deadLetters: 1 } } });

    const env = { EVENTS_DATABASE_URL: DATABASE_URL, EVENTS_DATABASE_SCHEMA: schema, EVENTS_SERVICE_NAME: 'users' };
    const listed = await cli(['dead-letters', '--json'], env);
    const [letter] = JSON.parse(listed.stdout) as DeadLetter[];
    expect(letter).toEqual(expect.objectContaining({ eventId: receipt.id, reason: 'refused', status: 400, kept: 'outbox' }));
    // Without a service: every service's rows.
    const everyone = await cli(['dead-letters', '--json', '--database', DATABASE_URL, '--schema', schema]);
    expect((JSON.parse(everyone.stdout) as DeadLetter[]).map((d) => d.id)).toContain(letter!.id);
    expect((await cli(['dead-letters', '--json'], { ...env, EVENTS_SERVICE_NAME: 'orders' })).stdout.trim()).toBe('[]');

    status = 200;
    const replayed = await cli(['replay', letter!.id], env);
    expect(replayed).toMatchObject({ code: 0 });
    expect(replayed.stdout).toContain('replayed 1 dead letter');
    await waitFor(() => server.requests.some((r) => r.status === 200), { timeoutMs: 10_000, what: 'the replayed delivery' });

    const missing = await cli(['status', ...where.slice(0, 2), '--schema', 'no_such_schema_here', '--service', 'users']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no events-library outbox in schema no_such_schema_here');
  });
});
