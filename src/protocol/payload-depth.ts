/**
 * Whether `value` nests objects and arrays more than `limit` levels deep (`{}` is one level, a
 * primitive none). Iterative, so that a payload deep enough to overflow `JSON.stringify`'s stack
 * (or one that refers to itself) is caught here with a clear error instead of a bare RangeError.
 */
export function deeperThan(value: unknown, limit: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const nodes: object[] = [value];
  const depths: number[] = [1];
  while (nodes.length > 0) {
    const node = nodes.pop()!;
    const depth = depths.pop()!;
    if (depth > limit) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') {
        nodes.push(child as object);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}
