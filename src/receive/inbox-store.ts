import type { Availability } from '../observe/availability.js';
import type { HandlerContext } from '../types.js';

/**
 * The inbox: which events (by CloudEvents source + id) this service has processed, and which
 * handlers completed for events only partly processed. Every method returns a promise, whatever
 * the store (a failure is a rejection, never a throw).
 */
export interface InboxStore {
  readonly durable: boolean;
  /** A store on a database server (PostgreSQL): whether its calls succeed, for health. */
  readonly database?: Availability;
  /**
   * Each key's state, in one read (the pipeline reads a message's events with one call): `true`
   * when every handler completed, else the keys of the handlers that did. Unseen keys are absent.
   */
  completed(eventKeys: readonly string[]): Promise<ReadonlyMap<string, true | ReadonlySet<string>>>;
  /** Records every mark in one transaction (all or none), resolving once it is committed. Idempotent. */
  mark(marks: readonly InboxMark[]): Promise<void>;
  /**
   * Stores that can run a handler in the transaction that records its completion (PostgreSQL):
   * claims (eventKey, handlerKey), waiting while another instance holds the same claim; resolves
   * `'done-already'` without calling `run` when the handler's completion is committed already;
   * otherwise calls `run` with the transaction's client and commits its writes together with the
   * completion (`'ran'`). When `run` throws, everything rolls back and the error is rethrown as is;
   * a store failure rejects with a TransactionStoreError. `last`: the event's only pending
   * handler, whose commit also records the event done.
   */
  runInTransaction?(
    eventKey: string,
    handlerKey: string,
    run: (context: HandlerContext) => Promise<void>,
    last?: boolean,
  ): Promise<'ran' | 'done-already'>;
  /**
   * A request signed at or before this time (ms since epoch) may carry an id this inbox has
   * forgotten (restart, count bound, retention): a replay of it could not be told from a first delivery.
   */
  forgetsBefore(): number;
  /** Releases the store; by `deadline` (ms since epoch), if given, even when its backend does not answer. */
  close(deadline?: number): Promise<void>;
}

/** A completion to record: one handler's, or every handler's (the event is done) when `handlerKey` is absent. */
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
