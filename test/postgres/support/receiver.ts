// A receiver instance of the service `ledger` with the PostgreSQL inbox: its one handler inserts
// `(event id, pid)` into PG_EFFECTS through the inbox's transaction, then waits a moment (so a
// SIGKILL often lands inside the transaction). Env: PG_URL, PG_SCHEMA, PG_EFFECTS, PG_SECRET,
// PG_PORT (0: any). Prints `ready <port>` once it listens.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import winston from 'winston';
import { createEventBus } from '../../../src/index.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const bus = createEventBus({
  service: 'ledger',
  secret: env('PG_SECRET'),
  database: env('PG_URL'),
  databaseSchema: env('PG_SCHEMA'),
  logger: winston.createLogger({
    level: 'error',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: process.stderr })],
  }),
});
const effects = env('PG_EFFECTS');
bus.subscribeTo('ledger.entry', async (_data, event, { tx }) => {
  await tx!.query(`INSERT INTO ${effects} (event_id, pid) VALUES ($1, $2)`, [event.id, process.pid]);
  await new Promise((resolve) => setTimeout(resolve, 2));
}, { name: 'book' });

const server = http.createServer(bus.nodeHandler());
server.listen(Number(env('PG_PORT')), '127.0.0.1', () => {
  process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`);
});
