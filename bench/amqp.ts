/**
 * End to end through RabbitMQ, sender here and consumer in a child process (bench/amqp-consumer.ts),
 * 1 KB payload: the library (durable SQLite outbox, dispatcher publishing with confirms, consumer
 * through the receiver) against hand-written amqplib (confirm channel, `window` publishes in flight,
 * manual-ack consumer). Both use quorum queues, persistent messages and the same window/prefetch.
 * Figure: delivered events/s, from the first emit/publish to the consumer having counted all.
 */
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { createEventBus } from '../src/index.js';
import { deleteServiceTopology } from './amqp-cleanup.js';
import { ask, cpuMeter, discardLogger, EVENT_TYPE, payload, SCHEMA, SECRET, sleep } from './lib.js';

export interface AmqpFigures {
  eventsPerSec: number;
  /** Sender process CPU per event, µs. */
  senderCpuUs: number;
  /** Consumer process CPU per event, µs. */
  consumerCpuUs: number;
}

export interface AmqpJob {
  url: string;
  events: number;
  window: number;
  /** The library's outbox: SQLite (durable) or in memory. */
  outbox?: 'sqlite' | 'memory';
}

const BURST = 100;

async function waitCount(consumer: ChildProcess, n: number): Promise<{ cpuUs: number }> {
  for (;;) {
    const reply = await ask<{ count: number; cpuUs: number }>(consumer, 'count');
    if (reply.count >= n) return reply;
    await sleep(5);
  }
}

async function removeQueues(url: string, names: string[]): Promise<void> {
  const connection = await amqplib.connect(url);
  const channel = await connection.createChannel();
  for (const name of names) await channel.deleteQueue(name);
  await connection.close();
}

export async function measureLibrary(consumer: ChildProcess, job: AmqpJob): Promise<AmqpFigures> {
  const prefix = `bench-${randomUUID().slice(0, 8)}.`;
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'events-bench-amqp-'));
  await ask(consumer, { mode: 'library', url: job.url, prefix, prefetch: job.window });
  const bus = createEventBus({
    service: 'bench-src',
    secret: SECRET,
    concurrency: job.window,
    broker: { url: job.url, prefix },
    outbox: job.outbox === 'memory' ? {} : { path: join(dir, 'outbox.db') },
    logger: discardLogger('warn'),
  }).declareEvent(EVENT_TYPE, ['bench-sink'], { schema: SCHEMA });
  const cpu = cpuMeter();
  const startedAt = performance.now();
  for (let i = 0; i < job.events; i += BURST) {
    const burst: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(job.events, i + BURST); j++) burst.push(bus.emit(EVENT_TYPE, payload(100000 + (j % 900000))));
    await Promise.all(burst);
  }
  const { cpuUs } = await waitCount(consumer, job.events);
  const seconds = (performance.now() - startedAt) / 1000;
  const senderCpu = cpu();
  await bus.close();
  await ask(consumer, 'stop');
  rmSync(dir, { recursive: true, force: true });
  await deleteServiceTopology(job.url, prefix, 'bench-sink');
  return { eventsPerSec: job.events / seconds, senderCpuUs: senderCpu / job.events, consumerCpuUs: cpuUs / job.events };
}

export async function measureRaw(consumer: ChildProcess, job: AmqpJob): Promise<AmqpFigures> {
  const prefix = `bench-${randomUUID().slice(0, 8)}.`;
  const queue = `${prefix}raw-sink`;
  await ask(consumer, { mode: 'raw', url: job.url, prefix, prefetch: job.window });
  const connection = await amqplib.connect(job.url);
  const channel = await connection.createConfirmChannel();
  const cpu = cpuMeter();
  const startedAt = performance.now();
  let inFlight = 0;
  let wake: (() => void) | undefined;
  for (let i = 0; i < job.events; i++) {
    while (inFlight >= job.window) await new Promise<void>((resolve) => (wake = resolve));
    const id = randomUUID();
    const body = JSON.stringify({ specversion: '1.0', id, source: 'bench-src', type: EVENT_TYPE, time: new Date().toISOString(), datacontenttype: 'application/json', data: payload(100000 + (i % 900000)) });
    inFlight += 1;
    channel.publish('', queue, Buffer.from(body), { persistent: true, mandatory: true, contentType: 'application/cloudevents+json', messageId: id }, (error: unknown) => {
      if (error) throw error as Error;
      inFlight -= 1;
      wake?.();
    });
  }
  await channel.waitForConfirms();
  const { cpuUs } = await waitCount(consumer, job.events);
  const seconds = (performance.now() - startedAt) / 1000;
  const senderCpu = cpu();
  await channel.close();
  await connection.close();
  await ask(consumer, 'stop');
  await removeQueues(job.url, [queue]);
  return { eventsPerSec: job.events / seconds, senderCpuUs: senderCpu / job.events, consumerCpuUs: cpuUs / job.events };
}
