import type { Logger } from 'winston';
import type { RedeliveryOptions, ResolvedTarget } from '../config.js';
import { DEFAULTS } from '../defaults.js';
import type { Telemetry } from '../observe/telemetry.js';
import type { DeliveryResult, Transport } from '../transports/transport.js';
import type { Admission } from './admission.js';
import type { OutboxRecord, OutboxStore } from './outbox-store.js';
import { failureHint } from './failure-hints.js';
import { backoffMs } from './retry-policy.js';

export interface DispatcherOptions {
  store: OutboxStore;
  transport: Transport;
  logger: Logger;
  /** Deliveries in flight at once, per target. */
  concurrency: number;
  redelivery: RedeliveryOptions;
  /** Finds a target's current URL and keys by name, cheaply: called on every pump. Throws ConfigError when it cannot. */
  resolveTarget: (name: string) => ResolvedTarget;
  /** Spans, metrics and hooks (src/observe/). */
  telemetry: Telemetry;
  /** Told as deliveries settle and when a lane finds nothing more due: the emit path's backpressure (admission.ts). */
  progress?: Pick<Admission, 'settled' | 'idle'>;
}

/** Distinct deliveries failing in a row (with no success between) that mark a target down. */
const DOWN_AFTER_FAILURES = 3;

/**
 * Delivers from the outbox. One lane per target, each with its own concurrency, so one slow or
 * dead target never delays another. A failed delivery waits in the outbox (exponential backoff
 * with jitter, `Retry-After` honoured) until its horizon, then becomes a dead letter. A target
 * that is down is probed with one delivery at a time; when it answers, every delivery that failed
 * during the outage is due at once, so the backlog drains at full speed.
 */
export class Dispatcher {
  private readonly lanes = new Map<string, Lane>();
  private stopping = false;
  private resuming = false;

  constructor(private readonly options: DispatcherOptions) {}

  /** New deliveries for `target` are in the store. */
  notify(target: string): void {
    if (!this.stopping) this.lane(target).kick();
  }

  /** Starts every target with pending deliveries (after a restart, or a replay). */
  resume(): void {
    if (this.stopping || this.resuming) return;
    let answer: string[] | Promise<string[]>;
    try {
      answer = this.options.store.targets();
    } catch (error) {
      this.unreadable(error);
      return;
    }
    // A store answering at once is resumed at once (before an emit of this turn starts a lane).
    if (!(answer instanceof Promise)) return this.resumeTargets(answer);
    this.resuming = true;
    answer.then(
      (targets) => this.resumeTargets(targets),
      (error: unknown) => this.unreadable(error),
    ).finally(() => (this.resuming = false));
  }

  /** Runs from a timer: a store that cannot be read now (it logs why) is tried at the next poll. */
  private unreadable(error: unknown): void {
    this.options.logger.debug('outbox not readable; resume retried at the next poll', { error: messageOf(error) });
  }

  private resumeTargets(targets: string[]): void {
    if (this.stopping) return;
    for (const target of targets) {
      // A backlog this process has not tried yet (left by a previous run) may have failed while
      // the target was down: probe first, and when the target answers, release all of it at once.
      const lane = this.lanes.get(target);
      if (!lane || !lane.started) this.lane(target).assumeDown();
      this.notify(target);
    }
  }

  inFlight(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.inFlight;
    return n;
  }

  /** Stops claiming; resolves when nothing is in flight, or at `deadline` (ms since epoch). */
  async stop(deadline: number): Promise<void> {
    // Start what is due now (an emit just before close() has only been kicked for the next turn),
    // so that it is in flight and waited for below rather than left undelivered.
    await Promise.all([...this.lanes.values()].map((lane) => lane.pump()));
    this.stopping = true;
    for (const lane of this.lanes.values()) lane.halt();
    while ((this.inFlight() > 0 || this.settling() > 0) && Date.now() < deadline) await sleep(Math.min(20, deadline - Date.now()));
  }

  /** Outcomes still being written to the store. */
  private settling(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.settling;
    return n;
  }

  isStopping(): boolean {
    return this.stopping;
  }

  /** Whether `target` is counted down now (probed, not delivered to). */
  isDown(target: string): boolean {
    return this.lanes.get(target)?.downSince !== undefined;
  }

