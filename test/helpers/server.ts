import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

/** A real HTTP server on 127.0.0.1. */
export interface TestServer {
  server: http.Server;
  /** `http://127.0.0.1:<port>` (`https://` with `tls`) */
  origin: string;
  /** `http://127.0.0.1:<port>/events` */
  url: string;
  port: number;
  /** Stops listening and destroys every open connection (keep-alive and hanging ones included). */
  close(): Promise<void>;
}

/**
 * Starts `listener` (a node handler, an Express app, or a Koa app's `callback()`) on 127.0.0.1 and
 * `port` (0: a free one; pass a port again to restart a service on the same address); over HTTPS with `tls`.
 */
export async function startServer(listener: http.RequestListener, port = 0, tls?: https.ServerOptions): Promise<TestServer> {
  const server = tls ? https.createServer(tls, listener) : http.createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  const origin = `${tls ? 'https' : 'http'}://127.0.0.1:${actual}`;
  let closed: Promise<void> | undefined;
  return {
    server,
    port: actual,
    origin,
    url: `${origin}/events`,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

/** A port on 127.0.0.1 that nothing listens on now (it was bound, then released). */
export async function freePort(): Promise<number> {
  const s = await startServer((_req, res) => res.end());
  await s.close();
  return s.port;
}
