import type { ResolvedConfig } from '../config.js';
import type { Catalog, Subscription } from '../catalog.js';
import { DEFAULTS } from '../defaults.js';
import { levelCheck, loggablePayload } from '../logger.js';
import { ValidationError } from '../errors/index.js';
import type { Telemetry } from '../observe/telemetry.js';
import { type BatchItem, type CloudEvent, detectMode, type Headers, parseBatch, parseStructured, singleHeader } from '../protocol/cloudevents.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { verify, type VerifyFailure } from '../protocol/signature.js';
import type { ReceivedEvent } from '../types.js';
import { CompletionGroups } from './completion-groups.js';
import { allSucceeded, duplicateRun, type HandlerOutcome, handlerFailure, type HandlersState, NO_MARKS, type Run } from './handler-run.js';
import { InFlight } from './in-flight.js';
import { eventKey, type InboxMark, type InboxStore } from './inbox-store.js';
import { TransactionStoreError } from './transaction-store-error.js';
import { UnrecordedCompletions } from './unrecorded-completions.js';
import { type Refusal, statusOf, type Verdict } from './verdict.js';

/**
 * A message as any transport hands it over: the headers that carry the Standard Webhooks
 * signature (`webhook-id`, `webhook-timestamp`, `webhook-signature`) and the content type, and the
 * exact bytes the signature covers.
 */
export interface ReceivedMessage {
  headers: Headers;
  body: Buffer;
}

/** The configuration's keys, time window, logger and service; the receiver's defaults (DEFAULTS.receiver); what it works with. */
export interface PipelineOptions extends Pick<ResolvedConfig, 'keys' | 'toleranceSeconds' | 'logger' | 'service'> {
  catalog: Catalog;
  inbox: InboxStore;
  retryAfterSeconds: number;
  maxUnrecorded: number;
  telemetry: Telemetry;
}

export interface ReceiveOptions {
  /**
   * Refuse a `webhook-timestamp` outside ±`toleranceSeconds`. Off for broker receipt: a message may
   * wait in its queue for hours while the service is down, and replays are caught by the inbox's
   * dedupe and kept out by the broker's access control. The signature is checked either way.
   * @default true
   */
  checkTimestamp?: boolean;
  /** Called as soon as the signature is known good (the HTTP intake releases the body's budget claim then). */
  onVerified?: () => void;
}

export const VERIFY_MESSAGES: Record<VerifyFailure, string> = {
  'missing-headers': 'missing webhook-id, webhook-timestamp or webhook-signature header',
  'bad-timestamp': 'webhook-timestamp is not a Unix time in seconds',
  'timestamp-too-old': 'webhook-timestamp is too old (more than the allowed tolerance)',
  'timestamp-too-new': 'webhook-timestamp is too far in the future (more than the allowed tolerance)',
  'no-matching-signature': 'no webhook-signature matches',
};

/** How long a sender is asked to wait while this service shuts down, in ms. */
const SHUTDOWN_RETRY_AFTER_MS = 5_000;

/**
 * The receive pipeline, with no transport in it: verify → parse → validate → dedupe → handlers →
 * mark, answering a verdict per event (a list of them for a batch). Every refusal says what is
 * wrong and never reaches a handler. One pipeline serves a bus's HTTP intake and its broker consumer.
 */
export class ReceivePipeline {
  private closed = false;
  private readonly inFlight = new InFlight();
  /** Events whose handlers run now, by event key: a second delivery of one joins its run. */
  private readonly running = new Map<string, Promise<Verdict>>();
  private readonly unrecorded: UnrecordedCompletions;
  /** Completions on their way to the inbox, in small groups. */
  private readonly completions: CompletionGroups;

  constructor(private readonly o: PipelineOptions) {
    this.unrecorded = new UnrecordedCompletions(o.maxUnrecorded);
    this.completions = new CompletionGroups({
      write: (marks) => this.o.inbox.mark(marks),
      maxCompletions: DEFAULTS.receiver.recordGroup.maxCompletions,
      maxWaitMs: DEFAULTS.receiver.recordGroup.maxWaitMs,
    });
  }

