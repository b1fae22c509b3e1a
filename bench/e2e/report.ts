/** The end-to-end table and the ratios the goals use. */
import { cpus, loadavg } from 'node:os';
import { fmt, table } from '../lib.js';
import type { Figures, Scenario } from './measure.js';
import { medianOf } from './stats.js';
import type { SystemInfo, SystemName } from './system.js';

export type Results = Map<string, Figures[]>;
export const key = (system: SystemName, scenario: Scenario['key']) => `${system}/${scenario}`;

export interface ReportInput {
  systems: SystemInfo[];
  skipped: { info: SystemInfo; reason: string }[];
  results: Results;
  reps: number;
  windowSeconds: number;
  lowSeconds: number;
  rate: number;
  gap: number;
  loadBefore: number[];
}

export function report(input: ReportInput): string {
  const { results, systems } = input;
  const med = (system: SystemName, scenario: Scenario['key'], pick: (f: Figures) => number) =>
    medianOf((results.get(key(system, scenario)) ?? []).map(pick));
  const rate = (system: SystemName, scenario: Scenario['key']) => {
    const all = (results.get(key(system, scenario)) ?? []).map((f) => f.eventsPerSec);
    const m = medianOf(all);
    return all.length > 1 ? `${fmt.int(m)} (${fmt.int(Math.min(...all))}–${fmt.int(Math.max(...all))})` : fmt.int(m);
  };
  const saturation = systems.map(({ name, label }) => [
    label,
    rate(name, 'sat1'),
    rate(name, 'sat3'),
    fmt.ms(med(name, 'sat1', (f) => f.p50Ms)),
    fmt.ms(med(name, 'sat1', (f) => f.p99Ms)),
    fmt.us(med(name, 'sat1', (f) => f.senderCpuUs)),
    fmt.us(med(name, 'sat1', (f) => f.receiverCpuUs)),
    fmt.us(med(name, 'sat3', (f) => f.senderCpuUs)),
    fmt.us(med(name, 'sat3', (f) => f.receiverCpuUs)),
  ]);
  const low = systems.map(({ name, label }) => [
    `${label} — at ${fmt.int(input.rate)}/s`,
    rate(name, 'low'),
    '',
    fmt.ms(med(name, 'low', (f) => f.p50Ms)),
    fmt.ms(med(name, 'low', (f) => f.p99Ms)),
    fmt.us(med(name, 'low', (f) => f.senderCpuUs)),
    fmt.us(med(name, 'low', (f) => f.receiverCpuUs)),
    '',
    '',
  ]);
  const header = [
    'system',
    '1 target: events/s (min–max)',
    '3 targets: events/s, each to 3',
    'p50 ms',
    'p99 ms',
    'sender µs/event',
    'receiver µs/event',
    '3 t: sender µs/event',
    '3 t: receivers µs/delivery',
  ];
  const lines = [
    `End to end, 1 KB JSON events, sender and each target in its own process; medians of ${input.reps} interleaved repetitions ` +
      `(a warm-up repetition discarded), ${input.windowSeconds} s measured per run after a warm-up.`,
    `Saturation rows: the sender emits as fast as the system takes events, with at most ${fmt.int(input.gap)} sent and not yet received; ` +
      `events/s counts events every target received in the window (at 3 targets: the slowest target's count); latency and ` +
      `1-target CPU are at 1 target, so saturated latency includes the queue the bound allows. Rows "at ${input.rate}/s": ` +
      `1 target, emits paced at ${input.rate}/s for ${input.lowSeconds} s. Latency is emit → handler (payload timestamp).`,
    '',
    table(header, [...saturation, ...low]),
    ...notes(input),
    '',
    ...ratios(med, results),
    '',
    machine(input.loadBefore),
  ];
  return lines.join('\n');
}

function notes({ skipped, results }: ReportInput): string[] {
  const out = skipped.map(({ info, reason }) => `skipped: ${info.label}: ${reason}`);
  for (const [name, figures] of results) {
    const errors = figures.reduce((n, f) => n + f.errors, 0);
    const first = figures.find((f) => f.firstError)?.firstError;
    if (errors > 0) out.push(`${name}: ${fmt.int(errors)} emits failed over the measured reps (first: ${first})`);
    const missing = figures.reduce((n, f) => n + f.missing, 0);
    const duplicates = figures.reduce((n, f) => n + f.duplicates, 0);
    if (missing > 0) out.push(`${name}: ${fmt.int(missing)} events sent and not received by every target when the drain wait ended, over the measured reps`);
    const failedArrived = figures.reduce((n, f) => n + f.failedArrived, 0);
    if (failedArrived > 0) out.push(`${name}: ${fmt.int(failedArrived)} of the failed emits reached a target all the same`);
    if (duplicates > 0) out.push(`${name}: ${fmt.int(duplicates)} duplicate deliveries (an event's handler run again at a target) over the measured reps`);
  }
  return out.length ? ['', ...out] : [];
}

