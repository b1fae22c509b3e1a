import http from 'node:http';
import type { AddressInfo } from 'node:net';
import getRawBody from 'raw-body';
import type { Logger } from 'winston';
import { pathOf } from '../adapters/node-body.js';
import { writeNodeResponse } from '../adapters/node-response.js';
import { parseRouteJson, ROUTE_BODY_LIMIT_BYTES, routeErrorResponse, RouteTable } from '../adapters/routes.js';
import { openOperator } from '../backends/stores.js';
import { DEFAULTS } from '../defaults.js';
import type { OperatorTokens } from '../operate/operator-token.js';
import type { OperatorLocation } from '../operate/operator.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { addConsoleRoutes } from './api.js';
import { storeOverview } from './overview.js';

export interface StandaloneOptions {
  location: OperatorLocation;
  /** The service's name, shown on the page. */
  service: string | undefined;
  tokens: OperatorTokens;
  redact?: readonly string[];
  host: string;
  port: number;
  logger: Logger;
}

/** A running standalone console. */
export interface StandaloneConsole {
  /** `http://<host>:<port>/events/console` */
  url: string;
  close(): Promise<void>;
}

/**
 * `events-library console`: the console beside a service (an emit-only one, or from an operator's
 * laptop), on what its store holds: an outbox file, a PostgreSQL outbox or a broker's dead-letter
 * queues, through the operator seam. It serves `/events/console` (and `/` sends there) on its own
 * `node:http` server; the figures a running service keeps in its process are not shown.
 */
export async function startStandaloneConsole(options: StandaloneOptions): Promise<StandaloneConsole> {
  const operator = openOperator(options.location);
  const routes = new RouteTable();
  addConsoleRoutes(routes, {
    ...options, // tokens, logger
    redact: options.redact ?? [],
    overview: async () => storeOverview(options.service, await operator.stats(), Date.now()),
    operator: () => operator,
  });
  const base = DEFAULTS.path;
  const server = http.createServer((req, res) => {
    const path = pathOf(req.url);
    const handler = path.startsWith(`${base}/`) ? routes.find(req.method ?? 'GET', path.slice(base.length)) : undefined;
    if (!handler) {
      const home = path === '/';
      writeNodeResponse(res, {
        status: home ? 302 : 404,
        headers: home ? { location: `${base}/console` } : {},
        body: { error: 'not_found', message: `the console is at ${base}/console` },
      });
      return;
    }
    const url = req.url ?? '/';
    const json = async () => {
      const bytes = await getRawBody(req, { limit: ROUTE_BODY_LIMIT_BYTES }).catch(() => {
        throw new ProtocolError(413, 'payload_too_large', `the body is larger than ${ROUTE_BODY_LIMIT_BYTES} bytes`);
      });
      return parseRouteJson(bytes);
    };
    handler({
      method: (req.method ?? 'GET').toUpperCase(),
      path: path.slice(base.length),
      query: new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : ''),
      headers: req.headers,
      base,
      secure: false,
      remoteAddress: req.socket.remoteAddress,
      json,
    })
      .catch((error: unknown) => routeErrorResponse(error) ?? { status: 500, headers: {}, body: { error: 'internal', message: 'the console failed; see its log' } })
      .then((answer) => writeNodeResponse(res, answer), () => res.destroy());
  });
  server.requestTimeout = 30_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, resolve);
    });
  } catch (error) {
    await operator.close();
    throw error;
  }
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}${base}/console`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await operator.close();
    },
  };
}
