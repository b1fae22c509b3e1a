import type { HealthOptions } from '../config.js';
import type { OutboxStats } from '../operate/operator.js';
import type { Availability } from './availability.js';

/** One target service as `bus.health()` sees it. */
export interface TargetHealth {
  /** Deliveries waiting in the outbox. */
  backlog: number;
  /** Age of the oldest waiting delivery, in ms (absent with no backlog). */
  oldestPendingAgeMs?: number;
  deadLetters: number;
  /** The dispatcher counts it down (failures in a row) and only probes it. */
  down: boolean;
  /** How long it has been down, in ms. */
  downForMs?: number;
}

/** A broker consumer (by the queue or topic it consumes) or the database, as health sees it. */
export interface ConnectionHealth<State extends string> {
  state: State;
  /** How long it has not worked, in ms (absent while it works). */
  downForMs?: number;
  /** The last error it met. */
  lastError?: string;
}

/**
 * `bus.health()`: JSON-able. `GET /events/health` answers 200 when `healthy`, else 503, with only
 * `{ healthy }`, unless the request carries an operator token (`Authorization: Bearer <token>`).
 */
export interface HealthStatus {
  healthy: boolean;
  service: string | undefined;
  shuttingDown: boolean;
  outbox: { reachable: boolean; durable: boolean };
  targets: Record<string, TargetHealth>;
  /** Targets down now (for any time). */
  targetsDown: string[];
  /** This service's broker consumer, by its queue or topic: `consuming`, or `down` since `downForMs` (none over HTTP push). */
  consumers: Record<string, ConnectionHealth<'consuming' | 'down'>>;
  /** The stores' PostgreSQL database, when they use one: its last call failed or timed out (`down`) or not. */
  database?: ConnectionHealth<'up' | 'down'>;
  /** Why `healthy` is false, one short sentence each (empty when healthy). */
  problems: string[];
}

export interface HealthInputs {
  service: string | undefined;
  durable: boolean;
  shuttingDown: boolean;
  /** The outbox's answer; undefined when it cannot be read. */
  stats: OutboxStats | undefined;
  /** Targets this service sends to (declared), listed even with nothing pending. */
  known: readonly string[];
  /** Targets the dispatcher counts down, with since when (ms since epoch). */
  downSince: () => Record<string, number>;
  consumers: Record<string, Availability>;
  database: Availability | undefined;
  /** The `health` options: past them the bus is unhealthy (0: never). */
  thresholds: Pick<Required<HealthOptions>, 'targetDownMs' | 'maxPendingAgeMs'>;
  now: number;
}

/** Builds the status from what the outbox and the dispatcher know now. */
export function healthOf(input: HealthInputs): HealthStatus {
  const { thresholds, now } = input;
  const problems: string[] = [];
  const stats = input.stats;
  if (stats === undefined) problems.push('the outbox cannot be read');
  const down = input.downSince();
  const targets: Record<string, TargetHealth> = {};
  for (const name of input.known) targets[name] = { backlog: 0, deadLetters: 0, down: false };
  for (const [name, t] of Object.entries(stats?.targets ?? {})) {
    targets[name] = {
      backlog: t.pending,
      ...(t.oldestCreatedAt !== undefined && t.pending > 0 ? { oldestPendingAgeMs: Math.max(0, now - t.oldestCreatedAt) } : {}),
      deadLetters: t.deadLetters,
      down: false,
    };
  }
  for (const [name, since] of Object.entries(down)) {
    const target = (targets[name] ??= { backlog: 0, deadLetters: 0, down: false });
    target.down = true;
    target.downForMs = Math.max(0, now - since);
    if (thresholds.targetDownMs > 0 && target.downForMs > thresholds.targetDownMs) {
      problems.push(`target ${name} has been down for ${Math.round(target.downForMs / 1000)} s`);
    }
  }
  if (thresholds.maxPendingAgeMs > 0) {
    for (const [name, target] of Object.entries(targets)) {
      if ((target.oldestPendingAgeMs ?? 0) > thresholds.maxPendingAgeMs) {
        problems.push(`a delivery to ${name} has waited ${Math.round(target.oldestPendingAgeMs! / 1000)} s`);
      }
    }
  }
  // A consumer or the database: down longer than targetDownMs is a problem, as a target is.
  const connection = <S extends string>(what: string, { downSince, lastError }: Availability, up: S): ConnectionHealth<S | 'down'> => {
    const error = lastError === undefined ? {} : { lastError };
    if (downSince === undefined) return { state: up, ...error };
    const downForMs = Math.max(0, now - downSince);
    if (thresholds.targetDownMs > 0 && downForMs > thresholds.targetDownMs) {
      problems.push(`${what} for ${Math.round(downForMs / 1000)} s${lastError === undefined ? '' : ` (${lastError})`}`);
    }
    return { state: 'down', downForMs, ...error };
  };
  const consumers = Object.fromEntries(
    Object.entries(input.consumers).map(([name, a]) => [name, connection(`the consumer of ${name} has not been consuming`, a, 'consuming')]),
  );
  const database = input.database && connection('the database has been failing', input.database, 'up');
  if (input.shuttingDown) problems.push('shutting down');
  return {
    healthy: problems.length === 0,
    service: input.service,
    shuttingDown: input.shuttingDown,
    outbox: { reachable: stats !== undefined, durable: input.durable },
    targets,
    targetsDown: Object.keys(down),
    consumers,
    ...(database ? { database } : {}),
    problems,
  };
}

/**
 * The outbox's stats as health shows them: read again in the background once older than
 * `maxAgeMs`, one read at a time, so a flood of health requests costs no more than one read per
 * `maxAgeMs`. Only a caller that finds no figures yet waits for the first read.
 */
export class StatsSnapshot {
  private stats: OutboxStats | undefined;
  private readAt: number | undefined;
  private reading: Promise<void> | undefined;

  constructor(
    private readonly read: () => Promise<OutboxStats>,
    private readonly maxAgeMs: number,
  ) {}

  /** The last figures read (undefined when the last read failed). */
  async current(): Promise<OutboxStats | undefined> {
    if (this.readAt === undefined || Date.now() - this.readAt >= this.maxAgeMs) this.reading ??= this.refresh();
    if (this.readAt === undefined) await this.reading;
    return this.stats;
  }

  private async refresh(): Promise<void> {
    try {
      this.stats = await this.read();
    } catch {
      this.stats = undefined;
    } finally {
      this.readAt = Date.now();
      this.reading = undefined;
    }
  }
}
