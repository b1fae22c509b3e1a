/**
 * The receiving side of `profile-paced.ts`, in its own process: the library behind `nodeHandler()`
 * on node:http, one subscriber with the e2e schema. Sends `{ url }` once listening; answers `'cpu'`
 * with its CPU time (µs) and the events handled, and `'profile-start'` / `'profile-stop'` with a V8
 * CPU profile of itself (written to the path given at start).
 */
import http from 'node:http';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import winston from 'winston';
import { createEventBus } from '../src/index.js';
import { EVENT_TYPE, SCHEMA, SECRET } from './e2e/event.js';
import { listen, PACED_PROFILE_INTERVAL_US, startProfiler } from './lib.js';

const logger = winston.createLogger({ level: 'warn', transports: [new winston.transports.Stream({ stream: process.stderr })] });
let handled = 0;
const bus = createEventBus({ service: 'target', secret: SECRET, logger });
bus.subscribeTo(EVENT_TYPE, () => void (handled += 1), { schema: SCHEMA });
const server = http.createServer(bus.nodeHandler());
const session = new Session();
session.connect();

void listen(server).then((url) => process.send!({ url: `${url}/events` }));
process.on('message', (message: { kind: string; path?: string }) => {
  void (async () => {
    if (message.kind === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send!({ cpuUs: user + system, handled });
    } else if (message.kind === 'profile-start') {
      await startProfiler(session, PACED_PROFILE_INTERVAL_US);
      process.send!({ started: true });
    } else if (message.kind === 'profile-stop') {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(message.path!, JSON.stringify(profile));
      process.send!({ written: message.path });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
