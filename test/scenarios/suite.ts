// The scenario suite: every behaviour the backends share, written once and run against each
// backend (test/scenarios/<backend>.test.ts plugs one in). A scenario that needs a feature the
// backend does not declare is skipped, and says why. Backend-specific behaviour (RabbitMQ topology,
// Kafka rebalances, SQLite file locking, HTTP status codes…) stays in the backend's own test files.
import type { Pool } from 'pg';
import { MemoryOutbox } from '../../src/backends/memory/outbox.js';
import { PostgresOutbox } from '../../src/backends/postgres/outbox.js';
import { SqliteOutbox } from '../../src/backends/sqlite/outbox.js';
import { type EventBus, NonRetryableError, type ReceivedEvent, RetryLaterError } from '../../src/index.js';
import { createCapturingLogger, type LogRecord } from '../helpers/logger.js';
import { request } from '../helpers/http-client.js';
import { startServer } from '../helpers/server.js';
import { newSecret, structuredEvent } from '../helpers/signing.js';
import { gate, sleep, waitFor } from '../helpers/wait.js';
import type { Backend, Features, RunningService, World } from './backend.js';

const WAIT = { timeoutMs: 20_000 };

/** What the sender still has to deliver. */
const pending = async (bus: EventBus): Promise<number> => (await bus.outboxStats()).pending;

/** Handler runs, in order. */
function recorder() {
  const events: ReceivedEvent[] = [];
  return {
    events,
    ids: () => events.map((e) => e.id),
    handler: (_data: unknown, event: ReceivedEvent) => void events.push(event),
  };
}

/** How many times each id occurs. */
function counts(ids: readonly string[]): Map<string, number> {
  const map = new Map<string, number>();
  for (const id of ids) map.set(id, (map.get(id) ?? 0) + 1);
  return map;
}

/** `level message` → how many times, for the lines at info and above (what the README's Logging table lists). */
function visible(records: readonly LogRecord[]): Record<string, number> {
  const tally: Record<string, number> = {};
  for (const r of records) if (['error', 'warn', 'info'].includes(r.level)) tally[`${r.level} ${r.message}`] = (tally[`${r.level} ${r.message}`] ?? 0) + 1;
  return tally;
}

