import type { Readable } from 'node:stream';
import type * as UndiciModule from 'undici';
import { loadPeer } from '../../optional-peer.js';
import { headerReader } from './answer.js';
import type { RequestInFlight } from './request.js';
import { type HttpClientOptions, RetryInPlace, type TryOutcome } from './retry-in-place.js';
import { TlsAgents } from './tls-agents.js';

/** Loads undici, the optional peer dependency, only when `httpClient: 'undici'` is chosen. */
function loadUndici(): typeof UndiciModule {
  const message = "httpClient is 'undici' (EVENTS_HTTP_CLIENT), but the optional peer dependency undici is not installed: run npm install undici@^7";
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return loadPeer(() => require('undici'), 'EVENTS_HTTP_CLIENT', message);
}

export interface UndiciTransportOptions extends HttpClientOptions {
  /** Keep-alive connections per target origin (the dispatcher's concurrency fits). @default 64 */
  connections?: number;
}

/**
 * HTTP push over undici: the same requests, answers, retries and logs as HttpTransport (axios),
 * both through RetryInPlace, with a fraction of its CPU per request. One keep-alive pool per
 * target origin, no redirects.
 */
export class UndiciTransport extends RetryInPlace {
  private readonly agent: UndiciModule.Agent;
  private readonly tlsAgents: TlsAgents<UndiciModule.Agent>;
  /** Origin and path of each target URL, parsed once. */
  private readonly endpoints = new Map<string, { origin: string; path: string }>();

  constructor(private readonly options: UndiciTransportOptions) {
    super({ retry: options.retry, logger: options.logger, post: (request, headers, signal) => this.post(request, headers, signal) });
    const { Agent } = loadUndici();
    const agentFor = (tls = {}): UndiciModule.Agent => new Agent({ connections: options.connections ?? 64, connect: { timeout: options.timeoutMs, ...tls } });
    this.agent = agentFor();
    this.tlsAgents = new TlsAgents({ build: agentFor, destroy: (agent) => agent.destroy(), graceMs: options.timeoutMs });
  }

  override async close(): Promise<void> {
    await super.close();
    await this.tlsAgents.close();
    await this.agent.destroy();
  }

  /** One POST, bounded by `timeoutMs` and aborted by close(). */
  private async post(request: RequestInFlight, headers: Record<string, string>, closed: AbortSignal): Promise<TryOutcome> {
    const { target } = request.first;
    const { origin, path } = this.endpoint(target.url);
    const agent = this.tlsAgents.for(target) ?? this.agent;
    const controller = new AbortController();
    const abort = (): void => controller.abort();
    closed.addEventListener('abort', abort);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.options.timeoutMs);
    try {
      const response = await agent.request({ origin, path, method: 'POST', headers, body: request.body, signal: controller.signal });
      const text = await readCapped(response.body, request.cap);
      return { status: response.statusCode, header: headerReader(response.headers), text };
    } catch (error) {
      return { error: timedOut ? 'ETIMEDOUT' : describeError(error) };
    } finally {
      clearTimeout(timer);
      closed.removeEventListener('abort', abort);
    }
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

/** A network error's code (ECONNREFUSED, UND_ERR_SOCKET, …), as the axios transport reports it. */
function describeError(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string') return code;
  return typeof message === 'string' ? message : String(error);
}
