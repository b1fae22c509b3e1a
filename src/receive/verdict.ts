import { NonRetryableError } from '../errors/index.js';

/**
 * What the receive pipeline decided about one event (or about a message that carried none). The
 * transports map it: the HTTP intake to a status, a receipt and `Retry-After`; a broker consumer to
 * ack, a later retry or its dead-letter queue. `id` is the event's id when it is known.
 * - `done`: every handler completed and that is recorded;
 * - `duplicate`: every handler had completed already (or a delivery of the same event in flight did);
 * - `retry`: this delivery failed, a later one may succeed (a handler failed, no subscriber here
 *   yet, the inbox could not record it); counts as an attempt;
 * - `reject`: no delivery of these bytes can ever succeed (bad signature, malformed, invalid,
 *   `NonRetryableError`): a broker dead-letters it at once, HTTP answers a 4xx;
 * - `unavailable`: this receiver takes nothing now (shutting down): not the event's fault, not an attempt.
 */
export type Verdict =
  | { kind: 'done'; id?: string }
  | { kind: 'duplicate'; id?: string }
  | { kind: 'retry'; id?: string; reason: string; message: string; afterMs?: number }
  | { kind: 'reject'; id?: string; reason: string; message: string; cause?: unknown }
  | { kind: 'unavailable'; id?: string; reason: string; message: string; afterMs?: number };

/** A verdict that refuses the event: the ones with a reason. */
export type Refusal = Extract<Verdict, { reason: string }>;

/** Reasons whose status is not the default of their kind (reject 400; retry 500, or 503 with a wait). */
const STATUS_OF_REASON: Readonly<Record<string, number>> = {
  invalid_signature: 401,
  wrong_recipient: 403,
  no_subscriber: 404,
  body_timeout: 408,
  payload_too_large: 413,
  binary_mode_refused: 415,
  unsupported_media_type: 415,
};

/**
 * The CloudEvents HTTP binding's status for a verdict: what the HTTP intake answers, and the
 * `status` of every receipt log line, whatever the transport, so logs read the same everywhere.
 */
export function statusOf(verdict: Verdict): number {
  switch (verdict.kind) {
    case 'done':
    case 'duplicate':
      return 200;
    case 'reject':
      return verdict.cause instanceof NonRetryableError ? verdict.cause.status : (STATUS_OF_REASON[verdict.reason] ?? 400);
    case 'retry':
      return STATUS_OF_REASON[verdict.reason] ?? (verdict.afterMs === undefined ? 500 : 503);
    case 'unavailable':
      return 503;
  }
}

/** The wait a verdict asks for, in whole seconds (`Retry-After`); undefined when it asks none. */
export function retryAfterSecondsOf(verdict: Verdict): number | undefined {
  const afterMs = 'afterMs' in verdict ? verdict.afterMs : undefined;
  return afterMs === undefined ? undefined : Math.ceil(afterMs / 1000);
}
