// The inbox store contract, the same for every inbox store: the memory and SQLite stores
// (test/unit/inbox-stores.test.ts) and PostgreSQL (test/postgres/inbox.test.ts). Every call is
// awaited, so stores that answer at once and stores that answer with promises run the same tests.
import { eventKey, type InboxStore } from '../../src/receive/inbox-store.js';

/** `open` gives a fresh, empty store (for PostgreSQL: a service of its own); each test closes it. */
export function inboxStoreContract(open: () => Promise<InboxStore> | InboxStore): void {
  let inbox: InboxStore;
  const key = eventKey('users', 'evt-1');
  beforeEach(async () => {
    inbox = await open();
  });
  afterEach(async () => {
    await inbox.close();
  });

  test('an unseen event is undefined', async () => {
    expect(await inbox.completed(key)).toBeUndefined();
  });

  test('markHandler records the handlers that completed for a partly processed event', async () => {
    await inbox.markHandler(key, 'user-created#1');
    expect(await inbox.completed(key)).toEqual(new Set(['user-created#1']));
    await inbox.markHandler(key, 'send-welcome');
    await inbox.markHandler(key, 'send-welcome');
    expect(await inbox.completed(key)).toEqual(new Set(['user-created#1', 'send-welcome']));
  });

  test('markDone makes the event completed (true), whatever handlers were marked', async () => {
    await inbox.markHandler(key, 'h1');
    await inbox.markDone(key);
    expect(await inbox.completed(key)).toBe(true);
    await inbox.markHandler(key, 'h2'); // a late mark does not reopen it
    expect(await inbox.completed(key)).toBe(true);
  });

  test('markDone without any markHandler (an event with no pending handler) is completed', async () => {
    await inbox.markDone(key);
    expect(await inbox.completed(key)).toBe(true);
  });

  test('events are independent of each other', async () => {
    await inbox.markDone(key);
    await inbox.markHandler(eventKey('users', 'evt-2'), 'h1');
    expect(await inbox.completed(eventKey('users', 'evt-2'))).toEqual(new Set(['h1']));
    expect(await inbox.completed(eventKey('orders', 'evt-1'))).toBeUndefined();
  });

  test('markMany and completedMany (a request at once) give the same answers as the one-by-one calls', async () => {
    const done = eventKey('users', 'p-1');
    const partial = eventKey('users', 'p-2');
    const quoted = eventKey("us'ers", 'p-3');
    await inbox.markMany!([{ eventKey: done, handlerKey: 'h1' }, { eventKey: done }, { eventKey: partial, handlerKey: 'h1' }, { eventKey: quoted }]);
    await inbox.markMany!([{ eventKey: done }]);

    const states = await inbox.completedMany!([done, partial, quoted, eventKey('users', 'p-4'), eventKey('users', 'p-1x')]);
    expect([...states.keys()].sort()).toEqual([done, partial, quoted].sort());
    expect(states.get(done)).toBe(true);
    expect(states.get(quoted)).toBe(true);
    expect([...(states.get(partial) as ReadonlySet<string>)]).toEqual(['h1']);
    for (const k of [done, partial, quoted]) expect(await inbox.completed(k)).toEqual(states.get(k));
  });
}