  /** The verdict on `message`: one, or one per event of a batch, in order. Throws only on a fault (a bug), never for a refusal. */
  receive(message: ReceivedMessage, options: ReceiveOptions = {}): Promise<Verdict | Verdict[]> {
    const startedAt = performance.now();
    const closed = this.refuseIfClosed(startedAt);
    return closed ? Promise.resolve(closed) : this.inFlight.track(this.process(message, startedAt, options));
  }

  /** `unavailable` (logged) once this pipeline is closing; undefined while it takes events. */
  refuseIfClosed(startedAt = performance.now()): Refusal | undefined {
    if (!this.closed) return undefined;
    const message = 'this service is shutting down; retry later';
    return this.refuse({ kind: 'unavailable', reason: 'shutting_down', message, afterMs: SHUTDOWN_RETRY_AFTER_MS }, startedAt);
  }

  /** Takes no new event (they get `unavailable`); resolves when the events in flight are settled, or at `deadline`. */
  async close(deadline: number): Promise<void> {
    this.closed = true;
    await this.inFlight.settled(deadline);
  }

  /** Logs a refusal (`event refused`, at warn, naming the event but never its data) and returns it. */
  refuse(verdict: Refusal, startedAt: number, event?: CloudEvent, fields: Record<string, unknown> = {}): Refusal {
    if (this.o.logger.isLevelEnabled('warn')) {
      this.o.logger.warn('event refused', {
        ...(event ? eventFields(event) : fields),
        target: this.o.service,
        status: statusOf(verdict),
        reason: verdict.reason,
        error: verdict.message,
        durationMs: elapsed(startedAt),
      });
    }
    return verdict;
  }

  private async process(message: ReceivedMessage, startedAt: number, options: ReceiveOptions): Promise<Verdict | Verdict[]> {
    const { headers, body } = message;
    const windowed = options.checkTimestamp !== false;
    const { id, timestamp, signature } = signatureHeaders(headers); // named, not spread: see freshRecord
    const failure = verify(this.o.keys, { id, timestamp, signature, body }, windowed ? this.o.toleranceSeconds : Infinity);
    if (failure) return this.refuse({ kind: 'reject', reason: 'invalid_signature', message: VERIFY_MESSAGES[failure] }, startedAt);
    options.onVerified?.();
    // Without the time window (broker receipt) a message may be older than the inbox's memory by
    // design; the broker's access control and the dedupe stand in for the window there.
    const replay = windowed ? this.replayUndetectable(headers) : undefined;
    if (replay) return this.refuse(replay, startedAt);
    // Only an authenticated sender learns anything about the content. Every attribute that picks
    // the handler, the source or the dedupe key comes from the signed body.
    let event: CloudEvent | undefined;
    let items: BatchItem[] = [];
    try {
      if (detectMode(headers) === 'structured') event = parseStructured(body);
      else items = parseBatch(body);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return this.refuse(rejectOf(error), startedAt, undefined, { webhookId: singleHeader(headers, 'webhook-id') });
    }
    if (event === undefined) return this.receiveBatch(items, startedAt);
    const jobs: Job[] = [];
    const admitted = this.admit(event, jobs);
    if ('kind' in admitted) return this.refuse(admitted, startedAt, event);
    const [verdict] = await Promise.all([admitted.verdict, this.runJobs(jobs, startedAt)]);
    return verdict;
  }

  /**
   * Every event of a batch at once: no ordering beyond what separate messages give. The same
   * source + id twice runs the handlers once (the second shares the first's outcome). The inbox
   * is read once and written once for the whole batch.
   */
  private async receiveBatch(items: readonly BatchItem[], startedAt: number): Promise<Verdict[]> {
    const jobs: Job[] = [];
    const verdicts: Array<Verdict | Promise<Verdict>> = [];
    try {
      for (const item of items) verdicts.push(this.admitItem(item, jobs, startedAt));
    } catch (error) {
      // A fault that is not a refusal: the events admitted so far must not stay in flight forever.
      void Promise.allSettled(verdicts);
      this.abandon(jobs, error);
      throw error;
    }
    const [results] = await Promise.all([Promise.all(verdicts), this.runJobs(jobs, startedAt)]);
    return results;
  }

  private admitItem(item: BatchItem, jobs: Job[], startedAt: number): Verdict | Promise<Verdict> {
    if (item.event === undefined) return this.refuse({ ...rejectOf(item.invalid), id: item.id }, startedAt, undefined, { eventId: item.id });
    const admitted = this.admit(item.event, jobs);
    return 'kind' in admitted ? this.refuse(admitted, startedAt, item.event) : admitted.verdict;
  }

