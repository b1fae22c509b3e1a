import winston, { type Logger } from 'winston';
import { DEFAULTS } from './defaults.js';
import { ConfigError } from './errors/index.js';
import { createLogger } from './logger.js';
import { parseSecret } from './protocol/signature.js';
import { brokerBackendFor } from './backends/broker-link.js';
import type { KafkaOptions } from './backends/kafka/config.js';
import type { OnDeadLetter, OnDelivered } from './observe/hooks.js';
import type { OperatorTokens } from './operate/operator-token.js';
import { SUBSCRIBERS, type Transport } from './send/transport.js';
import type { DatabasePool } from './types.js';
import { checkSchemaName } from './backends/postgres/schema.js';
import { mergeTlsParts, TlsMaterial, type TlsOptions, tlsParts } from './backends/tls-material.js';

/** Kafka's own options (`broker.kafka`), declared by its backend. */
export type { KafkaOptions } from './backends/kafka/config.js';
/** TLS of HTTPS targets and `amqps://`/`kafkas://` brokers (`tls`, `services.<name>.tls`). */
export type { TlsOptions } from './backends/tls-material.js';

/** A `whsec_…` secret, or several (any of them verifies; all of them sign), for rotation. */
export type SecretInput = string | readonly string[];

/** Where a target service receives events, and optionally the secret its events are signed with. */
export interface ServiceEntry {
  /**
   * URL of the service's events endpoint; not needed through a broker. With no path
   * (`http://payments:3000` or `…/`) it means that service's default events path, `/events`.
   * @example 'http://payments.internal:3000/events'
   */
  url?: string;
  /** Signing secret for this target. @default this service's own `secret` */
  secret?: SecretInput;
  /**
   * Send this target batches (`application/cloudevents-batch+json`) when events queue up; `false`
   * for a peer that only speaks structured mode (one event per request). A peer that answers a
   * batch with 415 is switched to structured mode by itself. Env: `EVENTS_SERVICE_<NAME>_BATCH`
   * (`false`/`0`/`off`). @default the bus's `batch.enabled` (true)
   */
  batch?: boolean;
  /**
   * A 2xx counts as delivered only with the events middleware's receipt (`{ status, id }`): a 2xx
   * without it (an app's catch-all route) is kept and retried, then dead-lettered. `false` for a
   * peer that is not this library (a plain CloudEvents sink): any 2xx is delivered. Env:
   * `EVENTS_SERVICE_<NAME>_RECEIPT` (`false`/`0`/`off`). @default true
   */
  receipt?: boolean;
  /**
   * TLS of an `https://` target, over the bus's `tls` field by field (its client certificate and
   * key as a pair). Env: `EVENTS_SERVICE_<NAME>_TLS_CA_FILE`, `_TLS_CERT_FILE`, `_TLS_KEY_FILE`.
   * @example { ca: readFileSync('/etc/pki/payments-ca.pem') }
   */
  tls?: TlsOptions;
}

/** Batched HTTP delivery (see README "Throughput"). */
export interface BatchOptions {
  /** Batching for every target; a target's own `batch` setting wins. Env: `EVENTS_BATCH` (`false`/`0`/`off`). @default true */
  enabled?: boolean;
  /** Most events in one request. @default 100 */
  maxEvents?: number;
  /** Most body bytes in one request; keep it under the receivers' `bodyLimitBytes`. @default 524288 (512 KiB) */
  maxBytes?: number;
  /** Wait this long for more events before sending a partial batch, in ms (0: never wait, no added latency). @default 0 */
  lingerMs?: number;
}

export interface RetryOptions {
  /** Immediate retries of one delivery before it goes back to the outbox. @default 3 */
  retries: number;
  /** Delay before the first retry; doubles each time, with jitter. @default 300 */
  baseDelayMs: number;
  /** Longest delay between two immediate retries. @default 5000 */
  maxDelayMs: number;
  /** A `Retry-After` up to this is waited out in place; a longer one reschedules the delivery. @default 10000 */
  maxRetryAfterMs: number;
}

export interface RedeliveryOptions {
  /** Delay before the first redelivery from the outbox; doubles each time, with jitter. @default 5000 */
  baseDelayMs: number;
  /** Longest delay between two redeliveries. @default 21600000 (6 h) */
  maxDelayMs: number;
  /** A delivery still failing this long after its emit becomes a dead letter. @default 259200000 (3 days) */
  horizonMs: number;
  /** While a target is down, one delivery probes it at most this far apart. @default 30000 */
  probeMaxDelayMs: number;
}

