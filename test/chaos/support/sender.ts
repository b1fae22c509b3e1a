// A chaos sender: a service with a durable outbox that emits CHAOS_N `chaos.tick` events, each
// declared to every target in CHAOS_TARGETS ({ name: url }), and appends `<index> <event id>` to
// CHAOS_EMITTED only once its emit resolved. Restarted after a kill, it skips the indexes already
// recorded, emits the rest, and its outbox resumes what the killed run left. Prints `emitted-all`.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import winston from 'winston';
import { createEventBus } from '../../../src/index.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const emitted = env('CHAOS_EMITTED');
const total = Number(env('CHAOS_N'));
const services = JSON.parse(env('CHAOS_TARGETS')) as Record<string, string>;
const BURST = 5;
const PAUSE_MS = 20;

const bus = createEventBus({
  service: 'chaos-sender',
  secret: env('CHAOS_SECRET'),
  services,
  outbox: { path: env('CHAOS_OUTBOX'), pollIntervalMs: 200 },
  timeoutMs: 2_000,
  retry: { retries: 2, baseDelayMs: 20, maxDelayMs: 100 },
  redelivery: { baseDelayMs: 100, maxDelayMs: 500, probeMaxDelayMs: 200 },
  logger: winston.createLogger({
    level: 'error',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: process.stderr })],
  }),
});
bus.declareEvent('chaos.tick', Object.keys(services));

async function main(): Promise<void> {
  const done = new Set(
    existsSync(emitted)
      ? readFileSync(emitted, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => Number(line.split(' ')[0]))
      : [],
  );
  const todo = Array.from({ length: total }, (_, i) => i).filter((i) => !done.has(i));
  process.stdout.write(`started ${done.size}\n`);
  for (let at = 0; at < todo.length; at += BURST) {
    await Promise.all(
      todo.slice(at, at + BURST).map(async (i) => {
        const receipt = await bus.emit('chaos.tick', { i });
        appendFileSync(emitted, `${i} ${receipt.id}\n`);
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  process.stdout.write('emitted-all\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`sender failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
