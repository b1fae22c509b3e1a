import { statSync } from 'node:fs';
import { ConfigError } from '../errors/index.js';
import type { DeadLetter, DeadLetterFilter, OutboxStats } from '../send/outbox-store.js';
import { assertOutboxFile } from '../backends/sqlite/file-check.js';
import { SqliteOutbox } from '../backends/sqlite/outbox.js';
import { PostgresOutbox } from '../backends/postgres/outbox.js';
import type { PgPoolLike } from '../config.js';

/**
 * A service's outbox in PostgreSQL, for the admin functions (which then return promises).
 * @example { database: process.env.EVENTS_DATABASE_URL, service: 'users' }
 */
export interface PostgresOutboxLocation {
  /** A postgres://… URL or a pg.Pool. */
  database: string | PgPoolLike;
  /** The service whose outbox it is (rows carry it). */
  service: string;
  /** @default 'public' */
  schema?: string;
}

function isPostgres(where: unknown): where is PostgresOutboxLocation {
  return typeof where === 'object' && where !== null && 'database' in where;
}

/** Opens the service's PostgreSQL outbox (no tables created, no LISTEN, no lease taken), runs, closes. */
async function withPostgres<T>(where: PostgresOutboxLocation, run: (outbox: PostgresOutbox) => Promise<T>): Promise<T> {
  if (typeof where.service !== 'string' || where.service.trim() === '') {
    throw new ConfigError('which service? pass service (its EVENTS_SERVICE_NAME) with the database', { variable: 'EVENTS_SERVICE_NAME' });
  }
  const outbox = new PostgresOutbox(where.database, { service: where.service, schema: where.schema, createTables: false });
  try {
    return await run(outbox);
  } catch (error) {
    if ((error as { code?: unknown })?.code === '42P01' || (error as { code?: unknown })?.code === '3F000') {
      throw new ConfigError(
        `no events-library outbox in schema ${where.schema ?? 'public'} of ${outbox.where}: check the schema and the database ` +
          '(the tables are created when the service first runs, or by "events-library migrate --apply")',
        { variable: 'EVENTS_DATABASE_URL', cause: error },
      );
    }
    throw error;
  } finally {
    await outbox.close();
  }
}

/**
 * Operations on a durable outbox file, for operators (the `events-library` command uses them).
 * They work beside a running service: a replayed dead letter is picked up by the service's
 * dispatcher within its poll interval (`outbox.pollIntervalMs`, 2 s by default). An in-memory
 * outbox is reached through the bus instead (`bus.outboxStats()`, `bus.deadLetters()`,
 * `bus.replayDeadLetters()`).
 *
 * Each function opens the file, works, and closes it. A path that does not exist, or a file that
 * is not an outbox (checked read-only first, so a foreign SQLite file is left byte-for-byte as it
 * was), throws a ConfigError: an operator tool never creates or converts a file where a typo points.
 * They never take the running service's ownership of the file.
 */
function withOutbox<T>(path: string, run: (outbox: SqliteOutbox) => T): T {
  checkExists(path);
  assertOutboxFile(path);
  let outbox: SqliteOutbox;
  try {
    outbox = new SqliteOutbox(path, { resetLeases: false });
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw new ConfigError(`${path} is not an events-library outbox file: ${(cause as Error).message}`, {
      variable: 'EVENTS_OUTBOX_PATH',
      cause,
    });
  }
  try {
    return run(outbox);
  } finally {
    void outbox.close();
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

/** Pending deliveries and dead letters per target, in the outbox file at `path` (or a service's PostgreSQL outbox: a promise). */
export function inspectOutbox(path: string): OutboxStats;
export function inspectOutbox(where: PostgresOutboxLocation): Promise<OutboxStats>;
export function inspectOutbox(where: string | PostgresOutboxLocation): OutboxStats | Promise<OutboxStats> {
  if (isPostgres(where)) return withPostgres(where, (outbox) => outbox.stats());
  return withOutbox(where, (outbox) => outbox.stats());
}

/** Dead letters in the outbox file at `path` (or a service's PostgreSQL outbox: a promise), all or those matching `filter`, oldest first. */
export function listDeadLetters(path: string, filter?: DeadLetterFilter): DeadLetter[];
export function listDeadLetters(where: PostgresOutboxLocation, filter?: DeadLetterFilter): Promise<DeadLetter[]>;
export function listDeadLetters(where: string | PostgresOutboxLocation, filter?: DeadLetterFilter): DeadLetter[] | Promise<DeadLetter[]> {
  if (isPostgres(where)) return withPostgres(where, (outbox) => outbox.deadLetters(filter));
  return withOutbox(where, (outbox) => outbox.deadLetters(filter));
}

/**
 * Moves dead letters back to pending, due now, with a fresh redelivery horizon. Returns how many.
 * `selection` is `'all'` (the default), one filter, or a list of filters (their union: e.g. some
 * delivery ids and some event ids).
 *
 * @example replayDeadLetters('./data/outbox.db', { target: 'payments' })
 * @example replayDeadLetters('./data/outbox.db', [{ ids: [12, 13] }, { eventId: '5c1f…' }])
 */
export function replayDeadLetters(path: string, selection?: DeadLetterFilter | readonly DeadLetterFilter[] | 'all'): number;
export function replayDeadLetters(
  where: PostgresOutboxLocation,
  selection?: DeadLetterFilter | readonly DeadLetterFilter[] | 'all',
): Promise<number>;
export function replayDeadLetters(
  where: string | PostgresOutboxLocation,
  selection: DeadLetterFilter | readonly DeadLetterFilter[] | 'all' = 'all',
): number | Promise<number> {
  const list: ReadonlyArray<DeadLetterFilter | 'all'> =
    selection === 'all' || !Array.isArray(selection) ? [selection as DeadLetterFilter | 'all'] : (selection as readonly DeadLetterFilter[]);
  const sum = (counts: number[]) => counts.reduce((total, n) => total + n, 0);
  if (isPostgres(where)) return replayEach(where, list).then(sum);
  return sum(replayEach(where, list));
}

/** Replays each selection in turn, in one opening of the file (or the database: a promise); returns how many each one replayed. */
export function replayEach(path: string, selections: ReadonlyArray<DeadLetterFilter | 'all'>): number[];
export function replayEach(where: PostgresOutboxLocation, selections: ReadonlyArray<DeadLetterFilter | 'all'>): Promise<number[]>;
export function replayEach(
  where: string | PostgresOutboxLocation,
  selections: ReadonlyArray<DeadLetterFilter | 'all'>,
): number[] | Promise<number[]> {
  if (isPostgres(where)) {
    return withPostgres(where, async (outbox) => {
      const now = Date.now();
      const counts: number[] = [];
      for (const selection of selections) counts.push((await outbox.replay(selection, now)).length);
      return counts;
    });
  }
  return withOutbox(where, (outbox) => {
    const now = Date.now();
    return selections.map((selection) => outbox.replay(selection, now).length);
  });
}
