/**
 * The outbox stores alone, as the dispatcher drives them: claim what is due, settle each
 * delivery, let the group commit run, again until the backlog is gone. No HTTP: what is left is
 * the store's own cost per delivery (CPU µs, the process's user + system time).
 *   node --require tsx/cjs bench/outbox-store.ts [sqlite|memory|postgres] [deliveries] [reps]
 * (postgres: EVENTS_DATABASE_URL, default the local test database; a schema of its own, dropped after.)
 * Three shapes, per rep interleaved:
 * - `one by one`: 16 in flight, each ending alone; every end claims one more (the unbatched dispatcher).
 * - `batches, settleMany`: claim 1,600 (16 requests × 100), settle them all in one `settleMany`.
 * - `batches, one call each`: the same, settled by one `settleMany` call per delivery.
 * - `batches in flight`: 16 requests of 100 in flight; as each ends, `settleMany` its 100, claim 100
 *   more (the batching dispatcher at saturation: every claim passes the 1,500 others still leased).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import type { NewDelivery, OutboxRecord, OutboxStore } from '../src/send/outbox-store.js';
import { MemoryOutbox } from '../src/backends/memory/outbox.js';
import { PostgresOutbox } from '../src/backends/postgres/outbox.js';
import { SqliteOutbox } from '../src/backends/sqlite/outbox.js';

const BODY = JSON.stringify({ specversion: '1.0', id: 'x', source: 'users', type: 'user-created', data: { pad: 'x'.repeat(900) } });
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

const DATABASE_URL = process.env.EVENTS_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SCHEMA = `bench_outbox_${process.pid}`;

function open(kind: string, dir: string, run: number): OutboxStore {
  if (kind === 'memory') return new MemoryOutbox(1e7, 1e6, winston.createLogger({ silent: true }), 1e12);
  if (kind === 'postgres') return new PostgresOutbox(DATABASE_URL, { service: `bench${run}`, schema: SCHEMA, eventsPerRequest: () => 100 });
  return new SqliteOutbox(join(dir, `outbox-${run}.db`));
}

type Shape = 'one by one' | 'batches, settleMany' | 'batches, one call each' | 'batches in flight';

async function fill(store: OutboxStore, n: number): Promise<void> {
  const now = Date.now();
  for (let i = 0; i < n; i += 1000) {
    const chunk: NewDelivery[] = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      chunk.push({ eventId: `e-${j}`, type: 'user-created', source: 'users', target: 'payments', body: BODY, createdAt: now });
    }
    await store.add(chunk);
  }
}

async function settle(store: OutboxStore, records: OutboxRecord[], shape: Shape): Promise<void> {
  // One call for all, else one per delivery (the baseline: as the dispatcher settles a lone send).
  if (shape === 'batches, settleMany' && store.settleMany) await store.settleMany(records.map((record) => ({ kind: 'complete' as const, record })));
  else await Promise.all(records.map((record) => store.settleMany([{ kind: 'complete', record }])));
}

/** CPU and wall-clock µs per delivery to drain `n` deliveries. */
async function drain(store: OutboxStore, n: number, shape: Shape): Promise<{ cpu: number; wall: number }> {
  const start = process.cpuUsage();
  const startedAt = process.hrtime.bigint();
  let done = 0;
  if (shape === 'batches in flight') {
    const claimed = await store.claim('payments', Date.now(), 1600);
    const requests: OutboxRecord[][] = [];
    for (let i = 0; i < claimed.length; i += 100) requests.push(claimed.slice(i, i + 100));
    while (requests.length > 0) {
      const ended = requests.shift()!;
      await settle(store, ended, 'batches, settleMany');
      done += ended.length;
      const more = await store.claim('payments', Date.now(), 100);
      if (more.length > 0) requests.push(more);
      if (done % 1600 === 0) await nextTurn();
    }
  } else if (shape !== 'one by one') {
    while (done < n) {
      const claimed = await store.claim('payments', Date.now(), 1600);
      await settle(store, claimed, shape);
      done += claimed.length;
      await nextTurn();
    }
  } else {
    let inFlight = await store.claim('payments', Date.now(), 16);
    while (inFlight.length > 0) {
      const [first, ...rest] = inFlight;
      await store.settleMany([{ kind: 'complete', record: first! }]);
      done += 1;
      inFlight = rest.concat(await store.claim('payments', Date.now(), 16 - rest.length));
      if (done % 16 === 0) await nextTurn();
    }
  }
  await nextTurn();
  const used = process.cpuUsage(start);
  const wall = Number(process.hrtime.bigint() - startedAt) / 1000;
  if (done !== n) throw new Error(`drained ${done} of ${n}`);
  return { cpu: (used.user + used.system) / n, wall: wall / n };
}

async function dropSchema(): Promise<void> {
  const { Pool } = await import('pg');
  const pool = new Pool({ connectionString: DATABASE_URL });
  await pool.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`).finally(() => pool.end());
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const [kind = 'sqlite', count = '20000', reps = '3'] = process.argv.slice(2);
  const n = Number(count);
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'outbox-bench-'));
  const shapes: Shape[] = ['one by one', 'batches, settleMany', 'batches, one call each', 'batches in flight'];
  const figures = new Map(shapes.map((shape) => [shape, { cpu: [] as number[], wall: [] as number[] }]));
  try {
    let run = 0;
    for (let rep = 0; rep <= Number(reps); rep++) {
      for (const shape of shapes) {
        const store = open(kind, dir, run++);
        await fill(store, n);
        const us = await drain(store, n, shape);
        await store.close();
        if (rep === 0) continue; // a warm-up
        figures.get(shape)!.cpu.push(us.cpu);
        figures.get(shape)!.wall.push(us.wall);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (kind === 'postgres') await dropSchema();
  }
  for (const [shape, { cpu, wall }] of figures) {
    console.log(`${kind}, ${shape}: ${median(cpu).toFixed(1)} CPU µs, ${median(wall).toFixed(1)} µs wall per delivery (claim + settle); CPU runs ${cpu.map((v) => v.toFixed(1)).join(' / ')}`);
  }
}

void main();