  /**
   * A signed request older than what the inbox remembers (it restarted, or forgot older ids) could
   * be a captured request replayed within the signature's time window: dedupe cannot tell. Refuse
   * it as "try later": a real sender signs every try afresh, so its retry passes.
   */
  private replayUndetectable(headers: Headers): Refusal | undefined {
    const signedAt = Number(singleHeader(headers, 'webhook-timestamp')) * 1000;
    if (!(signedAt <= this.o.inbox.forgetsBefore())) return undefined;
    return {
      kind: 'retry',
      reason: 'signed_before_inbox_memory',
      message:
        'webhook-timestamp is older than what this receiver remembers of processed events (it restarted or forgot older ids): sign the request again and resend it',
      afterMs: 1000,
    };
  }

  /**
   * Routes and validates `event` (a refusal when it has no subscriber here or its data is invalid),
   * then joins the run of the same event in flight, or adds a job to `jobs` for this message to
   * run. Synchronous up to that point, so the same source + id twice, in one batch or in two
   * messages, runs once.
   */
  private admit(event: CloudEvent, jobs: Job[]): Refusal | { verdict: Promise<Verdict> } {
    const { id } = event;
    const wrong = this.wrongRecipient(event);
    if (wrong) return { kind: 'reject', id, reason: 'wrong_recipient', message: wrong };
    const subscribers = this.o.catalog.subscribers(event.type);
    if (subscribers.length === 0) {
      // A retry, not a rejection: during a rolling deploy an instance without the new subscription may get it.
      return { kind: 'retry', id, reason: 'no_subscriber', message: `no subscriber for event type "${event.type}" at this service` };
    }
    for (const subscription of subscribers) {
      try {
        this.o.catalog.check(event.type, subscription.validate, event.data);
      } catch (error) {
        if (error instanceof ValidationError) return { kind: 'reject', id, reason: 'invalid_data', message: error.message };
        throw error;
      }
    }
    const key = eventKey(event.source, id);
    const running = this.running.get(key);
    if (running) return { verdict: running.then((v) => (v.kind === 'done' || v.kind === 'duplicate' ? { kind: 'duplicate', id } : v)) };
    let job!: Job;
    const verdict = new Promise<Verdict>((resolve, reject) => {
      job = { key, event: event as ReceivedEvent, subscribers, resolve, reject };
    });
    this.running.set(key, verdict);
    jobs.push(job);
    return { verdict };
  }

  /**
   * Why `event` is not for this service: its signed `recipient` names another one (a delivery
   * captured on its way to a service sharing the secret, or a sender's URL pointing at the wrong
   * service). Undefined when it names this service or none (a foreign producer).
   */
  private wrongRecipient({ recipient }: CloudEvent): string | undefined {
    const { service } = this.o;
    if (recipient === undefined || recipient === service) return undefined;
    const named = typeof recipient === 'string' ? JSON.stringify(recipient.slice(0, 200)) : 'a non-string value';
    const self = service === undefined ? 'this service has no name (set EVENTS_SERVICE_NAME)' : `this service is "${service}"`;
    return `the event is addressed to ${named} (its recipient attribute) and ${self}: nothing ran; check where the sender sends it`;
  }

  /** Runs a message's jobs and settles each; the events stay "in flight" until their completion is recorded. */
  private async runJobs(jobs: readonly Job[], startedAt: number): Promise<void> {
    if (jobs.length === 0) return;
    try {
      const verdicts = await this.settle(jobs, startedAt);
      jobs.forEach((job, i) => {
        this.running.delete(job.key);
        job.resolve(verdicts[i]!);
      });
    } catch (error) {
      this.abandon(jobs, error);
      throw error;
    }
  }

  /** Fails `jobs` with `error` (a fault, not a refusal), for this message and every one waiting on them. */
  private abandon(jobs: readonly Job[], error: unknown): void {
    for (const job of jobs) {
      this.running.delete(job.key);
      job.reject(error);
    }
  }

