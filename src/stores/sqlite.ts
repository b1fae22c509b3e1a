import type BetterSqlite3 from 'better-sqlite3';
import { ConfigError } from '../errors/index.js';

export type Database = BetterSqlite3.Database;

/**
 * Opens a SQLite file with better-sqlite3, the optional peer dependency, loaded only here.
 * WAL, and `synchronous = NORMAL`: a committed transaction survives the process being killed
 * (SIGKILL included); only an OS crash or power loss can take the last commits. The automatic
 * checkpoint runs every 16384 WAL pages (64 MiB) rather than SQLite's 1000: it runs inside the
 * commit that crosses the mark, fsyncs included, so a rarer one takes most of it off the emit
 * path (bench: 3 targets 22k → 28k emits/s, p99 23 → 5 ms).
 */
export function openDatabase(path: string, variable: string): Database {
  let Driver: typeof BetterSqlite3;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    Driver = require('better-sqlite3') as typeof BetterSqlite3;
  } catch (cause) {
    throw new ConfigError(
      `${variable} is set, but the optional peer dependency better-sqlite3 is not installed: run npm install better-sqlite3@^12`,
      { variable, cause },
    );
  }
  let db: Database;
  try {
    db = new Driver(path);
  } catch (cause) {
    throw new ConfigError(`${variable}: cannot open the SQLite file ${path}: ${(cause as Error).message}`, { variable, cause });
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('wal_autocheckpoint = 16384');
  return db;
}
