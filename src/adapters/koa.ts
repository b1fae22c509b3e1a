import type { IncomingMessage } from 'node:http';
import type { Receiver } from '../receive/receiver.js';
import { asBuffer, receiveFromNode } from './node-body.js';
import { answerNodeRoute } from './node-routes.js';
import type { RouteResponse, RouteTable } from './routes.js';

/** The parts of a Koa context the middleware uses; Koa's own context fits it, so Koa's types are not needed. */
export interface KoaLikeContext {
  method: string;
  path: string;
  originalUrl?: string;
  req: IncomingMessage;
  request: { body?: unknown; rawBody?: unknown };
  status: number;
  body: unknown;
  set(field: string, value: string): void;
}

export type KoaMiddleware = (ctx: KoaLikeContext, next: () => Promise<unknown>) => Promise<void>;

const KOA_BODY_UNPARSED = Symbol.for('unparsedBody');

/**
 * Koa middleware: answers `POST <path>` and the route table's routes below it, passes everything
 * else on. Works before or after `@koa/bodyparser` / `koa-bodyparser` (they keep
 * `ctx.request.rawBody`) and koa-body with `includeUnparsed`.
 */
export function createKoaMiddleware(receiver: Receiver, path: string, limit: number, routes: RouteTable): KoaMiddleware {
  return async function koaEventsMiddleware(ctx, next) {
    const routed = answerNodeRoute(routes, receiver, { req: ctx.req, path: ctx.path, base: path, parsed: ctx.request.body, originalUrl: ctx.originalUrl });
    if (routed) {
      answerKoa(ctx, await routed);
      return;
    }
    if (ctx.method !== 'POST' || ctx.path !== path) {
      await next();
      return;
    }
    const parsed = ctx.request.body;
    const captured =
      asBuffer(ctx.request.rawBody) ??
      (parsed !== null && typeof parsed === 'object' ? asBuffer((parsed as Record<symbol, unknown>)[KOA_BODY_UNPARSED]) : undefined);
    const response = await receiveFromNode(receiver, ctx.req, limit, {
      captured,
      consumed: ctx.req.readableEnded,
      middleware: 'koaEventsMiddleware()',
      hint: 'use @koa/bodyparser, which keeps ctx.request.rawBody',
    });
    if (response.closeConnection) ctx.set('connection', 'close');
    answerKoa(ctx, response);
  };
}

function answerKoa(ctx: KoaLikeContext, response: RouteResponse): void {
  ctx.status = response.status;
  for (const [name, value] of Object.entries(response.headers)) ctx.set(name, value);
  ctx.body = response.body;
}
