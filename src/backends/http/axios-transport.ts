import http from 'node:http';
import https from 'node:https';
import axios, { AxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import type { Logger } from 'winston';
import type { RetryOptions } from '../../config.js';
import type { HeaderOf } from './answer.js';
import type { RequestInFlight } from './request.js';
import { RetryInPlace, type TryOutcome } from './retry-in-place.js';
import type { Delivery, DeliveryResult, Transport } from '../../send/transport.js';

export interface HttpTransportOptions {
  logger: Logger;
  timeoutMs: number;
  retry: RetryOptions;
  /** Sockets per target host. @default 64 */
  maxSockets?: number;
}

/**
 * HTTP push over axios: POST the structured CloudEvent (or a CloudEvents batch) over keep-alive
 * agents, no redirects, each try bounded by `timeoutMs`; signing, retries in place, answers and
 * logs are RetryInPlace's, as for every HTTP client.
 */
export class HttpTransport implements Transport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly client: AxiosInstance;
  private readonly sender: RetryInPlace;

  constructor(options: HttpTransportOptions) {
    const maxSockets = options.maxSockets ?? 64;
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets });
    this.client = axios.create({
      httpAgent: this.httpAgent,
      httpsAgent: this.httpsAgent,
      timeout: options.timeoutMs,
      maxRedirects: 0,
      responseType: 'text',
      validateStatus: null, // every answer is read, whatever its status
      transitional: { clarifyTimeoutError: true },
    });
    this.sender = new RetryInPlace({ retry: options.retry, logger: options.logger, post: (request, headers, signal) => this.post(request, headers, signal) });
  }

  send(delivery: Delivery): Promise<DeliveryResult> {
    return this.sender.send(delivery);
  }

  sendBatch(deliveries: readonly Delivery[]): Promise<DeliveryResult[]> {
    return this.sender.sendBatch(deliveries);
  }

  async close(): Promise<void> {
    this.sender.close();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private async post(request: RequestInFlight, headers: Record<string, string>, signal: AbortSignal): Promise<TryOutcome> {
    try {
      const response = await this.client.post(request.first.target.url, request.body, { headers, signal, maxContentLength: request.cap });
      return { status: response.status, header: headersOf(response), text: typeof response.data === 'string' ? response.data : undefined };
    } catch (error) {
      if (!(error instanceof AxiosError)) return { error: (error as Error)?.message ?? String(error) };
      // An answer over `maxContentLength` fails with its status known only to the request: the status alone decides.
      const status = (error.request as { res?: { statusCode?: number } } | undefined)?.res?.statusCode;
      if (status !== undefined) return { status, header: headersOf(undefined), text: undefined };
      return { error: error.code ?? error.message };
    }
  }
}

/** A reader of an answer's headers, for answer.ts. */
function headersOf(response: AxiosResponse | undefined): HeaderOf {
  return (name) => {
    const value: unknown = response?.headers[name];
    return typeof value === 'string' ? value : undefined;
  };
}
