import type { IncomingMessage } from 'node:http';
import type { Receiver } from '../receive/receiver.js';
import { encodeResponse, type IntakeResponse } from './intake.js';
import { pathOf, receiveFromNode } from './node-body.js';
import { answerNodeRoute } from './node-routes.js';
import type { RouteResponse, RouteTable } from './routes.js';

/** The parts of a Fastify request the plugin reads; Fastify's own request fits it. */
export interface FastifyLikeRequest {
  raw: IncomingMessage;
  url: string;
}

/** The parts of a Fastify reply the plugin uses; Fastify's own reply fits it. */
export interface FastifyLikeReply {
  code(statusCode: number): FastifyLikeReply;
  headers(values: Record<string, string>): FastifyLikeReply;
  send(payload: string): FastifyLikeReply;
  callNotFound(): void;
}

type FastifyLikeHandler = (request: FastifyLikeRequest, reply: FastifyLikeReply) => Promise<unknown>;

/** The parts of a Fastify instance the plugin uses; Fastify's own instance fits it, so Fastify's types are not needed. */
export interface FastifyLikeInstance {
  prefix: string;
  removeAllContentTypeParsers(): void;
  addContentTypeParser(contentType: string, parser: (request: unknown, payload: unknown, done: (error: null) => void) => void): unknown;
  post(path: string, handler: FastifyLikeHandler): unknown;
  all(path: string, handler: FastifyLikeHandler): unknown;
}

/** A Fastify plugin: `app.register(bus.fastifyPlugin())`. */
export type FastifyPlugin = (instance: FastifyLikeInstance) => Promise<void>;

/**
 * A Fastify (5) plugin answering `POST <path>` and the route table's routes below it, in its own
 * encapsulation context: its content-type parsers (every type, the stream left unread, so the
 * receiver reads the exact bytes under its own limits) never reach the application's routes.
 * Fastify's logger, hooks, error handler and 404 handler work around it as around any route.
 */
export function createFastifyPlugin(receiver: Receiver, path: string, limit: number, routes: RouteTable): FastifyPlugin {
  return async function eventsPlugin(fastify) {
    fastify.removeAllContentTypeParsers();
    fastify.addContentTypeParser('*', (_request, _payload, done) => done(null));
    fastify.post(path, async (request, reply) => {
      const hint = 'register the plugin where no other parser reads its requests';
      return answer(reply, await receiveFromNode(receiver, request.raw, limit, { consumed: request.raw.readableEnded, middleware: 'fastifyPlugin()', hint }));
    });
    fastify.all(`${path}/*`, async (request, reply) => {
      const routed = answerNodeRoute(routes, receiver, { req: request.raw, path: pathOf(request.url).slice(fastify.prefix.length), base: path });
      return routed ? answer(reply, await routed) : reply.callNotFound();
    });
  };
}

function answer(reply: FastifyLikeReply, response: RouteResponse & Pick<IntakeResponse, 'closeConnection'>): FastifyLikeReply {
  const { body, headers } = encodeResponse(response);
  return reply
    .code(response.status)
    .headers(response.closeConnection ? { ...headers, connection: 'close' } : headers)
    .send(body);
}
