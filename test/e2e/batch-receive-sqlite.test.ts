import Database from 'better-sqlite3';
import { Catalog } from '../../src/catalog.js';
import { NonRetryableError } from '../../src/index.js';
import { eventKey, type InboxMark, type InboxStore } from '../../src/receive/inbox-store.js';
import { SqliteInbox } from '../../src/backends/sqlite/inbox.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { startReceiverServer } from '../helpers/receiver-server.js';
import { resultsOf, signedBatch } from '../helpers/signed-batch.js';
import { newSecret, signedStructured, structuredEvent } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';

const cleanups = cleanupAfterEach();

/** The real SQLite inbox, counting the calls the receiver makes on it. */
class CountingInbox extends SqliteInbox {
  readonly calls = { completed: 0, completedMany: 0, markHandler: 0, markDone: 0, markMany: 0 };
  /** While set, markMany fails as SQLite does on a full disk, before writing anything. */
  failWrites = false;

  override completed(key: string): ReturnType<SqliteInbox['completed']> {
    this.calls.completed += 1;
    return super.completed(key);
  }
  override completedMany(keys: readonly string[]): ReturnType<SqliteInbox['completedMany']> {
    this.calls.completedMany += 1;
    return super.completedMany(keys);
  }
  override markHandler(key: string, handler: string): Promise<void> {
    this.calls.markHandler += 1;
    return super.markHandler(key, handler);
  }
  override markDone(key: string): Promise<void> {
    this.calls.markDone += 1;
    return super.markDone(key);
  }
  override async markMany(marks: readonly InboxMark[]): Promise<void> {
    this.calls.markMany += 1;
    if (this.failWrites) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    await super.markMany(marks);
  }
}

/** An inbox written before the batch methods existed: the real SQLite store, seen through the required methods only. */
function withoutBatchMethods(inner: SqliteInbox): InboxStore {
  return {
    durable: true,
    completed: (key) => inner.completed(key),
    markHandler: (key, handler) => inner.markHandler(key, handler),
    markDone: (key) => inner.markDone(key),
    forgetsBefore: () => inner.forgetsBefore(),
    close: () => inner.close(),
  };
}

/** A receiver on a real SQLite inbox file behind a real node:http server; `runs` counts handler runs per event id. */
async function setup(path: string, options: { batchMethods?: boolean } = {}) {
  const inbox = new CountingInbox(path, 60_000);
  cleanups.push(() => inbox.close());
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
  const server = await startReceiverServer({ catalog, inbox: options.batchMethods === false ? withoutBatchMethods(inbox) : inbox, logger: log.logger, secret });
  cleanups.push(() => server.close());
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

describe('a batch on the durable SQLite inbox', () => {
  test('one read and one write per request: every completion is on disk when the answer arrives', async () => {
    const dir = tempDir('batch-sqlite');
    cleanups.push(() => dir.remove());
    const f = await setup(dir.file('inbox.db'));
    const events = [paid(), paid(), paid(), paid()];

    const res = await request(f.url, signedBatch(f.secret, events));

    expect(res.status).toBe(200);
    expect(resultsOf(res.json).map((r) => r.receipt)).toEqual(['delivered', 'delivered', 'delivered', 'delivered']);
    expect(f.inbox.calls).toEqual({ completed: 0, completedMany: 1, markHandler: 0, markDone: 0, markMany: 1 });
    for (const event of events) expect(rowsOf(dir.file('inbox.db'), event.id)).toEqual(['*', 'email', 'ledger']);
  });

  test('a single request reads and writes the inbox once too', async () => {
    const dir = tempDir('batch-sqlite');
    cleanups.push(() => dir.remove());
    const f = await setup(dir.file('inbox.db'));
    const event = paid();
    expect((await request(f.url, signedStructured(f.secret, event))).status).toBe(200);
    expect(f.inbox.calls).toEqual({ completed: 0, completedMany: 1, markHandler: 0, markDone: 0, markMany: 1 });
    expect(rowsOf(dir.file('inbox.db'), event.id)).toEqual(['*', 'email', 'ledger']);
  });

  test('mixed outcomes: the delivered are recorded, the refused and failed are not; a resend runs only the failed again', async () => {
    const dir = tempDir('batch-sqlite');
    cleanups.push(() => dir.remove());
    const f = await setup(dir.file('inbox.db'));
    const ok = paid();
    const voided = structuredEvent('invoice-void', {}, { source: 'orders' });
    const late = structuredEvent('invoice-late', { fail: true }, { source: 'orders' });

    const first = await request(f.url, signedBatch(f.secret, [ok, voided, late]));
    expect(first.status).toBe(500);
    expect(resultsOf(first.json).map((r) => [r.status, r.receipt ?? r.error])).toEqual([
      [200, 'delivered'],
      [422, 'rejected_by_handler'],
      [500, 'handler_failed'],
    ]);
    expect(rowsOf(dir.file('inbox.db'), ok.id)).toEqual(['*', 'email', 'ledger']);
    expect(rowsOf(dir.file('inbox.db'), voided.id)).toEqual([]);
    expect(rowsOf(dir.file('inbox.db'), late.id)).toEqual([]);

    const fixed = { ...late, data: { fail: false } };
    const again = await request(f.url, signedBatch(f.secret, [ok, fixed]));
    expect(again.status).toBe(200);
    expect(resultsOf(again.json)).toEqual([
      { id: ok.id, status: 200, receipt: 'duplicate' },
      { id: late.id, status: 200, receipt: 'delivered' },
    ]);
    expect(f.runs.get(String(ok.id))).toBe(1);
    expect(f.runs.get(String(late.id))).toBe(2);
  });

  test('after a restart on the same file, a resent batch is all duplicates and runs nothing', async () => {
    const dir = tempDir('batch-sqlite');
    cleanups.push(() => dir.remove());
    const events = [paid(), paid()];
    const before = await setup(dir.file('inbox.db'));
    expect((await request(before.url, signedBatch(before.secret, events))).status).toBe(200);
    await before.inbox.close();

    const after = await setup(dir.file('inbox.db'));
    const res = await request(after.url, signedBatch(after.secret, [...events, events[0]!]));
    expect(res.status).toBe(200);
    expect(resultsOf(res.json).map((r) => r.receipt)).toEqual(['duplicate', 'duplicate', 'duplicate']);
    expect(after.runs.size).toBe(0);
  });

  test('the write failing: every event of the batch asks for a retry (503 + Retry-After), and the resend records them without running any handler again', async () => {
    const dir = tempDir('batch-sqlite');
    cleanups.push(() => dir.remove());
    const f = await setup(dir.file('inbox.db'));
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
    for (const event of events) expect(rowsOf(dir.file('inbox.db'), event.id)).toEqual(['*', 'email', 'ledger']);
  });

  test('a store without the batch methods still serves a batch, one mark at a time', async () => {
    const dir = tempDir('batch-sqlite');
    cleanups.push(() => dir.remove());
    const f = await setup(dir.file('inbox.db'), { batchMethods: false });
    const events = [paid(), paid()];
    const res = await request(f.url, signedBatch(f.secret, [...events, events[0]!]));
    expect(resultsOf(res.json).map((r) => r.receipt)).toEqual(['delivered', 'delivered', 'duplicate']);
    expect(f.inbox.calls).toEqual({ completed: 2, completedMany: 0, markHandler: 4, markDone: 2, markMany: 0 });
    for (const event of events) expect(rowsOf(dir.file('inbox.db'), event.id)).toEqual(['*', 'email', 'ledger']);
  });
});
