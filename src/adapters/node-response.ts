import type { ServerResponse } from 'node:http';
import type { RouteResponse } from './routes.js';

/** Writes an answer: JSON for an object body, else the text as is, with the `content-type` its headers give. */
export function writeNodeResponse(res: ServerResponse, response: RouteResponse & { closeConnection?: boolean }): void {
  const text = typeof response.body === 'string';
  const body = text ? (response.body as string) : JSON.stringify(response.body);
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  if (!text) res.setHeader('content-type', 'application/json; charset=utf-8');
  else if (!res.hasHeader('content-type')) res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  if (response.closeConnection) res.setHeader('connection', 'close');
  res.end(body);
}
