import type { BatchResult } from '../../protocol/cloudevents.js';
import type { DeliveryResult } from '../../send/transport.js';

/**
 * What a target's HTTP answer means for the deliveries it carried: pure functions shared by
 * every HTTP client (axios, undici), so both settle the same answer the same way.
 */

/**
 * A result as read from an HTTP answer. `receipt`, on a 2xx: whether the answer was an events
 * endpoint's receipt (`{ status: 'delivered' | 'duplicate', id }`); `false` for a plain 2xx (an
 * app's fallback route, or a peer that is not this library): delivered only to a target with
 * `receipt: false`, else kept and said (failure-hints.ts).
 */
export interface HttpResult extends DeliveryResult {
  receipt?: boolean;
}

/**
 * Retried at once, in place (retry-in-place.ts), then redelivered from the outbox: network errors,
 * timeouts, 408, 429 and 5xx — the weather.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * A verdict on the event itself, which no operator action on the target changes by itself:
 * dead-lettered at once. 400 malformed or schema-invalid, 410 gone for good, 413 too large,
 * 415 unsupported content type, 422 a handler's NonRetryableError. (A NonRetryableError with
 * another status is recognised by the receiver's `rejected_by_handler` answer.) Every other 4xx
 * (401, 403, 404, 405, 409, …) is an operator's to fix within minutes or hours: redelivered from the
 * outbox with the normal backoff until the horizon, not retried in place.
 */
const FINAL_STATUSES: ReadonlySet<number> = new Set([400, 410, 413, 415, 422]);

export function isFinalStatus(status: number): boolean {
  return FINAL_STATUSES.has(status);
}

/**
 * nginx answers a missing or refused client certificate with a 400 whose page says so ("No required
 * SSL certificate was sent", "The SSL certificate error"): a certificate to fix, not a verdict on the event.
 */
