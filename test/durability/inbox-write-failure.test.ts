// Issue 6 item 9 (second half): "the handler failed" is kept apart from "recording its completion failed".
import Database from 'better-sqlite3';
import { Catalog } from '../../src/catalog.js';
import { eventKey, type InboxMark, type InboxStore } from '../../src/receive/inbox-store.js';
import { SqliteInbox } from '../../src/backends/sqlite/inbox.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { post } from '../helpers/http-client.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { startReceiverServer } from '../helpers/receiver-server.js';
import { newSecret, signedRequest } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';

const cleanups = cleanupAfterEach();

/**
 * A real SQLite inbox whose writes can be made to fail for real: while `broken`, every mark goes
 * through a read-only connection to the same file, and SQLite answers SQLITE_READONLY.
 */
class BreakableInbox implements InboxStore {
  readonly durable = true;
  broken = false;
  private readonly readonly: Database.Database;

  constructor(private readonly inner: SqliteInbox, path: string) {
    this.readonly = new Database(path, { readonly: true });
  }

  completed(keys: readonly string[]): ReturnType<InboxStore['completed']> {
    return this.inner.completed(keys);
  }

  async mark(marks: readonly InboxMark[]): Promise<void> {
    if (this.broken) this.failWrite(marks[0]!.eventKey, marks[0]!.handlerKey ?? '*');
    await this.inner.mark(marks);
  }

  forgetsBefore(): number {
    return this.inner.forgetsBefore();
  }

  async close(): Promise<void> {
    this.readonly.close();
    await this.inner.close();
  }

  private failWrite(key: string, handler: string): void {
    this.readonly.prepare('INSERT INTO inbox (event_key, handler, done_at) VALUES (?, ?, ?)').run(key, handler, Date.now());
  }
}

async function setup(handlers: Record<string, () => void>) {
  const dir = tempDir('inbox-write-failure');
  cleanups.push(() => dir.remove());
  const path = dir.file('inbox.db');
  const inbox = new BreakableInbox(new SqliteInbox(path, 60_000), path);
  cleanups.push(() => inbox.close());
  const secret = newSecret();
  const log = createCapturingLogger();
  const catalog = new Catalog();
  for (const [name, handler] of Object.entries(handlers)) catalog.subscribe('invoice-paid', handler, undefined, name);
  const server = await startReceiverServer({ catalog, inbox: inbox, logger: log.logger, secret });
  cleanups.push(() => server.close());
  return { inbox, path, secret, log, url: server.url };
}

describe('an inbox that cannot record a completion (real SQLite file, writes failing with SQLITE_READONLY)', () => {
  it('a handler that succeeded is not reported as failed nor run again: 503 + Retry-After, an error naming the store, then recorded on redelivery', async () => {
    let runs = 0;
    const f = await setup({ charge: () => void (runs += 1) });
    const event = signedRequest(f.secret, 'orders', 'invoice-paid', { invoice: 'inv_1' });

    f.inbox.broken = true;
    const first = await post(f.url, event);
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBe('7');
    expect(runs).toBe(1);
    expect(f.log.withMessage('handler failed')).toHaveLength(0);
    const storeLines = f.log.records.filter((r) => r.level === 'error' && r.message.includes('recording completion failed'));
    expect(storeLines).toHaveLength(1);
    expect(storeLines[0]).toMatchObject({ eventId: event.id, type: 'invoice-paid', source: 'orders' });
    expect(String(storeLines[0]!.error)).toMatch(/readonly/i);
    expect(JSON.stringify(storeLines[0])).not.toContain('inv_1'); // no payload above debug

    // Redelivered while the store still fails: still not run again.
    expect((await post(f.url, event)).status).toBe(503);
    expect(runs).toBe(1);

    // The store recovers: the redelivery records the completion without running the handler.
    f.inbox.broken = false;
    const third = await post(f.url, event);
    expect(third.status).toBe(200);
    expect(runs).toBe(1);
    // Read the file itself (the service holds the inbox's owner lock, so no second SqliteInbox).
    const onDisk = new Database(f.path, { readonly: true });
    try {
      const rows = onDisk.prepare('SELECT handler FROM inbox WHERE event_key = ?').all(eventKey('orders', event.id)) as { handler: string }[];
      expect(rows.map((r) => r.handler)).toEqual(['*']); // `*`: every handler completed (the handler's row, in the same write, is skipped)
    } finally {
      onDisk.close();
    }
    expect(await post(f.url, event)).toMatchObject({ status: 200, body: { status: 'duplicate' } });
    expect(runs).toBe(1);
  });

  it('one handler failing and another succeeding but unrecorded: 500 for the failure, only the failed handler runs again', async () => {
    const runs = { ledger: 0, email: 0 };
    let emailFails = true;
    const f = await setup({
      ledger: () => void (runs.ledger += 1),
      email: () => {
        runs.email += 1;
        if (emailFails) throw new Error('smtp down');
      },
    });
    const event = signedRequest(f.secret, 'orders', 'invoice-paid', { invoice: 'inv_2' });
    f.inbox.broken = true;
    expect((await post(f.url, event)).status).toBe(500);
    expect(f.log.withMessage('handler failed').map((r) => r.handler)).toEqual(['email']);
    expect(f.log.records.some((r) => r.level === 'error' && r.message.includes('recording completion failed'))).toBe(true);

    f.inbox.broken = false;
    emailFails = false;
    expect((await post(f.url, event)).status).toBe(200);
    expect(runs).toEqual({ ledger: 1, email: 2 });
  });

  it('every handler completed but the write carrying the final mark fails: 503, and the redelivery runs nothing again', async () => {
    let runs = 0;
    const f = await setup({ charge: () => void (runs += 1) });
    const event = signedRequest(f.secret, 'orders', 'invoice-paid', { invoice: 'inv_3' });
    // Only the write with the final "done" mark fails.
    const mark = f.inbox.mark.bind(f.inbox);
    let failDone = true;
    f.inbox.mark = (marks) => {
      f.inbox.broken = failDone && marks.some((m) => m.handlerKey === undefined);
      try {
        return mark(marks); // its check of `broken` runs before its first await
      } finally {
        f.inbox.broken = false;
      }
    };
    expect((await post(f.url, event)).status).toBe(503);
    failDone = false;
    expect((await post(f.url, event)).status).toBe(200);
    expect(runs).toBe(1);
  });
});
