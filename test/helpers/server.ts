import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A real HTTP server on 127.0.0.1 and a random port. */
export interface TestServer {
  server: http.Server;
  /** `http://127.0.0.1:<port>` */
  origin: string;
  port: number;
  /** Stops listening and destroys every open connection (hanging ones included). */
  close(): Promise<void>;
}

/** Starts `listener` (a node handler, an Express app, or a Koa app's `callback()`) on 127.0.0.1:0. */
export async function startServer(listener: http.RequestListener): Promise<TestServer> {
  const server = http.createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    server,
    port,
    origin: `http://127.0.0.1:${port}`,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

/** A port on 127.0.0.1 that nothing listens on (it was bound, then released). */
export async function deadPort(): Promise<number> {
  const s = await startServer((_req, res) => res.end());
  await s.close();
  return s.port;
}
