/**
 * The cleanups of a test file: a test pushes how to undo what it started (close a bus, a server,
 * remove a directory), and after each test they run, last pushed first, whether it passed or not.
 */
export function cleanupAfterEach(): Array<() => unknown> {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return cleanups;
}

/** Something a test opened and closes: a bus, a server. */
export interface Closable {
  close(): Promise<void>;
}

/**
 * The buses and servers of a test file, closed after each test in the list's order (first first:
 * tests put buses before the servers they deliver to, so in-flight deliveries end first).
 */
export function closeAfterEach(): Closable[] {
  const open: Closable[] = [];
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
  });
  return open;
}
