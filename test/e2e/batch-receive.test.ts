// Receiving CloudEvents batches: the answer table on each adapter (node:http, Express, Koa), then
// what a batch does to the inbox, parametrised by store (memory, SQLite, PostgreSQL), then what is
// specific to one store (SQLite: one read and one write per request, a failing write; PostgreSQL:
// handlers writing through { tx }).
import Database from 'better-sqlite3';
import type { Pool } from 'pg';
import { Catalog } from '../../src/catalog.js';
import { createEventBus, type EventBus, type EventBusOptions, NonRetryableError, RetryLaterError } from '../../src/index.js';
import { eventKey, type InboxMark } from '../../src/receive/inbox-store.js';
import { SqliteInbox } from '../../src/backends/sqlite/inbox.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { createTestSchema, describePostgres, PG_URL, postgresRequiredOrAnswers } from '../helpers/postgres.js';
import { mount } from '../helpers/mounts.js';
import { startReceiverServer } from '../helpers/receiver-server.js';
import { startServer } from '../helpers/server.js';
import { gate } from '../helpers/wait.js';
import { resultsOf, signedBatch, signedBatchBody } from '../helpers/signed-batch.js';
import { newSecret, signedStructured, structuredEvent } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';

const UserCreated = {
  type: 'object',
  properties: { user_id: { type: 'string' } },
  required: ['user_id'],
  additionalProperties: false,
} as const;

