/**
 * The sending process of the end-to-end bench: opens one system's sender for a run, emits at
 * saturation (bounded) or at a fixed rate, and reports what it sent and its CPU time. A system with
 * several sender processes gives each its share: every `of`-th `seq` from `100,000 + index`, the
 * paced rate ÷ `of`, and the bound on events in flight ÷ `of`.
 */
import { setImmediate as yieldMacrotask } from 'node:timers/promises';
import { sleep } from '../lib.js';
import { payload } from './event.js';
import { startHeapSampling, stopHeapSampling } from './heap-sampling.js';
import { serve } from './ipc.js';
import { cpuNow } from './stats.js';
import { type Emitter, type SenderPart, type SystemName, systemInfo } from './system.js';

export interface GoArgs {
  /** `saturate`: as fast as the system takes events, within `gap`; `paced`: `rate` events/s. */
  mode: 'saturate' | 'paced';
  rate: number;
  /** Most events sent (by every sender process of the run) and not yet received by every target (reported by `received`). */
  gap: number;
  burst: number;
  window: number;
}

let emitter: Emitter | undefined;
let system: SystemName = 'lib-batch';
let run = '';
let seq = 0;
/** This process's share of the run's senders: its `seq`s are `of` apart. */
let part: SenderPart = { index: 0, of: 1 };
let sent = 0;
let errors = 0;
let firstError: string | undefined;
/** The `seq`s of the emits that failed: the targets say whether any arrived all the same. */
let failed: number[] = [];
let received = 0;
let inFlight = 0;
let stopped = true;
/** Bumped per run: an emit of a previous run that settles late is not counted in this one. */
let generation = 0;
let loop: Promise<void> = Promise.resolve();
let wake: (() => void) | undefined;

const settle = () => {
  inFlight -= 1;
  wake?.();
};
const fail = (seqOf: number, error: unknown) => {
  errors += 1;
  failed.push(seqOf);
  firstError ??= error instanceof Error ? error.message : String(error);
};

function emitOne(): Promise<void> {
  const own = generation;
  sent += 1;
  inFlight += 1;
  const data = payload(run, seq);
  seq += part.of;
  return emitter!.emit(data).then(
    () => {
      if (own === generation) settle();
    },
    (error: unknown) => {
      if (own !== generation) return;
      fail(data.seq, error);
      settle();
    },
  );
}

/** Waits for an emit to settle (window full). */
const settled = () => new Promise<void>((resolve) => (wake = resolve));

async function saturate({ gap, burst, window }: GoArgs): Promise<void> {
  const bursts = systemInfo(system).drive === 'bursts';
  while (!stopped) {
    // Every sender process sends about its share, so the run's events in flight are about `sent × of − received`.
    if (sent * part.of - received > gap) await sleep(2);
    else if (bursts) {
      const pending = new Array<Promise<void>>(burst);
      for (let i = 0; i < burst; i++) pending[i] = emitOne();
      await Promise.all(pending);
      await yieldMacrotask();
    } else if (inFlight >= window) await settled();
    else void emitOne();
  }
}

async function paced({ rate }: GoArgs): Promise<void> {
  const startedAt = performance.now();
  let due = 0;
  while (!stopped) {
    const target = Math.floor(((performance.now() - startedAt) / 1000) * (rate / part.of));
    for (; due < target; due++) void emitOne();
    await sleep(1);
  }
}

serve({
  open: async (args: { system: SystemName; addresses: string[]; run: string; part?: SenderPart }) => {
    system = args.system;
    run = args.run;
    part = args.part ?? { index: 0, of: 1 };
    generation += 1;
    seq = 100_000 + part.index;
    sent = received = errors = inFlight = 0;
    firstError = undefined;
    failed = [];
    emitter = await (await systemInfo(system).load()).sender(system, args.addresses, part);
    return { shared: emitter.shared };
  },
  go: (args: GoArgs) => {
    stopped = false;
    if (args.mode === 'saturate') void startHeapSampling(sent, system);
    loop = args.mode === 'saturate' ? saturate(args) : paced(args);
    return {};
  },
  received: ({ n }: { n: number }) => {
    received = n;
    return {};
  },
  snap: () => ({ sent, errors, cpuUs: cpuNow() }),
  /** Stops emitting; answers once every emit has settled (or `settleMs` passed). */
  stop: async ({ settleMs }: { settleMs: number }) => {
    stopped = true;
    wake?.();
    await loop;
    await stopHeapSampling('sender', sent);
    const deadline = Date.now() + settleMs;
    while (inFlight > 0 && Date.now() < deadline) await sleep(5);
    return { sent, errors, firstError, failed };
  },
  close: async () => {
    await emitter?.close();
    emitter = undefined;
    return {};
  },
});
