/** PostgreSQL for the `lib-postgres` rows: a schema per run (dropped after), and statements counted per event. */
import { Client, type QueryConfig } from 'pg';
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
let patched = false;

/**
 * With BENCH_PG_COUNT=1: every statement this process sends (pool and LISTEN clients alike),
 * counted by its first word, and `print` writes the count per event (`event()` counts one) to stderr.
 */
export function countQueries(side: string): { event(): void; print(): void } | undefined {
  if (!process.env.BENCH_PG_COUNT) return undefined;
  if (!patched) {
    patched = true;
    const query = Client.prototype.query as (...args: unknown[]) => unknown;
    Client.prototype.query = function (this: Client, ...args: unknown[]) {
      const text = typeof args[0] === 'string' ? args[0] : ((args[0] as QueryConfig | undefined)?.text ?? '?');
      const word = /^\s*(\w+)(?:[\s\S]*?\b(INSERT|UPDATE|DELETE|SELECT)\b)?/.exec(text);
      const kind = word ? `${word[1]!.toUpperCase()}${word[1]!.toUpperCase() === 'WITH' && word[2] ? ` ${word[2]}` : ''}` : '?';
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
      return query.apply(this, args);
    } as typeof Client.prototype.query;
  }
  counts.clear();
  let events = 0;
  return {
    event: () => void (events += 1),
    print: () => {
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      const per = [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${(n / Math.max(1, events)).toFixed(3)}`);
      process.stderr.write(`pg ${side}: ${events} events, ${(total / Math.max(1, events)).toFixed(2)} statements/event (${per.join(', ')})\n`);
      counts.clear();
      events = 0;
    },
  };
}
