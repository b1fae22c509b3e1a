import type { Logger } from 'winston';
import type { Catalog, Subscription } from '../catalog.js';
import { NonRetryableError, RetryLaterError, ValidationError } from '../errors/index.js';
import { type BatchItem, type BatchResult, type CloudEvent, detectMode, type Headers, parseBatch, parseStructured, singleHeader } from '../protocol/cloudevents.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { checkSignatureHeaders, verify, type VerifyFailure } from '../protocol/signature.js';
import type { Telemetry } from '../observe/telemetry.js';
import type { ReceivedEvent } from '../types.js';
import { eventKey, type InboxMark, type InboxStore } from './inbox-store.js';
import { TransactionStoreError } from './transaction-store-error.js';
import { UnrecordedCompletions } from './unrecorded-completions.js';
import { type BudgetClaim, UnverifiedBudget } from './unverified-budget.js';

/** A request as any framework sees it: the adapters translate to and from these. */
export interface ReceiverRequest {
  headers: Headers;
  /** The exact bytes received: the signature is checked over them. */
  body: Buffer;
}

export interface ReceiverResponse {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

export interface ReceiverOptions {
  catalog: Catalog;
  inbox: InboxStore;
  logger: Logger;
  keys: readonly Buffer[];
  toleranceSeconds: number;
  bodyLimitBytes: number;
  /** How long the adapters wait for a request body, in ms (then 408). */
  bodyTimeoutMs: number;
  /** Bytes held at once by requests not authenticated yet (then 503 + Retry-After). */
  maxUnverifiedBytes: number;
  /** Retry-After, in seconds, when this receiver cannot take an event now (budget full, inbox failing). */
  retryAfterSeconds: number;
  /** Handler completions remembered in memory while the inbox cannot record them. */
  maxUnrecorded: number;
  /** This service's name, for log lines. */
  service: string | undefined;
  /**
   * Refuse a `webhook-timestamp` outside ±`toleranceSeconds`. Off for broker receipt: a message may
   * wait in its queue for hours while the service is down, and replays are caught by the inbox's
   * dedupe and kept out by the broker's access control. The signature is checked either way.
   * @default true
   */
  checkTimestamp?: boolean;
  /** Spans and metrics around handlers (src/observe/). */
  telemetry: Telemetry;
}

/** Why reading a body stopped before its end. */
export type BodyReadFailure = 'too-large' | 'timeout' | 'busy' | 'aborted' | 'size-mismatch';

const VERIFY_MESSAGES: Record<VerifyFailure, string> = {
  'missing-headers': 'missing webhook-id, webhook-timestamp or webhook-signature header',
  'bad-timestamp': 'webhook-timestamp is not a Unix time in seconds',
  'timestamp-too-old': 'webhook-timestamp is too old (more than the allowed tolerance)',
  'timestamp-too-new': 'webhook-timestamp is too far in the future (more than the allowed tolerance)',
  'no-matching-signature': 'no webhook-signature matches',
};

/** Seconds a sender is asked to wait while this service shuts down. */
const SHUTDOWN_RETRY_AFTER_S = 5;

/**
 * The framework-agnostic receiving side: verify → parse → validate → dedupe → handlers.
 * Every refusal answers a status and a message that says what is wrong, and never reaches a handler.
 */
export class Receiver {
  private closing = false;
  private active = 0;
  private readonly running = new Map<string, Promise<ReceiverResponse>>();
  private readonly unverified: UnverifiedBudget;
  private readonly unrecorded: UnrecordedCompletions;

  constructor(private readonly o: ReceiverOptions) {
    this.unverified = new UnverifiedBudget(o.maxUnverifiedBytes);
    this.unrecorded = new UnrecordedCompletions(o.maxUnrecorded);
  }

  /** How long adapters that read the body themselves wait for it, in ms. */
  get bodyTimeoutMs(): number {
    return this.o.bodyTimeoutMs;
  }

  /**
   * What the headers alone refuse, before a body byte is read: no signature headers, a
   * timestamp malformed or outside the window (401), a declared length over the limit (413), or
   * a closing service (503). Undefined when the body is worth reading.
   */
  preflight(headers: Headers): ReceiverResponse | undefined {
    const startedAt = performance.now();
    if (this.closing) return this.shuttingDown(startedAt);
    const failure = checkSignatureHeaders(signatureHeaders(headers), this.o.toleranceSeconds);
    if (failure) return this.refuse(new ProtocolError(401, 'invalid_signature', VERIFY_MESSAGES[failure]), startedAt);
    const declared = declaredLength(headers);
    if (declared !== undefined && declared > this.o.bodyLimitBytes) return this.tooLarge();
    return undefined;
  }

