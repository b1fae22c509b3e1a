import Database from 'better-sqlite3';
import { MemoryOutbox } from '../../src/backends/memory/outbox.js';
import { SqliteOutbox } from '../../src/backends/sqlite/outbox.js';
import type { NewDelivery, OutboxStore } from '../../src/send/outbox-store.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { kill } from '../helpers/outbox-contract.js';
import { quietLogger } from '../helpers/logger.js';
import { tempDir } from '../helpers/temp-dir.js';

const cleanups = cleanupAfterEach();

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function delivery(eventId: string, trace: Partial<NewDelivery> = {}): NewDelivery {
  return { eventId, type: 't', source: 's', target: 'orders', body: '{}', createdAt: Date.now(), ...trace };
}

function file(): string {
  const dir = tempDir('trace-store');
  cleanups.push(() => dir.remove());
  return dir.file('outbox.db');
}

describe.each<[string, () => OutboxStore]>([
  ['memory', () => new MemoryOutbox(100, 1_000_000, quietLogger())],
  ['SQLite', () => new SqliteOutbox(file())],
])('%s outbox keeps the trace context of a delivery', (_name, make) => {
  it('through claim, dead letter and replay; a delivery without one has none', async () => {
    const store = make();
    cleanups.push(() => store.close());
    await store.add([delivery('a', { traceparent: TRACEPARENT, tracestate: 'vendor=1' }), delivery('b')]);
    const [a, b] = await store.claim('orders', Date.now() + 1, 10);
    expect(a).toMatchObject({ eventId: 'a', traceparent: TRACEPARENT, tracestate: 'vendor=1' });
    expect(b!.traceparent).toBeUndefined();
    expect(b!.tracestate).toBeUndefined();
    await kill(store, a!, 'refused');
    expect((await store.deadLetters())[0]).toMatchObject({ eventId: 'a' });
    await store.replay('all');
    expect((await store.claim('orders', Date.now() + 1, 10))[0]).toMatchObject({ eventId: 'a', traceparent: TRACEPARENT, tracestate: 'vendor=1' });
  });
});

describe('an SQLite outbox made before trace context was stored', () => {
  it('gains the two nullable columns; its old deliveries have no context, new ones keep theirs', async () => {
    const path = file();
    const old = new Database(path);
    old.exec(`CREATE TABLE outbox (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      event_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
      body TEXT NOT NULL, created_at INTEGER NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
      last_attempt_at INTEGER, last_status INTEGER, last_error TEXT,
      leased INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE dead_letters (
      id INTEGER PRIMARY KEY,
      event_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
      body TEXT NOT NULL, created_at INTEGER NOT NULL,
      attempts INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL,
      last_attempt_at INTEGER, last_status INTEGER, last_error TEXT,
      dead_at INTEGER NOT NULL, reason TEXT NOT NULL);`);
    old.prepare(`INSERT INTO outbox (event_id, type, source, target, body, created_at, next_attempt_at) VALUES ('old', 't', 's', 'orders', '{}', ?, ?)`).run(Date.now(), Date.now());
    old.close();

    const store = new SqliteOutbox(path);
    cleanups.push(() => store.close());
    await store.add([delivery('new', { traceparent: TRACEPARENT })]);
    const claimed = await store.claim('orders', Date.now() + 1, 10);
    expect(claimed.map((r) => [r.eventId, r.traceparent])).toEqual([
      ['old', undefined],
      ['new', TRACEPARENT],
    ]);
  });
});
