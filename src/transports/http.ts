import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import axios, { AxiosError, type AxiosInstance, type InternalAxiosRequestConfig } from 'axios';
import axiosRetry from 'axios-retry';
import type { Logger } from 'winston';
import type { RetryOptions } from '../config.js';
import { STRUCTURED_CONTENT_TYPE } from '../protocol/cloudevents.js';
import { signatureHeader } from '../protocol/signature.js';
import { backoffMs, isFinalStatus, isRetryableStatus, isTargetDownStatus, parseRetryAfter } from '../send/retry-policy.js';
import type { Delivery, DeliveryResult, Transport } from './transport.js';

export interface HttpTransportOptions {
  logger: Logger;
  timeoutMs: number;
  retry: RetryOptions;
  /** Sockets per target host. @default 64 */
  maxSockets?: number;
}

/**
 * Per-send state, shared by every try. A class instance, not a plain object: axios deep-copies
 * plain objects in a request's config, so the interceptors would count tries on a copy.
 */
class TryState {
  startedAt = 0;
  tries = 0;
  constructor(readonly delivery: Delivery) {}
}

declare module 'axios' {
  interface AxiosRequestConfig {
    eventsDelivery?: TryState;
  }
}

const RESPONSE_SNIPPET = 300;

/**
 * HTTP push: POST the structured CloudEvent, signed per try (a fresh `webhook-timestamp` on every
 * retry), over keep-alive agents, with axios-retry configured for POST: network errors,
 * timeouts, 408, 429 and 5xx are retried with jittered exponential backoff, `Retry-After` honoured.
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
      maxContentLength: 64 * 1024,
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
          ...fields(state.delivery),
          attempt: state.delivery.previousAttempts + retry + 1,
          status: error.response?.status,
          error: describe(error),
        });
      },
    });
  }

  async send(delivery: Delivery): Promise<DeliveryResult> {
    const state = new TryState(delivery);
    try {
      const response = await this.client.post(delivery.target.url, delivery.body, {
        headers: traceHeaders(delivery, { 'content-type': STRUCTURED_CONTENT_TYPE }),
        signal: this.aborter.signal,
        eventsDelivery: state,
      });
      return { outcome: 'delivered', status: response.status, attempts: state.tries, receipt: isReceipt(response.data) };
    } catch (error) {
      return toResult(error, state.tries);
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
    const { delivery } = state;
    const timestamp = Math.floor(Date.now() / 1000);
    config.headers.set('webhook-id', delivery.eventId);
    config.headers.set('webhook-timestamp', String(timestamp));
    config.headers.set('webhook-signature', signatureHeader(delivery.target.keys, delivery.eventId, timestamp, delivery.body));
    state.startedAt = performance.now();
    state.tries += 1;
    return config;
  }

  /** Every try, at debug: the outcome of the whole send is the dispatcher's line, one per state change. */
  private logTry(config: InternalAxiosRequestConfig, status: number | undefined, error?: AxiosError): void {
    const state = config.eventsDelivery;
    if (!state || !this.options.logger.isDebugEnabled()) return;
    this.options.logger.debug(error === undefined ? 'delivery attempt' : 'delivery attempt failed', {
      ...fields(state.delivery),
      attempt: state.delivery.previousAttempts + state.tries,
      status,
      durationMs: Math.round((performance.now() - state.startedAt) * 10) / 10,
      ...(error ? { error: describe(error) } : {}),
    });
  }
}

/** The W3C trace context headers of a delivery, when it has one. */
function traceHeaders(delivery: Delivery, headers: Record<string, string>): Record<string, string> {
  if (delivery.traceparent !== undefined) headers.traceparent = delivery.traceparent;
  if (delivery.tracestate !== undefined) headers.tracestate = delivery.tracestate;
  return headers;
}

function fields(delivery: Delivery): Record<string, unknown> {
  return { eventId: delivery.eventId, type: delivery.type, source: delivery.source, target: delivery.target.name };
}

function headerOf(error: AxiosError, name: string): string | undefined {
  const value: unknown = error.response?.headers?.[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * The target's status, also when axios has no response to give: an answer whose body is over
 * `maxContentLength` (an app's HTML page, say) fails with the status known only to the request.
 */
function statusOf(error: AxiosError): number | undefined {
  return error.response?.status ?? (error.request as { res?: { statusCode?: number } } | undefined)?.res?.statusCode;
}

function describe(error: AxiosError): string {
  if (!error.response) {
    const status = statusOf(error);
    return status === undefined ? (error.code ?? error.message) : `HTTP ${status}: ${error.message}`;
  }
  const body = typeof error.response.data === 'string' ? error.response.data.slice(0, RESPONSE_SNIPPET) : '';
  return `HTTP ${error.response.status}${body ? `: ${body}` : ''}`;
}

/** Our receiver's answer to a delivered event: `{ status: 'delivered' | 'duplicate', id }`. */
function isReceipt(data: unknown): boolean {
  const body = parseBody(data);
  return body !== undefined && (body.status === 'delivered' || body.status === 'duplicate') && typeof body.id === 'string';
}

/** Our receiver's answer when a handler threw NonRetryableError (with any 4xx status). */
function refusedByHandler(data: unknown): boolean {
  return parseBody(data)?.error === 'rejected_by_handler';
}

function parseBody(data: unknown): Record<string, unknown> | undefined {
  if (typeof data !== 'string' || !data.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(data);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function toResult(error: unknown, attempts: number): DeliveryResult {
  if (!(error instanceof AxiosError)) {
    return { outcome: 'retry', error: (error as Error)?.message ?? String(error), attempts, targetDown: true };
  }
  const status = statusOf(error);
  if (status === undefined) return { outcome: 'retry', error: describe(error), attempts, targetDown: true };
  // A 2xx whose body was too large to read: the target took the event, and its answer is no receipt.
  if (status >= 200 && status < 300) return { outcome: 'delivered', status, attempts, receipt: false };
  const retryAfterMs = parseRetryAfter(headerOf(error, 'retry-after'));
  // Dead-letter at once only a verdict on the event itself; any other 4xx (401, 403, 404, …) is
  // an operator's to fix and is redelivered from the outbox with the normal backoff.
  const final = isFinalStatus(status) || (status < 500 && refusedByHandler(error.response?.data));
  return {
    outcome: final ? 'refused' : 'retry',
    status,
    error: describe(error),
    attempts,
    targetDown: isTargetDownStatus(status),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}