  /**
   * Reads the inbox once for every job, runs the handlers of all of them at once, each recording
   * its completion as it finishes; a job's verdict is given once its completions are recorded.
   * With a store that runs handlers in its transaction, events of one handler each skip the read:
   * the handler's claim in that transaction finds a completed one.
   */
  private async settle(jobs: readonly Job[], startedAt: number): Promise<Verdict[]> {
    let states: ReadonlyMap<string, InboxState> = NOTHING_COMPLETED;
    try {
      const claimDecides = this.o.inbox.runInTransaction !== undefined && jobs.every((job) => job.subscribers.length === 1);
      if (!claimDecides) states = await this.o.inbox.completed(jobs.map((job) => job.key));
    } catch (error) {
      return jobs.map((job) => this.storeFailed('reading the inbox failed; no handler ran', job.event, error, startedAt));
    }
    const runs = await Promise.all(jobs.map((job) => this.runEvent(job, states.get(job.key))));
    const enabled = levelCheck(this.o.logger);
    return runs.map((run, i) => this.verdictOf(jobs[i]!, run, startedAt, enabled));
  }

  /** What became of `job`'s handlers: none run when the inbox says it completed; the usual event (one handler, no inbox transaction) by `runOne`. */
  private runEvent(job: Job, completed: InboxState | undefined): Run | Promise<Run> {
    if (completed === true) return duplicateRun();
    const [only] = job.subscribers;
    if (completed !== undefined || job.subscribers.length !== 1 || this.o.inbox.runInTransaction || this.unrecorded.has(job.key, only!.key)) {
      return this.runHandlers(job, completed);
    }
    return this.runOne(job, only!);
  }

  /**
   * The usual event: its one handler, outside any inbox transaction, its mark recorded with the
   * event's `done`. What `runHandlers` → `runAndRecord` → `runHandler` do for it, in one chain of
   * `then`s rather than three async functions: their promises, frames and awaits were 2.4 of the
   * 2.9 KB the pipeline allocated per event, this 0.9 (docs/benchmarks.md, "The usual event
   * without async layers").
   */
  private runOne(job: Job, subscription: Subscription): Promise<Run> {
    const run: Run = { pending: 1, succeeded: [], failed: [] };
    const { key, event } = job;
    this.completions.begin();
    return this.callHandler(event, subscription).then(
      () => {
        run.succeeded = [subscription.key]; // not a push: that would give the array room for 17
        return this.record([{ eventKey: key, handlerKey: subscription.key }, { eventKey: key }], run);
      },
      (error: unknown) => {
        this.logHandlerFailure(event, subscription, error);
        run.failed.push(error);
        return this.record(NO_MARKS, run);
      },
    );
  }

  /**
   * Runs the event's pending handlers at once. Each completion goes to the inbox as the handler
   * finishes (grouped with others for a few ms at most: completion-groups.ts), the event's `done`
   * with the last one, so that a crash reruns only the handlers running then and the completions
   * of the open group, never a whole batch's.
   */
  private async runHandlers(job: Job, completed: ReadonlySet<string> | undefined): Promise<Run> {
    const pending = completed === undefined ? job.subscribers : job.subscribers.filter((s) => !completed.has(s.key));
    const run: Run = { pending: pending.length, succeeded: [], failed: [] };
    const state: HandlersState = { left: pending.length, doneRecorded: false, already: false };
    // One handler (the usual case) awaited as is: no array of promises per event.
    if (pending.length === 1) await this.runAndRecord(job, pending[0]!, true, run, state);
    else await Promise.all(pending.map((subscription) => this.runAndRecord(job, subscription, false, run, state)));
    // Its one handler's claim found it completed (no read before it: `settle`): processed before.
    if (state.already && pending.length === 1) return duplicateRun();
    if (!state.doneRecorded && allSucceeded(run, state)) {
      this.completions.begin(); // `done` alone (its handlers committed their own marks, or had completed before)
      await this.record([{ eventKey: job.key }], run);
    }
    return run;
  }