function ratios(med: (s: SystemName, k: Scenario['key'], pick: (f: Figures) => number) => number, results: Results): string[] {
  const rate = (f: Figures) => f.eventsPerSec;
  const lib1 = med('lib-batch', 'sat1', rate);
  const lib3 = med('lib-batch', 'sat3', rate);
  const line = (label: string, value: number, goal: string) => `  ${label.padEnd(58)} ${fmt.ratio(value).padStart(6)}   goal ${goal}`;
  return [
    'Ratios (library = in-memory outbox, batching on, defaults):',
    line('1 target, library ÷ Moleculer over NATS', lib1 / med('moleculer', 'sat1', rate), '≥ 1.0'),
    line('1 target, library ÷ undici → raw node:http', lib1 / med('undici-raw', 'sat1', rate), '≥ 1.5'),
    line('3 targets, library ÷ Moleculer over NATS', lib3 / med('moleculer', 'sat3', rate), '≥ 1.0'),
    line('1 target, durable outbox + inbox ÷ in-memory', med('lib-durable', 'sat1', rate) / lib1, '≥ 0.5'),
    line('3 targets, durable outbox + inbox ÷ in-memory', med('lib-durable', 'sat3', rate) / lib3, '≥ 0.5'),
    line('1 target, PostgreSQL outbox + inbox ÷ in-memory', med('lib-postgres', 'sat1', rate) / lib1, '≥ 0.5'),
    line('3 targets, PostgreSQL outbox + inbox ÷ in-memory', med('lib-postgres', 'sat3', rate) / lib3, '≥ 0.5'),
    line('1 target, PostgreSQL ÷ hand-written PostgreSQL outbox', med('lib-postgres', 'sat1', rate) / med('pg-handwritten', 'sat1', rate), '≥ 1.5'),
    line('3 targets, PostgreSQL ÷ hand-written PostgreSQL outbox', med('lib-postgres', 'sat3', rate) / med('pg-handwritten', 'sat3', rate), '≥ 1.5'),
    line('1 target, PostgreSQL, two sender instances ÷ one', med('lib-postgres-2', 'sat1', rate) / med('lib-postgres', 'sat1', rate), '≥ 0.9'),
    line('3 targets, PostgreSQL, two sender instances ÷ one', med('lib-postgres-2', 'sat3', rate) / med('lib-postgres', 'sat3', rate), '≥ 0.9'),
    ...twoInstances(results),
    line('p50 latency at the paced rate, PostgreSQL ÷ in-memory', med('lib-postgres', 'low', (f) => f.p50Ms) / med('lib-batch', 'low', (f) => f.p50Ms), '≤ 2'),
    line('1 target, library over RabbitMQ ÷ amqplib', med('lib-amqp', 'sat1', rate) / med('amqp', 'sat1', rate), '≥ 1.0'),
    line('3 targets, library over RabbitMQ ÷ amqplib', med('lib-amqp', 'sat3', rate) / med('amqp', 'sat3', rate), '≥ 1.0'),
    line('3 targets, library over RabbitMQ, subscriptions ÷ amqplib', med('lib-amqp-sub', 'sat3', rate) / med('amqp', 'sat3', rate), '≥ 1.0'),
    line('1 target, PostgreSQL outbox over RabbitMQ ÷ amqplib', med('lib-pg-amqp', 'sat1', rate) / med('amqp', 'sat1', rate), '≥ 0.5'),
    line('3 targets, PostgreSQL outbox over RabbitMQ ÷ amqplib', med('lib-pg-amqp', 'sat3', rate) / med('amqp', 'sat3', rate), '≥ 0.5'),
    line('1 target, library over Kafka ÷ hand-written kafkajs', med('lib-kafka', 'sat1', rate) / med('kafkajs', 'sat1', rate), '≥ 1.0'),
    line('3 targets, library over Kafka ÷ hand-written kafkajs', med('lib-kafka', 'sat3', rate) / med('kafkajs', 'sat3', rate), '≥ 1.0'),
    line('1 target, batching on ÷ batch: false', lib1 / med('lib-single', 'sat1', rate), '(no goal)'),
    line('p50 latency at the paced rate, batching on ÷ batch: false', med('lib-batch', 'low', (f) => f.p50Ms) / med('lib-single', 'low', (f) => f.p50Ms), '≤ 1.2'),
    `  library CPU per event at saturation, 1 target: sender ${fmt.us(med('lib-batch', 'sat1', (f) => f.senderCpuUs))} µs, ` +
      `receiver ${fmt.us(med('lib-batch', 'sat1', (f) => f.receiverCpuUs))} µs   goal ≤ 20 / ≤ 20`,
  ];
}

/** Loss and duplicates of the two-instance row, every scenario and measured rep together. */
function twoInstances(results: Results): string[] {
  const runs = (['sat1', 'sat3', 'low'] as const).flatMap((scenario) => results.get(key('lib-postgres-2', scenario)) ?? []);
  if (runs.length === 0) return [];
  const sum = (pick: (f: Figures) => number) => fmt.int(runs.reduce((n, f) => n + pick(f), 0));
  return [
    `  PostgreSQL, two sender instances, ${runs.length} runs, ${sum((f) => f.sent)} events: ${sum((f) => f.missing)} not received after the drain wait, ` +
      `${sum((f) => f.duplicates)} delivered twice   goal 0 / 0`,
  ];
}

function machine(before: number[]): string {
  const avg = (l: number[]) => l.map((n) => n.toFixed(2)).join(' ');
  return (
    `Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, ` +
    `load average (1/5/15 min) ${avg(before)} before → ${avg(loadavg())} after`
  );
}
