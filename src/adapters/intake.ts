import type { Headers } from '../protocol/cloudevents.js';
import type { BodyReadFailure, Receiver, ReceiverResponse } from '../receive/receiver.js';
import type { BudgetClaim } from '../receive/unverified-budget.js';
import { parseRouteJson, ROUTE_BODY_LIMIT_BYTES, RouteRefusal, type RouteRequest, type RouteResponse, routeErrorResponse, type RouteTable } from './routes.js';

const JSON_CONTENT_TYPE_HEADER = { 'content-type': 'application/json; charset=utf-8' } as const;

/**
 * What every adapter shares, whatever its request and response look like (a node stream, a
 * web-standard `Request`): the events intake under the receiver's limits, the route table's
 * routes, and the answers. Each adapter only says how to read its body and how to answer.
 */

export interface ReadBodyOptions {
  limitBytes: number;
  timeoutMs: number;
  /** No byte by then: 408. Still reading then: the claim is slow (it may hold only the slow share). */
  startTimeoutMs: number;
  /** Grown as bytes arrive. */
  claim: BudgetClaim;
}

/** Reads a request's bytes under a limit, a deadline and a budget claim; or says why reading stopped. */
export type BodyReader = (options: ReadBodyOptions) => Promise<Buffer | BodyReadFailure>;

/** Where the raw bytes are, when a framework's body parser ran first. */
export interface RawBodySource {
  /** Bytes a parser kept (express.raw, express.text, `req.rawBody`, koa's `ctx.request.rawBody`). */
  captured?: Buffer | undefined;
  /** The stream was read by someone else and the bytes were not kept. */
  consumed: boolean;
  /** Name of the middleware, for the configuration message. */
  middleware: string;
  /** How to keep the raw bytes with this framework's parser. */
  hint: string;
}

/** An answer, and whether the adapter should close the connection (the rest of the body was never read). */
export type IntakeResponse = ReceiverResponse & { closeConnection?: boolean };

/**
 * Reads the raw body (or takes the captured one) and hands it to the receiver. Before reading a
 * byte it refuses what the headers alone can refuse; while reading it holds a share of the
 * receiver's unauthenticated-bytes budget and the deadlines. Refusals made before the whole body
 * was read close the connection, so the rest of the body is never drained.
 */
export async function receiveBody(receiver: Receiver, headers: Headers, limit: number, read: BodyReader, source: RawBodySource): Promise<IntakeResponse> {
  if (source.captured) return receiver.handle({ headers, body: source.captured });
  // Headers first: an unsigned request is refused (401) before anyone is told about the middleware order.
  const refusal = receiver.preflight(headers);
  if (refusal) return { ...refusal, closeConnection: !source.consumed };
  if (source.consumed) return receiver.rawBodyUnavailable(source.middleware, source.hint);
  const claim = receiver.claimUnverified();
  try {
    const body = await read({ limitBytes: limit, ...receiver.bodyTimeouts, claim });
    if (!Buffer.isBuffer(body)) return { ...receiver.readFailed(body), closeConnection: true };
    return await receiver.handle({ headers, body }, claim.release);
  } finally {
    claim.release();
  }
}

/** A request on its way to one of the table's routes, as an adapter sees it. */
export interface AdapterRouteRequest extends Pick<RouteRequest, 'query' | 'headers' | 'secure' | 'remoteAddress'> {
  method: string;
  /** The request's path (relative to where the adapter is mounted). */
  path: string;
  /** The events path the routes hang below. */
  base: string;
  /** The request's path as the client sent it, before a framework took a mount prefix off it. */
  fullPath: string;
  /** Reads the body; undefined when a framework's parser consumed it (then `parsed` is what it produced). */
  read: BodyReader | undefined;
  parsed?: unknown;
}

/**
 * Runs the table's route for a request below the events path; undefined when the table has none
 * (the adapter passes the request on). A body is read only when the route asks for it, under
 * ROUTE_BODY_LIMIT_BYTES, the body deadlines and the receiver's budget of unauthenticated bytes.
 */
export function answerRoute(routes: RouteTable, receiver: Receiver, request: AdapterRouteRequest): Promise<RouteResponse> | undefined {
  const { method, base, fullPath, query, headers, secure, remoteAddress, read, parsed } = request;
  if (!request.path.startsWith(`${base}/`)) return undefined;
  const path = request.path.slice(base.length);
  const handler = routes.find(method, path);
  if (!handler) return undefined;
  const json = async (): Promise<unknown> => {
    // A framework's parser read it first: take its result through the same checks (no prototype keys, the limit).
    if (!read) return parsed === undefined ? undefined : parseRouteJson(Buffer.from(JSON.stringify(parsed) ?? '', 'utf8'));
    const claim = receiver.claimUnverified();
    try {
      const body = await read({ limitBytes: ROUTE_BODY_LIMIT_BYTES, ...receiver.bodyTimeouts, claim });
      if (!Buffer.isBuffer(body)) throw new RouteRefusal(receiver.readFailed(body));
      return parseRouteJson(body);
    } finally {
      claim.release();
    }
  };
  // The events path as the client sees it, with the prefix the app mounts the adapter under.
  const seen = fullPath.endsWith(path) ? fullPath.slice(0, fullPath.length - path.length) : base;
  return handler({ method: method.toUpperCase(), path, query, headers, base: seen, secure, remoteAddress, json }).catch((error: unknown) => {
    const refused = routeErrorResponse(error);
    if (refused) return refused;
    throw error;
  });
}

/** The answer of an adapter that has no `next` for a request it does not serve: 405 on the events path, else 404. */
export function notServed(path: string, requestPath: string): RouteResponse {
  const onPath = requestPath === path;
  return {
    status: onPath ? 405 : 404,
    headers: onPath ? { allow: 'POST' } : {},
    body: { error: onPath ? 'method_not_allowed' : 'not_found', message: onPath ? `use POST ${path}` : `nothing at ${requestPath}` },
  };
}

/** An answer as text and headers: JSON for an object body, else the text as is, with the `content-type` its headers give. */
export function encodeResponse(response: RouteResponse): { body: string; headers: Record<string, string> } {
  if (typeof response.body !== 'string') {
    return { body: JSON.stringify(response.body), headers: Object.assign({}, response.headers, JSON_CONTENT_TYPE_HEADER) };
  }
  return { body: response.body, headers: { 'content-type': 'text/plain; charset=utf-8', ...response.headers } };
}
