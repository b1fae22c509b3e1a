/**
 * The library on both sides, through its public API only. Receiver: a bus behind `nodeHandler()`
 * on node:http, subscribed with the schema. Sender: a fresh bus per run (a fresh outbox file when
 * durable, a fresh schema on PostgreSQL), one service per target, the event declared to all of them.
 * `lib-postgres`: both sides on PostgreSQL (outbox and inbox in a schema of their own, dropped at
 * close), the handler run in the inbox's transaction (`{ tx }`, unused: the library's cost alone).
 * `lib-postgres-2`: the same with two sender processes, each a bus on the one outbox schema the
 * first one created (and drops at close, after the second closed).
 * BENCH_PG_COUNT=1 prints each side's statements per event (by first word) to stderr at close.
 * `lib-amqp`: both sides over RabbitMQ (`broker`, queue prefix = this bench run's id and the
 * system), in-memory outbox, the receiver's inbox volatile (as the amqplib baseline keeps nothing);
 * its queues are deleted at close. `lib-pg-amqp`: the same with the sender's outbox in PostgreSQL.
 * `lib-amqp-sub`: as `lib-amqp`, but the event is declared without targets and each target
 * subscribes: one publish to the system's topic exchange reaches every target's queue (as the
 * amqplib baseline's one publish to a fanout exchange at 3 targets).
 * `lib-kafka`: both sides through the run's Kafka cluster (`broker: { url, prefix }`, one prefix
 * for the bench): the sender with its in-memory outbox, each target a bus consuming its topic
 * with a volatile inbox (the in-memory one, as `lib-batch`'s: the choice the library asks for
 * when a broker consumer has no durable inbox); the target's address is its service name.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import winston from 'winston';
import { createEventBus, type EventBusOptions } from '../../src/index.js';
import { deleteServiceTopology } from '../amqp-cleanup.js';
import { listen, stopServer } from '../lib.js';
import { EVENT_TYPE, type E2EPayload, SCHEMA, SECRET } from './event.js';
import { countQueries, dropSchema, freshSchema } from './pg-schema.js';
import { AMQP_URL, benchId, type Emitter, KAFKA_URL, PG_URL, type ReceiverSide, scratchRoot, type SenderPart, type Sink, type SystemName } from './system.js';

/** Both sides on PostgreSQL. */
const onPostgres = (system: SystemName) => system === 'lib-postgres' || system === 'lib-postgres-2';

/**
 * The library's log lines at `warn` and above, on stderr, but for what each run's close causes on
 * purpose: the backlog it drops and the requests it cancels (the next run counts only its own events).
 */
const logger = winston.createLogger({
  level: 'warn',
  format: winston.format.combine(
    winston.format((info) => (String(info.message).startsWith('undelivered at shutdown') || info.error === 'ERR_CANCELED' ? false : info))(),
    winston.format.timestamp(),
    winston.format.json(),
  ),
  transports: [new winston.transports.Stream({ stream: process.stderr })],
});
const base = { secret: SECRET, logger } as const;

/** The bench's Kafka cluster and a topic prefix of this bench run's own. */
const kafkaBroker = () => ({ broker: { url: KAFKA_URL!, prefix: `${benchId()}.` } });

/**
 * The sender's options for `system`, with `BENCH_LIB_OPTIONS` (JSON, e.g. '{"concurrency":4}')
 * merged over them: a setting tried on every library row without editing the bench.
 */
function sendOptions(system: SystemName): EventBusOptions {
  return { ...systemOptions(system), ...(JSON.parse(process.env.BENCH_LIB_OPTIONS ?? '{}') as EventBusOptions) };
}

function systemOptions(system: SystemName): EventBusOptions {
  if (system === 'lib-single') return { batch: false };
  if (system === 'lib-undici') return { httpClient: 'undici' };
  if (overRabbit(system)) return { broker: amqpBroker(system) };
  if (system === 'lib-kafka') return kafkaBroker();
  return {};
}

const overRabbit = (system: SystemName) => system === 'lib-amqp' || system === 'lib-amqp-sub' || system === 'lib-pg-amqp';
const amqpBroker = (system: SystemName) => ({ url: AMQP_URL, prefix: `${benchId()}.${system}.` });

