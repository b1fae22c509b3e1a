import type { Logger } from 'winston';
import type { ResolvedConfig } from '../config.js';
import type { OutboxRecord } from './outbox-store.js';

/** The outbox's `highWaterMark` and `maxBlockMs` (see OutboxOptions), and what admission works with. */
export interface AdmissionOptions extends Pick<ResolvedConfig['outbox'], 'highWaterMark' | 'maxBlockMs'> {
  /** Whether the dispatcher counts `target` down now (probing it, not delivering). */
  isDown: (target: string) => boolean;
  logger: Logger;
}

/** Emits waiting on one target, released together. */
interface Waiting {
  resolvers: (() => void)[];
  timer: NodeJS.Timeout;
}

/**
 * Admission control on the emit path (backpressure), per target, in the spirit of a Node stream's
 * `highWaterMark` and `'drain'`. A target's backlog is what this process emitted to it and the
 * dispatcher has not tried yet: deliveries recorded, minus those whose first attempt has settled.
 * When it is above `highWaterMark` and the target is up, `emit` waits (its event already
 * recorded) until it falls to the low-water mark, half the high one, or for `maxBlockMs` at most.
 * The wait is a promise that the dispatcher's progress resolves, so waiting emitters leave the
 * event loop to it: without this, a tight emit loop never yields (in-memory outbox: `add`
 * resolves in microtasks) or fills every turn with group commits (SQLite), and delivery starves.
 *
 * A target that is down never makes emit wait: the outbox exists to hold that backlog (and
 * `maxPending` bounds it). A delivery counts until its first attempt settles: one waiting for its
 * redelivery is the outbox's work, not the lane's; records a previous run left never count. With
 * a store shared by several instances (PostgreSQL) the count is approximate, as a record one
 * instance emitted may settle in another: the lane finding nothing due corrects it, and
 * `maxBlockMs` bounds every wait.
 */
export class Admission {
  private readonly lowWaterMark: number;
  private readonly backlogs = new Map<string, number>();
  private readonly waiting = new Map<string, Waiting>();
  /** Targets whose emits waited `maxBlockMs` in vain, as last logged (cleared once the backlog is at the low-water mark). */
  private readonly stalled = new Set<string>();
  private closed = false;
  /** Records created before this (by a previous run) were not counted here. */
  private readonly startedAt = Date.now();

  constructor(private readonly o: AdmissionOptions) {
    this.lowWaterMark = Math.floor(o.highWaterMark / 2);
  }

  /**
   * Counts one delivery per target, once recorded: then the lane can claim it, so when the lane
   * finds nothing due, every delivery counted is in flight (see `idle`). Its outcome cannot
   * settle before this: `add` resolves in the microtasks of its write, a delivery takes a round trip.
   */
  added(targets: readonly string[]): void {
    if (this.o.highWaterMark === 0) return;
    for (const target of targets) this.backlogs.set(target, (this.backlogs.get(target) ?? 0) + 1);
  }

  /**
   * Resolves once every one of `targets` that is up has its backlog at or below the low-water
   * mark; undefined (nothing to wait for, no promise made) when none is above the high one.
   */
  admit(targets: readonly string[]): Promise<void> | undefined {
    if (this.o.highWaterMark === 0 || this.closed) return undefined;
    let waits: Promise<void>[] | undefined;
    for (const target of targets) {
      if ((this.backlogs.get(target) ?? 0) <= this.o.highWaterMark || this.o.isDown(target)) continue;
      const waiting = this.waiting.get(target) ?? this.startWaiting(target);
      (waits ??= []).push(new Promise<void>((resolve) => waiting.resolvers.push(resolve)));
    }
    if (waits === undefined) return undefined;
    return waits.length === 1 ? waits[0] : Promise.all(waits).then(() => undefined);
  }

  /**
   * A delivery settled (delivered, refused, rescheduled). Only the first attempt of one emitted
   * since this bus started lowers the backlog: a retry, or a record a previous run left, was never counted.
   */
  settled(record: OutboxRecord, firstAttempt: boolean): void {
    const backlog = this.backlogs.get(record.target);
    if (backlog === undefined) return;
    this.lower(record.target, firstAttempt && record.createdAt >= this.startedAt ? backlog - 1 : backlog);
  }

  /** The lane found nothing more due for `target`: its backlog is at most what it still has in flight. */
  idle(target: string, unsettled: number): void {
    const backlog = this.backlogs.get(target);
    if (backlog !== undefined) this.lower(target, Math.min(backlog, unsettled));
  }

  /** The bus is closing: every waiting emit resolves now (its event is recorded), and none waits from now on. */
  close(): void {
    this.closed = true;
    for (const target of [...this.waiting.keys()]) this.release(target);
  }

  private startWaiting(target: string): Waiting {
    const waiting: Waiting = {
      resolvers: [],
      timer: setTimeout(() => this.blockedTooLong(target), this.o.maxBlockMs),
    };
    this.waiting.set(target, waiting);
    return waiting;
  }

  /**
   * Emits waited `maxBlockMs` for a target that neither drained nor failed: it hangs (each try
   * ends at `timeoutMs`), answers very slowly, or came back with a large backlog. They resolve.
   */
  private blockedTooLong(target: string): void {
    if (!this.stalled.has(target)) {
      this.stalled.add(target);
      this.o.logger.warn("emit waited outbox.maxBlockMs for a target's backlog to drain; until it does, emits to it resolve after that wait", {
        target,
        backlog: this.backlogs.get(target),
        highWaterMark: this.o.highWaterMark,
        maxBlockMs: this.o.maxBlockMs,
      });
    }
    this.release(target);
  }

  private lower(target: string, backlog: number): void {
    this.backlogs.set(target, Math.max(0, backlog));
    if (backlog <= this.lowWaterMark && this.stalled.delete(target)) {
      this.o.logger.info('target backlog drained; emits to it no longer wait outbox.maxBlockMs', { target });
    }
    if (this.waiting.has(target) && (backlog <= this.lowWaterMark || this.o.isDown(target))) this.release(target);
  }

  private release(target: string): void {
    const waiting = this.waiting.get(target);
    if (!waiting) return;
    this.waiting.delete(target);
    clearTimeout(waiting.timer);
    for (const resolve of waiting.resolvers) resolve();
  }
}
