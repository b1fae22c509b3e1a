/** What the SQLite and PostgreSQL inboxes share: one row per completed handler, and a `*` row once every handler completed. */

/** The handler of the row that marks an event done. */
export const DONE = '*';

/** The state of each event with rows: `true` once done, else the handlers completed. */
export function handlerStates(rows: Iterable<readonly [eventKey: string, handler: string]>): Map<string, true | ReadonlySet<string>> {
  const handlers = new Map<string, Set<string>>();
  for (const [key, handler] of rows) {
    let set = handlers.get(key);
    if (!set) handlers.set(key, (set = new Set()));
    set.add(handler);
  }
  const states = new Map<string, true | ReadonlySet<string>>();
  for (const [key, set] of handlers) states.set(key, set.has(DONE) ? true : set);
  return states;
}
