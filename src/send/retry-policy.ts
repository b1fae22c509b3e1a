/** Which failures are retried, and how long to wait. Shared by the HTTP transport and the dispatcher. */

/**
 * Retried at once, in place (axios-retry), then redelivered from the outbox: network errors,
 * timeouts, 408, 429 and 5xx — the weather.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * A verdict on the event itself, which no operator action on the target changes by itself:
 * dead-lettered at once. 400 malformed or schema-invalid, 410 gone for good, 413 too large,
 * 415 unsupported content type, 422 a handler's NonRetryableError. (A NonRetryableError with
 * another status is recognised by the receiver's `rejected_by_handler` answer.)
 */
const FINAL_STATUSES: ReadonlySet<number> = new Set([400, 410, 413, 415, 422]);

export function isFinalStatus(status: number): boolean {
  return FINAL_STATUSES.has(status);
}

/**
 * Every other 4xx (401 wrong secret or clock skew, 403 a proxy or firewall, 404 receiver not yet
 * deployed or not subscribed, 405 wrong URL, 409, …) is a configuration or deploy-order problem an
 * operator fixes within minutes or hours: redelivered from the outbox with the normal backoff until
 * the horizon, without immediate retries.
 */
export function isRedeliveredStatus(status: number): boolean {
  return status >= 400 && status < 500 && !isFinalStatus(status) && !isRetryableStatus(status);
}

/** Statuses that speak of the target as a whole being unavailable, not of one event. */
export function isTargetDownStatus(status: number): boolean {
  return status === 401 || status === 429 || status === 502 || status === 503 || status === 504;
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
