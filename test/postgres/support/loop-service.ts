// A service that sends `tick` to itself over HTTP with the PostgreSQL outbox and inbox: its handler
// books `(event id)` in PG_EFFECTS through the inbox's transaction and holds it open a moment, so
// that connections ended by the server land mid-transaction as well as mid-emit. Emits PG_N events
// in bursts; prints `emitted <id>` per emit resolved and `refused <error class>` per emit
// rejected, then `emitted-all`, and keeps delivering until SIGTERM (close, exit 0). No
// uncaughtException handler: an unhandled 'error' ends the process with a non-zero code.
// Env: PG_URL, PG_SCHEMA, PG_SERVICE, PG_EFFECTS, PG_SECRET, PG_N, and optionally PG_DATABASE
// (where the bus connects, PG_URL by default: a proxy in front of it) and PG_POOL_SIZE.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import winston from 'winston';
import { createEventBus } from '../../../src/index.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const service = env('PG_SERVICE');
const effects = env('PG_EFFECTS');
const total = Number(env('PG_N'));
let handler: http.RequestListener = (_req, res) => res.end();
const server = http.createServer((req, res) => handler(req, res));

async function main(): Promise<void> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const bus = createEventBus({
    service,
    secret: env('PG_SECRET'),
    services: { [service]: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events` },
    database: process.env.PG_DATABASE ?? env('PG_URL'),
    databaseSchema: env('PG_SCHEMA'),
    databasePoolSize: Number(process.env.PG_POOL_SIZE ?? 10),
    timeoutMs: 2_000,
    retry: { retries: 1, baseDelayMs: 20, maxDelayMs: 100 },
    redelivery: { baseDelayMs: 100, maxDelayMs: 500, probeMaxDelayMs: 200 },
    // A delivery whose outcome could not be written is sent again once its lease runs out.
    outbox: { pollIntervalMs: 200, leaseMs: 2_000 },
    logger: winston.createLogger({
      level: process.env.PG_LOG_LEVEL ?? 'error',
      format: winston.format.json(),
      transports: [new winston.transports.Stream({ stream: process.stderr })],
    }),
  });
  handler = bus.nodeHandler();
  bus.declareEvent('tick', [service]);
  bus.subscribeTo('tick', async (_data, event, { tx }) => {
    await tx!.query(`INSERT INTO ${effects} (event_id) VALUES ($1)`, [event.id]);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }, { name: 'book' });
  process.on('SIGTERM', () => {
    void bus.close().then(() => server.close(() => process.exit(0)));
  });
  process.stdout.write('started\n');

  for (let at = 0; at < total; at += 20) {
    const outcomes = await Promise.allSettled(Array.from({ length: Math.min(20, total - at) }, (_, i) => bus.emit('tick', { i: at + i })));
    process.stdout.write(
      outcomes
        .map((o) => (o.status === 'fulfilled' ? `emitted ${o.value.id}\n` : `refused ${(o.reason as Error)?.constructor?.name} ${(o.reason as Error)?.message}\n`))
        .join(''),
    );
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  process.stdout.write('emitted-all\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`loop service failed: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
