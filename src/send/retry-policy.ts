/** Which failures are retried, and how long to wait. Shared by the HTTP transport and the dispatcher. */

/** Network errors, timeouts, 408, 429 and 5xx are retried; every other 4xx never is. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Statuses that speak of the target as a whole being unavailable, not of one event. */
export function isTargetDownStatus(status: number): boolean {
  return status === 429 || status === 502 || status === 503 || status === 504;
}

/** `Retry-After` in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

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
