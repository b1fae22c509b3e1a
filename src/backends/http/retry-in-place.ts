import { setMaxListeners } from 'node:events';
import type { Logger } from 'winston';
import type { ResolvedConfig, RetryOptions } from '../../config.js';
import { backoffMs } from '../../send/retry-policy.js';
import type { Delivery, DeliveryResult, Transport } from '../../send/transport.js';
import {
  batchResults,
  describeAnswer,
  type HeaderOf,
  type HttpResult,
  isRetryableStatus,
  networkResult,
  parseRetryAfter,
  readBatchResults,
  singleResult,
} from './answer.js';
import { explained } from './failure-hints.js';
import { RequestInFlight } from './request.js';
import { tlsFailure } from './tls-failures.js';

/** What one try came back with: the target's answer (`text` undefined: over the request's cap, not read), or why there was none. */
export type TryOutcome = { status: number; header: HeaderOf; text: string | undefined } | { status?: undefined; error: string };

/**
 * One try of `request` with `headers` (signed for this try), bounded by the client's timeout and
 * aborted with `signal`. Never throws: a failure without an answer is `{ error }` (a network
 * error code such as ECONNREFUSED or ETIMEDOUT).
 */
export type Post = (request: RequestInFlight, headers: Record<string, string>, signal: AbortSignal) => Promise<TryOutcome>;

export interface RetryInPlaceOptions {
  retry: RetryOptions;
  /** Sends one try: the HTTP client (axios, undici), or the test kit's in-process hand-over. */
  post: Post;
  /** Where each try and retry is said, at debug (the test kit says nothing). */
  logger?: Logger;
}

/** What every HTTP client transport takes. */
export type HttpClientOptions = Pick<ResolvedConfig, 'logger' | 'timeoutMs' | 'retry'>;

/**
 * Sends a request the way every HTTP client of HTTP push does, and retries it in place: network
 * errors, timeouts, 408, 429 and 5xx, `retry.retries` times, with jittered exponential backoff and
 * a `Retry-After` up to `maxRetryAfterMs` waited out; never an answer that is final for it (a
 * longer `Retry-After`, any other status, a batch answered per event: its delivered events must
 * not go again). Then reads the answer (answer.ts) and its likely cause (failure-hints.ts) into
 * transport-neutral results. `close()` aborts what is in flight, a wait included. The HTTP
 * transports extend it with their client's `post`; the test kit holds one.
 */
export class RetryInPlace implements Transport {
  private readonly aborter = new AbortController();

  constructor(private readonly o: RetryInPlaceOptions) {
    setMaxListeners(0, this.aborter.signal); // one listener per request in flight
  }

  async send(delivery: Delivery): Promise<DeliveryResult> {
    const request = new RequestInFlight([delivery], false);
    const { outcome, tries } = await this.withRetries(request);
    if (outcome.status === undefined) return networkResult(tlsFailure(outcome.error, delivery.target), tries);
    return explained(overCap(singleResult(outcome.status, outcome.header, outcome.text, tries), outcome, request), delivery);
  }

  /** One CloudEvents batch; one result per delivery, in order. */
  async sendBatch(deliveries: readonly Delivery[]): Promise<DeliveryResult[]> {
    if (deliveries.length === 0) return [];
    const request = new RequestInFlight(deliveries, true);
    const { outcome, tries } = await this.withRetries(request);
    if (outcome.status === undefined) {
      const result = networkResult(tlsFailure(outcome.error, request.first.target), tries);
      return deliveries.map(() => ({ ...result }));
    }
    const results = batchResults(outcome.status, outcome.header, outcome.text, deliveries.length, tries, request.eventIds);
    return results.map((result, i) => {
      // Refused for its size: the dispatcher sends smaller batches.
      if (result.batchUnsupported && result.status === 413) result.batchTooLarge = request.body.length;
      return explained(overCap(result, outcome, request), deliveries[i]!);
    });
  }

  async close(): Promise<void> {
    this.aborter.abort();
  }

  /** Tries `request` until an answer is final for it, retries run out, or the transport closes. */
  private async withRetries(request: RequestInFlight): Promise<{ outcome: TryOutcome; tries: number }> {
    const { retries, baseDelayMs, maxDelayMs, maxRetryAfterMs } = this.o.retry;
    for (let tries = 1; ; tries += 1) {
      const outcome = await this.try(request, tries);
      if (tries > retries || this.aborter.signal.aborted) return { outcome, tries };
      let waitMs = 0;
      if (outcome.status !== undefined) {
        if (!isRetryableStatus(outcome.status)) return { outcome, tries };
        if (request.batch && readBatchResults(outcome.text, request.eventIds.length, request.eventIds)) return { outcome, tries };
        const retryAfterMs = parseRetryAfter(outcome.header('retry-after'));
        if (retryAfterMs !== undefined && retryAfterMs > maxRetryAfterMs) return { outcome, tries };
        waitMs = retryAfterMs ?? 0;
      }
      waitMs = Math.max(backoffMs(tries, baseDelayMs, maxDelayMs), waitMs);
      if (this.o.logger?.isDebugEnabled()) {
        this.o.logger.debug('delivery retry', {
          ...request.logFields(),
          attempt: request.attempt(tries + 1),
          status: outcome.status,
          error: describe(outcome),
        });
      }
      if (!(await this.pause(waitMs))) return { outcome, tries };
    }
  }

  /** One try, said at debug: the outcome of the whole send is the dispatcher's line, one per state change. */
  private async try(request: RequestInFlight, tries: number): Promise<TryOutcome> {
    const headers = request.headers();
    const startedAt = performance.now();
    const outcome = await this.o.post(request, headers, this.aborter.signal);
    // No answer: the target's TLS files are read again before the next try (a rotated CA may be there).
    if (outcome.status === undefined) request.first.target.tls?.recheck();
    const { logger } = this.o;
    if (logger?.isDebugEnabled()) {
      const failed = outcome.status === undefined || outcome.status >= 300;
      logger.debug(failed ? 'delivery attempt failed' : 'delivery attempt', {
        ...request.logFields(),
        attempt: request.attempt(tries),
        status: outcome.status,
        durationMs: Math.round((performance.now() - startedAt) * 10) / 10,
        ...(failed ? { error: describe(outcome) } : {}),
      });
    }
    return outcome;
  }

  /** Waits `ms`; false when the transport closed meanwhile. */
  private pause(ms: number): Promise<boolean> {
    const { signal } = this.aborter;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve(!signal.aborted);
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
    });
  }
}

function describe(outcome: TryOutcome): string {
  return outcome.status === undefined ? outcome.error : describeAnswer(outcome.status, outcome.text);
}

/** A result whose answer was cut at the cap says so, rather than show an empty answer. */
function overCap(result: HttpResult, outcome: TryOutcome, request: RequestInFlight): HttpResult {
  if (outcome.status === undefined || outcome.text !== undefined || result.error === undefined) return result;
  return { ...result, error: `HTTP ${outcome.status}: answer over ${request.cap} bytes, not read` };
}