  /** One of `runHandlers`' handlers: runs it, notes its outcome on `run`, records its completion (with the event's `done` when it is the last to succeed). */
  private async runAndRecord(job: Job, subscription: Subscription, last: boolean, run: Run, state: HandlersState): Promise<unknown> {
    this.completions.begin();
    const outcome = await this.runHandler(job, subscription, last);
    state.left -= 1;
    if (outcome.already) state.already = true;
    if (outcome.done === true) state.doneRecorded = true;
    if (outcome.failed !== undefined) run.failed.push(outcome.failed.error);
    if (outcome.store !== undefined) run.store ??= outcome.store;
    if (outcome.unstarted) run.unstarted = (run.unstarted ?? 0) + 1;
    if (outcome.succeeded === undefined) return this.record(NO_MARKS, run);
    run.succeeded.push(outcome.succeeded);
    const handlerMark = { eventKey: job.key, handlerKey: outcome.succeeded };
    if (!allSucceeded(run, state)) return this.record([handlerMark], run);
    state.doneRecorded = true;
    return this.record([handlerMark, { eventKey: job.key }], run);
  }

  /**
   * Runs one handler. Inside the inbox's transaction when the store has one (its completion is
   * committed with its writes); else on its own, its completion recorded with the message's
   * others (at-least-once: a crash before that reruns it).
   */
  private async runHandler({ key, event }: Job, subscription: Subscription, last: boolean): Promise<HandlerOutcome> {
    // A handler that completed while the inbox could not record it is recorded now, not run again.
    if (this.o.inbox.runInTransaction) return this.runInTransaction(key, event, subscription, last);
    if (this.unrecorded.has(key, subscription.key)) return { succeeded: subscription.key };
    try {
      await this.callHandler(event, subscription);
      return { succeeded: subscription.key };
    } catch (error) {
      this.logHandlerFailure(event, subscription, error);
      return { failed: { error } };
    }
  }

