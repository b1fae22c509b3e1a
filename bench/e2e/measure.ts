/**
 * One measured run of one system: the sender (or each sender process of the system) emits for a
 * warm-up and a window; the figures are deltas over the window, taken from every process at
 * (nearly) the same moment. After the drain wait, each target's distinct `seq`s are held against
 * what was sent: events missing and deliveries duplicated.
 */
import { randomBytes } from 'node:crypto';
import { sleep } from '../lib.js';
import type { Peer } from './ipc.js';
import type { GoArgs } from './sender.js';
import { percentile } from './stats.js';
import { type SenderPart, type SystemName, systemInfo } from './system.js';

export interface Scenario {
  key: 'sat1' | 'sat3' | 'low';
  targets: 1 | 3;
  mode: GoArgs['mode'];
}

export interface Timing {
  warmupMs: number;
  windowMs: number;
  /** Longest wait, after the sender stops, for its emits to settle and then for the targets to take what it sent. */
  drainMs: number;
  gap: number;
  burst: number;
  window: number;
  rate: number;
  /** How often the targets' counts are fed back to the sender (its bound on work in flight). */
  pollMs: number;
}

export interface Figures {
  /** Events every target received in the window, per second (the slowest target's count). */
  eventsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Sender CPU per event (each to every target), µs. */
  senderCpuUs: number;
  /** CPU of all target processes per delivery (one event at one target), µs. */
  receiverCpuUs: number;
  errors: number;
  firstError?: string;
  /** Events emitted over the whole run (warm-up and drain included), by every sender process. */
  sent: number;
  /** Sent events some target had not received when the drain wait ended (the most at one target). */
  missing: number;
  /** Deliveries of an event a target had already received, over the whole run, every target. */
  duplicates: number;
  /** Emits that failed (the caller told the event was not taken) and reached a target all the same (the most at one target). */
  failedArrived: number;
}

interface Snap {
  count: number;
  cpuUs: number;
}

export async function measure(system: SystemName, addresses: string[], scenario: Scenario, timing: Timing, senderPool: Peer[], receivers: Peer[]): Promise<Figures> {
  const run = randomBytes(4).toString('hex');
  const senders = senderPool.slice(0, systemInfo(system).senders ?? 1);
  const targets = receivers.slice(0, scenario.targets);
  const snapAll = () => Promise.all(targets.map((r) => r.call<Snap>('snap')));
  const cpuOfSenders = async () => (await Promise.all(senders.map((s) => s.call<{ cpuUs: number }>('snap')))).reduce((sum, s) => sum + s.cpuUs, 0);

  await Promise.all(targets.map((r) => r.call('reset', { run })));
  // The first sender opens first: the others join what it made (the outbox schema they share).
  let shared: string | undefined;
  for (const [index, sender] of senders.entries()) {
    const part: SenderPart = { index, of: senders.length, ...(shared ? { shared } : {}) };
    const opened = await sender.call<{ shared?: string }>('open', { system, addresses: addresses.slice(0, scenario.targets), run, part });
    shared ??= opened.shared;
  }
  const go = { mode: scenario.mode, rate: timing.rate, gap: timing.gap, burst: timing.burst, window: timing.window } satisfies GoArgs;
  await Promise.all(senders.map((s) => s.call('go', go)));
  const received = async () => Math.min(...(await Promise.all(targets.map((r) => r.call<number>('count')))));
  // Paced runs need no bound, and their CPU figures stay free of the feedback's IPC.
  let polling = scenario.mode === 'saturate';
  const poll = (async () => {
    while (polling) {
      const n = await received();
      await Promise.all(senders.map((s) => s.call('received', { n })));
      await sleep(timing.pollMs);
    }
  })();

  await sleep(timing.warmupMs);
  const [s0, ...r0] = await Promise.all([cpuOfSenders(), ...targets.map((r) => r.call<Snap>('record', { sampled: scenario.mode === 'saturate' ? system : undefined }))]);
  const startedAt = performance.now();
  await sleep(timing.windowMs);
  const [s1, r1] = await Promise.all([cpuOfSenders(), snapAll()]);
  const seconds = (performance.now() - startedAt) / 1000;
  const samples = (await Promise.all(targets.map((r) => r.call<number[]>('latencies')))).flat();

  const stops = await Promise.all(
    senders.map((s) => s.call<{ sent: number; errors: number; firstError?: string; failed: number[] }>('stop', { settleMs: timing.drainMs })),
  );
  const sent = stops.reduce((n, s) => n + s.sent, 0);
  const deadline = Date.now() + timing.drainMs;
  while ((await received()) < sent && Date.now() < deadline) await sleep(timing.pollMs);
  polling = false;
  await poll;
  const ids = await Promise.all(targets.map((r) => r.call<{ distinct: number; duplicates: number }>('ids')));
  const failed = stops.flatMap((s) => s.failed);
  const arrived = failed.length ? await Promise.all(targets.map((r) => r.call<number>('arrived', { seqs: failed }))) : [0];
  // The first sender made what the others joined: it closes last.
  for (const sender of [...senders].reverse()) await sender.call('close');

  const deliveries = r1.map((s, i) => s.count - r0[i]!.count);
  const events = Math.min(...deliveries);
  const receiverCpu = r1.reduce((sum, s, i) => sum + s.cpuUs - r0[i]!.cpuUs, 0);
  const firstError = stops.find((s) => s.firstError)?.firstError;
  return {
    eventsPerSec: events / seconds,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    senderCpuUs: events > 0 ? (s1 - s0) / events : NaN,
    receiverCpuUs: events > 0 ? receiverCpu / deliveries.reduce((a, b) => a + b, 0) : NaN,
    errors: stops.reduce((n, s) => n + s.errors, 0),
    ...(firstError ? { firstError } : {}),
    sent,
    missing: Math.max(0, ...ids.map((i) => sent - i.distinct)),
    duplicates: ids.reduce((n, i) => n + i.duplicates, 0),
    failedArrived: Math.max(...arrived),
  };
}
