import { DEFAULTS } from '../../defaults.js';

/** When a target's next delivery is due, as `events_claim` and PostgresOutbox.nextDueAt's query return it: bigints as text. */
export interface DueRow {
  next_due: string | null;
  lease_end: string | null;
  db_now: string;
}

/** A target's unleased rows as the database last described them, in this process's clock. */
export interface Due {
  /** When it was said (ms since epoch). */
  at: number;
  /** The soonest `next_attempt_at` of an unleased row. */
  due: number | undefined;
  /** The soonest end of another instance's lease (if that instance died, its rows are due then). */
  leaseEnd: number | undefined;
}

/**
 * What the database last said about each target's unleased rows (a claim that leased fewer than
 * asked, or nextDueAt's query). It stands in for a read for `DEFAULTS.database.seenForMs` at most,
 * while nothing this instance hears of changes those rows: the outbox forgets a target on its own
 * writes that make rows due (not on deleting delivered ones, nor on its kept emits), on a NOTIFY,
 * on a replay.
 */
export class DueView {
  private readonly byTarget = new Map<string, Due>();

  remember(target: string, row: DueRow): Due {
    const now = Date.now();
    const due: Due = {
      at: now,
      due: row.next_due === null ? undefined : Number(row.next_due),
      // Measured on the database's clock: instances on hosts with skewed clocks agree.
      leaseEnd: row.lease_end === null ? undefined : now + Number(row.lease_end) - Number(row.db_now),
    };
    this.byTarget.set(target, due);
    return due;
  }

  /** What was said of `target`, unless it is older than `seenForMs`. */
  fresh(target: string): Due | undefined {
    const due = this.byTarget.get(target);
    return due !== undefined && Date.now() - due.at <= DEFAULTS.database.seenForMs ? due : undefined;
  }

  /** It was said, lately, that none of the target's unleased rows is due by `now`. */
  noneDueBy(target: string, now: number): boolean {
    const due = this.fresh(target);
    if (due === undefined) return false;
    return !(due.due !== undefined && due.due <= now) && !(due.leaseEnd !== undefined && due.leaseEnd <= now);
  }

  /** Out of date: one target's view, or every one. */
  forget(target?: string): void {
    if (target === undefined) this.byTarget.clear();
    else this.byTarget.delete(target);
  }
}
