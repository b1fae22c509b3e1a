import type { ServerResponse } from 'node:http';
import { encodeResponse, type IntakeResponse } from './intake.js';
import type { RouteResponse } from './routes.js';

/** Writes an answer: JSON for an object body, else the text as is, with the `content-type` its headers give. */
export function writeNodeResponse(res: ServerResponse, response: RouteResponse & Pick<IntakeResponse, 'closeConnection'>): void {
  const { body, headers } = encodeResponse(response);
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('content-length', Buffer.byteLength(body));
  if (response.closeConnection) res.setHeader('connection', 'close');
  res.end(body);
}
