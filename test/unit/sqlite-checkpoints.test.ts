import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { checkpointInBackground } from '../../src/backends/sqlite/checkpointer.js';
import { SqliteInbox } from '../../src/backends/sqlite/inbox.js';
import { SqliteOutbox } from '../../src/backends/sqlite/outbox.js';
import { DEFAULTS } from '../../src/defaults.js';
import { eventKey } from '../../src/receive/inbox-store.js';

// The durable stores' WAL checkpoints run in a worker thread, not in their commits: the file
// itself (not only its WAL) takes what was written, with no commit crossing SQLite's mark.

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'events-checkpoints-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Resolves once the database file itself (its WAL aside) is over `bytes`; rejects after `ms`. */
async function fileGrowsPast(file: string, bytes: number, ms = 10_000): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const size = fs.statSync(file).size;
    if (size > bytes) return size;
    if (Date.now() > deadline) throw new Error(`${file} is ${size} bytes after ${ms} ms: its WAL was not checkpointed`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const body = JSON.stringify({ pad: 'x'.repeat(1000) });

describe('SQLite WAL checkpoints', () => {
  test("an outbox's writes reach its file from the checkpointer thread, far below SQLite's own mark", async () => {
    const file = path.join(dir, 'outbox.db');
    const outbox = new SqliteOutbox(file);
    try {
      const before = fs.statSync(file).size;
      // About 600 pages of WAL, a few percent of the inline mark (16384 pages).
      await outbox.add(Array.from({ length: 2000 }, (_, i) => ({ eventId: `e${i}`, type: 't', source: 's', target: 'payments', body, createdAt: i })));
      expect(await fileGrowsPast(file, before + 2_000_000)).toBeGreaterThan(2_000_000);
      expect(await outbox.stats()).toMatchObject({ pending: 2000 });
    } finally {
      await outbox.close();
    }
  });

  test("an inbox's marks reach its file the same way", async () => {
    const file = path.join(dir, 'inbox.db');
    const inbox = new SqliteInbox(file, 60_000);
    try {
      const before = fs.statSync(file).size;
      for (let i = 0; i < 20; i++) {
        await inbox.mark(Array.from({ length: 500 }, (_, j) => ({ eventKey: eventKey('orders', `${i}-${j}-${'k'.repeat(60)}`) })));
      }
      expect(await fileGrowsPast(file, before + 500_000)).toBeGreaterThan(500_000);
    } finally {
      await inbox.close();
    }
  });

  test('a file the checkpointer cannot open goes back to checkpoints in its commits, saying why', async () => {
    const file = path.join(dir, 'fallback.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    const reasons: string[] = [];
    // The worker opens the path it is given, which does not exist (the connection here is on another).
    const stop = checkpointInBackground(db, path.join(dir, 'missing', 'fallback.db'), (reason) => reasons.push(reason));
    try {
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      for (let i = 0; i < 200 && reasons.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(reasons).toEqual([expect.stringMatching(/unable to open|directory does not exist|no such file/i)]);
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(DEFAULTS.sqlite.inlineCheckpointPages);
    } finally {
      stop();
      db.close();
    }
  });
});
