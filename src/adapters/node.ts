import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HealthEndpoint } from '../observe/health.js';
import type { Receiver } from '../receive/receiver.js';
import { pathOf, receiveFromNode } from './node-body.js';
import { writeNodeResponse } from './node-response.js';

export type NodeHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

/**
 * A plain `node:http` request handler: answers `POST <path>`; other requests go to `next` when
 * given, else get 404 (or 405 for another method on the events path).
 */
export function createNodeHandler(receiver: Receiver, path: string, limit: number, health?: HealthEndpoint): NodeHandler {
  const healthPath = `${path}/health`;
  return function eventsHandler(req, res, next) {
    if (health && req.method === 'GET' && pathOf(req.url) === healthPath) {
      health(req.headers.authorization)
        .then((response) => writeNodeResponse(res, response))
        .catch((error: unknown) => {
          if (next) return next(error);
          res.statusCode = 500;
          res.end();
        });
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
    receiveFromNode(receiver, req, limit, { consumed: req.readableEnded, middleware: 'the events handler', hint: 'pass the raw body' })
      .then((response) => writeNodeResponse(res, response))
      .catch((error: unknown) => {
        if (next) return next(error);
        res.statusCode = 500;
        res.end();
      });
  };
}
