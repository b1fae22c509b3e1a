import { Writable } from 'node:stream';
import winston from 'winston';
import type { EventLogFields } from '../../src/logger.js';

/** One log record as it would be written: the parsed JSON line. */
export interface LogRecord extends EventLogFields {
  level: string;
  message: string;
  data?: unknown;
}

export interface CapturingLogger {
  logger: winston.Logger;
  /** Every record so far, in order. */
  records: LogRecord[];
  /** The records with this message. */
  withMessage(message: string): LogRecord[];
  /** Every line, exactly as the JSON format wrote it. */
  lines: string[];
}

/** A winston logger that writes JSON lines into memory (the library's default format), so tests assert on what would be logged. */
export function createCapturingLogger(level = 'debug'): CapturingLogger {
  const lines: string[] = [];
  const records: LogRecord[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() === '') continue;
        lines.push(line);
        records.push(JSON.parse(line) as LogRecord);
      }
      callback();
    },
  });
  const logger = winston.createLogger({
    level,
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream })],
  });
  return { logger, records, lines, withMessage: (message) => records.filter((r) => r.message === message) };
}

/** A logger that writes nothing (set EVENTS_TEST_LOG=1 to see the library's lines on stderr). */
export function quietLogger(): winston.Logger {
  if (process.env.EVENTS_TEST_LOG) {
    return winston.createLogger({
      level: 'debug',
      format: winston.format.json(),
      transports: [new winston.transports.Stream({ stream: process.stderr })],
    });
  }
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
