import winston from 'winston';

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
