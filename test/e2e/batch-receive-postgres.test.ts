import type { Pool } from 'pg';
import { createEventBus, type EventBus } from '../../src/index.js';
import { eventKey } from '../../src/receive/inbox-store.js';
import { PostgresInbox } from '../../src/backends/postgres/inbox.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { createTestSchema, describePostgres, PG_URL } from '../helpers/postgres.js';
import { startServer } from '../helpers/server.js';
import { resultsOf, signedBatch } from '../helpers/signed-batch.js';
import { newSecret, signedStructured, structuredEvent } from '../helpers/signing.js';

describePostgres('a batch on the PostgreSQL inbox (handlers writing through tx)', () => {
  let db: { schema: string; pool: Pool; drop(): Promise<void> };
  const secret = newSecret();
  const cleanups = cleanupAfterEach();

  beforeAll(async () => {
    db = await createTestSchema('batch_inbox');
    await db.pool.query(`CREATE TABLE "${db.schema}".effects (event_id text NOT NULL)`);
  });
  afterAll(async () => {
    await db.drop();
  });

  /** The payments service on a real node:http server; `payment.made` writes an effect through tx, then fails when asked. */
  async function service(): Promise<{ bus: EventBus; url: string }> {
    const bus = createEventBus({ service: 'payments', secret, database: PG_URL, databaseSchema: db.schema, logger: createCapturingLogger('warn').logger, env: {} });
    cleanups.push(() => bus.close());
    bus.subscribeTo('payment.made', async (data, event, { tx }) => {
      await tx!.query(`INSERT INTO "${db.schema}".effects (event_id) VALUES ($1)`, [event.id]);
      if ((data as { fail?: boolean }).fail) throw new Error('crashed after writing');
    }, { name: 'record' });
    const server = await startServer(bus.nodeHandler());
    cleanups.push(() => server.close());
    return { bus, url: server.url };
  }

  const payment = (data: Record<string, unknown> = {}) => structuredEvent('payment.made', { amount: 5, ...data }, { source: 'users' });
  const effects = async (id: unknown): Promise<number> =>
    Number((await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".effects WHERE event_id = $1`, [id])).rows[0]!.n);
  const inboxRows = async (id: unknown): Promise<string[]> =>
    (
      await db.pool.query<{ handler: string }>(
        `SELECT handler FROM "${db.schema}".events_inbox WHERE service = 'payments' AND source = 'users' AND event_id = $1 ORDER BY handler`,
        [id],
      )
    ).rows.map((r) => r.handler);

  test('each event commits its write with its completion; a failing one rolls back alone; a resend is duplicates and the fixed one', async () => {
    const { url } = await service();
    const ok = payment();
    const failing = payment({ fail: true });
    const repeated = payment();

    const first = await request(url, signedBatch(secret, [ok, failing, repeated, repeated]));
    expect(first.status).toBe(500);
    expect(resultsOf(first.json).map((r) => [r.id, r.status, r.receipt ?? r.error])).toEqual([
      [ok.id, 200, 'delivered'],
      [failing.id, 500, 'handler_failed'],
      [repeated.id, 200, 'delivered'],
      [repeated.id, 200, 'duplicate'],
    ]);
    // Recorded before the answer: the rows are there as soon as it arrives.
    expect(await inboxRows(ok.id)).toEqual(['*', 'record']);
    expect(await inboxRows(repeated.id)).toEqual(['*', 'record']);
    expect(await inboxRows(failing.id)).toEqual([]);
    expect([await effects(ok.id), await effects(failing.id), await effects(repeated.id)]).toEqual([1, 0, 1]);

    const fixed = { ...failing, data: { amount: 5 } };
    const again = await request(url, signedBatch(secret, [ok, fixed, repeated]));
    expect(again.status).toBe(200);
    expect(resultsOf(again.json).map((r) => r.receipt)).toEqual(['duplicate', 'delivered', 'duplicate']);
    expect([await effects(ok.id), await effects(failing.id), await effects(repeated.id)]).toEqual([1, 1, 1]);
  });

  test('an id processed by a single request, then by another instance, comes back in a batch as a duplicate', async () => {
    const one = await service();
    const other = await service();
    const seen = payment();
    expect((await request(one.url, signedStructured(secret, seen))).status).toBe(200);

    const fresh = payment();
    const res = await request(other.url, signedBatch(secret, [fresh, seen]));
    expect(res.status).toBe(200);
    expect(resultsOf(res.json)).toEqual([
      { id: fresh.id, status: 200, receipt: 'delivered' },
      { id: seen.id, status: 200, receipt: 'duplicate' },
    ]);
    expect(await effects(seen.id)).toBe(1);
  });

  test('the same batch to two instances at once: every effect once', async () => {
    const one = await service();
    const other = await service();
    const events = Array.from({ length: 20 }, () => payment());
    const [a, b] = await Promise.all([request(one.url, signedBatch(secret, events)), request(other.url, signedBatch(secret, events))]);
    expect([a.status, b.status]).toEqual([200, 200]);
    for (const event of events) expect(await effects(event.id)).toBe(1);
    const receipts = [...resultsOf(a.json), ...resultsOf(b.json)].map((r) => r.receipt);
    expect(receipts.filter((r) => r === 'delivered').length).toBeGreaterThanOrEqual(20);
  });

  test('completedMany and markMany: one query each, the same answers as completed and markHandler/markDone', async () => {
    const inbox = new PostgresInbox({ database: PG_URL, service: 'ledger', schema: db.schema, retentionMs: 60_000, logger: createCapturingLogger('warn').logger });
    cleanups.push(() => inbox.close());
    const done = eventKey('users', 'p-1');
    const partial = eventKey('users', 'p-2');
    const quoted = eventKey("us'ers", 'p-3');
    await inbox.markMany([{ eventKey: done, handlerKey: 'h1' }, { eventKey: done }, { eventKey: partial, handlerKey: 'h1' }, { eventKey: quoted }]);
    await inbox.markMany([{ eventKey: done }]);

    const states = await inbox.completedMany([done, partial, quoted, eventKey('users', 'p-4'), eventKey('users', 'p-1x')]);
    expect([...states.keys()].sort()).toEqual([done, partial, quoted].sort());
    expect(states.get(done)).toBe(true);
    expect(states.get(quoted)).toBe(true);
    expect([...(states.get(partial) as ReadonlySet<string>)]).toEqual(['h1']);
    for (const key of [done, partial, quoted]) expect(await inbox.completed(key)).toEqual(states.get(key));
  });
});
