import { batchVariable, redactUrl, type ResolvedTarget } from '../config.js';
import { DEFAULTS } from '../defaults.js';
import { errorMessage, levelCheck, loggablePayload } from '../logger.js';
import type { OpenSpan } from '../observe/telemetry.js';
import type { InFlight } from '../receive/in-flight.js';
import type { Delivery, DeliveryResult } from './transport.js';
import { type BatchCaps, eventsPerRequest, planRequests } from './batches.js';
import type { DispatcherOptions } from './dispatcher.js';
import { type OutboxRecord, type Settlement, whatAndWhere } from './outbox-store.js';
import { backoffMs } from './retry-policy.js';

/**
 * Failed requests in a row (with no success between), each carrying a delivery not failed
 * before, that mark a target down: one event failing again and again is that event's problem.
 */
const DOWN_AFTER_FAILURES = 3;

/**
 * One target's deliveries: at most `concurrency` requests in flight, each one event (structured
 * mode) or, when more is due than there are free requests, a batch. Every event of a batch is
 * settled on its own from the target's per-event answer, exactly as a single send would be.
 */
export class Lane {
  inFlight = 0;
  /** When the target was last counted down (undefined: it is up). */
  downSince: number | undefined;
  /** A delivery was started: the lane knows the target's state first-hand. */
  started = false;
  /** Requests whose outcomes are being written to the store (a shared store answers asynchronously). */
  settling = 0;
  /** Deliveries in the requests in flight or settling. */
  private unsettled = 0;
  private scheduled = false;
  /** The pump awaiting the store; another request to pump runs once it is done. */
  private pumping: Promise<void> | undefined;
  private pumpAgain = false;
  /**
   * Whether records may be due that no claim has taken: the last claim took all it asked for, or
   * something became due since (a kick). False: a request that ends delivered needs no pump (a
   * shared store's claim is a round trip, and everyday traffic would pay one per event for nothing).
   */
  private moreDue = true;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private down = false;
  /** Whether `target down` was logged: a lane that only assumed it (a backlog found at start) logs no recovery either. */
  private saidDown = false;
  private probing = false;
  private probeDelayMs = 0;
  /** Deliveries failed since the last success, by record id. */
  private failing = new Set<number>();
  /** Requests failed since the last success that carried a delivery not failed before. */
  private failures = 0;
  /** Wait before pumping again after the store failed (0: it works). */
  private storeRetryMs = 0;
  /** Earliest try among the failures since the last success (Infinity: none). */
  private streakStart = Infinity;
  /** The target's URL as last resolved, and as log lines name it (no query string; empty through a broker). */
  private resolvedUrl = '';
  private url = '';
  /**
   * Hints said since the state they describe began, by key: the event type they concern
   * (undefined: the whole target), what to say when it is over, and whether a delivery carried it.
   */
  private readonly hints = new Map<string, { type: string | undefined; over: string | undefined; delivered: boolean }>();
  /** Why the target could not be resolved, as last logged (undefined: it resolves). */
  private unresolved: string | undefined;
  /** The target answered a batch as a peer that does not read them: one event per request from now on. */
  private batchesRefused = false;
  /** The target refused a batch this large as too large: its batches stay under half of it (undefined: batch.maxBytes). */
  private batchBytes: number | undefined;
  /** Average body size of what was last claimed, to claim about what the free requests can carry. */
  private averageBytes = 0;
  /** With `batch.lingerMs`: when the wait for more events ends (undefined: not waiting). */
  private lingerUntil: number | undefined;

  constructor(
    private readonly target: string,
    private readonly o: DispatcherOptions,
    private readonly stopping: () => boolean,
    /** Each request from its start until its outcome is recorded: the dispatcher's stop() awaits them. */
    private readonly work: InFlight,
  ) {}

