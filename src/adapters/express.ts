import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Receiver } from '../receive/receiver.js';
import { asBuffer, pathOf, receiveFromNode } from './node-body.js';
import { writeNodeResponse } from './node-response.js';
import { answerNodeRoute } from './node-routes.js';
import type { RouteTable } from './routes.js';

/** The parts of an Express request the middleware reads; Express's own `Request` fits it. */
export type ExpressLikeRequest = IncomingMessage & { path?: string; body?: unknown; originalUrl?: string };

export type ExpressMiddleware = (req: ExpressLikeRequest, res: ServerResponse, next: (error?: unknown) => void) => void;

export interface MiddlewareOptions {
  /** Path the middleware answers (relative to where it is mounted). @default the bus's `path`, '/events' */
  path?: string;
}

/**
 * Express (4 and 5) middleware: answers `POST <path>` and the route table's routes below it,
 * passes everything else on. Mount it before `express.json()`, or keep the raw bytes in
 * `req.rawBody` with express.json's `verify`.
 */
export function createExpressMiddleware(receiver: Receiver, path: string, limit: number, routes: RouteTable): ExpressMiddleware {
  return function eventsMiddleware(req, res, next) {
    const requestPath = req.path ?? pathOf(req.url);
    const routed = answerNodeRoute(routes, receiver, { req, path: requestPath, base: path, parsed: req.body, originalUrl: req.originalUrl });
    if (routed) {
      routed.then((response) => writeNodeResponse(res, response), next);
      return;
    }
    if (req.method !== 'POST' || requestPath !== path) {
      next();
      return;
    }
    const captured = asBuffer((req as { rawBody?: unknown }).rawBody) ?? asBuffer(req.body);
    const consumed = (req as { _body?: boolean })._body === true || req.readableEnded;
    receiveFromNode(receiver, req, limit, {
      captured,
      consumed,
      middleware: 'eventsMiddleware()',
      hint: 'keep them with express.json({ verify: (req, res, buf) => { req.rawBody = buf } })',
    }).then((response) => writeNodeResponse(res, response), next);
  };
}
