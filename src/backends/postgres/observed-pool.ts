import type { Pool } from 'pg';
import type { AvailabilityState } from '../../observe/availability.js';

/**
 * The pool as the stores use it, with every `query` and `connect` marking `state` (for health): a
 * call that failed to reach the database or timed out marks it down (since the first such failure),
 * any answer marks it up. Everything else goes to the pool untouched.
 */
export function observedPool(pool: Pool, state: AvailabilityState, unreachable: (error: unknown) => boolean): Pool {
  const observe = (call: PromiseLike<unknown>): Promise<unknown> =>
    Promise.resolve(call).then(
      (value) => {
        state.up();
        return value;
      },
      (error: unknown) => {
        if (unreachable(error) || timedOut(error)) state.down(error);
        else state.up();
        throw error;
      },
    );
  return new Proxy(pool, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if ((property !== 'query' && property !== 'connect') || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = value.apply(target, args);
        // The callback forms (pg-pool's own query calls connect with one) return nothing to observe.
        return typeof (result as PromiseLike<unknown>)?.then === 'function' ? observe(result as PromiseLike<unknown>) : result;
      };
    },
  });
}

/** A deadline passed: the client's (`query_timeout`, `connectionTimeoutMillis`), or the server's `statement_timeout` (57014). */
function timedOut(error: unknown): boolean {
  return (error as { code?: unknown })?.code === '57014' || /time(d)? ?out/i.test((error as Error)?.message ?? '');
}