  /** Targets counted down now, with since when (ms since epoch). */
  downSince(): Record<string, number> {
    const down: Record<string, number> = {};
    for (const [target, lane] of this.lanes) if (lane.downSince !== undefined) down[target] = lane.downSince;
    return down;
  }

  private lane(target: string): Lane {
    let lane = this.lanes.get(target);
    if (!lane) {
      lane = new Lane(target, this.options, () => this.stopping);
      this.lanes.set(target, lane);
    }
    return lane;
  }
}

class Lane {
  inFlight = 0;
  /** When the target was last counted down (undefined: it is up). */
  downSince: number | undefined;
  /** A delivery was started: the lane knows the target's state first-hand. */
  started = false;
  /** Outcomes being written to the store (a shared store answers asynchronously). */
  settling = 0;
  private scheduled = false;
  /** A pump is awaiting the store; another request to pump runs once it is done. */
  private pumping = false;
  private pumpAgain = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private down = false;
  private probing = false;
  private probeDelayMs = 0;
  private failing = new Set<number>();
  /** Wait before pumping again after the store failed (0: it works). */
  private storeRetryMs = 0;
  /** Earliest try among the failures since the last success (Infinity: none). */
  private streakStart = Infinity;
  /** The target's URL as last resolved, for log lines. */
  private url = '';
  /** Failure hints logged since the last success: key → the event type they concern (undefined: the whole target). */
  private readonly hints = new Map<string, string | undefined>();
  /** Why the target could not be resolved, as last logged (undefined: it resolves). */
  private unresolved: string | undefined;
  /** The last 2xx was not an events receipt (warned once). */
  private unconfirmed = false;

  constructor(
    private readonly target: string,
    private readonly o: DispatcherOptions,
    private readonly stopping: () => boolean,
  ) {}

