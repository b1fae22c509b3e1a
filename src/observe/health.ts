import type { OutboxStats } from '../operate/operator.js';

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

/** `bus.health()`: JSON-able; what `GET /events/health` answers (200 when `healthy`, else 503). */
export interface HealthStatus {
  healthy: boolean;
  service: string | undefined;
  shuttingDown: boolean;
  outbox: { reachable: boolean; durable: boolean };
  targets: Record<string, TargetHealth>;
  /** Targets down now (for any time). */
  targetsDown: string[];
  /** Why `healthy` is false, one short sentence each (empty when healthy). */
  problems: string[];
}

export interface HealthThresholds {
  /** A target down longer than this makes the bus unhealthy; 0: never. */
  targetDownMs: number;
  /** A delivery waiting longer than this makes the bus unhealthy; 0: never. */
  maxPendingAgeMs: number;
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
  thresholds: HealthThresholds;
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
  if (input.shuttingDown) problems.push('shutting down');
  return {
    healthy: problems.length === 0,
    service: input.service,
    shuttingDown: input.shuttingDown,
    outbox: { reachable: stats !== undefined, durable: input.durable },
    targets,
    targetsDown: Object.keys(down),
    problems,
  };
}
