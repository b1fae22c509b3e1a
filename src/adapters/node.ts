import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Receiver } from '../receive/receiver.js';
import { pathOf, receiveFromNode } from './node-body.js';
import { writeNodeResponse } from './node-response.js';
import { answerRoute } from './node-routes.js';
import type { RouteResponse, RouteTable } from './routes.js';

export type NodeHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

/**
 * A plain `node:http` request handler: answers `POST <path>` and the route table's routes below
 * it; other requests go to `next` when given, else get 404 (or 405 for another method on the events path).
 */
export function createNodeHandler(receiver: Receiver, path: string, limit: number, routes: RouteTable): NodeHandler {
  return function eventsHandler(req, res, next) {
    const answer = (response: Promise<RouteResponse>) =>
      response
        .then((done) => writeNodeResponse(res, done))
        .catch((error: unknown) => {
          if (next) return next(error);
          res.statusCode = 500;
          res.end();
        });
    const routed = answerRoute(routes, receiver, { req, path: pathOf(req.url), base: path });
    if (routed) {
      void answer(routed);
      return;
    }
    const onPath = pathOf(req.url) === path;
    if (req.method !== 'POST' || !onPath) {
      if (next) return next();
      writeNodeResponse(res, {
        status: onPath ? 405 : 404,
        headers: onPath ? { allow: 'POST' } : {},
        body: { error: onPath ? 'method_not_allowed' : 'not_found', message: onPath ? `use POST ${path}` : `nothing at ${pathOf(req.url)}` },
      });
      return;
    }
    void answer(receiveFromNode(receiver, req, limit, { consumed: req.readableEnded, middleware: 'the events handler', hint: 'pass the raw body' }));
  };
}