  /**
   * A share of the unauthenticated-bytes budget for one request, holding its declared length
   * already; or the 503 to answer when the budget cannot hold it.
   */
  claimUnverified(headers: Headers): BudgetClaim | ReceiverResponse {
    const claim = this.unverified.claim();
    const declared = declaredLength(headers);
    if (declared === undefined || claim.growTo(declared)) return claim;
    return this.busy();
  }

  /** 503 + Retry-After: too many bytes of unauthenticated requests are held now. */
  busy(): ReceiverResponse {
    return this.refuse(
      new ProtocolError(503, 'busy', 'too many unauthenticated request bodies are being read at once; retry later'),
      performance.now(),
      { 'retry-after': String(this.o.retryAfterSeconds) },
    );
  }

  /** The answer when reading the body stopped early. */
  readFailed(failure: BodyReadFailure): ReceiverResponse {
    switch (failure) {
      case 'too-large':
        return this.tooLarge();
      case 'busy':
        return this.busy();
      case 'timeout':
        return this.refuse(
          new ProtocolError(408, 'body_timeout', `the request body did not arrive within ${this.o.bodyTimeoutMs} ms`),
          performance.now(),
        );
      case 'size-mismatch':
        return this.refuse(new ProtocolError(400, 'body_length_mismatch', 'the body does not match its content-length'), performance.now());
      case 'aborted':
        this.o.logger.debug('request aborted by the client before its body arrived', { target: this.o.service });
        return { status: 400, headers: {}, body: { error: 'aborted', message: 'the request was aborted' } };
    }
  }

  /**
   * 500: a body parser mounted before the middleware consumed the raw bytes, so the signature
   * cannot be checked. Logged here at error level, since the sender only sees a 500.
   */
  rawBodyUnavailable(middleware: string, hint: string): ReceiverResponse {
    const error = new ProtocolError(
      500,
      'raw_body_unavailable',
      `${middleware}: a body parser mounted before it already read this request and did not keep the raw bytes, ` +
        `so the signature cannot be checked. Mount ${middleware} before the body parser, or ${hint}.`,
    );
    this.o.logger.error('event refused: the raw body is gone, so its signature cannot be checked (fix the middleware order)', {
      target: this.o.service,
      status: error.status,
      reason: error.code,
      error: error.message,
    });
    return { status: error.status, headers: {}, body: { error: error.code, message: error.message } };
  }

  /**
   * Verifies, parses, validates, dedupes and runs the handlers. `onVerified` is called as soon as
   * the signature is known good (adapters release the request's unauthenticated-bytes claim then).
   */
  async handle(request: ReceiverRequest, onVerified?: () => void): Promise<ReceiverResponse> {
    const startedAt = performance.now();
    if (this.closing) return this.shuttingDown(startedAt);
    this.active += 1;
    try {
      return await this.process(request, startedAt, onVerified);
    } catch (error) {
      if (error instanceof ProtocolError) return this.refuse(error, startedAt);
      throw error;
    } finally {
      this.active -= 1;
    }
  }

  /** Answers 413 for a body over the limit (used by adapters that stop reading early). */
  tooLarge(): ReceiverResponse {
    return this.refuse(
      new ProtocolError(413, 'payload_too_large', `the body is larger than the limit of ${this.o.bodyLimitBytes} bytes`),
      performance.now(),
    );
  }

