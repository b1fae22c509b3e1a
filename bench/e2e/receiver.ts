/**
 * A target process of the end-to-end bench (index in argv): hosts each system's receiving side,
 * started on first use and kept, and counts the events of the run under measurement, each `seq`
 * once (`distinct`) and again for every further delivery of it (`duplicates`).
 */
import { type E2EPayload, now } from './event.js';
import { serve } from './ipc.js';
import { startHeapSampling, stopHeapSampling } from './heap-sampling.js';
import { cpuNow, Reservoir } from './stats.js';
import { type ReceiverSide, type SystemName, systemInfo } from './system.js';

const index = Number(process.argv[2] ?? 0);
/** Promises, so two systems starting the same side at once (`targetsOf`) share one. */
const sides = new Map<SystemName, Promise<ReceiverSide>>();
/** Latency samples kept per window: enough for a stable p99, small enough for IPC. */
const latencies = new Reservoir(20_000);
let run = '';
let count = 0;
let recording = false;
/** One byte per `seq` (from 100,000) of the run: seen or not. Grows by doubling. */
let seen = new Uint8Array(1 << 20);
let distinct = 0;
let duplicates = 0;

function mark(seq: number): void {
  const slot = seq - 100_000;
  if (slot < 0) return;
  if (slot >= seen.length) {
    const grown = new Uint8Array(Math.max(seen.length * 2, slot + 1));
    grown.set(seen);
    seen = grown;
  }
  if (seen[slot]) duplicates += 1;
  else {
    seen[slot] = 1;
    distinct += 1;
  }
}

function sink(data: E2EPayload): void {
  if (data.run !== run) return;
  count += 1;
  mark(data.seq);
  if (recording) latencies.add(now() - data.sent_at);
}

const snap = () => ({ count, cpuUs: cpuNow() });

serve({
  start: async ({ system }: { system: SystemName }) => {
    let side = sides.get(system);
    if (!side) {
      side = (async () => (await systemInfo(system).load()).receiver(system, index, sink))();
      sides.set(system, side);
    }
    return { address: (await side).address };
  },
  reset: ({ run: next }: { run: string }) => {
    run = next;
    count = distinct = duplicates = 0;
    seen.fill(0);
    recording = false;
    latencies.clear();
    return {};
  },
  /** Starts the measured window; `sampled`: a saturated run's system, whose allocations BENCH_HEAP samples until `latencies`. */
  record: async ({ sampled }: { sampled?: SystemName } = {}) => {
    latencies.clear();
    recording = true;
    if (sampled) await startHeapSampling(count, sampled);
    return snap();
  },
  snap,
  /** The backlog feedback, many times a second: the count alone, no CPU reading. */
  count: () => count,
  ids: () => ({ distinct, duplicates }),
  /** How many of `seqs` (the emits the sender saw fail) arrived all the same. */
  arrived: ({ seqs }: { seqs: number[] }) => seqs.filter((seq) => seq >= 100_000 && seen[seq - 100_000] === 1).length,
  latencies: async () => {
    recording = false;
    await stopHeapSampling('receiver', count);
    return latencies.values;
  },
  close: async () => {
    for (const side of sides.values()) await (await side).close();
    sides.clear();
    return {};
  },
});
