// A chaos sender instance on a shared PostgreSQL outbox: service `books`, every `ledger.entry`
// declared to CHAOS_TARGETS ({ name: url }). Emits CHAOS_N events (indexes CHAOS_FIRST …), every
// other burst inside an explicit BEGIN … COMMIT with { tx }, and appends `<index> <event id>` to
// CHAOS_EMITTED only once its emit resolved (or its transaction committed). Restarted after a kill,
// it skips the indexes already recorded. Prints `emitted-all`, then delivers until SIGTERM.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { Pool } from 'pg';
import winston from 'winston';
import { createEventBus } from '../../../src/index.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const emitted = env('CHAOS_EMITTED');
const total = Number(env('CHAOS_N'));
const first = Number(env('CHAOS_FIRST'));
const services = JSON.parse(env('CHAOS_TARGETS')) as Record<string, string>;
const BURST = 5;
const PAUSE_MS = 100;

const bus = createEventBus({
  service: 'books',
  secret: env('CHAOS_SECRET'),
  services,
  database: env('CHAOS_DATABASE'),
  databaseSchema: env('CHAOS_SCHEMA'),
  outbox: { pollIntervalMs: 200, leaseMs: 1_500 },
  timeoutMs: 2_000,
  retry: { retries: 2, baseDelayMs: 20, maxDelayMs: 100 },
  redelivery: { baseDelayMs: 100, maxDelayMs: 500, probeMaxDelayMs: 200 },
  logger: winston.createLogger({
    level: 'error',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: process.stderr })],
  }),
});
bus.declareEvent('ledger.entry', Object.keys(services));
const pool = new Pool({ connectionString: env('CHAOS_DATABASE'), max: 2 });

async function main(): Promise<void> {
  const done = new Set(
    existsSync(emitted)
      ? readFileSync(emitted, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => Number(line.split(' ')[0]))
      : [],
  );
  const todo = Array.from({ length: total }, (_, i) => first + i).filter((i) => !done.has(i));
  process.stdout.write(`started ${done.size}\n`);
  for (let at = 0, burst = 0; at < todo.length; at += BURST, burst += 1) {
    const indexes = todo.slice(at, at + BURST);
    if (burst % 2 === 0) {
      await Promise.all(
        indexes.map(async (i) => {
          const receipt = await bus.emit('ledger.entry', { i });
          appendFileSync(emitted, `${i} ${receipt.id}\n`);
        }),
      );
    } else {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const receipts: Array<[number, string]> = [];
        for (const i of indexes) receipts.push([i, (await bus.emit('ledger.entry', { i }, { tx: client })).id]);
        await client.query('COMMIT');
        appendFileSync(emitted, receipts.map(([i, id]) => `${i} ${id}\n`).join(''));
      } finally {
        client.release();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  process.stdout.write('emitted-all\n');
}

process.on('SIGTERM', () => {
  void bus
    .close()
    .then(() => pool.end())
    .then(() => process.exit(0));
});

main().catch((error: unknown) => {
  process.stderr.write(`sender failed: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
