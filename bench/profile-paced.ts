/**
 * The default path at an everyday rate, in one sender process and one receiver process
 * (`paced-receiver.ts`), for profiling what a lone event costs:
 *   npx tsx bench/profile-paced.ts [axios|undici|raw] [--seconds 6] [--rate 500] [--profile sender|receiver] [--heap]
 * Emits 1 KB events (the e2e payload) at `rate`/s from a loop woken every ms, as the e2e bench's
 * paced rows do; `raw` sends them with the hand-written undici loop of `e2e/raw-http.ts` instead of
 * the library (same receiver). Prints CPU µs per event: the sender process, its main thread and
 * V8's worker threads (garbage collection, compilation: `/proc/self/task`), and the receiver.
 * `--profile` writes a V8 CPU profile of that side's measured window to .tmp/prof/ at
 * PACED_PROFILE_INTERVAL_US (at the default 1 ms interval the profiler aliases with the loop's
 * 1 ms timer and sees about a third of the CPU); `--heap` samples the sender's allocations,
 * collected objects included, and prints bytes per event. Summarise a profile with
 * `node bench/cpuprofile-top.js <file>`.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import winston from 'winston';
import { createEventBus } from '../src/index.js';
import { EVENT_TYPE, payload, SCHEMA, SECRET } from './e2e/event.js';
import { ask, forkTs, type HeapNode, heapReport, PACED_PROFILE_INTERVAL_US, procCpuMs, sleep, startHeapSampler, startProfiler } from './lib.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { seconds: { type: 'string', default: '6' }, rate: { type: 'string', default: '500' }, profile: { type: 'string' }, heap: { type: 'boolean', default: false } },
});
const client = (positionals[0] ?? 'axios') as 'axios' | 'undici' | 'raw';
const rate = Number(values.rate);
const outDir = join(__dirname, '..', '.tmp', 'prof');

/** CPU ms of each thread of this process. */
function threadCpuMs(): Map<string, number> {
  const ms = new Map<string, number>();
  for (const task of readdirSync('/proc/self/task')) ms.set(task, procCpuMs(`/proc/self/task/${task}/stat`) ?? 0);
  return ms;
}

async function main(): Promise<void> {
  const receiver = forkTs('paced-receiver.ts');
  const { url } = await new Promise<{ url: string }>((resolve) => receiver.once('message', resolve));
  const logger = winston.createLogger({ level: 'warn', transports: [new winston.transports.Stream({ stream: process.stderr })] });
  const bus = createEventBus({ service: 'source', secret: SECRET, logger, httpClient: client === 'raw' ? 'axios' : client, services: { target: url }, shutdownTimeoutMs: 0 });
  const declared = bus.declareEvent(EVENT_TYPE, ['target'], { schema: SCHEMA });
  const raw = client === 'raw' ? await (await import('./e2e/raw-http.js')).sender('raw', [url]) : undefined;
  let seq = 100_000;
  const emit = (): Promise<unknown> => (raw ? raw.emit(payload('r0000000', seq++)) : declared.emit(EVENT_TYPE, payload('r0000000', seq++)));
  const paced = async (ms: number): Promise<number> => {
    const startedAt = performance.now();
    let emitted = 0;
    while (performance.now() - startedAt < ms) {
      const due = Math.floor(((performance.now() - startedAt) / 1000) * rate);
      for (; emitted < due; emitted++) void emit().catch(() => undefined);
      await sleep(1);
    }
    return emitted;
  };
  await paced(2_000); // warm-up

  const session = new Session();
  session.connect();
  if (values.profile === 'sender') await startProfiler(session, PACED_PROFILE_INTERVAL_US);
  if (values.profile === 'receiver') await ask(receiver, { kind: 'profile-start' });
  if (values.heap) await startHeapSampler(session, 4096);
  const receivedBefore = await ask<{ cpuUs: number; handled: number }>(receiver, { kind: 'cpu' });
  const threadsBefore = threadCpuMs();
  const cpuBefore = process.cpuUsage();
  const events = await paced(Number(values.seconds) * 1000);
  const cpu = process.cpuUsage(cpuBefore);
  const threadsAfter = threadCpuMs();
  await sleep(200); // the last events reach the handler
  const receivedAfter = await ask<{ cpuUs: number; handled: number }>(receiver, { kind: 'cpu' });

  mkdirSync(outDir, { recursive: true });
  const stamp = `${client}-${process.pid}`;
  if (values.profile === 'sender') {
    const file = join(outDir, `paced-sender-${stamp}.cpuprofile`);
    writeFileSync(file, JSON.stringify((await session.post('Profiler.stop')).profile));
    console.log(`profile: ${file}`);
  }
  if (values.profile === 'receiver') console.log(`profile: ${(await ask<{ written: string }>(receiver, { kind: 'profile-stop', path: join(outDir, `paced-receiver-${stamp}.cpuprofile`) })).written}`);
  if (values.heap) console.log(heapReport((await session.post('HeapProfiler.stopSampling')).profile as unknown as { head: HeapNode }, events).join('\n'));

  const perEvent = (us: number) => (us / events).toFixed(1);
  const [mainThread, ...workers] = [...threadsAfter].map(([task, ms]) => (ms - (threadsBefore.get(task) ?? 0)) * 1000);
  const handled = receivedAfter.handled - receivedBefore.handled;
  console.log(
    `${client}, ${rate}/s: ${events} events emitted, ${handled} handled; sender ${perEvent(cpu.user + cpu.system)} µs CPU/event ` +
      `(main thread ${perEvent(mainThread ?? 0)}, V8 workers ${perEvent(workers.reduce((a, b) => a + b, 0))}), ` +
      `receiver ${((receivedAfter.cpuUs - receivedBefore.cpuUs) / Math.max(1, handled)).toFixed(1)} µs CPU/event`,
  );
  await raw?.close();
  await bus.close();
  receiver.kill();
}

void main();
