import type { Verdict } from '../receive/verdict.js';
import { retryDelay } from './broker-common.js';

/**
 * What a broker consumer does with a message, from the pipeline's verdict (RabbitMQ and Kafka alike):
 * - `ack`: delivered, or a duplicate;
 * - `give-back`: this instance takes nothing now (it is stopping): the message stays the broker's,
 *   untouched, for the next reader; not an attempt;
 * - `retry`: after `afterMs` (the verdict's wait, else the retry schedule's for this attempt);
 * - `dead-letter`: a rejection at once, or a retry past `maxAttempts` ("gave up after n attempts").
 */
export type BrokerStep =
  | { step: 'ack' }
  | { step: 'give-back' }
  | { step: 'retry'; reason: string; afterMs: number }
  | { step: 'dead-letter'; reason: string; message: string };

export interface RetryPolicy {
  maxAttempts: number;
  retryDelaysMs: readonly number[];
}

/** The step for a message on its `attempt`-th try (1-based). A batch body is settled by its worst verdict. */
export function brokerStep(result: Verdict | Verdict[], attempt: number, policy: RetryPolicy): BrokerStep {
  const verdict = Array.isArray(result) ? worst(result) : result;
  switch (verdict.kind) {
    case 'done':
    case 'duplicate':
      return { step: 'ack' };
    case 'unavailable':
      return { step: 'give-back' };
    case 'reject':
      return { step: 'dead-letter', reason: verdict.reason, message: verdict.message };
    case 'retry':
      if (attempt >= policy.maxAttempts) {
        return { step: 'dead-letter', reason: verdict.reason, message: `gave up after ${attempt} attempts: ${verdict.message}` };
      }
      return { step: 'retry', reason: verdict.reason, afterMs: verdict.afterMs || retryDelay(policy.retryDelaysMs, attempt) };
  }
}

/**
 * How a message carrying a batch is settled: as a whole when its events agree (every one done or a
 * duplicate: ack; any `unavailable`: give back; every one to retry: the message is retried, and
 * its events done meanwhile are duplicates next time), else event by event, one step each in
 * order: each event to retry or to dead-letter goes on alone, and the message is acked.
 */
export function batchSteps(verdicts: readonly Verdict[], attempt: number, policy: RetryPolicy): BrokerStep | BrokerStep[] {
  const steps = verdicts.map((verdict) => brokerStep(verdict, attempt, policy));
  if (steps.every((step) => step.step === 'ack')) return { step: 'ack' };
  if (steps.some((step) => step.step === 'give-back')) return { step: 'give-back' };
  if (steps.every((step) => step.step === 'retry')) return brokerStep([...verdicts], attempt, policy);
  return steps;
}

const RANK: Record<Verdict['kind'], number> = { done: 0, duplicate: 0, reject: 1, retry: 2, unavailable: 3 };

/** The verdict that decides for a whole batch: the first of the highest rank (nothing that could still succeed is dead-lettered). */
function worst(verdicts: readonly Verdict[]): Verdict {
  return verdicts.reduce<Verdict>((a, b) => (RANK[b.kind] > RANK[a.kind] ? b : a), { kind: 'done' });
}
