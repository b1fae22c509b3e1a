import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';

/** The test database: the local PostgreSQL (trust auth), database `test`. */
export const PG_URL = process.env.EVENTS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function postgresAnswers(): boolean {
  try {
    execFileSync('pg_isready', ['-q', '-h', '127.0.0.1', '-p', '5432'], { stdio: 'ignore', timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

/** Tests against PostgreSQL run: always in CI (`CI=true`), elsewhere when the server answers. */
export function postgresRequiredOrAnswers(): boolean {
  return process.env.CI === 'true' || postgresAnswers();
}

/**
 * `describe` for tests against the real PostgreSQL: always run in CI (`CI=true`, where a missing
 * server fails them), skipped with a message elsewhere when the server does not answer.
 */
export function describePostgres(name: string, fn: () => void): void {
  if (postgresRequiredOrAnswers()) {
    describe(name, fn);
    return;
  }
  console.warn(`skipped "${name}": PostgreSQL does not answer on 127.0.0.1:5432 (start it, or run in CI where it is required)`);
  describe.skip(name, fn);
}

/** A schema of its own for one test file, created now and dropped (with everything in it) by `drop`. */
export async function createTestSchema(prefix: string): Promise<{ schema: string; pool: Pool; drop(): Promise<void> }> {
  const schema = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const pool = new Pool({ connectionString: PG_URL, max: 4 });
  await pool.query(`CREATE SCHEMA "${schema}"`);
  return {
    schema,
    pool,
    drop: async () => {
      try {
        await dropSchema(pool, schema);
      } finally {
        await pool.end();
      }
    },
  };
}

/**
 * DROP SCHEMA … CASCADE, tried again when it deadlocks: a statement of the library still running
 * in the schema when a test file ends (a connection a test left stuck on purpose, a background
 * write) takes its locks in another order, and PostgreSQL ends one of the two.
 */
async function dropSchema(pool: Pool, schema: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '40P01' || attempt === 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

/** The same database URL, under the name the outbox tests use. */
export const DATABASE_URL = PG_URL;

/** A fresh schema of its own for a test file (or test): created now, dropped with `drop()`. */
export const freshSchema = (prefix = 't') => createTestSchema(prefix);
