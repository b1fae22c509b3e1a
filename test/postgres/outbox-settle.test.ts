// The PostgreSQL outbox as a store (no bus): the outbox store contract shared with the memory and
// SQLite stores (test/helpers/outbox-contract.ts), lease ownership in settleMany, the cap on live leases,
// and the delivered rows deleted in groups.
import { Pool } from 'pg';
import { resolveConfig } from '../../src/config.js';
import { openOutbox } from '../../src/backends/stores.js';
import { PostgresOutbox } from '../../src/backends/postgres/outbox.js';
import { delivery, ids, outboxStoreContract, settleManyContract, T, tried } from '../helpers/outbox-contract.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { DATABASE_URL, describePostgres, freshSchema } from '../helpers/postgres.js';
import { newSecret } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

describePostgres('PostgreSQL outbox as a store', () => {
  let schema: string;
  let pool: Pool;
  let drop: () => Promise<void>;
  let services = 0;

  beforeAll(async () => {
    ({ schema, pool, drop } = await freshSchema('outbox_settle'));
  });
  afterAll(async () => drop());

  /** A pool of its own whose every `query` (the outbox's statements) is recorded, and failed when `fail` says so (with `failure`: a lost connection). */
  function countingPool(
    fail: (text: string) => boolean = () => false,
    failure: () => Error = () => Object.assign(new Error('connection lost'), { code: 'ECONNRESET' }),
  ): { pool: Pool; statements: string[] } {
    const statements: string[] = [];
    const counted = new Pool({ connectionString: DATABASE_URL, max: 2 });
    const query = counted.query.bind(counted) as (...args: unknown[]) => Promise<unknown>;
    // A store's frequent statements come as prepared ones: `{ name, text, values }`.
    (counted as { query: unknown }).query = (statement: string | { text: string }, ...rest: unknown[]) => {
      const text = typeof statement === 'string' ? statement : statement.text;
      statements.push(text);
      return fail(text) ? Promise.reject(failure()) : query(statement, ...rest);
    };
    return { pool: counted, statements };
  }

  /** The DELETE of a group of delivered rows (SettleGroups), as the counting pool records it. */
  const groupDelete = (text: string) => /^WITH done AS \(DELETE FROM \S+ WHERE id = ANY\(\$1::bigint\[\]\)\) SELECT/.test(text);

  /** The rows of `service` as the database has them: event id and lease owner, in id order. */
  async function rows(service: string): Promise<Array<{ event_id: string; lease_owner: string | null }>> {
    const result = await pool.query<{ event_id: string; lease_owner: string | null }>(
      `SELECT event_id, lease_owner FROM "${schema}".events_outbox WHERE service = $1 ORDER BY id`,
      [service],
    );
    return result.rows;
  }

  /** A store of a service of its own: every test starts empty. */
  const open = (options: Partial<ConstructorParameters<typeof PostgresOutbox>[1]> = {}, service = `svc${++services}`) =>
    new PostgresOutbox(DATABASE_URL, { service, schema, eventsPerRequest: () => 200, ...options });

  describe('the outbox store contract (every store keeps it)', () => {
    outboxStoreContract(() => open());
    settleManyContract(() => open());
  });

  describe('the outbox store contract, with the emits leased to the instance that sends them (a bus’s outbox)', () => {
    outboxStoreContract(() => open({ sendsOwnEmits: true }));
    settleManyContract(() => open({ sendsOwnEmits: true }));
  });

  describe('leases', () => {
    const stores: PostgresOutbox[] = [];
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    });
    const opened = (...args: Parameters<typeof open>) => {
      const store = open(...args);
      stores.push(store);
      return store;
    };

    it('settleMany reschedules and dead-letters only while this instance holds the lease; a completion deletes whoever holds it', async () => {
      const service = `svc${++services}`;
      const first = opened({}, service);
      const second = opened({}, service);
      await first.add([delivery(1), delivery(2), delivery(3), delivery(4)]);
      const stale = await first.claim('payments', T + 10, 10);
      expect(stale).toHaveLength(4);
      // The first instance stalls past its lease (its next heartbeat is seconds away): the second takes the rows over.
      await pool.query(`UPDATE "${schema}".events_outbox SET leased_until = 0 WHERE service = $1`, [service]);
      const taken = await second.claim('payments', T + 10, 10);
      expect(ids(taken)).toEqual(['evt-1', 'evt-2', 'evt-3', 'evt-4']);

      const [r1, r2, r3] = stale;
      await first.settleMany([
        { kind: 'complete', record: r1! },
        { kind: 'reschedule', record: tried(r2!, T + 20), nextAttemptAt: T + 60_000 },
        { kind: 'kill', record: tried(r3!, T + 20, 400), reason: 'refused' },
      ]);
      expect(ids(await second.pendingRecords())).toEqual(['evt-2', 'evt-3', 'evt-4']);
      expect(await second.deadLetters()).toEqual([]);
      const rows = await pool.query<{ event_id: string; lease_owner: string; attempts: number }>(
        `SELECT event_id, lease_owner, attempts FROM "${schema}".events_outbox WHERE service = $1 ORDER BY id`,
        [service],
      );
      expect(rows.rows.every((row) => row.lease_owner === second.owner && row.attempts === 0)).toBe(true);

      const [, s2, s3, s4] = taken;
      await second.settleMany([
        { kind: 'reschedule', record: tried(s2!, T + 30), nextAttemptAt: T + 60_000 },
        { kind: 'kill', record: tried(s3!, T + 30, 400), reason: 'refused' },
        { kind: 'complete', record: s4! },
      ]);
      expect(ids(await second.pendingRecords())).toEqual(['evt-2']);
      expect(ids(await second.deadLetters())).toEqual(['evt-3']);
      expect(await second.nextDueAt('payments')).toBe(T + 60_000);
    });

    it('live leases on a target are capped at concurrency × events per request, across instances', async () => {
      const service = `svc${++services}`;
      const first = opened({ concurrency: 2, eventsPerRequest: () => 3 }, service);
      const second = opened({ concurrency: 2, eventsPerRequest: () => 3 }, service);
      await first.add(Array.from({ length: 10 }, (_, i) => delivery(i + 1)));
      expect(await first.claim('payments', T + 100, 4)).toHaveLength(4);
      expect(await second.claim('payments', T + 100, 10)).toHaveLength(2);
      expect(await second.claim('payments', T + 100, 10)).toEqual([]);
      const unbatched = opened({ concurrency: 2, eventsPerRequest: undefined }, `svc${++services}`); // the default: 1
      await unbatched.add([delivery(1), delivery(2), delivery(3)]);
      expect(await unbatched.claim('payments', T + 100, 10)).toHaveLength(2);
    });

    it('a claim that leases fewer than asked answers the next nextDueAt in the same round trip; a full claim leaves it to a query', async () => {
      const { pool: counted, statements } = countingPool();
      const outbox = new PostgresOutbox(counted, { service: `svc${++services}`, schema, eventsPerRequest: () => 200 });
      await outbox.add([delivery(1), delivery(2), delivery(3, 'payments', T + 5000)]);
      statements.length = 0;
      expect(ids(await outbox.claim('payments', T + 10, 1))).toEqual(['evt-1']);
      expect(await outbox.nextDueAt('payments')).toBe(T + 2);
      expect(statements).toHaveLength(2); // the full claim, then the query
      statements.length = 0;
      expect(ids(await outbox.claim('payments', T + 10, 10))).toEqual(['evt-2']);
      expect(await outbox.nextDueAt('payments')).toBe(T + 5000);
      expect(statements).toHaveLength(1); // the claim alone
      await outbox.close();
      await counted.end();
    });

    it('an instance that sends its own emits leases them at the INSERT, up to the cap across instances, and claims them without a round trip', async () => {
      let failing = false;
      const { pool: counted, statements } = countingPool((text) => failing && text.includes('events_claim'));
      const service = `svc${++services}`;
      const options = { service, schema, concurrency: 2, eventsPerRequest: () => 3, sendsOwnEmits: true };
      const first = new PostgresOutbox(counted, options);
      const second = opened({ ...options }, service);
      await first.add(Array.from({ length: 10 }, (_, i) => delivery(i + 1)));
      const leased = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${schema}".events_outbox WHERE service = $1 AND lease_owner = $2`,
        [service, first.owner],
      );
      expect(leased.rows[0]!.n).toBe(6); // the cap: concurrency 2 × 3 events per request
      expect(await second.claim('payments', Date.now(), 10)).toEqual([]); // the cap is held, across instances

      statements.length = 0;
      expect(ids(await first.claim('payments', Date.now(), 2))).toEqual(['evt-1', 'evt-2']);
      expect(statements).toEqual([]);
      // A claim whose database part fails keeps what it had taken for the next one; a probe takes a kept emit first.
      failing = true;
      await expect(first.claim('payments', Date.now(), 10)).rejects.toThrow('connection lost');
      failing = false;
      expect(ids([(await first.claimProbe('payments'))!])).toEqual(['evt-3']);
      // The kept ones; the others wait: the cap is full with this instance's own leases.
      expect(ids(await first.claim('payments', Date.now(), 10))).toEqual(['evt-4', 'evt-5', 'evt-6']);
      await first.close();
      await counted.end();
    });

    it('the bus configuration sets the cap per target: batch.maxEvents for a target sent batches, 1 for one that is not', async () => {
      const config = resolveConfig({
        service: `svc${++services}`,
        secret: newSecret(),
        database: DATABASE_URL,
        databaseSchema: schema,
        concurrency: 2,
        batch: { maxEvents: 3 },
        services: { payments: 'http://127.0.0.1:1/events', orders: { url: 'http://127.0.0.1:1/events', batch: false } },
        env: {},
      });
      const store = openOutbox(config);
      stores.push(store as PostgresOutbox);
      await store.add([...Array.from({ length: 10 }, (_, i) => delivery(i + 1)), ...Array.from({ length: 10 }, (_, i) => delivery(i + 11, 'orders'))]);
      expect(await store.claim('payments', T + 100, 10)).toHaveLength(6);
      expect(await store.claim('orders', T + 100, 10)).toHaveLength(2);
    });
  });

  describe('delivered rows, deleted in groups', () => {
    const closing: Array<{ close(): Promise<void> }> = [];
    const pools: Pool[] = [];
    afterEach(async () => {
      await Promise.all(closing.splice(0).map((c) => c.close()));
      await Promise.all(pools.splice(0).map((p) => p.end()));
    });
    /** A bus's outbox (its emits leased to it) on a counting pool, failing the statements `fail` says. */
    function counted(fail?: (text: string) => boolean, options: Partial<ConstructorParameters<typeof PostgresOutbox>[1]> = {}) {
      const { pool: counting, statements } = countingPool(fail);
      pools.push(counting);
      const service = `svc${++services}`;
      const outbox = new PostgresOutbox(counting, { service, schema, eventsPerRequest: () => 200, sendsOwnEmits: true, ...options });
      closing.push(outbox);
      return { outbox, statements, service };
    }

    it('several lone deliveries in quick succession cost one DELETE, and each settle resolves before it', async () => {
      const { outbox, statements, service } = counted();
      await outbox.add([1, 2, 3, 4, 5].map((n) => delivery(n)));
      const records = await outbox.claim('payments', Date.now(), 10);
      statements.length = 0;
      // As a lane settles requests of one event each, one after another.
      for (const record of records) await outbox.settleMany([{ kind: 'complete', record }]);
      expect(statements).toEqual([]); // not written yet: the lane goes on at once
      await outbox.flushSettles();
      expect(statements.filter(groupDelete)).toHaveLength(1);
      expect(await rows(service)).toEqual([]);
    });

    it('the reads that would see delivered rows write the group first: stats, pendingRecords, targets', async () => {
      const { outbox, statements } = counted();
      await outbox.add([delivery(1), delivery(2), delivery(3, 'orders')]);
      const [r1] = await outbox.claim('payments', Date.now(), 1);
      const [r3] = await outbox.claim('orders', Date.now(), 1);
      await outbox.settleMany([{ kind: 'complete', record: r1! }]);
      await outbox.settleMany([{ kind: 'complete', record: r3! }]);
      expect(await outbox.stats()).toMatchObject({ pending: 1, targets: { payments: { pending: 1 } } });
      expect(ids(await outbox.pendingRecords())).toEqual(['evt-2']);
      expect(await outbox.targets()).toEqual(['payments']);
      expect(statements.filter(groupDelete)).toHaveLength(1);
    });

    it('close() writes the pending group: nothing delivered is left, nothing is left leased', async () => {
      const { outbox, service } = counted();
      await outbox.add([delivery(1), delivery(2), delivery(3)]);
      const [r1, r2] = await outbox.claim('payments', Date.now(), 2);
      await outbox.settleMany([{ kind: 'complete', record: r1! }]);
      await outbox.settleMany([{ kind: 'complete', record: r2! }]);
      await outbox.close();
      expect(await rows(service)).toEqual([{ event_id: 'evt-3', lease_owner: null }]);
    });

    it('a DELETE that fails while the database cannot be reached is tried again: the rows stay leased here meanwhile, then go; said once', async () => {
      let failing = true;
      const capture = createCapturingLogger('warn');
      const { outbox, statements, service } = counted((text) => failing && groupDelete(text), { logger: capture.logger });
      const other = open({ sendsOwnEmits: true }, service);
      closing.push(other);
      await outbox.add([delivery(1), delivery(2)]);
      for (const record of await outbox.claim('payments', Date.now(), 2)) await outbox.settleMany([{ kind: 'complete', record }]);
      await waitFor(() => statements.filter(groupDelete).length >= 3, { what: 'the DELETE tried again' });
      expect(await rows(service)).toEqual([
        { event_id: 'evt-1', lease_owner: outbox.owner },
        { event_id: 'evt-2', lease_owner: outbox.owner },
      ]);
      expect(await other.claim('payments', Date.now(), 10)).toEqual([]); // no other instance delivers them again
      expect(capture.records.filter((r) => r.level === 'warn')).toEqual([
        expect.objectContaining({ message: expect.stringContaining('retrying, they stay leased to this instance'), deliveries: 2 }),
      ]);
      failing = false;
      await waitFor(async () => (await rows(service)).length === 0, { what: 'the rows deleted' });
    });

    it('a DELETE the server refuses leaves the rows to their lease: delivered again, never lost', async () => {
      const refused = () => Object.assign(new Error('permission denied for table events_outbox'), { severity: 'ERROR', code: '42501' });
      const { pool: counting, statements } = countingPool(groupDelete, refused);
      pools.push(counting);
      const service = `svc${++services}`;
      const outbox = new PostgresOutbox(counting, { service, schema, leaseMs: 300, sendsOwnEmits: true });
      closing.push(outbox);
      const other = open({}, service);
      closing.push(other);
      await outbox.add([delivery(1)]);
      const [record] = await outbox.claim('payments', Date.now(), 1);
      await outbox.settleMany([{ kind: 'complete', record: record! }]);
      await outbox.flushSettles();
      expect(statements.filter(groupDelete)).toHaveLength(1); // not retried
      const again = await waitFor(async () => (await other.claim('payments', Date.now(), 10))[0], { what: 'the lease run out' });
      expect(again).toMatchObject({ eventId: 'evt-1' });
    });

    it('a mixed settle takes the pending deliveries along in its one statement', async () => {
      const { outbox, statements, service } = counted();
      await outbox.add([delivery(1), delivery(2), delivery(3)]);
      const [r1, r2, r3] = await outbox.claim('payments', Date.now(), 3);
      await outbox.settleMany([{ kind: 'complete', record: r1! }]);
      statements.length = 0;
      await outbox.settleMany([
        { kind: 'complete', record: r2! },
        { kind: 'reschedule', record: tried(r3!, Date.now()), nextAttemptAt: T + 60_000 },
      ]);
      expect(statements).toHaveLength(1);
      expect(await rows(service)).toEqual([{ event_id: 'evt-3', lease_owner: null }]);
      await outbox.flushSettles();
      expect(statements).toHaveLength(1); // no group was left to write
    });

    it('delivered rows waiting for their DELETE do not hold the target: its cap counts them out, a probe sees them gone', async () => {
      const { outbox } = counted(undefined, { concurrency: 2, eventsPerRequest: () => 1, sendsOwnEmits: false });
      await outbox.add([1, 2, 3, 4, 5].map((n) => delivery(n)));
      const first = await outbox.claim('payments', Date.now(), 10);
      expect(ids(first)).toEqual(['evt-1', 'evt-2']);
      for (const record of first) await outbox.settleMany([{ kind: 'complete', record }]);
      const second = await outbox.claim('payments', Date.now(), 10);
      expect(ids(second)).toEqual(['evt-3', 'evt-4']);
      await outbox.settleMany([{ kind: 'reschedule', record: tried(second[1]!, Date.now()), nextAttemptAt: T + 60_000 }]);
      await outbox.settleMany([{ kind: 'complete', record: second[0]! }]);
      // A probe's cap is one, whatever is delivered: the delivered rows are deleted first.
      expect(await outbox.claimProbe('payments')).toMatchObject({ eventId: 'evt-5' });
    });
  });
});
