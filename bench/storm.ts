/**
 * `npx tsx bench/storm.ts [--seconds 10] [--stores memory,sqlite] [--emitters 64] [--reps 1]
 * [--mark n] [--drain-events 20000]`: an emit storm. This process emits to one live target as
 * fast as it can for `--seconds` (`--emitters` loops, each awaiting its emit, as concurrent
 * request handlers would), the target being the library's receiver in a child process
 * (storm-receiver.ts). Prints, per outbox: emits/s; delivered/s during the storm; the drain rate
 * after it (until the receiver has every event) and the ratio of the two (the issue's goal:
 * ≥ 0.8); the drain rate of a `--drain-events` backlog recorded before any delivery (the same
 * dispatcher with no emit competing, timed on a backlog large enough to time well: what a storm
 * leaves is at most the high-water mark) and the ratio to it; the peak outbox pending count
 * sampled during the storm, the backlog left when it ended, the emits refused with
 * OutboxFullError; and this process's CPU per event delivered during the storm (its emit
 * included) and in each drain: while this process is the bottleneck, the ratio is about drain
 * CPU ÷ storm CPU, i.e. delivery ÷ (emit + delivery).
 * `--mark` sets `outbox.highWaterMark` (0: no backpressure, the library before it). Delivered
 * counts come from the receiver's clock, in 10 ms buckets, so that a sender starved of
 * event-loop turns cannot skew them. Reps are interleaved across outboxes; medians are shown.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createEventBus, OutboxFullError } from '../src/index.js';
import { ask, cpuMeter, deadPort, discardLogger, EVENT_TYPE, fmt, forkTs, median, payload, SCHEMA, SECRET, sleep, table } from './lib.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    stores: { type: 'string', default: 'memory,sqlite' },
    emitters: { type: 'string', default: '64' },
    reps: { type: 'string', default: '1' },
    mark: { type: 'string' },
    'drain-events': { type: 'string', default: '20000' },
  },
});
const SECONDS = Number(values.seconds);
const EMITTERS = Number(values.emitters);
const REPS = Number(values.reps);
const STORES = values.stores.split(',') as ('memory' | 'sqlite')[];
/** `outbox.highWaterMark` (default: the library's; 0 turns backpressure off, as before it existed). */
const MARK = values.mark === undefined ? undefined : Number(values.mark);
/** Backlog of the reference drain (see drainRate). */
const DRAIN_EVENTS = Number(values['drain-events']);
/** How often the outbox's pending count is sampled during the storm. */
const SAMPLE_MS = 100;

interface DrainFigures {
  perSec: number;
  cpuUs: number;
}

interface StormFigures {
  emitsPerSec: number;
  deliveredPerSec: number;
  drainPerSec: number;
  ratio: number;
  peakPending: number;
  backlogAtEnd: number;
  refused: number;
  /** Sender CPU (user + system) per event delivered during the storm (its emit included) and in the drain, µs. */
  stormCpuUs: number;
  drainCpuUs: number;
}

type Receiver = ReturnType<typeof forkTs>;
type Row = StormFigures & { reference: DrainFigures };

async function count(receiver: Receiver): Promise<number> {
  return (await ask<{ count: number }>(receiver, 'count')).count;
}

async function waitFor(receiver: Receiver, total: number): Promise<void> {
  const deadline = Date.now() + 180_000;
  while ((await count(receiver)) < total) {
    if (Date.now() > deadline) throw new Error(`the receiver did not get all ${total} events within 180 s`);
    await sleep(20);
  }
}

function senderBus(store: 'memory' | 'sqlite', path: string, url: string, highWaterMark?: number) {
  return createEventBus({
    service: 'users',
    secret: SECRET,
    logger: discardLogger('warn'),
    services: { payments: `${url}/events` },
    outbox: { ...(store === 'sqlite' ? { path } : {}), ...(highWaterMark === undefined ? {} : { highWaterMark }) },
    shutdownTimeoutMs: 0,
  }).declareEvent(EVENT_TYPE, ['payments'], { schema: SCHEMA });
}

/**
 * The dispatcher's rate with no emit competing, on a backlog large enough to time well (the one
 * a storm leaves is at most the high-water mark): `DRAIN_EVENTS` recorded first, then delivered.
 * In memory a loop of awaited emits records them all before the dispatcher's first turn; the
 * SQLite file is filled by a bus whose target is unreachable, then reopened by one that reaches it.
 */
async function drainRate(store: 'memory' | 'sqlite', receiver: Receiver, url: string, deadUrl: string): Promise<DrainFigures> {
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'events-drain-'));
  const path = join(dir, 'outbox.db');
  const base = await count(receiver);
  let seq = 100_000;
  let bus = senderBus(store, path, store === 'sqlite' ? deadUrl : url, 0);
  if (store === 'sqlite') {
    for (let done = 0; done < DRAIN_EVENTS; done += 100) {
      await Promise.all(Array.from({ length: 100 }, () => bus.emit(EVENT_TYPE, payload(seq++))));
    }
    await bus.close();
  }
  const cpu = cpuMeter();
  const startedAt = performance.now();
  if (store === 'sqlite') bus = senderBus(store, path, url, 0);
  else for (let i = 0; i < DRAIN_EVENTS; i++) await bus.emit(EVENT_TYPE, payload(seq++));
  await waitFor(receiver, base + DRAIN_EVENTS);
  const seconds = (performance.now() - startedAt) / 1000;
  const cpuUs = cpu() / DRAIN_EVENTS;
  await bus.close();
  rmSync(dir, { recursive: true, force: true });
  return { perSec: DRAIN_EVENTS / seconds, cpuUs };
}

