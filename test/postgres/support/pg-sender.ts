// One instance of a sender service on a shared PostgreSQL outbox. Emits PG_N `tick` events to the
// `sink` target in bursts, in its own transactions (half of them inside an explicit BEGIN … COMMIT
// with { tx }), and prints `emitted <event id>` once each emit resolved (or its transaction
// committed). Then prints `emitted-all` and keeps delivering until SIGTERM.
import { Pool } from 'pg';
import winston from 'winston';
import { createEventBus } from '../../../src/index.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const total = Number(env('PG_N'));
const BURST = 10;
const PAUSE_MS = 10;

const bus = createEventBus({
  service: 'pg-sender',
  secret: env('PG_SECRET'),
  services: { sink: env('PG_TARGET') },
  database: env('PG_DATABASE'),
  databaseSchema: env('PG_SCHEMA'),
  concurrency: Number(env('PG_CONCURRENCY')),
  // 'off', or the most events per batch request.
  batch: env('PG_BATCH') === 'off' ? false : { maxEvents: Number(env('PG_BATCH')) },
  outbox: { pollIntervalMs: 200, leaseMs: Number(env('PG_LEASE_MS')) },
  timeoutMs: 2_000,
  retry: { retries: 0 },
  redelivery: { baseDelayMs: 100, maxDelayMs: 500, probeMaxDelayMs: 200 },
  logger: winston.createLogger({
    level: process.env.PG_LOG_LEVEL ?? 'error',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: process.stderr })],
  }),
});
bus.declareEvent('tick', ['sink']);
const pool = new Pool({ connectionString: env('PG_DATABASE'), max: 2 });

async function main(): Promise<void> {
  process.stdout.write('started\n');
  for (let at = 0, burst = 0; at < total; at += BURST, burst += 1) {
    const n = Math.min(BURST, total - at);
    if (burst % 2 === 0) {
      const receipts = await Promise.all(Array.from({ length: n }, (_, i) => bus.emit('tick', { i: at + i })));
      process.stdout.write(receipts.map((r) => `emitted ${r.id}\n`).join(''));
    } else {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const receipts = [];
        for (let i = 0; i < n; i += 1) receipts.push(await bus.emit('tick', { i: at + i }, { tx: client }));
        await client.query('COMMIT');
        process.stdout.write(receipts.map((r) => `emitted ${r.id}\n`).join(''));
      } finally {
        client.release();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  process.stdout.write('emitted-all\n');
}

process.on('SIGTERM', () => {
  void bus.close().then(() => pool.end()).then(() => process.exit(0));
});

main().catch((error: unknown) => {
  process.stderr.write(`sender failed: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