  /** Starts answering 503 to new events; resolves when in-flight handlers finish or at `deadline`. */
  async shutdown(deadline: number): Promise<void> {
    this.closing = true;
    while (this.active > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(20, deadline - Date.now())));
    }
  }

  private shuttingDown(startedAt: number): ReceiverResponse {
    return this.refuse(new ProtocolError(503, 'shutting_down', 'this service is shutting down; retry later'), startedAt, {
      'retry-after': String(SHUTDOWN_RETRY_AFTER_S),
    });
  }

  private async process(request: ReceiverRequest, startedAt: number, onVerified?: () => void): Promise<ReceiverResponse> {
    const { headers, body } = request;
    if (body.length > this.o.bodyLimitBytes) return this.tooLarge();
    const windowed = this.o.checkTimestamp !== false;
    const failure = verify(this.o.keys, { ...signatureHeaders(headers), body }, windowed ? this.o.toleranceSeconds : Infinity);
    if (failure) throw new ProtocolError(401, 'invalid_signature', VERIFY_MESSAGES[failure]);
    onVerified?.();
    // Without the time window (broker receipt) a message may be older than the inbox's memory by
    // design; the broker's access control and the dedupe stand in for the window there.
    const replay = windowed ? this.replayUndetectable(headers) : undefined;
    if (replay) return this.refuse(replay, startedAt, { 'retry-after': '1' });
    // Only an authenticated sender learns anything about the content (415 / 400). Every attribute
    // that picks the handler, the source or the dedupe key comes from the signed body.
    let event: CloudEvent | undefined;
    let items: BatchItem[] = [];
    try {
      if (detectMode(headers) === 'structured') event = parseStructured(body);
      else items = parseBatch(body);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return this.refuse(error, startedAt, {}, undefined, { webhookId: singleHeader(headers, 'webhook-id') });
    }
    if (event === undefined) return this.deliverBatch(items, startedAt);
    const jobs: Job[] = [];
    let answer: Promise<ReceiverResponse>;
    try {
      answer = this.admit(event, jobs);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return this.refuse(error, startedAt, {}, event);
    }
    const [response] = await Promise.all([answer, this.runJobs(jobs, startedAt)]);
    return response;
  }

  /**
   * Every event of a batch at once: no ordering beyond what separate requests give. The same
   * source + id twice runs the handlers once (the second shares the first's outcome). The inbox
   * is read once and written once for the whole batch. Answers one result per item, in order,
   * with the worst status and the longest Retry-After any item asks.
   */
  private async deliverBatch(items: readonly BatchItem[], startedAt: number): Promise<ReceiverResponse> {
    const jobs: Job[] = [];
    const answers: Array<BatchResult | Promise<BatchResult>> = [];
    try {
      for (const item of items) answers.push(this.admitItem(item, jobs, startedAt));
    } catch (error) {
      // A fault that is not a refusal: the events admitted so far must not stay in flight forever.
      void Promise.allSettled(answers);
      this.abandon(jobs, error);
      throw error;
    }
    const [results] = await Promise.all([Promise.all(answers), this.runJobs(jobs, startedAt)]);
    let status = 200;
    let retryAfter: number | undefined;
    for (const result of results) {
      if (severity(result.status) > severity(status)) status = result.status;
      if (result.retryAfter !== undefined) retryAfter = Math.max(retryAfter ?? 0, result.retryAfter);
    }
    return { status, headers: retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }, body: { results } };
  }

  private admitItem(item: BatchItem, jobs: Job[], startedAt: number): BatchResult | Promise<BatchResult> {
    if (item.event === undefined) {
      return batchResult(this.refuse(item.invalid, startedAt, {}, undefined, { eventId: item.id }), item.id);
    }
    const { event } = item;
    try {
      return this.admit(event, jobs).then((response) => batchResult(response, event.id));
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return batchResult(this.refuse(error, startedAt, {}, event), event.id);
    }
  }

  /**
   * A signed request older than what the inbox remembers (it restarted, or forgot older ids) could
   * be a captured request replayed within the signature's time window: dedupe cannot tell. Refuse
   * it as "try later": a real sender signs every try afresh, so its retry passes.
   */
  private replayUndetectable(headers: Headers): ProtocolError | undefined {
    const signedAt = Number(singleHeader(headers, 'webhook-timestamp')) * 1000;
    if (!(signedAt <= this.o.inbox.forgetsBefore())) return undefined;
    return new ProtocolError(
      503,
      'signed_before_inbox_memory',
      'webhook-timestamp is older than what this receiver remembers of processed events (it restarted or forgot older ids): sign the request again and resend it',
    );
  }

  /**
   * Routes and validates `event` (throws ProtocolError), then joins the run of the same event in
   * flight, or adds a job to `jobs` for this request to run. Synchronous up to that point, so the
   * same source + id twice in one batch, or in two requests, runs once.
   */
  private admit(event: CloudEvent, jobs: Job[]): Promise<ReceiverResponse> {
    const subscribers = this.o.catalog.subscribers(event.type);
    if (subscribers.length === 0) {
      throw new ProtocolError(404, 'no_subscriber', `no subscriber for event type "${event.type}" at this service`);
    }
    for (const subscription of subscribers) {
      try {
        this.o.catalog.check(event.type, subscription.validate, event.data);
      } catch (error) {
        if (error instanceof ValidationError) throw new ProtocolError(400, 'invalid_data', error.message);
        throw error;
      }
    }
    const key = eventKey(event.source, event.id);
    const running = this.running.get(key);
    if (running) return running.then((response) => (response.status < 300 ? duplicate(event) : response));
    let job!: Job;
    const done = new Promise<ReceiverResponse>((resolve, reject) => {
      job = { key, event: event as ReceivedEvent, subscribers, resolve, reject };
    });
    this.running.set(key, done);
    jobs.push(job);
    return done;
  }

  /** Runs a request's jobs and answers each; the events stay "in flight" until their completion is recorded. */
  private async runJobs(jobs: readonly Job[], startedAt: number): Promise<void> {
    if (jobs.length === 0) return;
    try {
      const responses = await this.settle(jobs, startedAt);
      jobs.forEach((job, i) => {
        this.running.delete(job.key);
        job.resolve(responses[i]!);
      });
    } catch (error) {
      this.abandon(jobs, error);
      throw error;
    }
  }

  /** Fails `jobs` with `error` (a fault, not a refusal), for this request and every request waiting on them. */
  private abandon(jobs: readonly Job[], error: unknown): void {
    for (const job of jobs) {
      this.running.delete(job.key);
      job.reject(error);
    }
  }

  /**
   * Reads the inbox once for every job, runs the handlers of all of them at once, then records
   * every completion in one write before any of them is answered.
   */
  private async settle(jobs: readonly Job[], startedAt: number): Promise<ReceiverResponse[]> {
    let states: ReadonlyArray<InboxState>;
    try {
      states = await this.completedOf(jobs.map((job) => job.key));
    } catch (error) {
      return jobs.map((job) => this.storeFailed('reading the inbox failed; no handler ran', job.event, error, startedAt));
    }
    const runs = await Promise.all(jobs.map((job, i) => this.runHandlers(job, states[i])));
    const marks: InboxMark[] = [];
    for (const [i, run] of runs.entries()) {
      if (run.duplicate) continue;
      const { key } = jobs[i]!;
      // The same rows as one mark at a time wrote: a handler's, then `done` once all completed.
      for (const handlerKey of run.succeeded) marks.push({ eventKey: key, handlerKey });
      if (run.failed.length === 0 && run.store === undefined) marks.push({ eventKey: key });
    }
    const unrecorded = await this.record(marks);
    return runs.map((run, i) => this.answer(jobs[i]!, run, unrecorded, startedAt));
  }

  private async runHandlers(job: Job, completed: InboxState): Promise<Run> {
    if (completed === true) return { duplicate: true, pending: 0, succeeded: [], failed: [] };
    const pending = job.subscribers.filter((s) => !completed?.has(s.key));
    const outcomes = await Promise.all(pending.map((subscription) => this.runHandler(job, subscription)));
    const run: Run = { pending: pending.length, succeeded: [], failed: [] };
    for (const outcome of outcomes) {
      if (outcome.succeeded !== undefined) run.succeeded.push(outcome.succeeded);
      if (outcome.failed !== undefined) run.failed.push(outcome.failed.error);
      if (outcome.store !== undefined) run.store ??= outcome.store;
    }
    return run;
  }

  /**
   * Runs one handler. Inside the inbox's transaction when the store has one (its completion is
   * committed with its writes); else on its own, its completion recorded with the request's
   * others (at-least-once: a crash before that reruns it).
   */
  private async runHandler({ key, event }: Job, subscription: Subscription): Promise<HandlerOutcome> {
    if (this.o.inbox.runInTransaction) return this.runInTransaction(key, event, subscription);
    // A handler that completed while the inbox could not record it is recorded now, not run again.
    if (this.unrecorded.has(key, subscription.key)) return { succeeded: subscription.key };
    try {
      await this.o.telemetry.process(event, subscription.key, () => subscription.handler(event.data, event, {}));
      return { succeeded: subscription.key };
    } catch (error) {
      this.logHandlerFailure(event, subscription, error);
      return { failed: { error } };
    }
  }

  /**
   * Runs a handler inside the inbox's transaction, which commits its writes through `tx` together
   * with its completion (exactly-once effects). A store failure rolled everything back: the
   * handler runs again at the redelivery, so nothing is remembered as unrecorded.
   */
  private async runInTransaction(key: string, event: ReceivedEvent, subscription: Subscription): Promise<HandlerOutcome> {
    try {
      await this.o.inbox.runInTransaction!(key, subscription.key, async (context) => {
        await this.o.telemetry.process(event, subscription.key, () => subscription.handler(event.data, event, context));
      });
      return {};
    } catch (error) {
      if (error instanceof TransactionStoreError) return { store: error.storeError };
      this.logHandlerFailure(event, subscription, error);
      return { failed: { error } };
    }
  }

  /** Each key's completed state, in one read when the store can. */
  private async completedOf(keys: readonly string[]): Promise<ReadonlyArray<InboxState>> {
    const { inbox } = this.o;
    if (inbox.completedMany) {
      const states = await inbox.completedMany(keys);
      return keys.map((key) => states.get(key));
    }
    return Promise.all(keys.map((key) => inbox.completed(key)));
  }

  /** Records `marks` in one write when the store can; answers what stopped it, if anything did. */
  private async record(marks: readonly InboxMark[]): Promise<{ error: unknown } | undefined> {
    if (marks.length === 0) return undefined;
    const { inbox } = this.o;
    try {
      if (inbox.markMany) await inbox.markMany(marks);
      else {
        for (const { eventKey: key, handlerKey } of marks) {
          await (handlerKey === undefined ? inbox.markDone(key) : inbox.markHandler(key, handlerKey));
        }
      }
    } catch (error) {
      return { error };
    }
    for (const { eventKey: key, handlerKey } of marks) this.unrecorded.delete(key, handlerKey);
    return undefined;
  }

  /** One job's answer, from what its handlers did and whether their completion was recorded. */
  private answer({ key, event }: Job, run: Run, unrecorded: { error: unknown } | undefined, startedAt: number): ReceiverResponse {
    if (run.duplicate) {
      this.logReceipt('event received again; already processed', event, 200, startedAt);
      return duplicate(event);
    }
    const { failed, store } = run;
    if (store !== undefined && failed.length === 0) {
      return this.storeFailed('recording completion failed; handlers whose transaction did not commit will run again', event, store, startedAt);
    }
    if (store !== undefined) this.logStoreError('recording completion failed for some handlers', event, store);
    const marked = failed.length === 0 || run.succeeded.length > 0;
    if (unrecorded !== undefined && marked) {
      for (const handlerKey of run.succeeded) this.unrecorded.add(key, handlerKey);
      if (failed.length === 0) {
        const message = this.o.inbox.runInTransaction
          ? 'recording completion failed; every handler succeeded and will not run again'
          : 'recording completion failed; the handlers that succeeded will not run again in this process';
        return this.storeFailed(message, event, unrecorded.error, startedAt);
      }
      this.logStoreError('recording completion failed for some handlers', event, unrecorded.error);
    }
    if (failed.length === 0) {
      this.logReceipt('event received', event, 200, startedAt, { handlers: run.pending });
      return ok({ status: 'delivered', id: event.id });
    }
    const response = handlerFailure(failed, run.pending);
    this.logReceipt('event handling failed', event, response.status, startedAt, { failed: failed.length });
    return response;
  }

  private logHandlerFailure(event: ReceivedEvent, subscription: Subscription, error: unknown): void {
    this.o.logger.error('handler failed', {
      ...eventFields(event),
      handler: subscription.key,
      error: (error as Error)?.message ?? String(error),
      stack: (error as Error)?.stack,
    });
  }

  /** The inbox store failed (not a handler): log the store problem, ask the sender to retry later. */
  private storeFailed(message: string, event: CloudEvent, error: unknown, startedAt: number): ReceiverResponse {
    this.logStoreError(message, event, error, elapsed(startedAt));
    return {
      status: 503,
      headers: { 'retry-after': String(this.o.retryAfterSeconds) },
      body: { error: 'inbox_unavailable', message: 'this service cannot record events right now; retry later' },
    };
  }

  private logStoreError(message: string, event: CloudEvent, error: unknown, durationMs?: number): void {
    this.o.logger.error(`${message} (the inbox store failed: check its disk, file and locks; the sender will retry)`, {
      ...eventFields(event),
      target: this.o.service,
      ...(durationMs === undefined ? {} : { status: 503, durationMs }),
      error: (error as Error)?.message ?? String(error),
      code: (error as { code?: unknown })?.code,
    });
  }

  private refuse(
    error: ProtocolError,
    startedAt: number,
    headers: Record<string, string> = {},
    event?: CloudEvent,
    extra: Record<string, unknown> = {},
  ): ReceiverResponse {
    if (this.o.logger.isLevelEnabled('warn')) {
      this.o.logger.warn('event refused', {
        ...(event ? eventFields(event) : extra),
        target: this.o.service,
        status: error.status,
        reason: error.code,
        error: error.message,
        durationMs: elapsed(startedAt),
      });
    }
    return { status: error.status, headers, body: { error: error.code, message: error.message } };
  }

  private logReceipt(message: string, event: CloudEvent, status: number, startedAt: number, extra: object = {}): void {
    const level = status < 300 ? 'info' : 'warn';
    if (!this.o.logger.isLevelEnabled(level)) return;
    this.o.logger.log(level, message, {
      ...eventFields(event),
      target: this.o.service,
      status,
      durationMs: elapsed(startedAt),
      ...extra,
    });
    if (this.o.logger.isDebugEnabled()) this.o.logger.debug('event data', { eventId: event.id, data: event.data });
  }
}

