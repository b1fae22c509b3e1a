/**
 * Events/s through Kafka (librdkafka's mock cluster, 3 brokers, started here through kcat), 1 KB
 * payload, sender and consumer in this process: the library (in-memory outbox, dispatcher with
 * `window` deliveries in flight, producer acks = all, consumer group through the receiver with a
 * commit per fetched batch) next to hand-written kafkajs (acks = all, `window` sends in flight, a consumer
 * with kafkajs' auto-commit). Figure: from the first emit/send to the consumer having counted all.
 *
 *   npx tsx bench/kafka.ts [events=2000] [window=64]
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { createEventBus } from '../src/index.js';
import { startMockCluster } from '../test/helpers/kafka.js';
import { discardLogger, EVENT_TYPE, payload, SCHEMA, SECRET, sleep, table } from './lib.js';

const EVENTS = Number(process.argv[2] ?? 2000);
const WINDOW = Number(process.argv[3] ?? 64);

async function untilCount(count: () => number, n: number): Promise<void> {
  while (count() < n) await sleep(5);
}

async function library(url: string): Promise<number> {
  const prefix = `bench-${randomUUID().slice(0, 8)}.`;
  const broker = { url, prefix };
  const sink = createEventBus({ service: 'bench-sink', secret: SECRET, concurrency: 6, broker, inbox: { volatile: true }, logger: discardLogger('warn') });
  let received = 0;
  sink.subscribeTo(EVENT_TYPE, () => void (received += 1), { schema: SCHEMA });
  await sink.start();
  const bus = createEventBus({ service: 'bench-src', secret: SECRET, concurrency: WINDOW, broker, logger: discardLogger('warn') }).declareEvent(
    EVENT_TYPE,
    ['bench-sink'],
    { schema: SCHEMA },
  );
  const startedAt = performance.now();
  for (let i = 0; i < EVENTS; i += 100) {
    const burst: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(EVENTS, i + 100); j++) burst.push(bus.emit(EVENT_TYPE, payload(100000 + j)));
    await Promise.all(burst);
  }
  await untilCount(() => received, EVENTS);
  const seconds = (performance.now() - startedAt) / 1000;
  await Promise.all([bus.close(), sink.close()]);
  return EVENTS / seconds;
}

async function raw(bootstrap: string): Promise<number> {
  const topic = `bench-raw-${randomUUID().slice(0, 8)}`;
  const kafka = new Kafka({ brokers: bootstrap.split(','), logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: topic, maxWaitTimeInMs: 500 });
  let received = 0;
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
  await consumer.run({ partitionsConsumedConcurrently: 6, eachMessage: async () => void (received += 1) });
  while (!joined) await sleep(10);
  const producer = kafka.producer();
  await producer.connect();
  const startedAt = performance.now();
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < EVENTS; i++) {
    while (inFlight >= WINDOW) await new Promise<void>((resolve) => (wake = resolve));
    const id = randomUUID();
    const body = JSON.stringify({ specversion: '1.0', id, source: 'bench-src', type: EVENT_TYPE, time: new Date().toISOString(), datacontenttype: 'application/json', data: payload(100000 + i) });
    inFlight += 1;
    sends.push(
      producer.send({ topic, acks: -1, messages: [{ key: id, value: body, headers: { 'content-type': 'application/cloudevents+json' } }] }).finally(() => {
        inFlight -= 1;
        wake?.();
      }),
    );
  }
  await Promise.all(sends);
  await untilCount(() => received, EVENTS);
  const seconds = (performance.now() - startedAt) / 1000;
  await producer.disconnect();
  await consumer.disconnect();
  return EVENTS / seconds;
}

void (async () => {
  const cluster = await startMockCluster();
  try {
    // Warm-up (JIT, the mock's first topics), then the two measured runs in the same cluster.
    await raw(cluster.bootstrap);
    const rawRate = await raw(cluster.bootstrap);
    const libRate = await library(cluster.url);
    console.log(`Kafka end to end (mock cluster, ${EVENTS} events of 1 KB, window ${WINDOW})`);
    console.log(
      table(
        ['', 'events/s'],
        [
          ['hand-written kafkajs', rawRate.toFixed(0)],
          ['events-library', libRate.toFixed(0)],
        ],
      ),
    );
  } finally {
    await cluster.stop();
  }
})();
