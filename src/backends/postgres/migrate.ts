import { allDdl, applyDdl, connect } from './pool.js';
import './outbox.js'; // registers the outbox's tables with allDdl

/** The SQL of every table of the library in `schema` (what `events-library migrate` prints). */
export function migrationSql(schema: string): string {
  return allDdl(schema);
}

/** Creates (or completes) the library's tables in `schema` of `database`; resolves with where (the URL without password). */
export async function migrate(database: string, schema: string): Promise<string> {
  const connection = connect(database, { max: 1 });
  try {
    await applyDdl(connection.pool, allDdl(schema));
  } finally {
    await connection.release();
  }
  return connection.where;
}