export interface OutboxOptions {
  /**
   * SQLite file for the durable outbox (needs the optional peer `better-sqlite3`).
   * Without it the outbox lives in memory. Env: `EVENTS_OUTBOX_PATH`.
   * @example './data/outbox.db'
   */
  path?: string;
  /**
   * In-memory outbox only: undelivered deliveries held per target before an `emit` to that target
   * rejects with OutboxFullError (other targets are not affected). @default 100000
   */
  maxPending?: number;
  /** In-memory outbox only: bytes of event bodies held per target, likewise. @default 67108864 (64 MiB) */
  maxPendingBytes?: number;
  /**
   * Every outbox: deliveries to one target that may wait for their first attempt before `emit`
   * waits too (backpressure). Above it, and while the target is up, `emit` records its event and
   * then resolves only once the target's backlog is down to half of this (or after `maxBlockMs`),
   * so that a storm of emits cannot starve delivery or grow the outbox without bound. A target that is down never makes
   * emit wait (`maxPending` bounds that backlog); nor does `emit(…, { tx })`. 0 turns it off.
   * @default 5000
   * @example { highWaterMark: 20_000 } // absorb longer bursts, at the cost of latency
   */
  highWaterMark?: number;
  /**
   * Every outbox: the longest an `emit` waits above `highWaterMark` (like Kafka's `max.block.ms`);
   * then it resolves anyway (its event is recorded) and a warning names the target that is not
   * draining. A target that hangs without failing cannot block emits for longer. @default 5000
   */
  maxBlockMs?: number;
  /** In-memory outbox only: dead letters kept. @default 10000 */
  maxDeadLetters?: number;
  /** Durable outbox only: how often to look for deliveries added by another process (a CLI replay). @default 2000 */
  pollIntervalMs?: number;
  /**
   * PostgreSQL outbox only: how long a claim on a delivery lasts without renewal. The claiming
   * process renews it every third of this while the delivery runs; a process that dies (SIGKILL,
   * a lost host) leaves claims that other instances take over once this has passed. @default 30000
   */
  leaseMs?: number;
  /**
   * Durable outbox only: how long an `emit` waits while the file cannot take writes (locked, disk
   * full) before it rejects with OutboxUnavailableError. @default 2000
   */
  writeWaitMs?: number;
}

export interface InboxOptions {
  /** SQLite file for the durable inbox (processed event ids). Env: `EVENTS_INBOX_PATH`. */
  path?: string;
  /** In-memory inbox only: event ids remembered. @default 100000 */
  maxEntries?: number;
  /** Durable inbox only: how long a processed event id is remembered. @default 604800000 (7 days) */
  retentionMs?: number;
  /**
   * Consume from a broker with the in-memory inbox, accepting that a message captured and
   * republished to the queue after a restart runs its handlers again (without a durable inbox
   * or this, a broker consumer's `start()` throws a ConfigError). Env: `EVENTS_INBOX_VOLATILE`. @default false
   */
  volatile?: boolean;
}

/** RabbitMQ or Kafka instead of HTTP push (see README "Choosing a transport"). */
export interface BrokerOptions {
  /** The broker. Env: `EVENTS_BROKER_URL`. @example 'amqp://guest:guest@127.0.0.1:5672/%2f' */
  url: string;
  /** Prefix of every queue name (test isolation, several systems on one vhost). Env: `EVENTS_BROKER_PREFIX`. @default '' */
  prefix?: string;
  /** Waits before each retry of a message whose handler failed; the last repeats. @default [1000, 5000, 30000, 120000, 600000, 3600000] */
  retryDelaysMs?: readonly number[];
  /** Handler attempts of one message before it is dead-lettered to `<queue>.dlq`. @default 10 */
  maxAttempts?: number;
  /**
   * RabbitMQ: messages one instance holds unacked at once (its handlers run as they arrive).
   * @default the bus's `concurrency` when given, else 100
   */
  prefetch?: number;
  /** First reconnect wait after the connection drops; doubles per failure, with jitter. @default 100 */
  reconnectBaseDelayMs?: number;
  /** Longest reconnect wait. @default 5000 */
  reconnectMaxDelayMs?: number;
  /** Kafka only (`kafka://host1:9092,host2:9092`): client, TLS, SASL and topic creation. */
  kafka?: KafkaOptions;
}

/**
 * Broker options after merging and checking: the part every broker shares. The backend serving
 * the URL's scheme resolves the rest and extends this type (`backends/amqp/config.ts`,
 * `backends/kafka/config.ts`); `backends/broker-link.ts` registers the backends.
 */
export interface ResolvedBroker {
  /** Which backend, from the URL's scheme (`amqp`, `kafka`). */
  kind: string;
  url: string;
  prefix: string;
  retryDelaysMs: readonly number[];
  maxAttempts: number;
  reconnectBaseDelayMs: number;
  reconnectMaxDelayMs: number;
  /** The bus's `tls` (`EVENTS_TLS_*`), for an `amqps://` or `kafkas://` broker. */
  tls?: TlsMaterial;
}