async function storm(store: 'memory' | 'sqlite', receiver: Receiver, url: string): Promise<StormFigures> {
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'events-storm-'));
  const bus = senderBus(store, join(dir, 'outbox.db'), url, MARK);

  let seq = 100_000;
  const warmup = 2_000;
  const base = await count(receiver);
  for (let i = 0; i < warmup; i++) await bus.emit(EVENT_TYPE, payload(seq++));
  await waitFor(receiver, base + warmup);

  let emitted = 0;
  let refused = 0;
  let peakPending = 0;
  let sampledAt = 0;
  const sample = () => {
    sampledAt = Date.now();
    void bus.outboxStats().then((stats) => (peakPending = Math.max(peakPending, stats.pending)));
  };
  // A timer samples when the loop yields; the loop samples itself when it does not.
  const sampler = setInterval(sample, SAMPLE_MS);
  const stormCpu = cpuMeter();
  const startedAt = Date.now();
  const endAt = startedAt + SECONDS * 1000;
  const emitter = async () => {
    while (Date.now() < endAt) {
      try {
        await bus.emit(EVENT_TYPE, payload(seq++));
        emitted += 1;
      } catch (error) {
        if (!(error instanceof OutboxFullError)) throw error;
        refused += 1;
        await new Promise((resolve) => setImmediate(resolve)); // a full outbox refuses at once: let the dispatcher run
      }
      if (Date.now() - sampledAt >= SAMPLE_MS) sample();
    }
  };
  await Promise.all(Array.from({ length: EMITTERS }, emitter));
  const endedAt = Date.now();
  const stormCpuUs = stormCpu();
  clearInterval(sampler);
  sample();
  const backlogAtEnd = (await bus.outboxStats()).pending;
  const drainCpu = cpuMeter();
  await waitFor(receiver, base + warmup + emitted);
  const drainCpuUs = drainCpu();
  const { times } = await ask<{ times: [number, number][] }>(receiver, 'times');
  await bus.close();
  rmSync(dir, { recursive: true, force: true });

  let during = 0;
  let after = 0;
  let lastAt = endedAt;
  for (const [at, n] of times) {
    if (at >= startedAt && at < endedAt) during += n;
    if (at >= endedAt) {
      after += n;
      lastAt = Math.max(lastAt, at + 10);
    }
  }
  const deliveredPerSec = during / ((endedAt - startedAt) / 1000);
  const drainPerSec = after > 0 ? after / ((lastAt - endedAt) / 1000) : NaN;
  return {
    emitsPerSec: emitted / ((endedAt - startedAt) / 1000),
    deliveredPerSec,
    drainPerSec,
    ratio: deliveredPerSec / drainPerSec,
    peakPending,
    backlogAtEnd,
    refused,
    stormCpuUs: stormCpuUs / during,
    drainCpuUs: drainCpuUs / after,
  };
}

async function main(): Promise<void> {
  const receiver = forkTs('storm-receiver.ts');
  const { url } = await ask<{ url: string }>(receiver, 'url?');
  const deadUrl = `http://127.0.0.1:${await deadPort()}`;
  const results = new Map<string, Row[]>(STORES.map((s) => [s, []]));
  for (let rep = 1; rep <= REPS; rep++) {
    for (const store of STORES) {
      process.stderr.write(`rep ${rep}/${REPS}: ${store} outbox, ${SECONDS} s storm, ${EMITTERS} emitters; then ${DRAIN_EVENTS} events drained\n`);
      const figures = await storm(store, receiver, url);
      results.get(store)!.push({ ...figures, reference: await drainRate(store, receiver, url, deadUrl) });
    }
  }
  receiver.disconnect();
  const m = (list: Row[], value: (r: Row) => number) => median(list.map(value));
  const rows = STORES.map((store) => {
    const list = results.get(store)!;
    return [
      `${store} outbox`,
      fmt.int(m(list, (r) => r.emitsPerSec)),
      fmt.int(m(list, (r) => r.deliveredPerSec)),
      fmt.int(m(list, (r) => r.drainPerSec)),
      fmt.ratio(m(list, (r) => r.ratio)),
      fmt.int(m(list, (r) => r.reference.perSec)),
      fmt.ratio(m(list, (r) => r.deliveredPerSec / r.reference.perSec)),
      fmt.int(m(list, (r) => r.peakPending)),
      fmt.int(m(list, (r) => r.backlogAtEnd)),
      fmt.int(m(list, (r) => r.refused)),
      fmt.us(m(list, (r) => r.stormCpuUs)),
      fmt.us(m(list, (r) => r.drainCpuUs)),
      fmt.us(m(list, (r) => r.reference.cpuUs)),
    ];
  });
  process.stdout.write(
    `${table(['outbox', 'emits/s', 'delivered/s (storm)', 'drain/s (after)', 'ratio', `drain/s (${DRAIN_EVENTS})`, 'ratio', 'peak pending', 'backlog at end', 'refused (full)', 'CPU µs/event storm', 'drain', `drain (${DRAIN_EVENTS})`], rows)}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
