/**
 * The inbox: which events (by CloudEvents source + id) this service has processed, and which
 * handlers completed for events only partly processed. Synchronous: both stores answer at once.
 */
export interface InboxStore {
  readonly durable: boolean;
  /** `true` when every handler completed; else the keys of the handlers that did; undefined if unseen. */
  completed(eventKey: string): true | ReadonlySet<string> | undefined;
  markHandler(eventKey: string, handlerKey: string): void;
  markDone(eventKey: string): void;
  /**
   * A request signed at or before this time (ms since epoch) may carry an id this inbox has
   * forgotten (restart, count bound, retention): a replay of it could not be told from a first delivery.
   */
  forgetsBefore(): number;
  close(): Promise<void>;
}

export const eventKey = (source: string, id: string): string => `${source}\u0000${id}`;
