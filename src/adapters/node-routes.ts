import type { IncomingMessage } from 'node:http';
import type { Receiver } from '../receive/receiver.js';
import { answerRoute } from './intake.js';
import { pathOf, readBody } from './node-body.js';
import type { RouteResponse, RouteTable } from './routes.js';

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

/** Runs the table's route for a node request below the events path (see answerRoute); undefined when the table has none. */
export function answerNodeRoute(routes: RouteTable, receiver: Receiver, { req, path, base, parsed, originalUrl }: NodeRouteRequest): Promise<RouteResponse> | undefined {
  const url = req.url ?? '/';
  return answerRoute(routes, receiver, {
    method: req.method ?? 'GET',
    path,
    base,
    fullPath: pathOf(originalUrl ?? url),
    query: new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : ''),
    headers: req.headers,
    secure: (req.socket as { encrypted?: boolean }).encrypted === true,
    remoteAddress: req.socket.remoteAddress,
    read: req.readableEnded ? undefined : (options) => readBody(req, options),
    parsed,
  });
}
