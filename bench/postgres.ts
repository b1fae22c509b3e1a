// PostgreSQL outbox (issue 9, item 6). Not a test: prints a table, asserts nothing.
//
//   npx tsx bench/postgres.ts [--emits 2000] [--reps 3] [--deliveries 4000]
//
// 1. emits/s, each in the caller's own transaction (BEGIN; emit(…, { tx }); COMMIT), next to the
//    same transaction with a bare INSERT of the same row into a table of the same shape instead.
// 2. emits/s alone (no tx: the outbox's own group commit), bursts of 100 concurrent emits, next to
//    100 concurrent bare autocommit INSERTs of the same row.
// 3. delivered events/s from a backlog, with one and with two sender instances (child processes)
//    sharing the outbox, to a local sink answering 200 at once.
// Needs PostgreSQL at EVENTS_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool, type PoolClient } from 'pg';
import { createEventBus } from '../src/index.js';
import { createEvent, toStructuredBody } from '../src/protocol/cloudevents.js';
import type { Transport } from '../src/send/transport.js';
import { discardLogger, EVENT_TYPE, fmt, listen, median, payload, SECRET, table } from './lib.js';

const { values } = parseArgs({
  options: { emits: { type: 'string' }, reps: { type: 'string' }, deliveries: { type: 'string' } },
});
const EMITS = Number(values.emits ?? 2000);
const REPS = Number(values.reps ?? 3);
const DELIVERIES = Number(values.deliveries ?? 4000);
const URL = process.env.EVENTS_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const BURST = 100;

/** Never delivers: the emit side is measured alone (the dispatcher claims a few and waits). */
const idle: Transport = { send: () => new Promise(() => {}), close: async () => {} };

async function main(): Promise<void> {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const pool = new Pool({ connectionString: URL, max: 8 });
  await pool.query(`CREATE SCHEMA "${schema}"`);
  const bus = createEventBus({
    service: 'bench',
    secret: SECRET,
    services: { sink: 'http://127.0.0.1:9/events' },
    database: pool,
    databaseSchema: schema,
    transport: idle,
    concurrency: 1,
    shutdownTimeoutMs: 0,
    logger: discardLogger('error'),
  });
  bus.declareEvent(EVENT_TYPE, ['sink']);
  await bus.outboxStats(); // tables created
  // The bare baseline: a table of the outbox's shape (indexes included), the same row.
  await pool.query(`CREATE TABLE "${schema}".bare (LIKE "${schema}".events_outbox INCLUDING ALL)`);
  const insertBare = `INSERT INTO "${schema}".bare (service, event_id, type, source, target, body, created_at, next_attempt_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`;
  const bareRow = (seq: number) => {
    const event = createEvent('bench', EVENT_TYPE, payload(seq));
    return ['bench', event.id, EVENT_TYPE, 'bench', 'sink', toStructuredBody(event), Date.now()];
  };

  const rows: Record<string, number[]> = { txEmit: [], txBare: [], aloneEmit: [], aloneBare: [] };
  for (let rep = 0; rep <= REPS; rep += 1) {
    const client: PoolClient = await pool.connect();
    const tx = async (work: (i: number) => Promise<unknown>) => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < EMITS; i += 1) {
        await client.query('BEGIN');
        await work(i);
        await client.query('COMMIT');
      }
      return EMITS / (Number(process.hrtime.bigint() - start) / 1e9);
    };
    const txBare = await tx((i) => client.query(insertBare, bareRow(i)));
    const txEmit = await tx((i) => bus.emit(EVENT_TYPE, payload(i), { tx: client }));
    client.release();
    const bursts = async (work: (i: number) => Promise<unknown>) => {
      const start = process.hrtime.bigint();
      for (let at = 0; at < EMITS; at += BURST) await Promise.all(Array.from({ length: BURST }, (_, i) => work(at + i)));
      return EMITS / (Number(process.hrtime.bigint() - start) / 1e9);
    };
    const aloneBare = await bursts((i) => pool.query(insertBare, bareRow(i)));
    const aloneEmit = await bursts((i) => bus.emit(EVENT_TYPE, payload(i)));
    if (rep === 0) continue; // warm-up
    rows.txEmit!.push(txEmit);
    rows.txBare!.push(txBare);
    rows.aloneEmit!.push(aloneEmit);
    rows.aloneBare!.push(aloneBare);
    process.stderr.write(`rep ${rep}: tx ${fmt.int(txEmit)} vs ${fmt.int(txBare)}, alone ${fmt.int(aloneEmit)} vs ${fmt.int(aloneBare)}\n`);
  }
  await bus.close();

  const delivered: Record<string, number> = {};
  for (const instances of [1, 2]) delivered[instances] = await deliveryRate(pool, schema, instances);

  const m = (key: string) => median(rows[key]!);
  console.log(
    table(
      ['scenario', 'PG outbox emits/s', 'bare INSERT/s', 'ratio'],
      [
        ['in the caller\'s transaction (BEGIN; emit; COMMIT)', fmt.int(m('txEmit')), fmt.int(m('txBare')), (m('txEmit') / m('txBare')).toFixed(2)],
        [`alone, bursts of ${BURST} concurrent`, fmt.int(m('aloneEmit')), fmt.int(m('aloneBare')), (m('aloneEmit') / m('aloneBare')).toFixed(2)],
      ],
    ),
  );
  console.log(
    table(
      ['sender instances', `delivered events/s (backlog of ${DELIVERIES})`],
      Object.entries(delivered).map(([n, rate]) => [n, fmt.int(rate)]),
    ),
  );
  await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
  await pool.end();
}

/** A backlog of DELIVERIES rows, drained by `instances` child processes to a sink answering 200: events/s. */
async function deliveryRate(pool: Pool, schema: string, instances: number): Promise<number> {
  const event = createEvent('bench', EVENT_TYPE, payload(1));
  const body = toStructuredBody(event);
  await pool.query(
    `INSERT INTO "${schema}".events_outbox (service, event_id, type, source, target, body, created_at, next_attempt_at)
     SELECT 'bench-d', md5(g::text), $1, 'bench-d', 'sink', $2, $3, $3 FROM generate_series(1, $4) g`,
    [EVENT_TYPE, body, Date.now(), DELIVERIES],
  );
  const sink = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'delivered', id: req.headers['webhook-id'] }));
    });
  });
  const url = await listen(sink);
  const children = Array.from({ length: instances }, () =>
    fork(join(__dirname, 'postgres-instance.ts'), [], {
      execArgv: ['--require', 'tsx/cjs'],
      env: { ...process.env, BENCH_DB: URL, BENCH_SCHEMA: schema, BENCH_SINK: url },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    }),
  );
  await Promise.all(children.map((child) => new Promise((resolve) => child.once('message', resolve))));
  const start = process.hrtime.bigint();
  for (const child of children) child.send('go');
  for (;;) {
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".events_outbox WHERE service = 'bench-d'`);
    if (rows[0].n === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const rate = DELIVERIES / (Number(process.hrtime.bigint() - start) / 1e9);
  for (const child of children) child.kill('SIGKILL');
  sink.close();
  return rate;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