describe.each(['node:http', 'express', 'koa'])('receiving a CloudEvents batch (%s)', (kind) => {
  const cleanups = cleanupAfterEach();

  async function setup(): Promise<{ bus: EventBus; url: string; secret: string; calls: Map<string, number> }> {
    const secret = newSecret();
    const bus = createEventBus({ service: 'payments', secret, logger: createCapturingLogger('warn').logger, env: {} });
    cleanups.push(() => bus.close());
    const calls = new Map<string, number>();
    const count = (id: string) => calls.set(id, (calls.get(id) ?? 0) + 1);
    bus.subscribeTo('user-created', (_data, event) => void count(event.id), { schema: UserCreated });
    bus.subscribeTo('refused', (_data, event) => {
      count(event.id);
      throw new NonRetryableError('this account is closed');
    });
    bus.subscribeTo('fails', (_data, event) => {
      count(event.id);
      throw new Error('database is down');
    });
    bus.subscribeTo('later', (_data, event) => {
      count(event.id);
      throw new RetryLaterError(7, 'rate limited');
    });
    // `first` completes only once `second` (later in the batch) has started: events one after the other never would.
    const secondStarted = gate();
    bus.subscribeTo('first', async (_data, event) => {
      count(event.id);
      let timer: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error('the second event of the batch never started while the first ran')), 3_000);
      });
      await Promise.race([secondStarted.wait(), stalled]).finally(() => clearTimeout(timer));
    });
    bus.subscribeTo('second', (_data, event) => {
      count(event.id);
      secondStarted.open();
    });
    const server = await mount(kind).start(bus);
    cleanups.push(() => server.close());
    return { bus, url: server.url, secret, calls };
  }

  const user = (overrides: Record<string, unknown> = {}) => structuredEvent('user-created', { user_id: 'u_1' }, overrides);

  test('mixed outcomes: one result per event in order, status always the number, the worst status and the longest Retry-After on the response', async () => {
    const { url, secret, calls } = await setup();
    const events = [
      user(),
      structuredEvent('user-created', { user_id: 5 }),
      structuredEvent('nobody-listens', {}),
      structuredEvent('refused', {}),
      structuredEvent('fails', {}),
      structuredEvent('later', {}),
      user(),
    ];
    const res = await request(url, signedBatch(secret, events));

    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('7');
    const results = resultsOf(res.json);
    expect(results.map((r) => r.id)).toEqual(events.map((e) => e.id));
    expect(results.map((r) => r.status)).toEqual([200, 400, 404, 422, 500, 503, 200]);
    expect(results[0]).toEqual({ id: events[0]!.id, status: 200, receipt: 'delivered' });
    expect(results[1]).toMatchObject({ status: 400, error: 'invalid_data' });
    expect(results[2]).toMatchObject({ status: 404, error: 'no_subscriber' });
    expect(results[3]).toEqual({ id: events[3]!.id, status: 422, error: 'rejected_by_handler', message: 'this account is closed' });
    expect(results[4]).toMatchObject({ status: 500, error: 'handler_failed' });
    expect(results[5]).toMatchObject({ status: 503, error: 'retry_later', retryAfter: 7 });
    expect(results[6]).toEqual({ id: events[6]!.id, status: 200, receipt: 'delivered' });
    // The handlers that were reached ran once each; the invalid and unrouted events reached none.
    expect([...calls.keys()].sort()).toEqual([events[0], events[3], events[4], events[5], events[6]].map((e) => e!.id).sort());
    expect([...calls.values()].every((n) => n === 1)).toBe(true);
  });

  test('all delivered: 200, a delivered receipt per event, no Retry-After', async () => {
    const { url, secret, calls } = await setup();
    const events = [user(), user(), user()];
    const res = await request(url, signedBatch(secret, events));
    expect(res.status).toBe(200);
    expect(res.headers['retry-after']).toBeUndefined();
    expect(resultsOf(res.json)).toEqual(events.map((e) => ({ id: e.id, status: 200, receipt: 'delivered' })));
    expect(calls.size).toBe(3);
  });

  test('the events of a batch run at once, not one after the other', async () => {
    const { url, secret } = await setup();
    const res = await request(url, signedBatch(secret, [structuredEvent('first', {}), structuredEvent('second', {})]));
    expect(resultsOf(res.json).map((r) => [r.status, r.receipt ?? r.message])).toEqual([
      [200, 'delivered'],
      [200, 'delivered'],
    ]);
  });

  test('the same id twice in one batch runs the handler once: the second is a duplicate', async () => {
    const { url, secret, calls } = await setup();
    const event = user();
    const res = await request(url, signedBatch(secret, [event, user(), event]));
    expect(res.status).toBe(200);
    const results = resultsOf(res.json);
    expect(results.map((r) => r.receipt)).toEqual(['delivered', 'delivered', 'duplicate']);
    expect(results[2]).toEqual({ id: event.id, status: 200, receipt: 'duplicate' });
    expect(calls.get(String(event.id))).toBe(1);
  });

  test('the same failing id twice in one batch runs the handler once, and both items carry its failure', async () => {
    const { url, secret, calls } = await setup();
    const event = structuredEvent('fails', {});
    const res = await request(url, signedBatch(secret, [event, event]));
    expect(res.status).toBe(500);
    expect(resultsOf(res.json).map((r) => [r.status, r.error])).toEqual([
      [500, 'handler_failed'],
      [500, 'handler_failed'],
    ]);
    expect(calls.get(String(event.id))).toBe(1);
  });

  test('an id already processed (by a single request) comes back in a batch as a duplicate receipt', async () => {
    const { url, secret, calls } = await setup();
    const seen = user();
    expect((await request(url, signedStructured(secret, seen))).status).toBe(200);
    const fresh = user();
    const res = await request(url, signedBatch(secret, [seen, fresh]));
    expect(res.status).toBe(200);
    expect(resultsOf(res.json)).toEqual([
      { id: seen.id, status: 200, receipt: 'duplicate' },
      { id: fresh.id, status: 200, receipt: 'delivered' },
    ]);
    expect(calls.get(String(seen.id))).toBe(1);
  });

  test('a malformed item is refused alone (400, with its id when it had one) while the others are delivered', async () => {
    const { url, secret, calls } = await setup();
    const good = user();
    const noType = { specversion: '1.0', id: 'no-type-1', source: 'users', data: {} };
    const res = await request(url, signedBatch(secret, [good, noType, 42]));
    expect(res.status).toBe(400);
    const results = resultsOf(res.json);
    expect(results[0]).toEqual({ id: good.id, status: 200, receipt: 'delivered' });
    expect(results[1]).toMatchObject({ id: 'no-type-1', status: 400, error: 'malformed_event' });
    expect(results[1]!.message).toContain('"type"');
    expect(results[2]).toMatchObject({ status: 400, error: 'malformed_event' });
    expect(results[2]!.id).toBeUndefined();
    expect(calls.size).toBe(1);
  });

  test('request-level refusals answer as for a single event, without results', async () => {
    const { url, secret, calls } = await setup();
    const forged = signedBatch(secret, [user()]);
    const [notArray, badSignature] = await Promise.all([
      request(url, signedBatchBody(secret, JSON.stringify(user()))),
      request(url, { ...forged, body: forged.body.replace('u_1', 'u_2') }),
    ]);
    expect(notArray.status).toBe(400);
    expect(notArray.json).toEqual({ error: 'malformed_event', message: 'a batch body must be a JSON array of CloudEvents' });
    expect(badSignature.status).toBe(401);
    expect((badSignature.json as Record<string, unknown>).results).toBeUndefined();
    expect(calls.size).toBe(0);
  });
});

