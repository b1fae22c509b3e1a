// The chaos scenario, one harness run on three backends: real processes on loopback, senders with a
// durable outbox and receivers with a durable inbox, SIGKILLed and restarted at random points while
// events stream (and on RabbitMQ, every connection of the test's vhost dropped twice). Whatever the
// backend, every event whose emit resolved must reach each receiving service: nothing lost, and
// nothing run twice except where the backend's rerun window allows it (see `allowedReruns`).
// CHAOS_SEED=<n> replays a run's fault schedule (the seed is printed); CHAOS_N sets the event count.
//
// - HTTP + SQLite: one sender (SQLite outbox), three targets (SQLite inboxes), the sender killed
//   mid-stream and while it drains, each target killed at least twice.
// - HTTP + PostgreSQL: two sender instances on one PostgreSQL outbox (every other burst emitted in
//   a transaction), two receiver instances on one PostgreSQL inbox whose handler writes through
//   { tx }: one sender and each receiver killed. No rerun is allowed: effects commit with the inbox.
// - RabbitMQ: two services with two instances each (a shared SQLite inbox per service), the sender
//   killed mid-stream, connections dropped twice, instances killed at random.
import { existsSync, readFileSync } from 'node:fs';
import type { Pool } from 'pg';
import { DEFAULTS, inspectOutbox } from '../../src/index.js';
import { createVhost, describeWithBroker, takeBrokerTurns, type TestVhost } from '../helpers/broker.js';
import { bothInstances } from '../helpers/fan-out.js';
import { createTestSchema, describePostgres, PG_URL } from '../helpers/postgres.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { ScriptProcess } from './support/processes.js';

const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded PRNG, so a failing fault schedule can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const lines = (path: string): string[] => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

/** One handler run: the event id and the pid of the process that ran it. */
interface Run {
  id: string;
  pid: number;
}

/** A backend's chaos run, started. */
interface Started {
  /** The receiving services whose handler runs are counted. */
  services: readonly string[];
  /** Events the senders were asked to emit. */
  expected: number;
  /** The faults, concurrently; resolves when every fault was played. */
  faults(): Promise<void>;
  /** Event ids whose emit resolved (or whose transaction committed), once the senders are done. */
  emitted(): Promise<string[]>;
  /** Whether the senders are done emitting. */
  allEmitted(): boolean;
  runs(service: string): Promise<Run[]>;
  /** The senders' outbox. */
  outbox(): Promise<{ pending: number; deadLetters: number }>;
  /**
   * Ids run twice that this backend accounts for (and why), from the runs of `service`: a handler's
   * side effect outside the inbox's transaction can repeat when its process dies before the commit.
   */
  allowedReruns(service: string, runs: Run[], counts: Map<string, number>): { window: Set<string>; note: string };
  /** Backend-specific checks after the shared ones (the faults really played; no dead-letter queue). */
  finally(): Promise<void>;
  faultLog: string[];
}

interface ChaosBackend {
  name: string;
  timeoutMs: number;
  before?(): Promise<void> | void;
  after?(): Promise<void> | void;
  start(dir: TempDir, random: () => number): Promise<Started>;
}

/**
 * The ids that ran exactly twice, first as one of the last `inFlight` runs of a process that was
 * then SIGKILLed, then in a later process. With async handlers and several events in flight, each
 * handler's completion is committed to the inbox after its own `await`, so at the moment of a kill
 * every event in flight may have had its side effect without its completion committed: up to the
 * number of events in flight at the target, not one. The transactional inbox (PostgreSQL) closes
 * this window; meanwhile handlers that must never repeat are idempotent on `event.id`.
 */
function crashWindowReruns(runs: readonly Run[], killed: ReadonlySet<number>, inFlight: number): Set<string> {
  const ids = new Set<string>();
  for (const pid of killed) {
    const tail = runs.filter((r) => r.pid === pid).slice(-inFlight);
    for (const { id } of tail) {
      const of = runs.filter((r) => r.id === id);
      if (of.length === 2 && of[0]!.pid === pid && of[1]!.pid !== pid) ids.add(id);
    }
  }
  return ids;
}

const runsOf = (path: string): Run[] =>
  lines(path).map((line) => {
    const [id, pid] = line.split(' ');
    return { id: id!, pid: Number(pid) };
  });

