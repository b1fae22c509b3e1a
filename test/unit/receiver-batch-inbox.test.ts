import Database from 'better-sqlite3';
import type { InboxStore } from '../../src/receive/inbox-store.js';
import { eventKey } from '../../src/receive/inbox-store.js';
import { MemoryInbox } from '../../src/backends/memory/inbox.js';
import { SqliteInbox } from '../../src/backends/sqlite/inbox.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { tempDir } from '../helpers/temp-dir.js';

const cleanups = cleanupAfterEach();

const stores: Array<[string, () => InboxStore]> = [
  ['memory', () => new MemoryInbox(1000)],
  [
    'sqlite',
    () => {
      const dir = tempDir('inbox-many');
      cleanups.push(() => dir.remove());
      const inbox = new SqliteInbox(dir.file('inbox.db'), 60_000);
      cleanups.push(() => inbox.close());
      return inbox;
    },
  ],
];

describe.each(stores)('%s inbox: a request’s reads and writes at once', (_name, open) => {
  test('completedMany answers what completed answers, key by key; unseen keys are absent', async () => {
    const inbox = open();
    const done = eventKey('users', 'a');
    const partial = eventKey('users', 'b');
    const unseen = eventKey('users', 'c');
    // The separator is part of the key: the same id from another source is another event.
    const otherSource = eventKey('users\u0000x', 'a');
    await inbox.markMany!([{ eventKey: done, handlerKey: 'h1' }, { eventKey: done }, { eventKey: partial, handlerKey: 'h1' }]);

    const states = await inbox.completedMany!([done, partial, unseen, otherSource]);
    expect(states.get(done)).toBe(true);
    expect([...(states.get(partial) as ReadonlySet<string>)]).toEqual(['h1']);
    expect(states.has(unseen)).toBe(false);
    expect(states.has(otherSource)).toBe(false);
    for (const key of [done, partial, unseen]) expect(await inbox.completed(key)).toEqual(states.get(key));
  });

  test('markMany is idempotent, like the marks it replaces', async () => {
    const inbox = open();
    const key = eventKey('users', 'd');
    await inbox.markMany!([{ eventKey: key, handlerKey: 'h1' }]);
    await inbox.markMany!([{ eventKey: key, handlerKey: 'h1' }, { eventKey: key }]);
    await inbox.markMany!([{ eventKey: key }]);
    expect(await inbox.completed(key)).toBe(true);
    expect((await inbox.completedMany!([])).size).toBe(0);
  });
});

test('sqlite inbox: an event marked done in the same group is one row, not one per handler too (one page write fewer)', async () => {
  const dir = tempDir('inbox-rows');
  cleanups.push(() => dir.remove());
  const inbox = new SqliteInbox(dir.file('inbox.db'), 60_000);
  cleanups.push(() => inbox.close());
  const [done, partial] = [eventKey('users', 'e'), eventKey('users', 'f')];
  await inbox.markMany([{ eventKey: done, handlerKey: 'h1' }, { eventKey: done }, { eventKey: partial, handlerKey: 'h1' }]);
  const db = new Database(dir.file('inbox.db'), { readonly: true });
  cleanups.push(() => db.close());
  expect(db.prepare('SELECT event_key, handler FROM inbox ORDER BY handler').all()).toEqual([
    { event_key: done, handler: '*' },
    { event_key: partial, handler: 'h1' },
  ]);
  expect(await inbox.completed(done)).toBe(true);
});
