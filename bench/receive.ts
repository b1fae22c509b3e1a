/** The receiving side: signed 1 KB events through the library vs a raw node:http baseline. */
import type { ChildProcess } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import express from 'express';
import { createEventBus } from '../src/index.js';
import { parseSecret } from '../src/protocol/signature.js';
import { cpuMeter, discardLogger, EVENT_TYPE, listen, SCHEMA, SECRET } from './lib.js';

export type ReceiverKind = 'raw' | 'node' | 'express';

export interface ReceiveFigures {
  requestsPerSec: number;
  /** CPU time of this (the server) process per request, µs. */
  cpuUs: number;
  non2xx: number;
  errors: number;
}

const KEY = parseSecret(SECRET);

/**
 * The baseline: read the body, check the one `v1` HMAC-SHA256 signature, JSON.parse, answer 204.
 * No timestamp window, no schema, no dedupe, no handler.
 */
function rawServer(): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const expected = createHmac('sha256', KEY)
        .update(`${String(req.headers['webhook-id'])}.${String(req.headers['webhook-timestamp'])}.`)
        .update(body)
        .digest();
      const given = Buffer.from(String(req.headers['webhook-signature']).slice(3), 'base64');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        res.writeHead(401);
        res.end();
        return;
      }
      JSON.parse(body.toString('utf8'));
      res.writeHead(204);
      res.end();
    });
  });
}

/** Starts the three servers in this process; each answers POST /events. */
export async function startReceivers(): Promise<{ urls: Record<ReceiverKind, string>; close: () => Promise<void> }> {
  const bus = createEventBus({ service: 'payments', secret: SECRET, logger: discardLogger('warn') });
  bus.subscribeTo(EVENT_TYPE, async () => {}, { schema: SCHEMA });
  const app = express();
  app.use(bus.expressMiddleware());
  const servers: Record<ReceiverKind, http.Server> = {
    raw: rawServer(),
    node: http.createServer(bus.nodeHandler()),
    express: http.createServer(app),
  };
  const urls = {} as Record<ReceiverKind, string>;
  for (const kind of Object.keys(servers) as ReceiverKind[]) urls[kind] = `${await listen(servers[kind])}/events`;
  return {
    urls,
    close: async () => {
      for (const server of Object.values(servers)) server.closeAllConnections();
      await Promise.all(Object.values(servers).map((s) => new Promise((resolve) => s.close(resolve))));
      await bus.close();
    },
  };
}

/** Drives `url` from the load generator child; measures this process's CPU over the timed window. */
export function measureReceiver(
  load: ChildProcess,
  url: string,
  job: { warmupSeconds: number; seconds: number; connections: number },
): Promise<ReceiveFigures> {
  return new Promise((resolve) => {
    let cpu: (() => number) | undefined;
    const onMessage = (message: { phase: string; requests: number; non2xx: number; errors: number; seconds: number }) => {
      if (message.phase === 'start') {
        cpu = cpuMeter();
        return;
      }
      load.off('message', onMessage);
      const used = cpu ? cpu() : NaN;
      resolve({
        requestsPerSec: message.requests / message.seconds,
        cpuUs: used / message.requests,
        non2xx: message.non2xx,
        errors: message.errors,
      });
    };
    load.on('message', onMessage);
    load.send({ url, ...job });
  });
}
