/**
 * One measured run of one system: the sender emits for a warm-up and a window; the figures are
 * deltas over the window, taken from every process at (nearly) the same moment.
 */
import { randomBytes } from 'node:crypto';
import { sleep } from '../lib.js';
import type { Peer } from './ipc.js';
import type { GoArgs } from './sender.js';
import { percentile } from './stats.js';
import type { SystemName } from './system.js';

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
}

interface Snap {
  count: number;
  cpuUs: number;
}

export async function measure(system: SystemName, addresses: string[], scenario: Scenario, timing: Timing, sender: Peer, receivers: Peer[]): Promise<Figures> {
  const run = randomBytes(4).toString('hex');
  const targets = receivers.slice(0, scenario.targets);
  const snapAll = () => Promise.all(targets.map((r) => r.call<Snap>('snap')));

  await Promise.all(targets.map((r) => r.call('reset', { run })));
  await sender.call('open', { system, addresses: addresses.slice(0, scenario.targets), run });
  await sender.call('go', { mode: scenario.mode, rate: timing.rate, gap: timing.gap, burst: timing.burst, window: timing.window } satisfies GoArgs);
  const received = async () => Math.min(...(await Promise.all(targets.map((r) => r.call<number>('count')))));
  // Paced runs need no bound, and their CPU figures stay free of the feedback's IPC.
  let polling = scenario.mode === 'saturate';
  const poll = (async () => {
    while (polling) {
      await sender.call('received', { n: await received() });
      await sleep(timing.pollMs);
    }
  })();

  await sleep(timing.warmupMs);
  const [s0, ...r0] = await Promise.all([sender.call<{ cpuUs: number; errors: number }>('snap'), ...targets.map((r) => r.call<Snap>('record'))]);
  const startedAt = performance.now();
  await sleep(timing.windowMs);
  const [s1, r1] = await Promise.all([sender.call<{ cpuUs: number }>('snap'), snapAll()]);
  const seconds = (performance.now() - startedAt) / 1000;
  const samples = (await Promise.all(targets.map((r) => r.call<number[]>('latencies')))).flat();

  const stopped = await sender.call<{ sent: number; errors: number; firstError?: string }>('stop', { settleMs: timing.drainMs });
  const deadline = Date.now() + timing.drainMs;
  while ((await received()) < stopped.sent && Date.now() < deadline) await sleep(timing.pollMs);
  polling = false;
  await poll;
  await sender.call('close');

  const deliveries = r1.map((s, i) => s.count - r0[i]!.count);
  const events = Math.min(...deliveries);
  const receiverCpu = r1.reduce((sum, s, i) => sum + s.cpuUs - r0[i]!.cpuUs, 0);
  return {
    eventsPerSec: events / seconds,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    senderCpuUs: events > 0 ? (s1.cpuUs - s0.cpuUs) / events : NaN,
    receiverCpuUs: events > 0 ? receiverCpu / deliveries.reduce((a, b) => a + b, 0) : NaN,
    errors: stopped.errors,
    ...(stopped.firstError ? { firstError: stopped.firstError } : {}),
  };
}
