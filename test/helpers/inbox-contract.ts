// The inbox store contract, the same for every inbox store: the memory and SQLite stores
// (test/unit/inbox-stores.test.ts) and PostgreSQL (test/postgres/inbox.test.ts). Every call is
// awaited, so stores that answer at once and stores that answer with promises run the same tests.
import { eventKey, type InboxStore } from '../../src/receive/inbox-store.js';

/** One key's state (undefined when unseen), one handler's mark, an event's `done` mark: the store's calls for a single key. */
export const stateOf = async (inbox: InboxStore, key: string) => (await inbox.completed([key])).get(key);
export const markHandler = (inbox: InboxStore, key: string, handlerKey: string) => inbox.mark([{ eventKey: key, handlerKey }]);
export const markDone = (inbox: InboxStore, key: string) => inbox.mark([{ eventKey: key }]);

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
    expect(await stateOf(inbox, key)).toBeUndefined();
  });

  test('handler marks record the handlers that completed for a partly processed event', async () => {
    await markHandler(inbox, key, 'user-created#1');
    expect(await stateOf(inbox, key)).toEqual(new Set(['user-created#1']));
    await markHandler(inbox, key, 'send-welcome');
    await markHandler(inbox, key, 'send-welcome');
    expect(await stateOf(inbox, key)).toEqual(new Set(['user-created#1', 'send-welcome']));
  });

  test('a done mark makes the event completed (true), whatever handlers were marked', async () => {
    await markHandler(inbox, key, 'h1');
    await markDone(inbox, key);
    expect(await stateOf(inbox, key)).toBe(true);
    await markHandler(inbox, key, 'h2'); // a late mark does not reopen it
    expect(await stateOf(inbox, key)).toBe(true);
  });

  test('a done mark without any handler mark (an event with no pending handler) is completed', async () => {
    await markDone(inbox, key);
    expect(await stateOf(inbox, key)).toBe(true);
  });

  test('events are independent of each other', async () => {
    await markDone(inbox, key);
    await markHandler(inbox, eventKey('users', 'evt-2'), 'h1');
    expect(await stateOf(inbox, eventKey('users', 'evt-2'))).toEqual(new Set(['h1']));
    expect(await stateOf(inbox, eventKey('orders', 'evt-1'))).toBeUndefined();
  });

  test('many marks and many keys at once', async () => {
    const done = eventKey('users', 'p-1');
    const partial = eventKey('users', 'p-2');
    const quoted = eventKey("us'ers", 'p-3');
    await inbox.mark([{ eventKey: done, handlerKey: 'h1' }, { eventKey: done }, { eventKey: partial, handlerKey: 'h1' }, { eventKey: quoted }]);
    await inbox.mark([{ eventKey: done }]);

    const states = await inbox.completed([done, partial, quoted, eventKey('users', 'p-4'), eventKey('users', 'p-1x')]);
    expect([...states.keys()].sort()).toEqual([done, partial, quoted].sort());
    expect(states.get(done)).toBe(true);
    expect(states.get(quoted)).toBe(true);
    expect([...(states.get(partial) as ReadonlySet<string>)]).toEqual(['h1']);
    expect((await inbox.completed([])).size).toBe(0);
  });

  test("in one group, each mark counts for its own event: a handler's mark next to another event's done mark", async () => {
    const partial = eventKey('users', 'q-1');
    const done = eventKey('users', 'q-2');
    await inbox.mark([{ eventKey: partial, handlerKey: 'h1' }, { eventKey: done }, { eventKey: done, handlerKey: 'h1' }, { eventKey: partial, handlerKey: 'h2' }]);
    const states = await inbox.completed([partial, done]);
    expect(states.get(done)).toBe(true);
    expect(states.get(partial)).toEqual(new Set(['h1', 'h2']));
  });
}
