import { setMaxListeners } from 'node:events';
import type { Readable } from 'node:stream';
import type * as UndiciModule from 'undici';
import type { Logger } from 'winston';
import type { RetryOptions } from '../../config.js';
import { ConfigError } from '../../errors/index.js';
import { BATCH_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE } from '../../protocol/cloudevents.js';
import { backoffMs, isRetryableStatus, parseRetryAfter } from '../../send/retry-policy.js';
import { batchResults, describeAnswer, type HeaderOf, networkResult, readBatchResults, singleResult } from './answer.js';
import {
  ANSWER_CAP_BYTES,
  answerCapBytes,
  attemptOf,
  batchBody,
  batchWebhookId,
  eventIdsOf,
  logFields,
  type RequestInFlight,
  traceHeaders,
  webhookHeaders,
} from './request.js';
import type { Delivery, DeliveryResult, Transport } from '../../send/transport.js';

/** Loads undici, the optional peer dependency, only when `httpClient: 'undici'` is chosen. */
function loadUndici(): typeof UndiciModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('undici') as typeof UndiciModule;
  } catch (cause) {
    throw new ConfigError(
      "httpClient is 'undici' (EVENTS_HTTP_CLIENT), but the optional peer dependency undici is not installed: run npm install undici@^7",
      { variable: 'EVENTS_HTTP_CLIENT', cause },
    );
  }
}

export interface UndiciTransportOptions {
  logger: Logger;
  timeoutMs: number;
  retry: RetryOptions;
  /** Keep-alive connections per target origin (the dispatcher's concurrency fits). @default 64 */
  connections?: number;
}

/** What one try came back with: the target's answer, or why there was none. */
type TryOutcome =
  | { status: number; header: HeaderOf; text: string | undefined; cap: number }
  | { status?: undefined; error: string };

/** A request's state across its tries. */
class PendingRequest implements RequestInFlight {
  webhookId = '';
  constructor(
    readonly first: Delivery,
    readonly eventIds: readonly string[],
    readonly body: string,
    readonly batch: boolean,
  ) {}
}

/**
 * HTTP push over undici: the same requests, answers and retry policy as HttpTransport (axios),
 * with a fraction of its CPU per request. One keep-alive pool per target origin, no redirects,
 * retries in place by hand: network errors, timeouts, 408, 429 and 5xx, with jittered backoff
 * and a `Retry-After` up to `maxRetryAfterMs` waited out.
 */
export class UndiciTransport implements Transport {
  private readonly agent: UndiciModule.Agent;
  /** Aborts what is still in flight (including a retry's wait) when the transport closes. */
  private readonly aborter = new AbortController();
  /** Origin and path of each target URL, parsed once. */
  private readonly endpoints = new Map<string, { origin: string; path: string }>();

  constructor(private readonly options: UndiciTransportOptions) {
    const { Agent } = loadUndici();
    this.agent = new Agent({ connections: options.connections ?? 64, connect: { timeout: options.timeoutMs } });
    setMaxListeners(0, this.aborter.signal); // one listener per request in flight
  }

  async send(delivery: Delivery): Promise<DeliveryResult> {
    const request = new PendingRequest(delivery, [delivery.eventId], delivery.body, false);
    const { outcome, tries } = await this.withRetries(request, () =>
      traceHeaders(delivery, { 'content-type': STRUCTURED_CONTENT_TYPE }),
    );
    if (outcome.status === undefined) return networkResult(outcome.error, tries);
    return overCap(singleResult(outcome.status, outcome.header, outcome.text, tries), outcome);
  }

  /**
   * One CloudEvents batch: the stored bodies joined into a JSON array (no re-serialisation),
   * signed once per try. No trace headers: the request carries many events' contexts.
   */
  async sendBatch(deliveries: readonly Delivery[]): Promise<DeliveryResult[]> {
    const [first] = deliveries;
    if (first === undefined) return [];
    const count = deliveries.length;
    const request = new PendingRequest(first, eventIdsOf(deliveries), batchBody(deliveries), true);
    const { outcome, tries } = await this.withRetries(request, () => ({ 'content-type': BATCH_CONTENT_TYPE }));
    if (outcome.status === undefined) {
      const result = networkResult(outcome.error, tries);
      return Array.from({ length: count }, () => ({ ...result }));
    }
    return batchResults(outcome.status, outcome.header, outcome.text, count, tries, request.eventIds).map((result) => overCap(result, outcome));
  }

  async close(): Promise<void> {
    this.aborter.abort();
    await this.agent.destroy();
  }

