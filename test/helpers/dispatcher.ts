import type { Logger } from 'winston';
import type { BatchOptions, RedeliveryOptions, ResolvedTarget } from '../../src/config.js';
import { DEFAULTS } from '../../src/defaults.js';
import { MemoryOutbox } from '../../src/backends/memory/outbox.js';
import { Telemetry } from '../../src/observe/telemetry.js';
import { Dispatcher, type DispatcherOptions } from '../../src/send/dispatcher.js';
import type { NewDelivery } from '../../src/send/outbox-store.js';
import type { Delivery, DeliveryResult, Transport } from '../../src/send/transport.js';

// The dispatcher against a scripted transport on a fake clock (test/unit/dispatcher*.test.ts):
// which deliveries are sent when, in which requests, and what becomes of each outcome. No network.

export const T = Date.UTC(2024, 4, 1, 12, 0, 0);
export const KEY = Buffer.alloc(24, 1);

/** One request the transport was asked to make: a single send, or a batch. */
export interface ScriptedRequest {
  at: number;
  batch: boolean;
  deliveries: readonly Delivery[];
}

export type Answer = (delivery: Delivery, batch: boolean) => DeliveryResult | Promise<DeliveryResult>;

/** A transport (with `sendBatch`) that answers each delivery with `answer` and records every request. */
export class ScriptedTransport implements Transport {
  readonly requests: ScriptedRequest[] = [];
  /** Requests not answered yet, when `hold` is on. */
  readonly held: Array<() => void> = [];
  hold = false;
  constructor(public answer: Answer) {}

  send(delivery: Delivery): Promise<DeliveryResult> {
    return this.request([delivery], false).then((results) => results[0]!);
  }

  sendBatch(deliveries: readonly Delivery[]): Promise<DeliveryResult[]> {
    return this.request(deliveries, true);
  }

  async close(): Promise<void> {}

  /** Every delivery sent, with when. */
  get sent(): Array<{ at: number; delivery: Delivery }> {
    return this.requests.flatMap(({ at, deliveries }) => deliveries.map((delivery) => ({ at, delivery })));
  }

  eventIds(): string[] {
    return this.sent.map((s) => s.delivery.eventId);
  }

  /** Event ids of each request, in order. */
  shapes(): string[][] {
    return this.requests.map((r) => r.deliveries.map((d) => d.eventId));
  }

  release(): void {
    while (this.held.length > 0) this.held.shift()!();
  }

  private async request(deliveries: readonly Delivery[], batch: boolean): Promise<DeliveryResult[]> {
    this.requests.push({ at: Date.now(), batch, deliveries });
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    return Promise.all(deliveries.map((delivery) => this.answer(delivery, batch)));
  }
}

export function fakeLogger() {
  const logger = {
    error: jest.fn(),
    warn: jest.fn(),
    info: jest.fn(),
    debug: jest.fn(),
    log: jest.fn(),
    isLevelEnabled: (_level: string): boolean => true,
    isInfoEnabled: (): boolean => true,
    isDebugEnabled: (): boolean => true,
  };
  return logger as typeof logger & Logger;
}

export interface DispatcherSetup {
  answer?: Answer;
  concurrency?: number;
  redelivery?: Partial<RedeliveryOptions>;
  /** Batch caps over DEFAULTS.batch; without them, no batches. */
  batch?: Omit<BatchOptions, 'enabled'>;
  /** Whether the resolved targets take batches. @default false */
  targetBatch?: boolean;
  resolveTarget?: (name: string) => ResolvedTarget;
  progress?: DispatcherOptions['progress'];
}

/** A dispatcher over a memory outbox and a scripted transport; `emit` stores and notifies as the bus does. */
export function setupDispatcher(options: DispatcherSetup = {}) {
  const logger = fakeLogger();
  const store = new MemoryOutbox(10_000, 10_000, logger);
  const transport = new ScriptedTransport(options.answer ?? (() => ({ outcome: 'delivered', status: 200, attempts: 1 })));
  const dispatcher = new Dispatcher({
    store,
    transport,
    logger,
    telemetry: Telemetry.off(logger),
    concurrency: options.concurrency ?? 16,
    redelivery: { ...DEFAULTS.redelivery, ...options.redelivery },
    resolveTarget:
      options.resolveTarget ?? ((name) => ({ name, url: `http://127.0.0.1:1/${name}`, keys: [KEY], batch: options.targetBatch ?? false, receipt: true })),
    ...(options.batch && { batch: { ...DEFAULTS.batch, ...options.batch } }),
    ...(options.progress && { progress: options.progress }),
  });
  const emit = async (...deliveries: NewDelivery[]) => {
    await store.add(deliveries);
    for (const target of new Set(deliveries.map((d) => d.target))) dispatcher.notify(target);
  };
  return { logger, store, transport, dispatcher, emit };
}

/** Advances the fake clock to `T + ms`, running every timer and promise due on the way. */
export const until = (ms: number) => jest.advanceTimersByTimeAsync(Math.max(0, T + ms - Date.now()));
/**
 * Runs what is due now (setImmediate pumps, resolved sends). The fake clock schedules a
 * setImmediate made while timers run 1 ms later, so "now" here spans a few fake milliseconds.
 */
export const settle = () => jest.advanceTimersByTimeAsync(5);
/** The fake clock's 1 ms per setImmediate hop (see settle), allowed on top of a nominal delay. */
export const HOP = 1;

/** Each test on the fake clock at T, with jitter at its top: every wait is exactly its nominal value. */
export function useFakeClock(): void {
  beforeEach(() => {
    jest.useFakeTimers({ now: T, doNotFake: ['nextTick', 'queueMicrotask'] });
    jest.spyOn(Math, 'random').mockReturnValue(1);
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });
}