export interface HealthOptions {
  /** The middleware answers `GET <path>/health` with `bus.health()` (200 or 503). @default true */
  endpoint?: boolean;
  /** A target down longer than this, in ms, makes the service unhealthy (503); 0: never. @default 60000 */
  targetDownMs?: number;
  /** A delivery waiting longer than this, in ms, makes the service unhealthy (503); 0: never. @default 600000 (10 min) */
  maxPendingAgeMs?: number;
}

/** Operators: who may see the health endpoint's details (and, later, the console). */
export interface ConsoleOptions {
  /**
   * The operator token: a request with `Authorization: Bearer <token>` gets the details of
   * `GET <path>/health` (targets, consumers, database); without it, only `{"healthy": …}`.
   * Env: `EVENTS_CONSOLE_TOKEN`. @default none (no one gets the details over HTTP)
   * @example { token: process.env.OPS_TOKEN }
   */
  token?: string;
  /**
   * Named operators, each with a token of its own (`token` is the one named `operator`).
   * @example { tokens: { alice: 'k3y-for-alice', oncall: 'k3y-for-oncall' } }
   */
  tokens?: Readonly<Record<string, string>>;
  /**
   * Payload fields the console masks (as "•••"), at any depth, when it shows a dead letter's payload.
   * @example { token: process.env.OPS_TOKEN, redact: ['email', 'password'] }
   */
  redact?: readonly string[];
}

export interface EventBusOptions {
  /** This service's name, the CloudEvents `source` of what it emits. Env: `EVENTS_SERVICE_NAME`. */
  service?: string;
  /** This service's secret(s): verifies what it receives, signs what it sends. Env: `EVENTS_SECRET` (space-separated). */
  secret?: SecretInput;
  /**
   * The directory of target services. Env: `EVENTS_SERVICE_<NAME>_URL` and `EVENTS_SERVICE_<NAME>_SECRET`.
   * @example { payments: 'http://127.0.0.1:4001/events', orders: { url: 'http://127.0.0.1:4002/events', secret: 'whsec_…' } }
   */
  services?: Record<string, string | ServiceEntry>;
  /** A winston logger. @default JSON lines on the console at `logLevel` */
  logger?: Logger;
  /** Level of the default logger. Env: `EVENTS_LOG_LEVEL`. @default 'info' */
  logLevel?: string;
  /** Path the middleware answers. @default '/events' */
  path?: string;
  /** Largest request body the receiver reads, in bytes. @default 1048576 */
  bodyLimitBytes?: number;
  /**
   * `emit` refuses (PayloadTooDeepError) a payload nesting objects and arrays deeper than this.
   * @default 64
   */
  maxPayloadDepth?: number;
  /** Longest wait for a request body once its headers arrived, in ms; then 408. @default 10000 */
  bodyTimeoutMs?: number;
  /**
   * Longest wait for the first byte of a request body, in ms; then 408. A body still arriving then
   * counts as slow: slow bodies together hold at most half of `maxUnverifiedBytes`. @default 2000
   */
  bodyStartTimeoutMs?: number;
  /**
   * Bytes held at once by request bodies not authenticated yet; beyond it, 503 + Retry-After.
   * @default 33554432 (32 MiB)
   */
  maxUnverifiedBytes?: number;
  /** Timeout of one HTTP request, in ms. @default 10000 */
  timeoutMs?: number;
  /** Allowed clock skew of `webhook-timestamp`, in seconds. @default 300 */
  toleranceSeconds?: number;
  /** Deliveries in flight at once, per target (with batching: requests in flight). @default 16 */
  concurrency?: number;
  /** Batched HTTP delivery; `false` turns it off for every target. @default on: up to 100 events or 512 KiB per request, no linger */
  batch?: BatchOptions | false;
  /**
   * HTTP client of the default transport: `axios`, or `undici` (optional peer
   * `undici`, less CPU per request). Env: `EVENTS_HTTP_CLIENT`. @default 'axios'
   */
  httpClient?: 'axios' | 'undici';
  /**
   * TLS of every `https://` target (a private CA, a client certificate for mutual TLS), and of an
   * `amqps://` or `kafkas://` broker (`broker.kafka.ssl` wins for Kafka). A target's own
   * `services.<name>.tls` wins. Env: `EVENTS_TLS_CA_FILE`, `EVENTS_TLS_CERT_FILE`,
   * `EVENTS_TLS_KEY_FILE` (PEM files, read again when they change). @default Node's public CAs, no client certificate
   */
  tls?: TlsOptions;
  retry?: Partial<RetryOptions>;
  redelivery?: Partial<RedeliveryOptions>;
  outbox?: OutboxOptions;
  inbox?: InboxOptions;
  /**
   * PostgreSQL for this service's stores (needs the optional peer `pg`): a `postgres://` URL, or
   * your own `pg.Pool` (the library never ends a pool you pass). The inbox goes there unless
   * `inbox.path` sets a SQLite file apart. Env: `EVENTS_DATABASE_URL`.
   * @example 'postgres://app@db.internal:5432/app'
   */
  database?: string | DatabasePool;
  /**
   * Schema of the library's PostgreSQL tables, created on first use. Env: `EVENTS_DATABASE_SCHEMA`. @default 'public'
   * @example 'events'
   */
  databaseSchema?: string;
  /**
   * Connections of the one pool the bus opens from a `database` URL, shared by its outbox and
   * inbox (LISTEN takes one more, beside it). Handler transactions hold at most all but one of
   * them. Your own `pg.Pool` keeps its size. Env: `EVENTS_DATABASE_POOL_SIZE`. @default 10
   */
  databasePoolSize?: number;
  /**
   * Run the stores' frequent statements as named prepared statements (parsed and planned once per
   * connection). Turn off behind a pooler that cannot keep prepared statements across
   * transactions (PgBouncer in transaction mode before 1.21, or without `max_prepared_statements`).
   * Env: `EVENTS_DATABASE_PREPARED_STATEMENTS` (`true` / `false`). @default true
   */
  databasePreparedStatements?: boolean;
  /** How long `close()` waits for in-flight deliveries and handlers, in ms. @default 5000 */
  shutdownTimeoutMs?: number;
  /** Where `EVENTS_*` variables are read. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** Sends deliveries; swap it for another transport or in tests. @default HTTP push (axios) */
  transport?: Transport;
  /**
   * Send and receive through RabbitMQ (needs the optional peer `amqplib`) or Kafka (`kafka://…`,
   * needs the optional peer `kafkajs`): a URL, or options with one. Targets then need no URL.
   * Env: `EVENTS_BROKER_URL`. @default HTTP push
   * @example 'amqp://guest:guest@127.0.0.1:5672'
   * @example 'kafka://kafka1:9092,kafka2:9092'
   */
  broker?: string | BrokerOptions;
  /**
   * Spans (`publish`, `send`, `process`), metrics and W3C trace context through the optional peer
   * `@opentelemetry/api`, when it is installed; `false` turns them off. @default true
   */
  openTelemetry?: boolean;
  /** `bus.health()` and the middleware's `GET <path>/health`. */
  health?: HealthOptions;
  /** The operator tokens (`EVENTS_CONSOLE_TOKEN`). */
  console?: ConsoleOptions;
  /**
   * `bus.asyncapi()`: `version` is the document's `info.version`.
   * @default the version of the package.json nearest the working directory, else '0.0.0'
   * @example { version: '2.3.0' }
   */
  asyncapi?: { version?: string };
  /** Called after each delivery reaches its target; what it throws is logged, never fails the delivery. */
  onDelivered?: OnDelivered;
  /** Called when a delivery becomes a dead letter; what it throws is logged, never fails the delivery. */
  onDeadLetter?: OnDeadLetter;
}

