// One sender instance for bench/postgres.ts: on "go", a bus on the shared PostgreSQL outbox
// (service bench-d) delivers its backlog to BENCH_SINK.
import { createEventBus } from '../src/index.js';
import { discardLogger, SECRET } from './lib.js';

process.send!('ready');
process.on('message', () => {
  createEventBus({
    service: 'bench-d',
    secret: SECRET,
    services: { sink: process.env.BENCH_SINK! },
    database: process.env.BENCH_DB!,
    databaseSchema: process.env.BENCH_SCHEMA!,
    outbox: { pollIntervalMs: 200 },
    logger: discardLogger('error'),
  });
});
