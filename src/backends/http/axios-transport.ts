import http from 'node:http';
import https from 'node:https';
import axios, { AxiosError, type AxiosInstance } from 'axios';
import { headerReader } from './answer.js';
import type { RequestInFlight } from './request.js';
import { type HttpClientOptions, RetryInPlace, type TryOutcome } from './retry-in-place.js';
import { TlsAgents } from './tls-agents.js';

/**
 * HTTP push over axios: POST the structured CloudEvent (or a CloudEvents batch) over keep-alive
 * agents, no redirects, each try bounded by `timeoutMs`; signing, retries in place, answers and
 * logs are RetryInPlace's, as for every HTTP client.
 */
export class HttpTransport extends RetryInPlace {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly tlsAgents: TlsAgents<https.Agent>;
  private readonly client: AxiosInstance;

  constructor(options: HttpClientOptions) {
    super({ retry: options.retry, logger: options.logger, post: (request, headers, signal) => this.post(request, headers, signal) });
    const maxSockets = 64; // per target host
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets });
    this.tlsAgents = new TlsAgents({
      build: (tls) => new https.Agent({ keepAlive: true, maxSockets, ...tls }),
      destroy: (agent) => agent.destroy(),
      graceMs: options.timeoutMs,
    });
    this.client = axios.create({
      httpAgent: this.httpAgent,
      httpsAgent: this.httpsAgent,
      timeout: options.timeoutMs,
      maxRedirects: 0,
      responseType: 'text',
      validateStatus: null, // every answer is read, whatever its status
      transitional: { clarifyTimeoutError: true },
    });
  }

  override async close(): Promise<void> {
    await super.close();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    await this.tlsAgents.close();
  }

  private async post(request: RequestInFlight, headers: Record<string, string>, signal: AbortSignal): Promise<TryOutcome> {
    try {
      const { target } = request.first;
      const httpsAgent = this.tlsAgents.for(target);
      const response = await this.client.post(target.url, request.body, {
        headers,
        signal,
        maxContentLength: request.cap,
        ...(httpsAgent ? { httpsAgent } : {}),
      });
      return { status: response.status, header: headerReader(response.headers), text: typeof response.data === 'string' ? response.data : undefined };
    } catch (error) {
      if (!(error instanceof AxiosError)) return { error: (error as Error)?.message ?? String(error) };
      // An answer over `maxContentLength` fails with its status known only to the request: the status alone decides.
      const status = (error.request as { res?: { statusCode?: number } } | undefined)?.res?.statusCode;
      if (status !== undefined) return { status, header: headerReader(undefined), text: undefined };
      return { error: error.code ?? error.message };
    }
  }
}