/** What the bus uses of a `pg.Pool` you pass as `database` (the same shape as `DatabasePool`). */
export type PgPoolLike = DatabasePool;

/** A target service, resolved and checked. */
export interface ResolvedTarget {
  name: string;
  /** Its events endpoint (HTTP push); empty through a broker, which routes by `name`. */
  url: string;
  /** HMAC keys; every one signs each delivery. */
  keys: Buffer[];
  /** Batches may be sent to it (the bus's `batch.enabled`, overridden by the target's own `batch`). */
  batch: boolean;
  /** A 2xx must carry the events middleware's receipt to count as delivered (the target's `receipt`, true unless set false). */
  receipt: boolean;
  /** TLS of an `https://` target, when set (its own over the bus's). */
  tls?: TlsMaterial;
}

/** The options that resolve to a value of their own type (a default when not given). */
type PlainOptions = 'path' | 'bodyLimitBytes' | 'maxPayloadDepth' | 'bodyTimeoutMs' | 'bodyStartTimeoutMs' | 'maxUnverifiedBytes' | 'timeoutMs'
  | 'toleranceSeconds' | 'concurrency' | 'httpClient' | 'databaseSchema' | 'databasePoolSize' | 'databasePreparedStatements' | 'shutdownTimeoutMs' | 'openTelemetry';

/** Options after merging caller, environment and DEFAULTS, and checking them. */
export interface ResolvedConfig extends Required<Pick<EventBusOptions, PlainOptions>> {
  service: string | undefined;
  keys: Buffer[];
  logger: Logger;
  batch: Required<BatchOptions>;
  /** The TLS of every target and of the broker (`tls`, `EVENTS_TLS_*`), when set. */
  tls: TlsMaterial | undefined;
  retry: RetryOptions;
  redelivery: RedeliveryOptions;
  outbox: Required<Omit<OutboxOptions, 'path'>> & { path: string | undefined };
  inbox: Required<Omit<InboxOptions, 'path'>> & { path: string | undefined };
  /** A PostgreSQL URL or pool, when configured. */
  database: string | DatabasePool | undefined;
  health: Required<HealthOptions>;
  /** Operators by name, with their tokens. */
  operators: OperatorTokens;
  /** `info.version` of the AsyncAPI document, when the option sets it. */
  asyncapiVersion: string | undefined;
  /** `console.redact`. */
  redact: readonly string[];
  hooks: { onDelivered: OnDelivered | undefined; onDeadLetter: OnDeadLetter | undefined };
  env: Readonly<Record<string, string | undefined>>;
  services: Record<string, string | ServiceEntry>;
  /** Set when events go through a broker instead of HTTP push. */
  broker: ResolvedBroker | undefined;
}