function chaosScenario(backend: ChaosBackend): void {
  const dir = tempDir('chaos');
  beforeAll(() => backend.before?.(), 60_000);
  afterAll(async () => {
    await ScriptProcess.killAll();
    await backend.after?.();
    dir.remove();
  });

  it(`${backend.name}: every emitted event reaches each service, none lost, none run twice outside the crash window (seed ${SEED})`, async () => {
    const startedAt = Date.now();
    const run = await backend.start(dir, prng(SEED));
    await run.faults();

    // Converged: every recorded id at every service, and nothing left in the outbox.
    await waitFor(run.allEmitted, { what: 'every event emitted', timeoutMs: 30_000, intervalMs: 20 });
    const emitted = await run.emitted();
    const converged = async () => {
      for (const service of run.services) {
        const seen = new Set((await run.runs(service)).map((r) => r.id));
        if (!emitted.every((id) => seen.has(id))) return false;
      }
      return (await run.outbox()).pending === 0;
    };
    try {
      await waitFor(converged, { what: 'every event at every service and an empty outbox', timeoutMs: 30_000, intervalMs: 100 });
    } catch (error) {
      throw new Error(`${(error as Error).message}\noutbox: ${JSON.stringify(await run.outbox())}\nfaults: ${run.faultLog.join('; ')}`);
    }

    const emittedIds = new Set(emitted);
    const perService = await Promise.all(
      run.services.map(async (name) => {
        const runs = await run.runs(name);
        const counts = new Map<string, number>();
        for (const r of runs) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
        const reruns = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
        const { window, note } = run.allowedReruns(name, runs, counts);
        return {
          name,
          delivered: [...emittedIds].filter((id) => counts.has(id)).length,
          lost: [...emittedIds].filter((id) => !counts.has(id)),
          duplicates: reruns.filter((id) => !window.has(id)).map((id) => `${name} ${id}: runs by pids [${runs.filter((r) => r.id === id).map((r) => r.pid).join(', ')}]`),
          accounted: reruns.filter((id) => window.has(id)).length,
          note,
        };
      }),
    );
    const outbox = await run.outbox();
    console.log(
      `chaos (${backend.name}): seed=${SEED} emitted=${emittedIds.size} delivered per service=[${perService.map((s) => s.delivered).join(', ')}] ` +
        `lost=${perService.reduce((n, s) => n + s.lost.length, 0)} duplicates=${perService.reduce((n, s) => n + s.duplicates.length, 0)} ` +
        `accounted reruns=[${perService.map((s) => `${s.accounted} ${s.note}`).join(', ')}] outbox=${JSON.stringify(outbox)} ` +
        `wall=${((Date.now() - startedAt) / 1000).toFixed(1)} s\nfaults: ${run.faultLog.join('; ')}`,
    );

    expect(emittedIds.size).toBe(run.expected);
    expect(perService.map((s) => [s.name, s.lost])).toEqual(run.services.map((name) => [name, []]));
    expect(perService.flatMap((s) => s.duplicates)).toEqual([]);
    expect(outbox).toMatchObject({ pending: 0, deadLetters: 0 });
    await run.finally();
  }, backend.timeoutMs);
}