  /** Pumps on the next turn of the event loop; many kicks in one turn pump once. */
  kick(): void {
    this.moreDue = true;
    if (this.scheduled || this.stopping()) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.pump();
    });
  }

  /**
   * Starts by probing, with every failed delivery in the store counted in the outage. The target
   * is not counted down (emits keep their backpressure, health its state) until a probe fails.
   */
  assumeDown(): void {
    this.down = true;
    this.probeDelayMs = 0;
    this.streakStart = 0;
  }

  /** Pumps now, without waiting out a linger (shutdown sends what is due). */
  flush(): Promise<void> {
    this.lingerUntil = -Infinity;
    return this.pump();
  }

  /** Claims and starts the due deliveries now (a kick does this on the next turn of the event loop); resolves once they are started. */
  pump(): Promise<void> {
    if (this.stopping()) return Promise.resolve();
    // One pump at a time: two claiming at once would exceed the concurrency.
    if (this.pumping) {
      this.pumpAgain = true;
      return this.pumping;
    }
    this.pumping = (async () => {
      try {
        do {
          this.pumpAgain = false;
          await this.pumpOnce();
        } while (this.pumpAgain && !this.stopping());
      } finally {
        this.pumping = undefined;
      }
    })();
    return this.pumping;
  }

  private async pumpOnce(): Promise<void> {
    const target = this.targetConfig();
    if (!target) return;
    if (this.down) {
      if (!this.probing && this.timer === undefined) this.schedule(Date.now() + this.probeDelayMs, true);
      return;
    }
    const batching = this.batching(target);
    // Outcomes still being written count too: a shared store counts their claims until then.
    const free = this.o.concurrency - this.inFlight - this.settling;
    if (free > 0 && batching && this.lingering()) return;
    let next: number | undefined;
    try {
      if (free > 0) {
        // Only what the free requests can carry: a record claimed and not sent would be handed back.
        const perRequest = batching ? eventsPerRequest(this.caps(), this.averageBytes) : 1;
        const limit = free * perRequest;
        this.moreDue = false;
        const claimed = await this.o.store.claim(this.target, Date.now(), limit);
        if (claimed.length >= limit) this.moreDue = true;
        // Started before the next read, so that they count in flight.
        if (claimed.length > 0) await this.start(target, claimed, free, batching);
        if (claimed.length < limit) this.o.progress?.idle(this.target, this.unsettled);
      }
      // A full lane is pumped again as each request ends: no need to know when the next is due.
      // Then the next request to end pumps even if it was all delivered (a failure rescheduled
      // before this pump, due later, would otherwise wait for an emit to kick the lane).
      if (this.inFlight < this.o.concurrency) next = await this.o.store.nextDueAt(this.target);
      else this.moreDue = true;
      this.storeRetryMs = 0;
    } catch (error) {
      this.storeFailed(error);
    }
    if (next !== undefined && this.inFlight < this.o.concurrency && !this.down) this.schedule(next, false);
  }

  /** Batches go to this target: the transport sends them, the target takes them, and no answer said otherwise. */
  private batching(target: ResolvedTarget): boolean {
    return target.batch && !this.batchesRefused && this.o.batch !== undefined && this.o.transport.sendBatch !== undefined;
  }

  /** The batch caps for this target: batch.maxBytes, or less after a batch refused as too large. */
  private caps(): BatchCaps {
    const { maxEvents, maxBytes } = this.o.batch!;
    return this.batchBytes === undefined ? { maxEvents, maxBytes } : { maxEvents, maxBytes: Math.min(maxBytes, this.batchBytes) };
  }

  /** With `batch.lingerMs`: true while the lane waits for more events before claiming (a timer pumps at the end). */
  private lingering(): boolean {
    const lingerMs = this.o.batch?.lingerMs ?? 0;
    if (lingerMs <= 0) return false;
    const now = Date.now();
    this.lingerUntil ??= now + lingerMs;
    if (now < this.lingerUntil) {
      this.schedule(this.lingerUntil, false);
      return true;
    }
    this.lingerUntil = undefined;
    return false;
  }

  /** Sends what was claimed: one per free request while it fits, else in batches (src/send/batches.ts). */
  private async start(target: ResolvedTarget, claimed: OutboxRecord[], free: number, batching: boolean): Promise<void> {
    if (!batching || claimed.length <= free) {
      for (const record of claimed) void this.work.track(this.request(target, [record], false));
      return;
    }
    const sizes = claimed.map((record) => Buffer.byteLength(record.body));
    let total = 0;
    for (const size of sizes) total += size;
    this.averageBytes = total / sizes.length;
    // With requests in flight, or a full batch due, what is due goes in as few requests as carry it.
    const caps = this.caps();
    const { requests, overflow } = planRequests(claimed, free, caps, sizes, this.inFlight > 0 || claimed.length >= caps.maxEvents);
    for (const records of requests) void this.work.track(this.request(target, records, false));
    // Larger than the last claim suggested: back to the store as they were (no attempt charged), due as before.
    if (overflow.length > 0) {
      this.moreDue = true;
      await this.o.store.settleMany(overflow.map((record) => ({ kind: 'reschedule', record, nextAttemptAt: record.nextAttemptAt })));
    }
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
      error: errorMessage(error),
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
      if (probe) void this.probe();
      else void this.pump();
    }, Math.max(0, at - Date.now()));
  }

  /** Cancels the pump or probe scheduled (the dispatcher stopping halts every lane with it). */
  clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private async probe(): Promise<void> {
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
    // A probe is one event in structured mode: it asks whether the target is back, nothing more.
    void this.work.track(this.request(target, [record], true)).finally(() => {
      this.probing = false;
      this.kick();
    });
  }

  /** One request (in `work` until its outcome is recorded): `records` alone or as a batch; then each record settled from its own result. */
  private async request(target: ResolvedTarget, records: OutboxRecord[], probe: boolean): Promise<void> {
    this.inFlight += 1;
    this.unsettled += records.length;
    this.started = true;
    this.o.dispatched?.(records);
    const startedAt = Date.now();
    const results = await this.send(target, records);
    this.inFlight -= 1;
    this.settling += 1;
    // All delivered and nothing left due: the freed request has nothing to take (an emit kicks).
    let quiet = !this.moreDue && results.every((result) => result.outcome === 'delivered');
    try {
      await this.settle(records, results, probe, startedAt);
    } catch (error) {
      quiet = false;
      // The store is gone (closed at shutdown) or unreachable: the records stay in it as they were
      // (leased: a shared store hands them out again once the lease ends).
      this.o.logger.error('could not record a delivery outcome', {
        eventId: records[0]!.eventId,
        ...(records.length > 1 && { eventIds: records.map((record) => record.eventId) }),
        target: this.target,
        error: errorMessage(error),
      });
    } finally {
      this.settling -= 1;
      this.unsettled -= records.length;
    }
    if (!quiet || this.moreDue) this.kick();
  }

  /** One request (one record: a single send, else a batch); one result per record, in order, whatever the transport answers. */
  private async send(target: ResolvedTarget, records: OutboxRecord[]): Promise<DeliveryResult[]> {
    const spans = records.map((record) => this.o.telemetry.send(record));
    const deliveries = records.map((record, i) => this.delivery(target, record, spans[i]));
    let results: DeliveryResult[];
    try {
      results = deliveries.length === 1 ? [await this.o.transport.send(deliveries[0]!)] : await this.o.transport.sendBatch!(deliveries);
    } catch (error) {
      // A transport that threw (it should answer instead): a failed try to retry, not a crash.
      const result: DeliveryResult = { outcome: 'retry', error: errorMessage(error), attempts: 1 };
      results = records.map(() => result);
    }
    if (results.length !== records.length) {
      // A transport breaking its contract: retried, never taken as delivered.
      const error = `the transport answered ${results.length} results for a batch of ${records.length}`;
      results = records.map((_, i) => results[i] ?? { outcome: 'retry', error, attempts: 1 });
    }
    for (let i = 0; i < records.length; i++) this.o.telemetry.sent(spans[i], results[i]!);
    return results;
  }

  private delivery(target: ResolvedTarget, record: OutboxRecord, span: OpenSpan | undefined): Delivery {
    return {
      eventId: record.eventId,
      type: record.type,
      source: record.source,
      target,
      body: record.body,
      previousAttempts: record.attempts,
      traceparent: span ? span.traceparent : record.traceparent,
      tracestate: span ? span.tracestate : record.tracestate,
    };
  }

  /**
   * Settles each record from its own result, in one store call where the store takes many. The
   * target's state moves once per request: any event delivered means the target is up; a
   * request whose every event failed is one failure, however many events it carried.
   */
  private async settle(records: OutboxRecord[], results: DeliveryResult[], probe: boolean, startedAt: number): Promise<void> {
    const { redelivery } = this.o;
    const now = Date.now();
    const settlements: Settlement[] = [];
    let delivered = 0;
    let refused = 0;
    let unsupported = 0;
    let firstFailure = -1;
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      const result = results[i]!;
      if (result.batchUnsupported) {
        // Not processed: sent again at once on its own, with no attempt charged.
        settlements.push({ kind: 'reschedule', record, nextAttemptAt: now });
        unsupported += 1;
        continue;
      }
      record.attempts += result.attempts;
      if (result.outcome === 'delivered') {
        // Leaves the outbox: its last try's status and error are recorded for nothing.
        settlements.push({ kind: 'complete', record });
        delivered += 1;
        continue;
      }
      record.lastAttemptAt = startedAt;
      record.lastStatus = result.status;
      record.lastError = result.error;
      if (result.outcome === 'refused') {
        settlements.push({ kind: 'kill', record, reason: 'refused' });
        refused += 1;
      } else {
        if (firstFailure < 0) firstFailure = i;
        const elapsed = now - record.createdAt;
        const wait = Math.max(backoffMs(1, Math.max(redelivery.baseDelayMs, elapsed), redelivery.maxDelayMs), result.retryAfterMs ?? 0);
        settlements.push(
          elapsed + wait > redelivery.horizonMs
            ? { kind: 'kill', record, reason: 'expired' }
            : { kind: 'reschedule', record, nextAttemptAt: now + wait },
        );
      }
    }
    // Before the write: a pump running meanwhile must not batch the returned events again.
    if (unsupported > 0) this.refuseBatches(records, results);
    const up = delivered > 0 || (refused > 0 && this.down);
    if (!up && firstFailure >= 0) {
      this.explainFailures(records, results);
      await this.failed(records, results, firstFailure, probe);
    }
    await this.o.store.settleMany(settlements);
    if (up) {
      await this.recovered(records, results);
      this.explainFailures(records, results);
    }
    const enabled = levelCheck(this.o.logger);
    for (let i = 0; i < records.length; i++) this.report(records[i]!, results[i]!, settlements[i]!, startedAt, enabled);
    if (this.o.progress) {
      for (let i = 0; i < records.length; i++) {
        const result = results[i]!;
        if (!result.batchUnsupported) this.o.progress.settled(records[i]!, records[i]!.attempts === result.attempts);
      }
    }
  }

  /**
   * Telemetry and the log line of one settled record, at the levels of a single send; nothing is
   * built for a level that is off (`enabled`: the logger's levels, read once for the batch).
   */
  private report(record: OutboxRecord, result: DeliveryResult, settlement: Settlement, startedAt: number, enabled: (level: string) => boolean): void {
    const { logger, telemetry } = this.o;
    if (result.batchUnsupported) return;
    if (settlement.kind === 'complete') {
      telemetry.delivered(record, result);
      if (enabled('info')) {
        logger.info('event delivered', { ...fields(record, result), durationMs: Date.now() - startedAt });
      }
      return;
    }
    if (settlement.kind === 'kill') {
      telemetry.deadLettered(record, settlement.reason);
      if (enabled('error')) {
        const message =
          settlement.reason === 'refused' ? 'delivery refused; dead-lettered' : 'delivery expired after its redelivery horizon; dead-lettered';
        logger.error(message, { ...fields(record, result), ...this.where(), error: result.error });
      }
      // The payload, at debug only (enough to replay by hand; the dead letter keeps it too).
      if (enabled('debug')) logger.debug('dead letter data', { eventId: record.eventId, target: record.target, data: loggablePayload(payloadOf(record.body)) });
      return;
    }
    telemetry.retried(record);
    // The first failure of a delivery is worth a warning; its later retries are attempts (debug).
    const level = record.attempts === result.attempts ? 'warn' : 'debug';
    if (enabled(level)) {
      logger.log(level, 'delivery failed; will redeliver', {
        ...fields(record, result),
        ...this.where(),
        error: result.error,
        nextAttemptAt: new Date(settlement.nextAttemptAt).toISOString(),
      });
    }
  }

  /** A request failed as a whole (no event delivered): one failure of the target, whatever the batch's size. */
  private async failed(records: OutboxRecord[], results: DeliveryResult[], first: number, probe: boolean): Promise<void> {
    const record = records[first]!;
    let result = results[first]!;
    let retryAfter = 0;
    for (const r of results) {
      if (r.outcome !== 'retry' || r.batchUnsupported) continue;
      retryAfter = Math.max(retryAfter, r.retryAfterMs ?? 0);
      if (r.targetDown && !result.targetDown) result = r;
    }
    // The streak starts at the earliest failed try, not the first to fail: a slow try (a timeout)
    // started before a fast failure must be released with the rest when the target comes back.
    this.streakStart = Math.min(this.streakStart, record.lastAttemptAt ?? Date.now());
    const known = this.failing.size;
    for (let i = 0; i < records.length; i++) {
      if (results[i]!.outcome === 'retry' && !results[i]!.batchUnsupported) this.failing.add(records[i]!.id);
    }
    if (this.failing.size > known) this.failures += 1;
    if (probe) {
      this.downSince ??= Date.now();
      this.probeDelayMs = Math.max(
        retryAfter,
        Math.min(this.o.redelivery.probeMaxDelayMs, Math.max(250, this.probeDelayMs * 2)),
      );
      return;
    }
    if (!this.down && (result.targetDown || this.failures >= DOWN_AFTER_FAILURES)) {
      this.down = true;
      this.downSince = Date.now();
      this.probeDelayMs = Math.max(retryAfter, 500);
      this.clearTimer();
      this.saidDown = true;
      this.o.logger.warn('target down; probing before sending more', { target: this.target, ...this.where(), status: result.status, error: result.error });
      try {
        await this.o.store.markDown?.(this.target);
      } catch (error) {
        this.o.logger.debug('could not share that the target is down', { target: this.target, error: errorMessage(error) });
      }
    }
  }

  /** The likely cause of each failure an operator can fix (the transport's hint): once per state change, not per event. */
  private explainFailures(records: OutboxRecord[], results: DeliveryResult[]): void {
    for (let i = 0; i < records.length; i++) {
      const result = results[i]!;
      if (result.outcome === 'retry' && !result.batchUnsupported) this.explain(result, records[i]!.type);
    }
  }

  private explain(result: DeliveryResult, type: string): void {
    const { hint } = result;
    if (!hint || this.hints.has(hint.key)) return;
    this.hints.set(hint.key, { type: hint.scope === 'type' ? type : undefined, over: hint.over, delivered: result.outcome === 'delivered' });
    this.o.logger.warn(hint.message, { target: this.target, url: this.url, status: result.status, type });
  }

  /** The target answered: it is up; what failed during the outage is due now; hints of what was delivered are over. */
  private async recovered(records: OutboxRecord[], results: DeliveryResult[]): Promise<void> {
    const wasDown = this.down;
    const since = this.streakStart;
    this.streakStart = Infinity;
    this.failing.clear();
    this.failures = 0;
    this.down = false;
    this.downSince = undefined;
    this.probeDelayMs = 0;
    for (let i = 0; i < records.length; i++) {
      const result = results[i]!;
      const { type } = records[i]!;
      if (result.outcome === 'delivered') {
        this.forgetHints(type, result.hint?.key, true);
        this.explain(result, type);
      } else if (result.outcome === 'refused' && wasDown) {
        // A refusal tells that the target is back only when it was down (as for a single send).
        this.forgetHints(type, undefined, false);
      }
    }
    if (wasDown) {
      this.moreDue = true; // what failed in the outage is due now
      await this.o.store.release(this.target, since, Date.now());
      if (this.saidDown) this.o.logger.info('target back up; draining its backlog', { target: this.target });
      this.saidDown = false;
    }
  }

  /**
   * What was delivered of `type` ends the hints about it and about the whole target, except the
   * one it came with; a refusal (`delivered` false) ends only those of failures.
   */
  private forgetHints(type: string, keep: string | undefined, delivered: boolean): void {
    for (const [key, said] of this.hints) {
      if (key === keep || (said.type !== undefined && said.type !== type) || (said.delivered && !delivered)) continue;
      this.hints.delete(key);
      if (said.over !== undefined) this.o.logger.info(said.over, { target: this.target, url: this.url });
    }
  }

  /**
   * Batches refused as such (the peer does not read them): one event per request from now on,
   * said once. A batch refused as too large: its batches stay under half that size from now on
   * (an event larger than that goes alone).
   */
  private refuseBatches(records: OutboxRecord[], results: DeliveryResult[]): void {
    if (this.batchesRefused) return;
    if (records.length > 1 && results.every((result) => !result.batchUnsupported || result.batchTooLarge !== undefined)) {
      const { batchTooLarge: bytes = 0, status } = results.find((result) => result.batchTooLarge !== undefined) ?? {};
      const limit = Math.floor(bytes / 2);
      if (this.batchBytes === undefined || limit < this.batchBytes) {
        this.batchBytes = limit;
        const why = status === undefined ? '' : ` (${status})`;
        this.o.logger.warn(`${this.target} refused a batch of ${bytes} bytes as too large${why}; sending batches of at most ${limit} bytes`, {
          target: this.target,
          url: this.url,
          status,
        });
      }
      return;
    }
    this.batchesRefused = true;
    const status = results.find((result) => result.batchUnsupported)?.status;
    this.o.logger.warn(
      `${this.target} does not accept CloudEvents batches; sending one event per request — set services.${this.target}.batch=false (or ${batchVariable(this.target)}=false) to skip the probe`,
      { target: this.target, url: this.url, status },
    );
  }

  /** The target's URL for a failure's log line (none through a broker). */
  private where(): { url?: string } {
    return this.url ? { url: this.url } : {};
  }

  /** The target's URL and keys as the bus knows them now (a later declareEvent may change them). */
  private targetConfig(): ResolvedTarget | undefined {
    try {
      const target = this.o.resolveTarget(this.target);
      if (target.url !== this.resolvedUrl) {
        this.resolvedUrl = target.url;
        this.url = target.url && redactUrl(target.url);
      }
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

/** The fields of a delivery's log lines. */
function fields(record: OutboxRecord, result: DeliveryResult) {
  return { ...whatAndWhere(record), attempt: record.attempts, status: result.status };
}

function payloadOf(body: string): unknown {
  try {
    return (JSON.parse(body) as { data?: unknown }).data;
  } catch {
    return body;
  }
}
