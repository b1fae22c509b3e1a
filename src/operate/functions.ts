import { statSync } from 'node:fs';
import { openBrokerOperator } from '../backends/broker-operator.js';
import { PostgresOutbox } from '../backends/postgres/outbox.js';
import { assertOutboxFile } from '../backends/sqlite/file-check.js';
import { SqliteOutbox } from '../backends/sqlite/outbox.js';
import { ConfigError } from '../errors/index.js';
import type {
  DeadLetter,
  DeadLetterFilter,
  DeadLetterOperator,
  DeadLetterSelection,
  OperatorLocation,
  OutboxStats,
} from './operator.js';

/**
 * The operator functions: the same calls as the bus's (`bus.outboxStats()`, `bus.deadLetters()`,
 * `bus.replayDeadLetters()`, `bus.discardDeadLetters()`), on a service's outbox file, its
 * PostgreSQL outbox or its broker's dead-letter queues, beside the running service. Each opens
 * the operator for the location, makes one call and closes it; the CLI uses them too. A replayed
 * dead letter is picked up by the running service within its poll interval (2 s by default), or
 * at once where the store notifies it (PostgreSQL).
 *
 * They never create anything where a typo points: a path that does not exist or is not an outbox
 * file (checked read-only first, so a foreign SQLite file is left byte-for-byte as it was), or a
 * database without the tables, throws a ConfigError saying what to fix.
 */

/** Pending deliveries and dead letters per target. @example await inspectOutbox({ outbox: './data/outbox.db' }) */
export function inspectOutbox(location: OperatorLocation): Promise<OutboxStats> {
  return withOperator(location, (operator) => operator.stats());
}

/** Dead letters, oldest first: all, or those matching `filter`. @example await listDeadLetters({ database: url, service: 'users' }, { target: 'payments' }) */
export function listDeadLetters(location: OperatorLocation, filter?: DeadLetterFilter): Promise<DeadLetter[]> {
  return withOperator(location, (operator) => operator.deadLetters(filter));
}

/**
 * Puts dead letters back to be delivered (due now, attempts reset); resolves with how many.
 * @example await replayDeadLetters({ outbox: './data/outbox.db' }, ['12', '13'])
 * @example await replayDeadLetters({ broker: url, service: 'payments' }, 'all')
 */
export function replayDeadLetters(location: OperatorLocation, selection: DeadLetterSelection): Promise<number> {
  return withOperator(location, (operator) => operator.replay(selection));
}

/** Deletes dead letters for good; resolves with how many. @example await discardDeadLetters({ outbox: './data/outbox.db' }, { target: 'legacy' }) */
export function discardDeadLetters(location: OperatorLocation, selection: DeadLetterSelection): Promise<number> {
  return withOperator(location, (operator) => operator.discard(selection));
}

/** Opens the operator for `location`, runs `call`, closes it. */
export async function withOperator<T>(location: OperatorLocation, call: (operator: DeadLetterOperator) => Promise<T>): Promise<T> {
  const operator = openOperator(location);
  try {
    return await call(operator);
  } catch (error) {
    throw operator instanceof PostgresOutbox ? missingTables(error, operator) : error;
  } finally {
    await operator.close();
  }
}

/** The operator of a location: an outbox file, a PostgreSQL outbox (no tables created, no LISTEN, no lease taken), a broker. */
function openOperator(location: OperatorLocation): DeadLetterOperator {
  if (typeof location !== 'object' || location === null) throw new ConfigError(WHERE);
  if ('outbox' in location) return openOutboxFile(location.outbox);
  if ('database' in location) {
    if (typeof location.database !== 'string' || location.database.trim() === '') {
      throw new ConfigError('no database given: set EVENTS_DATABASE_URL or pass database (a postgres://… URL)', { variable: 'EVENTS_DATABASE_URL' });
    }
    return new PostgresOutbox(location.database, { service: location.service, schema: location.schema, createTables: false });
  }
  if ('broker' in location) {
    if (typeof location.broker !== 'string' || location.broker.trim() === '') {
      throw new ConfigError('no broker given: set EVENTS_BROKER_URL or pass broker (an amqp://… or kafka://… URL)', { variable: 'EVENTS_BROKER_URL' });
    }
    return openBrokerOperator(location);
  }
  throw new ConfigError(WHERE);
}

const WHERE = 'which outbox? pass { outbox: path }, { database: url } or { broker: url }';

/** A PostgreSQL error saying the schema or the tables are missing, as what to fix. */
function missingTables(error: unknown, outbox: PostgresOutbox): unknown {
  const code = (error as { code?: unknown })?.code;
  if (code !== '42P01' && code !== '3F000') return error;
  return new ConfigError(
    `no events-library outbox in schema ${outbox.schema} of ${outbox.where}: check the schema and the database ` +
      '(the tables are created when the service first runs, or by "events-library migrate --apply")',
    { variable: 'EVENTS_DATABASE_URL', cause: error },
  );
}

/** The outbox file at `path`, opened beside its running service (never taking its ownership), after checking it is one. */
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

/**
 * Several operators as one (a bus on a broker: its outbox, and its own service's dead-letter
 * queue). Dead letters are listed in turn; a selection goes to each (each backend makes its own
 * ids, so an id matches in one place only); closing closes each.
 */
export function combineOperators(operators: readonly DeadLetterOperator[]): DeadLetterOperator {
  const each = <T>(call: (operator: DeadLetterOperator) => Promise<T>) => Promise.all(operators.map(call));
  const sum = (counts: number[]) => counts.reduce((total, n) => total + n, 0);
  return {
    stats: async () => {
      const stats: OutboxStats = { durable: true, pending: 0, deadLetters: 0, targets: {} };
      for (const part of await each((operator) => operator.stats())) {
        stats.durable &&= part.durable;
        stats.pending += part.pending;
        stats.deadLetters += part.deadLetters;
        for (const [name, t] of Object.entries(part.targets)) {
          const into = (stats.targets[name] ??= { pending: 0, deadLetters: 0 });
          into.pending += t.pending;
          into.deadLetters += t.deadLetters;
          const oldest = Math.min(into.oldestCreatedAt ?? Infinity, t.oldestCreatedAt ?? Infinity);
          if (oldest < Infinity) into.oldestCreatedAt = oldest;
        }
      }
      return stats;
    },
    deadLetters: async (filter) => (await each((operator) => operator.deadLetters(filter))).flat(),
    replay: async (selection) => sum(await each((operator) => operator.replay(selection))),
    discard: async (selection) => sum(await each((operator) => operator.discard(selection))),
    close: async () => {
      await each((operator) => operator.close());
    },
  };
}
