/**
 * CPU profile of the library over RabbitMQ, one side at a time, 1 KB events:
 *   npx tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-amqp.ts send [events=20000]
 *   npx tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile-amqp.ts receive [events=20000]
 * `send` emits to a queue nobody consumes (in bursts of 100, then bus.flush); `receive` first fills
 * the queue through a bus (not profiled apart: read the consumer's functions), then consumes it.
 * Prints events/s of the measured side; summarise with `node bench/cpuprofile-top.js <file>`.
 */
import { randomUUID } from 'node:crypto';
import amqplib from 'amqplib';
import { serviceTopology } from '../src/backends/amqp/topology.js';
import { createEventBus, DEFAULTS } from '../src/index.js';
import { discardLogger, EVENT_TYPE, payload, SCHEMA, SECRET, sleep } from './lib.js';

const [mode = 'send', count = '20000'] = process.argv.slice(2);
const EVENTS = Number(count);
const url = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = { url, prefix: `bench-prof-${randomUUID().slice(0, 8)}.` };

async function fill(): Promise<number> {
  const bus = createEventBus({ service: 'bench-src', secret: SECRET, broker, logger: discardLogger('warn') }).declareEvent(EVENT_TYPE, ['bench-sink'], {
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

async function main(): Promise<void> {
  const sent = await fill();
  if (mode === 'send') console.log(`send: ${Math.round(sent)} events/s`);
  else console.log(`receive: ${Math.round(await consume())} events/s`);
  const { main: queue, deadLetters, waits } = serviceTopology(broker.prefix, 'bench-sink', DEFAULTS.broker.deliveryLimit, DEFAULTS.broker.retryDelaysMs);
  const connection = await amqplib.connect(url);
  const channel = await connection.createChannel();
  for (const { name } of [queue, deadLetters, ...waits.values()]) await channel.deleteQueue(name);
  await connection.close();
}

void main();
