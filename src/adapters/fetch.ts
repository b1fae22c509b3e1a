import type { BodyReadFailure, Receiver } from '../receive/receiver.js';
import { answerRoute, type BodyReader, encodeResponse, type IntakeResponse, notServed, type ReadBodyOptions, receiveBody } from './intake.js';
import type { RouteResponse, RouteTable } from './routes.js';

/** A web-standard handler: Hono, Bun.serve, Deno.serve, Next.js route handlers, edge runtimes, or no server at all. */
export type FetchHandler = (request: Request) => Promise<Response>;

/**
 * Answers `POST <path>` and the route table's routes below it, as the node adapters do; any other
 * request gets 404 (405 for another method on the events path). `path` is matched against the
 * request URL's whole path.
 */
export function createFetchHandler(receiver: Receiver, path: string, limit: number, routes: RouteTable): FetchHandler {
  return async function eventsFetchHandler(request) {
    const url = new URL(request.url);
    const headers = Object.fromEntries(request.headers);
    const read: BodyReader = (options) => readStream(request.body, options);
    const routed = answerRoute(routes, receiver, {
      method: request.method,
      path: url.pathname,
      base: path,
      fullPath: url.pathname,
      query: url.searchParams,
      headers,
      secure: url.protocol === 'https:',
      remoteAddress: undefined, // a web Request says nothing of its peer's address
      read: request.bodyUsed ? undefined : read,
    });
    if (routed) return responseOf(request, await routed);
    if (request.method !== 'POST' || url.pathname !== path) return responseOf(request, notServed(path, url.pathname));
    const source = { consumed: request.bodyUsed, middleware: 'fetchHandler()', hint: 'hand it request.clone() when the body must be read first' };
    return responseOf(request, await receiveBody(receiver, headers, limit, read, source));
  };
}

/** The answer as a `Response`; `connection: close` when the body was left unread (runtimes that honour it close). */
function responseOf(request: Request, response: RouteResponse & Pick<IntakeResponse, 'closeConnection'>): Response {
  const { body, headers } = encodeResponse(response);
  if (response.closeConnection) headers.connection = 'close';
  return new Response(request.method === 'HEAD' ? null : body, { status: response.status, headers });
}

/** Reads a web stream's bytes under the limit, the deadlines and the budget claim; cancels it when it stops early. */
async function readStream(stream: ReadableStream<Uint8Array> | null, { limitBytes, timeoutMs, startTimeoutMs, claim }: ReadBodyOptions): Promise<Buffer | BodyReadFailure> {
  if (!stream) return Buffer.alloc(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  const timers: ReturnType<typeof setTimeout>[] = [];
  const stopped = new Promise<BodyReadFailure>((resolve) => {
    timers.push(setTimeout(() => resolve('timeout'), timeoutMs));
    const start = () => {
      if (received === 0) resolve('idle');
      else if (!claim.markSlow()) resolve('busy');
    };
    timers.push(setTimeout(start, startTimeoutMs));
  });
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), stopped]);
      if (typeof next === 'string') return next;
      if (next.done) return Buffer.concat(chunks, received);
      received += next.value.byteLength;
      if (received > limitBytes) return 'too-large';
      if (!claim.growTo(received)) return 'busy';
      chunks.push(next.value);
    }
  } catch {
    return 'aborted';
  } finally {
    for (const timer of timers) clearTimeout(timer);
    reader.cancel().catch(() => undefined);
  }
}
