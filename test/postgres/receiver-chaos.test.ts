import type { Pool } from 'pg';
import { createEventBus } from '../../src/index.js';
import { ScriptProcess } from '../chaos/support/processes.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { createTestSchema, describePostgres, PG_URL } from '../helpers/postgres.js';
import { bothInstances } from '../helpers/fan-out.js';
import { newSecret } from '../helpers/signing.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** At least this many events; the sender keeps streaming until the last kill. */
const MIN_EVENTS = 300;
const KILLS_EACH = 2;

describePostgres('PostgreSQL inbox under SIGKILL: two receiver processes with transactional handlers', () => {
  let db: { schema: string; pool: Pool; drop(): Promise<void> };
  const secret = newSecret();

  beforeAll(async () => {
    db = await createTestSchema('inbox_chaos');
    // No unique constraint: a duplicate effect would show as a second row.
    await db.pool.query(`CREATE TABLE "${db.schema}".effects (event_id text NOT NULL, pid integer NOT NULL)`);
  });
  afterAll(async () => {
    await ScriptProcess.killAll();
    await db.drop();
  });

  test('every event sent to both instances while each is SIGKILLed repeatedly: 0 lost, 0 duplicate effects', async () => {
    const env = { PG_URL, PG_SCHEMA: db.schema, PG_EFFECTS: `"${db.schema}".effects`, PG_SECRET: secret };
    const receivers = ['a', 'b'].map((name) => new ScriptProcess(`ledger-${name}`, '../../postgres/support/receiver.ts', { ...env, PG_PORT: '0' }));
    const ports: number[] = [];
    for (const receiver of receivers) {
      const [, port] = await receiver.start(/^ready (\d+)$/);
      ports.push(Number(port));
      receiver.setEnv({ PG_PORT: port! }); // restarted on the same port
    }

    // One sender, every request to `ledger` delivered to both of its instances: each event id
    // reaches the shared inbox twice, often at the same moment, and across kills and redeliveries.
    const logger = createCapturingLogger('error').logger;
    const proxy = await bothInstances(ports);
    const sender = createEventBus({
      service: 'books',
      secret,
      services: { ledger: proxy.url },
      timeoutMs: 2_000,
      retry: { retries: 2, baseDelayMs: 20, maxDelayMs: 100 },
      redelivery: { baseDelayMs: 100, maxDelayMs: 500, probeMaxDelayMs: 200 },
      logger,
    });
    sender.declareEvent('ledger.entry', ['ledger']);

    const ids: string[] = [];
    let killing = true;
    const streaming = (async () => {
      while (killing || ids.length < MIN_EVENTS) {
        const receipts = await Promise.all(Array.from({ length: 2 }, () => sender.emit('ledger.entry', { i: ids.length })));
        ids.push(...receipts.map((r) => r.id));
        await sleep(20);
      }
    })();

    // SIGKILL each instance KILLS_EACH times, one at a time, each after some effect was booked
    // since the previous kill (events keep streaming: kills land mid-transaction).
    const booked = async (): Promise<number> =>
      Number((await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".effects`)).rows[0]!.n);
    const t0 = Date.now();
    let kills = 0;
    for (let round = 0; round < KILLS_EACH; round++) {
      for (const receiver of receivers) {
        const before = await booked();
        await waitFor(async () => (await booked()) > before, { timeoutMs: 15_000, what: 'an effect booked since the last kill' });
        await receiver.kill();
        kills += 1;
        await receiver.start(/^ready (\d+)$/);
      }
    }
    killing = false;
    await streaming;
    const tKills = Date.now() - t0;

    await waitFor(async () => (await sender.outboxStats()).pending === 0, { timeoutMs: 30_000, intervalMs: 50, what: 'every delivery acknowledged' });
    const tDrain = Date.now() - t0 - tKills;
    const { rows } = await db.pool.query<{ event_id: string; n: string }>(
      `SELECT event_id, count(*) AS n FROM "${db.schema}".effects GROUP BY event_id`,
    );
    const counts = new Map(rows.map((r) => [r.event_id, Number(r.n)]));
    const lost = ids.filter((id) => !counts.has(id));
    const duplicates = [...counts].filter(([, n]) => n > 1);
    const stats = await sender.outboxStats();
    await sender.close();
    await proxy.close();
    console.log(`pg inbox chaos: emitted=${ids.length} effects=${rows.length} lost=${lost.length} duplicates=${duplicates.length} kills=${kills} killing=${tKills} ms drain=${tDrain} ms`);

    expect(ids.length).toBeGreaterThanOrEqual(MIN_EVENTS);
    expect(kills).toBe(2 * KILLS_EACH);
    expect(receivers.every((r) => r.killedPids.size === KILLS_EACH)).toBe(true);
    expect(lost).toEqual([]);
    expect(duplicates).toEqual([]);
    expect(counts.size).toBe(ids.length);
    expect(stats).toMatchObject({ pending: 0, deadLetters: 0 });
  }, 90_000);
});