/** An event whose handlers this request runs, and how to answer everyone waiting on it. */
interface Job {
  key: string;
  event: ReceivedEvent;
  subscribers: readonly Subscription[];
  resolve(response: ReceiverResponse): void;
  reject(error: unknown): void;
}

type InboxState = Awaited<ReturnType<InboxStore['completed']>>;

/**
 * What became of one handler: it completed and its completion is still to be recorded (its key),
 * it failed, or the store failed around it. Empty: it completed in the inbox's transaction.
 */
interface HandlerOutcome {
  succeeded?: string;
  failed?: { error: unknown };
  store?: unknown;
}

/** What became of one event's handlers, before its completion is recorded. */
interface Run {
  /** Every handler had completed already. */
  duplicate?: true;
  /** Handlers run (those that had not completed before). */
  pending: number;
  /** Keys of the handlers whose completion is still to be recorded. */
  succeeded: string[];
  failed: unknown[];
  store?: unknown;
}

/** Retry-later beats retry, which beats never-retry: no handler that could still succeed is given up on. */
function handlerFailure(errors: unknown[], total: number): ReceiverResponse {
  const later = errors.filter((e): e is RetryLaterError => e instanceof RetryLaterError);
  if (later.length > 0) {
    const seconds = Math.max(...later.map((e) => e.retryAfterSeconds));
    return {
      status: 503,
      headers: { 'retry-after': String(seconds) },
      body: { error: 'retry_later', message: later[0]!.message },
    };
  }
  const final = errors.filter((e): e is NonRetryableError => e instanceof NonRetryableError);
  if (final.length === errors.length) {
    return { status: final[0]!.status, headers: {}, body: { error: 'rejected_by_handler', message: final[0]!.message } };
  }
  return {
    status: 500,
    headers: {},
    body: { error: 'handler_failed', message: `${errors.length} of ${total} handlers failed; retry later` },
  };
}