/** HTTP push, SQLite outbox and inboxes: one sender, three targets. */
const httpSqlite: ChaosBackend = {
  name: 'HTTP + SQLite',
  timeoutMs: 90_000,
  async start(dir, random) {
    const N = Number(process.env.CHAOS_N ?? 600);
    const TARGETS = ['alpha', 'beta', 'gamma'];
    const between = (min: number, max: number) => Math.round(min + random() * (max - min));
    const secret = newSecret();
    const emittedPath = dir.file('http-emitted.txt');
    const outboxPath = dir.file('http-outbox.db');
    const logOf = (name: string) => dir.file(`http-${name}.log`);
    const faultLog: string[] = [];

    // Targets first, on ports they pick; a restarted target takes the same port again.
    const targets = TARGETS.map(
      (name) =>
        new ScriptProcess(name, 'target.ts', { CHAOS_NAME: name, CHAOS_PORT: '0', CHAOS_INBOX: dir.file(`http-${name}-inbox.db`), CHAOS_LOG: logOf(name), CHAOS_SECRET: secret }),
    );
    const ports = await Promise.all(targets.map(async (t) => Number((await t.start(/^ready (\d+)$/))[1])));
    targets.forEach((t, i) => t.setEnv({ CHAOS_PORT: String(ports[i]) }));
    const sender = new ScriptProcess('sender', 'sender.ts', {
      CHAOS_SECRET: secret,
      CHAOS_N: String(N),
      CHAOS_EMITTED: emittedPath,
      CHAOS_OUTBOX: outboxPath,
      CHAOS_TARGETS: JSON.stringify(Object.fromEntries(TARGETS.map((name, i) => [name, `http://127.0.0.1:${ports[i]}/events`]))),
    });
    await sender.start(/^started/);
    const emittedCount = () => new Set(lines(emittedPath).map((line) => line.split(' ')[0])).size;
    const allEmitted = () => emittedCount() >= N;

    return {
      services: TARGETS,
      expected: N,
      faultLog,
      allEmitted,
      async faults() {
        // The sender: SIGKILLed once mid-stream (30–70 % emitted) and once while it drains.
        const senderFaults = (async () => {
          const killAt = Math.round(N * (0.3 + 0.4 * random()));
          const pause = between(100, 400);
          await waitFor(() => emittedCount() >= killAt || allEmitted(), { what: 'the sender mid-stream', timeoutMs: 30_000, intervalMs: 5 });
          await sender.kill();
          faultLog.push(`sender killed at ${emittedCount()}/${N} emitted`);
          await sleep(pause);
          await sender.start(/^started/);
          await waitFor(allEmitted, { what: 'every event emitted', timeoutMs: 30_000, intervalMs: 20 });
          await sleep(50);
          await sender.kill();
          faultLog.push('sender killed after emitting all, while it drained');
          await sleep(pause);
          await sender.start(/^started/);
        })();
        // Targets SIGKILLed and restarted at random points, each at least twice, until all is emitted.
        const targetFaults = (async () => {
          let kills = 0;
          while (!allEmitted() || kills < 2 * TARGETS.length) {
            for (const target of [...targets].sort(() => random() - 0.5)) {
              await sleep(between(50, 400));
              await target.kill();
              kills += 1;
              faultLog.push(`${target.name} killed at ${emittedCount()}/${N} emitted`);
              await sleep(between(50, 500));
              await target.start(/^ready/);
              if (allEmitted() && kills >= 2 * TARGETS.length) break;
            }
          }
        })();
        await Promise.all([senderFaults, targetFaults]);
      },
      emitted: async () => lines(emittedPath).map((line) => line.split(' ')[1]!),
      runs: async (service) => runsOf(logOf(service)),
      outbox: async () => inspectOutbox({ outbox: outboxPath }),
      allowedReruns(service, runs) {
        // Events in flight at one target at once: the one sender's concurrency per target (support/sender.ts keeps the default).
        const target = targets[TARGETS.indexOf(service)]!;
        return { window: crashWindowReruns(runs, target.killedPids, DEFAULTS.concurrency), note: 'crash-window' };
      },
      async finally() {
        expect(sender.killedPids.size).toBe(2);
        expect(targets.every((t) => t.killedPids.size >= 2)).toBe(true);
      },
    };
  },
};