async function amqpReceiver(system: SystemName, index: number, sink: Sink): Promise<ReceiverSide> {
  const service = `target${index}`;
  const bus = createEventBus({ ...base, service, broker: amqpBroker(system), inbox: { volatile: true } });
  bus.subscribeTo(EVENT_TYPE, (data) => sink(data as E2EPayload), { schema: SCHEMA });
  await bus.start();
  return {
    address: service,
    close: async () => {
      await bus.close();
      await deleteServiceTopology(AMQP_URL, amqpBroker(system).prefix, service);
    },
  };
}

async function kafkaReceiver(index: number, sink: Sink): Promise<ReceiverSide> {
  const service = `target${index}`;
  const bus = createEventBus({ ...base, service, ...kafkaBroker(), inbox: { volatile: true } });
  bus.subscribeTo(EVENT_TYPE, (data) => sink(data as E2EPayload), { schema: SCHEMA });
  await bus.start();
  return { address: service, close: () => bus.close() };
}

export async function receiver(system: SystemName, index: number, sink: Sink): Promise<ReceiverSide> {
  if (overRabbit(system)) return amqpReceiver(system, index, sink);
  if (system === 'lib-kafka') return kafkaReceiver(index, sink);
  const dir = system === 'lib-durable' ? mkdtempSync(join(scratchRoot(), 'events-e2e-inbox-')) : undefined;
  const schema = onPostgres(system) ? await freshSchema(`r${index}`) : undefined;
  const bus = createEventBus({
    ...base,
    service: `target${index}`,
    ...(dir ? { inbox: { path: join(dir, 'inbox.db') } } : {}),
    ...(schema ? { database: PG_URL, databaseSchema: schema } : {}),
  });
  const counted = schema ? countQueries('receiver') : undefined;
  bus.subscribeTo(EVENT_TYPE, (data) => (counted?.event(), sink(data as E2EPayload)), { schema: SCHEMA });
  const server = http.createServer(bus.nodeHandler());
  const url = await listen(server);
  return {
    address: `${url}/events`,
    close: async () => {
      await stopServer(server);
      await bus.close();
      counted?.print();
      if (dir) rmSync(dir, { recursive: true, force: true });
      if (schema) await dropSchema(schema);
    },
  };
}

export async function sender(system: SystemName, addresses: string[], part: SenderPart): Promise<Emitter> {
  const dir = system === 'lib-durable' ? mkdtempSync(join(scratchRoot(), 'events-e2e-outbox-')) : undefined;
  const schema = onPostgres(system) || system === 'lib-pg-amqp' ? (part.shared ?? (await freshSchema('s'))) : undefined;
  const owned = schema !== undefined && part.shared === undefined;
  const counted = schema ? countQueries('sender') : undefined;
  const names = addresses.map((_, i) => `target${i}`);
  const created = createEventBus({
    ...base,
    ...sendOptions(system),
    service: 'bench-src',
    // Through a broker a target is its service name: no URL.
    ...(overRabbit(system) || system === 'lib-kafka' ? {} : { services: Object.fromEntries(names.map((name, i) => [name, addresses[i]!])) }),
    outbox: dir ? { path: join(dir, 'outbox.db') } : {},
    ...(schema ? { database: PG_URL, databaseSchema: schema } : {}),
    shutdownTimeoutMs: 0,
  });
  // Declared without targets: every service subscribed to the type gets it (through a broker only).
  const bus = system === 'lib-amqp-sub' ? created.declareEvent(EVENT_TYPE, { schema: SCHEMA }) : created.declareEvent(EVENT_TYPE, names, { schema: SCHEMA });
  return {
    emit: (data) => (counted?.event(), bus.emit(EVENT_TYPE, data)),
    close: async () => {
      await bus.close();
      counted?.print();
      if (dir) rmSync(dir, { recursive: true, force: true });
      if (owned) await dropSchema(schema);
    },
    ...(schema ? { shared: schema } : {}),
  };
}
