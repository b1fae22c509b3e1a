import type { Statement } from 'better-sqlite3';
import type { InboxStore } from '../receive/inbox-store.js';
import { type Database, openDatabase } from './sqlite.js';

const DONE = '*';
const PRUNE_EVERY_MS = 60 * 60 * 1000;

/**
 * The durable inbox, in SQLite: one row per completed handler, and one `*` row once every handler
 * completed. Each mark commits before the receiver answers, so a crash after a 2xx cannot rerun
 * a handler. Ids older than `retentionMs` are pruned hourly.
 */
export class SqliteInbox implements InboxStore {
  readonly durable = true;
  private readonly db: Database;
  private readonly select: Statement;
  private readonly mark: Statement;
  private readonly pruneTimer: NodeJS.Timeout;

  constructor(path: string, private readonly retentionMs: number) {
    this.db = openDatabase(path, 'EVENTS_INBOX_PATH');
    this.db.exec(`CREATE TABLE IF NOT EXISTS inbox (
      event_key TEXT NOT NULL, handler TEXT NOT NULL, done_at INTEGER NOT NULL,
      PRIMARY KEY (event_key, handler)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS inbox_done_at ON inbox (done_at);`);
    this.select = this.db.prepare('SELECT handler FROM inbox WHERE event_key = ?');
    this.mark = this.db.prepare('INSERT OR IGNORE INTO inbox (event_key, handler, done_at) VALUES (?, ?, ?)');
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), PRUNE_EVERY_MS).unref();
  }

  completed(eventKey: string): true | ReadonlySet<string> | undefined {
    const rows = this.select.all(eventKey) as { handler: string }[];
    if (rows.length === 0) return undefined;
    const handlers = new Set(rows.map((r) => r.handler));
    return handlers.has(DONE) ? true : handlers;
  }

  markHandler(eventKey: string, handlerKey: string): void {
    this.mark.run(eventKey, handlerKey, Date.now());
  }

  markDone(eventKey: string): void {
    this.mark.run(eventKey, DONE, Date.now());
  }

  async close(): Promise<void> {
    clearInterval(this.pruneTimer);
    if (this.db.open) this.db.close();
  }

  private prune(): void {
    this.db.prepare('DELETE FROM inbox WHERE done_at < ?').run(Date.now() - this.retentionMs);
  }
}
