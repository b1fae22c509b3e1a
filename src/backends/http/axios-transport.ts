import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import axios, { AxiosError, type AxiosInstance, type AxiosResponse, type InternalAxiosRequestConfig } from 'axios';
import axiosRetry from 'axios-retry';
import type { Logger } from 'winston';
import type { RetryOptions } from '../../config.js';
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

export interface HttpTransportOptions {
  logger: Logger;
  timeoutMs: number;
  retry: RetryOptions;
  /** Sockets per target host. @default 64 */
  maxSockets?: number;
}

/**
 * Per-request state, shared by every try. A class instance, not a plain object: axios deep-copies
 * plain objects in a request's config, so the interceptors would count tries on a copy.
 */
class TryState implements RequestInFlight {
  startedAt = 0;
  tries = 0;
  /** The current try's `webhook-id`: the event's id, or a fresh `batch_<uuid>` per try of a batch. */
  webhookId = '';
  /**
   * @param first the delivery (or a batch's first: the target is the same for all)
   * @param eventIds the ids of the events in the request, in order
   * @param body the exact bytes signed and sent
   */
  constructor(
    readonly first: Delivery,
    readonly eventIds: readonly string[],
    readonly body: string,
    readonly batch: boolean,
  ) {}
}

declare module 'axios' {
  interface AxiosRequestConfig {
    eventsDelivery?: TryState;
  }
}

/**
 * HTTP push: POST the structured CloudEvent (or a CloudEvents batch), signed per try (a fresh
 * `webhook-timestamp` on every retry), over keep-alive agents, with axios-retry configured for
 * POST: network errors, timeouts, 408, 429 and 5xx are retried with jittered exponential backoff,
 * `Retry-After` honoured. The answer is read by http-answer.ts, as for every HTTP client.
 */
export class HttpTransport implements Transport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly client: AxiosInstance;
  /** Aborts what is still in flight (including a retry's wait) when the transport closes. */
  private readonly aborter = new AbortController();

  constructor(private readonly options: HttpTransportOptions) {
    const maxSockets = options.maxSockets ?? 64;
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets });
    setMaxListeners(0, this.aborter.signal); // one listener per delivery in flight
    this.client = axios.create({
      httpAgent: this.httpAgent,
      httpsAgent: this.httpsAgent,
      timeout: options.timeoutMs,
      maxRedirects: 0,
      maxContentLength: ANSWER_CAP_BYTES,
      responseType: 'text',
      transitional: { clarifyTimeoutError: true },
    });
    this.client.interceptors.request.use((config) => this.signTry(config));
    this.client.interceptors.response.use(
      (response) => {
        this.logTry(response.config, response.status);
        return response;
      },
      (error: unknown) => {
        if (error instanceof AxiosError && error.config) this.logTry(error.config, statusOf(error), error);
        return Promise.reject(error);
      },
    );
    const { retries, baseDelayMs, maxDelayMs, maxRetryAfterMs } = options.retry;
    axiosRetry(this.client, {
      retries,
      shouldResetTimeout: true,
      retryCondition: (error) => {
        if (this.aborter.signal.aborted) return false;
        // A batch answered per event is settled as it is: its delivered events must not go again.
        const state = error.config?.eventsDelivery;
        if (state?.batch && readBatchResults(bodyOf(error), state.eventIds.length, state.eventIds)) return false;
        const status = statusOf(error);
        if (status !== undefined && !isRetryableStatus(status)) return false;
        const wait = parseRetryAfter(headerOf(error, 'retry-after'));
        return wait === undefined || wait <= maxRetryAfterMs;
      },
      retryDelay: (retry, error) =>
        Math.max(backoffMs(retry, baseDelayMs, maxDelayMs), parseRetryAfter(headerOf(error, 'retry-after')) ?? 0),
      onRetry: (retry, error, config) => {
        const state = config.eventsDelivery;
        if (!state || !this.options.logger.isDebugEnabled()) return;
        this.options.logger.debug('delivery retry', {
          ...logFields(state),
          attempt: attemptOf(state, retry + 1),
          status: error.response?.status,
          error: describe(error),
        });
      },
    });
  }

  async send(delivery: Delivery): Promise<DeliveryResult> {
    const state = new TryState(delivery, [delivery.eventId], delivery.body, false);
    try {
      const response = await this.client.post(delivery.target.url, delivery.body, {
        headers: traceHeaders(delivery, { 'content-type': STRUCTURED_CONTENT_TYPE }),
        signal: this.aborter.signal,
        eventsDelivery: state,
      });
      return singleResult(response.status, headersOf(response), textOf(response.data), state.tries);
    } catch (error) {
      return toResult(error, state.tries);
    }
  }

  /**
   * One CloudEvents batch: the stored bodies joined into a JSON array (no re-serialisation),
   * signed once per try. No trace headers: the request carries many events' contexts.
   */
  async sendBatch(deliveries: readonly Delivery[]): Promise<DeliveryResult[]> {
    const [first] = deliveries;
    if (first === undefined) return [];
    const count = deliveries.length;
    const state = new TryState(first, eventIdsOf(deliveries), batchBody(deliveries), true);
    try {
      const response = await this.client.post(first.target.url, state.body, {
        headers: { 'content-type': BATCH_CONTENT_TYPE },
        signal: this.aborter.signal,
        eventsDelivery: state,
        maxContentLength: answerCapBytes(count),
      });
      return batchResults(response.status, headersOf(response), textOf(response.data), count, state.tries, state.eventIds);
    } catch (error) {
      return toBatchResults(error, state.tries, state.eventIds);
    }
  }

  async close(): Promise<void> {
    this.aborter.abort();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private signTry(config: InternalAxiosRequestConfig): InternalAxiosRequestConfig {
    const state = config.eventsDelivery;
    if (!state) return config;
    state.webhookId = state.batch ? batchWebhookId() : state.first.eventId;
    config.headers.set(webhookHeaders(state.first.target.keys, state.webhookId, state.body));
    state.startedAt = performance.now();
    state.tries += 1;
    return config;
  }

  /** Every try, at debug: the outcome of the whole send is the dispatcher's line, one per state change. */
  private logTry(config: InternalAxiosRequestConfig, status: number | undefined, error?: AxiosError): void {
    const state = config.eventsDelivery;
    if (!state || !this.options.logger.isDebugEnabled()) return;
    this.options.logger.debug(error === undefined ? 'delivery attempt' : 'delivery attempt failed', {
      ...logFields(state),
      attempt: attemptOf(state, state.tries),
      status,
      durationMs: Math.round((performance.now() - state.startedAt) * 10) / 10,
      ...(error ? { error: describe(error) } : {}),
    });
  }
}

