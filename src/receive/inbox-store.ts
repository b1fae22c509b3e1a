import type { HandlerContext } from '../types.js';

/** A value, or a promise of it: the in-process stores answer at once, the PostgreSQL one does not. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * The inbox: which events (by CloudEvents source + id) this service has processed, and which
 * handlers completed for events only partly processed. The receiver awaits every method: the
 * memory and SQLite stores answer synchronously, the PostgreSQL store asynchronously.
 */
export interface InboxStore {
  readonly durable: boolean;
  /** `true` when every handler completed; else the keys of the handlers that did; undefined if unseen. */
  completed(eventKey: string): MaybePromise<true | ReadonlySet<string> | undefined>;
  markHandler(eventKey: string, handlerKey: string): MaybePromise<void>;
  markDone(eventKey: string): MaybePromise<void>;
  /**
   * Stores that can read many events at once: `completed` of each key, in one query. Keys absent
   * from the map are unseen. The receiver reads a request's events with it (one call per request).
   */
  completedMany?(eventKeys: readonly string[]): MaybePromise<ReadonlyMap<string, true | ReadonlySet<string>>>;
  /**
   * Stores that can write many marks at once: records every mark in one transaction (all or
   * none), resolving once it is committed. The receiver records a request's completions with it.
   */
  markMany?(marks: readonly InboxMark[]): MaybePromise<void>;
  /**
   * Stores that can run a handler in the transaction that records its completion (PostgreSQL):
   * claims (eventKey, handlerKey), waiting while another instance holds the same claim; resolves
   * `'done-already'` without calling `run` when the handler's completion is committed already;
   * otherwise calls `run` with the transaction's client and commits its writes together with the
   * completion (`'ran'`). When `run` throws, everything rolls back and the error is rethrown as is;
   * a store failure rejects with a TransactionStoreError.
   */
  runInTransaction?(
    eventKey: string,
    handlerKey: string,
    run: (context: HandlerContext) => Promise<void>,
  ): Promise<'ran' | 'done-already'>;
  /**
   * A request signed at or before this time (ms since epoch) may carry an id this inbox has
   * forgotten (restart, count bound, retention): a replay of it could not be told from a first delivery.
   */
  forgetsBefore(): number;
  close(): Promise<void>;
}

/** A completion to record: one handler's (`markHandler`), or every handler's when `handlerKey` is absent (`markDone`). */
export interface InboxMark {
  eventKey: string;
  handlerKey?: string;
}

export const eventKey = (source: string, id: string): string => `${source}\u0000${id}`;

/** The source and id of an `eventKey`. */
export function splitEventKey(key: string): { source: string; id: string } {
  const at = key.indexOf('\u0000');
  return { source: key.slice(0, at), id: key.slice(at + 1) };
}
