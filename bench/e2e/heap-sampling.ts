/**
 * `BENCH_HEAP=<dir>`: a child of the end-to-end bench samples what it allocates over a measured
 * window (V8's sampling heap profiler, objects collected since included) and writes it to
 * `<dir>/<side>-<system>-<events>ev-<pid>.heapprofile`, the events it emitted or received in the
 * window in the name; `npx tsx bench/heapprofile-top.ts <file> <events>` gives bytes per event.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { startHeapSampler } from '../lib.js';

const dir = process.env.BENCH_HEAP;
let sampling: { session: Session; system: string; countAtStart: number } | undefined;

/** Starts sampling `system`'s run (when BENCH_HEAP is set), `count` being the side's event count now. */
export async function startHeapSampling(count: number, system: string): Promise<void> {
  if (!dir || sampling) return;
  const session = new Session();
  session.connect();
  await startHeapSampler(session, 1024);
  sampling = { session, system, countAtStart: count };
}

/** Stops sampling and writes the profile, named by `side`, the system and the events counted since the start. */
export async function stopHeapSampling(side: 'sender' | 'receiver', count: number): Promise<void> {
  if (!sampling) return;
  const { session, system, countAtStart } = sampling;
  sampling = undefined;
  const { profile } = await session.post('HeapProfiler.stopSampling');
  session.disconnect();
  mkdirSync(dir!, { recursive: true });
  writeFileSync(join(dir!, `${side}-${system}-${count - countAtStart}ev-${process.pid}.heapprofile`), JSON.stringify(profile));
}
