import { NonRetryableError, RetryLaterError } from '../errors/index.js';
import type { InboxMark } from './inbox-store.js';
import type { Refusal } from './verdict.js';

// What the receive pipeline keeps while an event's handlers run, and the refusal their failures make.

/**
 * What became of one handler: it completed and its completion is still to be recorded (its key),
 * it failed, or the store failed around it. Empty: it completed in the inbox's transaction.
 */
export interface HandlerOutcome {
  succeeded?: string;
  /** The event's `done` was committed with it. */
  done?: true;
  /** Its completion was committed before: it did not run (the inbox's transaction claimed nothing). */
  already?: true;
  failed?: { error: unknown };
  store?: unknown;
  /** With `store`: the inbox's transaction failed before the handler was called. */
  unstarted?: true;
}

/** What `runHandlers` tracks while an event's handlers run. */
export interface HandlersState {
  /** Handlers still running. */
  left: number;
  /** The event's `done` is recorded (with the last handler's mark, or by its transaction). */
  doneRecorded: boolean;
  /** A handler's transaction found its completion committed before. */
  already: boolean;
}

export const NO_MARKS: readonly InboxMark[] = [];

/** Every handler ended and succeeded, and no store failed: the event is done. */
export const allSucceeded = (run: Run, state: HandlersState): boolean => state.left === 0 && run.failed.length === 0 && run.store === undefined;

/** What became of one event's handlers, before its completion is recorded. */
export interface Run {
  /** Every handler had completed already. */
  duplicate?: true;
  /** Handlers run (those that had not completed before). */
  pending: number;
  /** Keys of the handlers that completed outside the inbox's transaction (their marks recorded apart). */
  succeeded: string[];
  failed: unknown[];
  store?: unknown;
  /** Handlers the inbox's transaction failed before calling. */
  unstarted?: number;
  /** Why recording a completion failed, when it did. */
  unrecorded?: { error: unknown };
}

/** The run of an event whose handlers had all completed before: none ran. */
export const duplicateRun = (): Run => ({ duplicate: true, pending: 0, succeeded: [], failed: [] });

/** Retry-later beats retry, which beats never-retry: no handler that could still succeed is given up on. */
export function handlerFailure(errors: unknown[], total: number): Refusal {
  const later = errors.filter((e): e is RetryLaterError => e instanceof RetryLaterError);
  if (later.length > 0) {
    const seconds = Math.max(...later.map((e) => e.retryAfterSeconds));
    return { kind: 'retry', reason: 'retry_later', message: later[0]!.message, afterMs: seconds * 1000 };
  }
  const final = errors.filter((e): e is NonRetryableError => e instanceof NonRetryableError);
  if (final.length === errors.length) return { kind: 'reject', reason: 'rejected_by_handler', message: final[0]!.message, cause: final[0] };
  return { kind: 'retry', reason: 'handler_failed', message: `${errors.length} of ${total} handlers failed; retry later` };
}
