import { statSync } from 'node:fs';
import { ConfigError } from '../../errors/index.js';
import type { StoreBackend } from '../stores.js';
import { assertOutboxFile } from './file-check.js';
import { SqliteInbox } from './inbox.js';
import { SqliteOutbox } from './outbox.js';

/** SQLite files (`EVENTS_OUTBOX_PATH`, `EVENTS_INBOX_PATH`): better-sqlite3 is loaded when one opens. */
export const sqliteBackend: StoreBackend = {
  keepsOutbox: (config) => Boolean(config.outbox.path),
  keepsInbox: (config) => Boolean(config.inbox.path),
  openOutbox: (config) =>
    new SqliteOutbox(config.outbox.path!, { logger: config.logger, pollIntervalMs: config.outbox.pollIntervalMs, writeWaitMs: config.outbox.writeWaitMs }),
  openInbox: (config) => new SqliteInbox(config.inbox.path!, config.inbox.retentionMs, config.logger),
  location: 'outbox',
  operator: (location) => openOutboxFile((location as { outbox: string }).outbox),
};

/**
 * The outbox file at `path`, opened beside its running service (never taking its ownership), after
 * checking it is one: read-only first, so a foreign SQLite file is left byte-for-byte as it was.
 */
function openOutboxFile(path: string): SqliteOutbox {
  checkExists(path);
  assertOutboxFile(path);
  try {
    return new SqliteOutbox(path, { resetLeases: false });
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw new ConfigError(`${path} is not an events-library outbox file: ${(cause as Error).message}`, {
      variable: 'EVENTS_OUTBOX_PATH',
      cause,
    });
  }
}

function checkExists(path: string): void {
  if (typeof path !== 'string' || path.trim() === '') {
    throw new ConfigError('no outbox file given: set EVENTS_OUTBOX_PATH or pass the path of the outbox file', {
      variable: 'EVENTS_OUTBOX_PATH',
    });
  }
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (cause) {
    throw new ConfigError(
      `the outbox file ${path} does not exist: check the path (it is the service's EVENTS_OUTBOX_PATH, ` +
        'created by the service when it starts with the durable outbox)',
      { variable: 'EVENTS_OUTBOX_PATH', cause },
    );
  }
  if (!isFile) throw new ConfigError(`${path} is not a file: give the path of the outbox file itself`, { variable: 'EVENTS_OUTBOX_PATH' });
}
