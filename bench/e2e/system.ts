/**
 * What each system under test provides to the end-to-end bench: a receiving side (one per target
 * process) and a sending side (in the sender process), and the list of systems, in table order.
 */
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { kcatAvailable } from '../../test/helpers/kafka.js';
import type { E2EPayload } from './event.js';
import type { Scenario } from './measure.js';

export type SystemName =
  | 'lib-batch'
  | 'lib-single'
  | 'lib-undici'
  | 'lib-durable'
  | 'lib-postgres'
  | 'lib-postgres-2'
  | 'lib-kafka'
  | 'axios-express'
  | 'undici-raw'
  | 'pg-handwritten'
  | 'moleculer'
  | 'amqp'
  | 'lib-amqp'
  | 'lib-amqp-sub'
  | 'lib-pg-amqp'
  | 'kafkajs';

/** Called by a receiving side once per event its handler got. */
export type Sink = (data: E2EPayload) => void;

export interface ReceiverSide {
  /** What the sender needs to reach this target: a URL, a queue name, a service name. */
  address: string;
  close(): Promise<void>;
}

export interface Emitter {
  /** Sends one event to every target of the run; settles when the system has taken it (its own meaning of "emitted"). */
  emit(data: E2EPayload): Promise<unknown>;
  close(): Promise<void>;
  /** What the other sender processes of a run need to join this one (the outbox schema they share). */
  shared?: string;
}

/** Which of a run's sender processes this is, when a system has several (`SystemInfo.senders`). */
export interface SenderPart {
  index: number;
  of: number;
  /** The first sender's `Emitter.shared`, for the others. */
  shared?: string;
}

export interface SystemModule {
  receiver(system: SystemName, index: number, sink: Sink): Promise<ReceiverSide>;
  sender(system: SystemName, addresses: string[], part: SenderPart): Promise<Emitter>;
}

export interface SystemInfo {
  name: SystemName;
  label: string;
  /**
   * How the sender keeps work in flight at saturation. `bursts`: issue `burst` emits, await them
   * all, yield a macrotask (an emit that settles at once, as the library's does, would otherwise
   * starve the I/O). `window`: keep `window` emits pending (request/answer or confirm loops).
   */
  drive: 'bursts' | 'window';
  /** Sender processes sharing the run, each emitting its share (default 1). */
  senders?: number;
  /** Another system whose target sides this one uses (the same receiving code, one set of connections). */
  targetsOf?: SystemName;
  load: () => Promise<SystemModule>;
  /** Why the system cannot run here (service down, package missing), or undefined. */
  unavailable?: () => Promise<string | undefined>;
  /**
   * The only scenarios this system runs (default all): an event declared without targets reaches
   * every target that subscribed, all three, so `lib-amqp-sub` has no 1-target runs.
   */
  scenarios?: readonly Scenario['key'][];
  /** Needs the Kafka cluster the orchestrator starts for the run (KAFKA_URL). */
  kafka?: boolean;
}

export const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
export const PG_URL = process.env.EVENTS_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const AMQP_URL = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
/**
 * The Kafka cluster of the run (`kafka://host:port,…`): set by the orchestrator for its children,
 * from a mock cluster it starts, unless BENCH_KAFKA_URL was given (a cluster of your own).
 */
export const KAFKA_URL = process.env.BENCH_KAFKA_URL;
/** In-flight requests of the hand-written HTTP loops and publishes awaiting confirms (per target). */
export const WINDOW = 64;

/** Undefined when a TCP connection to `url`'s host and port opens within a second. */
function reachable(url: string, defaultPort: number): () => Promise<string | undefined> {
  return () => {
    const { hostname, port } = new URL(url);
    return new Promise((resolve) => {
      const socket = connect({ host: hostname, port: Number(port || defaultPort), timeout: 1000 });
      const done = (reason?: string) => {
        socket.destroy();
        resolve(reason);
      };
      socket.once('connect', () => done());
      socket.once('timeout', () => done(`${hostname}:${port || defaultPort} did not answer`));
      socket.once('error', (error) => done(`${hostname}:${port || defaultPort} unreachable (${error.message})`));
    });
  };
}

function installed(pkg: string): () => Promise<string | undefined> {
  return async () => {
    try {
      require.resolve(pkg);
      return undefined;
    } catch {
      return `the ${pkg} package is not installed`;
    }
  };
}

