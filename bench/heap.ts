/**
 * `tsx bench/heap.ts`: the in-memory outbox's due-time queue, our MinHeap against tinyqueue, on
 * its hot path: a backlog of waiting records keyed by `nextAttemptAt` (reschedule = push; claim =
 * peek + pop while due), and a release (take every record tried since an outage began). Reps are
 * interleaved and the median reported, so the ratio holds on a noisy machine.
 */
import TinyQueue from 'tinyqueue';
import { MinHeap } from './baseline-min-heap.js';

interface Rec {
  id: number;
  nextAttemptAt: number;
  lastAttemptAt: number;
}

const N = Number(process.argv[2] ?? 100_000);
const REPS = 7;
const records: Rec[] = Array.from({ length: N }, (_, id) => {
  const at = Math.floor(Math.random() * 1e9);
  return { id, nextAttemptAt: at, lastAttemptAt: at - 5_000 };
});

interface Queue {
  push(r: Rec): void;
  pop(): Rec | undefined;
  peek(): Rec | undefined;
  size(): number;
  extract(p: (r: Rec) => boolean): Rec[];
}

function ours(): Queue {
  const heap = new MinHeap<Rec>((r) => r.nextAttemptAt);
  return {
    push: (r) => heap.push(r),
    pop: () => heap.pop(),
    peek: () => heap.peek(),
    size: () => heap.size,
    extract: (p) => heap.extract(p),
  };
}

function tiny(): Queue {
  const compare = (a: Rec, b: Rec) => a.nextAttemptAt - b.nextAttemptAt;
  let queue = new TinyQueue<Rec>([], compare);
  return {
    push: (r) => queue.push(r),
    pop: () => queue.pop(),
    peek: () => queue.peek(),
    size: () => queue.length,
    extract: (p) => {
      const taken: Rec[] = [];
      const kept: Rec[] = [];
      for (const r of queue.data) (p(r) ? taken : kept).push(r);
      queue = new TinyQueue(kept, compare);
      return taken;
    },
  };
}

/** ms for: push all, claim the due half in slices of 16, release a tenth, pop the rest. */
function run(make: () => Queue): number {
  const start = process.hrtime.bigint();
  const q = make();
  for (const r of records) q.push(r);
  const half = 5e8;
  while (q.size() > 0 && q.peek()!.nextAttemptAt <= half) for (let i = 0; i < 16 && q.size() > 0; i += 1) q.pop();
  q.extract((r) => r.lastAttemptAt >= 9e8);
  while (q.size() > 0) q.pop();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const times = { ours: [] as number[], tinyqueue: [] as number[] };
run(ours);
run(tiny); // warm-up
for (let rep = 0; rep < REPS; rep += 1) {
  times.ours.push(run(ours));
  times.tinyqueue.push(run(tiny));
}
const a = median(times.ours);
const b = median(times.tinyqueue);
console.log(`heap bench, ${N} records, median of ${REPS}: MinHeap ${a.toFixed(1)} ms, tinyqueue ${b.toFixed(1)} ms (tinyqueue ÷ MinHeap = ${(b / a).toFixed(2)})`);