/** `order-service` → `ORDER_SERVICE`. */
export function envKey(service: string): string {
  return service.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

export const urlVariable = (service: string): string => `EVENTS_SERVICE_${envKey(service)}_URL`;
export const secretVariable = (service: string): string => `EVENTS_SERVICE_${envKey(service)}_SECRET`;
export const batchVariable = (service: string): string => `EVENTS_SERVICE_${envKey(service)}_BATCH`;
export const receiptVariable = (service: string): string => `EVENTS_SERVICE_${envKey(service)}_RECEIPT`;

/** A target URL as logs and errors show it: without userinfo, query string or fragment, which may carry secrets. */
export function redactUrl(url: string): string {
  try {
    const { origin, pathname } = new URL(url);
    return `${origin}${pathname}`;
  } catch {
    return '(not a valid URL)';
  }
}

/** Merges options over the environment over DEFAULTS and checks every value. Throws ConfigError. */
export function resolveConfig(options: EventBusOptions = {}): ResolvedConfig {
  const env = options.env ?? process.env;
  const service = options.service ?? nonEmpty(env.EVENTS_SERVICE_NAME);
  if (service !== undefined && (typeof service !== 'string' || service.trim() === '')) {
    throw new ConfigError('service must be a non-empty string (or set EVENTS_SERVICE_NAME)', {
      variable: 'EVENTS_SERVICE_NAME',
    });
  }
  const secret = options.secret ?? splitList(env.EVENTS_SECRET);
  const keys = secret === undefined ? [] : parseSecrets(secret, 'secret', 'EVENTS_SECRET');
  const logLevel = options.logLevel ?? nonEmpty(env.EVENTS_LOG_LEVEL) ?? DEFAULTS.logLevel;
  if (options.logger === undefined && !Object.hasOwn(winston.config.npm.levels, logLevel)) {
    // winston takes an unknown level silently and then drops every line, errors included.
    throw new ConfigError(
      `log level ${JSON.stringify(logLevel)} is not one of ${Object.keys(winston.config.npm.levels).join(', ')}: check EVENTS_LOG_LEVEL or the logLevel option`,
      { variable: 'EVENTS_LOG_LEVEL' },
    );
  }
  const path = options.path ?? DEFAULTS.path;
  if (typeof path !== 'string' || !path.startsWith('/')) throw new ConfigError('path must start with "/"');
  const logger = options.logger ?? createLogger(logLevel, service);
  const tls = TlsMaterial.of(tlsParts(options.tls, env, 'EVENTS', 'tls'), logger);

  return {
    service,
    keys,
    logger,
    path,
    ...givenOrDefault('', DEFAULTS, options, ['bodyLimitBytes', 'maxPayloadDepth', 'bodyTimeoutMs', 'bodyStartTimeoutMs']),
    ...givenOrDefault('', DEFAULTS, options, ['maxUnverifiedBytes', 'timeoutMs', 'toleranceSeconds', 'concurrency']),
    batch: resolveBatch(options.batch, env),
    httpClient: resolveHttpClient(options.httpClient ?? nonEmpty(env.EVENTS_HTTP_CLIENT)),
    tls,
    retry: checkNumbers('retry', { ...DEFAULTS.retry, ...options.retry }, ['retries']),
    redelivery: checkNumbers('redelivery', { ...DEFAULTS.redelivery, ...options.redelivery }, []),
    outbox: {
      path: options.outbox?.path ?? nonEmpty(env.EVENTS_OUTBOX_PATH),
      ...givenOrDefault('outbox.', DEFAULTS.outbox, options.outbox, ['maxPending', 'maxBlockMs', 'maxDeadLetters', 'pollIntervalMs']),
      ...givenOrDefault('outbox.', DEFAULTS.outbox, options.outbox, ['maxPendingBytes', 'writeWaitMs', 'leaseMs']),
      highWaterMark: positive('outbox.highWaterMark', options.outbox?.highWaterMark ?? DEFAULTS.outbox.highWaterMark, true),
    },
    inbox: {
      path: options.inbox?.path ?? nonEmpty(env.EVENTS_INBOX_PATH),
      ...givenOrDefault('inbox.', DEFAULTS.inbox, options.inbox, ['maxEntries', 'retentionMs']),
      volatile: options.inbox?.volatile ?? flag(env.EVENTS_INBOX_VOLATILE, 'EVENTS_INBOX_VOLATILE') ?? false,
    },
    database: checkDatabase(options.database ?? nonEmpty(env.EVENTS_DATABASE_URL), options.database !== undefined),
    databaseSchema: checkSchemaName(options.databaseSchema ?? nonEmpty(env.EVENTS_DATABASE_SCHEMA) ?? DEFAULTS.database.schema),
    databasePoolSize: checkPoolSize(options.databasePoolSize ?? nonEmpty(env.EVENTS_DATABASE_POOL_SIZE), options.databasePoolSize !== undefined),
    databasePreparedStatements:
      options.databasePreparedStatements ??
      flag(env.EVENTS_DATABASE_PREPARED_STATEMENTS, 'EVENTS_DATABASE_PREPARED_STATEMENTS') ??
      DEFAULTS.database.preparedStatements,
    shutdownTimeoutMs: positive('shutdownTimeoutMs', options.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs, true),
    openTelemetry: options.openTelemetry ?? DEFAULTS.openTelemetry,
    health: {
      endpoint: options.health?.endpoint ?? DEFAULTS.health.endpoint,
      ...givenOrDefault('health.', DEFAULTS.health, options.health, ['targetDownMs', 'maxPendingAgeMs'], true),
    },
    operators: resolveOperators(options.console, env),
    asyncapiVersion: checkVersion(options.asyncapi?.version),
    redact: resolveRedact(options.console?.redact),
    hooks: { onDelivered: hook('onDelivered', options.onDelivered), onDeadLetter: hook('onDeadLetter', options.onDeadLetter) },
    env,
    services: options.services ?? {},
    broker: resolveBroker(options.broker, env, tls, options.concurrency),
  };
}

function resolveBatch(option: EventBusOptions['batch'], env: ResolvedConfig['env']): Required<BatchOptions> {
  const d = DEFAULTS.batch;
  const given = option === false ? { enabled: false } : (option ?? {});
  return {
    enabled: given.enabled ?? flag(env.EVENTS_BATCH, 'EVENTS_BATCH') ?? d.enabled,
    ...givenOrDefault('batch.', d, given, ['maxEvents', 'maxBytes']),
    lingerMs: positive('batch.lingerMs', given.lingerMs ?? d.lingerMs, true),
  };
}

/** `console.token` (or EVENTS_CONSOLE_TOKEN) as the operator named `operator`, beside `console.tokens`. */
function resolveOperators(option: ConsoleOptions | undefined, env: ResolvedConfig['env']): OperatorTokens {
  const token = option?.token ?? nonEmpty(env.EVENTS_CONSOLE_TOKEN);
  const named: Array<[name: string, token: unknown, where: string]> = Object.entries(option?.tokens ?? {}).map(([name, value]) => [name, value, `console.tokens.${name}`]);
  if (token !== undefined) named.unshift([DEFAULTS.console.operator, token, 'EVENTS_CONSOLE_TOKEN (console.token)']);
  const operators: Record<string, string> = Object.create(null);
  for (const [name, value, where] of named) {
    if (typeof value !== 'string' || !/^\S+$/.test(value)) {
      throw new ConfigError(`${where} must be a non-empty token without spaces`, { variable: 'EVENTS_CONSOLE_TOKEN' });
    }
    if (name in operators || Object.values(operators).includes(value)) {
      throw new ConfigError(`${where}: each operator needs a name and a token of its own`, { variable: 'EVENTS_CONSOLE_TOKEN' });
    }
    operators[name] = value;
  }
  return operators;
}

function checkVersion(version: unknown): string | undefined {
  if (version !== undefined && (typeof version !== 'string' || version.trim() === '')) throw new ConfigError('asyncapi.version must be a non-empty string, e.g. "1.4.0"');
  return version;
}

function resolveRedact(redact: unknown): readonly string[] {
  if (redact === undefined) return [];
  if (!Array.isArray(redact) || !redact.every((field) => typeof field === 'string' && field !== '')) {
    throw new ConfigError("console.redact must be a list of payload field names, e.g. ['email']");
  }
  return [...(redact as string[])];
}

function resolveHttpClient(value: string | undefined): 'axios' | 'undici' {
  const client = value ?? DEFAULTS.httpClient;
  if (client !== 'axios' && client !== 'undici') {
    throw new ConfigError(`httpClient must be 'axios' or 'undici', not ${JSON.stringify(client)} (check EVENTS_HTTP_CLIENT)`, {
      variable: 'EVENTS_HTTP_CLIENT',
    });
  }
  return client;
}

/** An on/off environment variable: true/1/on/yes, false/0/off/no; undefined when unset. */
export function flag(value: string | undefined, variable: string): boolean | undefined {
  const text = nonEmpty(value)?.trim().toLowerCase();
  if (text === undefined) return undefined;
  if (['true', '1', 'on', 'yes'].includes(text)) return true;
  if (['false', '0', 'off', 'no'].includes(text)) return false;
  throw new ConfigError(`${variable} must be true or false (or 1/0, on/off), not ${JSON.stringify(value)}`, { variable });
}

function resolveBroker(
  option: EventBusOptions['broker'],
  env: ResolvedConfig['env'],
  tls: TlsMaterial | undefined,
  concurrency: number | undefined,
): ResolvedBroker | undefined {
  const asGiven = typeof option === 'string' ? { url: option } : option;
  // An explicit `concurrency` bounds a consumer's messages in hand, as it always did.
  const given = asGiven && { ...asGiven, prefetch: asGiven.prefetch ?? concurrency };
  const url = given?.url ?? nonEmpty(env.EVENTS_BROKER_URL);
  if (url === undefined) return undefined;
  const backend = brokerBackendFor(url);
  const d = DEFAULTS.broker;
  const prefix = given?.prefix ?? nonEmpty(env.EVENTS_BROKER_PREFIX) ?? d.prefix;
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9._:-]*$/.test(prefix)) {
    throw new ConfigError('broker prefix may only hold letters, digits and . _ : -', { variable: 'EVENTS_BROKER_PREFIX' });
  }
  const retryDelaysMs = given?.retryDelaysMs ?? d.retryDelaysMs;
  if (!Array.isArray(retryDelaysMs) || retryDelaysMs.length === 0) {
    throw new ConfigError('broker.retryDelaysMs must be a non-empty list of positive numbers');
  }
  retryDelaysMs.forEach((ms: number, i: number) => positive(`broker.retryDelaysMs[${i}]`, ms));
  const common: ResolvedBroker = {
    kind: backend.kind,
    url,
    prefix,
    retryDelaysMs: [...retryDelaysMs].map((ms: number) => Math.round(ms)),
    ...givenOrDefault('broker.', d, given, ['maxAttempts', 'reconnectBaseDelayMs', 'reconnectMaxDelayMs']),
    ...(tls ? { tls } : {}),
  };
  return backend.resolve(common, given);
}

