/** What a connection that health reports on (a broker consumer, a database) knows of itself. */
export interface Availability {
  /** Since when it has not worked (ms since epoch); undefined while it works. */
  readonly downSince: number | undefined;
  /** The last error it met (kept after it recovers). */
  readonly lastError: string | undefined;
}

/** Up or down since when, and why: each outcome marks it (the first failure of an outage sets the time). */
export class AvailabilityState implements Availability {
  downSince: number | undefined;
  lastError: string | undefined;

  /** `down`: not working until a first success (a consumer before it is registered). */
  constructor(down = false) {
    if (down) this.downSince = Date.now();
  }

  up(): void {
    this.downSince = undefined;
  }

  down(error: unknown): void {
    this.downSince ??= Date.now();
    this.lastError = (error as Error)?.message ?? String(error);
  }
}
