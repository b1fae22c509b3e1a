/**
 * Baseline: the leanest hand-written HTTP path. Sender: an undici Pool per target (64
 * connections), one signed event per request (Standard Webhooks HMAC-SHA256, signed once per event);
 * receiver: raw node:http checking the signature, JSON.parse, 204.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { Pool } from 'undici';
import { listen, stopServer } from '../lib.js';
import { EVENT_TYPE, type E2EPayload, SECRET } from './event.js';
import { type Emitter, type ReceiverSide, type Sink, WINDOW } from './system.js';

const KEY = Buffer.from(SECRET.slice('whsec_'.length), 'base64');

function sign(id: string, timestamp: string, body: string): Buffer {
  return createHmac('sha256', KEY).update(`${id}.${timestamp}.`).update(body).digest();
}

export async function receiver(_system: string, _index: number, sink: Sink): Promise<ReceiverSide> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const expected = sign(String(req.headers['webhook-id']), String(req.headers['webhook-timestamp']), body);
      const given = Buffer.from(String(req.headers['webhook-signature']).slice(3), 'base64');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        res.writeHead(401).end();
        return;
      }
      sink((JSON.parse(body) as { data: E2EPayload }).data);
      res.writeHead(204).end();
    });
  });
  const url = await listen(server);
  return {
    address: `${url}/events`,
    close: () => stopServer(server),
  };
}

export async function sender(_system: string, addresses: string[]): Promise<Emitter> {
  const targets = addresses.map((address) => {
    const url = new URL(address);
    return { pool: new Pool(url.origin, { connections: WINDOW }), path: url.pathname };
  });
  return {
    emit: (data) => {
      const id = `msg_${randomUUID()}`;
      const timestamp = String(Math.floor(Date.now() / 1000));
      const body = JSON.stringify({ specversion: '1.0', id, type: EVENT_TYPE, source: 'bench-src', time: new Date().toISOString(), data });
      const headers = {
        'content-type': 'application/cloudevents+json',
        'webhook-id': id,
        'webhook-timestamp': timestamp,
        'webhook-signature': `v1,${sign(id, timestamp, body).toString('base64')}`,
      };
      return Promise.all(
        targets.map(async ({ pool, path }) => {
          const { statusCode, body: answer } = await pool.request({ method: 'POST', path, headers, body });
          await answer.dump();
          if (statusCode >= 300) throw new Error(`HTTP ${statusCode}`);
        }),
      );
    },
    close: async () => {
      await Promise.all(targets.map(({ pool }) => pool.close()));
    },
  };
}
