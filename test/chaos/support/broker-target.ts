// A chaos target on RabbitMQ: one instance of service CHAOS_NAME (EVENTS_BROKER_URL and
// EVENTS_BROKER_PREFIX from the environment), sharing the durable inbox CHAOS_INBOX with the
// service's other instances. Its handler appends `<event id> <pid>` to CHAOS_LOG, one line per run.
// Prefetch 1, so that a SIGKILL can catch at most one handler between its append and its inbox commit.
// Prints `ready` once it consumes.
import { appendFileSync } from 'node:fs';
import winston from 'winston';
import { createEventBus } from '../../../src/index.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const log = env('CHAOS_LOG');
const bus = createEventBus({
  service: env('CHAOS_NAME'),
  secret: env('CHAOS_SECRET'),
  inbox: { path: env('CHAOS_INBOX') },
  concurrency: 1,
  broker: { url: env('EVENTS_BROKER_URL'), reconnectBaseDelayMs: 50, reconnectMaxDelayMs: 300 },
  logger: winston.createLogger({
    level: 'error',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: process.stderr })],
  }),
});
bus.subscribeTo('chaos.tick', (_data, event) => {
  appendFileSync(log, `${event.id} ${process.pid}\n`);
});
void bus.start().then(() => process.stdout.write('ready\n'));