function batchResult(response: ReceiverResponse, id: string | undefined): BatchResult {
  const result: BatchResult = id === undefined ? { status: response.status } : { id, status: response.status };
  if (response.status < 300) {
    result.receipt = response.body.status as BatchResult['receipt'];
    return result;
  }
  result.error = response.body.error as string;
  result.message = response.body.message as string;
  const retryAfter = response.headers['retry-after'];
  if (retryAfter !== undefined) result.retryAfter = Number(retryAfter);
  return result;
}

function ok(body: Record<string, unknown>): ReceiverResponse {
  return { status: 200, headers: {}, body };
}

function duplicate(event: CloudEvent): ReceiverResponse {
  return ok({ status: 'duplicate', id: event.id });
}

function severity(status: number): number {
  if (status === 503) return 4;
  if (status >= 500) return 3;
  if (status >= 400) return 2;
  return 1;
}

function eventFields(event: CloudEvent): Record<string, unknown> {
  return { eventId: event.id, type: event.type, source: event.source };
}

/** The three Standard Webhooks headers; a duplicated one with different values reads as absent (401). */
function signatureHeaders(headers: Headers): { id: string | undefined; timestamp: string | undefined; signature: string | undefined } {
  return {
    id: singleHeader(headers, 'webhook-id'),
    timestamp: singleHeader(headers, 'webhook-timestamp'),
    signature: singleHeader(headers, 'webhook-signature'),
  };
}

/** The declared content-length, when there is a valid one. */
function declaredLength(headers: Headers): number | undefined {
  const value = singleHeader(headers, 'content-length');
  if (value === undefined || !/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

function elapsed(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 10) / 10;
}
