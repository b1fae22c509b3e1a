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
