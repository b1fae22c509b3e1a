// The chaos test's PostgreSQL variant: two sender processes of one service sharing a PostgreSQL
// outbox, two receiver processes of one service sharing a PostgreSQL inbox with a transactional
// handler. One sender is SIGKILLed mid-stream and restarted; each receiver is SIGKILLed and
// restarted. Every event whose emit resolved must have exactly one effect row.
import { existsSync, readFileSync } from 'node:fs';
import type { Pool } from 'pg';
import { createTestSchema, describePostgres, PG_URL } from '../helpers/postgres.js';
import { newSecret } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { ScriptProcess } from './support/processes.js';

/** Events per sender instance. */
const PER_SENDER = 150;

const lines = (path: string): string[] => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

describePostgres('chaos on PostgreSQL: 2 sender and 2 receiver instances', () => {
  let db: { schema: string; pool: Pool; drop(): Promise<void> };
  const dir = tempDir('chaos-pg');
  const secret = newSecret();

  beforeAll(async () => {
    db = await createTestSchema('chaos_pg');
    // No unique constraint: a duplicate effect would show as a second row.
    await db.pool.query(`CREATE TABLE "${db.schema}".effects (event_id text NOT NULL, pid integer NOT NULL)`);
  });
  afterAll(async () => {
    await ScriptProcess.killAll();
    await db.drop();
    dir.remove();
  });

  test('SIGKILLs of a sender and of each receiver: 0 lost, 0 duplicate effects, an empty outbox', async () => {
    const startedAt = Date.now();
    // Two instances of the receiving service `ledger` (one inbox: it keys by the receiving service,
    // the source and the event id). The event is declared to both instances by address, as
    // `ledger-a` and `ledger-b`: each event id reaches the shared inbox twice.
    const receiverEnv = { PG_URL, PG_SCHEMA: db.schema, PG_EFFECTS: `"${db.schema}".effects`, PG_SECRET: secret };
    const receivers = ['a', 'b'].map((name) => new ScriptProcess(`ledger-${name}`, '../../postgres/support/receiver.ts', { ...receiverEnv, PG_PORT: '0' }));
    const ports: string[] = [];
    for (const receiver of receivers) {
      const [, port] = await receiver.start(/^ready (\d+)$/);
      ports.push(port!);
      receiver.setEnv({ PG_PORT: port! }); // restarted on the same port
    }

    const emittedPaths = ['a', 'b'].map((name) => dir.file(`emitted-${name}.txt`));
    const senders = ['a', 'b'].map(
      (name, n) =>
        new ScriptProcess(`books-${name}`, 'pg-sender.ts', {
          CHAOS_SECRET: secret,
          CHAOS_N: String(PER_SENDER),
          CHAOS_FIRST: String(n * PER_SENDER),
          CHAOS_EMITTED: emittedPaths[n]!,
          CHAOS_DATABASE: PG_URL,
          CHAOS_SCHEMA: db.schema,
          CHAOS_TARGETS: JSON.stringify({ 'ledger-a': `http://127.0.0.1:${ports[0]}/events`, 'ledger-b': `http://127.0.0.1:${ports[1]}/events` }),
        }),
    );
    await Promise.all(senders.map((s) => s.start(/^started/)));

    const emitted = () => emittedPaths.flatMap(lines).map((line) => line.split(' ')[1]!);
    const booked = async (): Promise<number> =>
      Number((await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".effects`)).rows[0]!.n);
    const bookedSince = async (before: number) =>
      waitFor(async () => (await booked()) > before, { timeoutMs: 15_000, intervalMs: 20, what: 'an effect booked since the last kill' });

    // Both schedules at once, while events stream. Sender a: SIGKILLed mid-stream (a fifth of its
    // events recorded), restarted after a short pause; it emits the rest, the other instance and its
    // own next run take over what its claims held once their lease ran out.
    let killedAfter = 0;
    const senderFaults = (async () => {
      await waitFor(() => lines(emittedPaths[0]!).length >= PER_SENDER / 5, { timeoutMs: 15_000, what: 'sender a a fifth through' });
      killedAfter = lines(emittedPaths[0]!).length;
      await senders[0]!.kill();
      await sleep(200);
      await senders[0]!.start(/^started/);
    })();
    // Each receiver in turn, each once an effect was booked since the previous kill (a kill often
    // lands inside a handler's transaction).
    const receiverFaults = (async () => {
      let before = 10;
      for (const receiver of receivers) {
        await bookedSince(before);
        await receiver.kill();
        await receiver.start(/^ready (\d+)$/);
        before = await booked();
      }
    })();
    await Promise.all([senderFaults, receiverFaults]);
    const tKills = Date.now() - startedAt;

    await waitFor(() => emitted().length >= 2 * PER_SENDER, { timeoutMs: 20_000, what: 'every event emitted' });
    const ids = emitted();
    const outboxRows = async () =>
      Number((await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".events_outbox`)).rows[0]!.n);
    await waitFor(async () => (await outboxRows()) === 0, { timeoutMs: 30_000, intervalMs: 50, what: 'an empty outbox' });
    const tDrain = Date.now() - startedAt - tKills;

    const { rows } = await db.pool.query<{ event_id: string; n: string }>(
      `SELECT event_id, count(*) AS n FROM "${db.schema}".effects GROUP BY event_id`,
    );
    const counts = new Map(rows.map((r) => [r.event_id, Number(r.n)]));
    const lost = ids.filter((id) => !counts.has(id));
    const duplicates = [...counts].filter(([, n]) => n > 1);
    const kills = [...senders, ...receivers].reduce((sum, p) => sum + p.killedPids.size, 0);
    console.log(
      `pg chaos: emitted=${ids.length} effects=${rows.length} lost=${lost.length} duplicates=${duplicates.length} ` +
        `kills=${kills} (sender a after ${killedAfter}) killing=${tKills} ms drain=${tDrain} ms total=${Date.now() - startedAt} ms`,
    );

    expect(new Set(ids).size).toBe(2 * PER_SENDER);
    expect(senders[0]!.killedPids.size).toBe(1);
    expect(killedAfter).toBeLessThan(PER_SENDER);
    expect(receivers.every((r) => r.killedPids.size === 1)).toBe(true);
    expect(lost).toEqual([]);
    expect(duplicates).toEqual([]);
    expect(await outboxRows()).toBe(0);
  }, 120_000);
});
