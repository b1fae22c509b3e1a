import type { Logger } from 'winston';
import type { DeadLetter } from '../operate/operator.js';

/** What `onDelivered` receives: one event delivered to one target. */
export interface DeliveredReport {
  eventId: string;
  type: string;
  source: string;
  target: string;
  /** HTTP tries it took, over every send of this delivery. */
  attempts: number;
  /** The target's 2xx status. */
  status: number | undefined;
  /** ms from `emit` to this delivery. */
  latencyMs: number;
}

/** Called once per delivery that reached its target, once the dispatcher has settled it. */
export type OnDelivered = (report: DeliveredReport) => void | Promise<void>;
/** Called once per delivery that became a dead letter: refused by the target, or past its horizon (as `bus.deadLetters()` lists it). */
export type OnDeadLetter = (deadLetter: DeadLetter) => void | Promise<void>;

export interface Hooks {
  onDelivered?: OnDelivered | undefined;
  onDeadLetter?: OnDeadLetter | undefined;
}

/**
 * Runs a user's hook: whatever it throws or rejects with is logged at error level and goes no
 * further, so a broken hook never changes what happens to a delivery.
 */
export function callHook<T extends { eventId: string | undefined; target: string }>(
  logger: Logger,
  name: string,
  hook: ((value: T) => void | Promise<void>) | undefined,
  value: T,
): void {
  if (!hook) return;
  const failed = (error: unknown) =>
    logger.error(`${name} hook failed; the delivery is not affected`, {
      eventId: value.eventId,
      target: value.target,
      error: (error as Error)?.message ?? String(error),
    });
  try {
    const result = hook(value);
    if (result && typeof (result as Promise<void>).then === 'function') (result as Promise<void>).then(undefined, failed);
  } catch (error) {
    failed(error);
  }
}
