import type { Statement } from 'better-sqlite3';
import type { Logger } from 'winston';
import type { InboxMark, InboxStore } from '../../receive/inbox-store.js';
import { DEFAULTS } from '../../defaults.js';
import { DONE, handlerStates } from '../inbox-rows.js';
import { checkpointInBackground } from './checkpointer.js';
import { type Database, faultOf, openDatabase, startupError, watchIdentity } from './database.js';

const PRUNE_EVERY_MS = 60 * 60 * 1000;
const VARIABLE = 'EVENTS_INBOX_PATH';

/**
 * The durable inbox, in SQLite: one row per completed handler, and one `*` row once every handler
 * completed. Each mark commits before the receiver answers, so a crash after a 2xx cannot rerun
 * a handler. Ids older than `retentionMs` are pruned hourly; a prune that fails (disk full, locked)
 * is logged and tried again at the next one, never thrown out of the timer. Unlike the outbox, the
 * file may be shared by several processes on one host (a service's instances behind a broker):
 * marks are idempotent inserts, so sharing it is what makes dedupe hold across them.
 */
export class SqliteInbox implements InboxStore {
  readonly durable = true;
  private readonly db: Database;
  private readonly select: Statement;
  private readonly markAll: (marks: readonly InboxMark[], at: number) => void;
  private readonly pruneTimer: NodeJS.Timeout;
  private pruneFailing = false;
  private readonly unwatch: () => void;
  private readonly stopCheckpoints: () => void;

  /** @param options.fileCheckIntervalMs How often to check that the file at `path` is still the one opened. */
  constructor(
    private readonly path: string,
    private readonly retentionMs: number,
    private readonly logger?: Logger,
    options: { fileCheckIntervalMs?: number } = {},
  ) {
    // Setup may wait for another instance creating the same shared file at the same moment
    // (WAL switch, schema): at startup, not on a request path, so with the operators' timeout.
    this.db = openDatabase(path, VARIABLE, { busyTimeoutMs: DEFAULTS.sqlite.operatorBusyTimeoutMs });
    try {
      this.db.exec(`CREATE TABLE IF NOT EXISTS inbox (
        event_key TEXT NOT NULL, handler TEXT NOT NULL, done_at INTEGER NOT NULL,
        PRIMARY KEY (event_key, handler)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS inbox_done_at ON inbox (done_at);`);
      // One statement for any number of keys: the keys travel as one JSON array parameter.
      // Rows as [event_key, handler] pairs (raw): what handlerStates reads, with no object per row.
      this.select = this.db.prepare('SELECT event_key, handler FROM inbox WHERE event_key IN (SELECT value FROM json_each(?))').raw();
      const mark = this.db.prepare('INSERT OR IGNORE INTO inbox (event_key, handler, done_at) VALUES (?, ?, ?)');
      // A handler's row is skipped when its event is marked done in the same group: `*` says it all
      // (one random B-tree page per row is most of a commit's cost).
      this.markAll = this.db.transaction((marks: readonly InboxMark[], at: number) => {
        const done = new Set<string>();
        for (const { eventKey, handlerKey } of marks) if (handlerKey === undefined) done.add(eventKey);
        for (const { eventKey, handlerKey } of marks) if (handlerKey === undefined || !done.has(eventKey)) mark.run(eventKey, handlerKey ?? DONE, at);
      });
      // From here on a lock held elsewhere fails fast (the driver blocks the event loop while it waits).
      this.db.pragma(`busy_timeout = ${DEFAULTS.sqlite.busyTimeoutMs}`);
    } catch (cause) {
      this.db.close();
      throw startupError(path, VARIABLE, cause);
    }
    this.stopCheckpoints = checkpointInBackground(this.db, path, (reason) =>
      this.logger?.warn('inbox WAL checkpoints run in its commits again (slower, pauses the event loop)', { path, error: reason }),
    );
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), PRUNE_EVERY_MS).unref();
    this.unwatch = watchIdentity(path, options.fileCheckIntervalMs ?? DEFAULTS.sqlite.fileCheckIntervalMs, (reason) =>
      this.logger?.error('inbox file deleted or replaced: processed ids recorded from now on are lost at restart', {
        path,
        error: reason,
        hint: 'Restore the file or restart the service soon (redeliveries after a restart may run handlers again), and keep the inbox out of cleanup jobs.',
      }),
    );
  }

  async completed(eventKeys: readonly string[]): Promise<ReadonlyMap<string, true | ReadonlySet<string>>> {
    return handlerStates(this.select.all(JSON.stringify(eventKeys)) as [string, string][]);
  }

  /** Every mark in one transaction: one commit for a whole request's completions. */
  async mark(marks: readonly InboxMark[]): Promise<void> {
    this.markAll(marks, Date.now());
  }

  /** Ids older than the retention are pruned; nothing younger is forgotten, restarts included. */
  forgetsBefore(): number {
    return Date.now() - this.retentionMs;
  }

  async close(): Promise<void> {
    clearInterval(this.pruneTimer);
    this.unwatch();
    this.stopCheckpoints();
    if (this.db.open) this.db.close();
  }

  /** Forgets ids past retention. Runs from a timer: logs a failure (once until it works again), never throws. */
  private prune(): void {
    try {
      this.db.prepare('DELETE FROM inbox WHERE done_at < ?').run(Date.now() - this.retentionMs);
      if (this.pruneFailing) this.logger?.info('inbox prune works again', { path: this.path });
      this.pruneFailing = false;
    } catch (error) {
      if (!this.pruneFailing) {
        const fault = faultOf(error);
        this.logger?.error('inbox prune failed; retrying at the next one', { path: this.path, error: fault.reason, hint: fault.hint });
      }
      this.pruneFailing = true;
    }
  }
}
