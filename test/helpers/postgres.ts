import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';

/** The test database: PostgreSQL on 127.0.0.1:5432, trust auth, database `test` (EVENTS_TEST_DATABASE_URL overrides). */
export const DATABASE_URL = process.env.EVENTS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Whether PostgreSQL answers. In CI (`CI=true`) it must: a missing database fails the suite rather
 * than skipping it. Elsewhere the Postgres tests are skipped with a message.
 */
export function postgresAvailable(): boolean {
  const probe = spawnSync('pg_isready', ['-q', '-h', '127.0.0.1', '-p', '5432'], { timeout: 5_000 });
  const up = probe.status === 0;
  if (!up && process.env.CI === 'true') {
    throw new Error('PostgreSQL does not answer on 127.0.0.1:5432 (pg_isready); CI runs the Postgres tests, start it (see .ci/run)');
  }
  if (!up) console.warn('PostgreSQL does not answer on 127.0.0.1:5432: skipping the Postgres tests (CI=true would fail instead)');
  return up;
}

/** `describe` when PostgreSQL answers, `describe.skip` otherwise (never skipped in CI). */
export const describePostgres: jest.Describe = postgresAvailable() ? describe : describe.skip;

/** A fresh schema of its own for a test file (or test): created now, dropped with `drop()`. */
export async function freshSchema(prefix = 't'): Promise<{ schema: string; pool: Pool; drop(): Promise<void> }> {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  const pool = new Pool({ connectionString: DATABASE_URL, max: 4 });
  await pool.query(`CREATE SCHEMA "${schema}"`);
  return {
    schema,
    pool,
    drop: async () => {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    },
  };
}
