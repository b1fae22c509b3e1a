import type * as UndiciModule from 'undici';
import { loadPeer } from '../../optional-peer.js';
import { type HeaderOf, headerReader } from './answer.js';
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
  /** The tries waiting for an answer: close() ends them. */
  private readonly inFlight = new Set<AnswerReader>();

  constructor(private readonly options: UndiciTransportOptions) {
    super({ retry: options.retry, logger: options.logger, post: (request, headers) => this.post(request, headers) });
    const { Agent } = loadUndici();
    const agentFor = (tls = {}): UndiciModule.Agent => new Agent({ connections: options.connections ?? 64, connect: { timeout: options.timeoutMs, ...tls } });
    this.agent = agentFor();
    this.tlsAgents = new TlsAgents({ build: agentFor, destroy: (agent) => agent.destroy(), graceMs: options.timeoutMs });
  }

  override async close(): Promise<void> {
    await super.close();
    for (const answer of this.inFlight) answer.abort('ERR_CANCELED');
    await this.tlsAgents.close();
    await this.agent.destroy();
  }

  /**
   * One POST, bounded by `timeoutMs` and aborted by close(). Through undici's dispatch API: the
   * answer arrives in callbacks, with no body stream, abort signal or async iterator per request
   * (at everyday rates each event is a request of its own: docs/benchmarks.md, "CPU budgets").
   */
  private post(request: RequestInFlight, headers: Record<string, string>): Promise<TryOutcome> {
    const { target } = request.first;
    const { origin, path } = this.endpoint(target.url);
    const agent = this.tlsAgents.for(target) ?? this.agent;
    return new Promise((resolve) => {
      const answer = new AnswerReader(request.cap, this.options.timeoutMs, (outcome) => {
        this.inFlight.delete(answer);
        resolve(outcome);
      });
      this.inFlight.add(answer);
      agent.dispatch({ origin, path, method: 'POST', headers, body: request.body }, answer);
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
 * One try's answer as undici's (legacy) dispatch handler hands it over: the status, the raw
 * headers (read only when a result asks for one), the body up to `cap` bytes. Over `cap` the body
 * is not buffered: the status alone decides, as with axios's `maxContentLength`. Settles once: with
 * the answer, a network error's code, or ETIMEDOUT after `timeoutMs`.
 */
class AnswerReader implements UndiciModule.Dispatcher.DispatchHandler {
  private status = 0;
  private rawHeaders: ReadonlyArray<Buffer | string> = [];
  private chunks: Buffer[] = [];
  private size = 0;
  private abortRequest: ((reason?: Error) => void) | undefined;
  private settled = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly cap: number,
    timeoutMs: number,
    private readonly done: (outcome: TryOutcome) => void,
  ) {
    this.timer = setTimeout(() => this.abort('ETIMEDOUT'), timeoutMs);
  }

  /** Ends the try now with `error` (a timeout, the transport closing), and the request with it. */
  abort(error: string): void {
    this.settle({ error });
    this.abortRequest?.(new Error(error));
  }

  onConnect(abort: (reason?: Error) => void): void {
    if (this.settled) abort(new Error('aborted'));
    else this.abortRequest = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Array<Buffer | string>): boolean {
    this.status = statusCode;
    this.rawHeaders = rawHeaders;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.settled) return false;
    this.size += chunk.length;
    if (this.size <= this.cap) {
      this.chunks.push(chunk);
      return true;
    }
    this.settle({ status: this.status, header: rawHeaderReader(this.rawHeaders), text: undefined });
    this.abortRequest?.(new Error('answer over its cap'));
    return false;
  }

  onComplete(): void {
    const { chunks } = this;
    const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
    this.settle({ status: this.status, header: rawHeaderReader(this.rawHeaders), text });
  }

  onError(error: Error): void {
    this.settle({ error: describeError(error) });
  }

  private settle(outcome: TryOutcome): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.chunks = [];
    this.done(outcome);
  }
}

/** A header of the raw list (name, value, name, value, …), case-insensitive; a header given twice reads as absent (as headerReader). */
function rawHeaderReader(raw: ReadonlyArray<Buffer | string>): HeaderOf {
  let read: HeaderOf | undefined;
  return (name) => {
    if (read === undefined) {
      const headers = Object.create(null) as Record<string, string | string[]>; // names come from the target
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const key = raw[i]!.toString().toLowerCase();
        const value = raw[i + 1]!.toString();
        const known = headers[key];
        headers[key] = known === undefined ? value : ([] as string[]).concat(known, value);
      }
      read = headerReader(headers);
    }
    return read(name);
  };
}

/** A network error's code (ECONNREFUSED, UND_ERR_SOCKET, …), as the axios transport reports it. */
function describeError(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string') return code;
  return typeof message === 'string' ? message : String(error);
}
