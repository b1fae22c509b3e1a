/**
 * Baseline: what a team writes by hand. Sender: axios posting a JSON envelope to each target
 * (keep-alive, up to 64 requests in flight per target, no signature); receiver: Express with
 * `express.json()`.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import axios from 'axios';
import express from 'express';
import { listen, stopServer } from '../lib.js';
import { EVENT_TYPE, type E2EPayload } from './event.js';
import { type Emitter, type ReceiverSide, type Sink, WINDOW } from './system.js';

export async function receiver(_system: string, _index: number, sink: Sink): Promise<ReceiverSide> {
  const app = express();
  app.use(express.json({ limit: '1mb' }));
  app.post('/events', (req, res) => {
    sink((req.body as { data: E2EPayload }).data);
    res.sendStatus(204);
  });
  const server = http.createServer(app);
  const url = await listen(server);
  return {
    address: `${url}/events`,
    close: () => stopServer(server),
  };
}

export async function sender(_system: string, addresses: string[]): Promise<Emitter> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: WINDOW });
  const client = axios.create({ httpAgent: agent, timeout: 10_000 });
  return {
    emit: (data) => {
      const envelope = { id: randomUUID(), type: EVENT_TYPE, source: 'bench-src', time: new Date().toISOString(), data };
      return Promise.all(addresses.map((url) => client.post(url, envelope)));
    },
    close: async () => agent.destroy(),
  };
}
