/**
 * `npm run bench -- --e2e [--quick] [--reps 3] [--seconds 10] [--rate 500] [--in-flight 1000] [--only lib-batch,moleculer] [--scenarios sat1,sat3,low]`:
 * the library next to hand-written HTTP loops, Moleculer over NATS and amqplib over RabbitMQ,
 * end to end, in one table. One sender process and three target processes host every system's
 * sides; repetitions are interleaved (rep 1 of every system and scenario, then rep 2, …) after a
 * discarded warm-up rep, and medians reported, so the ratios hold on a noisy shared machine.
 * `--in-flight`: the most events sent and not yet received by every target at saturation.
 * Progress goes to stderr, the table to stdout.
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { type MockCluster, startMockCluster } from '../../test/helpers/kafka.js';
import { fmt } from '../lib.js';
import { Peer } from './ipc.js';
import { type Figures, measure, type Scenario, type Timing } from './measure.js';
import { key, report, type Results } from './report.js';
import { type SystemInfo, type SystemName, SYSTEMS, WINDOW } from './system.js';

const SCENARIOS: Scenario[] = [
  { key: 'sat1', targets: 1, mode: 'saturate' },
  { key: 'sat3', targets: 3, mode: 'saturate' },
  { key: 'low', targets: 1, mode: 'paced' },
];

export async function runE2E(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      e2e: { type: 'boolean' },
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      seconds: { type: 'string' },
      rate: { type: 'string', default: '500' },
      only: { type: 'string' },
      'in-flight': { type: 'string', default: '1000' },
      scenarios: { type: 'string' },
    },
  });
  const quick = values.quick!;
  const scenarios = values.scenarios ? SCENARIOS.filter((s) => values.scenarios!.split(',').includes(s.key)) : SCENARIOS;
  if (scenarios.length === 0) throw new Error(`--scenarios: one or more of ${SCENARIOS.map((s) => s.key).join(', ')}, not ${values.scenarios}`);
  const reps = Number(values.reps ?? (quick ? 1 : 3));
  const windowMs = 1000 * Number(values.seconds ?? (quick ? 0.4 : 10));
  const rate = Number(values.rate);
  /** Paced runs need fewer seconds for stable percentiles (5 s at 500/s: 2,500 samples). */
  const lowMs = Math.max(windowMs / 2, 400);
  const gap = Number(values['in-flight']);
  if (!(gap > 0)) throw new Error(`--in-flight: a positive number of events, not ${values['in-flight']}`);
  // The feedback must come back well within the time the bound lasts: at 40,000 events/s a
  // bound of 1,000 is 25 ms, so 10 ms (20 ms from a bound of 2,000 up).
  const base = { burst: 100, window: WINDOW, rate, gap, pollMs: quick || gap < 2_000 ? 10 : 20 };
  // --quick fits in a minute: short windows, a short wait for the targets to drain
  // (they ignore a previous run's leftovers), a warm-up rep of 1-target runs only.
  const timing = (scenario: Scenario, rep: number): Timing => {
    const shortWarmup = rep === 0 || quick;
    const low = scenario.mode === 'paced';
    return {
      ...base,
      drainMs: quick ? 300 : 10_000,
      warmupMs: shortWarmup ? (quick ? 200 : 1_000) : 2_000,
      windowMs: rep === 0 ? (quick ? 200 : 2_000) : low ? lowMs : windowMs,
    };
  };
  const log = (text: string) => process.stderr.write(`${text}\n`);
  const startedAt = performance.now();
  const loadBefore = loadavg();
  process.env.BENCH_E2E_ID = `bench-e2e-${randomBytes(4).toString('hex')}`;

  const wanted = values.only ? new Set(values.only.split(',')) : undefined;
  const unknown = [...(wanted ?? [])].filter((name) => !SYSTEMS.some((s) => s.name === name));
  if (unknown.length) throw new Error(`--only: unknown system ${unknown.join(', ')} (known: ${SYSTEMS.map((s) => s.name).join(', ')})`);
  const systems: SystemInfo[] = [];
  const skipped: { info: SystemInfo; reason: string }[] = [];
  for (const info of SYSTEMS) {
    if (wanted && !wanted.has(info.name)) continue;
    const reason = await info.unavailable?.();
    if (reason) {
      skipped.push({ info, reason });
      log(`skipping ${info.label}: ${reason}`);
    } else systems.push(info);
  }

  // One Kafka cluster for the run (librdkafka's mock, through kcat), unless one was given: its
  // address reaches the children through their environment, so it is set before they start.
  let cluster: MockCluster | undefined;
  if (systems.some((s) => s.kafka) && !process.env.BENCH_KAFKA_URL) {
    cluster = await startMockCluster();
    process.env.BENCH_KAFKA_URL = cluster.url;
    log(`Kafka mock cluster at ${cluster.bootstrap}`);
  }
  const senders = Array.from({ length: Math.max(1, ...systems.map((s) => s.senders ?? 1)) }, () => new Peer('sender.ts'));
  const receivers = [0, 1, 2].map((i) => new Peer('receiver.ts', [String(i)]));
  const addresses = new Map<SystemName, string[]>();
  const results: Results = new Map();
  try {
    // Every target side at once: broker connections and discovery wait in parallel.
    await Promise.all(
      systems.map(async ({ name, targetsOf }) => {
        const started = await Promise.all(receivers.map((r) => r.call<{ address: string }>('start', { system: targetsOf ?? name })));
        addresses.set(name, started.map((s) => s.address));
      }),
    );
    log(`targets up in ${fmt.ms((performance.now() - startedAt) / 1000)} s`);
    for (let rep = 0; rep <= reps; rep++) {
      // The order rotates each rep: no system always runs right after the same one (whose
      // leftovers, a queue still draining, would weigh on it).
      const order = systems.map((_, i) => systems[(i + rep) % systems.length]!);
      for (const info of order) {
        for (const scenario of scenarios) {
          if (info.scenarios && !info.scenarios.includes(scenario.key)) continue;
          if (rep === 0 && quick && scenario.key !== 'sat1' && scenarios.some((s) => s.key === 'sat1')) continue;
          const runStart = performance.now();
          // The machine's 1-minute load average as the run starts: latency on a shared machine follows it.
          const load = loadavg()[0]!;
          const figures: Figures = await measure(info.name, addresses.get(info.name)!, scenario, timing(scenario, rep), senders, receivers);
          if (rep > 0) (results.get(key(info.name, scenario.key)) ?? results.set(key(info.name, scenario.key), []).get(key(info.name, scenario.key))!).push(figures);
          log(
            `rep ${rep}/${reps}  ${info.name} ${scenario.key}: ${fmt.int(figures.eventsPerSec)} events/s, p50 ${fmt.ms(figures.p50Ms)} ms, ` +
              `sender ${fmt.us(figures.senderCpuUs)} µs, receiver ${fmt.us(figures.receiverCpuUs)} µs${figures.errors ? `, ${figures.errors} errors` : ''}` +
              `${figures.missing ? `, ${fmt.int(figures.missing)} of ${fmt.int(figures.sent)} not received after the drain wait` : ''}` +
              `${figures.duplicates ? `, ${fmt.int(figures.duplicates)} duplicate deliveries` : ''}` +
              `${figures.failedArrived ? `, ${fmt.int(figures.failedArrived)} failed emits delivered` : ''} ` +
              `(${fmt.ms((performance.now() - runStart) / 1000)} s, load ${load.toFixed(1)})`,
          );
        }
      }
    }
    console.log(
      report({ systems, skipped, results, reps, windowSeconds: windowMs / 1000, lowSeconds: lowMs / 1000, rate, gap, loadBefore }),
    );
  } finally {
    await Promise.allSettled(receivers.map((r) => r.call('close')));
    for (const peer of [...senders, ...receivers]) peer.close();
    await cluster?.stop();
    log(`e2e bench done in ${fmt.int((performance.now() - startedAt) / 1000)} s`);
  }
}