/**
 * Finds a target's URL and secret (options first, then `EVENTS_SERVICE_<NAME>_*`, then this
 * service's own secret). Throws a ConfigError that names the exact variable to set.
 */
export function resolveTarget(config: ResolvedConfig, name: string): ResolvedTarget {
  if (typeof name !== 'string' || name.trim() === '') {
    throw new ConfigError('target service names must be non-empty strings');
  }
  if (name === SUBSCRIBERS) {
    // One message reaches every subscriber: signed with the system secret, no per-receiver secret
    // applies. Batches: a broker transport publishes a lane's batch back to back (HTTP refuses SUBSCRIBERS).
    if (config.keys.length === 0) {
      throw new ConfigError('an event declared without targets is signed with this service\'s secret: set EVENTS_SECRET (a whsec_… value)', {
        variable: 'EVENTS_SECRET',
      });
    }
    return { name, url: '', keys: config.keys, batch: config.batch.enabled, receipt: true };
  }
  const entry = config.services[name];
  const fromOptions = typeof entry === 'string' ? { url: entry } : entry;
  const urlVar = urlVariable(name);
  // Through a broker, the target is a queue named after it: no URL needed (one given is ignored).
  const url = config.broker ? '' : (fromOptions?.url ?? nonEmpty(config.env[urlVar]));
  if (url === undefined) {
    throw new ConfigError(
      `No URL for target service "${name}": set ${urlVar} (or pass services: { ${JSON.stringify(name)}: url } to createEventBus).`,
      { variable: urlVar },
    );
  }
  const normalised = config.broker ? url : checkUrl(url, urlVar, name);

  const secretVar = secretVariable(name);
  const ownSecret = fromOptions?.secret ?? splitList(config.env[secretVar]);
  const keys = ownSecret === undefined ? config.keys : parseSecrets(ownSecret, `secret of "${name}"`, secretVar);
  if (keys.length === 0) {
    throw new ConfigError(
      `No signing secret for target service "${name}": set ${secretVar} or EVENTS_SECRET (a whsec_… value).`,
      { variable: secretVar },
    );
  }
  const batch = fromOptions?.batch ?? flag(config.env[batchVariable(name)], batchVariable(name)) ?? config.batch.enabled;
  const receipt = fromOptions?.receipt ?? flag(config.env[receiptVariable(name)], receiptVariable(name)) ?? true;
  const tls = normalised.startsWith('https:') ? targetTls(config, name, fromOptions?.tls) : undefined;
  return { name, url: normalised, keys, batch, receipt, ...(tls ? { tls } : {}) };
}