const storeCleanups = cleanupAfterEach();

type Store = 'memory' | 'sqlite' | 'postgres';
const STORES: Store[] = ['memory', 'sqlite', ...(postgresRequiredOrAnswers() ? (['postgres'] as const) : [])];

describe.each(STORES)('a batch on the %s inbox', (store) => {
  const secret = newSecret();
  const dir = tempDir('batch-store');
  let db: { schema: string; drop(): Promise<void> } | undefined;
  beforeAll(async () => {
    if (store === 'postgres') db = await createTestSchema('batch_store');
  });
  afterAll(async () => {
    dir.remove();
    await db?.drop();
  });
  let services = 0;
  beforeEach(() => {
    services += 1;
  });
  /** `it`, or skipped with the reason when the store does not have what the test needs. */
  const itIf = (has: boolean, reason: string) => (has ? it : (title: string, fn: () => Promise<void>) => it.skip(`${title} [skipped: ${reason}]`, fn));

  /**
   * An instance of this test's receiving service on the store, behind a real node:http server;
   * `runs` (shared by the instances of one test) counts handler runs per event id.
   */
  async function instance(runs: Map<string, number>): Promise<{ bus: EventBus; url: string }> {
    const service = `payments-${services}`;
    const storeOptions: Partial<EventBusOptions> =
      store === 'sqlite' ? { inbox: { path: dir.file(`${service}.db`) } } : store === 'postgres' ? { database: PG_URL, databaseSchema: db!.schema } : {};
    const bus = createEventBus({ service, secret, logger: createCapturingLogger('warn').logger, env: {}, ...storeOptions });
    storeCleanups.push(() => bus.close());
    const count = (id: string) => runs.set(id, (runs.get(id) ?? 0) + 1);
    bus.subscribeTo('invoice-paid', (_data, event) => void count(event.id));
    bus.subscribeTo('invoice-void', (_data, event) => {
      count(event.id);
      throw new NonRetryableError('already voided');
    });
    bus.subscribeTo('invoice-late', (data, event) => {
      count(event.id);
      if ((data as { fail?: boolean }).fail) throw new Error('ledger locked');
    });
    const server = await startServer(bus.nodeHandler());
    storeCleanups.push(() => server.close());
    return { bus, url: server.url };
  }

  const paid = () => structuredEvent('invoice-paid', { invoice: 'inv' }, { source: 'orders' });

  it('mixed outcomes: the delivered are recorded, the refused and failed are not; a resend runs only what was not recorded', async () => {
    const runs = new Map<string, number>();
    const { url } = await instance(runs);
    const ok = paid();
    const repeated = paid();
    const voided = structuredEvent('invoice-void', {}, { source: 'orders' });
    const late = structuredEvent('invoice-late', { fail: true }, { source: 'orders' });

    const first = await request(url, signedBatch(secret, [ok, voided, late, repeated, repeated]));
    expect(first.status).toBe(500);
    expect(resultsOf(first.json).map((r) => [r.id, r.status, r.receipt ?? r.error])).toEqual([
      [ok.id, 200, 'delivered'],
      [voided.id, 422, 'rejected_by_handler'],
      [late.id, 500, 'handler_failed'],
      [repeated.id, 200, 'delivered'],
      [repeated.id, 200, 'duplicate'],
    ]);

    const fixed = { ...late, data: { fail: false } };
    const again = await request(url, signedBatch(secret, [ok, voided, fixed, repeated]));
    expect(resultsOf(again.json).map((r) => [r.id, r.status, r.receipt ?? r.error])).toEqual([
      [ok.id, 200, 'duplicate'],
      [voided.id, 422, 'rejected_by_handler'],
      [late.id, 200, 'delivered'],
      [repeated.id, 200, 'duplicate'],
    ]);
    expect([ok, voided, late, repeated].map((e) => runs.get(String(e.id)))).toEqual([1, 2, 2, 1]);
  });

  itIf(store !== 'memory', 'the memory inbox does not outlive its process')(
    'after a restart on the same store, a resent batch is all duplicates and runs nothing',
    async () => {
      const events = [paid(), paid()];
      const before = await instance(new Map());
      expect((await request(before.url, signedBatch(secret, events))).status).toBe(200);
      await before.bus.close();

      const runs = new Map<string, number>();
      const after = await instance(runs);
      const res = await request(after.url, signedBatch(secret, [...events, events[0]!]));
      expect(res.status).toBe(200);
      expect(resultsOf(res.json).map((r) => r.receipt)).toEqual(['duplicate', 'duplicate', 'duplicate']);
      expect(runs.size).toBe(0);
    },
  );

  itIf(store !== 'memory', 'instances do not share a memory inbox')(
    'an id processed by a single request, then by another instance, comes back in a batch as a duplicate',
    async () => {
      const runs = new Map<string, number>();
      const one = await instance(runs);
      const other = await instance(runs);
      const seen = paid();
      expect((await request(one.url, signedStructured(secret, seen))).status).toBe(200);
      const fresh = paid();
      const res = await request(other.url, signedBatch(secret, [fresh, seen]));
      expect(res.status).toBe(200);
      expect(resultsOf(res.json)).toEqual([
        { id: fresh.id, status: 200, receipt: 'delivered' },
        { id: seen.id, status: 200, receipt: 'duplicate' },
      ]);
      expect(runs.get(String(seen.id))).toBe(1);
    },
  );
});

