/**
 * Admission control on the emit path (backpressure), per target, in the spirit of a Node stream's
 * `highWaterMark` and `'drain'`. A target's backlog is what this process emitted to it and the
 * dispatcher has not tried yet: deliveries recorded (or being recorded), minus those whose first
 * attempt has settled. When it is above `highWaterMark` and the target is up, `emit` waits (its
 * event already recorded) until it falls to the low-water mark, half the high one. The wait is a
 * promise that only the dispatcher's progress resolves, so waiting emitters leave the event loop
 * to it: without this, a tight emit loop never yields (in-memory outbox: `add` resolves in
 * microtasks) or fills every turn with group commits (SQLite), and delivery starves.
 *
 * A target that is down never makes emit wait: the outbox exists to hold that backlog (and
 * `maxPending` bounds it). Retries are not counted: a delivery waiting for its redelivery is the
 * outbox's, not the lane's, work. The count only drifts low (deliveries settled that another run
 * or instance recorded, reset when the lane finds nothing more due), so a wait always ends.
 */
export class Admission {
  private readonly lowWaterMark: number;
  private readonly backlogs = new Map<string, number>();
  /** Emits waiting, per target: each resolves once the target's backlog is at the low-water mark or the target is down. */
  private readonly waiting = new Map<string, (() => void)[]>();
  private closed = false;

  /**
   * @param highWaterMark deliveries per target (0: never wait).
   * @param isDown whether the dispatcher counts `target` down now (probing it, not delivering).
   */
  constructor(
    private readonly highWaterMark: number,
    private readonly isDown: (target: string) => boolean,
  ) {
    this.lowWaterMark = Math.floor(highWaterMark / 2);
  }

  /**
   * Counts one delivery per target, once recorded: then the lane can claim it, so when the lane
   * finds nothing due, every delivery counted is in flight (see `idle`). Its outcome cannot
   * settle before this: `add` resolves in the microtasks of its write, a delivery takes a round trip.
   */
  added(targets: readonly string[]): void {
    if (this.highWaterMark === 0) return;
    for (const target of targets) this.backlogs.set(target, (this.backlogs.get(target) ?? 0) + 1);
  }

  /**
   * Resolves once every one of `targets` that is up has its backlog at or below the low-water
   * mark; undefined (nothing to wait for, no promise made) when none is above the high one.
   */
  admit(targets: readonly string[]): Promise<void> | undefined {
    if (this.highWaterMark === 0 || this.closed) return undefined;
    let waits: Promise<void>[] | undefined;
    for (const target of targets) {
      if ((this.backlogs.get(target) ?? 0) <= this.highWaterMark || this.isDown(target)) continue;
      const queue = this.waiting.get(target) ?? [];
      this.waiting.set(target, queue);
      (waits ??= []).push(new Promise<void>((resolve) => queue.push(resolve)));
    }
    if (waits === undefined) return undefined;
    return waits.length === 1 ? waits[0] : Promise.all(waits).then(() => undefined);
  }

  /** A delivery of `target` settled (delivered, refused, rescheduled); only a first attempt lowers the backlog. */
  settled(target: string, firstAttempt: boolean): void {
    const backlog = this.backlogs.get(target);
    if (backlog === undefined) return;
    this.lower(target, firstAttempt ? backlog - 1 : backlog);
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

  private lower(target: string, backlog: number): void {
    this.backlogs.set(target, Math.max(0, backlog));
    if (!this.waiting.has(target)) return;
    if (backlog <= this.lowWaterMark || this.isDown(target)) this.release(target);
  }

  private release(target: string): void {
    const queue = this.waiting.get(target);
    this.waiting.delete(target);
    for (const resolve of queue ?? []) resolve();
  }
}