/** The TLS of each target, per config: built once (its files are then watched, not read per call). */
const tlsByTarget = new WeakMap<ResolvedConfig, Map<string, TlsMaterial | undefined>>();

/** A target's own TLS settings (`services.<name>.tls`, `EVENTS_SERVICE_<NAME>_TLS_*_FILE`) over the bus's. */
function targetTls(config: ResolvedConfig, name: string, given: TlsOptions | undefined): TlsMaterial | undefined {
  let known = tlsByTarget.get(config);
  if (!known) tlsByTarget.set(config, (known = new Map()));
  if (!known.has(name)) {
    const own = tlsParts(given, config.env, `EVENTS_SERVICE_${envKey(name)}`, `services.${name}.tls`);
    known.set(name, Object.keys(own).length === 0 ? config.tls : TlsMaterial.of(mergeTlsParts(own, config.tls?.parts ?? {}), config.logger));
  }
  return known.get(name);
}

/**
 * Checks a target's URL and returns it normalised: a URL with no path (`http://host:3002` or
 * `http://host:3002/`) means that service's default events path (DEFAULTS.path, `/events`), so
 * that a bare origin never reaches an app's fallback route.
 */
function checkUrl(url: string, variable: string, name: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new ConfigError(`${variable} is not a valid URL for service "${name}" (expected e.g. http://host:port/events)`, {
      variable,
      cause,
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError(`${variable} must be an http:// or https:// URL, not ${parsed.protocol}//…`, { variable });
  }
  if (parsed.username || parsed.password) {
    throw new ConfigError(`${variable} must not carry credentials; events are authenticated by their signature`, {
      variable,
    });
  }
  return parsed.pathname === '/' ? `${parsed.origin}${DEFAULTS.path}${parsed.search}` : url;
}

function parseSecrets(secret: SecretInput, what: string, variable: string): Buffer[] {
  const list = typeof secret === 'string' ? secret.split(/\s+/).filter(Boolean) : [...secret];
  if (list.length === 0) throw new ConfigError(`${what} is empty: set ${variable} to a whsec_… value`, { variable });
  return list.map((value, index) => {
    try {
      return parseSecret(value);
    } catch (cause) {
      const which = list.length > 1 ? ` (entry ${index + 1} of ${list.length})` : '';
      throw new ConfigError(
        `${what}${which} is malformed: ${(cause as Error).message}. Check ${variable} or the secret option.`,
        { variable, cause },
      );
    }
  });
}

function hook<T>(name: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== 'function') throw new ConfigError(`${name} must be a function`);
  return value;
}

