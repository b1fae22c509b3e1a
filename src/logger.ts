import winston from 'winston';
import { DEFAULTS } from './defaults.js';
import { deeperThan } from './protocol/payload-depth.js';

/** The default logger: one JSON line per record on the console. */
export function createLogger(level: string, service: string | undefined): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { lib: 'events-library', ...(service ? { service } : {}) },
    transports: [new winston.transports.Console()],
  });
}

/**
 * The fields every log line about an event carries, when they apply. Payloads go in `data`,
 * at debug level only (and on the final-failure line, which must be enough to replay).
 */
export interface EventLogFields {
  eventId?: string;
  type?: string;
  source?: string;
  target?: string;
  attempt?: number;
  status?: number;
  durationMs?: number;
  [key: string]: unknown;
}

/**
 * A payload as it may go into a log line: itself when shallow and short, else a string saying what
 * was left out or cut (`logPayload` in defaults.ts). Never throws, whatever a peer sent.
 */
export function loggablePayload(value: unknown): unknown {
  const { maxDepth, maxChars } = DEFAULTS.logPayload;
  try {
    if (deeperThan(value, maxDepth)) return `[not logged: nested deeper than ${maxDepth} levels]`;
    const json = JSON.stringify(value);
    if (json === undefined || json.length <= maxChars) return value;
    return `${json.slice(0, maxChars)}… [truncated: ${json.length} characters]`;
  } catch {
    return '[not logged: not serialisable]';
  }
}

/**
 * `logger.isLevelEnabled`, each level asked once: for the records of one batch. winston builds
 * arrays at every check (its transports' list, up to three times per call), about 650 bytes of
 * garbage, which three times per event was an eighth of the sender's allocations
 * (docs/benchmarks.md, "Less garbage per event").
 */
export function levelCheck(logger: Pick<winston.Logger, 'isLevelEnabled'>): (level: string) => boolean {
  const known = new Map<string, boolean>();
  return (level) => {
    let enabled = known.get(level);
    if (enabled === undefined) known.set(level, (enabled = logger.isLevelEnabled(level)));
    return enabled;
  };
}

/** What a log line or result says of a thrown value: its message, or the value as text. */
export function errorMessage(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}
