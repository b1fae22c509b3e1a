import http from 'node:http';
import { startServer, type TestServer } from './server.js';

/**
 * One address in front of several instances of one service: each request, exactly as signed, goes
 * to every one; the answer is the first refusal, else the first instance's receipt. (The sender
 * names its target in each event's `recipient`, so two targets cannot stand for two instances.)
 */
export function bothInstances(ports: readonly number[]): Promise<TestServer> {
  const forward = (port: number, req: http.IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; body: Buffer }>((resolve) => {
      const out = http.request({ host: '127.0.0.1', port, path: req.url, method: 'POST', headers: req.headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, body: Buffer.concat(chunks) }));
        res.on('error', () => resolve({ status: 502, body: Buffer.alloc(0) }));
      });
      out.on('error', () => resolve({ status: 502, body: Buffer.alloc(0) }));
      out.end(body);
    });
  return startServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void Promise.all(ports.map((port) => forward(port, req, Buffer.concat(chunks)))).then((answers) => {
        const answer = answers.find((a) => a.status >= 300) ?? answers[0]!;
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
      });
    });
  });
}
