/** PostgreSQL for the `lib-postgres` rows: a schema per run (dropped after), and statements counted per event. */
import { readdirSync } from 'node:fs';
import { Client, type QueryConfig } from 'pg';
import { procCpuMs } from '../lib.js';
import { benchId, PG_URL } from './system.js';

let made = 0;

/** Creates a new schema for one side of one run and returns its name. */
export async function freshSchema(side: string): Promise<string> {
  const name = `${benchId()}_${side}_${process.pid}_${made++}`.replace(/[^a-z0-9_]/gi, '_');
  await admin((client) => client.query(`CREATE SCHEMA "${name}"`));
  return name;
}

export async function dropSchema(name: string): Promise<void> {
  await admin((client) => client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`));
}

async function admin(run: (client: Client) => Promise<unknown>): Promise<void> {
  const client = new Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await run(client);
  } finally {
    await client.end();
  }
}

const counts = new Map<string, number>();
/** With BENCH_PG_COUNT=time: the wall time from send to answer, summed by kind (ms). */
const waits = new Map<string, number>();
let patched = false;

/**
 * With BENCH_PG_COUNT=1: every statement this process sends (pool and LISTEN clients alike),
 * counted by its first word (and the library function it calls), and `print` writes the count
 * per event (`event()` counts one) to stderr; with BENCH_PG_COUNT=time, each kind's mean wall
 * time from send to answer as well (queue wait in `pg` included). The sender's line also gives the
 * CPU every PostgreSQL process of this machine used while it ran, per event (`postgresCpuMs`:
 * background work of earlier runs, a checkpoint's writes among it, falls in too).
 */
export function countQueries(side: string): { event(): void; print(): void } | undefined {
  if (!process.env.BENCH_PG_COUNT) return undefined;
  if (!patched) {
    patched = true;
    const query = Client.prototype.query as (...args: unknown[]) => unknown;
    Client.prototype.query = function (this: Client, ...args: unknown[]) {
      const text = typeof args[0] === 'string' ? args[0] : ((args[0] as QueryConfig | undefined)?.text ?? '?');
      const word = /^\s*(\w+)(?:[\s\S]*?\b(INSERT|UPDATE|DELETE|SELECT)\b)?/.exec(text);
      const called = /\.(events_\w+)\(/.exec(text);
      const kind = word ? `${word[1]!.toUpperCase()}${word[1]!.toUpperCase() === 'WITH' && word[2] ? ` ${word[2]}` : ''}${called ? ` ${called[1]}` : ''}` : '?';
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
      const result = query.apply(this, args);
      if (process.env.BENCH_PG_COUNT === 'time' && result instanceof Promise) {
        const start = performance.now();
        const done = () => void waits.set(kind, (waits.get(kind) ?? 0) + performance.now() - start);
        result.then(done, done);
      }
      return result;
    } as typeof Client.prototype.query;
  }
  counts.clear();
  waits.clear();
  let events = 0;
  const cpuAtStart = postgresCpuMs();
  return {
    event: () => void (events += 1),
    print: () => {
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      const time = (k: string, n: number) => (waits.has(k) ? ` ${((waits.get(k)! / n) * 1000).toFixed(0)} µs` : '');
      const per = [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${(n / Math.max(1, events)).toFixed(3)}${time(k, n)}`);
      // The sender lives one run (a fresh bus per run): what PostgreSQL used meanwhile, per event it emitted.
      const server = side === 'sender' ? `; PostgreSQL ${(((postgresCpuMs() - cpuAtStart) * 1000) / Math.max(1, events)).toFixed(0)} µs CPU/event` : '';
      process.stderr.write(`pg ${side}: ${events} events, ${(total / Math.max(1, events)).toFixed(2)} statements/event (${per.join(', ')})${server}\n`);
      counts.clear();
      waits.clear();
      events = 0;
    },
  };
}

/** CPU time (ms) of every process named `postgres` on this machine, with what its exited children used (a connection's backend ends with it, and the postmaster reaps it). 0 where /proc is missing. */
function postgresCpuMs(): number {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return 0;
  }
  return pids.reduce((ms, pid) => ms + (procCpuMs(`/proc/${pid}/stat`, { children: true, command: 'postgres' }) ?? 0), 0);
}
