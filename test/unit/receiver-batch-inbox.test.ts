import Database from 'better-sqlite3';
import type { InboxStore } from '../../src/receive/inbox-store.js';
import { eventKey } from '../../src/receive/inbox-store.js';
import { MemoryInbox } from '../../src/backends/memory/inbox.js';
import { SqliteInbox } from '../../src/backends/sqlite/inbox.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { stateOf } from '../helpers/inbox-contract.js';
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
  test('completed answers a state per key read; unseen keys are absent', async () => {
    const inbox = open();
    const done = eventKey('users', 'a');
    const partial = eventKey('users', 'b');
    const unseen = eventKey('users', 'c');
    // The separator is part of the key: the same id from another source is another event.
    const otherSource = eventKey('users\u0000x', 'a');
    await inbox.mark([{ eventKey: done, handlerKey: 'h1' }, { eventKey: done }, { eventKey: partial, handlerKey: 'h1' }]);

    const states = await inbox.completed([done, partial, unseen, otherSource]);
    expect(states.get(done)).toBe(true);
    expect([...(states.get(partial) as ReadonlySet<string>)]).toEqual(['h1']);
    expect(states.has(unseen)).toBe(false);
    expect(states.has(otherSource)).toBe(false);
  });

  test('mark is idempotent', async () => {
    const inbox = open();
    const key = eventKey('users', 'd');
    await inbox.mark([{ eventKey: key, handlerKey: 'h1' }]);
    await inbox.mark([{ eventKey: key, handlerKey: 'h1' }, { eventKey: key }]);
    await inbox.mark([{ eventKey: key }]);
    expect(await stateOf(inbox, key)).toBe(true);
    expect((await inbox.completed([])).size).toBe(0);
  });
});

test('sqlite inbox: an event marked done in the same group is one row, not one per handler too (one page write fewer)', async () => {
  const dir = tempDir('inbox-rows');
  cleanups.push(() => dir.remove());
  const inbox = new SqliteInbox(dir.file('inbox.db'), 60_000);
  cleanups.push(() => inbox.close());
  const [done, partial] = [eventKey('users', 'e'), eventKey('users', 'f')];
  await inbox.mark([{ eventKey: done, handlerKey: 'h1' }, { eventKey: done }, { eventKey: partial, handlerKey: 'h1' }]);
  const db = new Database(dir.file('inbox.db'), { readonly: true });
  cleanups.push(() => db.close());
  expect(db.prepare('SELECT event_key, handler FROM inbox ORDER BY handler').all()).toEqual([
    { event_key: done, handler: '*' },
    { event_key: partial, handler: 'h1' },
  ]);
  expect(await stateOf(inbox, done)).toBe(true);
});
