/**
 * The outbox stores alone, as the dispatcher drives them: claim what is due, settle each
 * delivery, let the group commit run, again until the backlog is gone. No HTTP: what is left is
 * the store's own cost per delivery (CPU µs, the process's user + system time).
 *   node --require tsx/cjs bench/outbox-store.ts [sqlite|memory] [deliveries] [reps]
 * Two shapes, per rep interleaved:
 * - `one by one`: 16 in flight, each ending alone; every end claims one more (the unbatched dispatcher).
 * - `batches`: claim 1,600 (16 requests × 100), settle them all at once (`settleMany` when the store has it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import type { NewDelivery, OutboxRecord, OutboxStore } from '../src/send/outbox-store.js';
import { MemoryOutbox } from '../src/stores/memory-outbox.js';
import { SqliteOutbox } from '../src/stores/sqlite-outbox.js';

const BODY = JSON.stringify({ specversion: '1.0', id: 'x', source: 'users', type: 'user-created', data: { pad: 'x'.repeat(900) } });
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function open(kind: string, dir: string, run: number): OutboxStore {
  if (kind === 'memory') return new MemoryOutbox(1e7, 1e6, winston.createLogger({ silent: true }), 1e12);
  return new SqliteOutbox(join(dir, `outbox-${run}.db`));
}

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

async function settle(store: OutboxStore, records: OutboxRecord[]): Promise<void> {
  if (store.settleMany) await store.settleMany(records.map((record) => ({ kind: 'complete' as const, record })));
  else for (const record of records) await store.complete(record.id);
}

/** CPU µs per delivery to drain `n` deliveries. */
async function drain(store: OutboxStore, n: number, shape: 'one by one' | 'batches'): Promise<number> {
  const start = process.cpuUsage();
  let done = 0;
  if (shape === 'batches') {
    while (done < n) {
      const claimed = await store.claim('payments', Date.now(), 1600);
      await settle(store, claimed);
      done += claimed.length;
      await nextTurn();
    }
  } else {
    let inFlight = await store.claim('payments', Date.now(), 16);
    while (inFlight.length > 0) {
      const [first, ...rest] = inFlight;
      await store.complete(first!.id);
      done += 1;
      inFlight = rest.concat(await store.claim('payments', Date.now(), 16 - rest.length));
      if (done % 16 === 0) await nextTurn();
    }
  }
  await nextTurn();
  const used = process.cpuUsage(start);
  if (done !== n) throw new Error(`drained ${done} of ${n}`);
  return (used.user + used.system) / n;
}

async function main(): Promise<void> {
  const [kind = 'sqlite', count = '20000', reps = '3'] = process.argv.slice(2);
  const n = Number(count);
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'outbox-bench-'));
  const figures: Record<string, number[]> = { 'one by one': [], batches: [] };
  try {
    let run = 0;
    for (let rep = 0; rep <= Number(reps); rep++) {
      for (const shape of ['one by one', 'batches'] as const) {
        const store = open(kind, dir, run++);
        await fill(store, n);
        const us = await drain(store, n, shape);
        await store.close();
        if (rep > 0) figures[shape]!.push(us); // rep 0 warms up
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const [shape, values] of Object.entries(figures)) {
    const sorted = values.sort((a, b) => a - b);
    console.log(`${kind}, ${shape}: ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} CPU µs per delivery (claim + settle), runs ${sorted.map((v) => v.toFixed(1)).join(' / ')}`);
  }
}

void main();
