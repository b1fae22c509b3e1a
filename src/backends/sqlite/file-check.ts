import type BetterSqlite3 from 'better-sqlite3';
import { ConfigError } from '../../errors/index.js';
import { loadDriver } from './database.js';

/**
 * The tables of an events-library outbox and the columns the operator tools read and write.
 * A file may hold more (a newer version may add some); it may not lack any of these.
 */
const EXPECTED: Readonly<Record<string, readonly string[]>> = {
  outbox: [
    'id', 'event_id', 'type', 'source', 'target', 'body', 'created_at', 'attempts', 'next_attempt_at',
    'last_attempt_at', 'last_status', 'last_error', 'leased',
  ],
  dead_letters: [
    'id', 'event_id', 'type', 'source', 'target', 'body', 'created_at', 'attempts', 'next_attempt_at',
    'last_attempt_at', 'last_status', 'last_error', 'dead_at', 'reason',
  ],
};

const WHAT = 'an events-library outbox (an SQLite file with the tables outbox and dead_letters, created by a service with EVENTS_OUTBOX_PATH)';

/**
 * Checks, read-only, that the SQLite file at `path` is an events-library outbox, before anything
 * opens it as one: opening as an outbox creates the tables and switches the file to WAL, which an
 * operator tool pointed at the wrong file must never do. The file is opened with
 * `{ readonly: true, fileMustExist: true }`, so it is left exactly as it was (no table, no journal
 * mode change, no -wal file). Throws a ConfigError naming the path and what was expected.
 */
export function assertOutboxFile(path: string, variable = 'EVENTS_OUTBOX_PATH'): void {
  const Driver = loadDriver(variable, 'reading an outbox file needs the optional peer dependency better-sqlite3');
  let db: BetterSqlite3.Database | undefined;
  let tables: Map<string, Set<string>>;
  try {
    db = new Driver(path, { readonly: true, fileMustExist: true });
    tables = new Map();
    for (const name of Object.keys(EXPECTED)) {
      const columns = db.prepare('SELECT name FROM pragma_table_info(?)').all(name) as { name: string }[];
      if (columns.length > 0) tables.set(name, new Set(columns.map((c) => c.name)));
    }
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
      // Not the operator's mistake, and not a reason to call the file foreign: try again.
      throw new Error(`the outbox file ${path} is locked by another connection for now: try again`, { cause });
    }
    const why = code === 'SQLITE_NOTADB' ? 'it is not an SQLite database' : `SQLite cannot read it: ${(cause as Error).message}`;
    throw new ConfigError(`${path} is not ${WHAT}: ${why}`, { variable, cause });
  } finally {
    if (db?.open) db.close();
  }
  const missing: string[] = [];
  for (const [name, columns] of Object.entries(EXPECTED)) {
    const found = tables.get(name);
    if (!found) missing.push(`table ${name}`);
    else for (const column of columns) if (!found.has(column)) missing.push(`column ${name}.${column}`);
  }
  if (missing.length > 0) {
    throw new ConfigError(`${path} is not ${WHAT}: it has no ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}. Nothing was changed in it.`, {
      variable,
    });
  }
}
