/**
 * CPU profile of the library over RabbitMQ, one side at a time, 1 KB events:
 *   npx tsx bench/profile-amqp.ts send|receive [events=20000] [profile file]
 * `send` emits to a queue nobody consumes (in bursts of 100, then bus.flush); `receive` first fills
 * the queue through a bus, then consumes it (BENCH_CONCURRENCY: the consumer's `concurrency`).
 * BENCH_PG=1: the sender's outbox in PostgreSQL (a fresh schema, dropped after), else in memory.
 * Prints events/s and CPU µs per event of the measured side only; with a file, writes the measured
 * side's V8 CPU profile there (summarise with `node bench/cpuprofile-top.js <file>`).
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createEventBus } from '../src/index.js';
import { deleteServiceTopology } from './amqp-cleanup.js';
import { dropSchema, freshSchema } from './e2e/pg-schema.js';
import { PG_URL } from './e2e/system.js';
import { discardLogger, EVENT_TYPE, payload, SCHEMA, SECRET, sleep } from './lib.js';

const [mode = 'send', count = '20000', profileFile] = process.argv.slice(2);
const EVENTS = Number(count);
const url = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = { url, prefix: `bench-prof-${randomUUID().slice(0, 8)}.` };

async function fill(): Promise<number> {
  const batch = process.env.BENCH_BATCH === 'false' ? false : undefined;
  const schema = process.env.BENCH_PG === '1' ? await freshSchema('profile') : undefined;
  const database = schema ? { database: PG_URL, databaseSchema: schema } : {};
  const bus = createEventBus({ service: 'bench-src', secret: SECRET, broker, batch, ...database, logger: discardLogger('warn') }).declareEvent(EVENT_TYPE, ['bench-sink'], {
    schema: SCHEMA,
  });
  const startedAt = performance.now();
  for (let i = 0; i < EVENTS; i += 100) {
    const burst: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(EVENTS, i + 100); j++) burst.push(bus.emit(EVENT_TYPE, payload(100000 + j)));
    await Promise.all(burst);
  }
  await bus.flush(120_000);
  const seconds = (performance.now() - startedAt) / 1000;
  await bus.close();
  if (schema) await dropSchema(schema);
  return EVENTS / seconds;
}

async function consume(): Promise<number> {
  let received = 0;
  const concurrency = process.env.BENCH_CONCURRENCY ? Number(process.env.BENCH_CONCURRENCY) : undefined;
  const bus = createEventBus({ service: 'bench-sink', secret: SECRET, broker, inbox: { volatile: true }, concurrency, logger: discardLogger('warn') });
  bus.subscribeTo(EVENT_TYPE, () => void (received += 1), { schema: SCHEMA });
  const startedAt = performance.now();
  await bus.start();
  while (received < EVENTS) await sleep(2);
  const seconds = (performance.now() - startedAt) / 1000;
  await bus.close();
  return EVENTS / seconds;
}

/** Runs `measured`, profiled when a file is given; prints its rate and CPU per event. */
async function measure(label: string, measured: () => Promise<number>): Promise<void> {
  const session = profileFile ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const cpu = process.cpuUsage();
  const rate = await measured();
  const { user, system } = process.cpuUsage(cpu);
  if (session) writeFileSync(profileFile!, JSON.stringify((await session.post('Profiler.stop')).profile));
  console.log(`${label}: ${Math.round(rate)} events/s, ${((user + system) / EVENTS).toFixed(1)} µs CPU per event`);
}

async function main(): Promise<void> {
  if (mode === 'send') await measure('send', fill);
  else {
    await fill();
    await measure('receive', consume);
  }
  await deleteServiceTopology(url, broker.prefix, 'bench-sink');
}

void main();
