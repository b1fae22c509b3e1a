import type { Headers } from '../protocol/cloudevents.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { parseJson } from '../protocol/safe-json.js';

/**
 * A request to one of the library's routes below the events path other than the events intake
 * itself (`GET <path>/health`, and the console's and the contract's routes), as every adapter
 * hands it over: the adapters translate, the table decides.
 */
export interface RouteRequest {
  method: string;
  /** The path below the events path, with its leading slash: `/health`, `/console/api/dead-letters`. */
  path: string;
  query: URLSearchParams;
  headers: Headers;
  /** The events path as the client sees it, with any prefix the app mounts the middleware under (cookies are scoped to it). */
  base: string;
  /** The request came over TLS to this process. */
  secure: boolean;
  /** The peer's address (the socket's, never a header's). */
  remoteAddress: string | undefined;
  /** The JSON body (at most ROUTE_BODY_LIMIT_BYTES), parsed without prototype keys; undefined without one. Rejects with a ProtocolError (400, 413). */
  json(): Promise<unknown>;
}

/** An answer: a JSON object, or text (HTML, CSS, JavaScript) whose `content-type` the headers give. */
export interface RouteResponse {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown> | string;
}

export type RouteHandler = (request: RouteRequest) => Promise<RouteResponse>;

/** The largest body a route other than the events intake reads (operator actions are small). */
export const ROUTE_BODY_LIMIT_BYTES = 64 * 1024;

interface Route {
  method: string;
  path: string;
  /** Also answers every path below `path` (`/console` answers `/console/api/x`). */
  below: boolean;
  handler: RouteHandler;
}

/**
 * The one table of the library's routes below the events path, shared by every adapter (Express,
 * Koa, node:http, and any added later), so that each answers the same routes the same way. The
 * events intake (`POST <path>`) is not in it: its body is read under the receiver's own limits.
 */
export class RouteTable {
  private readonly routes: Route[] = [];

  /** Adds a route; `below: true` makes it answer every path under `path` too. */
  add(method: string, path: string, handler: RouteHandler, { below = false } = {}): this {
    this.routes.push({ method: method.toUpperCase(), path, below, handler });
    return this;
  }

  /**
   * The handler for a request below the events path: undefined when no route has this path (the
   * adapter passes it on), or a 405 answer when a route has the path but not the method.
   */
  find(method: string, path: string): RouteHandler | undefined {
    const onPath = this.routes.filter((route) => route.path === path || (route.below && path.startsWith(`${route.path}/`)));
    if (onPath.length === 0) return undefined;
    const upper = method.toUpperCase();
    const match = onPath.find((route) => route.method === upper || (upper === 'HEAD' && route.method === 'GET'));
    if (match) return match.handler;
    const allow = [...new Set(onPath.map((route) => route.method))].join(', ');
    return async () => ({ status: 405, headers: { allow }, body: { error: 'method_not_allowed', message: `use ${allow} ${path}` } });
  }
}

/** A route's body refused while it was read (too slow, over the budget of unauthenticated bytes): its answer. */
export class RouteRefusal extends Error {
  constructor(readonly response: RouteResponse) {
    super(`refused with ${response.status}`);
    this.name = 'RouteRefusal';
  }
}

/** A refused body (ProtocolError, RouteRefusal) as an answer; anything else is the caller's to handle. */
export function routeErrorResponse(error: unknown): RouteResponse | undefined {
  if (error instanceof RouteRefusal) return error.response;
  if (!(error instanceof ProtocolError)) return undefined;
  return { status: error.status, headers: {}, body: { error: error.code, message: error.message } };
}

/** Parses a route's JSON body (undefined for an empty one): 413 over the limit, 400 malformed or with prototype keys. */
export function parseRouteJson(bytes: Buffer): unknown {
  if (bytes.length === 0) return undefined;
  if (bytes.length > ROUTE_BODY_LIMIT_BYTES) throw new ProtocolError(413, 'payload_too_large', `the body is larger than ${ROUTE_BODY_LIMIT_BYTES} bytes`);
  return parseJson(bytes.toString('utf8'), 'the body');
}
