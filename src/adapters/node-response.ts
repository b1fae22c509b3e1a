import type { ServerResponse } from 'node:http';
import type { ReceiverResponse } from '../receive/receiver.js';

export function writeNodeResponse(res: ServerResponse, response: ReceiverResponse & { closeConnection?: boolean }): void {
  const body = JSON.stringify(response.body);
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  if (response.closeConnection) res.setHeader('connection', 'close');
  res.end(body);
}