/** The real SQLite inbox, counting the calls the receiver makes on it. */
class CountingInbox extends SqliteInbox {
  readonly calls = { completed: 0, mark: 0 };
  /** While set, mark fails as SQLite does on a full disk, before writing anything. */
  failWrites = false;

  override completed(keys: readonly string[]): ReturnType<SqliteInbox['completed']> {
    this.calls.completed += 1;
    return super.completed(keys);
  }
  override async mark(marks: readonly InboxMark[]): Promise<void> {
    this.calls.mark += 1;
    if (this.failWrites) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    await super.mark(marks);
  }
}

/** A receiver on a real SQLite inbox file behind a real node:http server; `runs` counts handler runs per event id. */
async function setupCounting(path: string) {
  const inbox = new CountingInbox(path, 60_000);
  storeCleanups.push(() => inbox.close());
  const secret = newSecret();
  const log = createCapturingLogger('warn');
  const runs = new Map<string, number>();
  const count = (id: string) => runs.set(id, (runs.get(id) ?? 0) + 1);
  const catalog = new Catalog();
  catalog.subscribe('invoice-paid', (_data, event) => void count(event.id), undefined, 'ledger');
  catalog.subscribe('invoice-paid', (_data, event) => void count(`${event.id}/email`), undefined, 'email');
  catalog.subscribe('invoice-void', (_data, event) => {
    count(event.id);
    throw new NonRetryableError('already voided');
  }, undefined, 'void');
  catalog.subscribe('invoice-late', (data, event) => {
    count(event.id);
    if ((data as { fail?: boolean }).fail) throw new Error('ledger locked');
  }, undefined, 'late');
  const server = await startReceiverServer({ catalog, inbox, logger: log.logger, secret });
  storeCleanups.push(() => server.close());
  return { inbox, secret, runs, url: server.url };
}

