import { secretVariable, urlVariable } from '../config.js';
import { DEFAULTS } from '../defaults.js';
import type { OutboxRecord } from '../send/outbox-store.js';

/** A target's last failed delivery, as the console shows it. */
export interface LastError {
  status?: number;
  message: string;
  /** The setting to check (over HTTP push): the target's secret after a 401, its URL when unreachable or answering 3xx/404/405. */
  variable?: string;
}

const MINUTE = 60_000;

/**
 * What the running service saw of each target, kept in the process for the console: the last
 * failed delivery, and deliveries per minute over the last `DEFAULTS.console.deliveredMinutes`.
 */
export class DeliveryActivity {
  private readonly targets = new Map<string, { minute: number; counts: number[]; lastError?: LastError }>();

  /** `http`: deliveries go over HTTP push (the variables to check are the target's URL and secret). */
  constructor(private readonly http: boolean) {}

  delivered(target: string, now = Date.now()): void {
    const counts = this.of(target, now).counts;
    counts[counts.length - 1]! += 1;
  }

  /** A delivery failed (to be retried, or dead): its record holds the last status and error. */
  failed(record: OutboxRecord, now = Date.now()): void {
    const { lastStatus: status, lastError, target } = record;
    const variable = this.variableOf(target, status);
    this.of(target, now).lastError = {
      ...(status !== undefined ? { status } : {}),
      message: lastError ?? (status !== undefined ? `HTTP ${status}` : 'failed'),
      ...(variable ? { variable } : {}),
    };
  }

  /** The target's last error and deliveries per minute, oldest minute first. */
  of(target: string, now = Date.now()): { counts: number[]; lastError?: LastError } {
    const minute = Math.floor(now / MINUTE);
    const size = DEFAULTS.console.deliveredMinutes;
    let state = this.targets.get(target);
    if (!state) this.targets.set(target, (state = { minute, counts: new Array<number>(size).fill(0) }));
    const shift = Math.min(size, Math.max(0, minute - state.minute));
    if (shift > 0) state.counts = [...state.counts.slice(shift), ...new Array<number>(shift).fill(0)];
    state.minute = Math.max(minute, state.minute);
    return state;
  }

  private variableOf(target: string, status: number | undefined): string | undefined {
    if (!this.http) return undefined;
    if (status === 401) return secretVariable(target);
    if (status === undefined || status === 404 || status === 405 || (status >= 300 && status < 400)) return urlVariable(target);
    return undefined;
  }
}