  /** Calls `subscription`'s handler on `event` outside any inbox transaction, in its telemetry span: what it returns, as a promise (a throw as a rejection). */
  private callHandler(event: ReceivedEvent, subscription: Subscription): Promise<unknown> {
    try {
      return Promise.resolve(this.o.telemetry.process(event, subscription.key, () => subscription.handler(event.data, event, {})));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Runs a handler inside the inbox's transaction, which commits its writes through `tx` together
   * with its completion (exactly-once effects). A store failure rolled everything back: the
   * handler runs again at the redelivery, so nothing is remembered as unrecorded. `last`: the
   * event's only pending handler, whose commit records the event done too.
   */
  private async runInTransaction(key: string, event: ReceivedEvent, subscription: Subscription, last: boolean): Promise<HandlerOutcome> {
    try {
      const outcome = await this.o.inbox.runInTransaction!(
        key,
        subscription.key,
        async (context) => {
          await this.o.telemetry.process(event, subscription.key, () => subscription.handler(event.data, event, context));
        },
        last,
      );
      if (outcome === 'done-already') return { already: true };
      return last ? { done: true } : {};
    } catch (error) {
      if (error instanceof TransactionStoreError) return { store: error.storeError, ...(!error.started && { unstarted: true as const }) };
      this.logHandlerFailure(event, subscription, error);
      return { failed: { error } };
    }
  }

  /**
   * A handler ended: records its `marks` with the open group. A failure is kept on `run`, and the
   * handlers' completions in memory, so that the redelivery reaching this process records them
   * instead of running them.
   */
  private record(marks: readonly InboxMark[], run: Run): Promise<Run> {
    // A `then` rather than an async function of its own: one per handler run, about 300 bytes less garbage than its frame and await.
    return this.completions.end(marks).then(
      () => {
        if (this.unrecorded.size > 0) for (const { eventKey: key, handlerKey } of marks) this.unrecorded.delete(key, handlerKey);
        return run;
      },
      (error: unknown) => {
        run.unrecorded ??= { error };
        for (const { eventKey: key, handlerKey } of marks) if (handlerKey !== undefined) this.unrecorded.add(key, handlerKey);
        return run;
      },
    );
  }

  /** One job's verdict, from what its handlers did and whether their completion was recorded (`enabled`: the logger's levels, read once for the message). */
  private verdictOf({ event }: Job, run: Run, startedAt: number, enabled: (level: string) => boolean): Verdict {
    const { id } = event;
    if (run.duplicate) {
      this.logReceipt(enabled, 'event received again; already processed', event, 200, startedAt);
      return { kind: 'duplicate', id };
    }
    const { failed, store } = run;
    if (store !== undefined && failed.length === 0) {
      const message =
        run.unstarted === run.pending
          ? 'the inbox transaction failed; no handler ran'
          : 'recording completion failed; handlers whose transaction did not commit will run again';
      return this.storeFailed(message, event, store, startedAt);
    }
    if (store !== undefined) this.logStoreError('recording completion failed for some handlers', event, store);
    const { unrecorded } = run;
    if (unrecorded !== undefined) {
      if (failed.length === 0) {
        const message = this.o.inbox.runInTransaction
          ? 'recording completion failed; every handler succeeded and will not run again'
          : 'recording completion failed; the handlers that succeeded will not run again in this process';
        return this.storeFailed(message, event, unrecorded.error, startedAt);
      }
      this.logStoreError('recording completion failed for some handlers', event, unrecorded.error);
    }
    if (failed.length === 0) {
      this.logReceipt(enabled, 'event received', event, 200, startedAt, { handlers: run.pending });
      return { kind: 'done', id };
    }
    const verdict = { ...handlerFailure(failed, run.pending), id };
    this.logReceipt(enabled, 'event handling failed', event, statusOf(verdict), startedAt, { failed: failed.length });
    return verdict;
  }

  private logHandlerFailure(event: ReceivedEvent, subscription: Subscription, error: unknown): void {
    this.o.logger.error('handler failed', {
      ...eventFields(event),
      handler: subscription.key,
      error: (error as Error)?.message ?? String(error),
      stack: (error as Error)?.stack,
    });
  }

  /** The inbox store failed (not a handler): log the store problem, ask for a retry after the store's wait. */
  private storeFailed(message: string, event: CloudEvent, error: unknown, startedAt: number): Verdict {
    const verdict: Verdict = {
      kind: 'retry',
      id: event.id,
      reason: 'inbox_unavailable',
      message: 'this service cannot record events right now; retry later',
      afterMs: this.o.retryAfterSeconds * 1000,
    };
    this.logStoreError(message, event, error, { status: statusOf(verdict), durationMs: elapsed(startedAt) });
    return verdict;
  }

  private logStoreError(message: string, event: CloudEvent, error: unknown, receipt: object = {}): void {
    this.o.logger.error(`${message} (the inbox store failed: check its disk, file and locks; the sender will retry)`, {
      ...eventFields(event),
      target: this.o.service,
      ...receipt,
      error: (error as Error)?.message ?? String(error),
      code: (error as { code?: unknown })?.code,
    });
  }

  private logReceipt(enabled: (level: string) => boolean, message: string, event: CloudEvent, status: number, startedAt: number, extra: object = {}): void {
    const level = status < 300 ? 'info' : 'warn';
    if (!enabled(level)) return;
    this.o.logger.log(level, message, {
      ...eventFields(event),
      target: this.o.service,
      status,
      durationMs: elapsed(startedAt),
      ...extra,
    });
    if (enabled('debug')) this.o.logger.debug('event data', { eventId: event.id, data: loggablePayload(event.data) });
  }
}

/** An event whose handlers this message runs, and how to settle everyone waiting on it. */
interface Job {
  key: string;
  event: ReceivedEvent;
  subscribers: readonly Subscription[];
  resolve(verdict: Verdict): void;
  reject(error: unknown): void;
}

/** `true` when every handler completed; else the keys of the handlers that did. */
type InboxState = true | ReadonlySet<string>;

/** No inbox read: every handler of every event is run (in the inbox's transaction, which finds out). */
const NOTHING_COMPLETED: ReadonlyMap<string, InboxState> = new Map();

/** What the protocol refused while parsing: a rejection, kept with its code. */
function rejectOf(error: ProtocolError): Refusal {
  return { kind: 'reject', reason: error.code, message: error.message };
}

function eventFields(event: CloudEvent): Record<string, unknown> {
  return { eventId: event.id, type: event.type, source: event.source };
}

/** The three Standard Webhooks headers; a duplicated one with different values reads as absent (refused). */
export function signatureHeaders(headers: Headers): { id: string | undefined; timestamp: string | undefined; signature: string | undefined } {
  return {
    id: singleHeader(headers, 'webhook-id'),
    timestamp: singleHeader(headers, 'webhook-timestamp'),
    signature: singleHeader(headers, 'webhook-signature'),
  };
}

function elapsed(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 10) / 10;
}