/** HTTP push, PostgreSQL outbox and transactional inbox: two senders and two receivers of one service. */
function httpPostgres(): ChaosBackend {
  const PER_SENDER = 150;
  let db: { schema: string; pool: Pool; drop(): Promise<void> };
  let proxy: { close(): Promise<void> } | undefined;
  return {
    name: 'HTTP + PostgreSQL',
    timeoutMs: 120_000,
    async before() {
      db = await createTestSchema('chaos_pg');
      // No unique constraint: a duplicate effect would show as a second row.
      await db.pool.query(`CREATE TABLE "${db.schema}".effects (event_id text NOT NULL, pid integer NOT NULL)`);
    },
    async after() {
      await proxy?.close();
      await db?.drop();
    },
    async start(dir) {
      const secret = newSecret();
      const faultLog: string[] = [];
      // Two instances of the receiving service `ledger` (one inbox: it keys by the receiving service,
      // the source and the event id). Each request to `ledger` goes to both instances (one fan-out
      // address): each event id reaches the shared inbox twice, and must book once.
      const receiverEnv = { PG_URL, PG_SCHEMA: db.schema, PG_EFFECTS: `"${db.schema}".effects`, PG_SECRET: secret };
      const receivers = ['a', 'b'].map((name) => new ScriptProcess(`ledger-${name}`, '../../postgres/support/receiver.ts', { ...receiverEnv, PG_PORT: '0' }));
      const ports: string[] = [];
      for (const receiver of receivers) {
        const [, port] = await receiver.start(/^ready (\d+)$/);
        ports.push(port!);
        receiver.setEnv({ PG_PORT: port! }); // restarted on the same port
      }
      const fanOut = await bothInstances(ports.map(Number));
      proxy = fanOut;
      const emittedPaths = ['a', 'b'].map((name) => dir.file(`pg-emitted-${name}.txt`));
      const senders = ['a', 'b'].map(
        (name, n) =>
          new ScriptProcess(`books-${name}`, 'pg-sender.ts', {
            CHAOS_SECRET: secret,
            CHAOS_N: String(PER_SENDER),
            CHAOS_FIRST: String(n * PER_SENDER),
            CHAOS_EMITTED: emittedPaths[n]!,
            CHAOS_DATABASE: PG_URL,
            CHAOS_SCHEMA: db.schema,
            CHAOS_TARGETS: JSON.stringify({ ledger: fanOut.url }),
          }),
      );
      await Promise.all(senders.map((s) => s.start(/^started/)));
      const emitted = () => emittedPaths.flatMap(lines).map((line) => line.split(' ')[1]!);
      const booked = async (): Promise<number> => Number((await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".effects`)).rows[0]!.n);
      let killedAfter = 0;

      return {
        services: ['ledger'],
        expected: 2 * PER_SENDER,
        faultLog,
        allEmitted: () => emitted().length >= 2 * PER_SENDER,
        async faults() {
          // Sender a: SIGKILLed mid-stream (a fifth of its events recorded), restarted after a short
          // pause; the other instance and its own next run take over its claims once their lease ran out.
          const senderFaults = (async () => {
            await waitFor(() => lines(emittedPaths[0]!).length >= PER_SENDER / 5, { timeoutMs: 15_000, what: 'sender a a fifth through' });
            killedAfter = lines(emittedPaths[0]!).length;
            await senders[0]!.kill();
            faultLog.push(`books-a killed after ${killedAfter} emitted`);
            await sleep(200);
            await senders[0]!.start(/^started/);
          })();
          // Each receiver in turn, each once an effect was booked since the previous kill (a kill often
          // lands inside a handler's transaction).
          const receiverFaults = (async () => {
            let before = 10;
            for (const receiver of receivers) {
              await waitFor(async () => (await booked()) > before, { timeoutMs: 15_000, intervalMs: 20, what: 'an effect booked since the last kill' });
              await receiver.kill();
              faultLog.push(`${receiver.name} killed at ${await booked()} booked`);
              await receiver.start(/^ready (\d+)$/);
              before = await booked();
            }
          })();
          await Promise.all([senderFaults, receiverFaults]);
        },
        emitted: async () => emitted(),
        async runs() {
          const { rows } = await db.pool.query<{ event_id: string; pid: number }>(`SELECT event_id, pid FROM "${db.schema}".effects`);
          return rows.map((r) => ({ id: r.event_id, pid: r.pid }));
        },
        async outbox() {
          const count = async (table: string) =>
            Number((await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".${table}`)).rows[0]!.n);
          return { pending: await count('events_outbox'), deadLetters: await count('events_dead_letters') };
        },
        // The handler writes through the inbox's transaction: no window at all.
        allowedReruns: () => ({ window: new Set(), note: 'none (transactional inbox)' }),
        async finally() {
          expect(senders[0]!.killedPids.size).toBe(1);
          expect(killedAfter).toBeLessThan(PER_SENDER);
          expect(receivers.every((r) => r.killedPids.size === 1)).toBe(true);
        },
      };
    },
  };
}

/** RabbitMQ: two services with two instances each competing on their queues, a shared SQLite inbox per service. */
function rabbitmq(): ChaosBackend {
  let vhost: TestVhost;
  return {
    name: 'RabbitMQ',
    timeoutMs: 90_000,
    before() {
      vhost = createVhost('chaos');
    },
    after: () => vhost?.remove(),
    async start(dir, random) {
      const N = Number(process.env.CHAOS_N ?? 400);
      const SERVICES = ['alpha', 'beta'];
      const between = (min: number, max: number) => Math.round(min + random() * (max - min));
      const secret = newSecret();
      const emittedPath = dir.file('amqp-emitted.txt');
      const outboxPath = dir.file('amqp-outbox.db');
      const logOf = (service: string) => dir.file(`amqp-${service}.log`);
      const brokerEnv = { EVENTS_BROKER_URL: vhost.url, EVENTS_BROKER_PREFIX: 'chaos.' };
      const faultLog: string[] = [];
      const instances = SERVICES.flatMap((service) =>
        [1, 2].map(
          (i) =>
            new ScriptProcess(`${service}-${i}`, 'broker-target.ts', {
              ...brokerEnv,
              CHAOS_NAME: service,
              CHAOS_INBOX: dir.file(`amqp-${service}-inbox.db`),
              CHAOS_LOG: logOf(service),
              CHAOS_SECRET: secret,
            }),
        ),
      );
      await Promise.all(instances.map((p) => p.start(/^ready$/)));
      const sender = new ScriptProcess('sender', 'sender.ts', {
        ...brokerEnv,
        CHAOS_SECRET: secret,
        CHAOS_N: String(N),
        CHAOS_EMITTED: emittedPath,
        CHAOS_OUTBOX: outboxPath,
        CHAOS_TARGETS: JSON.stringify(Object.fromEntries(SERVICES.map((name) => [name, '']))),
      });
      await sender.start(/^started/);
      const emittedCount = () => new Set(lines(emittedPath).map((line) => line.split(' ')[0])).size;
      const allEmitted = () => emittedCount() >= N;
      const drops = () => faultLog.filter((f) => f.startsWith('connections dropped')).length;

      return {
        services: SERVICES,
        expected: N,
        faultLog,
        allEmitted,
        async faults() {
          const senderFault = (async () => {
            await waitFor(() => emittedCount() >= N * (0.3 + 0.4 * random()) || allEmitted(), { what: 'mid-stream', timeoutMs: 30_000, intervalMs: 5 });
            await sender.kill();
            faultLog.push(`sender killed at ${emittedCount()}/${N}`);
            await sleep(between(100, 300));
            await sender.start(/^started/);
          })();
          const dropFaults = (async () => {
            for (const share of [0.25 + 0.2 * random(), 0.6 + 0.3 * random()]) {
              await waitFor(() => emittedCount() >= N * share || allEmitted(), { what: 'a drop point', timeoutMs: 30_000, intervalMs: 5 });
              faultLog.push(`connections dropped at ${emittedCount()}/${N}`);
              await vhost.dropConnections();
            }
          })();
          const instanceFaults = (async () => {
            let kills = 0;
            while (!allEmitted() || kills < instances.length) {
              for (const instance of [...instances].sort(() => random() - 0.5)) {
                await sleep(between(50, 300));
                await instance.kill();
                kills += 1;
                faultLog.push(`${instance.name} killed at ${emittedCount()}/${N}`);
                await sleep(between(50, 300));
                await instance.start(/^ready$/);
                if (allEmitted() && kills >= instances.length) break;
              }
            }
          })();
          await Promise.all([senderFault, dropFaults, instanceFaults]);
        },
        emitted: async () => lines(emittedPath).map((line) => line.split(' ')[1]!),
        runs: async (service) => runsOf(logOf(service)),
        outbox: async () => inspectOutbox({ outbox: outboxPath }),
        allowedReruns(_service, runs, counts) {
          // Prefetch 1: a SIGKILL catches at most one handler between its append and its inbox commit.
          const window = crashWindowReruns(runs, new Set(instances.flatMap((p) => [...p.killedPids])), 1);
          // A dropped connection returns each instance's unacked message (prefetch 1) to the queue while
          // its handler may still run: another instance can start it before the first records it in the
          // shared SQLite inbox (the PostgreSQL inbox's row claim closes that). Such a rerun runs exactly
          // twice, in two live processes; at most one per instance per drop.
          const dropReruns = [...counts].filter(([id, n]) => n === 2 && !window.has(id)).map(([id]) => id);
          expect(dropReruns.length).toBeLessThanOrEqual(drops() * 2); // two instances per service
          return { window: new Set([...window, ...dropReruns]), note: `crash-window or connection-drop (${dropReruns.length} of the latter)` };
        },
        async finally() {
          expect(drops()).toBe(2);
          expect(await Promise.all(SERVICES.map((name) => vhost.messageCount(`chaos.${name}.dlq`)))).toEqual([0, 0]);
        },
      };
    },
  };
}

describe('chaos', () => {
  describe('HTTP + SQLite', () => chaosScenario(httpSqlite));
  describePostgres('HTTP + PostgreSQL', () => chaosScenario(httpPostgres()));
  describeWithBroker('RabbitMQ', () => {
    takeBrokerTurns();
    chaosScenario(rabbitmq());
  });
});
