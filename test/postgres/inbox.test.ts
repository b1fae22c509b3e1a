import { Pool } from 'pg';
import { createEventBus, type EventBus, type ReceiverResponse } from '../../src/index.js';
import type { TransactionClient } from '../../src/types.js';
import { eventKey } from '../../src/receive/inbox-store.js';
import { PostgresInbox } from '../../src/backends/postgres/inbox.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { createTestSchema, describePostgres, PG_URL } from '../helpers/postgres.js';
import { newSecret, type SignedRequest, signedRequest, signedStructured, structuredEvent, webhookHeaders } from '../helpers/signing.js';
import { inboxStoreContract, markDone, stateOf } from '../helpers/inbox-contract.js';
import { gate } from '../helpers/wait.js';

const TYPE = 'payment.made';

describePostgres('PostgreSQL inbox: exactly-once handler effects', () => {
  let db: { schema: string; pool: Pool; drop(): Promise<void> };
  const secret = newSecret();
  const cleanups = cleanupAfterEach();

  beforeAll(async () => {
    db = await createTestSchema('inbox_test');
    await db.pool.query(`CREATE TABLE "${db.schema}".effects (event_id text NOT NULL, handler text NOT NULL)`);
  });
  afterAll(async () => {
    await db.drop();
  });

  function bus(service = 'payments', logger = createCapturingLogger().logger): EventBus {
    const created = createEventBus({ service, secret, database: PG_URL, databaseSchema: db.schema, logger });
    cleanups.push(() => created.close());
    return created;
  }

  const deliver = (target: EventBus, request: SignedRequest): Promise<ReceiverResponse> =>
    target.handle({ headers: request.headers, body: Buffer.from(request.body) });

  const effects = async (eventId: string, handler?: string): Promise<number> => {
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM "${db.schema}".effects WHERE event_id = $1 AND ($2::text IS NULL OR handler = $2)`,
      [eventId, handler ?? null],
    );
    return Number(rows[0]!.n);
  };
  const inboxRows = async (eventId: string): Promise<string[]> => {
    const { rows } = await db.pool.query<{ service: string; handler: string }>(
      `SELECT service, handler FROM "${db.schema}".events_inbox WHERE event_id = $1 ORDER BY service, handler`,
      [eventId],
    );
    return rows.map((r) => `${r.service}:${r.handler}`);
  };
  const effectSql = () => `INSERT INTO "${db.schema}".effects (event_id, handler) VALUES ($1, $2)`;

  describe('the inbox store contract (every store keeps it)', () => {
    let services = 0;
    inboxStoreContract(
      () => new PostgresInbox({ database: PG_URL, service: `contract-${++services}`, schema: db.schema, retentionMs: 7 * 24 * 3_600_000, logger: createCapturingLogger().logger }),
    );
  });

  test('a handler writing through tx: its write and its completion commit together, and a redelivery is a duplicate', async () => {
    const payments = bus();
    payments.subscribeTo(TYPE, async (_data, event, { tx }) => {
      await tx!.query(effectSql(), [event.id, 'record']);
    }, { name: 'record' });
    const request = signedRequest(secret, 'users', TYPE, { amount: 5 });

    expect((await deliver(payments, request)).status).toBe(200);
    expect(await effects(request.id)).toBe(1);
    expect(await inboxRows(request.id)).toEqual(['payments:*', 'payments:record']);

    const again = await deliver(payments, request);
    expect(again.body).toMatchObject({ status: 'duplicate' });
    expect(await effects(request.id)).toBe(1);
  });

  test("a handler's transaction begins with its claim, in one round trip: BEGIN with the claim, then COMMIT", async () => {
    const pool = new Pool({ connectionString: PG_URL, max: 4 });
    cleanups.push(() => pool.end());
    const sent: string[] = [];
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (statement: string | { text: string }, ...rest: unknown[]) => {
        sent.push(typeof statement === 'string' ? statement : statement.text);
        return query(statement, ...rest);
      };
    });
    const payments = createEventBus({ service: 'payments', secret, database: pool, databaseSchema: db.schema, logger: createCapturingLogger().logger });
    cleanups.push(() => payments.close());
    payments.subscribeTo(TYPE, async (_data, event, { tx }) => {
      await tx!.query(effectSql(), [event.id, 'one-trip']);
    }, { name: 'one-trip' });
    await payments.start();
    const request = signedRequest(secret, 'users', TYPE, { amount: 3 });
    sent.length = 0;

    expect((await deliver(payments, request)).status).toBe(200);
    const transaction = sent.filter((text) => /^(BEGIN|COMMIT|ROLLBACK)/.test(text) || text.includes('effects'));
    expect(transaction).toHaveLength(3);
    expect(transaction[0]).toMatch(/^BEGIN;\s*INSERT INTO \S+\.events_inbox/);
    expect(transaction[1]).toContain('effects');
    expect(transaction[2]).toBe('COMMIT');
    expect(await inboxRows(request.id)).toEqual(['payments:*', 'payments:one-trip']);
  });

  test('an event whose source and id hold quotes, backslashes and SQL is claimed as written, and is a duplicate the second time', async () => {
    const payments = bus();
    payments.subscribeTo(TYPE, async (_data, event, { tx }) => {
      await tx!.query(effectSql(), [event.id, 'odd']);
    }, { name: 'odd' });
    const id = `o'brien\\'); DROP TABLE "${db.schema}".effects; -- \u00e9\\`;
    const request = signedStructured(secret, structuredEvent(TYPE, { amount: 9 }, { id, source: "users\\'s $1 $2" }));

    expect((await deliver(payments, request)).status).toBe(200);
    expect(await effects(id)).toBe(1);
    expect(await inboxRows(id)).toEqual(['payments:*', 'payments:odd']);
    const { rows } = await db.pool.query<{ source: string }>(`SELECT DISTINCT source FROM "${db.schema}".events_inbox WHERE event_id = $1`, [id]);
    expect(rows).toEqual([{ source: "users\\'s $1 $2" }]);
    expect((await deliver(payments, request)).body).toMatchObject({ status: 'duplicate' });
    expect(await effects(id)).toBe(1);
  });

  // A lone handler runs without a savepoint: its failure rolls back the whole transaction, claim included.
  test.each([
    ['throws after writing through tx', async () => {
      throw new Error('crashed after writing');
    }],
    ['leaves its transaction aborted (an error caught)', async (tx: TransactionClient) => {
      await tx.query('SELECT 1/0').catch(() => undefined);
    }],
  ])('a handler that %s leaves neither its write nor its completion; the redelivery runs it again', async (_how, fail) => {
    const payments = bus();
    let runs = 0;
    payments.subscribeTo(TYPE, async (_data, event, { tx }) => {
      runs += 1;
      await tx!.query(effectSql(), [event.id, 'flaky']);
      if (runs === 1) await fail(tx!);
    }, { name: 'flaky' });
    const request = signedRequest(secret, 'users', TYPE, { amount: 7 });

    expect((await deliver(payments, request)).status).toBe(500);
    expect(await effects(request.id)).toBe(0);
    expect(await inboxRows(request.id)).toEqual([]);

    expect((await deliver(payments, request)).status).toBe(200);
    expect(runs).toBe(2);
    expect(await effects(request.id)).toBe(1);
  });

  test('two bus instances of one service receiving the same events at the same time run each effect once', async () => {
    const release = gate();
    const instances = [bus(), bus()];
    const started: string[] = [];
    for (const instance of instances) {
      instance.subscribeTo(TYPE, async (_data, event, { tx }) => {
        await tx!.query(effectSql(), [event.id, 'once']);
        started.push(event.id);
        await release.wait(); // hold the claim until both instances are in
      }, { name: 'once' });
    }
    // Fewer events than a bus runs handler transactions at once (its pool's 10 connections but one):
    // every instance's claims are all in before the gate opens.
    const requests = Array.from({ length: 8 }, (_, i) => signedRequest(secret, 'users', TYPE, { i }));
    const answers = Promise.all(requests.flatMap((r) => instances.map((instance) => deliver(instance, r))));
    // Every event is claimed by one instance; the other waits on the row lock.
    await new Promise<void>((resolve) => {
      const check = () => (started.length >= requests.length ? resolve() : setTimeout(check, 10));
      check();
    });
    release.open();
    const statuses = (await answers).map((a) => a.status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    for (const r of requests) expect(await effects(r.id)).toBe(1);
    expect(started).toHaveLength(requests.length);
  });

  test('each handler commits on its own: a retry reruns only the one that failed; a handler ignoring tx is recorded too', async () => {
    const payments = bus();
    let failing = true;
    let plainRuns = 0;
    payments.subscribeTo(TYPE, async (_data, event, { tx }) => {
      await tx!.query(effectSql(), [event.id, 'ledger']);
    }, { name: 'ledger' });
    payments.subscribeTo(TYPE, async (_data, event, { tx }) => {
      await tx!.query(effectSql(), [event.id, 'mailer']);
      if (failing) throw new Error('smtp down');
    }, { name: 'mailer' });
    payments.subscribeTo(TYPE, () => {
      plainRuns += 1; // ignores tx: at-least-once, recorded with the others
    }, { name: 'plain' });
    const request = signedRequest(secret, 'users', TYPE, { amount: 9 });

    expect((await deliver(payments, request)).status).toBe(500);
    expect(await inboxRows(request.id)).toEqual(['payments:ledger', 'payments:plain']);
    failing = false;
    expect((await deliver(payments, request)).status).toBe(200);
    expect(await effects(request.id, 'ledger')).toBe(1);
    expect(await effects(request.id, 'mailer')).toBe(1);
    expect(plainRuns).toBe(1);
  });

  test("a batch's handlers share transactions (at most 16 to a commit), each behind a savepoint from its first query: one that throws (having written or not), or leaves the transaction aborted, rolls back alone", async () => {
    const payments = bus();
    let failing = true;
    payments.subscribeTo(TYPE, async (data, event, { tx }) => {
      const { i } = data as { i: number };
      if (failing && i === 7) throw new Error('refused before writing'); // no savepoint was taken for it
      await tx!.query(`INSERT INTO "${db.schema}".effects (event_id, handler) VALUES ($1, txid_current()::text)`, [event.id]);
      if (failing && i === 3) throw new Error('ledger closed');
      // A statement that fails, its error swallowed: the transaction is left aborted.
      if (failing && i === 5) await tx!.query('SELECT 1/0').catch(() => undefined);
    }, { name: 'ledger' });
    const events = Array.from({ length: 40 }, (_, i) => structuredEvent(TYPE, { i }, { source: 'users' }));
    const body = JSON.stringify(events);
    const request = { body, headers: { 'content-type': 'application/cloudevents-batch+json', ...webhookHeaders(secret, 'batch-1', body) } };

    await deliver(payments, request);
    const ids = events.map((e) => String(e.id));
    const ok = ids.filter((_, i) => ![3, 5, 7].includes(i));
    for (const id of ok) expect(await inboxRows(id)).toEqual(['payments:*', 'payments:ledger']);
    for (const i of [3, 5, 7]) expect(await inboxRows(ids[i]!)).toEqual([]);
    const { rows } = await db.pool.query<{ handler: string; n: string }>(
      `SELECT handler, count(*) AS n FROM "${db.schema}".effects WHERE event_id = ANY($1) GROUP BY handler`,
      [ids],
    );
    expect(rows.reduce((sum, r) => sum + Number(r.n), 0)).toBe(37);
    expect(rows.length).toBeLessThan(37); // fewer commits than handlers
    expect(Math.max(...rows.map((r) => Number(r.n)))).toBeLessThanOrEqual(16);

    failing = false;
    await deliver(payments, { ...request, headers: { ...request.headers, ...webhookHeaders(secret, 'batch-2', body) } });
    for (const id of ids) expect(await effects(id)).toBe(1);
  });

  test('services sharing the database keep their own rows: the same event runs once in each', async () => {
    const payments = bus('payments');
    const orders = bus('orders');
    for (const [instance, name] of [[payments, 'p'], [orders, 'o']] as const) {
      instance.subscribeTo(TYPE, async (_data, event, { tx }) => {
        await tx!.query(effectSql(), [event.id, name]);
      }, { name: 'h' });
    }
    const request = signedRequest(secret, 'users', TYPE, {});
    expect((await deliver(payments, request)).status).toBe(200);
    expect((await deliver(orders, request)).status).toBe(200);
    expect(await effects(request.id, 'p')).toBe(1);
    expect(await effects(request.id, 'o')).toBe(1);
    expect(await inboxRows(request.id)).toEqual(['orders:*', 'orders:h', 'payments:*', 'payments:h']);
  });

  test('while PostgreSQL cannot be reached the receiver answers 503 and runs no handler', async () => {
    const capture = createCapturingLogger();
    const down = createEventBus({ service: 'payments', secret, database: 'postgres://postgres@127.0.0.1:1/test', logger: capture.logger });
    cleanups.push(() => down.close());
    let runs = 0;
    down.subscribeTo(TYPE, () => {
      runs += 1;
    });
    const answer = await deliver(down, signedRequest(secret, 'users', TYPE, {}));
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBeDefined();
    expect(runs).toBe(0);
    expect(capture.withMessage('the inbox transaction failed; no handler ran (the inbox store failed: check its disk, file and locks; the sender will retry)')).toHaveLength(1);
  });

  test("prune deletes this service's ids past retention only; a prune that fails is logged once and never throws", async () => {
    const capture = createCapturingLogger();
    const inbox = new PostgresInbox({ database: PG_URL, service: 'pruned', schema: db.schema, retentionMs: 60_000, logger: capture.logger });
    cleanups.push(() => inbox.close());
    await markDone(inbox, eventKey('users', 'old'));
    await markDone(inbox, eventKey('users', 'young'));
    await db.pool.query(`UPDATE "${db.schema}".events_inbox SET done_at = now() - interval '2 minutes' WHERE event_id IN ('old', 'kept-other-service')`);
    await db.pool.query(
      `INSERT INTO "${db.schema}".events_inbox (service, source, event_id, handler, done_at) VALUES ('other', 'users', 'kept-other-service', '*', now() - interval '2 minutes')`,
    );
    await inbox.prune();
    expect(await stateOf(inbox, eventKey('users', 'old'))).toBeUndefined();
    expect(await stateOf(inbox, eventKey('users', 'young'))).toBe(true);
    expect(await inboxRows('kept-other-service')).toEqual(['other:*']);

    const broken = new PostgresInbox({ database: 'postgres://postgres@127.0.0.1:1/test', service: 'x', schema: db.schema, retentionMs: 1, logger: capture.logger });
    cleanups.push(() => broken.close());
    await expect(broken.prune()).resolves.toBeUndefined();
    await expect(broken.prune()).resolves.toBeUndefined();
    expect(capture.withMessage('inbox prune failed; retrying at the next one')).toHaveLength(1);
  });
});