  /** Pumps on the next turn of the event loop; many kicks in one turn pump once. */
  kick(): void {
    if (this.scheduled || this.stopping()) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Starts down, with every failed delivery in the store counted in the outage. */
  assumeDown(): void {
    this.down = true;
    this.downSince ??= Date.now();
    this.probeDelayMs = 0;
    this.streakStart = 0;
  }

  halt(): void {
    this.clearTimer();
  }

  /** Claims and starts the due deliveries now (a kick does this on the next turn of the event loop). */
  async pump(): Promise<void> {
    if (this.stopping()) return;
    // One pump at a time: two claiming at once would exceed the concurrency.
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        await this.pumpOnce();
      } while (this.pumpAgain && !this.stopping());
    } finally {
      this.pumping = false;
    }
  }

  private async pumpOnce(): Promise<void> {
    const target = this.targetConfig();
    if (!target) return;
    if (this.down) {
      if (!this.probing && this.timer === undefined) this.schedule(Date.now() + this.probeDelayMs, true);
      return;
    }
    let claimed: OutboxRecord[] = [];
    let next: number | undefined;
    try {
      // Outcomes still being written count too: a shared store counts their claims until then.
      const free = this.o.concurrency - this.inFlight - this.settling;
      if (free > 0) claimed = await this.o.store.claim(this.target, Date.now(), free);
      // Started before the next read, so that they count in flight.
      for (const record of claimed) void this.deliver(target, record, false);
      if (claimed.length < free) this.o.progress?.idle(this.target, this.inFlight + this.settling);
      // A full lane is pumped again as each delivery ends: no need to know when the next is due.
      if (this.inFlight < this.o.concurrency) next = await this.o.store.nextDueAt(this.target);
      this.storeRetryMs = 0;
    } catch (error) {
      this.storeFailed(error);
    }
    if (next !== undefined && this.inFlight < this.o.concurrency && !this.down) this.schedule(next, false);
  }

  /**
   * The store threw (disk full, locked, damaged: the store logs which, once per change). Never
   * thrown out of a timer: pump again after a growing, capped wait; what is stored stays there.
   */
  private storeFailed(error: unknown): void {
    const { baseDelayMs, maxDelayMs } = DEFAULTS.storeRetry;
    this.storeRetryMs = Math.min(maxDelayMs, Math.max(baseDelayMs, this.storeRetryMs * 2));
    this.o.logger.debug('outbox call failed; pumping again later', {
      target: this.target,
      retryInMs: this.storeRetryMs,
      error: messageOf(error),
    });
    this.clearTimer();
    this.schedule(Date.now() + this.storeRetryMs, false);
  }

  private schedule(at: number, probe: boolean): void {
    if (this.timer !== undefined && this.timerAt <= at) return;
    this.clearTimer();
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      if (probe) this.probe();
      else this.pump();
    }, Math.max(0, at - Date.now()));
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private probe(): void {
    void this.probeNow();
  }

  private async probeNow(): Promise<void> {
    if (this.stopping()) return;
    const target = this.targetConfig();
    let record: OutboxRecord | undefined;
    this.probing = true;
    try {
      record = target && (await this.o.store.claimProbe(this.target));
    } catch (error) {
      this.probing = false;
      this.storeFailed(error);
      return;
    }
    if (!target || !record) {
      this.probing = false;
      this.down = false;
      this.downSince = undefined;
      return;
    }
    void this.deliver(target, record, true).finally(() => {
      this.probing = false;
      this.kick();
    });
  }

  private async deliver(target: ResolvedTarget, record: OutboxRecord, probe: boolean): Promise<void> {
    this.inFlight += 1;
    this.started = true;
    const firstAttempt = record.attempts === 0;
    const startedAt = Date.now();
    const span = this.o.telemetry.send(record);
    let result: DeliveryResult;
    try {
      result = await this.o.transport.send({
        eventId: record.eventId,
        type: record.type,
        source: record.source,
        target,
        body: record.body,
        previousAttempts: record.attempts,
        traceparent: span ? span.traceparent : record.traceparent,
        tracestate: span ? span.tracestate : record.tracestate,
      });
    } catch (error) {
      result = { outcome: 'retry', error: (error as Error)?.message ?? String(error), attempts: 1 };
    }
    this.o.telemetry.sent(span, result);
    this.inFlight -= 1;
    record.attempts += result.attempts;
    record.lastAttemptAt = startedAt;
    record.lastStatus = result.status;
    record.lastError = result.error;
    this.settling += 1;
    try {
      await this.settle(record, result, probe);
    } catch (error) {
      // The store is gone (closed at shutdown) or unreachable: the record stays in it as it was
      // (leased: a shared store hands it out again once the lease ends).
      this.o.logger.error('could not record a delivery outcome', {
        eventId: record.eventId,
        target: record.target,
        error: (error as Error)?.message ?? String(error),
      });
    } finally {
      this.settling -= 1;
    }
    this.o.progress?.settled(record, firstAttempt);
    this.kick();
  }

  private async settle(record: OutboxRecord, result: DeliveryResult, probe: boolean): Promise<void> {
    const { store, logger, redelivery } = this.o;
    const fields = {
      eventId: record.eventId,
      type: record.type,
      source: record.source,
      target: record.target,
      attempt: record.attempts,
      status: result.status,
    };
    if (result.outcome === 'delivered') {
      await store.complete(record.id);
      this.o.telemetry.delivered(record, result);
      await this.recovered(record.type);
      this.checkReceipt(result);
      if (logger.isInfoEnabled()) {
        logger.info('event delivered', { ...fields, durationMs: Date.now() - (record.lastAttemptAt ?? Date.now()) });
      }
      return;
    }
    // Payloads never go above debug: the dead letter keeps the body for replay.
    const failure = { ...fields, error: result.error };
    if (result.outcome === 'refused') {
      await store.kill(record, 'refused');
      this.o.telemetry.deadLettered(record, 'refused');
      logger.error('delivery refused; dead-lettered', failure);
      this.logData('dead letter data', record);
      if (this.down) await this.recovered(record.type);
      return;
    }
    await this.failed(record, result, probe);
    const now = Date.now();
    const elapsed = now - record.createdAt;
    const wait = Math.max(
      backoffMs(1, Math.max(redelivery.baseDelayMs, elapsed), redelivery.maxDelayMs),
      result.retryAfterMs ?? 0,
    );
    if (elapsed + wait > redelivery.horizonMs) {
      await store.kill(record, 'expired');
      this.o.telemetry.deadLettered(record, 'expired');
      logger.error('delivery expired after its redelivery horizon; dead-lettered', failure);
      this.logData('dead letter data', record);
      return;
    }
    await store.reschedule(record, now + wait);
    this.o.telemetry.retried(record);
    // The first failure of a delivery is worth a warning; its later retries are attempts (debug).
    const level = record.attempts === result.attempts ? 'warn' : 'debug';
    if (logger.isLevelEnabled(level)) {
      logger.log(level, 'delivery failed; will redeliver', { ...failure, nextAttemptAt: new Date(now + wait).toISOString() });
    }
  }

  private async failed(record: OutboxRecord, result: DeliveryResult, probe: boolean): Promise<void> {
    // The streak starts at the earliest failed try, not the first to fail: a slow try (a timeout)
    // started before a fast failure must be released with the rest when the target comes back.
    this.streakStart = Math.min(this.streakStart, record.lastAttemptAt ?? Date.now());
    this.failing.add(record.id);
    this.explain(result.status, record.type);
    const retryAfter = result.retryAfterMs ?? 0;
    if (probe) {
      this.probeDelayMs = Math.max(
        retryAfter,
        Math.min(this.o.redelivery.probeMaxDelayMs, Math.max(250, this.probeDelayMs * 2)),
      );
      return;
    }
    if (!this.down && (result.targetDown || this.failing.size >= DOWN_AFTER_FAILURES)) {
      this.down = true;
      this.downSince = Date.now();
      this.probeDelayMs = Math.max(retryAfter, 500);
      this.clearTimer();
      this.o.logger.warn('target down; probing before sending more', { target: this.target, status: result.status, error: result.error });
      try {
        await this.o.store.markDown?.(this.target);
      } catch (error) {
        this.o.logger.debug('could not share that the target is down', { target: this.target, error: messageOf(error) });
      }
    }
  }

  /** The likely cause of a refusal an operator can fix (401, 404, …): once per state change, not per event. */
  private explain(status: number | undefined, type: string): void {
    const hint = failureHint(status, this.target, this.url, type);
    if (!hint || this.hints.has(hint.key)) return;
    this.hints.set(hint.key, hint.scope === 'type' ? type : undefined);
    this.o.logger.warn(hint.message, { target: this.target, url: this.url, status, type });
  }

  /** A 2xx that is not an events endpoint's receipt counts as delivered, but never silently: once per state change. */
  private checkReceipt(result: DeliveryResult): void {
    if (result.receipt === undefined || result.receipt === !this.unconfirmed) return;
    this.unconfirmed = !result.receipt;
    if (this.unconfirmed) {
      this.o.logger.warn(
        `${result.status} from ${this.target} at ${this.url} is not an events receipt: counted as delivered, but is this the events endpoint (the middleware's path, /events by default)?`,
        { target: this.target, url: this.url, status: result.status },
      );
    } else {
      this.o.logger.info('target answers with events receipts again', { target: this.target, url: this.url });
    }
  }

  /** A delivery succeeded: the target is up; what failed during the outage is due now. */
  private async recovered(type: string): Promise<void> {
    const wasDown = this.down;
    const since = this.streakStart;
    this.streakStart = Infinity;
    this.failing.clear();
    this.down = false;
    this.downSince = undefined;
    this.probeDelayMs = 0;
    for (const [key, scope] of this.hints) if (scope === undefined || scope === type) this.hints.delete(key);
    if (wasDown) {
      await this.o.store.release(this.target, since, Date.now());
      this.o.logger.info('target back up; draining its backlog', { target: this.target });
    }
  }

  /** The payload, at debug only (enough to replay by hand; the dead letter keeps it too). */
  private logData(message: string, record: OutboxRecord): void {
    if (this.o.logger.isDebugEnabled()) {
      this.o.logger.debug(message, { eventId: record.eventId, target: record.target, data: payloadOf(record.body) });
    }
  }

  /** The target's URL and keys as the bus knows them now (a later declareEvent may change them). */
  private targetConfig(): ResolvedTarget | undefined {
    try {
      const target = this.o.resolveTarget(this.target);
      this.url = target.url;
      this.unresolved = undefined;
      return target;
    } catch (error) {
      const message = (error as Error).message;
      // Once per state change: every pump asks again, and the answer rarely changes.
      if (message !== this.unresolved) {
        this.unresolved = message;
        this.o.logger.error('cannot deliver: target is not configured; deliveries stay in the outbox', {
          target: this.target,
          error: message,
        });
      }
      return undefined;
    }
  }
}

function messageOf(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

function payloadOf(body: string): unknown {
  try {
    return (JSON.parse(body) as { data?: unknown }).data;
  } catch {
    return body;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