export function runScenarios(backend: Backend): void {
  const { features } = backend;

  describe(`scenarios: ${backend.name}`, () => {
    let world: World;
    beforeAll(() => backend.beforeAll?.(), 60_000);
    afterAll(() => backend.afterAll?.());
    beforeEach(async () => {
      world = await backend.world();
    });
    afterEach(async () => {
      await world.close();
    });

    /** `it` when the backend has `feature`; otherwise the test is skipped, saying why. */
    const itWith = (feature: keyof Features, title: string, fn: () => Promise<void>, timeoutMs?: number): void => {
      if (features[feature]) it(title, fn, timeoutMs);
      else it.skip(`${title} [skipped: ${backend.name} has no ${feature}]`, fn);
    };

    /** `it` on a backend whose receiver keeps its dead letters (a broker): over HTTP a refused message is answered, never kept. */
    const itKeepingAtReceiver = (title: string, fn: () => Promise<void>): void => {
      if (features.deadLetters === 'receiver') it(title, fn);
      else it.skip(`${title} [skipped: ${backend.name} keeps dead letters at the sender]`, fn);
    };

    const sender = (targets: string[] = ['payments'], options?: SenderOptions) => world.sender({ targets, ...(options ? { options } : {}) });
    type SenderOptions = Parameters<World['sender']>[0]['options'];
    /** The bus an operator lists and replays this backend's dead letters on. */
    const keeper = (users: EventBus, target: RunningService): EventBus => (features.deadLetters === 'sender' ? users : target.bus);

    /** `payments`, whose handler of `refused` throws NonRetryableError (counted) and of `fine` records. */
    const refusingPayments = async () => {
      let refusals = 0;
      const fine = recorder();
      const payments = await world.receiver('payments', {
        subscribe: (bus) => {
          bus.subscribeTo('refused', () => {
            refusals += 1;
            throw new NonRetryableError('unsupported country');
          });
          bus.subscribeTo('fine', fine.handler);
        },
      });
      return { payments, fine, refusals: () => refusals };
    };

    it('delivers an emitted event once: the handler gets its data, id, type and source', async () => {
      const got = recorder();
      await world.receiver('payments', { subscribe: (bus) => bus.subscribeTo('user-created', got.handler) });
      const users = await sender();
      users.declareEvent('user-created', ['payments']);
      const { id } = await users.emit('user-created', { user_id: 'u_1', n: 1 });
      await waitFor(() => got.events.length === 1, { ...WAIT, what: 'the delivery' });
      expect(got.events[0]).toMatchObject({ id, type: 'user-created', source: 'users', data: { user_id: 'u_1', n: 1 } });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      expect(got.ids()).toEqual([id]);
    });

    it("logs as the README's Logging table says: two info lines per event; an outage once as it starts (warn) and once as it ends (info); every try at debug", async () => {
      // Kafka's mock cluster can take a rebalance or two (seconds each) to let the group consume.
      const SLOW = { timeoutMs: 40_000 };
      const sent = createCapturingLogger('debug');
      const received = createCapturingLogger('debug');
      const got = recorder();
      await world.receiver('payments', { options: { logger: received.logger }, subscribe: (bus) => bus.subscribeTo('user-created', got.handler) });
      const users = await sender(['payments'], { logger: sent.logger });
      users.declareEvent('user-created', ['payments']);
      const N = 5;
      for (let n = 0; n < N; n += 1) await users.emit('user-created', { n });
      await waitFor(() => got.events.length === N && sent.withMessage('event delivered').length === N, { ...SLOW, what: 'every event delivered' });
      expect(visible(sent.records)).toEqual({ 'info event emitted': N, 'info event delivered': N });
      expect(visible(received.records)).toEqual({ 'info event received': N });

      // The outage: the sender cannot reach where it delivers; it tries again and again (debug).
      const before = sent.records.length;
      const during = () => sent.records.slice(before);
      const outage = await world.outage();
      const M = 3;
      for (let n = 0; n < M; n += 1) await users.emit('user-created', { n: N + n });
      const tries = () => during().filter((r) => r.message === 'delivery attempt failed').length;
      await waitFor(() => during().some((r) => r.message === 'target down; probing before sending more'), { ...SLOW, what: 'the target seen down' });
      const probed = tries() + 3;
      await waitFor(() => tries() >= probed, { ...SLOW, what: 'probes that fail' });
      await outage.end();
      await waitFor(() => got.events.length === N + M && sent.withMessage('event delivered').length === N + M, { ...SLOW, what: 'the events of the outage delivered' });
      await waitFor(async () => (await pending(users)) === 0, { ...SLOW, what: 'nothing left to send' });

      const { 'info event emitted': emitted, 'info event delivered': delivered, 'warn delivery failed; will redeliver': firstFailures = 0, ...states } = visible(during());
      expect([emitted, delivered]).toEqual([M, M]);
      // The first failure of a delivery is a warning, its later ones debug: at most one per event.
      expect(firstFailures).toBeLessThanOrEqual(M);
      // Each state change once: the target's (and the broker connection's, for a broker), however many tries failed.
      expect(states['warn target down; probing before sending more']).toBe(1);
      expect(states['info target back up; draining its backlog']).toBe(1);
      for (const [line, count] of Object.entries(states)) expect(`${line}: ${count}`).toBe(`${line}: 1`);
      const starts = Object.keys(states).filter((line) => line.startsWith('warn ')).length;
      const ends = Object.keys(states).filter((line) => line.startsWith('info ')).length;
      expect(Object.keys(states).filter((line) => line.startsWith('error '))).toEqual([]);
      expect(starts).toBe(ends);
    }, 120_000);

    it('fans out: one event declared to two services reaches each of them once', async () => {
      const payments = recorder();
      const orders = recorder();
      await Promise.all([
        world.receiver('payments', { subscribe: (bus) => bus.subscribeTo('user-created', payments.handler) }),
        world.receiver('orders', { subscribe: (bus) => bus.subscribeTo('user-created', orders.handler) }),
      ]);
      const users = await sender(['payments', 'orders']);
      users.declareEvent('user-created', ['payments', 'orders']);
      const ids = await Promise.all(Array.from({ length: 20 }, async (_, n) => (await users.emit('user-created', { n })).id));
      await waitFor(() => payments.events.length >= 20 && orders.events.length >= 20, { ...WAIT, what: 'every event at both services' });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      expect([...payments.ids()].sort()).toEqual([...ids].sort());
      expect([...orders.ids()].sort()).toEqual([...ids].sort());
    });

    it('keeps an event emitted before its target ever started, and delivers it once the target starts', async () => {
      const users = await sender();
      users.declareEvent('user-created', ['payments']);
      const { id } = await users.emit('user-created', { n: 1 });
      const got = recorder();
      await world.receiver('payments', { subscribe: (bus) => bus.subscribeTo('user-created', got.handler) });
      await waitFor(() => got.events.length === 1, { ...WAIT, what: 'the late target to get it' });
      expect(got.events[0]).toMatchObject({ id, data: { n: 1 } });
    });

    it('redelivers after failures: a handler that throws twice runs again until it succeeds, once', async () => {
      let calls = 0;
      const handled: string[] = [];
      await world.receiver('payments', {
        subscribe: (bus) =>
          bus.subscribeTo('user-created', (_data, event) => {
            calls += 1;
            if (calls <= 2) throw new Error('database unavailable');
            handled.push(event.id);
          }),
      });
      const users = await sender();
      users.declareEvent('user-created', ['payments']);
      const { id } = await users.emit('user-created', {});
      await waitFor(() => handled.length === 1, { ...WAIT, what: 'success after two failures' });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      expect(calls).toBe(3);
      expect(handled).toEqual([id]);
    });

    it('dedupes: the same event delivered twice runs the handler once', async () => {
      const got = recorder();
      await world.receiver('payments', { concurrency: 1, subscribe: (bus) => bus.subscribeTo('user-created', got.handler) });
      const event = structuredEvent('user-created', { n: 1 });
      const marker = structuredEvent('user-created', { marker: true });
      // One key: on Kafka all three land in one partition, handled in this order.
      await world.deliverRaw('payments', event, 'k');
      await world.deliverRaw('payments', event, 'k');
      await world.deliverRaw('payments', marker, 'k');
      await waitFor(() => got.ids().includes(String(marker.id)), { ...WAIT, what: 'the event after the duplicate' });
      expect(got.ids()).toEqual([event.id, marker.id]);
    });

    it('NonRetryableError: the event becomes a dead letter at once, its handler is not run again, the service goes on', async () => {
      const { payments, fine, refusals } = await refusingPayments();
      const users = await sender();
      users.declareEvent('refused', ['payments']).declareEvent('fine', ['payments']);
      const { id } = await users.emit('refused', {});
      const dead = await waitFor(async () => {
        const letters = await keeper(users, payments).deadLetters();
        return letters.length === 1 && letters;
      }, { ...WAIT, what: 'the dead letter' });
      expect(dead[0]).toMatchObject({ eventId: id, type: 'refused' });
      const after = await users.emit('fine', {});
      await waitFor(() => fine.ids().includes(after.id), { ...WAIT, what: 'the next event' });
      expect(refusals()).toBe(1);
    });

    it('RetryLaterError: the event is tried again no sooner than asked, then handled once', async () => {
      const runs: number[] = [];
      await world.receiver('payments', {
        subscribe: (bus) =>
          bus.subscribeTo('user-created', () => {
            runs.push(Date.now());
            if (runs.length === 1) throw new RetryLaterError(1, 'rate limited');
          }),
      });
      const users = await sender();
      users.declareEvent('user-created', ['payments']);
      await users.emit('user-created', {});
      await waitFor(() => runs.length === 2, { ...WAIT, what: 'the second try' });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      // A lower bound only (asked for 1 s; timers may round down by a millisecond or so).
      expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(990);
      expect(runs).toHaveLength(2);
    });

    it('dead letter, then replay: operator lists them (opaque string ids), replays one, then the other; each handled once', async () => {
      let broken = true;
      const handled: string[] = [];
      const payments = await world.receiver('payments', {
        subscribe: (bus) =>
          bus.subscribeTo('user-created', (_data, event) => {
            if (broken) throw new NonRetryableError('not yet');
            handled.push(event.id);
          }),
      });
      const users = await sender();
      users.declareEvent('user-created', ['payments']);
      const a = await users.emit('user-created', { n: 1 });
      const b = await users.emit('user-created', { n: 2 });
      const ops = keeper(users, payments);
      const letters = await waitFor(async () => {
        const listed = await ops.deadLetters();
        return listed.length === 2 && listed;
      }, { ...WAIT, what: 'two dead letters' });
      expect(letters.map((l) => l.eventId).sort()).toEqual([a.id, b.id].sort());
      for (const letter of letters) expect(typeof letter.id).toBe('string');
      expect(new Set(letters.map((l) => l.id)).size).toBe(2);

      broken = false;
      const letterOf = (eventId: string) => letters.find((l) => l.eventId === eventId)!;
      expect(await ops.replayDeadLetters([letterOf(a.id).id])).toBe(1);
      await waitFor(() => handled.includes(a.id), { ...WAIT, what: 'the replayed event handled' });
      expect((await ops.deadLetters()).map((l) => l.eventId)).toEqual([b.id]);

      expect(await ops.replayDeadLetters([letterOf(b.id).id])).toBe(1);
      await waitFor(() => handled.includes(b.id), { ...WAIT, what: 'the other handled' });
      await waitFor(async () => (await ops.deadLetters()).length === 0, { ...WAIT, what: 'no dead letter left' });
      expect([...handled].sort()).toEqual([a.id, b.id].sort());
    });

    itKeepingAtReceiver('a plain CloudEvents producer (signed, no binding headers): the refused event is listed by its signed id and replayed', async () => {
      let broken = true;
      const handled: string[] = [];
      const payments = await world.receiver('payments', {
        subscribe: (bus) =>
          bus.subscribeTo('user-created', (_data, event) => {
            if (broken) throw new NonRetryableError('not yet');
            handled.push(event.id);
          }),
      });
      const event = structuredEvent('user-created', { n: 1 });
      await world.deliverRaw('payments', event);
      const [letter] = await waitFor(async () => {
        const listed = await payments.bus.deadLetters();
        return listed.length === 1 && listed;
      }, { ...WAIT, what: 'the dead letter' });
      expect(letter).toMatchObject({ eventId: event.id, type: 'user-created', source: 'users', reason: 'rejected_by_handler' });
      expect(letter!.unverified).toBeUndefined();
      broken = false;
      expect(await payments.bus.replayDeadLetters({ eventId: String(event.id) })).toBe(1);
      await waitFor(() => handled.length === 1, { ...WAIT, what: 'the replayed event handled' });
      expect(handled).toEqual([event.id]);
    });

    itKeepingAtReceiver('a wrong secret: dead-lettered, its claims listed and logged as unverified with a hint naming the source and the variables; with the secret fixed, replay runs it once', async () => {
      const senderSecret = newSecret();
      const receiverSecret = newSecret();
      const capture = createCapturingLogger('error');
      const got = recorder();
      const spec = (secret: string | string[]) => ({ options: { secret, logger: capture.logger }, subscribe: (bus: EventBus) => void bus.subscribeTo('user-created', got.handler) });
      const first = await world.receiver('payments', spec(receiverSecret));
      const users = await sender(['payments'], { secret: senderSecret });
      users.declareEvent('user-created', ['payments']);
      const { id } = await users.emit('user-created', { n: 1 });
      const [letter] = await waitFor(async () => {
        const listed = await first.bus.deadLetters();
        return listed.length === 1 && listed;
      }, { ...WAIT, what: 'the dead letter' });
      const claims = { eventId: id, type: 'user-created', source: 'users' };
      expect(letter).toMatchObject({ reason: 'invalid_signature', eventId: undefined, type: undefined, source: undefined, unverified: claims });
      const [line] = capture.withMessage('event dead-lettered');
      expect(line).not.toHaveProperty('eventId');
      expect(line).toMatchObject({ reason: 'invalid_signature', unverified: claims });
      for (const part of ['"users"', 'EVENTS_SECRET', 'EVENTS_SERVICE_PAYMENTS_SECRET', 'replay']) expect(line!.hint).toContain(part);
      expect(got.events).toHaveLength(0);

      // The dead letter keeps the signature it was sent with: the receiver takes the sender's secret
      // too (a list, as in a rotation), then the operator replays.
      await first.stop();
      const fixed = await world.receiver('payments', spec([receiverSecret, senderSecret]));
      expect(await fixed.bus.replayDeadLetters('all')).toBe(1);
      await waitFor(() => got.events.length === 1, { ...WAIT, what: 'the replayed event handled' });
      expect(got.ids()).toEqual([id]);
      await waitFor(async () => (await fixed.bus.deadLetters()).length === 0, { ...WAIT, what: 'no dead letter left' });
    });

    it('shutdown drain: close() waits for the handler in flight (its event done), and leaves the rest for the next instance', async () => {
      const release = gate();
      const done: string[] = [];
      let started = 0;
      const first = await world.receiver('payments', {
        concurrency: 1,
        subscribe: (bus) =>
          bus.subscribeTo('user-created', async (_data, event) => {
            started += 1;
            await release.wait();
            done.push(event.id);
          }),
      });
      // One delivery at a time, one event per request: the other two wait behind the first.
      const users = await sender(['payments'], { concurrency: 1, batch: false });
      users.declareEvent('user-created', ['payments']);
      for (let n = 0; n < 3; n += 1) await users.emit('user-created', { n });
      await waitFor(() => started === 1, { ...WAIT, what: 'the first handler to start' });
      const closing = first.stop().then(() => done.length);
      // Give close() the chance to resolve early, which it must not: the handler is still held.
      await sleep(100);
      release.open();
      expect(await closing).toBe(1);
      expect(started).toBe(1);

      const next = recorder();
      await world.receiver('payments', { subscribe: (bus) => bus.subscribeTo('user-created', next.handler) });
      await waitFor(() => next.events.length >= 2, { ...WAIT, what: 'the two left for the next instance' });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      expect(next.ids()).toHaveLength(2);
      expect(next.ids()).not.toContain(done[0]);
    });

    it('the target down, then back: events emitted meanwhile arrive once it restarts, each handled once', async () => {
      const got = recorder();
      const spec = { subscribe: (bus: EventBus) => void bus.subscribeTo('user-created', got.handler) };
      const first = await world.receiver('payments', spec);
      const users = await sender();
      users.declareEvent('user-created', ['payments']);
      const before = await users.emit('user-created', { n: 0 });
      await waitFor(() => got.events.length === 1, { ...WAIT, what: 'the first event' });
      await first.stop();
      const meanwhile = [(await users.emit('user-created', { n: 1 })).id, (await users.emit('user-created', { n: 2 })).id];
      await world.receiver('payments', spec);
      await waitFor(() => meanwhile.every((id) => got.ids().includes(id)), { ...WAIT, what: 'the events emitted while it was down' });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      expect([...got.ids()].sort()).toEqual([before.id, ...meanwhile].sort());
    });

    it('health: a flood of GET <path>/health reads the outbox stats once or so, never once per request, and tells strangers only { healthy }', async () => {
      const users = await sender();
      users.declareEvent('user-created', ['payments']);
      await users.emit('user-created', { n: 1 }); // payments is not running: a backlog to count
      const server = await startServer(users.nodeHandler());
      const reads = [MemoryOutbox, SqliteOutbox, PostgresOutbox].map((store) => jest.spyOn(store.prototype, 'stats'));
      try {
        const answers = await Promise.all(Array.from({ length: 300 }, () => request(`${server.url}/health`, { method: 'GET' })));
        for (const answer of answers) expect([answer.status, answer.text]).toEqual([200, '{"healthy":true}']);
        // One read, a second (or third) only if the flood outlasted a refresh period on a slow machine.
        expect(reads.reduce((n, spy) => n + spy.mock.calls.length, 0)).toBeLessThanOrEqual(3);
      } finally {
        for (const spy of reads) spy.mockRestore();
        await server.close();
      }
    });

    it('health: a started receiver is healthy, its broker consumer (one where the receiver keeps dead letters: a broker) consuming', async () => {
      const payments = await world.receiver('payments', { subscribe: (bus) => bus.subscribeTo('user-created', () => undefined) });
      const status = await payments.bus.health();
      expect(status).toMatchObject({ healthy: true, problems: [] });
      const consumers = Object.entries(status.consumers);
      expect(consumers).toHaveLength(features.deadLetters === 'receiver' ? 1 : 0);
      for (const [name, consumer] of consumers) expect([name, consumer.state]).toEqual([expect.stringMatching(/payments$/), 'consuming']);
    });

    itWith('persistent', 'restart with durable stores: sender and target both restarted, what was emitted while the target was down arrives once', async () => {
      const got = recorder();
      const spec = { subscribe: (bus: EventBus) => void bus.subscribeTo('user-created', got.handler) };
      const first = await world.receiver('payments', spec);
      let users = await sender();
      users.declareEvent('user-created', ['payments']);
      const before = await users.emit('user-created', { n: 0 });
      await waitFor(() => got.events.length === 1, { ...WAIT, what: 'the first event' });
      await first.stop();
      const meanwhile = await Promise.all([1, 2, 3].map(async (n) => (await users.emit('user-created', { n })).id));
      // The sender restarts on its durable outbox (an HTTP sender still holds all three), then the target on its inbox.
      await users.close();
      users = await sender();
      users.declareEvent('user-created', ['payments']);
      await world.receiver('payments', spec);
      await waitFor(() => meanwhile.every((id) => got.ids().includes(id)), { ...WAIT, what: 'the events emitted while it was down' });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      expect([...got.ids()].sort()).toEqual([before.id, ...meanwhile].sort());
    });

    itWith('manyInstances', 'two services with two instances each: every event is handled once per service', async () => {
      const handled: Record<string, string[]> = { payments: [], orders: [] };
      // The instances of one service one at a time (instances joining a Kafka group at once can keep
      // it rebalancing); the two services side by side.
      for (let i = 0; i < 2; i += 1) {
        await Promise.all(
          ['payments', 'orders'].map((service) =>
            world.receiver(service, { concurrency: 4, subscribe: (bus) => bus.subscribeTo('user-created', (_d, event) => void handled[service]!.push(event.id)) }),
          ),
        );
      }
      const users = await sender(['payments', 'orders']);
      users.declareEvent('user-created', ['payments', 'orders']);
      const ids = await Promise.all(Array.from({ length: 100 }, async (_, n) => (await users.emit('user-created', { n })).id));
      await waitFor(() => handled.payments!.length >= 100 && handled.orders!.length >= 100, { ...WAIT, timeoutMs: 30_000, what: 'every event at both services' });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      for (const service of ['payments', 'orders']) {
        expect([...counts(handled[service]!).values()].every((n) => n === 1)).toBe(true);
        expect([...handled[service]!].sort()).toEqual([...ids].sort());
      }
    }, 60_000);

    itWith('perKeyOrder', 'events with the same key reach the target in emit order, under concurrent emits and handlers', async () => {
      const seen: Record<string, number[]> = {};
      for (let i = 0; i < 2; i += 1) {
        await world.receiver('ledger', {
          concurrency: 6,
          subscribe: (bus) =>
            bus.subscribeTo('account-changed', async (data) => {
              const { account, seq } = data as { account: string; seq: number };
              await sleep(seq % 3); // handlers of other keys interleave
              (seen[account] ??= []).push(seq);
            }),
        });
      }
      const users = await sender(['ledger'], { concurrency: 16 });
      users.declareEvent('account-changed', ['ledger']);
      const accounts = ['a', 'b', 'c', 'd', 'e'];
      const emits: Array<Promise<unknown>> = [];
      for (let seq = 0; seq < 30; seq += 1) {
        for (const account of accounts) emits.push(users.emit('account-changed', { account, seq }, { key: account }));
      }
      await Promise.all(emits);
      await waitFor(() => accounts.every((a) => (seen[a]?.length ?? 0) >= 30), { ...WAIT, timeoutMs: 30_000, what: 'every event' });
      for (const account of accounts) expect(seen[account]).toEqual(Array.from({ length: 30 }, (_, n) => n));
    }, 60_000);

    itWith('transactionalInbox', "a handler's writes through { tx } commit with its completion: the failed run leaves none, the retry one", async () => {
      const { pool, schema } = world.database as { pool: Pool; schema: string };
      await pool.query(`CREATE TABLE "${schema}".effects (event_id text NOT NULL)`);
      let runs = 0;
      await world.receiver('payments', {
        subscribe: (bus) =>
          bus.subscribeTo('payment-made', async (_data, event, { tx }) => {
            runs += 1;
            await tx!.query(`INSERT INTO "${schema}".effects (event_id) VALUES ($1)`, [event.id]);
            if (runs === 1) throw new Error('crashed after writing');
          }, { name: 'record' }),
      });
      const users = await sender();
      users.declareEvent('payment-made', ['payments']);
      const { id } = await users.emit('payment-made', { amount: 5 });
      await waitFor(() => runs === 2, { ...WAIT, what: 'the retry' });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      const { rows } = await pool.query<{ event_id: string }>(`SELECT event_id FROM "${schema}".effects`);
      expect(rows).toEqual([{ event_id: id }]);
    });

    itWith('batches', 'sent in batches: every event arrives once; an event whose handler failed is retried alone', async () => {
      let failedOnce = false;
      const ok: string[] = [];
      const tries = new Map<string, number>();
      const recipients = new Set<unknown>();
      await world.receiver('payments', {
        subscribe: (bus) =>
          bus.subscribeTo('user-created', (data, event) => {
            tries.set(event.id, (tries.get(event.id) ?? 0) + 1);
            recipients.add(event.recipient);
            if ((data as { n: number }).n === 7 && !failedOnce) {
              failedOnce = true;
              throw new Error('database unavailable');
            }
            ok.push(event.id);
          }),
      });
      const users = await sender(['payments'], { batch: { maxEvents: 10, lingerMs: 20 } });
      users.declareEvent('user-created', ['payments']);
      const ids = await Promise.all(Array.from({ length: 30 }, async (_, n) => (await users.emit('user-created', { n })).id));
      await waitFor(() => ok.length >= 30, { ...WAIT, what: 'every event handled' });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      expect([...ok].sort()).toEqual([...ids].sort());
      expect([...tries.values()].sort()).toEqual([...Array.from({ length: 29 }, () => 1), 2]);
      expect([...recipients]).toEqual(['payments']); // each event of a batch names its recipient
    });

    itWith('batches', 'a batch whose events part ways: the one its handler refuses (NonRetryableError) becomes a dead letter alone, listed by its id; the others are handled once', async () => {
      const { payments, fine, refusals } = await refusingPayments();
      // One request at a time, after a wait for more: the ten events travel together.
      const users = await sender(['payments'], { concurrency: 1, batch: { maxEvents: 10, lingerMs: 50 } });
      users.declareEvent('refused', ['payments']).declareEvent('fine', ['payments']);
      const ids = await Promise.all(Array.from({ length: 10 }, async (_, n) => (await users.emit(n === 4 ? 'refused' : 'fine', { n })).id));
      await waitFor(() => fine.ids().length === 9, { ...WAIT, what: 'the fine events handled' });
      const dead = await waitFor(async () => {
        const letters = await keeper(users, payments).deadLetters();
        return letters.length > 0 && letters;
      }, { ...WAIT, what: 'the dead letter' });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      expect(dead.map((letter) => [letter.eventId, letter.type])).toEqual([[ids[4], 'refused']]);
      expect(fine.ids().sort()).toEqual(ids.filter((_, n) => n !== 4).sort());
      expect(refusals()).toBe(1);
    });

    it('a delivery addressed to another service runs nothing there: HTTP answers 403 wrong_recipient, a broker dead-letters it; an event naming no recipient passes', async () => {
      const payments = recorder();
      const orders = recorder();
      const [, ordersService] = await Promise.all([
        world.receiver('payments', { subscribe: (bus) => bus.subscribeTo('payment-due', payments.handler) }),
        world.receiver('orders', { subscribe: (bus) => bus.subscribeTo('payment-due', orders.handler) }),
      ]);
      const users = await sender(['payments']);
      users.declareEvent('payment-due', ['payments']);
      const { id } = await users.emit('payment-due', { amount: 5 });
      await waitFor(() => payments.events.length === 1, { ...WAIT, what: 'the delivery to payments' });
      expect(payments.events[0]).toMatchObject({ id, recipient: 'payments' });

      // The delivery to payments, captured and put on orders' intake: the two share the secret, as in the quick start.
      const captured = { ...payments.events[0]! } as Record<string, unknown>;
      const refused = await world.deliverRaw('orders', captured, 'k').then(
        () => undefined,
        (error: Error) => error.message,
      );
      if (features.deadLetters === 'sender') {
        expect(refused).toMatch(/answered 403: .*wrong_recipient/);
      } else {
        expect(refused).toBeUndefined();
        const dead = await waitFor(async () => {
          const letters = await ordersService.bus.deadLetters();
          return letters.length === 1 && letters;
        }, { ...WAIT, what: 'the dead letter at orders' });
        expect(dead[0]).toMatchObject({ eventId: captured.id, reason: 'wrong_recipient' });
      }
      // A foreign producer names no recipient: it passes as before.
      const foreign = structuredEvent('payment-due', { amount: 7 });
      await world.deliverRaw('orders', foreign, 'k');
      await waitFor(() => orders.events.length === 1, { ...WAIT, what: 'the event without a recipient at orders' });
      expect(orders.ids()).toEqual([foreign.id]);
    });

    itWith('subscriptions', 'declared without targets: every subscribed service gets it (no recipient), one added later what follows its first subscription, one stopped what was emitted meanwhile, one never subscribed nothing', async () => {
      const [payments, orders, audit] = [recorder(), recorder(), recorder()];
      const subscriber = (got: ReturnType<typeof recorder>) => ({ subscribe: (bus: EventBus) => void bus.subscribeTo('user-created', got.handler) });
      // audit subscribes, then stops before anything is emitted: it still gets everything from then on.
      await (await world.receiver('audit', subscriber(audit))).stop();
      const mailerLog = createCapturingLogger('warn');
      // mailer consumes from the broker too, but never subscribes to user-created.
      const mailer = await world.receiver('mailer', { options: { logger: mailerLog.logger }, subscribe: (bus) => bus.subscribeTo('newsletter-sent', () => undefined) });
      let paymentsService = await world.receiver('payments', subscriber(payments));
      const users = await sender([]);
      users.declareEvent('user-created', { schema: { type: 'object', required: ['n'] } });
      const a = await users.emit('user-created', { n: 1 });
      expect(a.targets).toEqual(['*']);
      await waitFor(() => payments.ids().includes(a.id), { ...WAIT, what: 'the event at payments' });

      // orders starts later, with no change to the producer: it gets what is emitted from then on.
      let ordersService = await world.receiver('orders', subscriber(orders));
      const b = await users.emit('user-created', { n: 2 });
      await waitFor(() => payments.ids().includes(b.id) && orders.ids().includes(b.id), { ...WAIT, what: 'the next event at both' });

      // Both stopped: what is emitted meanwhile waits for each of them.
      await paymentsService.stop();
      await ordersService.stop();
      const c = await users.emit('user-created', { n: 3 });
      paymentsService = await world.receiver('payments', subscriber(payments));
      ordersService = await world.receiver('orders', subscriber(orders));
      await world.receiver('audit', subscriber(audit));
      const everywhere = () => [payments, orders, audit].every((got) => got.ids().includes(c.id)) && audit.events.length >= 3;
      await waitFor(everywhere, { ...WAIT, timeoutMs: 40_000, what: 'what was emitted while they were down' });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      expect([...payments.ids()].sort()).toEqual([a.id, b.id, c.id].sort());
      expect([...orders.ids()].sort()).toEqual([b.id, c.id].sort());
      expect([...audit.ids()].sort()).toEqual([a.id, b.id, c.id].sort());
      for (const event of [...payments.events, ...orders.events, ...audit.events]) expect(event.recipient).toBeUndefined();
      // Nothing reached mailer: no retry of an event it has no handler for, no dead letter.
      expect([...mailerLog.withMessage('event will be retried from the broker'), ...mailerLog.withMessage('event dead-lettered')]).toEqual([]);
      expect(await mailer.bus.deadLetters()).toEqual([]);
    }, 90_000);

    itWith('handlerHoldsDelivery', 'backpressure in every outbox: a target that stalls without failing holds emits for outbox.maxBlockMs, said once; all arrive once it moves', async () => {
      const stalled = gate();
      const handled: string[] = [];
      await world.receiver('payments', {
        subscribe: (bus) =>
          bus.subscribeTo('user-created', async (_data, event) => {
            await stalled.wait();
            handled.push(event.id);
          }),
      });
      const log = createCapturingLogger('warn');
      const mark = 10;
      const users = await sender(['payments'], { logger: log.logger, concurrency: 2, batch: false, outbox: { highWaterMark: mark, maxBlockMs: 100 } });
      users.declareEvent('user-created', ['payments']);
      // Emitted at once (a durable outbox starts by probing what it holds), by four loops, to well over the mark.
      const ids: string[] = [];
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (ids.length < 5 * mark) ids.push((await users.emit('user-created', { n: ids.length })).id);
        }),
      );
      const blocked = log.withMessage("emit waited outbox.maxBlockMs for a target's backlog to drain; until it does, emits to it resolve after that wait");
      expect(blocked).toEqual([expect.objectContaining({ target: 'payments', highWaterMark: mark, maxBlockMs: 100 })]);
      expect(handled).toEqual([]);

      stalled.open();
      await waitFor(() => handled.length >= ids.length, { ...WAIT, what: 'every event handled' });
      await waitFor(async () => (await pending(users)) === 0, { ...WAIT, what: 'nothing left to send' });
      expect([...handled].sort()).toEqual([...ids].sort());
    });
  });
}
