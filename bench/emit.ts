/** The emit side: emits/s and emit latency into the durable and in-memory outboxes, and raw SQLite. */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createEventBus } from '../src/index.js';
import { createEvent, toStructuredBody } from '../src/protocol/cloudevents.js';
import { SqliteOutbox } from '../src/backends/sqlite/outbox.js';
import { cpuMeter, discardLogger, EVENT_TYPE, payload, percentile, SCHEMA, SECRET, sleep } from './lib.js';

export interface EmitFigures {
  emitsPerSec: number;
  /** Outbox rows written per second (emits × targets). */
  rowsPerSec: number;
  /** CPU time of this process per emit (or per row for raw SQLite), µs. */
  cpuUs: number;
  p50Ms: number;
  p99Ms: number;
  /** Live target only: deliveries the target answered per second during the timed emits. */
  deliveredPerSec?: number;
  /** Live target only: deliveries per second after the emits stop, until the backlog is delivered. */
  drainPerSec?: number;
}

export interface EmitScenario {
  store: 'sqlite' | 'memory';
  targets: 1 | 3;
  mode: 'burst' | 'sequential';
  /** `dead`: a port nothing listens on (the dispatcher parks, probing); `live`: a 204 server in a child process. */
  target: 'dead' | 'live';
  logLevel: 'warn' | 'info';
}

export interface Target {
  url: string;
  /** Requests answered so far (live target only). */
  count?: () => Promise<number>;
}

const TARGET_NAMES = ['payments', 'orders', 'mailer'];

/** Directory for the benchmark's SQLite files (BENCH_DIR, default the OS temp dir). */
function scratch(): string {
  return mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'events-bench-'));
}

/**
 * One emit measurement on a fresh bus and a fresh outbox file: `warmup` emits, then `count` emits
 * timed. Burst mode issues `burst` emits at once and awaits them all; sequential awaits each.
 */
export async function measureEmits(
  scenario: EmitScenario,
  target: Target,
  count: number,
  options: { warmup: number; burst: number },
): Promise<EmitFigures> {
  const dir = scratch();
  const names = TARGET_NAMES.slice(0, scenario.targets);
  const bus = createEventBus({
    service: 'users',
    secret: SECRET,
    logger: discardLogger(scenario.logLevel),
    // The live target is a raw 204 sink, not an events receiver: no receipt to require.
    services: Object.fromEntries(names.map((name) => [name, { url: `${target.url}/events`, receipt: false }])),
    outbox: scenario.store === 'sqlite' ? { path: join(dir, 'outbox.db') } : { maxPending: 100_000_000 },
    shutdownTimeoutMs: 0,
  }).declareEvent(EVENT_TYPE, names, { schema: SCHEMA });

  let seq = 100_000;
  const latencies = new Float64Array(count);
  const drive = async (n: number, record: boolean) => {
    if (scenario.mode === 'sequential') {
      for (let i = 0; i < n; i++) {
        const start = performance.now();
        await bus.emit(EVENT_TYPE, payload(seq++));
        if (record) latencies[i] = performance.now() - start;
      }
      return;
    }
    for (let done = 0; done < n; ) {
      const k = Math.min(options.burst, n - done);
      const pending = new Array<Promise<void>>(k);
      for (let i = 0; i < k; i++) {
        const start = performance.now();
        const slot = done + i;
        pending[i] = bus.emit(EVENT_TYPE, payload(seq++)).then(() => {
          if (record) latencies[slot] = performance.now() - start;
        });
      }
      await Promise.all(pending);
      done += k;
    }
  };

  const base = target.count ? await target.count() : 0;
  await drive(options.warmup, false);
  const deliveredBefore = target.count ? await target.count() : 0;
  const cpu = cpuMeter();
  const startedAt = performance.now();
  await drive(count, true);
  const seconds = (performance.now() - startedAt) / 1000;
  const cpuUs = cpu() / count;
  const deliveredAfter = target.count ? await target.count() : 0;
  const drainPerSec = target.count ? await drain(target.count, base + options.warmup + count, deliveredAfter) : undefined;

  await bus.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    emitsPerSec: count / seconds,
    rowsPerSec: (count * scenario.targets) / seconds,
    cpuUs,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    ...(target.count ? { deliveredPerSec: (deliveredAfter - deliveredBefore) / seconds, drainPerSec } : {}),
  };
}

/** Waits until the live target has answered `total` requests; returns the rate since `from` was seen. */
async function drain(count: () => Promise<number>, total: number, from: number): Promise<number> {
  const startedAt = performance.now();
  const deadline = Date.now() + 120_000;
  let seen = from;
  while (seen < total && Date.now() < deadline) {
    await sleep(20);
    seen = await count();
  }
  return (seen - from) / ((performance.now() - startedAt) / 1000);
}

/**
 * The baseline: better-sqlite3 alone inserting the rows an emit writes (same table and index, made
 * by SqliteOutbox itself; same 1 KB CloudEvent body), WAL + synchronous=NORMAL as the outbox opens
 * it, `batch` rows per transaction.
 */
export function measureRawSqlite(rows: number, batch: number): EmitFigures {
  const dir = scratch();
  const path = join(dir, 'raw.db');
  void new SqliteOutbox(path).close();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const insert = db.prepare(
    `INSERT INTO outbox (event_id, type, source, target, body, created_at, next_attempt_at)
     VALUES (@eventId, @type, @source, @target, @body, @createdAt, @createdAt)`,
  );
  const body = toStructuredBody(createEvent('users', EVENT_TYPE, payload(100_000)));
  const now = Date.now();
  const batchRows = Array.from({ length: batch }, () => ({
    eventId: randomUUID(),
    type: EVENT_TYPE,
    source: 'users',
    target: 'payments',
    body,
    createdAt: now,
  }));
  const write = db.transaction((list: typeof batchRows) => {
    for (const row of list) insert.run(row);
  });
  write(batchRows); // warm-up
  const batches = Math.max(1, Math.round(rows / batch));
  const cpu = cpuMeter();
  const startedAt = performance.now();
  for (let i = 0; i < batches; i++) write(batchRows);
  const seconds = (performance.now() - startedAt) / 1000;
  const cpuUs = cpu() / (batches * batch);
  db.close();
  rmSync(dir, { recursive: true, force: true });
  const rowsPerSec = (batches * batch) / seconds;
  return { emitsPerSec: NaN, rowsPerSec, cpuUs, p50Ms: NaN, p99Ms: NaN };
}
