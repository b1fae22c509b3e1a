/**
 * `npm run bench` (tsx bench/run.ts): every figure and its baseline measured in the same run,
 * repetitions interleaved (rep 1 of everything, then rep 2, …) after one discarded warm-up rep,
 * medians reported, so that ratios hold on a noisy shared machine.
 *
 * Options: --reps 5 --emits 20000 --seconds 3 --connections 32 --only emit|receive
 * `--e2e [--quick]` runs the end-to-end comparison instead (bench/e2e/run-e2e.ts, its own options).
 * BENCH_DIR=<dir> puts the SQLite files elsewhere than the OS temp dir (e.g. /dev/shm to take the
 * disk out of the figures).
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { type EmitFigures, type EmitScenario, measureEmits, measureRawSqlite, type Target } from './emit.js';
import { ask, deadPort, fmt, forkTs, median, table } from './lib.js';
import { measureReceiver, type ReceiveFigures, type ReceiverKind, startReceivers } from './receive.js';
import { type AmqpFigures, measureLibrary, measureRaw } from './amqp.js';
import { runE2E } from './e2e/run-e2e.js';

const E2E = process.argv.includes('--e2e');
const { values } = parseArgs({
  // --e2e hands every argument to the end-to-end bench, which checks them itself.
  args: E2E ? [] : process.argv.slice(2),
  options: {
    reps: { type: 'string', default: '5' },
    emits: { type: 'string', default: '20000' },
    seconds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    only: { type: 'string' },
    broker: { type: 'string', default: 'amqp://guest:guest@127.0.0.1:5672' },
    'amqp-events': { type: 'string', default: '10000' },
    window: { type: 'string', default: '64' },
  },
});
const AMQP_EVENTS = Number(values['amqp-events']);
const WINDOW = Number(values.window);
const AMQP_ROWS = [
  { label: 'hand-written amqplib: confirms, manual ack (baseline)', run: measureRaw },
  { label: 'library, durable SQLite outbox', run: (c: Parameters<typeof measureRaw>[0], j: Parameters<typeof measureRaw>[1]) => measureLibrary(c, { ...j, outbox: 'sqlite' }) },
  { label: 'library, in-memory outbox', run: (c: Parameters<typeof measureRaw>[0], j: Parameters<typeof measureRaw>[1]) => measureLibrary(c, { ...j, outbox: 'memory' }) },
];
const REPS = Number(values.reps);
const EMITS = Number(values.emits);
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const BURST = 100;

interface EmitRow {
  label: string;
  run: () => Promise<EmitFigures> | EmitFigures;
  /** Label of the raw SQLite row its rows/s are compared with. */
  raw?: string;
  /** Label of the in-memory row with the same mode, for the durable ÷ memory ratio. */
  memory?: string;
}

const RAW_BATCH = 'raw better-sqlite3, 1000 rows/txn (baseline)';
const RAW_SINGLE = 'raw better-sqlite3, 1 row/txn (baseline)';
const MEM_BURST = 'memory outbox, 1 target, bursts of 100';
const MEM_SEQ = 'memory outbox, 1 target, sequential';

const RECEIVERS: { kind: ReceiverKind; label: string }[] = [
  { kind: 'raw', label: 'raw node:http: HMAC verify + JSON.parse + 204 (baseline)' },
  { kind: 'node', label: 'library nodeHandler (verify, parse, ajv, dedupe, handler)' },
  { kind: 'express', label: 'Express 5 + eventsMiddleware()' },
];

