import type { BatchOptions, ResolvedConfig, ResolvedTarget } from '../config.js';
import type { Telemetry } from '../observe/telemetry.js';
import { errorMessage } from '../logger.js';
import { InFlight } from '../receive/in-flight.js';
import type { Transport } from './transport.js';
import { Lane } from './lane.js';
import type { OutboxRecord, OutboxStore } from './outbox-store.js';

/** The configuration's logger, `concurrency` (requests in flight per target) and `redelivery`, and what the dispatcher works with. */
export interface DispatcherOptions extends Pick<ResolvedConfig, 'logger' | 'concurrency' | 'redelivery'> {
  store: OutboxStore;
  transport: Transport;
  /** Finds a target's current URL and keys by name, cheaply: called on every pump. Throws ConfigError when it cannot. */
  resolveTarget: (name: string) => ResolvedTarget;
  telemetry: Telemetry;
  /**
   * Caps of batched delivery (ResolvedConfig's `batch`): used for a target whose `batch` is true
   * when the transport has `sendBatch`. Without it, one event per request.
   */
  batch?: Omit<Required<BatchOptions>, 'enabled'>;
  /**
   * Told of the lanes' progress (the emit path's backpressure): `settled` once per delivery whose
   * outcome was recorded (delivered, dead-lettered or rescheduled; `firstAttempt`: it had not been
   * tried before), not for those handed back untried; `idle` when a lane found nothing more due,
   * with how many deliveries it still has in flight or settling.
   */
  progress?: {
    settled(record: OutboxRecord, firstAttempt: boolean): void;
    idle(target: string, unsettled: number): void;
  };
  /** Told of the deliveries each request carries as it starts (`emit(…, { tx })` says `event emitted` then). */
  dispatched?: (records: readonly OutboxRecord[]) => void;
}

/**
 * Delivers from the outbox. One lane per target (src/send/lane.ts), each with its own concurrency
 * of requests, so one slow or dead target never delays another. Deliveries that queued up while
 * the requests were in flight go out together, as batches, to a target that takes them. A failed
 * delivery waits in the outbox (exponential backoff with jitter, `Retry-After` honoured) until its
 * horizon, then becomes a dead letter. A target that is down is probed with one delivery at a
 * time; when it answers, every delivery that failed during the outage is due at once, so the
 * backlog drains at full speed.
 */
export class Dispatcher {
  private readonly lanes = new Map<string, Lane>();
  /** Requests in flight or settling, in every lane. */
  private readonly work = new InFlight();
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
    this.resuming = true;
    this.options.store
      .targets()
      .then(
        (targets) => this.resumeTargets(targets),
        // Runs from a timer: a store that cannot be read now (it logs why) is tried at the next poll.
        (error: unknown) => this.options.logger.debug('outbox not readable; resume retried at the next poll', { error: errorMessage(error) }),
      )
      .finally(() => (this.resuming = false));
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

  /** Stops claiming; resolves when every request in flight has its outcome recorded, or at `deadline` (ms since epoch). */
  async stop(deadline: number): Promise<void> {
    // Start what is due now (an emit just before close() has only been kicked for the next turn),
    // so that it is in flight and waited for below rather than left undelivered; a pump already
    // running finishes its pass, and none starts after it.
    const flushing = Promise.all([...this.lanes.values()].map((lane) => lane.flush()));
    this.stopping = true;
    // A claim from a store that does not answer is not waited for past the deadline.
    const claiming = new InFlight();
    claiming.track(flushing).catch(() => undefined);
    await claiming.settled(deadline);
    for (const lane of this.lanes.values()) lane.clearTimer();
    // A probe that was claiming when the lanes stopped may start one more request: awaited too.
    await this.work.settled(deadline);
  }

  /**
   * Starts what is due now in every lane that is up (no linger), and again once those requests
   * end, until a round starts nothing; resolves when every request has its outcome recorded (and
   * written, by a store that groups its writes: `flushSettles`), or at `deadline` (ms since epoch).
   */
  async flush(deadline: number): Promise<void> {
    while (!this.stopping) {
      await Promise.all([...this.lanes.values()].map((lane) => (lane.downSince === undefined ? lane.flush() : undefined)));
      const started = this.inFlight() > 0;
      await this.work.settled(deadline);
      if (!started || Date.now() >= deadline) break;
    }
    // Outcomes a store accepted and writes a little later (PostgreSQL's delivered rows): written now.
    const writing = new InFlight();
    const written = this.options.store.flushSettles?.();
    if (written) writing.track(written).catch(() => undefined);
    await writing.settled(deadline);
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
      lane = new Lane(target, this.options, () => this.stopping, this.work);
      this.lanes.set(target, lane);
    }
    return lane;
  }
}

