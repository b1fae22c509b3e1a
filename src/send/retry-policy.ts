/** How long to wait before trying again: the outbox's redelivery and the HTTP transports' retries in place. */

/**
 * Exponential backoff with jitter: `base · 2^(n-1)`, capped at `max`, then scaled by a random
 * factor in [0.5, 1] so that many senders retrying together spread out.
 *
 * Kept rather than axios-retry's `exponentialDelay(n, error, base)` (= `base · 2^n`, plus 0–20%),
 * which does not fit here: it has no cap, so capping its result with `Math.min` removes the
 * jitter exactly where it matters (every delivery of a long outage would wait the same 6 h and
 * retry in one burst); its jitter only ever lengthens a wait; and it reads `Retry-After` from an
 * AxiosError, which the outbox's redelivery (transport-neutral) does not have.
 */
export function backoffMs(retry: number, baseMs: number, maxMs: number, random = Math.random): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(exponential * (0.5 + random() / 2));
}
