import { type ResolvedConfig, resolveTarget } from '../config.js';
import type { InboxStore } from '../receive/inbox-store.js';
import type { OutboxStore } from '../send/outbox-store.js';
import { MemoryInbox } from './memory/inbox.js';
import { MemoryOutbox } from './memory/outbox.js';
import { ConfigError } from '../errors/index.js';
import { databaseOf } from './postgres/database.js';
import { PostgresInbox } from './postgres/inbox.js';
import { PostgresOutbox } from './postgres/outbox.js';
import { SqliteInbox } from './sqlite/inbox.js';
import { SqliteOutbox } from './sqlite/outbox.js';

// The SQLite stores load better-sqlite3 (an optional peer) only when opened, in sqlite.ts; the
// PostgreSQL store loads pg likewise, in postgres.ts.

/** The outbox the configuration asks for: SQLite when a path is set, else PostgreSQL when a database is, else memory. */
export function openOutbox(config: ResolvedConfig): OutboxStore {
  if (!config.outbox.path && config.database !== undefined) {
    if (!config.service) {
      throw new ConfigError('the PostgreSQL outbox keeps each service\'s rows under its name: set EVENTS_SERVICE_NAME (or pass service)', {
        variable: 'EVENTS_SERVICE_NAME',
      });
    }
    return new PostgresOutbox(databaseOf(config), {
      service: config.service,
      schema: config.databaseSchema,
      logger: config.logger,
      concurrency: config.concurrency,
      eventsPerRequest: (target) => (batchesTo(config, target) ? config.batch.maxEvents : 1),
      leaseMs: config.outbox.leaseMs,
      writeWaitMs: config.outbox.writeWaitMs,
    });
  }
  if (config.outbox.path) {
    return new SqliteOutbox(config.outbox.path, {
      logger: config.logger,
      pollIntervalMs: config.outbox.pollIntervalMs,
      writeWaitMs: config.outbox.writeWaitMs,
    });
  }
  return new MemoryOutbox(config.outbox.maxPending, config.outbox.maxDeadLetters, config.logger, config.outbox.maxPendingBytes);
}

/** Whether `target` is sent HTTP batches (its own `batch` over the bus's); a target not configured yet follows the bus. */
function batchesTo(config: ResolvedConfig, target: string): boolean {
  if (config.broker) return false;
  try {
    return resolveTarget(config, target).batch;
  } catch {
    return config.batch.enabled;
  }
}

/**
 * The inbox the configuration asks for: SQLite when `inbox.path` sets it apart, else PostgreSQL
 * when a database is configured (pg is loaded only then), else memory.
 */
export function openInbox(config: ResolvedConfig): InboxStore {
  if (config.inbox.path) return new SqliteInbox(config.inbox.path, config.inbox.retentionMs, config.logger);
  if (config.database !== undefined) {
    if (config.service === undefined) {
      throw new ConfigError('The PostgreSQL inbox keys its rows by service: set EVENTS_SERVICE_NAME (or the service option)', {
        variable: 'EVENTS_SERVICE_NAME',
      });
    }
    return new PostgresInbox({
      database: databaseOf(config), // one pool, one LISTEN, one setup per bus, with a PostgreSQL outbox
      service: config.service,
      schema: config.databaseSchema,
      retentionMs: config.inbox.retentionMs,
      logger: config.logger,
    });
  }
  return new MemoryInbox(config.inbox.maxEntries);
}
