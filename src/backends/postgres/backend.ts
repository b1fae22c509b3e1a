import { type ResolvedConfig, resolveTarget } from '../../config.js';
import { ConfigError } from '../../errors/index.js';
import type { DeadLetterOperator } from '../../operate/operator.js';
import type { StoreBackend } from '../stores.js';
import { databaseOf } from './database.js';
import { PostgresInbox } from './inbox.js';
import { PostgresOutbox } from './outbox.js';

/** PostgreSQL (`EVENTS_DATABASE_URL`): one database handle per bus for both stores; pg is loaded when one opens. */
export const postgresBackend: StoreBackend = {
  keepsOutbox: (config) => config.database !== undefined,
  keepsInbox: (config) => config.database !== undefined,
  openOutbox: (config) =>
    new PostgresOutbox(databaseOf(config), {
      ...config.outbox, // leaseMs, writeWaitMs
      ...config, // logger, concurrency
      service: serviceOf(config, 'outbox'),
      eventsPerRequest: (target) => (batchesTo(config, target) ? config.batch.maxEvents : 1),
      sendsOwnEmits: true, // the bus's dispatcher
    }),
  openInbox: (config) =>
    new PostgresInbox({ ...config.inbox, logger: config.logger, database: databaseOf(config), service: serviceOf(config, 'inbox') }),
  location: 'database',
  operator(location) {
    const { database, schema, service } = location as { database: string; schema?: string; service?: string };
    if (typeof database !== 'string' || database.trim() === '') {
      throw new ConfigError('no database given: set EVENTS_DATABASE_URL or pass database (a postgres://… URL)', { variable: 'EVENTS_DATABASE_URL' });
    }
    // No tables created, no LISTEN, no lease taken.
    return missingTablesSaid(new PostgresOutbox(database, { service, schema, createTables: false }));
  },
};

function serviceOf(config: ResolvedConfig, store: 'outbox' | 'inbox'): string {
  if (!config.service) {
    throw new ConfigError(`the PostgreSQL ${store} keeps each service's rows under its name: set EVENTS_SERVICE_NAME (or pass service)`, {
      variable: 'EVENTS_SERVICE_NAME',
    });
  }
  return config.service;
}

/** Whether `target` is sent batches (its own `batch` over the bus's; a broker's publishes batch too); a target not configured yet follows the bus. */
function batchesTo(config: ResolvedConfig, target: string): boolean {
  try {
    return resolveTarget(config, target).batch;
  } catch {
    return config.batch.enabled;
  }
}

/** The operator, with a missing schema or missing tables said as what to fix. */
function missingTablesSaid(outbox: PostgresOutbox): DeadLetterOperator {
  const said = <T>(call: Promise<T>): Promise<T> =>
    call.catch((error: unknown) => {
      const code = (error as { code?: unknown })?.code;
      if (code !== '42P01' && code !== '3F000') throw error;
      throw new ConfigError(
        `no events-library outbox in schema ${outbox.schema} of ${outbox.where}: check the schema and the database ` +
          '(the tables are created when the service first runs, or by "events-library migrate --apply")',
        { variable: 'EVENTS_DATABASE_URL', cause: error },
      );
    });
  return {
    stats: () => said(outbox.stats()),
    deadLetters: (filter) => said(outbox.deadLetters(filter)),
    deadLetterPage: (filter, page) => said(outbox.deadLetterPage(filter, page)),
    replay: (selection) => said(outbox.replay(selection)),
    discard: (selection) => said(outbox.discard(selection)),
    close: () => outbox.close(),
  };
}
