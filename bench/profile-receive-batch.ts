/**
 * The receive path alone, without HTTP: `bus.handle` on signed CloudEvents batches built
 * beforehand (1 KB events, 100 to a batch, 10 batches in flight), the in-memory inbox, one
 * handler. Prints CPU µs per event of each round (the first warms up); long enough to profile:
 *   node --expose-gc --cpu-prof --cpu-prof-dir=.tmp/prof --require tsx/cjs bench/profile-receive-batch.ts [batches per round=400] [rounds=4]
 * (with --expose-gc, the requests' garbage is collected before each round rather than counted in it).
 * With BENCH_HEAP=1, also what `bus.handle` allocated per event over every round but the first
 * (V8's sampling heap profiler, collected objects included), by allocating function.
 * Batches are signed a minute ahead, so the inbox's evictions (100,000 ids by default) never make
 * them look older than what it remembers.
 */
import { Session } from 'node:inspector/promises';
import { createEventBus } from '../src/index.js';
import { addressedTo, createEvent, toStructuredBody } from '../src/protocol/cloudevents.js';
import { signedBatch } from '../test/helpers/signed-batch.js';
import { discardLogger, EVENT_TYPE, type HeapNode, heapReport, payload, SCHEMA, SECRET, startHeapSampler } from './lib.js';

const [batchesArg = '400', roundsArg = '4'] = process.argv.slice(2);
const BATCHES = Number(batchesArg);
const EVENTS_PER_BATCH = 100;
const IN_FLIGHT = 10;
const SERVICE = 'bench-sink';

/** A batch as the sender builds it (the tests' helper), signed a minute ahead. */
function request(): { headers: Record<string, string>; body: Buffer } {
  const events = Array.from({ length: EVENTS_PER_BATCH }, (_, i) =>
    addressedTo(toStructuredBody(createEvent('bench-src', EVENT_TYPE, payload(i))), SERVICE),
  );
  const { headers, body } = signedBatch(SECRET, events, new Date(Date.now() + 60_000));
  return { headers, body: Buffer.from(body) };
}

async function main(): Promise<void> {
  const bus = createEventBus({ service: SERVICE, secret: SECRET, logger: discardLogger('warn') });
  let handled = 0;
  bus.subscribeTo(EVENT_TYPE, async () => void (handled += 1), { schema: SCHEMA });
  const session = process.env.BENCH_HEAP ? new Session() : undefined;
  session?.connect();
  const samples: HeapNode[] = [];
  let sampled = 0;
  for (let round = 1; round <= Number(roundsArg); round++) {
    const requests = Array.from({ length: BATCHES }, request);
    (globalThis as { gc?: () => void }).gc?.(); // the requests' garbage, outside the measured window
    const before = handled;
    if (session && round > 1) await startHeapSampler(session, 512); // while the requests are built it is off
    const start = process.cpuUsage();
    for (let i = 0; i < requests.length; i += IN_FLIGHT) {
      const answers = await Promise.all(requests.slice(i, i + IN_FLIGHT).map((request) => bus.handle(request)));
      const refused = answers.find((answer) => answer.status !== 200);
      if (refused) throw new Error(`HTTP ${refused.status}: ${JSON.stringify(refused.body).slice(0, 300)}`);
    }
    const { user, system } = process.cpuUsage(start);
    const events = handled - before;
    if (session && round > 1) {
      samples.push(((await session.post('HeapProfiler.stopSampling')).profile as unknown as { head: HeapNode }).head);
      sampled += events;
    }
    console.log(`round ${round}: ${events} events, ${((user + system) / events).toFixed(2)} CPU µs per event`);
  }
  if (session) {
    const head: HeapNode = { callFrame: { functionName: '(rounds)', url: '', lineNumber: -1 }, selfSize: 0, children: samples };
    console.log(heapReport({ head }, sampled, 25).join('\n'));
  }
  await bus.close();
}

void main();