export function isCertificateRefusal(status: number, bodyText: string | undefined): boolean {
  return status === 400 && bodyText !== undefined && /SSL certificate/.test(bodyText);
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

/** Reads one response header (lower-case name); undefined when absent. */
export type HeaderOf = (name: string) => string | undefined;

/** The reader of a client's response headers: a value that is not one string reads as absent. */
export function headerReader(headers: Readonly<Record<string, unknown>> | undefined): HeaderOf {
  return (name) => {
    const value = headers?.[name];
    return typeof value === 'string' ? value : undefined;
  };
}

/** How much of a target's answer goes into a result's `error` (and from there into logs). */
const RESPONSE_SNIPPET = 300;

/**
 * One event's answer. `bodyText` is undefined when the body was not read (over the response cap):
 * the status alone decides then.
 */
export function singleResult(status: number, header: HeaderOf, bodyText: string | undefined, attempts: number): HttpResult {
  const body = parseObject(bodyText);
  if (status >= 200 && status < 300) return { outcome: 'delivered', status, attempts, receipt: isReceipt(body) };
  // Dead-letter at once only a verdict on the event itself; any other 4xx (401, 403, 404, …) is
  // an operator's to fix and is redelivered from the outbox with the normal backoff.
  const final = (isFinalStatus(status) && !isCertificateRefusal(status, bodyText)) || (status < 500 && body?.error === 'rejected_by_handler');
  return failure(final, status, describeAnswer(status, bodyText), attempts, parseRetryAfter(header('retry-after')));
}

/** No answer at all (connection refused or reset, timeout, DNS): the target as a whole is down. */
export function networkResult(error: string, attempts: number): DeliveryResult {
  return { outcome: 'retry', error, attempts, targetDown: true };
}

/**
 * A batch's answer: one result per event, in the batch's order. An answer with a `results` array
 * of the right length is read per event; otherwise the status speaks for every event (a 415 or
 * other final 4xx then means the peer does not read batches). Never throws.
 * @param ids the batch's event ids, in order, when known: a result naming another id is not trusted
 */
export function batchResults(
  status: number,
  header: HeaderOf,
  bodyText: string | undefined,
  count: number,
  attempts: number,
  ids?: readonly string[],
): HttpResult[] {
  const items = readBatchResults(bodyText, count, ids);
  if (items) {
    const retryAfterMs = parseRetryAfter(header('retry-after'));
    return items.map((item) => itemResult(item, attempts, retryAfterMs));
  }
  let result: HttpResult;
  if (status >= 200 && status < 300) {
    // A peer that took the whole array without a word per event: no receipt (failure-hints.ts decides).
    result = { outcome: 'delivered', status, attempts, receipt: false };
  } else if (isFinalStatus(status)) {
    // Nothing in it was processed: each event goes again on its own, in structured mode.
    result = { outcome: 'retry', status, error: describeAnswer(status, bodyText), attempts, batchUnsupported: true };
  } else {
    result = singleResult(status, header, bodyText, attempts);
  }
  return Array.from({ length: count }, () => ({ ...result }));
}

/**
 * The per-event results of a batch answer, or undefined when the body has none to trust: not
 * JSON, no `results` array, the wrong number of entries, an entry without a numeric status, or
 * one naming another event than the batch has at its place (a result is never credited to the
 * wrong event). The caller then reads the answer as if it had no results (and may retry the
 * whole request: the receiver dedupes).
 */
export function readBatchResults(bodyText: string | undefined, count: number, ids?: readonly string[]): BatchResult[] | undefined {
  const results = parseObject(bodyText)?.results;
  if (!Array.isArray(results) || results.length !== count) return undefined;
  const items: BatchResult[] = [];
  for (const [index, entry] of (results as unknown[]).entries()) {
    if (entry === null || typeof entry !== 'object') return undefined;
    const { status, id, receipt, error, message, retryAfter } = entry as Record<string, unknown>;
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) return undefined;
    // An item for an unreadable event may have no id; one that has an id must be this event's.
    if (ids !== undefined && typeof id === 'string' && id !== ids[index]) return undefined;
    items.push({
      status,
      ...(typeof id === 'string' ? { id } : {}),
      ...(receipt === 'delivered' || receipt === 'duplicate' ? { receipt } : {}),
      ...(typeof error === 'string' ? { error } : {}),
      ...(typeof message === 'string' ? { message } : {}),
      ...(typeof retryAfter === 'number' && Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfter } : {}),
    });
  }
  return items;
}

/** A short summary of an answer for a result's `error`: the status and the start of the body. */
export function describeAnswer(status: number, bodyText: string | undefined): string {
  const body = bodyText ? bodyText.slice(0, RESPONSE_SNIPPET) : '';
  return `HTTP ${status}${body ? `: ${body}` : ''}`;
}

function itemResult(item: BatchResult, attempts: number, responseRetryAfterMs: number | undefined): HttpResult {
  const { status } = item;
  if (status >= 200 && status < 300) return { outcome: 'delivered', status, attempts, receipt: true };
  const final = isFinalStatus(status) || (status < 500 && item.error === 'rejected_by_handler');
  const summary = [item.error, item.message].filter((part) => part !== undefined).join(': ');
  const error = `HTTP ${status}${summary ? `: ${summary.slice(0, RESPONSE_SNIPPET)}` : ''}`;
  const retryAfterMs = item.retryAfter !== undefined ? item.retryAfter * 1000 : responseRetryAfterMs;
  return failure(final, status, error, attempts, retryAfterMs);
}

function failure(final: boolean, status: number, error: string, attempts: number, retryAfterMs: number | undefined): DeliveryResult {
  return {
    outcome: final ? 'refused' : 'retry',
    status,
    error,
    attempts,
    targetDown: isTargetDownStatus(status),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}

/** Our receiver's answer to a delivered event: `{ status: 'delivered' | 'duplicate', id }`. */
function isReceipt(body: Record<string, unknown> | undefined): boolean {
  return body !== undefined && (body.status === 'delivered' || body.status === 'duplicate') && typeof body.id === 'string';
}

function parseObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined || !text.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
