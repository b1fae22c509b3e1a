// Admission control (backpressure) on its own: when emit waits, and what ends the wait.
import { Admission } from '../../src/send/admission.js';
import type { OutboxRecord } from '../../src/send/outbox-store.js';
import { createCapturingLogger } from '../helpers/logger.js';

const T = 'payments';
/** Closed after each test: a wait that never ended would keep its maxBlockMs timer. */
const opened: Admission[] = [];
afterEach(() => {
  for (const a of opened.splice(0)) a.close();
});

function admission(options: { highWaterMark?: number; maxBlockMs?: number; down?: Set<string> } = {}) {
  const down = options.down ?? new Set<string>();
  const log = createCapturingLogger('info');
  const a = new Admission({
    highWaterMark: options.highWaterMark ?? 4,
    maxBlockMs: options.maxBlockMs ?? 60_000,
    isDown: (target) => down.has(target),
    logger: log.logger,
  });
  opened.push(a);
  return { a, down, log };
}

let nextId = 1;
function record(target = T, createdAt = Date.now()): OutboxRecord {
  return { id: nextId++, eventId: `e${nextId}`, type: 't', source: 's', target, body: '{}', createdAt, attempts: 1, nextAttemptAt: createdAt };
}

/** Whether `promise` has settled once pending callbacks ran. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => (settled = true));
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

function fill(a: Admission, n: number, target = T): void {
  for (let i = 0; i < n; i++) a.added([target]);
}

it('admits at once up to the high-water mark, without making a promise', () => {
  const { a } = admission();
  fill(a, 4);
  expect(a.admit([T])).toBeUndefined();
  fill(a, 1);
  expect(a.admit([T])).toBeInstanceOf(Promise);
});

it('above the mark, waits until the first attempts bring the backlog down to half of it', async () => {
  const { a } = admission();
  fill(a, 6);
  const wait = a.admit([T])!;
  a.settled(record(), true);
  a.settled(record(), true);
  a.settled(record(), true); // 3: above the low-water mark (2)
  expect(await isSettled(wait)).toBe(false);
  a.settled(record(), true);
  expect(await isSettled(wait)).toBe(true);
});

it('does not count retries, nor records a previous run left', async () => {
  const { a } = admission();
  fill(a, 6);
  const wait = a.admit([T])!;
  for (let i = 0; i < 10; i++) a.settled(record(), false);
  for (let i = 0; i < 10; i++) a.settled(record(T, Date.now() - 60_000), true);
  expect(await isSettled(wait)).toBe(false);
});

it('never waits for a target that is down, and releases the waiting emits when it goes down', async () => {
  const { a, down } = admission();
  fill(a, 6);
  const wait = a.admit([T])!;
  down.add(T);
  a.settled(record(), false); // the failed try that counted it down
  expect(await isSettled(wait)).toBe(true);
  fill(a, 10);
  expect(a.admit([T])).toBeUndefined();
});

it('a lane that finds nothing due corrects the count to what it still has in flight', async () => {
  const { a } = admission();
  fill(a, 10);
  const wait = a.admit([T])!;
  a.idle(T, 1);
  expect(await isSettled(wait)).toBe(true);
  expect(a.admit([T])).toBeUndefined();
});

it('waits for every target of the event, each on its own backlog', async () => {
  const { a } = admission();
  fill(a, 6, 'a');
  fill(a, 6, 'b');
  fill(a, 1, 'c');
  const wait = a.admit(['a', 'b', 'c'])!;
  a.idle('a', 0);
  expect(await isSettled(wait)).toBe(false);
  a.idle('b', 0);
  expect(await isSettled(wait)).toBe(true);
});

it('a high-water mark of 0 never waits', () => {
  const { a } = admission({ highWaterMark: 0 });
  fill(a, 1000);
  expect(a.admit([T])).toBeUndefined();
});

it('close() releases every waiting emit, and none waits after it', async () => {
  const { a } = admission();
  fill(a, 6);
  const wait = a.admit([T])!;
  a.close();
  expect(await isSettled(wait)).toBe(true);
  expect(a.admit([T])).toBeUndefined();
});

describe('maxBlockMs', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'] }));
  afterEach(() => jest.useRealTimers());

  it('ends a wait that lasts too long, and warns once until the backlog drains', async () => {
    const { a, log } = admission({ maxBlockMs: 1_000 });
    fill(a, 6);
    const first = a.admit([T])!;
    jest.advanceTimersByTime(999);
    expect(await isSettled(first)).toBe(false);
    jest.advanceTimersByTime(1);
    expect(await isSettled(first)).toBe(true);
    const second = a.admit([T])!;
    jest.advanceTimersByTime(1_000);
    expect(await isSettled(second)).toBe(true);
    const warning = "emit waited outbox.maxBlockMs for a target's backlog to drain; until it does, emits to it resolve after that wait";
    expect(log.withMessage(warning)).toEqual([expect.objectContaining({ level: 'warn', target: T, backlog: 6, highWaterMark: 4, maxBlockMs: 1_000 })]);

    a.idle(T, 0);
    expect(log.withMessage('target backlog drained; emits to it no longer wait outbox.maxBlockMs')).toHaveLength(1);
    fill(a, 6);
    void a.admit([T]);
    jest.advanceTimersByTime(1_000);
    expect(log.withMessage(warning)).toHaveLength(2);
  });
});
