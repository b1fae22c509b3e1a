/**
 * `npx tsx bench/storm.ts [--seconds 10] [--stores memory,sqlite] [--emitters 64] [--reps 1] [--mark n]`:
 * an emit storm. This process emits to one live target as fast as it can for `--seconds`
 * (`--emitters` loops, each awaiting its emit, as concurrent request handlers would), the target
 * being the library's receiver in a child process (storm-receiver.ts). Prints, per outbox:
 * emits/s, delivered/s during the storm, the drain rate after it (until the receiver has every
 * event), their ratio (the goal: ≥ 0.8), the peak outbox pending count sampled during the
 * storm, the backlog left when it ended, and the emits refused with OutboxFullError.
 * `--mark` sets `outbox.highWaterMark` (0: no backpressure, the library before it). Delivered counts come from the receiver's clock, in 10 ms buckets, so that a sender starved of
 * event-loop turns cannot skew them. Reps are interleaved across outboxes; medians are shown.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createEventBus, OutboxFullError } from '../src/index.js';
import { ask, discardLogger, EVENT_TYPE, fmt, forkTs, median, payload, SCHEMA, SECRET, sleep, table } from './lib.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    stores: { type: 'string', default: 'memory,sqlite' },
    emitters: { type: 'string', default: '64' },
    reps: { type: 'string', default: '1' },
    mark: { type: 'string' },
  },
});
const SECONDS = Number(values.seconds);
const EMITTERS = Number(values.emitters);
const REPS = Number(values.reps);
const STORES = values.stores.split(',') as ('memory' | 'sqlite')[];
/** `outbox.highWaterMark` (default: the library's; 0 turns backpressure off, as before it existed). */
const MARK = values.mark === undefined ? undefined : Number(values.mark);
/** How often the outbox's pending count is sampled during the storm. */
const SAMPLE_MS = 100;

interface StormFigures {
  emitsPerSec: number;
  deliveredPerSec: number;
  drainPerSec: number;
  ratio: number;
  peakPending: number;
  backlogAtEnd: number;
  refused: number;
}

type Receiver = ReturnType<typeof forkTs>;

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

async function storm(store: 'memory' | 'sqlite', receiver: Receiver, url: string): Promise<StormFigures> {
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'events-storm-'));
  const bus = createEventBus({
    service: 'users',
    secret: SECRET,
    logger: discardLogger('warn'),
    services: { payments: `${url}/events` },
    outbox: { ...(store === 'sqlite' ? { path: join(dir, 'outbox.db') } : {}), ...(MARK === undefined ? {} : { highWaterMark: MARK }) },
    shutdownTimeoutMs: 0,
  }).declareEvent(EVENT_TYPE, ['payments'], { schema: SCHEMA });

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
    peakPending = Math.max(peakPending, bus.outboxStats().pending);
  };
  // A timer samples when the loop yields; the loop samples itself when it does not.
  const sampler = setInterval(sample, SAMPLE_MS);
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
  clearInterval(sampler);
  sample();
  const backlogAtEnd = bus.outboxStats().pending;
  await waitFor(receiver, base + warmup + emitted);
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
  };
}

async function main(): Promise<void> {
  const receiver = forkTs('storm-receiver.ts');
  const { url } = await ask<{ url: string }>(receiver, 'url?');
  const results = new Map<string, StormFigures[]>(STORES.map((s) => [s, []]));
  for (let rep = 1; rep <= REPS; rep++) {
    for (const store of STORES) {
      process.stderr.write(`rep ${rep}/${REPS}: ${store} outbox, ${SECONDS} s storm, ${EMITTERS} emitters\n`);
      results.get(store)!.push(await storm(store, receiver, url));
    }
  }
  receiver.disconnect();
  const m = (list: StormFigures[], key: keyof StormFigures) => median(list.map((r) => r[key]));
  const rows = STORES.map((store) => {
    const list = results.get(store)!;
    return [
      `${store} outbox`,
      fmt.int(m(list, 'emitsPerSec')),
      fmt.int(m(list, 'deliveredPerSec')),
      fmt.int(m(list, 'drainPerSec')),
      fmt.ratio(m(list, 'ratio')),
      fmt.int(m(list, 'peakPending')),
      fmt.int(m(list, 'backlogAtEnd')),
      fmt.int(m(list, 'refused')),
    ];
  });
  process.stdout.write(
    `${table(['outbox', 'emits/s', 'delivered/s (storm)', 'drain/s (after)', 'ratio', 'peak pending', 'backlog at end', 'refused (full)'], rows)}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