function textOf(data: unknown): string | undefined {
  return typeof data === 'string' ? data : undefined;
}

/** A reader of an answer's headers, for http-answer.ts. */
function headersOf(response: AxiosResponse | undefined): HeaderOf {
  return (name) => {
    const value: unknown = response?.headers[name];
    return typeof value === 'string' ? value : undefined;
  };
}

function headerOf(error: AxiosError, name: string): string | undefined {
  return headersOf(error.response)(name);
}

/**
 * The target's status, also when axios has no response to give: an answer whose body is over
 * `maxContentLength` (an app's HTML page, say) fails with the status known only to the request.
 */
function statusOf(error: AxiosError): number | undefined {
  return error.response?.status ?? (error.request as { res?: { statusCode?: number } } | undefined)?.res?.statusCode;
}

function bodyOf(error: AxiosError): string | undefined {
  return textOf(error.response?.data);
}

function describe(error: AxiosError): string {
  const status = statusOf(error);
  if (status === undefined) return error.code ?? error.message;
  return error.response ? describeAnswer(status, bodyOf(error)) : `HTTP ${status}: ${error.message}`;
}

function toResult(error: unknown, attempts: number): DeliveryResult {
  if (!(error instanceof AxiosError)) return networkResult((error as Error)?.message ?? String(error), attempts);
  const status = statusOf(error);
  if (status === undefined) return networkResult(describe(error), attempts);
  if (!error.response) {
    // The answer's body was over the cap: the status alone decides (a 2xx: taken, and no receipt).
    const result = singleResult(status, headersOf(error.response), undefined, attempts);
    return result.error === undefined ? result : { ...result, error: describe(error) };
  }
  return singleResult(status, headersOf(error.response), bodyOf(error), attempts);
}

function toBatchResults(error: unknown, attempts: number, ids: readonly string[]): DeliveryResult[] {
  const count = ids.length;
  const status = error instanceof AxiosError ? statusOf(error) : undefined;
  if (!(error instanceof AxiosError) || status === undefined) {
    const result = toResult(error, attempts);
    return Array.from({ length: count }, () => ({ ...result }));
  }
  if (error.response) return batchResults(status, headersOf(error.response), bodyOf(error), count, attempts, ids);
  // The answer's body was over the cap: the status alone decides, and the error says why.
  return batchResults(status, headersOf(error.response), undefined, count, attempts).map((result) =>
    result.error === undefined ? result : { ...result, error: describe(error) },
  );
}
