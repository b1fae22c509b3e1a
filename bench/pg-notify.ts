/**
 * `npx tsx bench/pg-notify.ts [--reps 3] [--inserts 1500] [--concurrency 20]`: autocommit INSERTs
 * of a 1.2 KB row from `concurrency` loops on one pool (10), plain against the same INSERT with a
 * `pg_notify` in its statement (as the PostgreSQL outbox's emit does), interleaved; a scratch
 * table in EVENTS_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), dropped after.
 * PostgreSQL serialises the commits of notifying transactions on one lock, so they cannot share a
 * WAL flush: this measures what that costs here.
 */
import { parseArgs } from 'node:util';
import { Pool } from 'pg';
import { fmt, median } from './lib.js';

const { values } = parseArgs({
  options: { reps: { type: 'string', default: '3' }, inserts: { type: 'string', default: '1500' }, concurrency: { type: 'string', default: '20' } },
});
const url = process.env.EVENTS_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const table = `bench_pg_notify_${process.pid}`;
const body = 'x'.repeat(1200);

async function rate(pool: Pool, notify: boolean, inserts: number, concurrency: number): Promise<number> {
  const text = notify
    ? `WITH ins AS (INSERT INTO ${table} (body) VALUES ($1) RETURNING 1) SELECT pg_notify('${table}', 'x') FROM ins`
    : `INSERT INTO ${table} (body) VALUES ($1)`;
  let next = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < inserts) await pool.query(text, [body]);
    }),
  );
  return inserts / ((performance.now() - startedAt) / 1000);
}

async function main(): Promise<void> {
  const pool = new Pool({ connectionString: url, max: 10 });
  const [reps, inserts, concurrency] = [Number(values.reps), Number(values.inserts), Number(values.concurrency)];
  await pool.query(`CREATE TABLE ${table} (id bigserial PRIMARY KEY, body text NOT NULL)`);
  try {
    await rate(pool, false, inserts / 5, concurrency);
    const plain: number[] = [];
    const notifying: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      plain.push(await rate(pool, false, inserts, concurrency));
      notifying.push(await rate(pool, true, inserts, concurrency));
      process.stderr.write(`rep ${rep + 1}/${reps}: plain ${fmt.int(plain.at(-1)!)}/s, with pg_notify ${fmt.int(notifying.at(-1)!)}/s\n`);
    }
    console.log(
      `autocommit INSERTs/s, ${concurrency} loops, pool 10, medians of ${reps}: plain ${fmt.int(median(plain))}, ` +
        `with pg_notify ${fmt.int(median(notifying))}, ratio ${(median(notifying) / median(plain)).toFixed(2)}`,
    );
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  }
}

void main();