/** The inbox rows of `id` (source `orders`), read from the file itself. */
function rowsOf(path: string, id: unknown): string[] {
  const db = new Database(path, { readonly: true });
  try {
    const rows = db.prepare('SELECT handler FROM inbox WHERE event_key = ?').all(eventKey('orders', String(id))) as { handler: string }[];
    return rows.map((r) => r.handler).sort();
  } finally {
    db.close();
  }
}

const paid = (data: unknown = { invoice: 'inv' }) => structuredEvent('invoice-paid', data, { source: 'orders' });

describe('a batch on the SQLite inbox: one read and one write per request', () => {
  test('one read and one write per request: every completion is on disk when the answer arrives', async () => {
    const dir = tempDir('batch-sqlite');
    storeCleanups.push(() => dir.remove());
    const f = await setupCounting(dir.file('inbox.db'));
    const events = [paid(), paid(), paid(), paid()];

    const res = await request(f.url, signedBatch(f.secret, events));

    expect(res.status).toBe(200);
    expect(resultsOf(res.json).map((r) => r.receipt)).toEqual(['delivered', 'delivered', 'delivered', 'delivered']);
    expect(f.inbox.calls).toEqual({ completed: 1, mark: 1 });
    // `*` alone: it says both handlers completed (their own rows, in the same group, are skipped).
    for (const event of events) expect(rowsOf(dir.file('inbox.db'), event.id)).toEqual(['*']);
  });

  test('a single request reads and writes the inbox once too', async () => {
    const dir = tempDir('batch-sqlite');
    storeCleanups.push(() => dir.remove());
    const f = await setupCounting(dir.file('inbox.db'));
    const event = paid();
    expect((await request(f.url, signedStructured(f.secret, event))).status).toBe(200);
    expect(f.inbox.calls).toEqual({ completed: 1, mark: 1 });
    expect(rowsOf(dir.file('inbox.db'), event.id)).toEqual(['*']);
  });

  test('the write failing: every event of the batch asks for a retry (503 + Retry-After), and the resend records them without running any handler again', async () => {
    const dir = tempDir('batch-sqlite');
    storeCleanups.push(() => dir.remove());
    const f = await setupCounting(dir.file('inbox.db'));
    const events = [paid(), paid()];
    f.inbox.failWrites = true;

    const first = await request(f.url, signedBatch(f.secret, events));
    expect(first.status).toBe(503);
    expect(first.headers['retry-after']).toBe('7');
    expect(resultsOf(first.json)).toEqual(
      events.map((e) => ({
        id: e.id,
        status: 503,
        error: 'inbox_unavailable',
        message: 'this service cannot record events right now; retry later',
        retryAfter: 7,
      })),
    );
    expect(rowsOf(dir.file('inbox.db'), events[0]!.id)).toEqual([]);

    f.inbox.failWrites = false;
    const again = await request(f.url, signedBatch(f.secret, events));
    expect(resultsOf(again.json).map((r) => r.receipt)).toEqual(['delivered', 'delivered']);
    expect([...f.runs.values()]).toEqual([1, 1, 1, 1]);
    for (const event of events) expect(rowsOf(dir.file('inbox.db'), event.id)).toEqual(['*']);
  });
});

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

});
