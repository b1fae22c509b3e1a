import type { ConnectionHealth, HealthStatus } from '../observe/health.js';
import type { OutboxStats } from '../operate/operator.js';
import type { DeliveryActivity, LastError } from './activity.js';

/** One target on the console's overview (`GET <path>/console/api/overview`). */
export interface ConsoleTarget {
  name: string;
  backlog: number;
  /** null with no backlog. */
  oldestPendingAgeMs: number | null;
  deadLetters: number;
  /** The running service's view (absent in the standalone console). */
  state?: 'up' | 'down';
  /** ISO time, while down. */
  downSince?: string;
  lastError?: LastError;
  /** Deliveries per minute over the last 15 minutes, oldest first. */
  deliveredPerMinute?: number[];
}

export interface ConsoleOverview {
  service: string | null;
  /** Served by `events-library console` beside the service (what the store holds), not by the service itself. */
  standalone: boolean;
  targets: ConsoleTarget[];
  consumers: Record<string, { state: string; downForMs?: number }>;
  database?: { state: string; downForMs?: number };
}

const connection = ({ state, downForMs }: ConnectionHealth<string>) => ({ state, ...(downForMs !== undefined ? { downForMs } : {}) });
const byName = (a: ConsoleTarget, b: ConsoleTarget) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** The running service's overview: its health (backlog, targets down, consumers, database) and what its dispatcher saw. */
export function serviceOverview(health: HealthStatus, activity: DeliveryActivity, now: number): ConsoleOverview {
  const targets = Object.entries(health.targets).map(([name, t]): ConsoleTarget => {
    const { counts, lastError } = activity.of(name, now);
    return {
      name,
      backlog: t.backlog,
      oldestPendingAgeMs: t.oldestPendingAgeMs ?? null,
      deadLetters: t.deadLetters,
      state: t.down ? 'down' : 'up',
      ...(t.down ? { downSince: new Date(now - (t.downForMs ?? 0)).toISOString() } : {}),
      ...(lastError ? { lastError } : {}),
      deliveredPerMinute: [...counts],
    };
  });
  return {
    service: health.service ?? null,
    standalone: false,
    targets: targets.sort(byName),
    consumers: Object.fromEntries(Object.entries(health.consumers).map(([name, c]) => [name, connection(c)])),
    ...(health.database ? { database: connection(health.database) } : {}),
  };
}

/** The standalone console's overview: what the store holds. */
export function storeOverview(service: string | undefined, stats: OutboxStats, now: number): ConsoleOverview {
  const targets = Object.entries(stats.targets).map(([name, t]) => ({
    name,
    backlog: t.pending,
    oldestPendingAgeMs: t.oldestCreatedAt !== undefined && t.pending > 0 ? Math.max(0, now - t.oldestCreatedAt) : null,
    deadLetters: t.deadLetters,
  }));
  return { service: service ?? null, standalone: true, targets: targets.sort(byName), consumers: {} };
}