/** Undefined when a given BENCH_KAFKA_URL answers, or else kcat can start librdkafka's mock cluster. */
async function kafkaAvailable(): Promise<string | undefined> {
  if (KAFKA_URL) return reachable(KAFKA_URL.replace(/^kafkas?:\/\//i, 'tcp://').split(',')[0]!, 9092)();
  return kcatAvailable() ? undefined : "kcat is not installed (apt-get install -y kcat runs librdkafka's mock Kafka cluster), and no BENCH_KAFKA_URL given";
}

const library = () => import('./library.js');

export const SYSTEMS: SystemInfo[] = [
  { name: 'lib-batch', label: 'library, in-memory outbox, batching on (defaults, axios)', drive: 'bursts', load: library },
  { name: 'lib-single', label: 'library, in-memory outbox, batch: false', drive: 'bursts', load: library },
  {
    name: 'lib-undici',
    label: "library, in-memory outbox, batching on, httpClient: 'undici'",
    drive: 'bursts',
    load: library,
    unavailable: installed('undici'),
  },
  { name: 'lib-durable', label: 'library, durable SQLite outbox + inbox, batching on', drive: 'bursts', load: library },
  {
    name: 'lib-postgres',
    label: 'library, PostgreSQL outbox + inbox (handlers with { tx }), batching on',
    drive: 'bursts',
    load: library,
    unavailable: reachable(PG_URL, 5432),
  },
  {
    name: 'lib-postgres-2',
    label: 'library, PostgreSQL, two sender instances on one outbox',
    drive: 'bursts',
    senders: 2,
    targetsOf: 'lib-postgres',
    load: library,
    unavailable: reachable(PG_URL, 5432),
  },
  { name: 'axios-express', label: 'hand-written axios loop → Express + express.json()', drive: 'window', load: () => import('./axios-express.js') },
  { name: 'undici-raw', label: 'undici Pool → raw node:http + HMAC check', drive: 'window', load: () => import('./raw-http.js') },
  {
    name: 'pg-handwritten',
    label: 'hand-written PostgreSQL outbox (SKIP LOCKED) → node:http + inbox',
    drive: 'window',
    load: () => import('./pg-handwritten.js'),
    unavailable: reachable(PG_URL, 5432),
  },
  { name: 'moleculer', label: 'Moleculer over NATS', drive: 'bursts', load: () => import('./moleculer.js'), unavailable: reachable(NATS_URL, 4222) },
  {
    name: 'lib-amqp',
    label: 'library over RabbitMQ, in-memory outbox, volatile inbox (defaults)',
    drive: 'bursts',
    load: library,
    unavailable: reachable(AMQP_URL, 5672),
  },
  {
    name: 'lib-amqp-sub',
    label: 'library over RabbitMQ, event declared without targets (each target subscribes)',
    drive: 'bursts',
    scenarios: ['sat3'],
    load: library,
    unavailable: reachable(AMQP_URL, 5672),
  },
  {
    name: 'lib-pg-amqp',
    label: 'library over RabbitMQ, PostgreSQL outbox, volatile inbox',
    drive: 'bursts',
    load: library,
    unavailable: async () => (await reachable(AMQP_URL, 5672)()) ?? (await reachable(PG_URL, 5432)()),
  },
  {
    name: 'amqp',
    label: 'amqplib, confirms → RabbitMQ → manual-ack consumer',
    drive: 'window',
    load: () => import('./amqp.js'),
    unavailable: reachable(AMQP_URL, 5672),
  },
  {
    name: 'lib-kafka',
    label: 'library over Kafka (in-memory outbox, volatile inbox)',
    drive: 'bursts',
    load: library,
    unavailable: kafkaAvailable,
    kafka: true,
  },
  {
    name: 'kafkajs',
    label: 'kafkajs, acks -1 → Kafka → auto-commit consumer group',
    drive: 'window',
    load: () => import('./kafka.js'),
    unavailable: kafkaAvailable,
    kafka: true,
  },
];

export function systemInfo(name: SystemName): SystemInfo {
  return SYSTEMS.find((s) => s.name === name)!;
}

/** Scratch directory of SQLite files: BENCH_DIR, else the OS temp dir. */
export function scratchRoot(): string {
  return process.env.BENCH_DIR ?? tmpdir();
}

/** This bench run's id (set by the orchestrator for its children): Moleculer namespace, queue prefix. */
export function benchId(): string {
  return process.env.BENCH_E2E_ID ?? 'bench-e2e';
}