/** A `postgres://` URL (credentials allowed: it is never logged) or a pool-like object. */
function checkDatabase(value: string | DatabasePool | undefined, fromOptions: boolean): string | DatabasePool | undefined {
  if (value === undefined) return undefined;
  const where = fromOptions ? 'the database option' : 'EVENTS_DATABASE_URL';
  if (typeof value === 'string') {
    if (!/^postgres(ql)?:\/\//.test(value)) {
      throw new ConfigError(`${where} must be a postgres:// or postgresql:// URL (e.g. postgres://app@127.0.0.1:5432/app)`, {
        variable: 'EVENTS_DATABASE_URL',
      });
    }
    return value;
  }
  if (typeof value !== 'object' || value === null || typeof (value as DatabasePool).connect !== 'function') {
    throw new ConfigError(`${where} must be a postgres:// URL or a pg Pool (an object with connect())`, { variable: 'EVENTS_DATABASE_URL' });
  }
  return value;
}

/** A whole number of at least 2: a handler's transaction holds one connection while its emit without `tx` takes another. */
function checkPoolSize(value: number | string | undefined, fromOptions: boolean): number {
  if (value === undefined) return DEFAULTS.database.poolSize;
  const size = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 2) {
    throw new ConfigError(
      `${fromOptions ? 'databasePoolSize' : 'EVENTS_DATABASE_POOL_SIZE'} must be a whole number of at least 2 ` +
        `(a handler's transaction holds one connection while the outbox writes on another), got ${JSON.stringify(value)}`,
      { variable: 'EVENTS_DATABASE_POOL_SIZE' },
    );
  }
  return size;
}

function splitList(value: string | undefined): string[] | undefined {
  const list = value?.split(/\s+/).filter(Boolean);
  return list && list.length > 0 ? list : undefined;
}

/** A variable's value, trimmed; undefined when unset or blank. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

export function positive(name: string, value: number, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new ConfigError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(value)}`);
  }
  return value;
}

/** Each of `keys`: the option when given, else its default; a positive number (`prefix` + key names it in the error). */
export function givenOrDefault<D extends object, K extends keyof D & string>(prefix: string, defaults: D, options: object | undefined, keys: K[], allowZero = false) {
  const values = {} as { [P in K]: number };
  const given = options as Record<string, number> | undefined;
  for (const key of keys) values[key] = positive(prefix + key, given?.[key] ?? (defaults[key] as number), allowZero);
  return values;
}

function checkNumbers<T extends object>(group: string, values: T, zeroAllowed: (keyof T)[]): T {
  for (const [key, value] of Object.entries(values)) {
    positive(`${group}.${key}`, value as number, zeroAllowed.includes(key as keyof T));
  }
  return values;
}
