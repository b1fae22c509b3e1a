/**
 * The receiving side of the RabbitMQ bench, in its own process. On `{ mode, url, prefix, prefetch }`
 * it starts consuming and answers `{ ready: true }`; on `'count'` it answers `{ count, cpuUs }`;
 * on `'stop'` it closes and answers `{ stopped: true }`.
 * - library: a bus subscribed to `user-created` (verify, parse, ajv, dedupe, handler counts).
 * - raw: hand-written amqplib, manual ack after JSON.parse (the baseline).
 */
import amqplib from 'amqplib';
import { createEventBus, type EventBus } from '../src/index.js';
import { cpuMeter, discardLogger, EVENT_TYPE, SCHEMA, SECRET } from './lib.js';

interface Start {
  mode: 'library' | 'raw';
  url: string;
  prefix: string;
  prefetch: number;
}

let count = 0;
let cpu = cpuMeter();
let stop: (() => Promise<void>) | undefined;

async function start({ mode, url, prefix, prefetch }: Start): Promise<void> {
  count = 0;
  cpu = cpuMeter();
  if (mode === 'library') {
    const bus: EventBus = createEventBus({
      service: 'bench-sink',
      secret: SECRET,
      concurrency: prefetch,
      broker: { url, prefix },
      inbox: { volatile: true }, // measures the in-memory inbox
      logger: discardLogger('warn'),
    });
    bus.subscribeTo(EVENT_TYPE, () => void (count += 1), { schema: SCHEMA });
    await bus.start();
    stop = () => bus.close();
    return;
  }
  const connection = await amqplib.connect(url);
  const channel = await connection.createChannel();
  await channel.assertQueue(`${prefix}raw-sink`, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.prefetch(prefetch);
  await channel.consume(`${prefix}raw-sink`, (message) => {
    if (!message) return;
    JSON.parse(message.content.toString('utf8'));
    count += 1;
    channel.ack(message);
  });
  stop = async () => {
    await channel.close();
    await connection.close();
  };
}

process.on('message', (message: unknown) => {
  void (async () => {
    if (message === 'count') process.send!({ count, cpuUs: cpu() });
    else if (message === 'stop') {
      await stop?.();
      stop = undefined;
      process.send!({ stopped: true });
    } else {
      await start(message as Start);
      process.send!({ ready: true });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
