// A chaos target: a service with a durable inbox whose one handler appends `<event id> <pid>` to a
// log, one line per run. Env: CHAOS_NAME, CHAOS_PORT (0: any), CHAOS_INBOX, CHAOS_LOG, CHAOS_SECRET.
// Prints `ready <port>` once it listens.
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
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
  logger: winston.createLogger({
    level: 'error',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: process.stderr })],
  }),
});
bus.subscribeTo('chaos.tick', (_data, event) => {
  appendFileSync(log, `${event.id} ${process.pid}\n`);
});

const server = http.createServer(bus.nodeHandler());
server.listen(Number(env('CHAOS_PORT')), '127.0.0.1', () => {
  process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`);
});
