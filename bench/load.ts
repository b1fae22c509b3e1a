/**
 * The load generator, in its own process: `connections` keep-alive connections (node:http Agent),
 * each sending one signed structured CloudEvent (1 KB data, a fresh id each) after the other.
 * On `{ url, warmupSeconds, seconds, connections }` it sends `{ phase: 'start' }` when the timed
 * window opens, then `{ phase: 'done', requests, non2xx, errors, seconds }`.
 */
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseSecret } from '../src/protocol/signature.js';
import { EVENT_TYPE, payload, SECRET } from './lib.js';

interface Job {
  url: string;
  warmupSeconds: number;
  seconds: number;
  connections: number;
}

const KEY = parseSecret(SECRET);
const DATA = JSON.stringify(payload(100_000));

function signedRequest(): { body: string; headers: Record<string, string> } {
  const id = randomUUID();
  const timestamp = String(Math.floor(Date.now() / 1000));
  const body =
    `{"specversion":"1.0","id":"${id}","source":"users","type":"${EVENT_TYPE}",` +
    `"time":"${new Date().toISOString()}","datacontenttype":"application/json","data":${DATA}}`;
  const signature = createHmac('sha256', KEY).update(`${id}.${timestamp}.`).update(body).digest('base64');
  return {
    body,
    headers: {
      'content-type': 'application/cloudevents+json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'webhook-id': id,
      'webhook-timestamp': timestamp,
      'webhook-signature': `v1,${signature}`,
    },
  };
}

function post(url: URL, agent: http.Agent): Promise<number> {
  const { body, headers } = signedRequest();
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function run(job: Job): Promise<void> {
  const url = new URL(job.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.connections });
  const warmEnd = performance.now() + job.warmupSeconds * 1000;
  const end = warmEnd + job.seconds * 1000;
  let requests = 0;
  let non2xx = 0;
  let errors = 0;
  let started = false;
  let startedAt = 0;
  const worker = async () => {
    for (;;) {
      const now = performance.now();
      if (now >= end) return;
      if (!started && now >= warmEnd) {
        started = true;
        startedAt = now;
        process.send!({ phase: 'start' });
      }
      const measuring = started;
      const status = await post(url, agent);
      if (!measuring) continue;
      requests += 1;
      if (status === 0) errors += 1;
      else if (status >= 300) non2xx += 1;
    }
  };
  await Promise.all(Array.from({ length: job.connections }, worker));
  const seconds = (performance.now() - startedAt) / 1000;
  agent.destroy();
  process.send!({ phase: 'done', requests, non2xx, errors, seconds });
}

process.on('message', (job: Job) => void run(job));
process.on('disconnect', () => process.exit(0));
