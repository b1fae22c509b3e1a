import { DEFAULTS } from '../../defaults.js';

export interface SettleGroupsOptions {
  /** Deletes the delivered rows `ids`, in one statement. */
  write(ids: readonly number[]): Promise<void>;
  /** A group is written once it holds this many ids, or this long after its first. */
  maxIds: number;
  maxWaitMs: number;
  /**
   * After each write of a group: no `failure` when its rows are deleted; else why, and `retryInMs`
   * when its ids go into a later group (they stay leased here meanwhile), undefined when they are
   * left to their leases.
   */
  after(ids: readonly number[], failure?: { error: unknown; retryInMs: number | undefined }): void;
  /** Whether a failed write is tried again (the database could not be reached) rather than left to the leases. */
  retries(error: unknown): boolean;
}

/** A delivered row waiting for its DELETE: its id and its target. */
export type Delivered = readonly [id: number, target: string];

interface Group {
  entries: Delivered[];
  /** Ids per target. */
  targets: Map<string, number>;
  timer: NodeJS.Timeout;
  /** Statements that counted this group's rows as not live (see `counting`): its DELETE waits for them. */
  readers: Promise<unknown>[];
}

/**
 * The PostgreSQL outbox's delivered rows on their way out of the table, deleted in groups (one
 * `DELETE … WHERE id = ANY(…)` per group) rather than one statement per request: a group is
 * written once it holds `maxIds` ids or `maxWaitMs` after its first, whichever comes first; while
 * one group's DELETE is in flight the next one gathers.
 *
 * Until its DELETE, a row stays leased to this instance (the outbox keeps renewing it), so no
 * claim takes it; but a lease is what the targets' caps count (`events_claim`, `events_add`). So a
 * statement that counts the leases of a target (`counting`) first waits for the DELETEs in flight
 * that hold rows of that target, and is given how many rows of it the open group holds, to add to
 * the cap: the open group is not written until that statement is answered, so its rows are still
 * there, leased, when it counts them.
 */
export class SettleGroups {
  private open: Group | undefined;
  /** Groups sealed and being written (waiting for their readers, then their DELETE), each with its write, which never rejects. */
  private readonly writing = new Map<Group, Promise<void>>();
  /** Wait before a failed group is tried again (0: the last write succeeded). */
  private retryMs = 0;
  private stopped = false;

  constructor(private readonly o: SettleGroupsOptions) {}

  /**
   * Rows delivered: they join the open group, written `maxWaitMs` after its first row or once it
   * holds `maxIds`. While a failed group waits for its retry (`retryInMs`), only time writes it.
   */
  queue(entries: readonly Delivered[], retryInMs?: number): void {
    if (entries.length === 0) return;
    const group = (this.open ??= this.openGroup(retryInMs));
    for (const entry of entries) {
      group.entries.push(entry);
      group.targets.set(entry[1], (group.targets.get(entry[1]) ?? 0) + 1);
    }
    if (group.entries.length >= this.o.maxIds && this.retryMs === 0) void this.write(group).catch(() => undefined);
  }

  /**
   * Runs `send` with the open group's ids (none when there is none) in place of the group's DELETE
   * (a statement that deletes them along with other writes). Rejects as `send` does; the group's
   * rows are then retried or left to their leases as a failed group's are.
   */
  carry(send: (ids: readonly number[]) => Promise<void>): Promise<void> {
    return this.open === undefined ? send([]) : this.write(this.open, send);
  }

  /**
   * Runs `read`, a statement that counts the live leases of `targets`, once the DELETEs in flight
   * that hold rows of those targets are done, with `extra(target)`: the open group's rows of that
   * target, leased and counted by the database, not in flight any more. `exact` (a statement whose
   * cap the database sets, so that `extra` cannot correct it: a probe, a target down): the open
   * group is written first, when it holds rows of those targets.
   */
  async counting<T>(targets: readonly string[], exact: boolean, read: (extra: (target: string) => number) => Promise<T>): Promise<T> {
    const holds = (group: Group) => targets.some((target) => group.targets.has(target));
    if (exact && this.open !== undefined && holds(this.open)) void this.write(this.open).catch(() => undefined);
    // Once: a group sealed meanwhile is counted as live (fewer leases granted, never more).
    const inFlight = [...this.writing].filter(([group]) => holds(group)).map(([, written]) => written);
    if (inFlight.length > 0) await Promise.all(inFlight);
    const group = this.open;
    if (group === undefined || !holds(group)) return read(() => 0);
    const reading = read((target) => group.targets.get(target) ?? 0);
    group.readers.push(reading.catch(() => undefined));
    return reading;
  }

  /** Writes the open group now; resolves once it and every group being written are done (never rejects). */
  async flush(): Promise<void> {
    if (this.open !== undefined) void this.write(this.open).catch(() => undefined);
    await Promise.all(this.writing.values());
  }

  /** No more retries (the outbox closes): a group that fails from now on is left to its leases. */
  stop(): void {
    this.stopped = true;
  }

  get stopping(): boolean {
    return this.stopped;
  }

  private openGroup(retryInMs: number | undefined): Group {
    const write = () => void this.write(group).catch(() => undefined);
    const group: Group = { entries: [], targets: new Map(), readers: [], timer: setTimeout(write, retryInMs ?? this.o.maxWaitMs) };
    // A retry does not keep the process alive: rows left leased are delivered again after their lease.
    if (retryInMs !== undefined) group.timer.unref();
    return group;
  }

  /** Seals `group` (the next one gathers), waits for its readers, then writes it with `send`. */
  private write(group: Group, send = this.o.write): Promise<void> {
    if (this.open === group) this.open = undefined;
    clearTimeout(group.timer);
    const ids = group.entries.map(([id]) => id);
    const written = (async () => {
      await Promise.all(group.readers);
      try {
        await send(ids);
      } catch (error) {
        this.failed(group, ids, error);
        throw error;
      }
      this.retryMs = 0;
      this.o.after(ids);
    })();
    const done = written.catch(() => undefined);
    this.writing.set(group, done);
    void done.then(() => this.writing.delete(group));
    return written;
  }

  private failed(group: Group, ids: readonly number[], error: unknown): void {
    if (this.stopped || !this.o.retries(error)) {
      this.o.after(ids, { error, retryInMs: undefined });
      return;
    }
    const { baseDelayMs, maxDelayMs } = DEFAULTS.storeRetry;
    this.retryMs = Math.min(maxDelayMs, Math.max(baseDelayMs, this.retryMs * 2));
    this.o.after(ids, { error, retryInMs: this.retryMs });
    this.queue(group.entries, this.retryMs);
  }
}
