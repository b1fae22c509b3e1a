import type { IncomingMessage } from 'node:http';
import type { Receiver } from '../receive/receiver.js';
import { pathOf, readBody } from './node-body.js';
import { parseRouteJson, ROUTE_BODY_LIMIT_BYTES, RouteRefusal, type RouteResponse, routeErrorResponse, type RouteTable } from './routes.js';

/** A node request's way to one of the table's routes. */
export interface NodeRouteRequest {
  req: IncomingMessage;
  /** The request's path (relative to where the middleware is mounted). */
  path: string;
  /** The events path the routes hang below. */
  base: string;
  /** The body a framework's parser already produced, when it consumed the stream. */
  parsed?: unknown;
  /** The URL before the framework took a mount prefix off it (Express's `req.originalUrl`, Koa's `ctx.originalUrl`). */
  originalUrl?: string;
}

/**
 * Runs the table's route for a node request below the events path; undefined when the table has
 * none (the adapter passes the request on). A body is read only when the route asks for it, under
 * ROUTE_BODY_LIMIT_BYTES, the body deadlines and the receiver's budget of unauthenticated bytes.
 */
export function answerRoute(routes: RouteTable, receiver: Receiver, { req, path, base, parsed, originalUrl }: NodeRouteRequest): Promise<RouteResponse> | undefined {
  if (!path.startsWith(`${base}/`)) return undefined;
  const below = path.slice(base.length);
  const handler = routes.find(req.method ?? 'GET', below);
  if (!handler) return undefined;
  const url = req.url ?? '/';
  const query = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  const json = async (): Promise<unknown> => {
    // A framework's parser read it first: take its result through the same checks (no prototype keys, the limit).
    if (req.readableEnded) return parsed === undefined ? undefined : parseRouteJson(Buffer.from(JSON.stringify(parsed) ?? '', 'utf8'));
    const claim = receiver.claimUnverified();
    try {
      const read = await readBody(req, { limitBytes: ROUTE_BODY_LIMIT_BYTES, ...receiver.bodyTimeouts, claim });
      if (!Buffer.isBuffer(read)) throw new RouteRefusal(receiver.readFailed(read));
      return parseRouteJson(read);
    } finally {
      claim.release();
    }
  };
  const full = pathOf(originalUrl ?? url);
  const request = {
    method: (req.method ?? 'GET').toUpperCase(),
    path: below,
    query,
    headers: req.headers,
    base: full.endsWith(below) ? full.slice(0, full.length - below.length) : base,
    secure: (req.socket as { encrypted?: boolean }).encrypted === true,
    remoteAddress: req.socket.remoteAddress,
    json,
  };
  return handler(request).catch((error: unknown) => {
    const refused = routeErrorResponse(error);
    if (refused) return refused;
    throw error;
  });
}
