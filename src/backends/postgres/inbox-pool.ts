import type { Logger } from 'winston';
import { DEFAULTS } from '../../defaults.js';
import type { DatabasePool } from '../../types.js';
import { loadPg } from './pool.js';

/** A pool to use, and whether the library opened it (then it ends it at close). */
export interface OwnedPool {
  pool: DatabasePool;
  owned: boolean;
  end(): Promise<void>;
}

/**
 * The pool for `database`: yours as is (never ended by the library), or one opened from a URL
 * with `pg` (loaded lazily, in postgres.ts). An idle connection that breaks (the server restarted) is logged
 * and replaced by the pool, never thrown into the process.
 */
export function openPool(database: string | DatabasePool, logger: Logger): OwnedPool {
  if (typeof database !== 'string') return { pool: database, owned: false, end: async () => {} };
  const { Pool } = loadPg();
  const pool = new Pool({ connectionString: database, max: DEFAULTS.database.poolSize });
  pool.on('error', (error) =>
    logger.warn('an idle PostgreSQL connection failed; the pool opens another', { error: error.message, code: (error as { code?: string }).code }),
  );
  let ended: Promise<void> | undefined;
  return { pool: pool as unknown as DatabasePool, owned: true, end: () => (ended ??= pool.end()) };
}
