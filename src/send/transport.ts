import type { ResolvedTarget } from '../config.js';

/**
 * The target of an event declared without targets (`declareEvent(type, { schema })`): every service
 * subscribed to its type through the broker. One outbox row, one publish, signed with the system
 * secret and addressed to no `recipient`.
 */
export const SUBSCRIBERS = '*';

/** One event on its way to one target service. */
export interface Delivery {
  eventId: string;
  type: string;
  source: string;
  target: ResolvedTarget;
  /** The CloudEvent in structured mode, serialised once at emit. */
  body: string;
  /** Tries made before this one (by earlier sends of the same delivery). */
  previousAttempts: number;
  /** W3C trace context of this attempt, for the transport's own headers (HTTP: `traceparent`, `tracestate`). */
  traceparent?: string;
  tracestate?: string;
}

export interface DeliveryResult {
  /**
   * delivered: taken · refused: never retry (a verdict on the event itself: dead-lettered at once) ·
   * retry: redeliver later from the outbox.
   */
  outcome: 'delivered' | 'retry' | 'refused';
  /** The target's status code, if it answered (HTTP: the status), for logs and the record. */
  status?: number;
  /** Why it failed: a network error code, or a short summary of the target's answer. */
  error?: string;
  /** The target asked for this much time before the next try (more than the transport waits in place). */
  retryAfterMs?: number;
  /** The failure concerns the whole target (unreachable, overloaded), not this one event. */
  targetDown?: boolean;
  /** What an operator should check about this answer: said once per state change, not per event. */
  hint?: DeliveryHint;
  /** Tries this send made (1 + immediate retries). */
  attempts: number;
  /** Delivered to SUBSCRIBERS while no service subscribes to its type: dropped by design (counted apart in metrics). */
  unrouted?: boolean;
  /**
   * Batch sends only: the target refused the batch as a whole, unprocessed (it does not read
   * batches, or the batch was too large). The dispatcher sends the event again at once, uncharged;
   * on its own from then on, unless `batchTooLarge` says batches go on, smaller.
   */
  batchUnsupported?: boolean;
  /** With `batchUnsupported`: the batch was refused for its size, this many bytes; later batches stay under half of it. */
  batchTooLarge?: number;
}

/**
 * The likely cause of an answer an operator can act on (a secret, a deploy, a URL, an endpoint
 * that does not confirm deliveries). The dispatcher logs it (warn) once, until a delivery in its
 * scope succeeds without it.
 */
export interface DeliveryHint {
  /** Same key, same state: not said again until the state ends. */
  key: string;
  /** What it concerns: the whole target, or the event type of the delivery it came with. */
  scope: 'target' | 'type';
  message: string;
  /** On a delivered result: said (info) when a later delivery comes without this hint. */
  over?: string;
}

/**
 * Carries deliveries to targets. HTTP push is the default; a broker transport implements the
 * same two methods. `send` never throws for a delivery failure: it answers with a result.
 */
export interface Transport {
  send(delivery: Delivery): Promise<DeliveryResult>;
  /**
   * Optional: several deliveries to one target in one request (HTTP: a CloudEvents batch, signed
   * once over the exact body). Answers one result per delivery, in the same order, settled one by
   * one from the target's per-event answer. Called only with 2 or more deliveries to the same
   * target whose `target.batch` is true. Never throws for a delivery failure.
   */
  sendBatch?(deliveries: readonly Delivery[]): Promise<DeliveryResult[]>;
  /**
   * Brokers: whether an event of `type` declared without targets can go to every service
   * subscribed to it (SUBSCRIBERS): true, or why not. Absent: this transport needs targets (HTTP push).
   */
  toSubscribers?(type: string): true | string;
  close(): Promise<void>;
}
