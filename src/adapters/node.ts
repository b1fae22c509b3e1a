import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Receiver } from '../receive/receiver.js';
import { notServed } from './intake.js';
import { pathOf, receiveFromNode } from './node-body.js';
import { writeNodeResponse } from './node-response.js';
import { answerNodeRoute } from './node-routes.js';
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
    const routed = answerNodeRoute(routes, receiver, { req, path: pathOf(req.url), base: path });
    if (routed) {
      void answer(routed);
      return;
    }
    if (req.method !== 'POST' || pathOf(req.url) !== path) {
      if (next) return next();
      writeNodeResponse(res, notServed(path, pathOf(req.url)));
      return;
    }
    void answer(receiveFromNode(receiver, req, limit, { consumed: req.readableEnded, middleware: 'the events handler', hint: 'pass the raw body' }));
  };
}
