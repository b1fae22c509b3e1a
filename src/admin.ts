import { statSync } from 'node:fs';
import { ConfigError } from './errors/index.js';
import type { DeadLetter, DeadLetterFilter, OutboxStats } from './send/outbox-store.js';
import { SqliteOutbox } from './stores/sqlite-outbox.js';

/**
 * Operations on a durable outbox file, for operators (the `events-library` command uses them).
 * They work beside a running service: a replayed dead letter is picked up by the service's
 * dispatcher within its poll interval (`outbox.pollIntervalMs`, 2 s by default). An in-memory
 * outbox is reached through the bus instead (`bus.outboxStats()`, `bus.deadLetters()`,
 * `bus.replayDeadLetters()`).
 *
 * Each function opens the file, works, and closes it. A path that does not exist throws a
 * ConfigError: an operator tool never creates an empty outbox where a typo points.
 */
function withOutbox<T>(path: string, run: (outbox: SqliteOutbox) => T): T {
  checkExists(path);
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

/** Pending deliveries and dead letters per target, in the outbox file at `path`. */
export function inspectOutbox(path: string): OutboxStats {
  return withOutbox(path, (outbox) => outbox.stats());
}

/** Dead letters in the outbox file at `path` (all, or those matching `filter`), oldest first. */
export function listDeadLetters(path: string, filter?: DeadLetterFilter): DeadLetter[] {
  return withOutbox(path, (outbox) => outbox.deadLetters(filter));
}

/**
 * Moves dead letters back to pending, due now, with a fresh redelivery horizon. Returns how many.
 * `selection` is `'all'` (the default), one filter, or a list of filters (their union: e.g. some
 * delivery ids and some event ids).
 *
 * @example replayDeadLetters('./data/outbox.db', { target: 'payments' })
 * @example replayDeadLetters('./data/outbox.db', [{ ids: [12, 13] }, { eventId: '5c1f…' }])
 */
export function replayDeadLetters(
  path: string,
  selection: DeadLetterFilter | readonly DeadLetterFilter[] | 'all' = 'all',
): number {
  return withOutbox(path, (outbox) => {
    const now = Date.now();
    if (selection === 'all' || !Array.isArray(selection)) return outbox.replay(selection as DeadLetterFilter | 'all', now).length;
    let count = 0;
    for (const filter of selection as readonly DeadLetterFilter[]) count += outbox.replay(filter, now).length;
    return count;
  });
}
