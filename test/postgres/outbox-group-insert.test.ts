// The PostgreSQL outbox's group INSERT of emits made outside a transaction: one in flight at a
// time (emits made meanwhile share the next one), and an emit queued behind one that does not
// answer is still answered within outbox.writeWaitMs, and not recorded.
import type { Pool, PoolClient } from 'pg';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { DEFAULTS } from '../../src/defaults.js';
import { OutboxUnavailableError } from '../../src/errors/index.js';
import { PostgresOutbox } from '../../src/backends/postgres/outbox.js';
import { delivery } from '../helpers/outbox-contract.js';
import { DATABASE_URL, describePostgres, freshSchema } from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';

describePostgres('PostgreSQL outbox: the group INSERT of emits', () => {
  let schema: string;
  let pool: Pool;
  let drop: () => Promise<void>;
  let services = 0;
  const closing: PostgresOutbox[] = [];

  beforeAll(async () => {
    ({ schema, pool, drop } = await freshSchema('outbox_group_insert'));
  });
  afterEach(async () => {
    await Promise.all(closing.splice(0).map((outbox) => outbox.close()));
  });
  afterAll(async () => drop());

  /** A bus's outbox (its emits leased to it: the INSERT is `events_add`, which locks the target's row first). */
  const open = (writeWaitMs = 5000) => {
    const service = `svc${++services}`;
    const outbox = new PostgresOutbox(DATABASE_URL, { service, schema, eventsPerRequest: () => 200, sendsOwnEmits: true, writeWaitMs });
    closing.push(outbox);
    return { outbox, service };
  };

  /** Another connection holding the lock of the target's row (as a claim does), until `release`. */
  async function holdTarget(service: string): Promise<{ release(): Promise<void> }> {
    const client: PoolClient = await pool.connect();
    await client.query('BEGIN');
    await client.query(`SELECT 1 FROM "${schema}".events_targets WHERE service = $1 AND target = 'payments' FOR UPDATE`, [service]);
    return {
      release: async () => {
        await client.query('COMMIT');
        client.release();
      },
    };
  }

  /** Until a group INSERT into this file's schema waits for a lock. */
  const waitingForLock = () =>
    waitFor(
      async () => {
        const { rows } = await pool.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [`%${schema}%events_add%`]);
        return rows.length > 0;
      },
      { what: 'the group INSERT waiting for the lock' },
    );

  /** The transaction ids that wrote the rows of `eventIds` (`xmin`): one per group INSERT. */
  async function writers(service: string, eventIds: string[]): Promise<number> {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(DISTINCT xmin::text)::int AS n FROM "${schema}".events_outbox WHERE service = $1 AND event_id = ANY($2::text[])`,
      [service, eventIds],
    );
    return rows[0]!.n;
  }

  it('emits made while a group INSERT waits go together in the next one, after it', async () => {
    const { outbox, service } = open();
    await outbox.add([delivery(1)]); // the target's row exists from here on
    const held = await holdTarget(service);
    const first = outbox.add([delivery(2)]);
    await waitingForLock();
    const later: Promise<void>[] = [];
    for (const n of [3, 4, 5, 6]) {
      later.push(outbox.add([delivery(n)]));
      await nextTurn(); // each in a turn of its own: one group INSERT each, were they not waiting
    }
    await held.release();
    await Promise.all([first, ...later]);
    expect(await writers(service, ['evt-2'])).toBe(1);
    expect(await writers(service, ['evt-3', 'evt-4', 'evt-5', 'evt-6'])).toBe(1);
    expect(await writers(service, ['evt-2', 'evt-3'])).toBe(2);
  });

  it(`emits queued meanwhile are written in groups of at most ${DEFAULTS.database.emitGroupMax} deliveries, oldest first, none left behind`, async () => {
    const { outbox, service } = open();
    await outbox.add([delivery(1)]);
    const held = await holdTarget(service);
    const first = outbox.add([delivery(2)]);
    await waitingForLock();
    const max = DEFAULTS.database.emitGroupMax;
    const queued = Array.from({ length: max + max / 2 }, (_, i) => outbox.add([delivery(3 + i)]));
    await held.release();
    await Promise.all([first, ...queued]);
    const ids = (from: number, count: number) => Array.from({ length: count }, (_, i) => `evt-${from + i}`);
    expect(await writers(service, ids(3, max))).toBe(1);
    expect(await writers(service, ids(3 + max, max / 2))).toBe(1);
    expect(await writers(service, ids(3, max + max / 2))).toBe(2);
    const { rows } = await pool.query<{ event_id: string }>(`SELECT event_id FROM "${schema}".events_outbox WHERE service = $1 ORDER BY id`, [service]);
    expect(rows.map((row) => row.event_id)).toEqual(ids(1, 2 + max + max / 2));
  });

  it('an emit queued behind a group INSERT that does not answer is refused within writeWaitMs, never sent: not recorded', async () => {
    const writeWaitMs = 400;
    const { outbox, service } = open(writeWaitMs);
    await outbox.add([delivery(1)]);
    const held = await holdTarget(service);
    try {
      const first = outbox.add([delivery(2)]).then(
        () => 'recorded',
        (error: unknown) => error,
      );
      await waitingForLock();
      const queuedAt = Date.now();
      const queued = outbox.add([delivery(3)]).then(
        () => 'recorded',
        (error: unknown) => error,
      );
      const refusal = await queued;
      const waited = Date.now() - queuedAt;
      expect(refusal).toBeInstanceOf(OutboxUnavailableError);
      expect((refusal as Error).message).toContain(`outbox.writeWaitMs (${writeWaitMs} ms)`);
      expect(waited).toBeGreaterThanOrEqual(writeWaitMs - 20);
      // The one in flight is found out (its backend ended: not committed) and refused too.
      expect(await first).toBeInstanceOf(OutboxUnavailableError);
    } finally {
      await held.release().catch(() => undefined);
    }
    const { rows } = await pool.query(`SELECT event_id FROM "${schema}".events_outbox WHERE service = $1 ORDER BY id`, [service]);
    expect(rows.map((row) => row.event_id)).toEqual(['evt-1']);
  });
});
