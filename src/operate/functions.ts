import { openOperator } from '../backends/stores.js';
import {
  type DeadLetterFilter,
  type DeadLetterList,
  type DeadLetterOperator,
  type DeadLetterPage,
  type DeadLetterSelection,
  type OperatorLocation,
  type OutboxStats,
  statsOf,
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

/**
 * Dead letters, oldest first: all, or those matching `filter`; `more` on the list counts those
 * left out by `filter.limit`. @example await listDeadLetters({ database: url, service: 'users' }, { target: 'payments' })
 */
export function listDeadLetters(location: OperatorLocation, filter?: DeadLetterFilter): Promise<DeadLetterList> {
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

/** Opens the operator for `location` (its backend's), runs `call`, closes it. */
export async function withOperator<T>(location: OperatorLocation, call: (operator: DeadLetterOperator) => Promise<T>): Promise<T> {
  const operator = openOperator(location);
  try {
    return await call(operator);
  } finally {
    await operator.close();
  }
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
      const parts = await each((operator) => operator.stats());
      const counts = parts.flatMap((part) =>
        Object.entries(part.targets).map(([target, t]) => ({ target, pending: t.pending, dead: t.deadLetters, oldest: t.oldestCreatedAt })),
      );
      return statsOf(counts, parts.every((part) => part.durable));
    },
    deadLetters: async (filter) => {
      const parts = await each((operator) => operator.deadLetters(filter));
      const list: DeadLetterList = parts.flat();
      const more = sum(parts.map((part) => part.more ?? 0));
      if (more > 0) list.more = more;
      return list;
    },
    // Each operator's pages in turn; the cursor says which one (`<index>:<its cursor>`).
    deadLetterPage: async (filter, { limit, cursor }) => {
      const at = /^(\d{1,3}):(.*)$/s.exec(cursor ?? '');
      const page: DeadLetterPage = { items: [] };
      for (let part = at ? Number(at[1]) : 0, inner = at?.[2] || undefined; part < operators.length; part++, inner = undefined) {
        if (page.items.length === limit) return { ...page, next: `${part}:` };
        const got = await operators[part]!.deadLetterPage(filter, { limit: limit - page.items.length, cursor: inner });
        page.items.push(...got.items);
        if (got.truncated) page.truncated = true;
        if (got.next !== undefined) return { ...page, next: `${part}:${got.next}` };
      }
      return page;
    },
    replay: async (selection) => sum(await each((operator) => operator.replay(selection))),
    discard: async (selection) => sum(await each((operator) => operator.discard(selection))),
    close: async () => {
      await each((operator) => operator.close());
    },
  };
}