  /** Tries `request` until an answer is final for it, retries run out, or the transport closes. */
  private async withRetries(
    request: PendingRequest,
    headers: () => Record<string, string>,
  ): Promise<{ outcome: TryOutcome; tries: number }> {
    const { retries, baseDelayMs, maxDelayMs, maxRetryAfterMs } = this.options.retry;
    for (let tries = 1; ; tries += 1) {
      const outcome = await this.try(request, headers(), tries);
      if (tries > retries || this.aborter.signal.aborted) return { outcome, tries };
      let waitMs = 0;
      if (outcome.status !== undefined) {
        if (!isRetryableStatus(outcome.status)) return { outcome, tries };
        // A batch answered per event is settled as it is: its delivered events must not go again.
        if (request.batch && readBatchResults(outcome.text, request.eventIds.length, request.eventIds)) return { outcome, tries };
        const retryAfterMs = parseRetryAfter(outcome.header('retry-after'));
        if (retryAfterMs !== undefined && retryAfterMs > maxRetryAfterMs) return { outcome, tries };
        waitMs = retryAfterMs ?? 0;
      }
      waitMs = Math.max(backoffMs(tries, baseDelayMs, maxDelayMs), waitMs);
      if (this.options.logger.isDebugEnabled()) {
        this.options.logger.debug('delivery retry', {
          ...logFields(request),
          attempt: attemptOf(request, tries + 1),
          status: outcome.status,
          error: outcome.status === undefined ? outcome.error : describeAnswer(outcome.status, outcome.text),
        });
      }
      if (!(await this.pause(waitMs))) return { outcome, tries };
    }
  }

  /** One POST, signed now, bounded by `timeoutMs` and aborted by close(). */
  private async try(request: PendingRequest, headers: Record<string, string>, tries: number): Promise<TryOutcome> {
    const { origin, path } = this.endpoint(request.first.target.url);
    request.webhookId = request.batch ? batchWebhookId() : request.first.eventId;
    Object.assign(headers, webhookHeaders(request.first.target.keys, request.webhookId, request.body));
    const startedAt = performance.now();
    const controller = new AbortController();
    const abort = (): void => controller.abort();
    this.aborter.signal.addEventListener('abort', abort);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.options.timeoutMs);
    let outcome: TryOutcome;
    try {
      const response = await this.agent.request({ origin, path, method: 'POST', headers, body: request.body, signal: controller.signal });
      const cap = request.batch ? answerCapBytes(request.eventIds.length) : ANSWER_CAP_BYTES;
      const text = await readCapped(response.body, cap);
      outcome = { status: response.statusCode, header: headerReader(response.headers), text, cap };
    } catch (error) {
      outcome = { error: timedOut ? 'ETIMEDOUT' : describeError(error) };
    } finally {
      clearTimeout(timer);
      this.aborter.signal.removeEventListener('abort', abort);
    }
    if (this.options.logger.isDebugEnabled()) {
      const failed = outcome.status === undefined || outcome.status >= 300;
      this.options.logger.debug(failed ? 'delivery attempt failed' : 'delivery attempt', {
        ...logFields(request),
        attempt: attemptOf(request, tries),
        status: outcome.status,
        durationMs: Math.round((performance.now() - startedAt) * 10) / 10,
        ...(outcome.status === undefined ? { error: outcome.error } : failed ? { error: describeAnswer(outcome.status, outcome.text) } : {}),
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

  private endpoint(url: string): { origin: string; path: string } {
    let endpoint = this.endpoints.get(url);
    if (endpoint === undefined) {
      const parsed = new URL(url);
      endpoint = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
      this.endpoints.set(url, endpoint);
    }
    return endpoint;
  }
}

/**
 * The answer's body as text, or undefined when it is over `cap` (then not buffered: the status
 * alone decides, as with axios's `maxContentLength`).
 */
async function readCapped(body: Readable, cap: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > cap) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8');
}

/** A result whose answer was cut at the cap says so, rather than show an empty answer. */
function overCap(result: DeliveryResult, outcome: TryOutcome): DeliveryResult {
  if (outcome.status === undefined || outcome.text !== undefined || result.error === undefined) return result;
  return { ...result, error: `HTTP ${outcome.status}: answer over ${outcome.cap} bytes, not read` };
}

function headerReader(headers: Record<string, string | string[] | undefined>): HeaderOf {
  return (name) => {
    const value = headers[name];
    return typeof value === 'string' ? value : undefined;
  };
}

/** A network error's code (ECONNREFUSED, UND_ERR_SOCKET, …), as the axios transport reports it. */
function describeError(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string') return code;
  return typeof message === 'string' ? message : String(error);
}
