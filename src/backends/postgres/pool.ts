import type * as Pg from 'pg';
import { inboxTableDdl } from './inbox-schema.js';
import type { Pool, PoolClient } from 'pg';
import type { PgPoolLike } from '../../config.js';
import { DEFAULTS } from '../../defaults.js';
import { ConfigError } from '../../errors/index.js';

// PostgreSQL for the stores: `pg` is an optional peer dependency, loaded only here, when used.

export type PgModule = typeof Pg;

export function loadPg(): PgModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('pg') as PgModule;
  } catch (cause) {
    throw new ConfigError(
      'EVENTS_DATABASE_URL (or the database option) is set, but the optional peer dependency pg is not installed: run npm install pg@^8',
      { variable: 'EVENTS_DATABASE_URL', cause },
    );
  }
}

/** A pool for the stores: the caller's own (never ended here), or one opened from a URL (ended by `release`). */
export interface PgConnection {
  pool: Pool;
  /** Where it points, for messages (credentials removed). */
  where: string;
  /** Ends the pool if this module opened it. */
  release(): Promise<void>;
}

/** Opens a pool from `database` (a URL), or wraps the caller's pool. */
export function connect(database: string | PgPoolLike, options: { max?: number } = {}): PgConnection {
  if (typeof database !== 'string') {
    return { pool: database as Pool, where: 'your pg.Pool', release: async () => {} };
  }
  const pg = loadPg();
  const pool = new pg.Pool({ connectionString: database, max: options.max ?? DEFAULTS.database.poolSize });
  // An idle client losing its connection (a database restart) must not crash the process: the pool
  // drops it, and the next query opens a fresh one.
  pool.on('error', () => {});
  let ended = false;
  return {
    pool,
    where: redact(database),
    release: async () => {
      if (ended) return;
      ended = true;
      await pool.end();
    },
  };
}

/** A URL without its password, for messages and logs. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://…';
  }
}

/** Checks a schema name and returns it quoted for SQL. Plain identifiers only: letters, digits, `_`, at most 63. */
export function quoteSchema(schema: string): string {
  if (typeof schema !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigError(
      `databaseSchema ${JSON.stringify(schema)} is not a plain PostgreSQL identifier (letters, digits and _, starting with a letter or _, at most 63)`,
      { variable: 'EVENTS_DATABASE_SCHEMA' },
    );
  }
  return `"${schema}"`;
}

/** A part of the library's schema: its name and its DDL in schema `s` (quoted). Idempotent statements only. */
export interface DdlPart {
  name: string;
  sql: (s: string) => string;
}

const parts: DdlPart[] = [{ name: 'inbox', sql: inboxTableDdl }];

/** Registers the DDL of a store (the outbox registers its tables here; the inbox adds its own). Idempotent by name. */
export function registerDdl(part: DdlPart): void {
  if (!parts.some((p) => p.name === part.name)) parts.push(part);
}

/** Every table and index of the library in `schema`, as `npx events-library migrate` prints it. */
export function allDdl(schema: string): string {
  const s = quoteSchema(schema);
  return [`CREATE SCHEMA IF NOT EXISTS ${s};`, ...parts.map((part) => `-- ${part.name}\n${part.sql(s).trim()}`)].join('\n\n') + '\n';
}

/** A fixed key for the advisory lock serialising the library's DDL across instances starting at once. */
const DDL_LOCK = 7_263_514_001;

/** Runs `sql` (idempotent DDL) in one transaction under an advisory lock: instances starting together do not race. */
export async function applyDdl(pool: Pool, sql: string): Promise<void> {
  const client: PoolClient = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [DDL_LOCK]);
    await client.query(sql);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** Whether `error` means the database cannot be reached or cannot write now (rather than a mistake in a query). */
export function isUnavailable(error: unknown): boolean {
  const code = String((error as { code?: unknown })?.code ?? '');
  if (['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'EAI_AGAIN'].includes(code)) return true;
  // 08: connection exceptions; 53: insufficient resources (disk full, too many connections); 57P: shutdown; 25006: read-only.
  if (/^(08|53|57P)/.test(code) || code === '25006') return true;
  const message = (error as Error)?.message ?? '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|Cannot use a pool after calling end/i.test(message);
}