async function main(): Promise<void> {
  const log = (text: string) => process.stderr.write(`${text}\n`);
  const loadBefore = loadavg()[0]!;
  const doEmit = values.only === undefined || values.only === 'emit';
  const doReceive = values.only === undefined || values.only === 'receive';
  const doAmqp = values.only === undefined || values.only === 'amqp';
  const amqpConsumer = doAmqp ? forkTs('amqp-consumer.ts') : undefined;
  const amqpResults = new Map<string, AmqpFigures[]>();

  const dead: Target = { url: `http://127.0.0.1:${await deadPort()}` };
  const sink = forkTs('sink.ts');
  const { url: liveUrl } = await ask<{ url: string }>(sink, 'url?');
  const live: Target = { url: liveUrl, count: async () => (await ask<{ count: number }>(sink, 'count')).count };

  /** Emits timed per run; the warm-up rep uses fewer. Sequential runs time a quarter, live runs half. */
  let emits = EMITS;
  const share = (part: number) => Math.max(500, Math.round(emits * part));
  const emitOf = (s: EmitScenario, target: Target, part = 1) => () =>
    measureEmits(s, target, share(part), { warmup: 2_000, burst: BURST });
  const base = { store: 'sqlite', targets: 1, mode: 'burst', target: 'dead', logLevel: 'warn' } as const;
  const seq = { ...base, mode: 'sequential' } as const;

  const emitRows: EmitRow[] = [
    { label: RAW_BATCH, run: () => measureRawSqlite(emits, 1000) },
    { label: RAW_SINGLE, run: () => measureRawSqlite(share(1 / 4), 1) },
    { label: MEM_BURST, run: emitOf({ ...base, store: 'memory' }, dead) },
    { label: MEM_SEQ, run: emitOf({ ...seq, store: 'memory' }, dead, 1 / 4) },
    { label: 'durable, 1 target, bursts of 100', run: emitOf(base, dead), raw: RAW_BATCH, memory: MEM_BURST },
    { label: 'durable, 3 targets, bursts of 100', run: emitOf({ ...base, targets: 3 }, dead), raw: RAW_BATCH, memory: MEM_BURST },
    { label: 'durable, 1 target, sequential', run: emitOf(seq, dead, 1 / 4), raw: RAW_SINGLE, memory: MEM_SEQ },
    { label: 'durable, 3 targets, sequential', run: emitOf({ ...seq, targets: 3 }, dead, 1 / 4), raw: RAW_SINGLE, memory: MEM_SEQ },
    { label: 'durable, 1 target, bursts, live 204 target', run: emitOf({ ...base, target: 'live' }, live, 1 / 2), raw: RAW_BATCH, memory: MEM_BURST },
    { label: 'durable, 1 target, bursts, logger at info', run: emitOf({ ...base, logLevel: 'info' }, dead), raw: RAW_BATCH, memory: MEM_BURST },
  ];

  const emitResults = new Map<string, EmitFigures[]>();
  const receiveResults = new Map<ReceiverKind, ReceiveFigures[]>();
  const loadGen = doReceive ? forkTs('load.ts') : undefined;
  const receivers = doReceive ? await startReceivers() : undefined;
  const keep = <K, V>(map: Map<K, V[]>, key: K, value: V) => (map.get(key) ?? map.set(key, []).get(key)!).push(value);

  // Rep 0 warms every path up (JIT, SQLite, sockets) with small runs; it is not reported.
  for (let rep = 0; rep <= REPS; rep++) {
    emits = rep === 0 ? Math.min(EMITS, 3_000) : EMITS;
    if (doEmit) {
      for (const row of emitRows) {
        const result = await row.run();
        if (rep > 0) keep(emitResults, row.label, result);
        const figure = row.label.startsWith('raw') ? `${fmt.int(result.rowsPerSec)} rows/s` : `${fmt.int(result.emitsPerSec)} emits/s`;
        log(`rep ${rep}/${REPS}  ${row.label}: ${figure}`);
      }
    }
    if (receivers && loadGen) {
      for (const { kind, label } of RECEIVERS) {
        const job = { warmupSeconds: 0.5, seconds: rep > 0 ? SECONDS : 1, connections: CONNECTIONS };
        const result = await measureReceiver(loadGen, receivers.urls[kind], job);
        if (rep > 0) keep(receiveResults, kind, result);
        log(`rep ${rep}/${REPS}  ${label}: ${fmt.int(result.requestsPerSec)} req/s`);
      }
    }
    if (amqpConsumer) {
      for (const row of AMQP_ROWS) {
        const result = await row.run(amqpConsumer, { url: values.broker!, events: rep > 0 ? AMQP_EVENTS : 2_000, window: WINDOW });
        if (rep > 0) keep(amqpResults, row.label, result);
        log(`rep ${rep}/${REPS}  ${row.label}: ${fmt.int(result.eventsPerSec)} events/s`);
      }
    }
  }

  const out = [
    `events-library bench — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ` +
      `load average ${loadBefore.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}; medians of ${REPS} interleaved repetitions`,
  ];
  if (doEmit) {
    const med = (label: string, pick: (f: EmitFigures) => number | undefined) =>
      median(emitResults.get(label)!.map((f) => pick(f) ?? NaN));
    const rows = emitRows.map((row) => {
      const emitsPerSec = emitResults.get(row.label)!.map((f) => f.emitsPerSec);
      const isRaw = row.raw === undefined && row.label.startsWith('raw');
      const optional = (n: number) => (Number.isNaN(n) ? '' : fmt.int(n));
      return [
        row.label,
        isRaw ? '—' : `${fmt.int(median(emitsPerSec))} (${fmt.int(Math.min(...emitsPerSec))}–${fmt.int(Math.max(...emitsPerSec))})`,
        fmt.int(med(row.label, (f) => f.rowsPerSec)),
        fmt.us(med(row.label, (f) => f.cpuUs)),
        fmt.ms(med(row.label, (f) => f.p50Ms)),
        fmt.ms(med(row.label, (f) => f.p99Ms)),
        row.raw ? fmt.ratio(med(row.label, (f) => f.rowsPerSec) / med(row.raw, (f) => f.rowsPerSec)) : '—',
        row.memory ? fmt.ratio(median(emitsPerSec) / med(row.memory, (f) => f.emitsPerSec)) : '—',
        optional(med(row.label, (f) => f.deliveredPerSec)),
        optional(med(row.label, (f) => f.drainPerSec)),
      ];
    });
    out.push(
      '',
      `Emit path: 1 KB payload, ajv schema (6 fields); ${fmt.int(EMITS)} emits timed per run (sequential ${fmt.int(EMITS / 4)}, ` +
        `live ${fmt.int(EMITS / 2)}) after 2,000 untimed; a fresh bus and file per run; target: a port nothing listens on unless live`,
      table(
        ['scenario', 'emits/s (min–max)', 'rows/s', 'CPU µs/op', 'p50 ms', 'p99 ms', 'rows ÷ raw', '÷ memory', 'delivered/s', 'drain/s'],
        rows,
      ),
    );
  }
  if (doReceive) {
    const raw = receiveResults.get('raw')!;
    const rawRps = median(raw.map((r) => r.requestsPerSec));
    const rawCpu = median(raw.map((r) => r.cpuUs));
    const rows = RECEIVERS.map(({ kind, label }) => {
      const figures = receiveResults.get(kind)!;
      const rps = figures.map((f) => f.requestsPerSec);
      const cpu = median(figures.map((f) => f.cpuUs));
      return [
        label,
        `${fmt.int(median(rps))} (${fmt.int(Math.min(...rps))}–${fmt.int(Math.max(...rps))})`,
        fmt.us(cpu),
        fmt.ratio(median(rps) / rawRps),
        fmt.ratio(cpu / rawCpu),
        String(figures.reduce((n, f) => n + f.non2xx + f.errors, 0)),
      ];
    });
    out.push(
      '',
      `Receiver: signed structured CloudEvent (1 KB data, a fresh id each), ${CONNECTIONS} keep-alive connections ` +
        `from a child process, ${SECONDS} s per run after 0.5 s untimed`,
      table(['server', 'req/s (min–max)', 'server CPU µs/req', 'req/s ÷ raw', 'CPU ÷ raw', 'non-2xx'], rows),
    );
  }
  if (doAmqp) {
    const base = median(amqpResults.get(AMQP_ROWS[0]!.label)!.map((f) => f.eventsPerSec));
    const rows = AMQP_ROWS.map(({ label }) => {
      const figures = amqpResults.get(label)!;
      const rate = figures.map((f) => f.eventsPerSec);
      return [
        label,
        `${fmt.int(median(rate))} (${fmt.int(Math.min(...rate))}–${fmt.int(Math.max(...rate))})`,
        fmt.ratio(median(rate) / base),
        fmt.us(median(figures.map((f) => f.senderCpuUs))),
        fmt.us(median(figures.map((f) => f.consumerCpuUs))),
      ];
    });
    out.push(
      '',
      `RabbitMQ end to end: 1 KB payload, ${fmt.int(AMQP_EVENTS)} events per run, sender here and consumer in a child process, ` +
        `quorum queues, persistent, ${WINDOW} publishes in flight (confirms) and prefetch ${WINDOW}`,
      table(['path', 'delivered events/s (min–max)', '÷ hand-written', 'sender CPU µs/event', 'consumer CPU µs/event'], rows),
    );
  }
  console.log(out.join('\n'));
  amqpConsumer?.disconnect();

  await receivers?.close();
  loadGen?.disconnect();
  sink.disconnect();
}

(E2E ? runE2E(process.argv.slice(2)) : main()).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
