/**
 * The inboxes alone, with random (v4) and time-ordered (v7, what `emit` makes) event ids:
 * an inbox already holding `prefill` ids records `count` new ones, as the receive pipeline does
 * (per group of 16: one `completed` lookup, then one `mark` of their `done`). No HTTP, no handler:
 * the store's own cost per event. The two kinds alternate, a fresh inbox each rep; medians.
 *   node --require tsx/cjs bench/inbox-keys.ts [sqlite|postgres|memory] [count] [reps] [prefill]
 * sqlite and memory (the default inbox, holding its default `inbox.maxEntries`): CPU µs per event
 * (this process: better-sqlite3 runs in it). postgres: wall µs per event
 * (the server's work; EVENTS_BENCH_DATABASE_URL, default the local test database; a schema of its
 * own, dropped after).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import { MemoryInbox } from '../src/backends/memory/inbox.js';
import { PostgresInbox } from '../src/backends/postgres/inbox.js';
import { SqliteInbox } from '../src/backends/sqlite/inbox.js';
import { DEFAULTS } from '../src/defaults.js';
import { newEventId } from '../src/protocol/event-id.js';
import { eventKey, type InboxStore } from '../src/receive/inbox-store.js';
import { dropSchema } from './e2e/pg-schema.js';
import { PG_URL } from './e2e/system.js';

const SCHEMA = `bench_inbox_${process.pid}`;
const GROUP = 16;
const KINDS = { random: () => randomUUID(), 'time-ordered': () => newEventId() } as const;
type Kind = keyof typeof KINDS;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function open(store: string, dir: string, run: number): InboxStore {
  const logger = winston.createLogger({ silent: true });
  if (store === 'memory') return new MemoryInbox(DEFAULTS.inbox.maxEntries);
  if (store === 'postgres') return new PostgresInbox({ database: PG_URL, service: `bench${run}`, schema: SCHEMA, retentionMs: 864e5, logger });
  return new SqliteInbox(join(dir, `inbox-${run}.db`), 864e5, logger);
}

async function record(inbox: InboxStore, next: () => string, count: number, group: number): Promise<void> {
  for (let i = 0; i < count; i += group) {
    const keys = Array.from({ length: group }, () => eventKey('orders', next()));
    await inbox.completed(keys);
    await inbox.mark(keys.map((key) => ({ eventKey: key })));
  }
}

async function measure(store: string, kind: Kind, dir: string, run: number, count: number, prefill: number) {
  const inbox = open(store, dir, run);
  try {
    await record(inbox, KINDS[kind], prefill, 1000);
    const cpu = process.cpuUsage();
    const wall = process.hrtime.bigint();
    await record(inbox, KINDS[kind], count, GROUP);
    const used = process.cpuUsage(cpu);
    return { cpu: (used.user + used.system) / count, wall: Number(process.hrtime.bigint() - wall) / 1000 / count };
  } finally {
    await inbox.close();
  }
}

async function main(): Promise<void> {
  const [store = 'sqlite', count = '100000', reps = '3', prefill = '200000'] = process.argv.slice(2);
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'inbox-bench-'));
  const figures = { random: { cpu: [] as number[], wall: [] as number[] }, 'time-ordered': { cpu: [] as number[], wall: [] as number[] } };
  try {
    let run = 0;
    for (let rep = 0; rep < Number(reps); rep++) {
      for (const kind of Object.keys(KINDS) as Kind[]) {
        const f = await measure(store, kind, dir, ++run, Number(count), Number(prefill));
        figures[kind].cpu.push(f.cpu);
        figures[kind].wall.push(f.wall);
        console.log(`rep ${rep + 1}/${reps}  ${kind.padEnd(12)}  ${f.cpu.toFixed(1)} µs CPU, ${f.wall.toFixed(1)} µs wall per event`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (store === 'postgres') await dropSchema(SCHEMA);
  }
  const key = store === 'postgres' ? 'wall' : 'cpu';
  const random = median(figures.random[key]);
  const ordered = median(figures['time-ordered'][key]);
  console.log(`\n${store} inbox, ${prefill} ids already in it, ${count} new in groups of ${GROUP}, medians of ${reps}:`);
  console.log(`  random ids        ${random.toFixed(1)} µs ${key} per event`);
  console.log(`  time-ordered ids  ${ordered.toFixed(1)} µs ${key} per event  (${(ordered / random).toFixed(2)}× random)`);
}

void main();
