// The chaos test over RabbitMQ: two services with two instances each (real processes) competing on
// their queues, a durable inbox shared by a service's instances, instances SIGKILLed and restarted at
// random points, every broker connection of the test's vhost dropped twice, the sender SIGKILLed once
// mid-stream. Every event whose emit resolved must reach each service's handler once: 0 lost; a second
// run is accepted only in the crash window (see chaos.test.ts). CHAOS_SEED replays a fault schedule.
import { existsSync, readFileSync } from 'node:fs';
import { inspectOutbox } from '../../src/index.js';
import { createVhost, describeWithBroker, takeBrokerTurns, type TestVhost } from '../helpers/broker.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { ScriptProcess } from './support/processes.js';

const N = Number(process.env.CHAOS_N ?? 400);
const SERVICES = ['alpha', 'beta'] as const;
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

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

describeWithBroker('chaos over RabbitMQ', () => {
  takeBrokerTurns();
  let vhost: TestVhost;
  const dir = tempDir('chaos-broker');
  beforeAll(() => {
    vhost = createVhost('chaos');
  });
  afterAll(async () => {
    await ScriptProcess.killAll();
    vhost?.remove();
    dir.remove();
  });

  it(`delivers every event to each service once through SIGKILLed instances and connection drops (seed ${SEED})`, async () => {
    const startedAt = Date.now();
    const random = prng(SEED);
    const between = (min: number, max: number) => Math.round(min + random() * (max - min));
    const secret = newSecret();
    const emittedPath = dir.file('emitted.txt');
    const outboxPath = dir.file('outbox.db');
    const logOf = (service: string) => dir.file(`${service}.log`);
    const brokerEnv = { EVENTS_BROKER_URL: vhost.url, EVENTS_BROKER_PREFIX: 'chaos.' };
    const faults: string[] = [];

    const instances = SERVICES.flatMap((service) =>
      [1, 2].map(
        (i) =>
          new ScriptProcess(`${service}-${i}`, 'broker-target.ts', {
            ...brokerEnv,
            CHAOS_NAME: service,
            CHAOS_INBOX: dir.file(`${service}-inbox.db`),
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

    const senderFault = (async () => {
      await waitFor(() => emittedCount() >= N * (0.3 + 0.4 * random()) || allEmitted(), { what: 'mid-stream', timeoutMs: 30_000, intervalMs: 5 });
      await sender.kill();
      faults.push(`sender killed at ${emittedCount()}/${N}`);
      await sleep(between(100, 300));
      await sender.start(/^started/);
    })();

    const dropFaults = (async () => {
      for (const share of [0.25 + 0.2 * random(), 0.6 + 0.3 * random()]) {
        await waitFor(() => emittedCount() >= N * share || allEmitted(), { what: 'a drop point', timeoutMs: 30_000, intervalMs: 5 });
        faults.push(`connections dropped at ${emittedCount()}/${N}`);
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
          faults.push(`${instance.name} killed at ${emittedCount()}/${N}`);
          await sleep(between(50, 300));
          await instance.start(/^ready$/);
          if (allEmitted() && kills >= instances.length) break;
        }
      }
    })();

    await Promise.all([senderFault, dropFaults, instanceFaults]);

    const recorded = lines(emittedPath).map((line) => line.split(' ')[1]!);
    const converged = async () => {
      const logs = SERVICES.map((name) => new Set(lines(logOf(name)).map((line) => line.split(' ')[0])));
      return recorded.every((id) => logs.every((log) => log.has(id))) && (await inspectOutbox({ outbox: outboxPath })).pending === 0;
    };
    try {
      await waitFor(converged, { what: 'every event at every service and an empty outbox', timeoutMs: 30_000, intervalMs: 100 });
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\noutbox: ${JSON.stringify(await inspectOutbox({ outbox: outboxPath }))}\nfaults: ${faults.join('; ')}\n` +
          `sender stderr: ${sender.stderr().slice(-1500)}`,
      );
    }

    const emittedIds = new Set(recorded);
    const killedPids = new Set(instances.flatMap((p) => [...p.killedPids]));
    const perService = SERVICES.map((name) => {
      const runs = lines(logOf(name)).map((line) => {
        const [id, pid] = line.split(' ');
        return { id: id!, pid: Number(pid) };
      });
      const counts = new Map<string, number>();
      for (const run of runs) counts.set(run.id, (counts.get(run.id) ?? 0) + 1);
      const inWindow = crashWindowReruns(runs, killedPids);
      const reruns = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
      // A dropped connection returns each instance's unacked message (prefetch 1) to the queue while
      // its handler may still run: another instance can start it before the first records it in the
      // shared SQLite inbox (the PostgreSQL inbox's row claim closes that). Such a rerun runs exactly
      // twice, in two live processes; there can be at most one per instance per drop.
      const rerunOnce = reruns.filter((id) => !inWindow.has(id) && counts.get(id) === 2);
      return {
        name,
        delivered: [...emittedIds].filter((id) => counts.has(id)).length,
        lost: [...emittedIds].filter((id) => !counts.has(id)),
        duplicates: reruns.filter((id) => !inWindow.has(id) && counts.get(id) !== 2),
        dropReruns: rerunOnce,
        crashWindow: reruns.filter((id) => inWindow.has(id)),
      };
    });
    const deadLetters = await Promise.all(SERVICES.map((name) => vhost.messageCount(`chaos.${name}.dlq`)));
    const lost = perService.reduce((n, s) => n + s.lost.length, 0);
    console.log(
      `chaos (RabbitMQ): seed=${SEED} emitted=${emittedIds.size} delivered per service=[${perService.map((s) => s.delivered).join(', ')}] ` +
        `lost=${lost} duplicates=${perService.reduce((n, s) => n + s.duplicates.length, 0)} ` +
        `crash-window reruns=${perService.reduce((n, s) => n + s.crashWindow.length, 0)} ` +
        `connection-drop reruns=${perService.reduce((n, s) => n + s.dropReruns.length, 0)} dlq=[${deadLetters.join(', ')}] ` +
        `instance restarts=[${instances.map((p) => p.starts - 1).join(', ')}] wall=${((Date.now() - startedAt) / 1000).toFixed(1)} s\n` +
        `faults: ${faults.join('; ')}`,
    );

    expect(emittedIds.size).toBe(N);
    expect(perService.map((s) => [s.name, s.lost])).toEqual(SERVICES.map((name) => [name, []]));
    expect(perService.map((s) => [s.name, s.duplicates])).toEqual(SERVICES.map((name) => [name, []]));
    const drops = faults.filter((f) => f.startsWith('connections dropped')).length;
    for (const s of perService) expect(s.dropReruns.length).toBeLessThanOrEqual(drops * 2); // two instances per service
    expect(deadLetters).toEqual([0, 0]);
    expect(await inspectOutbox({ outbox: outboxPath })).toMatchObject({ pending: 0, deadLetters: 0 });
  }, 90_000);
});

/** Ids run exactly twice whose first run was the last line of a SIGKILLed process (see chaos.test.ts). */
function crashWindowReruns(runs: Array<{ id: string; pid: number }>, killed: ReadonlySet<number>): Set<string> {
  const lastOf = new Map<number, string>();
  for (const run of runs) lastOf.set(run.pid, run.id);
  const ids = new Set<string>();
  for (const pid of killed) {
    const id = lastOf.get(pid);
    if (id === undefined) continue;
    const of = runs.filter((r) => r.id === id);
    if (of.length === 2 && of[0]!.pid === pid && of[1]!.pid !== pid) ids.add(id);
  }
  return ids;
}
